//! security(1) command lines built at random for every verb of Apple's
//! command table (`tables/data/security-getopt.tsv`, from
//! apple-oss-distributions/Security SecurityTool/macOS), checked against a
//! reference written independently here: FreeBSD/macOS libc getopt(3)
//! (`lib/libc/stdlib/getopt.c`: the `place` pointer, `--`, a lone `-`,
//! BADCH/BADARG) driving security.c's `main` and `execute_command`.
//!
//! Properties, for every verb:
//! * the parser agrees with the reference on the verb, every option and
//!   its value, whether security(1) would refuse the command, and the
//!   arguments;
//! * every value the reference gives a secret option is located;
//! * no value typed after a secret option survives, wherever it was typed
//!   (after `--`, after an argument, after a usage error): not in the
//!   redacted argv and not in any column of the row the scanner makes from
//!   an eslogger exec of `/usr/bin/security`.

use keychain_access_tables::redact::redact_argv;
use keychain_access_tables::security_cli;
use keychain_access_tables::{ScanOptions, Scanner};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const TSV: &str = include_str!("../data/security-getopt.tsv");

struct Row {
    verb: String,
    optstrings: Vec<String>,
    secret: Vec<u8>,
    customer: bool,
}

fn table() -> Vec<Row> {
    TSV.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                verb: f[0].to_string(),
                optstrings: if f[2] == "(none)" {
                    vec![]
                } else {
                    f[2].split(" | ").map(String::from).collect()
                },
                secret: f[3].bytes().filter(|b| *b != b' ').collect(),
                customer: f[4] == "all" || f[4].starts_with("Apple silicon"),
            }
        })
        .collect()
}

/// libc getopt(3), byte for byte (FreeBSD `getopt.c`, which macOS ships).
struct Getopt<'a> {
    argv: &'a [Vec<u8>],
    optind: usize,
    /// (word, byte) of the next option letter; `None` is EMSG.
    place: Option<(usize, usize)>,
    optarg: Option<(usize, usize)>,
    optopt: u8,
}

const BADCH: i32 = b'?' as i32;
const BADARG: i32 = b':' as i32;

impl<'a> Getopt<'a> {
    fn new(argv: &'a [Vec<u8>], optind: usize) -> Self {
        Getopt {
            argv,
            optind,
            place: None,
            optarg: None,
            optopt: 0,
        }
    }

    fn byte(&self, p: (usize, usize)) -> u8 {
        self.argv[p.0].get(p.1).copied().unwrap_or(0)
    }

    fn next(&mut self, ostr: &[u8]) -> i32 {
        let mut place = match self.place {
            Some(p) if self.byte(p) != 0 => p,
            _ => {
                if self.optind >= self.argv.len() || self.argv[self.optind].first() != Some(&b'-') {
                    self.place = None;
                    return -1;
                }
                let mut p = (self.optind, 1);
                self.optopt = self.byte(p);
                p.1 += 1;
                if self.optopt == b'-' && self.byte(p) == 0 {
                    self.optind += 1;
                    self.place = None;
                    return -1;
                }
                if self.optopt == 0 {
                    self.place = None;
                    return -1; // no '-' in any option string
                }
                self.place = Some(p);
                let pos = ostr.iter().position(|&c| c == self.optopt && c != b':');
                return self.letter(ostr, pos, p);
            }
        };
        self.optopt = self.byte(place);
        place.1 += 1;
        self.place = Some(place);
        let pos = ostr.iter().position(|&c| c == self.optopt && c != b':');
        self.letter(ostr, pos, place)
    }

    fn letter(&mut self, ostr: &[u8], pos: Option<usize>, place: (usize, usize)) -> i32 {
        let Some(oli) = pos else {
            if self.byte(place) == 0 {
                self.optind += 1;
            }
            return BADCH;
        };
        if ostr.get(oli + 1) != Some(&b':') {
            self.optarg = None;
            if self.byte(place) == 0 {
                self.optind += 1;
            }
        } else {
            if self.byte(place) != 0 {
                self.optarg = Some(place);
            } else {
                self.optind += 1;
                if self.argv.len() > self.optind {
                    self.optarg = Some((self.optind, 0));
                } else {
                    self.place = None;
                    return if ostr.first() == Some(&b':') {
                        BADARG
                    } else {
                        BADCH
                    };
                }
            }
            self.place = None;
            self.optind += 1;
        }
        self.optopt as i32
    }
}

#[derive(Debug, PartialEq)]
struct Reference {
    verb: Option<String>,
    refused: bool,
    opts: Vec<(char, Option<String>)>,
    positionals: Option<Vec<String>>,
    /// (word index, byte offset) of each secret option's value.
    secrets: Vec<(usize, usize)>,
}

fn reference(table: &[Row], argv: &[String]) -> Reference {
    let bytes: Vec<Vec<u8>> = argv.iter().map(|w| w.as_bytes().to_vec()).collect();
    let mut r = Reference {
        verb: None,
        refused: false,
        opts: vec![],
        positionals: None,
        secrets: vec![],
    };
    let mut g = Getopt::new(&bytes, 1);
    let mut help = false;
    loop {
        match g.next(b"hilp:qvR") {
            -1 => break,
            c if c == b'h' as i32 => help = true,
            c if c == BADCH || c == BADARG => {
                // Usage. The parser still names the verb the command line
                // meant to run (the row is an attempt): not compared.
                r.refused = true;
                r.verb = Some("<usage>".into());
                return r;
            }
            _ => {}
        }
    }
    let base = g.optind;
    if help {
        // `help(argc + 1, argv - 1)`: usage text only, nothing runs.
        r.verb = Some("help".into());
        return r;
    }
    let Some(word) = argv.get(base) else {
        return r;
    };
    let Some(row) = table
        .iter()
        .find(|row| row.customer && row.verb.starts_with(word.as_str()))
    else {
        r.refused = true;
        return r;
    };
    r.verb = Some(row.verb.clone());
    let Some(ostr) = row.optstrings.first() else {
        r.positionals = Some(argv[base + 1..].to_vec());
        return r;
    };
    // The command sees argv[base..] as its own argv; `import` starts at 2.
    let sub = &bytes[base..];
    let first = if row.verb == "import" { 2 } else { 1 };
    if first > sub.len() {
        r.refused = true;
        return r;
    }
    let mut g = Getopt::new(sub, first);
    loop {
        let c = g.next(ostr.as_bytes());
        if c == -1 {
            break;
        }
        if c == BADCH {
            r.refused = true;
            return r;
        }
        let flag = if c == BADARG { g.optopt } else { c as u8 } as char;
        let value = g.optarg.take().filter(|_| c != BADARG).map(|(w, b)| {
            if row.secret.contains(&(flag as u8)) {
                r.secrets.push((base + w, b));
            }
            String::from_utf8_lossy(&sub[w][b..]).into_owned()
        });
        r.opts.push((flag, value));
        if c == BADARG {
            // keychain_add.c `case ':'`: a secret option last, with no
            // value, prompts for it; any other is a usage error.
            if !row.secret.contains(&(flag as u8)) {
                r.refused = true;
                return r;
            }
            break;
        }
    }
    let mut pos: Vec<String> = argv[base + 1..base + first].to_vec();
    pos.extend(argv[base + g.optind.min(sub.len())..].iter().cloned());
    r.positionals = Some(pos);
    r
}

/// One piece of a generated command line.
#[derive(Debug, Clone)]
enum Item {
    /// A cluster of flag letters (`-ga`).
    Flags(Vec<u8>),
    /// An option with a value: letter, attached, value selector.
    Valued(u8, bool, u8),
    /// An argument.
    Arg(u8),
    DoubleDash,
    /// A letter the verb does not know.
    Unknown(u8),
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    let item = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..4).prop_map(Item::Flags),
        (any::<u8>(), any::<bool>(), any::<u8>()).prop_map(|(l, a, v)| Item::Valued(l, a, v)),
        (any::<u8>(), any::<bool>(), any::<u8>()).prop_map(|(l, a, v)| Item::Valued(l, a, v)),
        any::<u8>().prop_map(Item::Arg),
        Just(Item::DoubleDash),
        any::<u8>().prop_map(Item::Unknown),
    ];
    prop::collection::vec(item, 0..9)
}

const GLOBALS: &[&[&str]] = &[
    &[],
    &["-q"],
    &["-v"],
    &["-qv"],
    &["-l", "-R"],
    &["-p", "sec>"],
    &["-psec>"],
    &["-h"],
    &["-x"],
    &["--"],
];
const ARGS: &[&str] = &[
    "login.keychain",
    "/tmp/out.p12",
    "-",
    "c.pem",
    "-25300",
    "x y",
];

struct Built {
    argv: Vec<String>,
    /// Values typed after a secret option of the intended verb.
    markers: Vec<String>,
}

fn build(
    table: &[Row],
    verb_index: usize,
    prefix: u8,
    globals: usize,
    items: &[Item],
    last_bare: bool,
) -> Built {
    let row = &table[verb_index % table.len()];
    let mut argv = vec!["security".to_string()];
    argv.extend(
        GLOBALS[globals % GLOBALS.len()]
            .iter()
            .map(|s| s.to_string()),
    );
    // A prefix that resolves to this verb, when there is one.
    let lens: Vec<usize> = (1..=row.verb.len())
        .filter(|&n| {
            table
                .iter()
                .find(|r| r.customer && r.verb.starts_with(&row.verb[..n]))
                .is_some_and(|r| r.verb == row.verb)
        })
        .collect();
    let verb_word = if lens.is_empty() || prefix.is_multiple_of(2) {
        row.verb.clone()
    } else {
        row.verb[..lens[prefix as usize % lens.len()]].to_string()
    };
    argv.push(verb_word);
    if row.verb == "import" {
        argv.push("cert.p12".into());
    }
    let ostr = row.optstrings.first().cloned().unwrap_or_default();
    let letters: Vec<u8> = ostr.bytes().filter(|b| *b != b':').collect();
    let flags: Vec<u8> = letters
        .iter()
        .copied()
        .filter(|c| {
            let p = ostr.bytes().position(|b| b == *c).unwrap_or(0);
            ostr.as_bytes().get(p + 1) != Some(&b':')
        })
        .collect();
    let valued: Vec<u8> = letters
        .iter()
        .copied()
        .filter(|c| !flags.contains(c))
        .collect();
    let mut markers = Vec::new();
    for (n, it) in items.iter().enumerate() {
        match it {
            Item::Flags(ls) if !flags.is_empty() => {
                let s: String = ls
                    .iter()
                    .map(|l| flags[*l as usize % flags.len()] as char)
                    .collect();
                argv.push(format!("-{s}"));
            }
            Item::Valued(l, attached, v) if !valued.is_empty() => {
                let c = valued[*l as usize % valued.len()];
                // Values: a unique marker, sometimes looking like an option.
                let value = match v % 4 {
                    0 => format!("-Mk{n}q{v}Zt"),
                    1 => format!("Mk{n}q{v}Zt!x"),
                    2 => format!("Mk{n} q{v}Zt"),
                    _ => format!("Mk{n}q{v}Zt"),
                };
                if row.secret.contains(&c) {
                    markers.push(value.clone());
                }
                if *attached {
                    argv.push(format!("-{}{value}", c as char));
                } else {
                    argv.push(format!("-{}", c as char));
                    argv.push(value);
                }
            }
            Item::Arg(a) => argv.push(ARGS[*a as usize % ARGS.len()].to_string()),
            Item::DoubleDash => argv.push("--".into()),
            Item::Unknown(u) => {
                let c = (b'A'..=b'Z')
                    .chain(b'a'..=b'z')
                    .filter(|c| !letters.contains(c))
                    .nth(*u as usize % 20)
                    .unwrap_or(b'9');
                argv.push(format!("-{}", c as char));
            }
            _ => {}
        }
    }
    if last_bare {
        if let Some(c) = row.secret.first() {
            argv.push(format!("-{}", *c as char)); // "prompt for it"
        }
    }
    Built { argv, markers }
}

fn exec_line(argv: &[String]) -> String {
    serde_json::json!({
        "global_seq_num": 1, "mach_time": 1, "time": "2025-10-14T09:12:44.205440492Z",
        "version": 8, "event_type": 9, "action_type": 1,
        "process": proc_json("/bin/zsh", 400, 1, "com.apple.zsh"),
        "event": {"exec": {"target": proc_json("/usr/bin/security", 401, 400, "com.apple.security"),
            "args": argv, "script": null, "cwd": {"path": "/", "path_truncated": false}}},
    })
    .to_string()
}

fn proc_json(path: &str, pid: i64, ppid: i64, sid: &str) -> serde_json::Value {
    serde_json::json!({
        "audit_token": [501, 501, 20, 501, 20, pid, 100000, 7],
        "parent_audit_token": [501, 501, 20, 501, 20, ppid, 100000, 3],
        "ppid": ppid, "original_ppid": ppid, "group_id": pid, "session_id": pid,
        "is_platform_binary": true, "is_es_client": false, "signing_id": sid, "team_id": null,
        "codesigning_flags": 570522385, "cdhash": "0123456789ABCDEF0123456789ABCDEF01234567",
        "executable": {"path": path, "path_truncated": false}, "tty": null,
        "start_time": "2025-10-14T09:12:44.204664Z"
    })
}

proptest! {
    #![proptest_config(Config {
        cases: 2500,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7365_6375_7269_7479),
        ..Config::default()
    })]

    #[test]
    fn parser_is_apples_getopt_and_no_secret_survives(
        verb in any::<usize>(),
        prefix in any::<u8>(),
        globals in any::<usize>(),
        its in items(),
        last_bare in any::<bool>(),
    ) {
        let table = table();
        let b = build(&table, verb, prefix, globals, &its, last_bare);
        let want = reference(&table, &b.argv);
        let got = security_cli::parse(&b.argv);
        if want.verb.as_deref() != Some("<usage>") {
            prop_assert_eq!(got.verb.map(String::from), want.verb.clone(), "verb of {:?}", b.argv);
        }
        prop_assert_eq!(got.refused.is_some(), want.refused, "refused {:?}: {:?}", b.argv, got.refused);
        if !want.refused && want.verb.as_deref() != Some("help") {
            let opts: Vec<(char, Option<String>)> =
                got.opts.iter().map(|o| (o.flag, o.value.clone())).collect();
            prop_assert_eq!(&opts, &want.opts, "options of {:?}", b.argv);
            if let Some(p) = &want.positionals {
                prop_assert_eq!(&got.positionals, p, "arguments of {:?}", b.argv);
            }
        }
        for s in &want.secrets {
            prop_assert!(got.secrets.contains(s), "secret {:?} of {:?} not located: {:?}", s, b.argv, got.secrets);
        }
        let red = redact_argv(&b.argv).join(" ");
        for m in &b.markers {
            prop_assert!(!red.contains(m.as_str()), "{} survived in {}", m, red);
        }
        // A fresh scanner per case (no state carried between cases) with the
        // built-in tuning parsed once and without its unified-log patterns:
        // the rows here are Endpoint Security execs, and compiling ~150
        // message regexes per case dominated the test's time.
        static TUNING: std::sync::OnceLock<keychain_access_tables::Tuning> =
            std::sync::OnceLock::new();
        let tuning = TUNING
            .get_or_init(|| keychain_access_tables::Tuning {
                unified_log_patterns: Vec::new(),
                ..keychain_access_tables::Tuning::builtin()
            })
            .clone();
        let mut scanner = Scanner::new(ScanOptions {
            max_line: keychain_access_tables::scan::DEFAULT_MAX_LINE,
            cache_capacity: 64,
            tuning,
        });
        let mut rows = Vec::new();
        scanner.scan_line(exec_line(&b.argv).as_bytes(), &mut rows);
        prop_assert_eq!(rows.len(), 1, "one row for {:?}", b.argv);
        let json = serde_json::to_string(&rows[0]).unwrap();
        for m in &b.markers {
            let esc = serde_json::to_string(m).unwrap();
            prop_assert!(!json.contains(esc.trim_matches('"')), "{} survived in the row {}", m, json);
        }
    }
}

/// Every verb of the table is reached by the generator (the property is
/// about every verb, not the common ones).
#[test]
fn generator_reaches_every_verb() {
    let table = table();
    for i in 0..table.len() {
        let b = build(&table, i, 1, 0, &[], false);
        let r = reference(&table, &b.argv);
        if table[i].customer {
            assert_eq!(
                r.verb.as_deref(),
                Some(table[i].verb.as_str()),
                "{:?}",
                b.argv
            );
        } else {
            assert!(r.refused, "{} must not resolve", table[i].verb);
        }
    }
}
