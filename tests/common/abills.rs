//! ABillS for the integration tests: a database with ABillS's tables and the fixture rows of
//! `sql/abills.sql`, an install base whose config has `billing = "abills"`, the real
//! `paysys_check` executable run as a web server runs a CGI, and the ABillS rows read back
//! column by column.

use mysql::prelude::Queryable;
use mysql::{Conn, Row, Value};

use super::mariadb::Logged;
use super::{paysys_check_exe, repo, Answer, Site, TestDb};

/// An ABillS on `logged`'s private server (the fixture rows) whose config has these
/// `[[system]]` tables, one of them an OSMP system admitting 192.0.2.7 with `account =
/// "login"`; and the statements a terminal's pay of 10.00 to test1 through it sent the
/// database, credited: the measure another request's statements are held to
/// ([`Logged::assert_no_more`]).
pub fn after_a_terminal_pay(logged: &Logged, systems: &str) -> (Abills, Vec<(String, String)>) {
    let a = Abills::on(TestDb::on_server(&logged.server.url(), &fixture()), systems);
    let before = a.deposit(1);
    let (pay, r) =
        logged.statements(|| a.get_from("192.0.2.7", &super::pay_query("7001", "test1", "10.00")));
    assert_eq!(r.result(), 0, "{r:?}");
    assert_ne!(a.deposit(1), before, "the terminal's pay credited");
    (a, pay)
}

/// What a web server answers for `paysys_check.cgi` when no system admits the caller.
pub const UNKNOWN_SYSTEM: &str = "Error: Unknown payment system";

/// The allow list of the tests' default system: loopback and 10/8 without 10.0.0.13.
pub const DEFAULT_ALLOW: &[&str] = &["127.0.0.1", "::1", "10.0.0.0/8", "!10.0.0.13"];

/// `127.0.0.1` as ABillS stores an address (`INET_ATON`).
pub const LOOPBACK_INT: u64 = 2_130_706_433;

/// ABillS's DDL and the fixture rows.
pub fn fixture() -> String {
    std::fs::read_to_string(repo().join("sql/abills.sql")).expect("sql/abills.sql")
}

/// Whose DDL a test's ABillS tables are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ddl {
    /// ABillS 1.20 (`sql/abills.sql`): `transaction_id` VARCHAR(24), `ext_id` VARCHAR(28).
    V1_20,
    /// ABillS 1.50 (`tests/fixtures/abills-1.50.sql`, ABillS's own DDL unchanged): both
    /// VARCHAR(50).
    V1_50,
}

impl Ddl {
    pub const ALL: [Ddl; 2] = [Ddl::V1_20, Ddl::V1_50];

    /// The DDL and the fixture rows of `sql/abills.sql`.
    pub fn fixture(self) -> String {
        match self {
            Ddl::V1_20 => fixture(),
            Ddl::V1_50 => {
                let ddl = std::fs::read_to_string(repo().join("tests/fixtures/abills-1.50.sql"))
                    .expect("tests/fixtures/abills-1.50.sql");
                let all = fixture();
                let rows = &all[all.find("-- Fixture rows").expect("fixture rows")..];
                format!("{ddl}\n{rows}")
            }
        }
    }

    /// Characters `paysys_log.transaction_id` and `payments.ext_id` hold.
    pub fn widths(self) -> (usize, usize) {
        match self {
            Ddl::V1_20 => (24, 28),
            Ddl::V1_50 => (50, 50),
        }
    }
}

/// One `[[system]]` table speaking OSMP: `name`, admitting `allow`, plus `extra` TOML lines.
pub fn system(name: &str, allow: &[&str], extra: &str) -> String {
    let allow = allow
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("\n[[system]]\nname = \"{name}\"\nprotocol = \"osmp\"\nallow = [{allow}]\n{extra}\n")
}

/// Whether this run pays through ABillS's stored procedure (`PAYSYS_TEST_ABILLS_PROCEDURE=1`):
/// every [`Abills`] database gets `sql/abills-pay.sql` loaded and every [`config_text`]
/// `procedure = true`, so that the ABillS suites prove the one-CALL pay as they prove the
/// statements.
pub fn procedure_run() -> bool {
    std::env::var("PAYSYS_TEST_ABILLS_PROCEDURE").is_ok_and(|v| v == "1")
}

/// Loads `sql/abills-pay.sql` (its `DELIMITER` blocks as the mysql client reads them).
pub fn load_pay_procedure(conn: &mut Conn) {
    let script =
        std::fs::read_to_string(repo().join("sql/abills-pay.sql")).expect("sql/abills-pay.sql");
    let mut delimiter = ";".to_string();
    let mut statement = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if let Some(d) = trimmed.strip_prefix("DELIMITER ") {
            delimiter = d.trim().to_string();
            continue;
        }
        if statement.is_empty() && (trimmed.starts_with("--") || trimmed.is_empty()) {
            continue;
        }
        statement.push_str(line);
        statement.push('\n');
        if trimmed.ends_with(delimiter.as_str()) {
            let text = statement.trim_end().trim_end_matches(delimiter.as_str());
            conn.query_drop(text)
                .unwrap_or_else(|e| panic!("sql/abills-pay.sql: {e}: {text}"));
            statement.clear();
        }
    }
    assert!(
        statement.trim().is_empty(),
        "sql/abills-pay.sql ends inside a statement"
    );
}

/// A whole config for an ABillS database at `db_url` with these `[[system]]` tables
/// (`procedure = true` in a [`procedure_run`]).
pub fn config_text(db_url: &str, systems: &str) -> String {
    config_text_with(db_url, systems, procedure_run())
}

/// [`config_text`], paying through the stored procedure or not, whatever the run.
pub fn config_text_with(db_url: &str, systems: &str, procedure: bool) -> String {
    let procedure = if procedure { "procedure = true\n" } else { "" };
    format!(
        r#"[database]
url = "{db_url}"
billing = "abills"
lock_timeout = 3
{procedure}
[log]
file = "var/log/paysys_check.log"
{systems}"#
    )
}

/// `n` as ABillS stores an IPv4 address.
pub fn inet_aton(ip: &str) -> u64 {
    u64::from(u32::from(ip.parse::<std::net::Ipv4Addr>().expect("IPv4")))
}

/// An ABillS database and an install base pointing at it.
pub struct Abills {
    pub db: TestDb,
    pub site: Site,
}

impl Abills {
    /// The fixture, and one system `osmp` admitting [`DEFAULT_ALLOW`] with `extra` lines.
    pub fn new(extra: &str) -> Abills {
        Abills::with_systems(&system("osmp", DEFAULT_ALLOW, extra))
    }

    /// The fixture, and these `[[system]]` tables.
    pub fn with_systems(systems: &str) -> Abills {
        Abills::on(TestDb::with_fixture(&fixture()), systems)
    }

    /// The fixture on `ddl`'s tables, and these `[[system]]` tables.
    pub fn on_ddl(ddl: Ddl, systems: &str) -> Abills {
        Abills::on(TestDb::with_fixture(&ddl.fixture()), systems)
    }

    /// What ABillS's own script does for a pay, in its non-strict session (so that the
    /// server cuts a text too long for a column, as it did for ABillS): the bill raised, a
    /// `payments` row and then a `paysys_log` row (status 2) with `text` as ext_id and
    /// transaction_id, the request's parameters in `info`. Returns the log row's id, the
    /// `prv_txn` the terminal was answered with.
    pub fn abills_script_pays(
        &self,
        system_id: u8,
        text: &str,
        uid: u64,
        bill_id: u64,
        sum: &str,
        info: &str,
    ) -> u64 {
        let mut conn = self.db.conn();
        conn.query_drop("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
            .unwrap();
        conn.exec_drop(
            "UPDATE bills SET deposit = deposit + ? WHERE id = ?",
            (sum, bill_id),
        )
        .unwrap();
        conn.exec_drop(
            "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, \
             bill_id, inner_describe, amount, currency, reg_date) \
             VALUES (NOW(), ?, 'OSMP Payments', 0, 0, ?, 2, 2, ?, ?, '', ?, 0, NOW())",
            (sum, uid, text, bill_id, sum),
        )
        .unwrap();
        conn.exec_drop(
            "INSERT INTO paysys_log (system_id, datetime, sum, uid, transaction_id, info, \
             paysys_ip, domain_id, status) VALUES (?, NOW(), ?, ?, ?, ?, 0, 0, 2)",
            (system_id, sum, uid, text, info),
        )
        .unwrap();
        conn.last_insert_id()
    }

    /// `db` (already holding the fixture), and these `[[system]]` tables.
    pub fn on(db: TestDb, systems: &str) -> Abills {
        if procedure_run() {
            load_pay_procedure(&mut db.conn());
        }
        let site = Site::new(&db.url, "");
        site.write_config(&config_text(&db.url, systems));
        Abills { db, site }
    }

    /// Replaces the config's systems.
    pub fn set_systems(&self, systems: &str) {
        self.site.write_config(&config_text(&self.db.url, systems));
    }

    /// A GET from 127.0.0.1.
    pub fn get(&self, query: &str) -> Answer {
        self.get_from("127.0.0.1", query)
    }

    /// A GET from `remote_addr`.
    pub fn get_from(&self, remote_addr: &str, query: &str) -> Answer {
        self.cgi(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", remote_addr),
            ],
            b"",
        )
    }

    /// A GET from 127.0.0.1 to `/cgi-bin/paysys_check.cgi<path_info>`.
    pub fn get_at(&self, path_info: &str, query: &str) -> Answer {
        self.cgi(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", "127.0.0.1"),
                ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
                ("PATH_INFO", path_info),
            ],
            b"",
        )
    }

    /// `paysys_check` with these CGI variables (plus `GATEWAY_INTERFACE` and
    /// `PAYSYS_CONFIG`) and stdin, in an otherwise empty environment.
    pub fn cgi(&self, vars: &[(&str, &str)], stdin: &[u8]) -> Answer {
        let config = self.site.config_path().to_string_lossy().into_owned();
        let mut all: Vec<(&str, &str)> =
            vec![("GATEWAY_INTERFACE", "CGI/1.1"), ("PAYSYS_CONFIG", &config)];
        all.extend_from_slice(vars);
        run_paysys_check(&all, stdin)
    }

    /// `bills.deposit` of bill `id`, to the kopeck.
    pub fn deposit(&self, bill_id: u64) -> String {
        self.db
            .conn()
            .exec_first::<String, _, _>(
                "SELECT CAST(deposit AS DECIMAL(24,2)) FROM bills WHERE id = ?",
                (bill_id,),
            )
            .expect("select")
            .expect("bill exists")
    }

    /// Every `payments` row, by id.
    pub fn payments(&self) -> Vec<PaymentRow> {
        self.rows(
            "SELECT id, CAST(sum AS DECIMAL(16,2)), dsc, ip, CAST(last_deposit AS DECIMAL(24,2)), \
             uid, aid, method, ext_id, bill_id, inner_describe, CAST(amount AS DECIMAL(16,2)), \
             currency, TIMESTAMPDIFF(SECOND, date, NOW()), TIMESTAMPDIFF(SECOND, reg_date, NOW()) \
             FROM payments ORDER BY id",
        )
        .into_iter()
        .map(|c| PaymentRow {
            id: num(&c[0]),
            sum: c[1].clone(),
            dsc: c[2].clone(),
            ip: num(&c[3]),
            last_deposit: c[4].clone(),
            uid: num(&c[5]),
            aid: num(&c[6]),
            method: num(&c[7]),
            ext_id: c[8].clone(),
            bill_id: num(&c[9]),
            inner_describe: c[10].clone(),
            amount: c[11].clone(),
            currency: num(&c[12]),
            date_age: c[13].parse().expect("age"),
            reg_date_age: c[14].parse().expect("age"),
        })
        .collect()
    }

    /// The `payments` row with this ext_id.
    pub fn payment(&self, ext_id: &str) -> PaymentRow {
        let mut rows: Vec<PaymentRow> = self
            .payments()
            .into_iter()
            .filter(|p| p.ext_id == ext_id)
            .collect();
        assert_eq!(rows.len(), 1, "payments with ext_id {ext_id}: {rows:?}");
        rows.remove(0)
    }

    /// Every `paysys_log` row, by id.
    pub fn paysys_log(&self) -> Vec<LogRow> {
        self.rows(
            "SELECT id, system_id, CAST(sum AS DECIMAL(16,2)), CAST(commission AS DECIMAL(16,2)), \
             uid, transaction_id, info, ip, HEX(code), paysys_ip, domain_id, status, \
             IFNULL(user_info, 'NULL'), merchant_id, TIMESTAMPDIFF(SECOND, datetime, NOW()) \
             FROM paysys_log ORDER BY id",
        )
        .into_iter()
        .map(|c| LogRow {
            id: num(&c[0]),
            system_id: num(&c[1]),
            sum: c[2].clone(),
            commission: c[3].clone(),
            uid: num(&c[4]),
            transaction_id: c[5].clone(),
            info: c[6].clone(),
            ip: num(&c[7]),
            code_hex: c[8].clone(),
            paysys_ip: num(&c[9]),
            domain_id: num(&c[10]),
            status: num(&c[11]),
            user_info: c[12].clone(),
            merchant_id: num(&c[13]),
            datetime_age: c[14].parse().expect("age"),
        })
        .collect()
    }

    /// The `paysys_log` row with this transaction_id.
    pub fn log_row(&self, transaction_id: &str) -> LogRow {
        let mut rows: Vec<LogRow> = self
            .paysys_log()
            .into_iter()
            .filter(|l| l.transaction_id == transaction_id)
            .collect();
        assert_eq!(
            rows.len(),
            1,
            "paysys_log rows with transaction_id {transaction_id}: {rows:?}"
        );
        rows.remove(0)
    }

    /// Every `paysys_txn` row, by id.
    pub fn txns(&self) -> Vec<TxnRow> {
        self.rows(
            "SELECT id, system_name, txn_id, account, subscriber_id, CAST(amount AS CHAR), \
             payment_ref, prv_txn, cancelled IS NOT NULL, domain_id, caller_ip \
             FROM paysys_txn ORDER BY id",
        )
        .into_iter()
        .map(|c| TxnRow {
            id: num(&c[0]),
            system_name: c[1].clone(),
            txn_id: c[2].clone(),
            account: c[3].clone(),
            subscriber_id: num(&c[4]),
            amount: c[5].clone(),
            payment_ref: num(&c[6]),
            prv_txn: num(&c[7]),
            cancelled: c[8] == "1",
            domain_id: num(&c[9]),
            caller_ip: c[10].clone(),
        })
        .collect()
    }

    /// The `paysys_txn` row of (system, txn_id).
    pub fn txn(&self, system: &str, txn_id: &str) -> TxnRow {
        let mut rows: Vec<TxnRow> = self
            .txns()
            .into_iter()
            .filter(|t| t.system_name == system && t.txn_id == txn_id)
            .collect();
        assert_eq!(rows.len(), 1, "paysys_txn {system}/{txn_id}: {rows:?}");
        rows.remove(0)
    }

    /// Every row of every table, as text: equal snapshots mean nothing changed.
    pub fn snapshot(&self) -> String {
        let mut conn = self.db.conn();
        let mut text = String::new();
        for table in [
            "admins",
            "domains",
            "users",
            "users_pi",
            "bills",
            "companies",
            "`groups`",
            "payments",
            "paysys_log",
            "paysys_connect",
            "paysys_txn",
        ] {
            let rows: Vec<Row> = conn
                .query(format!("SELECT * FROM {table} ORDER BY 1"))
                .unwrap_or_else(|e| panic!("{table}: {e}"));
            text.push_str(&format!("-- {table}\n"));
            for row in rows {
                text.push_str(&format!("{:?}\n", row.unwrap()));
            }
        }
        text
    }

    /// Rows of a text-protocol query, every column as text (`NULL` for NULL).
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let rows: Vec<Row> = self.db.conn().query(sql).expect(sql);
        rows.into_iter()
            .map(|row| row.unwrap().into_iter().map(value_text).collect())
            .collect()
    }
}

/// Runs `paysys_check` as a web server would: a clean environment, the CGI variables, stdin.
pub fn run_paysys_check(vars: &[(&str, &str)], stdin: &[u8]) -> Answer {
    super::run_exe(paysys_check_exe(), vars, stdin)
}

fn value_text(v: Value) -> String {
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn num(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| panic!("'{text}' is not a number"))
}

/// A `payments` row; money as DECIMAL text, dates as their age in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub id: u64,
    pub sum: String,
    pub dsc: String,
    pub ip: u64,
    pub last_deposit: String,
    pub uid: u64,
    pub aid: u64,
    pub method: u64,
    pub ext_id: String,
    pub bill_id: u64,
    pub inner_describe: String,
    pub amount: String,
    pub currency: u64,
    pub date_age: i64,
    pub reg_date_age: i64,
}

/// A `paysys_log` row; `code` as hex, `datetime` as its age in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub id: u64,
    pub system_id: u64,
    pub sum: String,
    pub commission: String,
    pub uid: u64,
    pub transaction_id: String,
    pub info: String,
    pub ip: u64,
    pub code_hex: String,
    pub paysys_ip: u64,
    pub domain_id: u64,
    pub status: u64,
    pub user_info: String,
    pub merchant_id: u64,
    pub datetime_age: i64,
}

/// Our `paysys_txn` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRow {
    pub id: u64,
    pub system_name: String,
    pub txn_id: String,
    pub account: String,
    pub subscriber_id: u64,
    pub amount: String,
    pub payment_ref: u64,
    pub prv_txn: u64,
    pub cancelled: bool,
    pub domain_id: u64,
    pub caller_ip: String,
}
