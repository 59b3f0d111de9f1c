//! security(1) argv, parsed the way the tool itself parses it.
//!
//! `security` resolves its verb by prefix: the first command of its table
//! that begins with the given word wins (`security dump -d` is
//! `dump-keychain -d`, `security find -ga Chrome` is `find-generic-password`).
//! Global options (`-h -i -l -p prompt -q -v`) come before the verb; `-i` or
//! `-p` with no verb reads commands from stdin, hidden from argv. Each verb
//! then runs getopt with its own option string, so a flag's meaning depends
//! on the verb (`-p` is a password for `unlock-keychain`, PEM output for
//! `find-certificate`). String matching on the command line cannot get this
//! right; this module does.
//!
//! The table order follows Apple's SecurityTool `security.c` (commands[]),
//! with the verbs added in later macOS releases placed where current
//! releases list them.

/// The `security` command table in resolution order.
pub const COMMANDS: &[&str] = &[
    "help",
    "list-keychains",
    "default-keychain",
    "login-keychain",
    "create-keychain",
    "delete-keychain",
    "lock-keychain",
    "unlock-keychain",
    "set-keychain-settings",
    "set-keychain-password",
    "show-keychain-info",
    "dump-keychain",
    "create-keypair",
    "add-generic-password",
    "add-internet-password",
    "add-certificates",
    "find-generic-password",
    "delete-generic-password",
    "set-generic-password-partition-list",
    "find-internet-password",
    "delete-internet-password",
    "set-internet-password-partition-list",
    "find-key",
    "set-key-partition-list",
    "find-certificate",
    "find-identity",
    "delete-certificate",
    "delete-identity",
    "set-identity-preference",
    "get-identity-preference",
    "create-db",
    "export",
    "export-smartcard",
    "import",
    "cms",
    "install-mds",
    "add-trusted-cert",
    "remove-trusted-cert",
    "dump-trust-settings",
    "user-trust-settings-enable",
    "trust-settings-export",
    "trust-settings-import",
    "verify-cert",
    "authorize",
    "authorizationdb",
    "execute-with-privileges",
    "leaks",
    "error",
    "create-filevaultmaster-keychain",
    "smartcards",
    "list-smartcards",
    "translocate-create",
    "translocate-policy-check",
    "translocate-status-check",
    "translocate-original-path",
    "requirement-evaluate",
];

/// Resolve a verb as security(1) does: the first command the word is a
/// prefix of. `None` for an unknown verb.
pub fn resolve_verb(word: &str) -> Option<&'static str> {
    COMMANDS.iter().copied().find(|c| c.starts_with(word))
}

/// getopt option strings per verb (a letter followed by `:` takes a value).
/// Verbs not listed are parsed permissively: every `-x` is a flag.
fn optstring(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "dump-keychain" => "adir",
        "find-generic-password" => "a:c:C:D:G:j:l:s:gw",
        "find-internet-password" => "a:c:C:d:D:j:l:p:P:r:s:t:gw",
        "delete-generic-password" => "a:c:C:D:G:j:l:s:",
        "delete-internet-password" => "a:c:C:d:D:j:l:p:P:r:s:t:",
        "find-certificate" => "ac:e:mpZY",
        "find-identity" => "p:s:v",
        "find-key" => "a:c:d:D:j:l:t:Z",
        "export" => "k:t:f:wpP:o:",
        "import" => "k:t:f:wxP:a:AT:",
        "unlock-keychain" => "up:",
        "create-keychain" => "Pp:",
        "set-keychain-password" => "o:p:",
        "set-keychain-settings" => "lut:",
        "list-keychains" | "default-keychain" | "login-keychain" => "d:s",
        "add-generic-password" => "a:c:C:D:G:j:l:s:p:w:AT:U",
        "add-internet-password" => "a:c:C:d:D:j:l:p:P:r:s:t:w:AT:U",
        // Apple's keychain_find.c: `-s` is a flag of set-key-partition-list
        // (fastlane passes `-s -k <password>`), a value elsewhere.
        "set-key-partition-list" => "a:c:dD:ej:k:l:rsS:t:uvw",
        "set-generic-password-partition-list" | "set-internet-password-partition-list" => {
            "S:k:a:c:C:d:D:G:j:l:s:t:"
        }
        "add-trusted-cert" => "dr:p:a:s:e:u:k:i:o:D",
        "cms" => "CDESc:h:nr:GH:N:PTY:Z:e:k:i:o:p:su:v",
        _ => return None,
    })
}

/// Options whose value is a secret, per verb.
fn secret_options(verb: &str) -> &'static [char] {
    match verb {
        "unlock-keychain" | "create-keychain" => &['p'],
        "set-keychain-password" => &['o', 'p'],
        "export" | "import" => &['P'],
        "add-generic-password" => &['w', 'p'],
        "add-internet-password" => &['w'],
        "set-key-partition-list"
        | "set-generic-password-partition-list"
        | "set-internet-password-partition-list" => &['k'],
        "cms" => &['p'],
        _ => &[],
    }
}

/// One option as getopt saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub flag: char,
    pub value: Option<String>,
    /// Index in argv of the word holding the value (for redaction).
    pub value_index: Option<usize>,
    /// True when the value was attached to the flag word (`-pSECRET`).
    pub attached: bool,
}

/// A parsed `security` invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityInvocation {
    /// Global options seen before the verb.
    pub global_flags: Vec<char>,
    /// The verb as typed (`dump`).
    pub verb_word: Option<String>,
    /// The verb as resolved (`dump-keychain`); `None` when unknown or absent.
    pub verb: Option<&'static str>,
    /// `-i` / `-p prompt` with no verb: commands come from stdin.
    pub interactive: bool,
    pub opts: Vec<Opt>,
    pub positionals: Vec<String>,
    /// argv indices of secret values: (index, attached-prefix-length).
    pub secrets: Vec<(usize, usize)>,
}

impl SecurityInvocation {
    pub fn has_flag(&self, f: char) -> bool {
        self.opts.iter().any(|o| o.flag == f)
    }

    pub fn value(&self, f: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|o| o.flag == f)
            .and_then(|o| o.value.as_deref())
    }

    pub fn values(&self, f: char) -> impl Iterator<Item = &str> {
        self.opts
            .iter()
            .filter(move |o| o.flag == f)
            .filter_map(|o| o.value.as_deref())
    }
}

/// Parse `security` argv (argv[0] is the program).
pub fn parse(argv: &[String]) -> SecurityInvocation {
    let mut inv = SecurityInvocation::default();
    let mut i = 1;
    // Global options: getopt("hilp:qv"), stopping at the first non-option.
    while let Some(word) = argv.get(i) {
        if word == "--" {
            i += 1;
            break;
        }
        if !word.starts_with('-') || word.len() < 2 {
            break;
        }
        let mut consumed_next = false;
        for (pos, c) in word.char_indices().skip(1) {
            inv.global_flags.push(c);
            match c {
                'i' => inv.interactive = true,
                'p' => {
                    // -p takes the prompt: attached, or the next word.
                    inv.interactive = true;
                    consumed_next = pos + c.len_utf8() >= word.len();
                    break;
                }
                _ => {}
            }
        }
        i += if consumed_next { 2 } else { 1 };
    }
    let Some(word) = argv.get(i) else {
        return inv;
    };
    inv.interactive = false; // a verb on argv runs once, not interactively
    inv.verb_word = Some(word.clone());
    inv.verb = resolve_verb(word);
    let verb = inv.verb.unwrap_or("");
    let spec = optstring(verb);
    let secret = secret_options(verb);
    let rest = argv.get(i + 1..).unwrap_or(&[]);
    let base = i + 1;
    let mut j = 0;
    // BSD getopt with permutation tolerated: options after positionals are
    // still recognised (import takes its file first, then options).
    while j < rest.len() {
        let w = &rest[j];
        if w == "--" {
            inv.positionals.extend(rest[j + 1..].iter().cloned());
            break;
        }
        if !w.starts_with('-') || w.len() < 2 {
            inv.positionals.push(w.clone());
            j += 1;
            continue;
        }
        let mut advance = 1;
        let body: Vec<(usize, char)> = w.char_indices().skip(1).collect();
        let mut k = 0;
        while k < body.len() {
            let (pos, c) = body[k];
            let takes_value = match spec {
                Some(s) => s
                    .find(c)
                    .is_some_and(|p| s.as_bytes().get(p + 1) == Some(&b':')),
                None => false,
            };
            if takes_value {
                let attached_at = pos + c.len_utf8();
                if attached_at < w.len() {
                    let v = w[attached_at..].to_string();
                    if secret.contains(&c) {
                        inv.secrets.push((base + j, attached_at));
                    }
                    inv.opts.push(Opt {
                        flag: c,
                        value: Some(v),
                        value_index: Some(base + j),
                        attached: true,
                    });
                } else if let Some(v) = rest.get(j + 1) {
                    if secret.contains(&c) {
                        inv.secrets.push((base + j + 1, 0));
                    }
                    inv.opts.push(Opt {
                        flag: c,
                        value: Some(v.clone()),
                        value_index: Some(base + j + 1),
                        attached: false,
                    });
                    advance = 2;
                } else {
                    // A trailing value option with nothing after it (for
                    // add-*-password `-w` this means "prompt").
                    inv.opts.push(Opt {
                        flag: c,
                        value: None,
                        value_index: None,
                        attached: false,
                    });
                }
                break;
            }
            inv.opts.push(Opt {
                flag: c,
                value: None,
                value_index: None,
                attached: false,
            });
            k += 1;
        }
        j += advance;
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn verbs_resolve_by_prefix_in_table_order() {
        assert_eq!(resolve_verb("dump"), Some("dump-keychain"));
        assert_eq!(resolve_verb("du"), Some("dump-keychain"));
        assert_eq!(resolve_verb("find"), Some("find-generic-password"));
        assert_eq!(resolve_verb("find-i"), Some("find-internet-password"));
        assert_eq!(resolve_verb("find-id"), Some("find-identity"));
        assert_eq!(resolve_verb("find-c"), Some("find-certificate"));
        assert_eq!(resolve_verb("e"), Some("export"));
        assert_eq!(resolve_verb("d"), Some("default-keychain"));
        assert_eq!(resolve_verb("dump-keychain"), Some("dump-keychain"));
        assert_eq!(resolve_verb("nonsense"), None);
        assert_eq!(resolve_verb("dump-keychainx"), None);
    }

    #[test]
    fn global_options_then_verb_flags() {
        let inv = parse(&argv(&["security", "-q", "dump", "-d", "login.keychain"]));
        assert_eq!(inv.verb, Some("dump-keychain"));
        assert!(inv.has_flag('d'));
        assert_eq!(inv.positionals, vec!["login.keychain"]);

        let inv = parse(&argv(&[
            "security",
            "find-generic-password",
            "-ga",
            "Chrome",
        ]));
        assert!(inv.has_flag('g'));
        assert_eq!(inv.value('a'), Some("Chrome"));
        assert!(inv.positionals.is_empty());

        let inv = parse(&argv(&[
            "security",
            "find-generic-password",
            "-wa",
            "Chrome",
        ]));
        assert!(inv.has_flag('w'));
        assert_eq!(inv.value('a'), Some("Chrome"));
    }

    #[test]
    fn interactive_mode_hides_the_verb() {
        let inv = parse(&argv(&["security", "-i"]));
        assert!(inv.interactive);
        assert_eq!(inv.verb, None);
        let inv = parse(&argv(&["security", "-p", "sec> "]));
        assert!(inv.interactive);
        let inv = parse(&argv(&["security", "-v", "list-keychains"]));
        assert!(!inv.interactive);
        assert_eq!(inv.verb, Some("list-keychains"));
    }

    #[test]
    fn secret_values_are_located_per_verb() {
        let inv = parse(&argv(&[
            "security",
            "unlock-keychain",
            "-p",
            "pw",
            "x.keychain",
        ]));
        assert_eq!(inv.secrets, vec![(3, 0)]);
        let inv = parse(&argv(&["security", "create-keychain", "-ppw", "x"]));
        assert_eq!(inv.secrets, vec![(2, 2)]);
        // find-certificate -p is PEM output, not a password.
        let inv = parse(&argv(&["security", "find-certificate", "-a", "-p"]));
        assert!(inv.secrets.is_empty());
        assert!(inv.has_flag('p'));
        let inv = parse(&argv(&[
            "security",
            "import",
            "c.p12",
            "-k",
            "k.keychain",
            "-P",
            "pw",
            "-T",
            "/usr/bin/codesign",
        ]));
        assert_eq!(inv.secrets, vec![(6, 0)]);
        assert_eq!(inv.value('k'), Some("k.keychain"));
        let inv = parse(&argv(&[
            "security",
            "add-generic-password",
            "-a",
            "a",
            "-s",
            "s",
            "-w",
        ]));
        assert!(inv.secrets.is_empty());
        let inv = parse(&argv(&[
            "security",
            "set-key-partition-list",
            "-S",
            "apple-tool:,apple:",
            "-k",
            "pw",
            "k",
        ]));
        assert_eq!(inv.secrets, vec![(5, 0)]);
    }
}
