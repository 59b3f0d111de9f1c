//! Properties of `input::open_capture`: any JSON records, framed as a JSON
//! array or pretty-printed (any indentation, `"key" : value` or `"key":
//! value`), come out as exactly those records, one per line; arbitrary
//! bytes never panic and never make more lines than they have records.

use keychain_access_tables::input::{open_capture, Layout};
use proptest::prelude::*;
use serde_json::Value;
use std::io::Read;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Strings full of the bytes that matter to a splitter.
        "[a-z{}\\[\\],:\" \\\\/\u{e9}\u{202e}\\n\\t]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Value> {
    // Capture records always have keys (an empty `{}` first record would be
    // one complete line: JSON lines, by the sniff's rule).
    prop::collection::btree_map("[a-zA-Z_]{1,8}", json_value(), 1..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn read_all(bytes: Vec<u8>) -> (Vec<u8>, Layout) {
    let (mut r, shape) = open_capture(Box::new(std::io::Cursor::new(bytes))).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    (out, shape.layout)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arrays_and_pretty_records_split_into_the_same_records(
        recs in prop::collection::vec(record(), 1..6),
        indent in 0usize..5,
        spaced_colon in any::<bool>(),
        as_array in any::<bool>(),
    ) {
        let pad = " ".repeat(indent);
        let colon = if spaced_colon { b" : ".to_vec() } else { b": ".to_vec() };
        let pretty = |v: &Value| -> String {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(v, &mut ser).unwrap();
            let s = String::from_utf8(buf).unwrap();
            if !spaced_colon {
                return s;
            }
            // serde_json writes `"key": ` at the start of a line; Foundation
            // writes `"key" : `. Keys are `[a-zA-Z_]+`, so a key line is
            // told from a string element that merely contains `": `.
            s.lines()
                .map(|l| {
                    let t = l.trim_start();
                    let key_len = t
                        .strip_prefix('"')
                        .map(|r| r.chars().take_while(|c| c.is_ascii_alphabetic() || *c == '_').count())
                        .unwrap_or(0);
                    if key_len > 0 && t[1 + key_len..].starts_with("\": ") {
                        let at = l.len() - t.len() + 1 + key_len;
                        format!("{}\"{}{}", &l[..at], String::from_utf8_lossy(&colon), &l[at + 3..])
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let text = if as_array {
            format!("[{}]", recs.iter().map(pretty).collect::<Vec<_>>().join(",\n"))
        } else {
            recs.iter().map(|r| pretty(r) + "\n").collect()
        };
        let (out, _) = read_all(text.into_bytes());
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        prop_assert_eq!(lines.len(), recs.len());
        for (line, want) in lines.iter().zip(&recs) {
            let got: Value = serde_json::from_slice(line).unwrap();
            prop_assert_eq!(&got, want);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (out, _) = read_all(data.clone());
        // The splitter only drops or copies bytes, adding at most one
        // newline per record it closes.
        prop_assert!(out.len() <= 2 * data.len() + 1);
    }
}
