//! Known keys as typed structs: every shape `pack check` reads (an osquery
//! pack and its queries, a Fleet query, policy or pack, a GitOps file, agent
//! options) is a serde struct whose fields are the known keys. Deserialising
//! through [`serde_ignored`] reports every key the struct does not have, with
//! its path, and [`field_names`] reads the known keys back from the struct
//! for the message, so there is no second, hand-kept list to drift.
//!
//! Why not `#[serde(deny_unknown_fields)]`: it stops at the first unknown key,
//! and a checker must report all of them. Why fields of [`Field`] rather than
//! plain `bool`/`String`: a serde type error also ends deserialisation at the
//! first problem, while the checker reports every wrong value with its own
//! message; a [`Field`] holds the typed value, or the raw one to describe.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// One step of the path to an unknown key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Where an unknown key is, relative to the value that was deserialised:
/// `["targets", "lables"]` for `targets.lables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Step>);

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, s) in self.0.iter().enumerate() {
            match s {
                Step::Key(k) if n == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn key_path(p: &serde_ignored::Path) -> KeyPath {
    fn walk(p: &serde_ignored::Path, out: &mut Vec<Step>) {
        use serde_ignored::Path;
        match p {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                out.push(Step::Index(*index));
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                out.push(Step::Key(key.clone()));
            }
            // `Option` and newtype layers are not keys in the document.
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut out = Vec::new();
    walk(p, &mut out);
    KeyPath(out)
}

/// Deserialise `T`, collecting the path of every key it ignored (in document
/// order), instead of dropping them silently or stopping at the first.
pub fn deserialize_reporting<'de, T, D>(d: D) -> Result<(T, Vec<KeyPath>), D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let mut unknown = Vec::new();
    let value = serde_ignored::deserialize(d, |p| unknown.push(key_path(&p)))?;
    Ok((value, unknown))
}

/// The keys a derived struct accepts (its serde field names, renames
/// applied), in declaration order: what "(known: ...)" lists. Empty for a
/// type that is not a struct.
///
/// Hand-written because serde does not expose a derived struct's field list
/// except as the argument of `Deserializer::deserialize_struct`; this
/// deserializer only records that argument and stops (the trick of the
/// serde-aux crate's `serde_introspect`, too small to take a dependency for).
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// One field of a checked shape: absent, of the expected type, or present
/// with a value of another type (kept so the message can show it). A JSON
/// `null` or an empty YAML value is present and of the wrong type, as
/// osquery and Fleet treat it; use with `#[serde(default)]` on the struct.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T, V> {
    #[default]
    Absent,
    Typed(T),
    Wrong(V),
}

impl<T, V> Field<T, V> {
    /// The typed value, or `None` when absent or of another type.
    pub fn typed(&self) -> Option<&T> {
        match self {
            Field::Typed(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }
}

impl<'de, T, V> Deserialize<'de> for Field<T, V>
where
    T: DeserializeOwned,
    V: Deserialize<'de>,
    for<'a> &'a V: Deserializer<'a>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through the document's own value type (never `deserialize_option`,
        // which would read `null` as absent), then tried as `T`.
        let raw = V::deserialize(d)?;
        let typed = T::deserialize(&raw).ok();
        Ok(match typed {
            Some(t) => Field::Typed(t),
            None => Field::Wrong(raw),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct Outer {
        name: Field<String, Json>,
        #[serde(rename = "apiVersion")]
        api_version: Field<String, Json>,
        inner: Option<Inner>,
    }
    #[derive(Deserialize, Debug, Default)]
    struct Inner {
        #[serde(default)]
        list: Vec<Inner2>,
    }
    #[derive(Deserialize, Debug, Default)]
    struct Inner2 {
        #[serde(default)]
        ok: Field<bool, Json>,
    }

    #[test]
    fn field_names_come_from_the_struct() {
        assert_eq!(field_names::<Outer>(), &["name", "apiVersion", "inner"]);
        assert_eq!(field_names::<Inner2>(), &["ok"]);
        assert!(field_names::<String>().is_empty(), "not a struct");
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_path() {
        let j: Json = serde_json::from_str(
            r#"{"name":"n","nmae":1,"inner":{"lsit":[],"list":[{"ok":true},{"ok":"yes","k":2}]},"zz":0}"#,
        )
        .unwrap();
        let (o, unknown): (Outer, _) = deserialize_reporting(&j).unwrap();
        let paths: Vec<String> = unknown.iter().map(|p| p.to_string()).collect();
        assert_eq!(paths, ["inner.list[1].k", "inner.lsit", "nmae", "zz"]);
        assert_eq!(
            unknown[0].0,
            [
                Step::Key("inner".into()),
                Step::Key("list".into()),
                Step::Index(1),
                Step::Key("k".into())
            ]
        );
        assert_eq!(o.name, Field::Typed("n".to_string()));
        assert_eq!(o.api_version, Field::Absent);
        let inner = o.inner.unwrap();
        assert_eq!(inner.list[0].ok, Field::Typed(true));
        assert_eq!(inner.list[1].ok, Field::Wrong(Json::from("yes")));
    }

    #[test]
    fn null_is_present_and_wrong_not_absent() {
        let j: Json = serde_json::from_str(r#"{"name":null}"#).unwrap();
        let (o, unknown): (Outer, _) = deserialize_reporting(&j).unwrap();
        assert!(unknown.is_empty());
        assert_eq!(o.name, Field::Wrong(Json::Null));
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str("ok:\n").unwrap();
        let (i, _): (Field<bool, serde_yaml_ng::Value>, Vec<KeyPath>) =
            deserialize_reporting(y.get("ok").unwrap()).unwrap();
        assert_eq!(i, Field::Wrong(serde_yaml_ng::Value::Null));
    }
}
