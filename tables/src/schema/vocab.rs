//! The closed vocabularies of `keychain_access_events`: [`Action`] (what
//! was done) and [`Severity`] (how bad it is). Each is an enum, so a
//! classifier literal outside the set does not compile; on the wire (SQLite,
//! osquery, JSON, CSV, tuning files) each value is its snake_case name.

use std::fmt;
use std::str::FromStr;

/// A name outside a closed set (a tuning file's typo, or a buffer row
/// written by another version of this program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What the set is (`action`, `severity`).
    pub kind: &'static str,
    /// The name that was given.
    pub name: String,
    /// The valid names, comma-separated.
    pub valid: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}` (one of {})",
            self.kind, self.name, self.valid
        )
    }
}

impl std::error::Error for UnknownName {}

/// Declares a closed set: the enum, `ALL` in declaration order, `as_str`,
/// `FromStr` (error: [`UnknownName`] listing the valid names), `Display`,
/// serde by the wire name, and SQLite conversion both ways.
///
/// Hand-written rather than `strum` derives (strum is in the lockfile
/// through the vendored osquery crate): the wire names must be exact, spelled
/// once beside each variant here, and strum would still leave the error that
/// names the valid set, serde and the SQLite conversions to write by hand.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The wire name (what SQLite, osquery, JSON and tuning files carry).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// The valid names, comma-separated (for error messages).
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $( $wire => Ok($name::$variant), )+
                    _ => Err(UnknownName {
                        kind: $kind,
                        name: s.to_string(),
                        valid: Self::names(),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Name;
                impl serde::de::Visitor<'_> for Name {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} name (one of {})", $kind, $name::names())
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Name)
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::Borrowed(
                    rusqlite::types::ValueRef::Text(self.as_str().as_bytes()),
                ))
            }
        }

        /// A stored name outside the set is a conversion error, never a
        /// silent NULL (see [`UnknownName`]).
        impl rusqlite::types::FromSql for $name {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e: UnknownName| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

closed_set! {
    /// What a row says was done (the README's "Actions" table documents
    /// each; a test holds the table to [`Action::ALL`]).
    ///
    /// A name outside the set is not a row's action:
    ///
    /// ```compile_fail
    /// use keychain_access_tables::KeychainAccess;
    /// let row = KeychainAccess { action: Some("keychain_teleport".into()), ..Default::default() };
    /// ```
    ///
    /// ```
    /// use keychain_access_tables::{schema::Action, KeychainAccess};
    /// let row = KeychainAccess { action: Some(Action::DumpKeychain), ..Default::default() };
    /// assert_eq!(row.to_osquery_map()["action"], "dump_keychain");
    /// ```
    Action, "action" {
        DumpKeychain = "dump_keychain",
        FindGenericPassword = "find_generic_password",
        FindInternetPassword = "find_internet_password",
        FindCertificate = "find_certificate",
        FindIdentity = "find_identity",
        Export = "export",
        Import = "import",
        UnlockKeychain = "unlock_keychain",
        CreateKeychain = "create_keychain",
        SetKeyPartitionList = "set_key_partition_list",
        AddPassword = "add_password",
        ListKeychains = "list_keychains",
        SecurityInteractive = "security_interactive",
        SecurityOther = "security_other",
        KeychainRead = "keychain_read",
        KeychainCopy = "keychain_copy",
        KeychainMove = "keychain_move",
        KeychainDelete = "keychain_delete",
        ToolKeychaindump = "tool_keychaindump",
        ToolChainbreaker = "tool_chainbreaker",
        ToolLazagne = "tool_lazagne",
        KeychainUnlock = "keychain_unlock",
        KeychainPrompt = "keychain_prompt",
        KeychainDbOpen = "keychain_db_open",
        KeychainAuth = "keychain_auth",
        AuthorizationRight = "authorization_right",
        KeychainPromptAnswer = "keychain_prompt_answer",
        KeychainApi = "keychain_api",
    }
}

closed_set! {
    /// How bad a row is. Ordered: `Info < Low < Medium < High` (the
    /// classifier raises severities with `max`).
    Severity, "severity" {
        Info = "info",
        Low = "low",
        Medium = "medium",
        High = "high",
    }
}

// Declaration order is the severity order; derived, so it cannot drift.
impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Severity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

impl Severity {
    /// The alert rule's severities ([`super::ALERT_PREDICATE_SQL`]).
    pub fn alerts(self) -> bool {
        self >= Severity::Medium
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(*a));
            assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{a}\""));
            let back: Action = serde_json::from_str(&format!("\"{a}\"")).unwrap();
            assert_eq!(back, *a);
        }
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(*s));
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = "nope".parse::<Action>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown action `nope` (one of dump_keychain, "),
            "{e}"
        );
        assert!(e.ends_with("keychain_api)"), "{e}");
        let e = serde_json::from_str::<Severity>("\"urgent\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown severity `urgent` (one of info, low, medium, high)"),
            "{e}"
        );
        // Not a string at all: serde's own message, naming what is expected.
        let e = serde_json::from_str::<Severity>("3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("severity name"), "{e}");
    }

    #[test]
    fn severity_is_ordered() {
        assert!(Severity::Info < Severity::Low);
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::Medium < Severity::High);
        assert_eq!(Severity::ALL.iter().max(), Some(&Severity::High));
        let alerting: Vec<Severity> = Severity::ALL
            .iter()
            .copied()
            .filter(|s| s.alerts())
            .collect();
        assert_eq!(alerting, [Severity::Medium, Severity::High]);
    }
}
