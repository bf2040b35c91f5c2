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
//!
//! `[database] url` may list the nodes of a MariaDB Galera cluster. [`connect_node`] takes
//! the first that answers and is Synced, and makes the session's reads causal
//! (`wsrep_sync_wait`), so that a node a few writesets behind does not answer "no such
//! payment" for one committed through another node. [`survey`] is `paysys check-db`'s view
//! of every node.

use std::time::{Duration, Instant};

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

use crate::config::DatabaseConfig;

mod cluster;
pub use cluster::{causal_read_timeout, survey, Membership, NodeSurvey};

/// MySQL error numbers the code reacts to.
pub const ER_DUP_ENTRY: u16 = 1062;
pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
pub const ER_LOCK_DEADLOCK: u16 = 1213;
pub const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
/// "Failed to read auto-increment value from storage engine": how InnoDB reports any
/// failed wait for a table's AUTO-INC lock — a deadlock, which rolled back the whole
/// transaction, or a wait that ran out of `innodb_lock_wait_timeout`, which rolled back
/// the statement alone; `SELECT @@in_transaction` tells which (the ledger asks). In
/// `innodb_autoinc_lock_mode = 1` (the default outside Galera) an `INSERT … SELECT` holds
/// that lock from its first row to its statement's end, waits included, and any insert
/// into the table waits for it.
pub const ER_AUTOINC_READ_FAILED: u16 = 1467;
/// "Record has changed since last read": with `innodb_snapshot_isolation = ON`, a locking
/// read met a row committed after the transaction's read view was made; the transaction
/// is rolled back whole (MariaDB 10.6.20, 10.11.10, 11.4.4, 11.6.2 and later).
pub const ER_CHECKREAD: u16 = 1020;

/// The server's error number, if the error came from the server.
pub fn server_code(e: &mysql::Error) -> Option<u16> {
    match e {
        mysql::Error::MySqlError(m) => Some(m.code),
        _ => None,
    }
}

/// Whether the server ended the transaction as a deadlock victim: rolled back whole, so
/// that it may be made again from its start. The victim's error is 1213, or 1467 when it
/// was waiting for an AUTO-INC lock ([`ER_AUTOINC_READ_FAILED`]; a caller that may meet
/// a 1467 of a lock wait timeout turns that into 1205 first); a Galera certification
/// conflict is reported as 1213 too. A write-write conflict of snapshot isolation
/// ([`ER_CHECKREAD`]) is one as well, where a session runs with it on after all (its
/// set-up turns it off where the server knows it).
pub fn deadlock_victim(e: &mysql::Error) -> bool {
    matches!(
        server_code(e),
        Some(ER_LOCK_DEADLOCK | ER_AUTOINC_READ_FAILED | ER_CHECKREAD)
    )
}

/// Whether `e` is the connection's own failure — the server gone or shutting down, the
/// connection lost, killed or timed out, an I/O or protocol error — after which it is not
/// to be used again; not a statement the server refused (a missing table, a denied grant,
/// a duplicate key), which leaves an autocommitted connection as it was.
pub fn connection_lost(e: &mysql::Error) -> bool {
    match e {
        // ER_SERVER_SHUTDOWN, ER_ABORTING_CONNECTION, ER_NEW_ABORTING_CONNECTION,
        // ER_CONNECTION_KILLED, CR_SERVER_GONE_ERROR, CR_SERVER_LOST,
        // ER_CLIENT_INTERACTION_TIMEOUT.
        mysql::Error::MySqlError(m) => {
            matches!(m.code, 1053 | 1152 | 1184 | 1927 | 2006 | 2013 | 4031)
        }
        _ => true,
    }
}

/// What to do when one of our tables (`sql/paysys.sql`) is missing.
pub const LOAD_OUR_SQL: &str = "load sql/paysys.sql again, which brings our tables up to \
     date (and the grants of sql/grants-*.sql)";

/// The sentence for one of our tables missing: `table` is its name, and what it holds in
/// brackets where that helps.
pub fn our_table_missing(table: &str) -> String {
    format!("table {table} is missing: {LOAD_OUR_SQL}")
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

/// The database node a connection reached: which of `[database] url`, and whether it is a
/// Galera cluster member (then its reads wait for the cluster, see [`connect_node`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// 1-based position in `[database] url`.
    pub index: usize,
    /// `host:port` or the socket path: never the user or the password.
    pub address: String,
    pub cluster: bool,
    /// The server takes `INSERT … SELECT … RETURNING` (MariaDB 10.5 and later; MySQL has no
    /// `RETURNING`): a card order's pay reads the order in its first statement. Learnt
    /// from `@@version` in the session set-up's round trip, once per connection.
    pub returning: bool,
}

impl Node {
    /// `node 2 (10.0.0.2:3306)`, for log lines and errors.
    pub fn describe(&self) -> String {
        format!("node {} ({})", self.index, self.address)
    }
}

/// Connects as `[database] url` says, bounded by `connect_timeout`: [`connect_node`]
/// without telling which node answered.
pub fn connect(config: &DatabaseConfig, usage: Use) -> Result<Conn, String> {
    connect_node(config, usage).map(|(conn, _)| conn)
}

/// Connects to the first of `[database] url` that answers and can serve: a plain server,
/// or a Galera node that is Synced (`wsrep_local_state = 4`). A cluster node that is up but
/// joining, donating or cut off from the primary component is skipped, not used: it would
/// answer from an old state, or refuse every statement. The error names every URL tried
/// and why each failed.
///
/// On a cluster node the session gets `wsrep_sync_wait = 1`: each read first waits until
/// the node has applied every writeset the cluster had committed when the read began. A
/// status, a repeat's stored row or a cancel's lookup must see a payment committed through
/// another node a moment ago; without the wait a lagging node answers "no such payment",
/// a final answer to a payment that exists. A node that cannot catch up within the
/// cluster's `repl.causal_read_timeout` fails the read (ER_LOCK_WAIT_TIMEOUT), which the
/// protocols answer as temporary.
pub fn connect_node(config: &DatabaseConfig, usage: Use) -> Result<(Conn, Node), String> {
    let mut failures = Vec::new();
    for (i, url) in config.urls.iter().enumerate() {
        let mut node = Node {
            index: i + 1,
            address: describe_address(url),
            cluster: false,
            returning: false,
        };
        match open(config, url, usage) {
            Ok((mut conn, Session { cluster, returning })) => {
                node.returning = returning;
                if !cluster && config.urls.len() == 1 {
                    return Ok((conn, node));
                }
                if !cluster {
                    // A list names the nodes of one cluster. A server outside it (a node
                    // restarted on its own for maintenance, an async replica) would take
                    // payments the cluster never sees: lost when it rejoins, and paid again
                    // by a retry that reaches another node.
                    failures.push(format!(
                        "{}: not a Galera cluster member (wsrep_on is off), so not used: a \
                         [database] url list names the nodes of one cluster",
                        node.describe()
                    ));
                    continue;
                }
                node.cluster = true;
                match cluster_session(&mut conn) {
                    Ok(()) => return Ok((conn, node)),
                    Err(why) => failures.push(format!("{}: {why}", node.describe())),
                }
            }
            Err(why) if config.urls.len() == 1 => return Err(why),
            Err(why) => failures.push(format!("{}: {why}", node.describe())),
        }
    }
    Err(format!(
        "no database node can serve: {}",
        failures.join("; ")
    ))
}

/// What a connection's session set-up learnt of its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    /// A Galera cluster member (`@@wsrep_on`).
    cluster: bool,
    /// `INSERT … RETURNING` is understood (see [`Node::returning`]).
    returning: bool,
}

/// Whether a server of this `@@version` takes `INSERT … RETURNING`: MariaDB from 10.5 on.
/// MySQL (`8.0.36`), whose version names no MariaDB, never does.
fn takes_insert_returning(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    // MariaDB 10.x-11.x sends "10.11.19-MariaDB-0+deb12u1"; a proxy may prefix "5.5.5-".
    let version = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) >= (10, 5),
        _ => false,
    }
}

/// One URL: connect, set the session up, and learn whether it is a Galera node
/// (`@@wsrep_on`; a server without Galera support has no such variable at all) and what
/// its statements can do (`@@version`).
fn open(config: &DatabaseConfig, url: &str, usage: Use) -> Result<(Conn, Session), String> {
    let opts = Opts::from_url(url).map_err(|e| format!("database.url: {e}"))?;
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
    // By default the client reconnects over the local socket after a TCP connect to
    // localhost: one more connection per request. Only do that when the admin asks.
    if !url.contains("prefer_socket") {
        builder = builder.prefer_socket(false);
    }
    let mut conn = Conn::new(builder).map_err(|e| format!("cannot connect: {e}"))?;
    // Autocommit is set, not assumed: a server whose default is off (`autocommit=0` in
    // my.cnf, or `init_connect='SET autocommit=0'`, which runs before this) would put every
    // read in an implicit transaction that nothing ends, so a kept connection (FastCGI)
    // would go on reading the snapshot of its first request and miss payments committed
    // since. Payments bring their own transaction (`ledger`) either way. One round trip for
    // the whole set-up: the SET (with a write's lock timeouts), the server's version and
    // the question whether this is a cluster node travel together (tens of microseconds on
    // a local server, against a millisecond or so for the connect).
    let mut init = String::from("SET SESSION autocommit = 1");
    if usage == Use::Write {
        init.push_str(&format!(
            ", innodb_lock_wait_timeout = {0}, lock_wait_timeout = {0}",
            config.lock_timeout
        ));
        // REPEATABLE READ whatever the server's default (some installs and Galera setups
        // run READ COMMITTED): a pay's look for a txn the billing's own script may be
        // writing beside us must lock what it reads (in READ COMMITTED the subqueries of
        // the UPDATE that completes an ABillS pay read a snapshot and lock nothing), and a
        // look first must take its gap locks; otherwise a payment that script commits while
        // we wait for the bill is credited a second time by us. Standard syntax, so MySQL
        // takes it as MariaDB does; it rides in the set-up's round trip.
        init.push_str("; SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    }
    init.push_str("; SELECT @@version; SELECT @@wsrep_on");
    if usage == Use::Write {
        // That REPEATABLE READ is InnoDB's classic one: a locking read waits for a row
        // being written and then reads it as committed. MariaDB 11.6.2 and later (Debian
        // 13's 11.8) default to `innodb_snapshot_isolation = ON`, where a locking read of
        // a row committed after the transaction's first read ends the transaction with
        // error 1020 instead: an ABillS pay reads the bill, then updates it, so pays to
        // one bill at once each answered a temporary error. Turned off wherever the server
        // knows the variable (from 10.6.18, 10.11.8 and 11.4.2 it can be set on by hand).
        // Last in the batch, because servers without it (earlier MariaDB, MySQL) answer
        // 1193, tolerated below; on MySQL the wsrep_on question has already ended the
        // batch, and so it would on a MariaDB built without Galera, where only the retry of
        // a 1020 as a deadlock victim's is left (`deadlock_victim`).
        init.push_str("; SET SESSION innodb_snapshot_isolation = OFF");
    }
    let mut result = conn
        .query_iter(init)
        .map_err(|e| format!("setting up the session: {e}"))?;
    // Three to five result sets: the SETs' (empty) and each SELECT's row. Read set by set: a
    // result's row iterator stops at the end of the set it is in.
    let mut rows = Vec::new();
    while let Some(set) = result.iter() {
        rows.extend(set);
    }
    drop(result);
    let mut session = Session {
        cluster: false,
        returning: false,
    };
    for row in rows {
        match row {
            Ok(row) => {
                let name = row.columns_ref().first().map(|c| c.name_str().into_owned());
                match name.as_deref() {
                    Some("@@version") => {
                        let version = row.get_opt::<String, _>(0).and_then(Result::ok);
                        session.returning = version.is_some_and(|v| takes_insert_returning(&v));
                    }
                    _ => {
                        session.cluster =
                            matches!(row.get_opt::<Option<i64>, _>(0), Some(Ok(Some(1))));
                    }
                }
            }
            // MySQL without Galera: no such variable, so no cluster. A server without
            // snapshot isolation: nothing to turn off.
            Err(e) if server_code(&e) == Some(ER_UNKNOWN_SYSTEM_VARIABLE) => {}
            Err(e) => return Err(format!("setting up the session: {e}")),
        }
    }
    Ok((conn, session))
}

/// A Galera node that can serve (see [`cluster::State::serves`]), then causal reads for
/// the session; else why not.
fn cluster_session(conn: &mut Conn) -> Result<(), String> {
    let state = cluster::state(conn).map_err(|e| format!("reading its cluster state: {e}"))?;
    if !state.serves() {
        return Err(state.why_not());
    }
    // 1 (reads) + 4 (INSERT, REPLACE). Reads: a status, a repeat's stored row, a cancel's
    // lookup. Inserts: a pay's first statement is the INSERT into paysys_txn (or, for a
    // booked order paid the long way, the locking read of the order), so waiting
    // there makes the whole pay see what the cluster had committed when it began: a
    // subscriber created through another node a moment ago, and a repeat's row, whose
    // duplicate key then answers the first answer instead of a certification conflict.
    // Not 2 (UPDATE, DELETE): they come after that INSERT in the same transaction, and
    // each wait is a round through the group.
    conn.query_drop("SET SESSION wsrep_sync_wait = 5")
        .map_err(|e| format!("SET wsrep_sync_wait: {e}"))
}

/// Where a request gets its connection: a new one each time (CGI), or one kept by the
/// worker (FastCGI).
pub struct Connections {
    keep: bool,
    held: Option<Held>,
    /// The current request asked for the connection: its log line names the node.
    used: bool,
    /// The request just done ended healthy on the held connection: [`Connections::after`]
    /// may use it for work after the answer without a ping (a per-request connection is
    /// kept for that until the next request's `get`).
    spare: bool,
    /// The last attempt to connect failed: [`Connections::after`] does not try again for
    /// the same request (a CGI's caller would wait another `connect_timeout` for nothing).
    unreachable: bool,
}

struct Held {
    /// The `[database]` section it was opened with: a config edit reconnects.
    config: DatabaseConfig,
    conn: Conn,
    node: Node,
    /// What it was opened for: a per-request connection opened for reads has no lock
    /// timeouts set, so a later write of the request opens its own.
    usage: Use,
    /// When a cluster node was last asked whether it still serves.
    asked: Instant,
}

/// How often a kept connection's cluster node is asked whether it still serves. The
/// question (`SHOW GLOBAL STATUS`) costs the server far more than a ping — asked before
/// every request, it took persistent checks from 77 % to 27 % of a plain server's rate
/// (bench_7_cluster) — and a node that falls out of sync is left within this much time
/// anyway; meanwhile its reads wait for the cluster or fail as temporary.
const ASK_STATE_EVERY: Duration = Duration::from_secs(1);

impl Connections {
    /// A connection per request, opened for what the request needs and closed after it.
    pub fn per_request() -> Connections {
        Connections {
            keep: false,
            held: None,
            used: false,
            spare: false,
            unreachable: false,
        }
    }

    /// One connection kept across requests while the `[database]` section stays the same.
    pub fn persistent() -> Connections {
        Connections {
            keep: true,
            held: None,
            used: false,
            spare: false,
            unreachable: false,
        }
    }

    /// The connection for this request.
    ///
    /// A kept connection is pinged first (one round trip): the server may have closed it
    /// since the last request (`wait_timeout`, a restart, `KILL`), and a connection that
    /// fails its first statement mid-payment is a temporary error the terminal has to retry,
    /// where a ping's failure costs only a reconnect. On a cluster node the round trip asks
    /// its state instead, once a second at most: a node that no longer serves is left for
    /// the next in the list.
    pub fn get(&mut self, config: &DatabaseConfig, usage: Use) -> Result<&mut Conn, String> {
        self.get_on(config, usage).map(|(conn, _)| conn)
    }

    /// [`Connections::get`], and which node it reached.
    pub fn get_on(
        &mut self,
        config: &DatabaseConfig,
        usage: Use,
    ) -> Result<(&mut Conn, &Node), String> {
        // Within one request, the connection it got serves its later steps too (a card
        // callback's order lookup, then its pay): a CGI request does not connect again, a
        // persistent one does not ping again — the connection answered milliseconds ago.
        let same_request = self.used
            && self.held.as_ref().is_some_and(|h| {
                h.config == *config && (h.usage == Use::Write || usage == Use::Read)
            });
        self.used = true;
        self.spare = false;
        let reusable = same_request
            || self.keep
                && match self.held.as_mut() {
                    // A cluster node may have fallen out of sync since (desynced, a donor, cut
                    // off from the majority): asking its state takes the ping's round trip, and
                    // one that no longer serves is left for the next in the list.
                    Some(h)
                        if h.config == *config
                            && h.node.cluster
                            && h.asked.elapsed() >= ASK_STATE_EVERY =>
                    {
                        h.asked = Instant::now();
                        cluster::state(&mut h.conn).is_ok_and(|state| state.serves())
                    }
                    Some(h) if h.config == *config => h.conn.ping().is_ok(),
                    _ => false,
                };
        if !reusable {
            self.held = None;
            // A kept connection serves checks and pays alike: set the lock timeouts once.
            let usage = if self.keep { Use::Write } else { usage };
            // A reconnect walks `[database] url` from the top again: the first node is
            // the admin's preference, and it may be back.
            let (conn, node) = connect_node(config, usage).inspect_err(|_| {
                self.unreachable = true;
            })?;
            self.unreachable = false;
            self.held = Some(Held {
                config: config.clone(),
                conn,
                node,
                usage,
                asked: Instant::now(),
            });
        }
        match self.held.as_mut() {
            Some(h) => Ok((&mut h.conn, &h.node)),
            None => Err("no connection".into()),
        }
    }

    /// The node of the connection this request used (if it used one), for its log line.
    pub fn node(&self) -> Option<&Node> {
        self.held.as_ref().filter(|_| self.used).map(|h| &h.node)
    }

    /// The request is over. `healthy`: it ended without a database error or a panic, so a
    /// kept connection is in a known state (no transaction open) and may serve the next one.
    pub fn done(&mut self, healthy: bool) {
        self.spare = healthy && self.used && self.held.is_some();
        // A request that asked for no connection learnt nothing about the database.
        if !self.used {
            self.unreachable = false;
        }
        self.used = false;
        if !healthy {
            self.held = None;
        }
        // A per-request connection stays open until `after`, the next `get` (which opens
        // a new one) or the end: the request-history row written after the answer uses it.
    }

    /// A connection for work after a request's answer (its request-history row): the one
    /// the request ended healthy on, as it is — it answered a moment ago, no ping — else
    /// [`Connections::get`]'s.
    pub fn after(&mut self, config: &DatabaseConfig) -> Result<&mut Conn, String> {
        let spare = std::mem::take(&mut self.spare);
        if self.unreachable {
            return Err("the database could not be reached for the request itself".into());
        }
        if !(spare && self.held.as_ref().is_some_and(|h| h.config == *config)) {
            return self.get(config, Use::Read);
        }
        match self.held.as_mut() {
            Some(h) => Ok(&mut h.conn),
            None => Err("no connection".into()),
        }
    }
}

/// `db on host:port` (or `on socket`) from a database URL, without user or password.
pub fn describe_url(url: &str) -> String {
    match Opts::from_url(url) {
        Ok(opts) => format!(
            "{} on {}",
            opts.get_db_name().unwrap_or("(no database named)"),
            describe_address(url)
        ),
        Err(_) => "(database.url cannot be read)".to_string(),
    }
}

/// `host:port` (or the socket) of a database URL, without user or password.
pub fn describe_address(url: &str) -> String {
    match Opts::from_url(url) {
        Ok(opts) => match opts.get_socket() {
            Some(socket) => socket.to_string(),
            None => format!("{}:{}", opts.get_ip_or_hostname(), opts.get_tcp_port()),
        },
        Err(_) => "(database.url cannot be read)".to_string(),
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
            None if table == "paysys_refusal" => {
                problems.push(our_table_missing("paysys_refusal (refused pays)"))
            }
            None if table == "paysys_statement" || table == "paysys_statement_pull" => {
                problems.push(our_table_missing(&format!("{table} (bank statements)")))
            }
            None if table == "paysys_request" => problems.push(our_table_missing(
                "paysys_request (the request history, [log] database = true)",
            )),
            None if table == "paysys_requests" => problems.push(
                "table paysys_requests (ABillS's request history, [log] database = true) is \
                 missing: ABillS before 0.94 has none; turn [log] database off, or create it \
                 from ABillS's db/Paysys.sql"
                    .to_string(),
            ),
            None if table == "paysys_page_miss" => problems.push(our_table_missing(
                "paysys_page_miss (the page's count of accounts tried that name nobody)",
            )),
            None if table == "paysys_order" => problems.push(our_table_missing(
                "paysys_order (EasyPay's booked orders, card orders)",
            )),
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
    // Columns later versions added: a table of an earlier version lacks them.
    let mut later: Vec<(&str, &[&str])> =
        vec![("paysys_txn", &["prv_txn", "cancelled", "domain_id"])];
    if billing_tables.contains(&"paysys_order") {
        later.push((
            "paysys_order",
            &[
                "state",
                "charged",
                "currency",
                "provider_ref",
                "provider_status",
                "status_at",
                "domain_id",
                "valid_until",
                "note",
                "updated",
                "caller_ip",
                "page_url",
                "polled",
                "subscriber_id",
            ],
        ));
    }
    for (table, wanted) in later {
        let columns: Vec<String> = conn.exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ?",
            (table,),
        )?;
        if columns.is_empty() {
            continue;
        }
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| !columns.iter().any(|have| have.eq_ignore_ascii_case(c)))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{table} has no column {} (a table of an earlier version): load \
                 sql/paysys.sql again, which brings the table up to date",
                missing.join(", ")
            ));
        }
    }
    // Columns that must compare exactly, and what goes wrong when they do not.
    for (table, column, why) in [
        (
            "paysys_txn",
            "system_name",
            "compares system names ignoring letter case, so systems QIWI and qiwi would share \
             txn ids",
        ),
        (
            "paysys_txn",
            "txn_id",
            "compares txn ids ignoring letter case, so a payment pba7X would be refused as a \
             repeat of PbA7x",
        ),
        (
            "paysys_order",
            "order_id",
            "compares order ids ignoring letter case, so order pba7X would be taken for PbA7x",
        ),
    ] {
        let collation: Option<Option<String>> = conn.exec_first(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? AND COLUMN_NAME = ?",
            (table, column),
        )?;
        if let Some(Some(collation)) = collation {
            if !collation.ends_with("_bin") {
                problems.push(format!(
                    "{table}.{column} {why} (collation {collation}): load sql/paysys.sql again, \
                     which brings the table up to date"
                ));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_never_show_credentials() {
        assert_eq!(
            describe_address("mysql://paysys:secret@10.0.0.2:3307/abills"),
            "10.0.0.2:3307"
        );
        assert_eq!(
            describe_url("mysql://paysys:secret@10.0.0.2/abills"),
            "abills on 10.0.0.2:3306"
        );
    }

    #[test]
    fn insert_returning_is_mariadb_10_5_and_later() {
        for yes in [
            "10.11.19-MariaDB-0+deb12u1",
            "10.5.0-MariaDB",
            "11.4.2-MariaDB-log",
            "5.5.5-10.6.16-MariaDB",
        ] {
            assert!(takes_insert_returning(yes), "{yes}");
        }
        for no in [
            "10.4.32-MariaDB",
            "10.3.39-MariaDB-0+deb10u1",
            "8.0.36",
            "8.4.0-0ubuntu0.24.04.1",
            "5.7.44-log",
            "MariaDB",
            "",
        ] {
            assert!(!takes_insert_returning(no), "{no}");
        }
    }
}
