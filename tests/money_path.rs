//! The money path's edges: retries that must keep their first answer whatever changed since,
//! system identity, a commit whose answer never came, clock changes, and `status` racing a
//! pay. Each test runs the real `osmp` executable (or the ledger itself) against a real
//! MariaDB, one database per test.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use common::{pay_query, txn_date, Site, TestDb};
use mysql::prelude::Queryable;

fn set_config(site: &Site, from: &str, to: &str) {
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    assert!(config.contains(from), "{from} not in the config");
    site.write_config(&config.replace(from, to));
}

fn paysys(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

// ----- a retry keeps its first answer --------------------------------------------------------

#[test]
fn a_retry_after_the_window_or_the_limits_changed_gets_its_first_answer() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    // Paid 20 hours into a 24-hour window...
    let query = format!(
        "command=pay&txn_id=4242&account=59071&sum=500&txn_date={}",
        txn_date(-20 * 60)
    );
    let first = site.get(&query);
    assert_eq!(first.result(), 0, "{}", first.body);
    assert_eq!(db.balance(5907), "600.00");

    // ...and retried after its window closed (here: the window shrank, the same thing as
    // far as the txn_date check goes), then after the admin lowered max_sum below it.
    set_config(&site, "txn_window_hours = 24", "txn_window_hours = 1");
    let late = site.get(&query);
    assert_eq!(
        (late.result(), late.prv_txn()),
        (0, first.prv_txn()),
        "a committed pay retried out of its window: {}",
        late.body
    );
    set_config(&site, "max_sum = \"15000.00\"", "max_sum = \"100.00\"");
    let over = site.get(&query);
    assert_eq!(
        (over.result(), over.prv_txn()),
        (0, first.prv_txn()),
        "a committed pay retried above today's max_sum: {}",
        over.body
    );
    assert_eq!(db.balance(5907), "600.00", "credited once");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    let log = site.log();
    assert_eq!(
        log.matches("repeat: first answer returned").count(),
        2,
        "{log}"
    );

    // The same txn with another sum is still a conflict, not a limit refusal.
    let other = site.get(&query.replace("sum=500", "sum=501"));
    assert_eq!(
        (other.result(), other.comment().as_str()),
        (7, "nod11"),
        "{}",
        other.body
    );

    // A new payment outside today's limits is refused as before, and writes nothing.
    let new_late = site.get(
        &query
            .replace("txn_id=4242", "txn_id=4243")
            .replace("sum=500", "sum=50"),
    );
    assert_eq!(new_late.comment(), "nod12", "{}", new_late.body);
    let new_over = site.get(&pay_query("4244", "59071", "500"));
    assert_eq!(new_over.result(), 242, "{}", new_over.body);
    assert_eq!((db.pays(), db.txns()), (1, 1));
}

#[test]
fn a_pay_outside_the_limits_is_temporary_when_the_ledger_cannot_be_asked() {
    // Without the database we cannot tell a new pay from the retry of a committed one: a
    // final refusal could be wrong, so the answer is "try again later".
    let site = Site::new("mysql://root@127.0.0.1:9/nodeny", "");
    let a = site.get(&format!(
        "command=pay&txn_id=7&account=59071&sum=1&txn_date={}",
        txn_date(-48 * 60)
    ));
    assert_eq!(a.result(), 1, "{}", a.body);
    // A check needs no ledger to be refused.
    let a = site.get("command=check&account=59071&sum=99999");
    assert_eq!(a.result(), 242, "{}", a.body);
}

// ----- system identity -----------------------------------------------------------------------

fn pay(txn: &str, sum: &str) -> paysys::outcome::Pay {
    use paysys::domain::{Account, AccountKey, Amount, TxnDate, TxnId};
    let now = chrono::Local::now().naive_local();
    paysys::outcome::Pay {
        txn_id: TxnId::parse(txn).unwrap(),
        account: Account::parse("59071", AccountKey::PaymentCode).unwrap(),
        sum: Amount::parse(sum).unwrap(),
        txn_date: TxnDate::parse("now", now, true).unwrap(),
    }
}

/// A system of the tests' config, renamed.
fn system_named(name: &str) -> paysys::config::System {
    let text = common::config_text("mysql://x@127.0.0.1/x", &["127.0.0.1"], "")
        .replace("name = \"osmp\"", &format!("name = \"{name}\""));
    let config = paysys::config::Config::from_sources(
        std::path::PathBuf::from("/tmp"),
        &[(std::path::PathBuf::from("paysys.toml"), text)],
    )
    .unwrap();
    config.systems[0].clone()
}

#[test]
fn systems_whose_names_differ_in_case_do_not_share_txn_ids() {
    use paysys::ledger::{self, Paid, PayOrder};
    let db = TestDb::new();
    let billing = paysys::billing::of(paysys::config::BillingKind::NoDeny);
    let mut conn = db.conn();
    let (qiwi, upper) = (system_named("qiwi"), system_named("QIWI"));
    let pay = pay("900", "1.00");
    let order = |system| PayOrder {
        system,
        pay: &pay,
        caller: None,
        domain: Default::default(),
        params: &[],
        booked: None,
        word: None,
        pinned: None,
        created: None,
        one_call: false,
    };
    let lower = ledger::pay(&mut conn, billing, &order(&qiwi)).unwrap();
    let second = ledger::pay(&mut conn, billing, &order(&upper)).unwrap();
    assert!(matches!(lower, Paid::New { .. }), "{lower:?}");
    assert!(
        matches!(second, Paid::New { .. }),
        "QIWI's txn 900 taken for qiwi's: {second:?}"
    );
    assert_eq!(db.txns(), 2);
    let again = ledger::pay(&mut conn, billing, &order(&upper)).unwrap();
    assert!(matches!(again, Paid::Repeat { .. }), "{again:?}");
}

#[test]
fn an_older_paysys_txn_is_flagged_and_brought_up_to_date() {
    let paysys_sql = std::fs::read_to_string(common::repo().join("sql/paysys.sql")).unwrap();
    // The table as the first version created it: system_name in the database's collation.
    let create = &paysys_sql[paysys_sql.find("CREATE TABLE").unwrap()..];
    let create = &create[..create.find(';').unwrap()];
    let old = regex_free_column(create);
    let fixture = std::fs::read_to_string(common::repo().join("sql/nodeny.sql")).unwrap();
    let db = TestDb::with_fixture(&format!(
        "DROP TABLE paysys_txn;\n{old};\nINSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, created) VALUES ('osmp', '1', '59071', 5907, 1, NOW(), NOW());\n{fixture}"
    ));
    let site = Site::new(&db.url, "");
    let config = site.config_path();
    let (code, out) = paysys(&["check-db", config.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("ignoring letter case") && out.contains("load sql/paysys.sql again"),
        "{out}"
    );
    common::run_script(&mut db.conn(), &paysys_sql);
    let (code, out) = paysys(&["check-db", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(db.txns(), 1, "the upgrade keeps the rows");
    let collation: String = db
        .conn()
        .query_first(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'paysys_txn' AND COLUMN_NAME = 'system_name'",
        )
        .unwrap()
        .unwrap();
    assert_eq!(collation, "ascii_bin");
}

/// `CREATE TABLE` text with `system_name` as the first version declared it.
fn regex_free_column(create: &str) -> String {
    let start = create.find("system_name").unwrap();
    let end = start + create[start..].find('\n').unwrap();
    format!(
        "{}system_name   VARCHAR(32)     NOT NULL,{}",
        &create[..start],
        &create[end..]
    )
}

// ----- a commit whose answer never came ------------------------------------------------------

/// A TCP proxy to the test server that passes everything through until the client sends
/// `COMMIT`: that is delivered, the server's answer to it is swallowed, and the client's
/// connection is cut. The server has committed; the client cannot know.
struct CommitCutter {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl CommitCutter {
    fn start() -> CommitCutter {
        let upstream = common::server_url();
        let host_port = upstream
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('@').next_back())
            .and_then(|rest| rest.split(['/', '?']).next())
            .filter(|hp| hp.contains(':'))
            .unwrap_or_else(|| panic!("the commit test needs a TCP test server, not {upstream}"))
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&host_port) else {
                    return;
                };
                let seen_commit = Arc::new(AtomicBool::new(false));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let seen = seen_commit.clone();
                // client → server: watch for COMMIT.
                std::thread::spawn(move || {
                    pump(c2, s2, |chunk| {
                        if chunk.windows(7).any(|w| w == b"\x03COMMIT") {
                            seen.store(true, Ordering::SeqCst);
                        }
                    })
                });
                // server → client: once COMMIT went out, its answer is swallowed and the
                // client cut off.
                let cut = cut_flag.clone();
                std::thread::spawn(move || {
                    let mut server = server;
                    let mut client = client;
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if seen_commit.load(Ordering::SeqCst) {
                            cut.store(true, Ordering::SeqCst);
                            break;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                });
            }
        });
        CommitCutter { port, cut }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, mut watch: impl FnMut(&[u8])) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        watch(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn a_commit_without_an_answer_is_logged_as_unknown_and_the_retry_tells() {
    let db = TestDb::new();
    let cutter = CommitCutter::start();
    let proxied = db.url.replacen(
        &common::server_url()
            .split('@')
            .next_back()
            .unwrap()
            .trim_end_matches('/')
            .to_string(),
        &format!("127.0.0.1:{}", cutter.port),
        1,
    );
    assert_ne!(proxied, db.url);
    let site = Site::new(&proxied, "");
    let query = pay_query("6060", "59071", "25.00");
    let a = site.get(&query);
    assert!(
        cutter.cut.load(Ordering::SeqCst),
        "the proxy never saw COMMIT"
    );
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod19"),
        "temporary: {}",
        a.body
    );
    let log = site.log();
    assert!(log.contains("commit outcome unknown"), "{log}");
    assert!(!log.contains("payment not written"), "{log}");

    // The database has the truth: committed.
    assert_eq!(db.balance(5907), "125.00");
    assert_eq!(db.txns(), 1);
    let direct = Site::new(&db.url, "");
    let (code, out) = paysys(&[
        "txn",
        "6060",
        "--system",
        "osmp",
        "--config",
        direct.config_path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("committed: txn_id 6060 of system osmp"),
        "{out}"
    );
    assert!(out.contains("25.00"), "{out}");
    assert!(out.contains("\n  pays\n"), "NoDeny's row too: {out}");
    let (code, out) = paysys(&[
        "txn",
        "6061",
        "--config",
        direct.config_path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not committed"), "{out}");

    // The terminal's retry gets the first answer; nothing more is credited.
    let retry = direct.get(&query);
    assert_eq!(retry.result(), 0, "{}", retry.body);
    assert_eq!(db.balance(5907), "125.00");
}

// ----- clock changes -------------------------------------------------------------------------

/// The last Sunday of `month` in `year`, at `hour`:30 local.
fn last_sunday(year: i32, month: u32, hour: u32) -> NaiveDateTime {
    let mut day = NaiveDate::from_ymd_opt(year, month + 1, 1).unwrap() - chrono::Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= chrono::Duration::days(1);
    }
    day.and_hms_opt(hour, 30, 0).unwrap()
}

/// Of this year's, last year's and next year's, the one nearest to now.
fn nearest(month: u32, hour: u32) -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    (now.year() - 1..=now.year() + 1)
        .map(|y| last_sunday(y, month, hour))
        .min_by_key(|t| (*t - now).num_seconds().abs())
        .unwrap()
}

#[test]
fn txn_dates_at_clock_changes_are_read_with_the_offset_before_the_change() {
    let zone = ["Europe/Kyiv", "Europe/Kiev", "Europe/Helsinki"]
        .into_iter()
        .find(|z| std::path::Path::new("/usr/share/zoneinfo").join(z).exists())
        .expect("tzdata: /usr/share/zoneinfo/Europe/Kyiv is missing; apt-get install tzdata");
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    set_config(&site, "txn_window_hours = 24", "txn_window_hours = 8784");
    // EU rules: summer time from the last Sunday of March, 03:00 → 04:00 local (01:00 UTC);
    // back on the last Sunday of October, 04:00 → 03:00 local (01:00 UTC).
    let cases = [
        // 03:30 does not exist: read as EET (+02:00), before the jump.
        (nearest(3, 3), chrono::Duration::hours(2), "skipped"),
        // 03:30 happens twice: the first one, EEST (+03:00).
        (nearest(10, 3), chrono::Duration::hours(3), "doubled"),
    ];
    for (n, (local, offset, what)) in cases.iter().enumerate() {
        let txn = format!("{}", 7000 + n);
        let a = site.cgi(
            &[
                ("REQUEST_METHOD", "GET"),
                (
                    "QUERY_STRING",
                    &format!(
                        "command=pay&txn_id={txn}&account=59071&sum=1&txn_date={}",
                        local.format("%Y%m%d%H%M%S")
                    ),
                ),
                ("REMOTE_ADDR", "127.0.0.1"),
                ("TZ", zone),
            ],
            b"",
        );
        assert_eq!(a.result(), 0, "{what}: {}", a.body);
        let time: i64 = db
            .conn()
            .exec_first(
                "SELECT time FROM pays WHERE reason = ?",
                (format!("osmp txn_id={txn}"),),
            )
            .unwrap()
            .unwrap();
        let expected = (*local - *offset).and_utc().timestamp();
        assert_eq!(
            time - expected,
            0,
            "{what} {local} in {zone}: pays.time is {}s off",
            time - expected
        );
    }
}

// ----- status racing a pay -------------------------------------------------------------------

const PAY_WAITING: &str = "UPDATE users";
const STATUS_WAITING: &str = "SELECT id, account";

/// A pay of `txn` (3.00 to 59071) that has inserted its paysys_txn row and waits on the
/// subscriber's row, which the returned connection holds locked until it commits or rolls
/// back. The pay may wait 20 s.
fn pay_in_flight(
    db: &TestDb,
    site: &Arc<Site>,
    txn: &str,
) -> (mysql::Conn, std::thread::JoinHandle<common::Answer>) {
    set_config(site, "lock_timeout = 3", "lock_timeout = 20");
    let mut holder = db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT * FROM users WHERE id = 5907 FOR UPDATE")
        .unwrap();
    let pay = {
        let site = site.clone();
        let query = pay_query(txn, "59071", "3.00");
        std::thread::spawn(move || site.get(&query))
    };
    db.wait_until_running(PAY_WAITING);
    (holder, pay)
}

#[test]
fn status_waits_for_a_pay_in_flight_instead_of_calling_it_unknown() {
    let db = TestDb::new();
    let site = Arc::new(Site::new(&db.url, ""));
    let (mut holder, pay) = pay_in_flight(&db, &site, "8080");
    let status = {
        let site = site.clone();
        std::thread::spawn(move || site.get("command=status&txn_id=8080"))
    };
    // Give the status request the time to be answered wrongly, if it is going to be.
    let until = Instant::now() + Duration::from_secs(5);
    while db.running(STATUS_WAITING) == 0 && !status.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    holder.query_drop("COMMIT").unwrap();
    let pay = pay.join().unwrap();
    let status = status.join().unwrap();
    assert_eq!(pay.result(), 0, "{}", pay.body);
    assert_eq!(
        (status.result(), status.prv_txn()),
        (0, pay.prv_txn()),
        "status during the pay: {}",
        status.body
    );
}

#[test]
fn status_of_a_pay_stuck_in_flight_is_temporary() {
    let db = TestDb::new();
    let site = Arc::new(Site::new(&db.url, ""));
    let (mut holder, pay) = pay_in_flight(&db, &site, "8081");
    // The status request gives up before the pay does: it cannot know, so it must not say.
    set_config(&site, "lock_timeout = 20", "lock_timeout = 1");
    let status = site.get("command=status&txn_id=8081");
    assert_eq!(
        status.result(),
        1,
        "never final while in doubt: {}",
        status.body
    );
    holder.query_drop("COMMIT").unwrap();
    let pay = pay.join().unwrap();
    assert_eq!(pay.result(), 0, "{}", pay.body);
    let status = site.get("command=status&txn_id=8081");
    assert_eq!((status.result(), status.prv_txn()), (0, pay.prv_txn()));
}

// ----- a deadlock on a table's AUTO-INC lock -------------------------------------------------

/// Another writer's `INSERT … SELECT` into `pays`, waiting for a row of the SELECT.
const BULK_WAITING: &str = "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, \
                            bonus, reason, coment, type, category) SELECT";

/// Deadlocks InnoDB has ended since the server started (the whole server's count).
fn deadlocks(db: &TestDb) -> u64 {
    let row: Option<(String, u64)> = db
        .conn()
        .query_first("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
        .unwrap();
    row.map(|(_, n)| n).unwrap_or(0)
}

/// A pay the server ends as a deadlock victim while it waits for a table's AUTO-INC lock
/// is told so by error 1467 ("Failed to read auto-increment value"), not 1213; it was
/// rolled back whole all the same, and is made again like any deadlock victim. (Our own
/// card callbacks' `INSERT … SELECT` into paysys_txn holds that table's lock so, and met
/// a sweep and the other callbacks of one subscriber this way.) Here another writer's
/// `INSERT … SELECT` into `pays` holds it: it has written its first row and waits for
/// the next, our pay's paysys_txn row, under lock, when our pay comes to insert its row
/// into `pays`. It has written more than our pay, so our pay is the one ended.
#[test]
fn a_pay_ended_waiting_for_an_auto_increment_lock_is_made_again() {
    let db = TestDb::new();
    let site = Arc::new(Site::new(&db.url, ""));
    let earlier = site.get(&pay_query("8090", "59071", "1.00"));
    assert_eq!(earlier.result(), 0, "{}", earlier.body);
    let earlier_row: u64 = earlier.prv_txn().unwrap().parse().unwrap();
    let deadlocks_before = deadlocks(&db);
    // Our pay has inserted its paysys_txn row (the next id) and waits for the subscriber.
    let (mut holder, pay) = pay_in_flight(&db, &site, "8091");
    let mut writer = db.conn();
    writer
        .query_drop("CREATE TABLE weight (n INT NOT NULL) ENGINE=InnoDB")
        .unwrap();
    let bulk = std::thread::spawn(move || {
        writer.query_drop("START TRANSACTION").unwrap();
        let rows: Vec<String> = (0..200).map(|n| format!("({n})")).collect();
        writer
            .query_drop(format!("INSERT INTO weight (n) VALUES {}", rows.join(", ")))
            .unwrap();
        let bulk = writer.exec_drop(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, \
             coment, type, category) \
             SELECT 3, 0, 0, 0, 0, 0, '', 'bulk', '', 10, 0 FROM paysys_txn \
             WHERE id IN (?, ?) ORDER BY id FOR UPDATE",
            (earlier_row, earlier_row + 1),
        );
        writer.query_drop("ROLLBACK").unwrap();
        bulk
    });
    db.wait_until_running(BULK_WAITING);
    // The writer has its first row written and waits for our pay's row: let our pay go on.
    let waited = Instant::now() + Duration::from_millis(300);
    while Instant::now() < waited {
        std::thread::sleep(Duration::from_millis(10));
    }
    holder.query_drop("ROLLBACK").unwrap();
    let pay = pay.join().unwrap();
    let bulk = bulk.join().unwrap();
    // The writer was not the one ended: our pay was, and it was made again.
    assert!(bulk.is_ok(), "{bulk:?}");
    assert!(deadlocks(&db) > deadlocks_before, "no deadlock was met");
    assert_eq!(pay.result(), 0, "{}\n{}", pay.body, site.log());
    assert_eq!(db.balance(5907), "104.00");
    let pays: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM pays WHERE reason LIKE '% txn_id=8091'")
        .unwrap()
        .unwrap();
    assert_eq!(pays, 1);
}

/// Error 1467 also ends a wait for an AUTO-INC lock that ran out of `lock_timeout`; then
/// only the statement was rolled back, and it is no deadlock to try again eight times: the
/// pay answers a temporary error after one `lock_timeout`, as for any lock wait, and the
/// log says which lock. Here another writer's `INSERT … SELECT` into `pays` holds the lock
/// while it waits for a row somebody else holds.
#[test]
fn a_pay_whose_wait_for_an_auto_increment_lock_runs_out_is_temporary_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    set_config(&site, "lock_timeout = 3", "lock_timeout = 1");
    let before = db.balance(5907);
    let mut holder = db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT * FROM users WHERE id = 3 FOR UPDATE")
        .unwrap();
    let mut writer = db.conn();
    let bulk = std::thread::spawn(move || {
        writer.query_drop("START TRANSACTION").unwrap();
        // Subscriber 1234's row first (its pays row written, the lock taken), then 3's.
        let bulk = writer.query_drop(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, \
             coment, type, category) \
             SELECT id, 0, 0, 0, 0, 0, '', 'bulk', '', 10, 0 FROM users \
             WHERE id IN (3, 1234) ORDER BY id DESC FOR UPDATE",
        );
        writer.query_drop("ROLLBACK").unwrap();
        bulk
    });
    db.wait_until_running(BULK_WAITING);
    let pay = site.get(&pay_query("8092", "59071", "3.00"));
    holder.query_drop("ROLLBACK").unwrap();
    assert!(bulk.join().unwrap().is_ok());
    assert_eq!(pay.result(), 1, "{}", pay.body);
    let log = site.log();
    // Not tried again as a deadlock victim: the lock wait, said once.
    assert!(
        log.contains("AUTO-INC lock ran out of lock_timeout") && !log.contains("deadlock victim"),
        "{log}"
    );
    assert_eq!(db.balance(5907), before);
    let retry = site.get(&pay_query("8092", "59071", "3.00"));
    assert_eq!(retry.result(), 0, "{}", retry.body);
}
