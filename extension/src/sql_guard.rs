//! What SQL `query`, `pack run` and `pack check` accept: read-only
//! statements, checked by an SQLite authorizer while they are prepared.
//!
//! The allowlist mirrors osquery's own (`sqliteAuthorizer` and
//! `kAllowedSQLitePragmas` in osquery/sql/sqlite_util.{h,cpp}): reads,
//! SELECT, functions, recursive CTEs, and the pragmas `table_info`,
//! `table_xinfo`, `function_list`, `journal_mode`, `case_sensitive_like`
//! and `collation_list`. Offline it is stricter: osquery lets statements
//! write (some extension tables are writable), but here the tables hold the
//! evidence being queried, so INSERT, UPDATE, DELETE, CREATE, DROP and
//! transactions are refused with a message rather than "succeeding" with no
//! output. Whatever opens or creates a file is refused: ATTACH, VACUUM
//! (INTO), a pragma outside the list, `journal_mode` with a value. A
//! statement SQLite does not report as read-only is refused too, whatever
//! the authorizer saw.
//!
//! Both `pack run` and `pack check` go through [`prepare`], so they agree on
//! what is allowed.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, Statement};
use std::cell::RefCell;

/// Pragmas osquery's authorizer allows (read forms only, see [`refusal`]).
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "function_list",
    "journal_mode",
    "case_sensitive_like",
    "collation_list",
];

thread_local! {
    /// Why the authorizer refused the statement being prepared on this
    /// thread (the authorizer runs inside `prepare`, on the caller's thread).
    static REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Install the authorizer on `conn`. Call it once the database is loaded:
/// from then on nothing can change it or reach a file through it.
pub fn seal(conn: &mut Connection) -> anyhow::Result<()> {
    conn.authorizer(Some(|ctx: AuthContext<'_>| match refusal(&ctx.action) {
        None => Authorization::Allow,
        Some(why) => {
            // The first refusal names what the user wrote (DROP TABLE is
            // followed by SQLite's own DELETE on its schema table).
            REFUSED.with(|r| {
                r.borrow_mut().get_or_insert(why);
            });
            Authorization::Deny
        }
    }))
    .map_err(|e| anyhow::anyhow!("installing the SQL authorizer: {e}"))
}

/// The policy: why `action` is refused, or `None` when it is allowed. A
/// verdict, not a failure: the reason becomes [`Refusal::Refused`].
fn refusal(action: &AuthAction<'_>) -> Option<String> {
    match action {
        AuthAction::Select
        | AuthAction::Read { .. }
        | AuthAction::Function { .. }
        | AuthAction::Recursive => None,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            if !ALLOWED_PRAGMAS.contains(&name.as_str()) {
                return Some(format!(
                    "PRAGMA {pragma_name} is not allowed (as in osquery, only {} are)",
                    ALLOWED_PRAGMAS.join(", ")
                ));
            }
            match pragma_value {
                Some(v) if name == "journal_mode" => Some(format!(
                    "PRAGMA journal_mode = {v} would create journal files; only reading it is allowed"
                )),
                _ => None,
            }
        }
        AuthAction::Attach { filename } => Some(format!(
            "ATTACH opens or creates a database file ({filename:?}); only the in-memory tables can be queried"
        )),
        AuthAction::Detach { .. } => Some("DETACH is not allowed".into()),
        AuthAction::Insert { table_name } => Some(writes("INSERT into", table_name)),
        AuthAction::Update { table_name, .. } => Some(writes("UPDATE of", table_name)),
        AuthAction::Delete { table_name } => Some(writes("DELETE from", table_name)),
        AuthAction::DropTable { table_name, .. } | AuthAction::DropTempTable { table_name, .. } => {
            Some(writes("DROP TABLE", table_name))
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Some("transactions are not needed: every statement here is a read-only SELECT".into())
        }
        other => Some(format!(
            "{} is not allowed: only read-only SELECT statements run",
            action_name(other)
        )),
    }
}

fn writes(what: &str, table: &str) -> String {
    // SQLite asks about its schema table first when a statement would
    // DROP, CREATE or ALTER something.
    if matches!(
        table,
        "sqlite_master" | "sqlite_schema" | "sqlite_temp_master" | "sqlite_temp_schema"
    ) {
        return "DROP, CREATE and ALTER change the database schema; only read-only SELECT \
                statements run"
            .into();
    }
    format!(
        "{what} {table} would change the rows being queried; only read-only SELECT statements run \
         (the tables are rebuilt from the captures on every run)"
    )
}

fn action_name(a: &AuthAction<'_>) -> String {
    // `CreateTable { .. }` -> `CreateTable`.
    let dbg = format!("{a:?}");
    dbg.split([' ', '{', '('])
        .next()
        .unwrap_or("this")
        .to_string()
}

/// Prepare `sql` on a sealed connection, refusing what the authorizer
/// refused (with its reason) and any statement that is not read-only.
pub fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<Statement<'c>, Refusal> {
    REFUSED.with(|r| r.borrow_mut().take());
    match conn.prepare(sql) {
        Ok(stmt) => {
            let verb = sql.split_whitespace().next().unwrap_or("").to_uppercase();
            // SQLite counts some read forms of allowed pragmas (journal_mode)
            // as writes; the authorizer has already vetted every pragma.
            if !stmt.readonly() && verb != "PRAGMA" {
                let why = if verb == "VACUUM" {
                    "VACUUM writes a database file; only read-only SELECT statements run".into()
                } else {
                    format!("{verb} writes; only read-only SELECT statements run")
                };
                return Err(Refusal::Refused(why));
            }
            Ok(stmt)
        }
        Err(e) => match REFUSED.with(|r| r.borrow_mut().take()) {
            Some(why) => Err(Refusal::Refused(why)),
            None => Err(Refusal::Sqlite(e)),
        },
    }
}

/// Why a statement did not prepare (callers tell the policy's refusal from
/// SQLite's own error: `pack run` skips a table it does not emulate).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Refused by this module's policy.
    #[error("SQL refused: {0}")]
    Refused(String),
    /// SQLite's own error (syntax, no such table...).
    #[error("SQL error: {0}")]
    Sqlite(rusqlite::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        seal(&mut c).unwrap();
        c
    }

    fn refused(c: &Connection, sql: &str) -> String {
        match prepare(c, sql) {
            Err(Refusal::Refused(why)) => why,
            Err(Refusal::Sqlite(e)) => panic!("{sql}: SQLite error, not a refusal: {e}"),
            Ok(_) => panic!("{sql}: allowed"),
        }
    }

    #[test]
    fn reads_pass_and_writes_and_files_are_refused_with_a_reason() {
        let c = sealed();
        for ok in [
            "SELECT * FROM t",
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x<3) SELECT x FROM n",
            "SELECT upper('a'), count(*) FROM t",
            "PRAGMA table_info(t)",
            "PRAGMA journal_mode",
        ] {
            assert!(prepare(&c, ok).is_ok(), "{ok}");
        }
        assert!(refused(&c, "ATTACH DATABASE '/tmp/x.db' AS x").contains("ATTACH"));
        assert!(refused(&c, "VACUUM INTO '/tmp/x.db'").contains("VACUUM"));
        assert!(refused(&c, "DELETE FROM t").contains("DELETE"));
        assert!(refused(&c, "INSERT INTO t VALUES (2)").contains("INSERT"));
        assert!(refused(&c, "UPDATE t SET a = 2").contains("UPDATE"));
        let d = refused(&c, "DROP TABLE t");
        assert!(d.contains("DROP"), "{d}");
        assert!(refused(&c, "CREATE TABLE u (b)").contains("CREATE"));
        assert!(refused(&c, "PRAGMA journal_mode = WAL").contains("journal"));
        assert!(refused(&c, "PRAGMA temp_store_directory = '/tmp'").contains("not allowed"));
        assert!(refused(&c, "BEGIN").contains("transactions"));
        // SQLite's own errors stay SQLite's.
        assert!(matches!(prepare(&c, "SELEC 1"), Err(Refusal::Sqlite(_))));
        // Nothing changed.
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
