//! MySQL/MariaDB connections, with the timeouts a terminal needs.
//!
//! A CGI process lives for one request: connect, do the work, exit. A FastCGI worker
//! ([`crate::fastcgi`]) keeps its connection from one request to the next, which saves the
//! connect and lets the driver's statement cache save the `PREPARE`s. [`Connections`] is
//! both, so the pipeline does not care which mode it runs in.
//! Every statement elsewhere is a prepared statement with `?` parameters.
//!
//! A connection does not trust the server's session defaults: [`connect`] turns
//! autocommit on (see there why), whatever my.cnf or `init_connect` say.

use std::time::Duration;

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

use crate::config::DatabaseConfig;

/// MySQL error numbers the code reacts to.
pub const ER_DUP_ENTRY: u16 = 1062;
pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
pub const ER_LOCK_DEADLOCK: u16 = 1213;

/// The server's error number, if the error came from the server.
pub fn server_code(e: &mysql::Error) -> Option<u16> {
    match e {
        mysql::Error::MySqlError(m) => Some(m.code),
        _ => None,
    }
}

/// What a connection will be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Plain `SELECT`s: consistent reads take no row locks, so no lock timeout is needed.
    Read,
    /// A payment: row-lock waits are bounded by `lock_timeout`, so that a stuck lock becomes
    /// a retryable answer, not a hang.
    Write,
}

/// Connects as `[database] url` says, bounded by `connect_timeout`.
pub fn connect(config: &DatabaseConfig, usage: Use) -> Result<Conn, String> {
    let opts = Opts::from_url(&config.url).map_err(|e| format!("database.url: {e}"))?;
    let connect = Duration::from_secs(u64::from(config.connect_timeout.max(1)));
    // A statement may wait `lock_timeout` for a lock on the server; give the socket more.
    let io = Duration::from_secs(u64::from(config.lock_timeout) + 20);
    let mut builder = OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(connect))
        .read_timeout(Some(io))
        .write_timeout(Some(io))
        // UPDATE reports rows matched, not rows changed: "did the subscriber exist".
        .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS)
        // Known up front, the client need not ask the server (`SELECT @@max_allowed_packet`,
        // a round trip per request); our packets are a few hundred bytes.
        .max_allowed_packet(Some(4 * 1024 * 1024));
    // Autocommit is set, not assumed: a server whose default is off (`autocommit=0` in
    // my.cnf, or `init_connect='SET autocommit=0'`, which runs before this) would put every
    // read in an implicit transaction that nothing ends, so a kept connection (FastCGI)
    // would go on reading the snapshot of its first request and miss payments committed
    // since. Payments bring their own transaction (`ledger`) either way. One statement, so
    // one round trip: a write's lock timeouts share it; a read pays this round trip alone
    // (tens of microseconds on a local server, against a millisecond or so for the connect).
    let mut init = String::from("SET SESSION autocommit = 1");
    if usage == Use::Write {
        init.push_str(&format!(
            ", innodb_lock_wait_timeout = {0}, lock_wait_timeout = {0}",
            config.lock_timeout
        ));
    }
    builder = builder.init(vec![init]);
    // By default the client reconnects over the local socket after a TCP connect to
    // localhost: one more connection per request. Only do that when the admin asks.
    if !config.url.contains("prefer_socket") {
        builder = builder.prefer_socket(false);
    }
    // The init statement runs inside `Conn::new`; its failure fails the connect.
    Conn::new(builder).map_err(|e| format!("cannot connect: {e}"))
}

/// Where a request gets its connection: a new one each time (CGI), or one kept by the
/// worker (FastCGI).
pub struct Connections {
    keep: bool,
    held: Option<Held>,
}

struct Held {
    /// The `[database]` section it was opened with: a config edit reconnects.
    config: DatabaseConfig,
    conn: Conn,
}

impl Connections {
    /// A connection per request, opened for what the request needs and closed after it.
    pub fn per_request() -> Connections {
        Connections {
            keep: false,
            held: None,
        }
    }

    /// One connection kept across requests while the `[database]` section stays the same.
    pub fn persistent() -> Connections {
        Connections {
            keep: true,
            held: None,
        }
    }

    /// The connection for this request.
    ///
    /// A kept connection is pinged first (one round trip): the server may have closed it
    /// since the last request (`wait_timeout`, a restart, `KILL`), and a connection that
    /// fails its first statement mid-payment is a temporary error the terminal has to retry,
    /// where a ping's failure costs only a reconnect.
    pub fn get(&mut self, config: &DatabaseConfig, usage: Use) -> Result<&mut Conn, String> {
        let reusable = self.keep
            && match self.held.as_mut() {
                Some(h) if h.config == *config => h.conn.ping().is_ok(),
                _ => false,
            };
        if !reusable {
            self.held = None;
            // A kept connection serves checks and pays alike: set the lock timeouts once.
            let usage = if self.keep { Use::Write } else { usage };
            let conn = connect(config, usage)?;
            self.held = Some(Held {
                config: config.clone(),
                conn,
            });
        }
        match self.held.as_mut() {
            Some(h) => Ok(&mut h.conn),
            None => Err("no connection".into()),
        }
    }

    /// The request is over. `healthy`: it ended without a database error or a panic, so a
    /// kept connection is in a known state (no transaction open) and may serve the next one.
    pub fn done(&mut self, healthy: bool) {
        if !self.keep || !healthy {
            self.held = None;
        }
    }
}

/// A row as the admin reads it: each column's name and its value as text (`NULL` for NULL,
/// bytes as UTF-8 with anything else replaced).
pub fn row_fields(row: mysql::Row) -> Vec<(String, String)> {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    names
        .into_iter()
        .zip(row.unwrap())
        .map(|(name, value)| {
            let text = match value {
                mysql::Value::NULL => "NULL".to_string(),
                mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                mysql::Value::Int(i) => i.to_string(),
                mysql::Value::UInt(u) => u.to_string(),
                mysql::Value::Float(f) => f.to_string(),
                mysql::Value::Double(d) => d.to_string(),
                other => other.as_sql(true).trim_matches('\'').to_string(),
            };
            (name, text)
        })
        .collect()
}

/// What `paysys check-db` found wrong with the database, one sentence each, saying what to do.
pub fn schema_problems(
    conn: &mut Conn,
    billing_tables: &[&str],
) -> Result<Vec<String>, mysql::Error> {
    let mut problems = Vec::new();
    for table in billing_tables
        .iter()
        .copied()
        .chain(["paysys_txn", "paysys_refusal"])
    {
        let engine: Option<Option<String>> = conn.exec_first(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )?;
        match engine.flatten() {
            None if table == "paysys_txn" => {
                problems.push("table paysys_txn is missing: load sql/paysys.sql into this database".to_string())
            }
            None if table == "paysys_refusal" => problems.push(
                "table paysys_refusal (refused pays) is missing: load sql/paysys.sql again, \
                 which brings our tables up to date"
                    .to_string(),
            ),
            None if table == "paysys_order" => problems.push(
                "table paysys_order (EasyPay's booked orders) is missing: load sql/paysys.sql \
                 again, which brings our tables up to date"
                    .to_string(),
            ),
            None => problems.push(format!("table {table} is missing: is [database] url the billing's database?")),
            Some(e) if !e.eq_ignore_ascii_case("InnoDB") => problems.push(format!(
                "table {table} is ENGINE={e}: a payment cannot be undone on it, so a crash mid-payment \
                 could credit without a record; run ALTER TABLE {table} ENGINE=InnoDB"
            )),
            Some(_) => {}
        }
    }
    let unique: Option<u64> = conn.query_first(
        "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = 'paysys_txn' AND INDEX_NAME = 'system_txn' AND NON_UNIQUE = 0",
    )?;
    if unique == Some(0)
        && problems
            .iter()
            .all(|p| !p.contains("paysys_txn is missing"))
    {
        problems.push(
            "paysys_txn has no UNIQUE key system_txn (system_name, txn_id): reload sql/paysys.sql"
                .into(),
        );
    }
    let columns: Vec<String> = conn.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = 'paysys_txn'",
    )?;
    if !columns.is_empty() {
        let missing: Vec<&str> = ["prv_txn", "cancelled", "domain_id"]
            .into_iter()
            .filter(|c| !columns.iter().any(|have| have.eq_ignore_ascii_case(c)))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "paysys_txn has no column {} (a table of an earlier version): load \
                 sql/paysys.sql again, which brings the table up to date",
                missing.join(", ")
            ));
        }
    }
    let collation: Option<Option<String>> = conn.query_first(
        "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = 'paysys_txn' AND COLUMN_NAME = 'system_name'",
    )?;
    if let Some(Some(collation)) = collation {
        if !collation.ends_with("_bin") {
            problems.push(format!(
                "paysys_txn.system_name compares system names ignoring letter case (collation \
                 {collation}), so systems QIWI and qiwi would share txn ids: load sql/paysys.sql \
                 again, which brings the table up to date"
            ));
        }
    }
    Ok(problems)
}
