//! The worst days: a process killed mid-payment, a log that cannot be written.
//! (The database refusing connections, a held lock and a config that vanishes or breaks
//! between requests are in osmp_cgi.rs.)

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{pay_query, Site, TestDb};
use mysql::prelude::Queryable;

/// Polls `probe` every 20 ms for up to `limit`.
fn wait_until(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn killed_after_first_write_before_commit_credits_nothing_and_the_retry_pays_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace("lock_timeout = 3", "lock_timeout = 30"));

    // Hold the subscriber's row: the payment inserts its paysys_txn row (its first write)
    // and then waits on this lock, inside its transaction.
    let mut holder = db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT balance FROM users WHERE id = 5907 FOR UPDATE")
        .unwrap();

    let query = pay_query("13", "59071", "10");
    let mut child = site
        .cgi_command(&query)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdin.take());

    let mut watcher = db.conn();
    let blocked = wait_until(Duration::from_secs(20), || {
        let n: u64 = watcher
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'UPDATE users%'",
                (&db.name,),
            )
            .unwrap()
            .unwrap_or(0);
        n > 0
    });
    assert!(blocked, "the payment never reached its balance update");
    let txn_rows_in_flight: u64 = watcher
        .query_first(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0",
        )
        .unwrap()
        .unwrap();
    assert!(txn_rows_in_flight >= 1, "its first write is in flight");

    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        out.is_empty(),
        "nothing was answered: {}",
        String::from_utf8_lossy(&out)
    );

    holder.query_drop("ROLLBACK").unwrap();
    drop(holder);
    // The server rolls the dead client's transaction back once it notices the closed socket.
    let gone = wait_until(Duration::from_secs(20), || {
        let n: u64 = watcher
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
                (&db.name,),
            )
            .unwrap()
            .unwrap_or(0);
        n == 0
    });
    assert!(gone, "the killed connection lingers");
    assert_eq!((db.txns(), db.pays()), (0, 0), "nothing committed");
    assert_eq!(db.balance(5907), "100.00");

    // The terminal heard nothing and retries: paid once.
    let a = site.get(&query);
    assert_eq!(a.result(), 0, "{}", a.body);
    let again = site.get(&query);
    assert_eq!(again.prv_txn(), a.prv_txn());
    assert_eq!((db.txns(), db.pays()), (1, 1));
    assert_eq!(db.balance(5907), "110.00");
}

#[test]
fn an_unwritable_log_path_does_not_change_the_payment() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    // A directory where the log file should be: open() fails even for root.
    std::fs::create_dir_all(site.base.join("var/log/paysys_check.log")).unwrap();
    let a = site.get(&pay_query("1", "59071", "5"));
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(db.balance(5907), "105.00");
    assert!(a.stderr.contains("cannot write log"), "{}", a.stderr);
    assert!(
        a.stderr
            .contains("cmd=pay txn=1 account=59071 sum=5 result=0"),
        "{}",
        a.stderr
    );
}

#[test]
fn a_closed_stdout_does_not_change_the_payment() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let query = pay_query("2", "59071", "6");
    let mut child = site
        .cgi_command(&query)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(b"");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(db.balance(5907), "106.00");
    assert_eq!(site.log_lines().len(), 1);
}
