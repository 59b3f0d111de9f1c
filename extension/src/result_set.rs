//! The result of a query as every output format reads it: column names and
//! rows of values. Its own module so the formats (`output`, `table`) depend
//! on it and not on each other.

use keychain_access_tables::schema::Value;

/// A result set: column names and rows of values.
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}
