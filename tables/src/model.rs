//! Behaviour models of keychain access: what tells the keychain API at work
//! from a tool reading bytes, and which drivers make a routine-looking
//! access hostile. Used by [`crate::classify`]; documented in the README
//! ("Reader model").
//!
//! Sources: Apple's Security source (`OSX/libsecurity_filedb/lib/
//! AtomicFile.cpp`: file keychains are read in the client process) and the
//! exclusion lists of Elastic's macOS keychain rules (IDEs, emulators,
//! credential helpers, SQL tools read keychain files through the API).

use crate::material;
use crate::procs::{ProcInfo, Signer};
use crate::text::basename;
use std::collections::{HashMap, VecDeque};

/// Executables that read or move bytes rather than use the keychain API:
/// copy, archive, transfer, dump and text tools, shells, interpreters.
pub const RAW_READERS: &[&str] = &[
    "cat",
    "cp",
    "mv",
    "ln",
    "ditto",
    "zip",
    "unzip",
    "tar",
    "bsdtar",
    "gtar",
    "gzip",
    "gunzip",
    "bzip2",
    "xz",
    "lz4",
    "zstd",
    "7z",
    "7za",
    "7zz",
    "rar",
    "pax",
    "cpio",
    "rsync",
    "scp",
    "sftp",
    "ftp",
    "hdiutil",
    "diskimages-helper",
    "asr",
    "dd",
    "sqlite3",
    "strings",
    "hexdump",
    "xxd",
    "od",
    "base64",
    "openssl",
    "curl",
    "wget",
    "nc",
    "ncat",
    "socat",
    "head",
    "tail",
    "less",
    "more",
    "vi",
    "vim",
    "nvim",
    "nano",
    "emacs",
    "file",
    "shasum",
    "md5",
    "plutil",
    "pbcopy",
    "textutil",
    "mail",
    "split",
    "tee",
    "awk",
    "gawk",
    "sed",
    "grep",
    "rclone",
    "restic",
    "borg",
    "aws",
    "gsutil",
    "azcopy",
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "tcsh",
    "csh",
    "fish",
    "lua",
    "java",
    "swift",
];

/// Apple apps that act for whoever drives them (AppleScript, a user's
/// drag): their reads are not the keychain API at work. Mail attaching a
/// keychain file, Finder duplicating a folder, Script Editor running a
/// script.
pub const ACTS_FOR_OTHERS: &[&str] = &[
    "com.apple.mail",
    "com.apple.finder",
    "com.apple.ScriptEditor2",
    "com.apple.ScriptEditor.id.*",
    "com.apple.Terminal",
    "com.apple.automator.*",
    "com.apple.Automator",
    "com.apple.shortcuts*",
    "com.apple.TextEdit",
    "com.apple.Preview",
    "com.apple.quicklook*",
    "com.apple.osascript",
    "com.apple.systemevents",
];

/// Apple command-line tools that use the keychain API (not raw readers).
pub const API_CLI_TOOLS: &[&str] = &[
    "codesign",
    "security",
    "productsign",
    "productbuild",
    "pkgbuild",
    "xcrun",
    "xcodebuild",
    "notarytool",
    "altool",
    "ssh-add",
    "git-credential-osxkeychain",
    // `UseKeychain yes` passphrases (Apple TN2449) and `kinit --keychain`
    // (Apple's Heimdal): their own credentials, through the API.
    "ssh",
    "kinit",
];

/// Apple launchers that exec their argument and add nothing of their own
/// (`nohup env caffeinate -i TOOL`): they are skipped when counting how far
/// up an interpreter sits, so padding a chain with them does not push the
/// interpreter out of `interpreter_depth`. Matched by name or by the name an
/// Apple signing id keeps, as raw readers are.
pub const EXEC_WRAPPERS: &[&str] = &[
    "nohup",
    "env",
    "caffeinate",
    "arch",
    "nice",
    "timeout",
    "time",
    "stdbuf",
    "xargs",
    "script",
    "sudo",
    "su",
    "exec",
    "taskpolicy",
    "sandbox-exec",
];

/// Whether the process only execs its argument (see [`EXEC_WRAPPERS`]).
pub fn is_exec_wrapper(p: &ProcInfo) -> bool {
    let name = basename(&p.path).to_ascii_lowercase();
    let apple_name = p
        .signing_id
        .as_deref()
        .filter(|_| p.platform_binary || p.signer == Some(Signer::Apple))
        .and_then(|s| s.strip_prefix("com.apple."))
        .map(str::to_ascii_lowercase);
    std::iter::once(name.as_str())
        .chain(apple_name.as_deref())
        .any(|n| EXEC_WRAPPERS.contains(&n))
}

/// Whether the process interprets code its caller supplies: an interpreter
/// by file name or by code identity (a renamed copy keeps its signing id:
/// `node`, `com.apple.perl`, `org.python.python`, an ad-hoc `ruby-<hash>`),
/// or a (signed) Electron app exec'd with `ELECTRON_RUN_AS_NODE`.
pub fn interprets(p: &ProcInfo) -> bool {
    if is_interpreter(&p.path) || p.runs_as_node {
        return true;
    }
    let Some(sid) = p.signing_id.as_deref() else {
        return false;
    };
    let sid = sid.to_ascii_lowercase();
    // Apple's ids keep the tool's name after the prefix (`com.apple.perl5.34`).
    let last = sid
        .strip_prefix("com.apple.")
        .unwrap_or_else(|| sid.rsplit('.').next().unwrap_or(&sid));
    // Ad-hoc and linker signatures keep the link-time name plus a hash
    // (`ruby-5d1a77c0`): the name before the first `-` is what counts.
    is_interpreter_name(last)
}

/// Whether the process reads keychain bytes as a tool rather than through
/// the API: by executable name, by the name its Apple signing id keeps when
/// the binary is copied and renamed, or as an Apple command-line tool.
pub fn raw_reader(p: &ProcInfo, extra: &[String]) -> Option<String> {
    let name = basename(&p.path).to_ascii_lowercase();
    let apple_name = p
        .signing_id
        .as_deref()
        .filter(|_| p.platform_binary || p.signer == Some(Signer::Apple))
        .and_then(|s| s.strip_prefix("com.apple."))
        .map(str::to_ascii_lowercase);
    if p.runs_as_node {
        return Some(format!("{name} run as node (ELECTRON_RUN_AS_NODE)"));
    }
    if interprets(p) {
        return Some(name);
    }
    for n in std::iter::once(name.as_str()).chain(apple_name.as_deref()) {
        if RAW_READERS.contains(&n) || extra.iter().any(|e| e == n) || is_interpreter(n) {
            return Some(n.to_string());
        }
    }
    let cli_dir = ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"]
        .iter()
        .any(|d| p.path.starts_with(d) && !p.path[d.len()..].contains('/'));
    if p.platform_binary && cli_dir && !API_CLI_TOOLS.contains(&name.as_str()) {
        return Some(name);
    }
    None
}

pub fn acts_for_others(p: &ProcInfo) -> bool {
    let Some(sid) = p.signing_id.as_deref() else {
        return false;
    };
    (p.platform_binary || p.signer == Some(Signer::Apple))
        && ACTS_FOR_OTHERS
            .iter()
            .any(|pat| crate::tuning::wildcard(pat, sid))
}

/// An interpreter that runs what nobody installed: osascript, inline code
/// (`-c`, `-e`), code from stdin, or a script in a staging path.
pub fn is_hostile_interpreter(p: &ProcInfo) -> bool {
    if !interprets(p) {
        return false;
    }
    let name = basename(&p.path).to_ascii_lowercase();
    if name == "osascript" {
        return true;
    }
    let Some(cmd) = p.cmdline.as_deref() else {
        return true;
    };
    let mut words = cmd.split_whitespace().skip(1);
    for w in words.by_ref() {
        if w == "-c" || w == "-e" || w == "--eval" || w == "-" {
            return true;
        }
        if w.starts_with('-') {
            continue;
        }
        let w = w.trim_matches(|c| c == '\'' || c == '"');
        return material::is_staging_path(w) || basename(w).starts_with('.');
    }
    // No script: code from stdin (`curl … | python3`).
    true
}

/// A shell running a script it fetched: `bash -c "$(curl -fsSL …)"`,
/// `curl … | sh`.
pub fn runs_downloaded_script(cmdline: &str) -> bool {
    let l = cmdline.to_ascii_lowercase();
    (l.contains("curl ") || l.contains("wget "))
        && (l.contains("$(curl")
            || l.contains("$(wget")
            || l.contains("| sh")
            || l.contains("|sh")
            || l.contains("| bash")
            || l.contains("|bash")
            || l.contains("| zsh"))
}

/// A bounded map with first-in-first-out eviction, for short-lived facts
/// (where keychain material was copied to; which processes made rows).
#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V: Copy> BoundedMap<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedMap {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }
    pub(crate) fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        // The key stays in `order` until it reaches the front; a stale key
        // there removes nothing (or a re-inserted value early, harmlessly).
        self.map.remove(k)
    }
}

impl<V: Copy> BoundedMap<String, V> {
    /// The keys held.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, k: &str) -> Option<V> {
        self.map.get(k).copied()
    }
}

/// How many copied-to paths and rowed processes are remembered.
pub(crate) const SHORT_FACTS_CAPACITY: usize = 4096;

/// Whether the path is a live keychain location below some other root (a
/// backup volume, a snapshot mount): `/Volumes/B/Users/alice/Library/Keychains/…`.
pub fn mirrors_live_location(path: &str) -> bool {
    path.match_indices('/')
        .any(|(i, _)| i > 0 && material::is_live_location(&path[i..]))
}

/// Interpreters whose presence in the ancestry makes theft likely, by
/// file name: the interpreter's name with any version (`python3.12`,
/// `perl5.34`, `python3.12-intel64`), not every name that starts like one
/// (`rubymine`, `phpstorm` are IDEs).
pub(crate) fn is_interpreter(path: &str) -> bool {
    is_interpreter_name(&basename(path).to_ascii_lowercase())
}

/// Whether a lowercase program name is an interpreter's (see
/// [`is_interpreter`]).
pub(crate) fn is_interpreter_name(name: &str) -> bool {
    let stem = name.split('-').next().unwrap_or(name);
    let core = stem.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        core,
        "python"
            | "pythonw"
            | "perl"
            | "ruby"
            | "node"
            | "nodejs"
            | "osascript"
            | "php"
            | "pwsh"
            | "deno"
            | "bun"
            | "tclsh"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreters_by_identity_and_wrappers_by_name() {
        let p = |path: &str, sid: Option<&str>, platform: bool| ProcInfo {
            path: path.into(),
            signing_id: sid.map(String::from),
            platform_binary: platform,
            ..Default::default()
        };
        // A renamed copy keeps its signing id.
        assert!(interprets(&p("/Users/a/.h/Helper", Some("node"), false)));
        assert!(interprets(&p(
            "/Users/a/x",
            Some("com.apple.perl5.34"),
            true
        )));
        assert!(interprets(&p("/opt/x/bin/r", Some("ruby-5d1a77c0"), false)));
        assert!(interprets(&p(
            "/Library/F/Python",
            Some("org.python.python"),
            false
        )));
        // Names that merely start like an interpreter are not one.
        assert!(!interprets(&p(
            "/Applications/RubyMine.app/Contents/MacOS/rubymine",
            Some("com.jetbrains.rubymine"),
            false
        )));
        assert!(!interprets(&p(
            "/Applications/Slack.app/Contents/MacOS/Slack",
            Some("com.tinyspeck.slackmacgap"),
            false
        )));
        let mut slack = p(
            "/Applications/Slack.app/Contents/MacOS/Slack",
            Some("com.tinyspeck.slackmacgap"),
            false,
        );
        slack.runs_as_node = true;
        assert!(interprets(&slack));
        assert!(
            raw_reader(&slack, &[]).is_some(),
            "run as node, a signed app reads as a tool"
        );
        assert!(is_exec_wrapper(&p(
            "/usr/bin/nohup",
            Some("com.apple.nohup"),
            true
        )));
        assert!(is_exec_wrapper(&p(
            "/Users/a/bin/x",
            Some("com.apple.caffeinate"),
            true
        )));
        assert!(!is_exec_wrapper(&p(
            "/bin/zsh",
            Some("com.apple.zsh"),
            true
        )));
        assert!(
            !is_exec_wrapper(&p("/Users/a/bin/x", Some("com.apple.caffeinate"), false)),
            "a self-assigned id is no Apple name"
        );
    }

    #[test]
    fn raw_readers_by_name_signing_id_and_cli_folder() {
        let p = |path: &str, sid: &str, platform: bool| ProcInfo {
            path: path.into(),
            signing_id: Some(sid.into()),
            platform_binary: platform,
            signer: Some(if platform {
                Signer::Apple
            } else {
                Signer::DeveloperId
            }),
            ..Default::default()
        };
        assert!(raw_reader(&p("/bin/cat", "com.apple.cat", true), &[]).is_some());
        assert!(raw_reader(&p("/Users/a/bin/notes", "com.apple.cp", true), &[]).is_some());
        assert!(raw_reader(&p("/usr/bin/plutil", "com.apple.plutil", true), &[]).is_some());
        assert!(raw_reader(&p("/usr/bin/codesign", "com.apple.codesign", true), &[]).is_none());
        assert!(raw_reader(
            &p("/Applications/X.app/Contents/MacOS/X", "com.x", false),
            &[]
        )
        .is_none());
        // A third-party binary cannot borrow an Apple name by signing id.
        assert!(raw_reader(
            &p(
                "/Applications/Y.app/Contents/MacOS/Y",
                "com.apple.cat",
                false
            ),
            &[]
        )
        .is_none());
        assert!(raw_reader(
            &p("/opt/x/bin/mycopy", "mycopy", false),
            &["mycopy".to_string()]
        )
        .is_some());
    }

    #[test]
    fn hostile_interpreters_run_inline_staged_or_piped_code() {
        let p = |path: &str, cmd: &str| ProcInfo {
            path: path.into(),
            cmdline: Some(cmd.into()),
            ..Default::default()
        };
        assert!(is_hostile_interpreter(&p(
            "/usr/bin/python3",
            "python3 -c exec(x)"
        )));
        assert!(is_hostile_interpreter(&p(
            "/usr/bin/osascript",
            "osascript a.scpt"
        )));
        assert!(is_hostile_interpreter(&p(
            "/usr/local/bin/node",
            "node /tmp/x.js"
        )));
        assert!(is_hostile_interpreter(&p("/usr/bin/python3", "python3")));
        assert!(!is_hostile_interpreter(&p(
            "/usr/bin/ruby",
            "ruby /usr/local/bin/fastlane match"
        )));
        assert!(!is_hostile_interpreter(&p("/bin/zsh", "zsh -c x")));
        assert!(runs_downloaded_script(
            "bash -c $(curl -fsSL https://x/i.sh)"
        ));
        assert!(!runs_downloaded_script("curl -O https://x/file"));
    }
}
