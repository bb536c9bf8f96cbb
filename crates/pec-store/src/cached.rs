//! `execute` and `query_row` through the connection's prepared statement cache: the
//! writer thread runs the same few statements thousands of times a second, and parsing
//! them anew each time took about 40 % of its time.

use rusqlite::{Connection, Params, Row};

/// [`Connection::execute`] with a cached statement.
pub fn execute(conn: &Connection, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`Connection::query_row`] with a cached statement.
pub fn query_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}
