//! security(1) argv, parsed the way the tool itself parses it.
//!
//! The command table, every option string, the secret options and which
//! commands a customer Mac can run come from `data/security-getopt.tsv`,
//! extracted from Apple's published SecurityTool source
//! (apple-oss-distributions/Security, `SecurityTool/macOS/security.c` and
//! the file named per row); `build.rs` turns it into [`TABLE`], so nothing
//! here is retyped.
//!
//! The parse has two goals:
//! * **classify exactly as security(1) would run the command**: global
//!   options by getopt(3) with security's own string, then the verb resolved
//!   as `execute_command` does (the first command of the table the word is a
//!   prefix of, skipping commands a customer build does not have), then BSD
//!   getopt with that verb's option string (stopping at the first
//!   non-option, `--`, or an error). A command security(1) would refuse
//!   with a usage error is still parsed as far as it goes and marked
//!   [`SecurityInvocation::refused`]: it is an attempt and still a row.
//! * **redact a superset**: [`SecurityInvocation::secrets`] holds the values
//!   of the verb's secret options as getopt sees them, plus, in the words
//!   getopt never read (after a usage error, `--`, or the first non-option),
//!   the value of any secret option and of any option whose meaning is
//!   unclear (a letter the verb does not know, or any option of an unknown
//!   verb).

include!(concat!(env!("OUT_DIR"), "/security_table.rs"));

/// Whether a command exists on a customer Mac.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    All,
    /// `filevault`: present, working on Apple silicon only.
    AppleSiliconOnly,
    /// `command_t.internal`: skipped when resolving on customer builds.
    Internal,
    /// `#ifndef NDEBUG`: not in release builds.
    DebugBuildsOnly,
    /// `#if 0`.
    NeverCompiled,
}

impl Availability {
    /// Whether a verb can resolve to this command on a customer Mac.
    pub fn on_customer_mac(self) -> bool {
        matches!(self, Availability::All | Availability::AppleSiliconOnly)
    }
}

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub verb: &'static str,
    /// The SecurityTool source file that implements it.
    pub source_file: &'static str,
    /// getopt option strings; empty when the command reads its arguments
    /// positionally; two for `trust-settings-export` (one per branch; the
    /// first is used to classify, either to decide what a letter means).
    pub optstrings: &'static [&'static str],
    /// Options whose value is a secret.
    pub secret_options: &'static [char],
    pub availability: Availability,
    /// Where getopt starts (`import` reads its file argument first).
    pub first_optind: usize,
}

impl Command {
    /// Whether `c` is an option letter of this command, and whether it takes
    /// a value (in any of its option strings).
    fn option(&self, c: char) -> Option<bool> {
        let mut found = None;
        for s in self.optstrings {
            if let Some(takes) = optstring_option(s, c) {
                found = Some(found.unwrap_or(false) || takes);
            }
        }
        found
    }
}

/// What getopt makes of letter `c` under option string `s`: `None` when it
/// is not an option, else whether it takes a value. A leading `:` only
/// changes error reporting and is never an option letter.
fn optstring_option(s: &str, c: char) -> Option<bool> {
    if c == ':' {
        return None;
    }
    let p = s.find(c)?;
    Some(s.as_bytes().get(p + 1) == Some(&b':'))
}

/// The table row of a verb.
pub fn command(verb: &str) -> Option<&'static Command> {
    TABLE.iter().find(|c| c.verb == verb)
}

/// Resolve a verb as security(1) does on a customer Mac: the first command
/// the word is a prefix of (`strncmp(name, word, strlen(word))`), skipping
/// internal and compiled-out commands. `None` for an unknown verb.
pub fn resolve_verb(word: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .filter(|c| c.availability.on_customer_mac())
        .find(|c| c.verb.starts_with(word))
        .map(|c| c.verb)
}

/// Every option letter that is a secret for some verb (for text that names
/// no verb security(1) would run).
pub fn secret_letters_union() -> Vec<char> {
    let mut v: Vec<char> = TABLE
        .iter()
        .flat_map(|c| c.secret_options.iter().copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Why security(1) would refuse a command (print usage, run nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An option letter `security` itself does not know (before the verb).
    GlobalOption(char),
    /// `-p` (prompt) with no value.
    GlobalMissingValue(char),
    /// No command of the table (on a customer Mac) begins with the verb.
    UnknownVerb,
    /// An option letter the verb does not know.
    UnknownOption(char),
    /// An option that takes a value given none.
    MissingValue(char),
    /// `import` with no file argument.
    MissingArgument,
}

impl Refusal {
    /// In words, for a row's `reason`.
    pub fn describe(&self) -> String {
        match self {
            Refusal::GlobalOption(c) => format!("unknown option -{}", printable(*c)),
            Refusal::GlobalMissingValue(c) | Refusal::MissingValue(c) => {
                format!("-{} needs a value", printable(*c))
            }
            Refusal::UnknownVerb => "unknown command".into(),
            Refusal::UnknownOption(c) => format!("unknown option -{}", printable(*c)),
            Refusal::MissingArgument => "missing argument".into(),
        }
    }
}

fn printable(c: char) -> char {
    if c.is_ascii_graphic() {
        c
    } else {
        '?'
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
    /// The command that runs (`dump-keychain`); `help` under `-h`; `None`
    /// when the verb is unknown or absent.
    pub verb: Option<&'static str>,
    /// `-i` / `-p prompt` with no verb: commands come from stdin.
    pub interactive: bool,
    pub opts: Vec<Opt>,
    pub positionals: Vec<String>,
    /// argv indices of secret values: (index, attached-prefix-length). A
    /// superset: see the module documentation.
    pub secrets: Vec<(usize, usize)>,
    /// `Some` when security(1) would print usage and run nothing.
    pub refused: Option<Refusal>,
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

/// What one BSD getopt(3) loop read.
struct GetoptRun {
    opts: Vec<Opt>,
    /// The first word getopt did not consume (its `optind` at the end).
    optind: usize,
    /// The error that ended the loop, and the index of the word it is in.
    error: Option<(Refusal, usize)>,
}

/// getopt(3) as FreeBSD/macOS libc implements it: options until the first
/// word that does not start with `-`, a lone `-`, or `--` (consumed); a
/// value is the rest of the word or the whole next word. The commands stop
/// at the first error (`default: return SHOW_USAGE`), so this does too.
///
/// Kept hand-written, not a getopt or argument-parsing crate: it must be
/// BSD libc's getopt exactly (clusters, attached values, a leading `:`, `-`
/// and `--`, where it stops), because a parse that differs from the one
/// security(1) runs is either a missed secret or a misread command; the
/// property test `tests/security_getopt.rs` holds it to an independent model.
fn bsd_getopt(argv: &[String], start: usize, optstring: &str) -> GetoptRun {
    let mut run = GetoptRun {
        opts: Vec::new(),
        optind: start,
        error: None,
    };
    while let Some(w) = argv.get(run.optind) {
        if !w.starts_with('-') || w == "-" {
            break;
        }
        if w == "--" {
            run.optind += 1;
            break;
        }
        let here = run.optind;
        let mut next = here + 1;
        for (pos, c) in w.char_indices().skip(1) {
            let after = pos + c.len_utf8();
            match optstring_option(optstring, c) {
                None => {
                    run.error = Some((Refusal::UnknownOption(c), here));
                    run.optind = here;
                    return run;
                }
                Some(false) => run.opts.push(Opt {
                    flag: c,
                    value: None,
                    value_index: None,
                    attached: false,
                }),
                Some(true) => {
                    if after < w.len() {
                        run.opts.push(Opt {
                            flag: c,
                            value: Some(w[after..].to_string()),
                            value_index: Some(here),
                            attached: true,
                        });
                    } else if let Some(v) = argv.get(here + 1) {
                        run.opts.push(Opt {
                            flag: c,
                            value: Some(v.clone()),
                            value_index: Some(here + 1),
                            attached: false,
                        });
                        next = here + 2;
                    } else {
                        // The value is missing: with a leading ':' getopt
                        // returns ':' and the command decides (add-*-password
                        // `-w` last means "prompt for it").
                        run.opts.push(Opt {
                            flag: c,
                            value: None,
                            value_index: None,
                            attached: false,
                        });
                        run.error = Some((Refusal::MissingValue(c), here));
                        run.optind = argv.len();
                        return run;
                    }
                    break;
                }
            }
        }
        run.optind = next;
    }
    run
}

/// A word getopt would read as options: `-` then a letter (`-25300`, an
/// error code, and `-` alone are not).
fn is_option_word(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 2 && b[0] == b'-' && b[1].is_ascii_alphabetic()
}

/// The superset pass over words getopt never read: values of the verb's
/// secret options, and of options whose meaning is unclear (a letter the
/// verb does not know, or any letter when the verb is unknown).
fn scan_unread(
    argv: &[String],
    words: std::ops::Range<usize>,
    cmd: Option<&Command>,
    out: &mut Vec<(usize, usize)>,
) {
    let mut j = words.start;
    while j < words.end.min(argv.len()) {
        let w = &argv[j];
        if is_option_word(w) {
            for (pos, c) in w.char_indices().skip(1) {
                let after = pos + c.len_utf8();
                let known = cmd.and_then(|cmd| cmd.option(c));
                if known == Some(false) {
                    continue;
                }
                let secret = match known {
                    Some(true) => cmd.is_some_and(|cmd| cmd.secret_options.contains(&c)),
                    _ => true, // meaning unclear
                };
                if after < w.len() {
                    if secret {
                        out.push((j, after));
                    }
                } else if let Some(next) = argv.get(j + 1) {
                    if known == Some(true) || !is_option_word(next) {
                        if secret {
                            out.push((j + 1, 0));
                        }
                        j += 1;
                    }
                }
                break;
            }
        }
        j += 1;
    }
}

/// Parse `security` argv (argv[0] is the program).
pub fn parse(argv: &[String]) -> SecurityInvocation {
    let mut inv = SecurityInvocation::default();
    let global = bsd_getopt(argv, 1, GLOBAL_OPTSTRING);
    for o in &global.opts {
        inv.global_flags.push(o.flag);
        if o.flag == 'i' || o.flag == 'p' {
            inv.interactive = true;
        }
    }
    let help = inv.global_flags.contains(&'h');
    let mut i = global.optind;
    if let Some((err, at)) = global.error {
        inv.refused = Some(match err {
            Refusal::MissingValue(c) => Refusal::GlobalMissingValue(c),
            Refusal::UnknownOption(c) => Refusal::GlobalOption(c),
            other => other,
        });
        // security(1) prints usage; for the row, the verb it was meant to
        // run is the first word after the options.
        i = at;
        while let Some(w) = argv.get(i) {
            i += 1;
            if w == "--" {
                break;
            }
            if !w.starts_with('-') || w == "-" {
                i -= 1;
                break;
            }
        }
    }
    let Some(word) = argv.get(i) else {
        return inv;
    };
    inv.interactive = false; // a verb on argv runs once, not interactively
    inv.verb_word = Some(word.clone());
    inv.verb = resolve_verb(word);
    let Some(cmd) = inv.verb.and_then(command) else {
        inv.refused.get_or_insert(Refusal::UnknownVerb);
        scan_unread(argv, i + 1..argv.len(), None, &mut inv.secrets);
        inv.positionals = argv.get(i + 1..).unwrap_or(&[]).to_vec();
        return finish(inv, help);
    };
    let Some(optstring) = cmd.optstrings.first() else {
        // No getopt: the command reads its arguments positionally.
        inv.positionals = argv.get(i + 1..).unwrap_or(&[]).to_vec();
        return finish(inv, help);
    };
    let start = i + cmd.first_optind;
    if start > argv.len() {
        inv.refused.get_or_insert(Refusal::MissingArgument);
    }
    let leading: Vec<String> = argv
        .get(i + 1..start.min(argv.len()))
        .unwrap_or(&[])
        .to_vec();
    let run = bsd_getopt(argv, start, optstring);
    for o in &run.opts {
        if let (Some(idx), true) = (o.value_index, cmd.secret_options.contains(&o.flag)) {
            let keep = if o.attached {
                argv[idx].len() - o.value.as_deref().map_or(0, str::len)
            } else {
                0
            };
            inv.secrets.push((idx, keep));
        }
    }
    inv.opts = run.opts;
    let unread_from = match run.error {
        Some((Refusal::MissingValue(c), at))
            if optstring.starts_with(':') && cmd.secret_options.contains(&c) =>
        {
            at + 1 // "prompt for it": not an error
        }
        Some((err, at)) => {
            inv.refused.get_or_insert(err);
            at
        }
        None => run.optind,
    };
    inv.positionals = leading;
    if run.error.is_none() {
        inv.positionals
            .extend(argv.get(run.optind..).unwrap_or(&[]).iter().cloned());
    }
    // Words before getopt's start (`import`'s file) are read as arguments,
    // but an option typed there was meant as one: its value is redacted.
    scan_unread(argv, i + 1..start, Some(cmd), &mut inv.secrets);
    scan_unread(argv, unread_from..argv.len(), Some(cmd), &mut inv.secrets);
    finish(inv, help)
}

fn finish(mut inv: SecurityInvocation, help: bool) -> SecurityInvocation {
    inv.secrets.sort_unstable();
    inv.secrets.dedup_by_key(|(i, _)| *i);
    if help {
        // `security -h verb ...` prints the verb's usage and runs nothing:
        // only an error in the global options is a usage error.
        inv.verb = resolve_verb("help");
        inv.refused = inv
            .refused
            .filter(|r| matches!(r, Refusal::GlobalOption(_) | Refusal::GlobalMissingValue(_)));
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
    fn tsv_copy_matches_the_shared_reference() {
        let shared = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/reference/security-getopt.tsv"
        );
        let Ok(want) = std::fs::read_to_string(shared) else {
            println!("note: {shared} is absent; the copy in tables/data is not compared");
            return;
        };
        let ours = include_str!("../data/security-getopt.tsv");
        assert_eq!(
            ours, want,
            "tables/data/security-getopt.tsv differs from {shared}"
        );
    }

    #[test]
    fn table_is_apples() {
        assert_eq!(GLOBAL_OPTSTRING, "hilp:qvR");
        assert_eq!(TABLE.len(), COMMANDS.len());
        assert_eq!(COMMANDS.first(), Some(&"help"));
        let imp = command("import").unwrap();
        assert_eq!(imp.first_optind, 2);
        assert_eq!(imp.secret_options, &['P']);
        assert_eq!(command("export").unwrap().first_optind, 1);
        assert_eq!(
            command("trust-settings-export").unwrap().optstrings,
            &["dsh", "dh"]
        );
        assert_eq!(
            command("add-generic-password").unwrap().secret_options,
            &['p', 'w', 'X']
        );
        assert!(command("leaks").unwrap().optstrings.is_empty());
    }

    #[test]
    fn internal_and_compiled_out_verbs_never_resolve() {
        for v in [
            "create-key-loop",
            "wait-for-notifications",
            "create-csr",
            "recode-keychain",
        ] {
            assert!(command(v).is_some(), "{v} is in the table");
            assert_eq!(resolve_verb(v), None, "{v}");
        }
        assert_eq!(resolve_verb("wait"), None);
        assert_eq!(resolve_verb("rec"), None);
        assert_eq!(resolve_verb("create-key"), Some("create-keychain"));
        assert_eq!(resolve_verb("create-keyp"), Some("create-keypair"));
        assert_eq!(resolve_verb("filevault"), Some("filevault"));
        assert_eq!(resolve_verb("list-s"), Some("list-smartcards"));
        // strncmp with an empty word matches the first command.
        assert_eq!(resolve_verb(""), Some("help"));
        let inv = parse(&argv(&["security", "create-key-loop", "-k", "kc"]));
        assert_eq!(inv.verb, None);
        assert_eq!(inv.refused, Some(Refusal::UnknownVerb));
    }

    #[test]
    fn apple_option_strings_decide_what_takes_a_value() {
        // set-key-partition-list -s is a flag: -k's value is the password.
        let inv = parse(&argv(&[
            "security",
            "set-key-partition-list",
            "-S",
            "apple:",
            "-s",
            "-k",
            "Pw0rd!",
            "kc",
        ]));
        assert_eq!(inv.secrets, vec![(6, 0)]);
        assert_eq!(inv.positionals, vec!["kc"]);
        assert!(inv.refused.is_none());
        // add-*-password -X is a hex password.
        let inv = parse(&argv(&[
            "security",
            "add-internet-password",
            "-s",
            "h",
            "-X",
            "70617373",
        ]));
        assert_eq!(inv.secrets, vec![(5, 0)]);
        let inv = parse(&argv(&["security", "add-generic-password", "-UX70617373"]));
        assert_eq!(inv.secrets, vec![(2, 3)]);
        // create-filevaultmaster-keychain -p is a password.
        let inv = parse(&argv(&[
            "security",
            "create-filevaultmaster-keychain",
            "-p",
            "pw",
            "f",
        ]));
        assert_eq!(inv.secrets, vec![(3, 0)]);
        // dump-keychain -o names the output; find-key -d is a flag.
        let inv = parse(&argv(&["security", "dump-keychain", "-do", "/tmp/x", "kc"]));
        assert_eq!(inv.value('o'), Some("/tmp/x"));
        assert_eq!(inv.positionals, vec!["kc"]);
        let inv = parse(&argv(&["security", "find-key", "-d", "kc"]));
        assert!(inv.has_flag('d'));
        assert_eq!(inv.positionals, vec!["kc"]);
    }

    #[test]
    fn import_reads_its_file_before_the_options() {
        let inv = parse(&argv(&["security", "import", "-P", "pw", "c.p12"]));
        // getopt starts at "pw": a non-option, so no options at all...
        assert!(inv.opts.is_empty());
        assert_eq!(inv.positionals, vec!["-P", "pw", "c.p12"]);
        // ...but the value typed after -P is still redacted (superset).
        assert_eq!(inv.secrets, vec![(3, 0)]);
        let inv = parse(&argv(&["security", "import"]));
        assert_eq!(inv.refused, Some(Refusal::MissingArgument));
    }

    #[test]
    fn getopt_stops_where_bsd_getopt_stops() {
        // After the first non-option, options are arguments to security(1);
        // the password after -p is still redacted.
        let inv = parse(&argv(&["security", "unlock-keychain", "kc", "-p", "pw"]));
        assert!(inv.opts.is_empty());
        assert_eq!(inv.positionals, vec!["kc", "-p", "pw"]);
        assert_eq!(inv.secrets, vec![(4, 0)]);
        // `--` ends options; what follows is positional but still redacted.
        let inv = parse(&argv(&["security", "create-keychain", "--", "-p", "pw"]));
        assert!(inv.opts.is_empty());
        assert_eq!(inv.secrets, vec![(4, 0)]);
        // An unknown letter is a usage error; the values after options of
        // unclear meaning are redacted.
        let inv = parse(&argv(&["security", "unlock-keychain", "-Z", "pw", "kc"]));
        assert_eq!(inv.refused, Some(Refusal::UnknownOption('Z')));
        assert_eq!(inv.verb, Some("unlock-keychain"));
        assert_eq!(inv.secrets, vec![(3, 0)]);
        // Leading ':' (add-generic-password): -w last means "prompt".
        let inv = parse(&argv(&[
            "security",
            "add-generic-password",
            "-a",
            "a",
            "-s",
            "s",
            "-w",
        ]));
        assert!(inv.refused.is_none());
        assert!(inv.has_flag('w'));
        // Without it a missing value is an error.
        let inv = parse(&argv(&["security", "unlock-keychain", "-p"]));
        assert_eq!(inv.refused, Some(Refusal::MissingValue('p')));
    }

    #[test]
    fn global_options_are_securitys_own() {
        let inv = parse(&argv(&["security", "-R", "-qv", "dump", "-d"]));
        assert_eq!(inv.global_flags, vec!['R', 'q', 'v']);
        assert_eq!(inv.verb, Some("dump-keychain"));
        let inv = parse(&argv(&["security", "-x", "unlock-keychain", "-p", "pw"]));
        assert_eq!(inv.refused, Some(Refusal::GlobalOption('x')));
        assert_eq!(inv.verb, Some("unlock-keychain"));
        assert_eq!(inv.secrets, vec![(4, 0)]);
        // -h prints usage and runs nothing.
        let inv = parse(&argv(&["security", "-h", "dump-keychain", "-d"]));
        assert_eq!(inv.verb, Some("help"));
        // -p takes the prompt, then the verb runs once.
        let inv = parse(&argv(&["security", "-p", "x>", "export", "-P", "pw"]));
        assert_eq!(inv.verb, Some("export"));
        assert!(!inv.interactive);
        assert_eq!(inv.secrets, vec![(5, 0)]);
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
