//! osquery query constraints, pushed into SQL as bound parameters.
//!
//! osquery sends the constraints SQLite gave it as a JSON string (the
//! request's `context`): `{"constraints":[{"name":"time","list":[{"op":32,
//! "expr":"1754550000"}],"affinity":"BIGINT"}],"colsUsed":[...]}`. Older
//! osquery sent `op` as a string and an empty `list` as `""`; both are
//! accepted (as osquery-go does). Pushing constraints down is only an
//! optimisation — osquery's SQLite filters the rows again — so a constraint
//! is pushed only when our SQL can select a superset of what osquery's
//! filter keeps: unknown columns and operators are ignored, never guessed.
//! A constraint value is always a bound parameter, never SQL text.

use crate::schema::{column, ColumnType, Value};
use serde::Deserialize;

/// osquery's ConstraintOperator values.
pub mod op {
    pub const EQUALS: i64 = 2;
    pub const GREATER_THAN: i64 = 4;
    pub const LESS_THAN_OR_EQUALS: i64 = 8;
    pub const LESS_THAN: i64 = 16;
    pub const GREATER_THAN_OR_EQUALS: i64 = 32;
    pub const LIKE: i64 = 65;
    pub const GLOB: i64 = 66;
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("query context is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("query context: {0}")]
    Shape(String),
}

#[derive(Debug, Deserialize)]
struct RawContext {
    #[serde(default)]
    constraints: Vec<RawConstraintList>,
    #[serde(default, rename = "colsUsed")]
    cols_used: Option<Vec<String>>,
}

/// The columns a query uses (osquery's `colsUsed`), when osquery sent them:
/// a table need not fill the others. Unknown names are dropped; `None` means
/// "all columns".
pub fn cols_used(json: &str) -> Option<Vec<String>> {
    let raw: RawContext = serde_json::from_str(json).ok()?;
    let cols: Vec<String> = raw
        .cols_used?
        .into_iter()
        .filter(|c| column(c).is_some())
        .collect();
    (!cols.is_empty()).then_some(cols)
}

#[derive(Debug, Deserialize)]
struct RawConstraintList {
    name: String,
    #[serde(default)]
    list: RawList,
}

#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum RawList {
    Items(Vec<RawConstraint>),
    Empty(String),
    #[default]
    Missing,
}

#[derive(Debug, Deserialize)]
struct RawConstraint {
    op: RawOp,
    expr: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawOp {
    Num(i64),
    Str(String),
}

/// One usable constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub column: &'static str,
    pub op: i64,
    pub value: Value,
}

/// Maximum length of a constraint value we push down (longer ones are left
/// to osquery's own filtering).
pub const MAX_EXPR_LEN: usize = 4096;

/// Parse osquery's context JSON. Unknown columns and operators are dropped
/// (osquery filters again); malformed JSON is an error.
pub fn parse_context(json: &str) -> Result<Vec<Constraint>, ContextError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let raw: RawContext = serde_json::from_str(json)?;
    let mut out = Vec::new();
    for c in raw.constraints {
        let Some(col) = column(&c.name) else {
            continue;
        };
        let items = match c.list {
            RawList::Items(v) => v,
            RawList::Empty(s) if s.is_empty() => Vec::new(),
            RawList::Empty(s) => {
                return Err(ContextError::Shape(format!(
                    "constraint list for `{}` is a non-empty string: {s:.40}",
                    c.name
                )))
            }
            RawList::Missing => Vec::new(),
        };
        for item in items {
            let op = match item.op {
                RawOp::Num(n) => n,
                RawOp::Str(s) => match s.trim().parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => {
                        return Err(ContextError::Shape(format!(
                            "operator `{s:.20}` is not a number"
                        )))
                    }
                },
            };
            let expr = match item.expr {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => continue,
                other => {
                    return Err(ContextError::Shape(format!(
                        "constraint value for `{}` has JSON type {}",
                        c.name,
                        match other {
                            serde_json::Value::Bool(_) => "bool",
                            serde_json::Value::Array(_) => "array",
                            _ => "object",
                        }
                    )))
                }
            };
            if expr.len() > MAX_EXPR_LEN {
                continue;
            }
            let numeric = matches!(col.kind, ColumnType::BigInt | ColumnType::Integer);
            let value = match (op, numeric) {
                (
                    op::EQUALS
                    | op::GREATER_THAN
                    | op::GREATER_THAN_OR_EQUALS
                    | op::LESS_THAN
                    | op::LESS_THAN_OR_EQUALS,
                    true,
                ) => match expr.trim().parse::<i64>() {
                    Ok(n) => Value::Int(n),
                    // A non-integer bound on an integer column: leave it to osquery.
                    Err(_) => continue,
                },
                (op::EQUALS | op::LIKE | op::GLOB, false) => Value::Text(expr),
                // osquery never sends range operators on TEXT columns; LIKE/GLOB
                // on integer columns and everything else are left to osquery.
                _ => continue,
            };
            out.push(Constraint {
                column: col.name,
                op,
                value,
            });
        }
    }
    Ok(out)
}

/// A WHERE clause (without the keyword; `1` when empty) and its parameters.
pub fn where_clause(constraints: &[Constraint]) -> (String, Vec<Value>) {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for c in constraints {
        let sql_op = match c.op {
            op::EQUALS => "=",
            op::GREATER_THAN => ">",
            op::GREATER_THAN_OR_EQUALS => ">=",
            op::LESS_THAN => "<",
            op::LESS_THAN_OR_EQUALS => "<=",
            op::LIKE => "LIKE",
            op::GLOB => "GLOB",
            _ => continue,
        };
        // Column names come from the schema, never from the request.
        parts.push(format!("{} {} ?", c.column, sql_op));
        params.push(c.value.clone());
    }
    if parts.is_empty() {
        ("1".to_string(), params)
    } else {
        (parts.join(" AND "), params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_current_and_legacy_shapes() {
        let c = parse_context(
            r#"{"constraints":[{"name":"time","list":[{"op":32,"expr":"100"},{"op":16,"expr":"200"}],"affinity":"BIGINT"},
               {"name":"path","list":[{"op":65,"expr":"%security%"}],"affinity":"TEXT"},
               {"name":"pid","list":"","affinity":"BIGINT"},
               {"name":"action","list":[{"op":"2","expr":"dump_keychain"}],"affinity":"TEXT"}],
              "colsUsed":["time"],"colsUsedBitset":1}"#,
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        let (w, p) = where_clause(&c);
        assert_eq!(w, "time >= ? AND time < ? AND path LIKE ? AND action = ?");
        assert_eq!(p[0], Value::Int(100));
    }

    #[test]
    fn hostile_values_stay_parameters() {
        let c = parse_context(
            r#"{"constraints":[{"name":"path","list":[{"op":2,"expr":"x' OR 1=1; DROP TABLE t; --"}]},
               {"name":"nosuchcol","list":[{"op":2,"expr":"1"}]},
               {"name":"time","list":[{"op":4,"expr":"abc"},{"op":99,"expr":"1"}]}]}"#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        let (w, p) = where_clause(&c);
        assert_eq!(w, "path = ?");
        assert_eq!(p, vec![Value::Text("x' OR 1=1; DROP TABLE t; --".into())]);
    }

    #[test]
    fn cols_used_is_read_when_present() {
        assert_eq!(
            cols_used(r#"{"constraints":[],"colsUsed":["time","path","nope"],"colsUsedBitset":3}"#),
            Some(vec!["time".to_string(), "path".to_string()])
        );
        assert_eq!(cols_used(r#"{"constraints":[]}"#), None);
        assert_eq!(cols_used(r#"{"colsUsed":[]}"#), None);
    }

    #[test]
    fn malformed_context_is_an_error() {
        assert!(parse_context("{not json").is_err());
        assert!(parse_context(
            r#"{"constraints":[{"name":"pid","list":[{"op":"x","expr":"1"}]}]}"#
        )
        .is_err());
        assert!(
            parse_context(r#"{"constraints":[{"name":"pid","list":[{"op":2,"expr":[1]}]}]}"#)
                .is_err()
        );
        assert!(parse_context("").unwrap().is_empty());
    }
}
