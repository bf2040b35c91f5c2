//! `paysys reconcile`: a provider's registry file against `paysys_txn` in a real database,
//! through the real `paysys` binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{pay_query, Site, TestDb};
use mysql::prelude::Queryable;

struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

fn paysys(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn reconcile(site: &Site, registry: &Path, date: &str, extra: &[&str]) -> Run {
    let config = site.config_path();
    let mut args = vec![
        "reconcile",
        registry.to_str().unwrap(),
        "--system",
        "osmp",
        "--date",
        date,
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    paysys(&args)
}

fn write_registry(site: &Site, text: &[u8]) -> PathBuf {
    let path = site.base.join("registry.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// A committed payment, as the ledger would have left it.
fn insert(
    db: &TestDb,
    system: &str,
    txn: &str,
    account: &str,
    amount: &str,
    txn_date: &str,
    cancelled: Option<&str>,
) {
    db.conn()
        .exec_drop(
            "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, \
             created, prv_txn, cancelled) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (
                system,
                txn,
                account,
                amount,
                txn_date,
                txn_date,
                500 + txn.parse::<u64>().unwrap(),
                cancelled,
            ),
        )
        .unwrap();
}

#[test]
fn payments_made_through_osmp_agree_with_their_registry() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    for (txn, account, sum) in [("9001", "59071", "10.5"), ("9002", "33", "10.25")] {
        let answer = site.get(&pay_query(txn, account, sum));
        assert_eq!(answer.result(), 0, "{}", answer.body);
    }
    let dates: Vec<(String, String)> = db
        .conn()
        .query("SELECT txn_id, DATE_FORMAT(txn_date, '%Y-%m-%d') FROM paysys_txn ORDER BY txn_id")
        .unwrap();
    let date = &dates[0].1;
    assert!(
        dates.iter().all(|(_, d)| d == date),
        "a run across midnight"
    );
    // As a spreadsheet exports it: BOM, ';', decimal commas, CRLF, header in another case.
    let registry = write_registry(
        &site,
        format!(
            "\u{feff}TXN_ID;Sum;Date;Account\r\n9001;10,50;{date} 10:00:00;59071\r\n\
             9002;\"10,25\";{date} 10:01:00;33\r\n"
        )
        .as_bytes(),
    );
    let run = reconcile(&site, &registry, date, &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    // stderr is not a terminal: no progress line.
    assert_eq!(run.err, "");
    assert!(
        run.out.contains(
            "  registry        2  20.75\n  ours            2  20.75\n  difference      0   0.00\n"
        ),
        "{}",
        run.out
    );
    assert!(
        run.out.ends_with("\nagree: 2 payments, 20.75\n"),
        "{}",
        run.out
    );
    assert!(!run.out.contains("missing"), "{}", run.out);
}

#[test]
fn each_kind_of_difference_is_listed_and_exits_1() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let day = "2024-05-01";
    insert(
        &db,
        "osmp",
        "1",
        "59071",
        "10.00",
        "2024-05-01 00:00:00",
        None,
    ); // agrees
    insert(&db, "osmp", "2", "33", "20.00", "2024-05-01 12:00:00", None); // sum differs
    insert(&db, "osmp", "3", "33", "30.00", "2024-05-01 13:00:00", None); // account differs
    insert(
        &db,
        "osmp",
        "4",
        "12340",
        "40.00",
        "2024-05-01 23:59:59",
        None,
    ); // not theirs
    insert(
        &db,
        "osmp",
        "5",
        "33",
        "50.00",
        "2024-05-01 14:00:00",
        Some("2024-05-01 15:00:00"),
    );
    insert(
        &db,
        "osmp",
        "6",
        "59071",
        "60.00",
        "2024-05-02 00:00:01",
        None,
    ); // next day
    insert(
        &db,
        "osmp",
        "8",
        "33",
        "5.00",
        "2024-05-01 16:00:00",
        Some("2024-05-01 17:00:00"),
    ); // cancelled, not theirs: fine
       // The same txn id under another system is not ours for osmp.
    insert(&db, "qiwi", "7", "33", "70.00", "2024-05-01 10:00:00", None);
    let registry = write_registry(
        &site,
        b"txn_id,sum,date,account\n\
          1,10.00,2024-05-01 00:00:05,59071\n\
          2,20.01,2024-05-01 12:00:05,33\n\
          3,30,2024-05-01 13:00:05,59071\n\
          5,50.00,2024-05-01 14:00:05,33\n\
          6,60.00,2024-05-01 23:59:58,59071\n\
          7,\"70,00\",2024-05-01 10:00:05,33\n\
          7,\"70,00\",2024-05-01 10:00:05,33\n",
    );
    let run = reconcile(&site, &registry, day, &[]);
    println!("{}", run.out);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    let expect = [
        "missing on our side (in the registry, not credited by us): 1\n\
         \x20 txn_id    sum  account  date                 line\n\
         \x20 7       70.00  33       2024-05-01 10:00:05     7\n",
        "missing on their side (credited by us, not in the registry): 1\n\
         \x20 txn_id    sum  account  prv_txn  txn_date\n\
         \x20 4       40.00  12340        504  2024-05-01 23:59:59\n",
        "mismatches (same txn_id, another sum or account): 2\n\
         \x20 txn_id  their sum  our sum  their account  our account  prv_txn  line\n\
         \x20 2           20.01    20.00  33             33               502     3\n\
         \x20 3           30.00    30.00  59071          33               503     4\n",
        "cancelled by us, yet in their registry (not credited now): 1\n\
         \x20 txn_id    sum  account  prv_txn  cancelled            line\n\
         \x20 5       50.00  33           505  2024-05-01 15:00:00     5\n",
        "on another day (in the registry, credited by us with another txn_date): 1\n\
         \x20 txn_id    sum  account  date                 our txn_date         prv_txn  line\n\
         \x20 6       60.00  59071    2024-05-01 23:59:58  2024-05-02 00:00:01      506     6\n",
        "twice in the registry (counted in its total each time): 1\n\
         \x20 txn_id    sum  line  first on line\n\
         \x20 7       70.00     8              7\n",
        "totals        count     sum\n\
         \x20 registry        7  310.01\n\
         \x20 ours            4  100.00\n\
         \x20 difference      3  210.01\n",
        "differ: 1 missing on our side, 1 missing on their side, 2 mismatched, \
         1 cancelled by us, 1 on another day, 1 twice in the registry\n",
    ];
    for part in expect {
        assert!(run.out.contains(part), "{part}\n--- in ---\n{}", run.out);
    }
    // Read only: nothing changed.
    assert_eq!(db.txns(), 8);
}

#[test]
fn a_month_sized_registry_agrees() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    const N: u64 = 6000;
    let mut conn = db.conn();
    let mut registry = String::from("txn_id\tsum\tdate\taccount\n");
    let mut total = 0u64;
    for chunk in (1..=N).collect::<Vec<_>>().chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, \
             txn_date, created) VALUES ",
        );
        for (k, n) in chunk.iter().enumerate() {
            let kopecks = 100 + n * 37 % 150_000;
            total += kopecks;
            let (sum, time) = (
                format!("{}.{:02}", kopecks / 100, kopecks % 100),
                format!("2024-05-31 {:02}:{:02}:{:02}", n % 24, n % 60, n * 7 % 60),
            );
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('osmp', '{}', '59071', 5907, {sum}, '{time}', '{time}')",
                10_000_000 + n
            ));
            registry.push_str(&format!(
                "{}\t{}\t{time}\t59071\n",
                10_000_000 + n,
                sum.replace('.', ",")
            ));
        }
        conn.query_drop(sql).unwrap();
    }
    let path = write_registry(&site, registry.as_bytes());
    let started = std::time::Instant::now();
    let run = reconcile(&site, &path, "2024-05-31", &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    // A long run, but stderr is not a terminal: not a byte of progress.
    assert_eq!(run.err, "");
    let total = format!("{}.{:02}", total / 100, total % 100);
    assert!(
        run.out
            .ends_with(&format!("\nagree: {N} payments, {total}\n")),
        "{}",
        run.out
    );
    assert!(
        run.out
            .contains("(delimiter tab, columns txn_id, sum, date, account)"),
        "{}",
        run.out
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn file_config_and_usage_errors_exit_2_and_say_what_to_do() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let registry = write_registry(&site, b"txn_id;sum;account\n1;10;33\n2;10.5.0;33\n");
    let run = reconcile(&site, &registry, "2024-05-01", &[]);
    assert_eq!(run.code, Some(2), "{}{}", run.out, run.err);
    assert!(
        run.err.contains(&format!(
            "registry {} line 3: sum '10.5.0': ",
            registry.display()
        )),
        "{}",
        run.err
    );
    assert_eq!(run.out, "");

    let registry = write_registry(&site, b"id;sum\n1;10\n");
    let run = reconcile(&site, &registry, "2024-05-01", &[]);
    assert_eq!(run.code, Some(2));
    assert!(run.err.contains("line 1: no column 'txn_id' in the header (id, sum; split at ';'): name the right one with --txn-column"), "{}", run.err);
    let run = reconcile(&site, &registry, "2024-05-01", &["--txn-column", "id"]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    assert!(run.out.contains("accounts are not compared"), "{}", run.out);

    let run = reconcile(&site, &site.base.join("nope.csv"), "2024-05-01", &[]);
    assert_eq!(run.code, Some(2));
    assert!(run.err.contains("nope.csv cannot be opened"), "{}", run.err);

    let config = site.config_path();
    let run = paysys(&[
        "reconcile",
        registry.to_str().unwrap(),
        "--system",
        "QIWI",
        "--date",
        "2024-05-01",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.err.contains("no system 'QIWI' in") && run.err.contains("(its systems: osmp)"),
        "{}",
        run.err
    );

    let run = reconcile(
        &site,
        &registry,
        "2024-05-01",
        &["--config", "/nonexistent/paysys.toml"],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.err
            .contains("config /nonexistent/paysys.toml cannot be read"),
        "{}",
        run.err
    );

    site.write_config(&common::config_text(
        "mysql://root@127.0.0.1:1/none",
        &["127.0.0.1"],
        "",
    ));
    let run = reconcile(&site, &registry, "2024-05-01", &["--txn-column", "id"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.err
            .contains("paysys reconcile: database: cannot connect"),
        "{}",
        run.err
    );

    let run = paysys(&[
        "reconcile",
        "r.csv",
        "--system",
        "osmp",
        "--date",
        "1.5.2024",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.err
            .contains("--date '1.5.2024': give the registry's day as YYYY-MM-DD"),
        "{}",
        run.err
    );
    let run = paysys(&["reconcile", "--help"]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.out.contains("--encoding E") && run.out.contains("txn_date"),
        "{}",
        run.out
    );
    let run = paysys(&["--help"]);
    assert!(
        run.out
            .contains("paysys reconcile REGISTRY --system S --date YYYY-MM-DD"),
        "{}",
        run.out
    );
}

#[test]
fn on_a_terminal_progress_shows_then_is_wiped_before_the_report() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    insert(
        &db,
        "osmp",
        "1",
        "59071",
        "10.00",
        "2024-05-01 10:00:00",
        None,
    );
    insert(&db, "osmp", "2", "33", "5.00", "2024-04-30 23:59:59", None);
    let registry = write_registry(
        &site,
        b"txn_id,sum,date,account\n1,10.00,2024-05-01 10:00:00,59071\n\
          2,5.00,2024-05-01 00:00:01,33\n3,1.00,2024-05-01 12:00:00,33\n",
    );
    let config = site.config_path();
    let args = [
        "reconcile",
        registry.to_str().unwrap(),
        "--system",
        "osmp",
        "--date",
        "2024-05-01",
        "--config",
        config.to_str().unwrap(),
    ];
    let Some((code, screen)) = common::paysys_on_a_terminal(&args) else {
        eprintln!("skipped: no script(1) to run paysys on a terminal");
        return;
    };
    assert_eq!(code, Some(1), "{screen:?}");
    let head = format!("registry  {}", registry.display());
    let (progress, report) = screen
        .split_once(&head)
        .unwrap_or_else(|| panic!("no report in {screen:?}"));
    for stage in [
        "\rreading paysys_txn of osmp on 2024-05-01…",
        "\rreading the registry…",
        "\rlooking up the registry's txn ids on other days: 0 of 2…",
    ] {
        assert!(progress.contains(stage), "{stage:?} in {progress:?}");
    }
    // The line is wiped, from its start, before the report's first line.
    let wiped = progress
        .strip_suffix('\r')
        .and_then(|p| p.rsplit('\r').next())
        .unwrap_or_default();
    assert!(
        !wiped.is_empty() && wiped.bytes().all(|b| b == b' '),
        "{progress:?}"
    );
    assert!(
        report.contains("differ: 1 missing on our side, 1 on another day"),
        "{report:?}"
    );
}
