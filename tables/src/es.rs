//! Apple Endpoint Security messages as `eslogger` prints them (JSON lines
//! modelled on `es_message_t`), and their normalisation.
//!
//! eslogger's JSON carries no schema guarantee, so the model is tolerant:
//! unknown keys are ignored, optional fields may be missing or null, the
//! audit token is an object up to message version 9 and an 8-integer array
//! from version 10 (macOS 26), and the event is keyed by the single key
//! inside `event` (not by the `event_type` number, which public fixtures
//! often get wrong).

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// One eslogger line.
#[derive(Debug, Deserialize)]
pub struct EsMessage<'a> {
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub mach_time: Option<u64>,
    #[serde(default)]
    pub event_type: Option<i64>,
    #[serde(default)]
    pub seq_num: Option<u64>,
    #[serde(default)]
    pub global_seq_num: Option<u64>,
    pub process: EsProcess,
    #[serde(borrow)]
    pub event: BTreeMap<String, &'a RawValue>,
}

/// An audit token, in either shape.
///
/// Deserialised by hand rather than as an untagged enum: serde's untagged
/// enums first buffer the value as `Content` and then try each variant,
/// which cost about 5% of the live path's CPU (every ES event carries one to
/// three tokens). The visitor reads the shape it is given once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditTokenRepr {
    /// An object (message version < 10); unknown keys are ignored, `pid` is
    /// required.
    Object {
        auid: Option<i64>,
        euid: Option<i64>,
        ruid: Option<i64>,
        pid: i64,
        pidversion: Option<i64>,
    },
    /// `[auid, euid, egid, ruid, rgid, pid, asid, pidversion]` (version >= 10).
    Array([i64; 8]),
}

impl<'de> Deserialize<'de> for AuditTokenRepr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TokenVisitor;
        impl<'de> serde::de::Visitor<'de> for TokenVisitor {
            type Value = AuditTokenRepr;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an audit token: an object with `pid`, or an array of 8 integers")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AuditTokenRepr, A::Error> {
                let (mut auid, mut euid, mut ruid, mut pid, mut pidversion) =
                    (None, None, None, None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "auid" => &mut auid,
                        "euid" => &mut euid,
                        "ruid" => &mut ruid,
                        "pid" => &mut pid,
                        "pidversion" => &mut pidversion,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate field `{key}` in an audit token"
                        )));
                    }
                    // `null` reads as absent, as `#[serde(default)] Option` did.
                    *slot = Some(map.next_value::<Option<i64>>()?);
                }
                Ok(AuditTokenRepr::Object {
                    auid: auid.flatten(),
                    euid: euid.flatten(),
                    ruid: ruid.flatten(),
                    pid: pid
                        .flatten()
                        .ok_or_else(|| serde::de::Error::missing_field("pid"))?,
                    pidversion: pidversion.flatten(),
                })
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AuditTokenRepr, A::Error> {
                let mut a = [0i64; 8];
                for (i, v) in a.iter_mut().enumerate() {
                    *v = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(9, &self));
                }
                Ok(AuditTokenRepr::Array(a))
            }
        }
        d.deserialize_any(TokenVisitor)
    }
}

/// The fields of an audit token this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditToken {
    pub auid: Option<i64>,
    pub euid: Option<i64>,
    pub ruid: Option<i64>,
    pub pid: i64,
    pub pidversion: Option<i64>,
}

impl From<AuditTokenRepr> for AuditToken {
    fn from(r: AuditTokenRepr) -> Self {
        match r {
            AuditTokenRepr::Object {
                auid,
                euid,
                ruid,
                pid,
                pidversion,
            } => AuditToken {
                auid,
                euid,
                ruid,
                pid,
                pidversion,
            },
            AuditTokenRepr::Array(a) => AuditToken {
                auid: Some(a[0]),
                euid: Some(a[1]),
                ruid: Some(a[3]),
                pid: a[5],
                pidversion: Some(a[7]),
            },
        }
    }
}

impl AuditToken {
    /// Process identity: pid plus pidversion.
    pub fn key(&self) -> (i64, i64) {
        (self.pid, self.pidversion.unwrap_or(0))
    }
}

/// es_file_t.
#[derive(Debug, Clone, Deserialize)]
pub struct EsFile {
    pub path: String,
    #[serde(default)]
    pub path_truncated: Option<bool>,
}

/// es_process_t.
#[derive(Debug, Clone, Deserialize)]
pub struct EsProcess {
    pub audit_token: AuditTokenRepr,
    #[serde(default)]
    pub parent_audit_token: Option<AuditTokenRepr>,
    #[serde(default)]
    pub responsible_audit_token: Option<AuditTokenRepr>,
    #[serde(default)]
    pub ppid: Option<i64>,
    #[serde(default)]
    pub original_ppid: Option<i64>,
    #[serde(default)]
    pub codesigning_flags: Option<u32>,
    #[serde(default)]
    pub is_platform_binary: Option<bool>,
    #[serde(default)]
    pub cdhash: Option<String>,
    #[serde(default)]
    pub signing_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    /// How the kernel validated the code (message version >= 10).
    #[serde(default)]
    pub cs_validation_category: Option<i64>,
    pub executable: EsFile,
}

#[derive(Debug, Deserialize)]
pub struct ExecEvent {
    pub target: EsProcess,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: Option<EsFile>,
    #[serde(default)]
    pub script: Option<EsFile>,
    /// Whether the exec's environment sets `ELECTRON_RUN_AS_NODE`: a signed
    /// Electron app then runs as plain Node.js, executing whatever script
    /// its caller names (Electron, "Environment Variables"). Only this flag
    /// is kept: the environment itself may hold secrets.
    #[serde(default, rename = "env", deserialize_with = "env_runs_as_node")]
    pub runs_as_node: bool,
}

/// `ELECTRON_RUN_AS_NODE` set to a non-empty value in an exec's `env`
/// array (a missing, null or malformed `env` is no evidence).
fn env_runs_as_node<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Seen;
    impl<'de> serde::de::Visitor<'de> for Seen {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of environment strings")
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<bool, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut set = false;
            while let Some(EnvEntry(hit)) = seq.next_element()? {
                set |= hit;
            }
            Ok(set)
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<bool, M::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
    }
    /// One `env` entry: whether it is `ELECTRON_RUN_AS_NODE=<non-empty>`
    /// (anything that is not a string is no evidence).
    struct EnvEntry(bool);
    impl<'de> Deserialize<'de> for EnvEntry {
        fn deserialize<D2: serde::Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
            struct Entry;
            impl<'de> serde::de::Visitor<'de> for Entry {
                type Value = EnvEntry;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an environment string")
                }
                fn visit_str<E>(self, v: &str) -> Result<EnvEntry, E> {
                    Ok(EnvEntry(
                        v.strip_prefix("ELECTRON_RUN_AS_NODE=")
                            .is_some_and(|x| !x.is_empty()),
                    ))
                }
                fn visit_unit<E>(self) -> Result<EnvEntry, E> {
                    Ok(EnvEntry(false))
                }
                fn visit_bool<E>(self, _: bool) -> Result<EnvEntry, E> {
                    Ok(EnvEntry(false))
                }
                fn visit_i64<E>(self, _: i64) -> Result<EnvEntry, E> {
                    Ok(EnvEntry(false))
                }
                fn visit_u64<E>(self, _: u64) -> Result<EnvEntry, E> {
                    Ok(EnvEntry(false))
                }
                fn visit_f64<E>(self, _: f64) -> Result<EnvEntry, E> {
                    Ok(EnvEntry(false))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<EnvEntry, A::Error> {
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    Ok(EnvEntry(false))
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(
                    self,
                    mut map: M,
                ) -> Result<EnvEntry, M::Error> {
                    while map
                        .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                        .is_some()
                    {}
                    Ok(EnvEntry(false))
                }
            }
            d.deserialize_any(Entry)
        }
    }
    d.deserialize_option(Seen)
}

#[derive(Debug, Deserialize)]
pub struct OpenEvent {
    pub fflag: i64,
    pub file: EsFile,
}

#[derive(Debug, Deserialize)]
pub struct CloneEvent {
    pub source: EsFile,
    pub target_dir: EsFile,
    pub target_name: String,
}

#[derive(Debug, Deserialize)]
pub struct CopyfileEvent {
    pub source: EsFile,
    #[serde(default)]
    pub target_file: Option<EsFile>,
    pub target_dir: EsFile,
    pub target_name: String,
}

#[derive(Debug, Deserialize)]
pub struct NewPath {
    pub dir: EsFile,
    pub filename: String,
}

#[derive(Debug, Deserialize)]
pub struct Destination {
    #[serde(default)]
    pub existing_file: Option<EsFile>,
    #[serde(default)]
    pub new_path: Option<NewPath>,
}

impl Destination {
    pub fn path(&self) -> Option<String> {
        if let Some(f) = &self.existing_file {
            return Some(f.path.clone());
        }
        self.new_path
            .as_ref()
            .map(|n| crate::text::join_path(&n.dir.path, &n.filename))
    }
}

#[derive(Debug, Deserialize)]
pub struct RenameEvent {
    pub source: EsFile,
    pub destination: Destination,
}

#[derive(Debug, Deserialize)]
pub struct CreateEvent {
    pub destination: Destination,
}

#[derive(Debug, Deserialize)]
pub struct UnlinkEvent {
    pub target: EsFile,
}

#[derive(Debug, Deserialize)]
pub struct CloseEvent {
    #[serde(default)]
    pub modified: Option<bool>,
    pub target: EsFile,
}

/// es_event_link_t: a new hard link `target_dir/target_filename` to `source`.
#[derive(Debug, Deserialize)]
pub struct LinkEvent {
    pub source: EsFile,
    pub target_dir: EsFile,
    pub target_filename: String,
}

/// es_event_exit_t: the wait(2)-style status.
#[derive(Debug, Deserialize)]
pub struct ExitEvent {
    #[serde(default)]
    pub stat: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ForkEvent {
    pub child: EsProcess,
}

/// FREAD in the kernel's fflag mask (open events carry FFLAGs, not O_ flags).
pub const FREAD: i64 = 0x1;
/// FWRITE.
pub const FWRITE: i64 = 0x2;

/// The event bodies this crate understands, by their eslogger key.
#[derive(Debug)]
pub enum EsEvent {
    Exec(Box<ExecEvent>),
    Open(OpenEvent),
    Clone(CloneEvent),
    Copyfile(CopyfileEvent),
    Rename(RenameEvent),
    Create(CreateEvent),
    Unlink(UnlinkEvent),
    Close(CloseEvent),
    Fork(Box<ForkEvent>),
    Link(LinkEvent),
    Exit(ExitEvent),
}

/// Why a line did not yield an event.
#[derive(Debug)]
pub enum EsError {
    /// Not JSON, truncated, or fields of the wrong type.
    Malformed(String),
    /// A well-formed message of an event type we do not handle.
    UnknownType(String),
}

impl EsEvent {
    /// The event's name as eslogger keys it (`exec`, `open`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            EsEvent::Exec(_) => "exec",
            EsEvent::Open(_) => "open",
            EsEvent::Clone(_) => "clone",
            EsEvent::Copyfile(_) => "copyfile",
            EsEvent::Rename(_) => "rename",
            EsEvent::Create(_) => "create",
            EsEvent::Unlink(_) => "unlink",
            EsEvent::Close(_) => "close",
            EsEvent::Fork(_) => "fork",
            EsEvent::Link(_) => "link",
            EsEvent::Exit(_) => "exit",
        }
    }
}

/// Parse one line into the message envelope and its typed event.
pub fn parse_line(line: &str) -> Result<(EsMessage<'_>, EsEvent), EsError> {
    let msg: EsMessage<'_> =
        serde_json::from_str(line).map_err(|e| EsError::Malformed(e.to_string()))?;
    if msg.event.len() != 1 {
        return Err(EsError::Malformed(format!(
            "`event` has {} keys, expected one",
            msg.event.len()
        )));
    }
    let (name, raw) = match msg.event.iter().next() {
        Some((k, v)) => (k.clone(), *v),
        None => return Err(EsError::Malformed("empty `event`".into())),
    };
    fn body<'de, T: Deserialize<'de>>(raw: &'de RawValue, name: &str) -> Result<T, EsError> {
        serde_json::from_str(raw.get())
            .map_err(|e| EsError::Malformed(format!("event.{name}: {e}")))
    }
    let ev = match name.as_str() {
        "exec" => EsEvent::Exec(Box::new(body(raw, &name)?)),
        "open" => EsEvent::Open(body(raw, &name)?),
        "clone" => EsEvent::Clone(body(raw, &name)?),
        "copyfile" => EsEvent::Copyfile(body(raw, &name)?),
        "rename" => EsEvent::Rename(body(raw, &name)?),
        "create" => EsEvent::Create(body(raw, &name)?),
        "unlink" => EsEvent::Unlink(body(raw, &name)?),
        "close" => EsEvent::Close(body(raw, &name)?),
        "fork" => EsEvent::Fork(Box::new(body(raw, &name)?)),
        "link" => EsEvent::Link(body(raw, &name)?),
        "exit" => EsEvent::Exit(body(raw, &name)?),
        other => return Err(EsError::UnknownType(other.to_string())),
    };
    Ok((msg, ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT_V9: &str = r#"{"process":{"codesigning_flags":637623057,"cdhash":"F988105881118CD77EF87293D97DECE8E193FA98","session_id":532,"ppid":532,"group_id":532,"is_platform_binary":true,"team_id":null,"audit_token":{"euid":0,"rgid":0,"egid":0,"pid":11221,"asid":100017,"ruid":0,"auid":4294967295,"pidversion":170692},"responsible_audit_token":{"pid":532,"asid":100017,"rgid":0,"auid":4294967295,"euid":0,"ruid":0,"pidversion":1294,"egid":0},"is_es_client":false,"signing_id":"com.apple.ipconfig","start_time":"2025-08-07T15:13:09.798115Z","original_ppid":532,"parent_audit_token":{"pid":532,"asid":100017,"rgid":0,"auid":4294967295,"euid":0,"ruid":0,"pidversion":1294,"egid":0},"executable":{"path_truncated":false,"stat":{"st_gid":0},"path":"\/usr\/sbin\/ipconfig"},"tty":null},"time":"2025-08-07T15:13:09.811587464Z","seq_num":362,"action":{"result":{"result_type":0,"result":{"auth":0}}},"event_type":15,"event":{"exit":{"stat":0}},"mach_time":401374797834,"version":9,"thread":{"thread_id":622243},"global_seq_num":1103,"schema_version":1,"action_type":1}"#;

    /// The derive this hand-written visitor replaced, kept as the reference:
    /// both must accept and refuse the same audit tokens, with the same values.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum ReferenceToken {
        Object {
            #[serde(default)]
            auid: Option<i64>,
            #[serde(default)]
            euid: Option<i64>,
            #[serde(default)]
            ruid: Option<i64>,
            pid: i64,
            #[serde(default)]
            pidversion: Option<i64>,
        },
        Array([i64; 8]),
    }

    #[test]
    fn audit_token_visitor_agrees_with_the_untagged_derive() {
        let cases = [
            r#"{"euid":0,"rgid":0,"egid":0,"pid":11221,"asid":100017,"ruid":0,"auid":4294967295,"pidversion":170692}"#,
            r#"{"pid":7}"#,
            r#"{"pid":7,"auid":null,"pidversion":null,"extra":{"nested":[1,2,{"a":"b"}]}}"#,
            r#"{"pid":-1,"euid":-2}"#,
            r#"[501,501,20,501,20,4242,100017,9001]"#,
            r#"[0,0,0,0,0,0,0,0]"#,
            // refused by both
            r#"{"auid":1}"#,
            r#"{"pid":null}"#,
            r#"{"pid":"7"}"#,
            r#"{"pid":7,"pid":8}"#,
            r#"{"pid":1.5}"#,
            r#"[1,2,3,4,5,6,7]"#,
            r#"[1,2,3,4,5]"#,
            r#"[1,2,3,4,5,6,7,8,9]"#,
            r#"[1,2,3,4,5,6,7,"8"]"#,
            r#"[1,2,3,4,5,6,7,18446744073709551615]"#,
            r#"{"pid":18446744073709551615}"#,
            r#""token""#,
            r#"null"#,
            r#"42"#,
            r#"[]"#,
            r#"{}"#,
        ];
        for c in cases {
            let got = serde_json::from_str::<AuditTokenRepr>(c).ok();
            let want = serde_json::from_str::<ReferenceToken>(c)
                .ok()
                .map(|r| match r {
                    ReferenceToken::Object {
                        auid,
                        euid,
                        ruid,
                        pid,
                        pidversion,
                    } => AuditTokenRepr::Object {
                        auid,
                        euid,
                        ruid,
                        pid,
                        pidversion,
                    },
                    ReferenceToken::Array(a) => AuditTokenRepr::Array(a),
                });
            assert_eq!(got, want, "{c}");
        }
    }

    #[test]
    fn parses_the_real_v9_sample() {
        let (msg, ev) = parse_line(EXIT_V9).unwrap();
        assert_eq!(ev.name(), "exit");
        let tok: AuditToken = msg.process.audit_token.into();
        assert_eq!(tok.key(), (11221, 170692));
        assert_eq!(msg.process.executable.path, "/usr/sbin/ipconfig");
        assert_eq!(msg.global_seq_num, Some(1103));
    }

    #[test]
    fn parses_array_audit_tokens() {
        let line = EXIT_V9
            .replace(
                r#"{"euid":0,"rgid":0,"egid":0,"pid":11221,"asid":100017,"ruid":0,"auid":4294967295,"pidversion":170692}"#,
                "[501,501,20,501,20,21497,100013,38282]",
            )
            .replace(r#""version":9"#, r#""version":10"#);
        let (msg, _) = parse_line(&line).unwrap();
        let tok: AuditToken = msg.process.audit_token.into();
        assert_eq!(tok.key(), (21497, 38282));
        assert_eq!(tok.auid, Some(501));
        assert_eq!(msg.version, Some(10));
    }

    #[test]
    fn unknown_and_malformed() {
        let unknown = EXIT_V9.replace(
            r#"{"exit":{"stat":0}}"#,
            r#"{"xpc_connect":{"service_name":"x"}}"#,
        );
        assert!(matches!(parse_line(&unknown), Err(EsError::UnknownType(t)) if t == "xpc_connect"));
        assert!(matches!(parse_line("{"), Err(EsError::Malformed(_))));
        assert!(matches!(parse_line("not json"), Err(EsError::Malformed(_))));
        let wrong = EXIT_V9.replace(r#""pid":11221"#, r#""pid":"11221""#);
        assert!(matches!(parse_line(&wrong), Err(EsError::Malformed(_))));
    }

    #[test]
    fn exec_env_keeps_only_whether_electron_runs_as_node() {
        let base: serde_json::Value = serde_json::from_str(EXIT_V9).unwrap();
        let exec_with = |env: serde_json::Value| {
            let mut v = base.clone();
            v["event"] = serde_json::json!({"exec": {
                "target": base["process"].clone(), "args": ["Slack", "-e", "x"], "env": env}});
            let line = v.to_string();
            match parse_line(&line) {
                Ok((_, EsEvent::Exec(e))) => e.runs_as_node,
                other => panic!("{env}: {other:?}"),
            }
        };
        assert!(exec_with(serde_json::json!([
            "HOME=/Users/a",
            "ELECTRON_RUN_AS_NODE=1"
        ])));
        assert!(!exec_with(serde_json::json!(["ELECTRON_RUN_AS_NODE="])));
        assert!(!exec_with(serde_json::json!([
            "XELECTRON_RUN_AS_NODE=1",
            "PATH=/bin"
        ])));
        // Missing, null or oddly typed: no evidence, and the exec still parses.
        assert!(!exec_with(serde_json::json!(null)));
        assert!(!exec_with(
            serde_json::json!([1, null, {"k": "v"}, ["ELECTRON_RUN_AS_NODE=1"]])
        ));
        assert!(!exec_with(serde_json::json!({"ELECTRON_RUN_AS_NODE": "1"})));
        assert!(!exec_with(serde_json::json!("ELECTRON_RUN_AS_NODE=1")));
    }
}
