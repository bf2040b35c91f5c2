//! The page's guard against probing: the form tells an account that names nobody from one
//! that names somebody (it must — the subscriber has to see a mistyped account), so one
//! caller could learn the ISP's accounts by trying them. Each try that names nobody is a
//! row of `paysys_page_miss` (the caller's address, when); a caller with `[page]
//! misses_per_address` of them in the last hour is answered 429 before any lookup.
//!
//! No order, no payment, nothing of the account is kept: the address and the time only,
//! and rows older than a day are deleted as new ones come. A table of an earlier version
//! of sql/paysys.sql has no `paysys_page_miss`: the page then works without the guard and
//! says so on the log line (check-db names the missing table).

use mysql::prelude::Queryable;
use mysql::Conn;

use crate::db::server_code;

/// "Table doesn't exist".
const ER_NO_SUCH_TABLE: u16 = 1146;

/// How many accounts that name nobody `caller` tried in the last hour; `Ok(None)` when the
/// table is missing (the guard is off until sql/paysys.sql is loaded again).
pub fn misses_last_hour(conn: &mut Conn, caller: &str) -> Result<Option<u64>, mysql::Error> {
    if caller.is_empty() {
        return Ok(Some(0));
    }
    match conn.exec_first::<u64, _, _>(
        "SELECT COUNT(*) FROM paysys_page_miss WHERE caller_ip = ? \
         AND created > NOW() - INTERVAL 1 HOUR",
        (crate::ledger::column_text(caller, 45),),
    ) {
        Ok(n) => Ok(Some(n.unwrap_or(0))),
        Err(e) if server_code(&e) == Some(ER_NO_SUCH_TABLE) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records that `caller` tried an account that names nobody, and deletes a few rows older
/// than a day (a handful per try keeps the table small without a job of its own).
pub fn note_miss(conn: &mut Conn, caller: &str) -> Result<(), mysql::Error> {
    if caller.is_empty() {
        return Ok(());
    }
    conn.exec_drop(
        "INSERT INTO paysys_page_miss (caller_ip, created) VALUES (?, NOW())",
        (crate::ledger::column_text(caller, 45),),
    )?;
    conn.query_drop(
        "DELETE FROM paysys_page_miss WHERE created < NOW() - INTERVAL 1 DAY ORDER BY created LIMIT 10",
    )
}
