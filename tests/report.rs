//! `paysys report`: credited, cancelled and refused pays from `paysys_txn` and
//! `paysys_refusal` in a real database, through the real `paysys` binary.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{pay_query, txn_date, Site, TestDb};
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

fn report(site: &Site, from: &str, to: &str, extra: &[&str]) -> Run {
    let config = site.config_path();
    let mut args = vec![
        "report",
        "--from",
        from,
        "--to",
        to,
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    paysys(&args)
}

/// Kopecks as the report prints them.
fn money(kopecks: i128) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

/// The CSV's rows by key: the header's fields and each row's.
fn csv(text: &str) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| {
            let fields: Vec<String> = l.split(',').map(str::to_string).collect();
            (fields[0].clone(), fields)
        })
        .collect();
    (header, rows)
}

#[test]
fn a_month_with_thousands_of_payments_adds_up_exactly() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    // (count, kopecks) per day, credited and cancelled; deterministic odd amounts.
    let mut credited: BTreeMap<String, (u64, i128)> = BTreeMap::new();
    let mut cancelled: BTreeMap<String, (u64, i128)> = BTreeMap::new();
    let mut conn = db.conn();
    let mut values = Vec::new();
    let n = 4000u64;
    for i in 0..n {
        let day = 1 + (i * 7 % 31);
        let kopecks = i128::from(100 + (i * 7919 % 1_499_900));
        let date = format!("2024-05-{day:02}");
        let time = format!("{date} {:02}:{:02}:{:02}", i % 24, i % 60, (i * 13) % 60);
        let is_cancelled = i % 10 == 3;
        let slot = if is_cancelled {
            cancelled.entry(date).or_default()
        } else {
            credited.entry(date).or_default()
        };
        slot.0 += 1;
        slot.1 += kopecks;
        values.push(format!(
            "('{}', '{}', '{}', 0, {}, '{time}', '{time}', {}, {})",
            if i % 2 == 0 { "osmp" } else { "qiwi" },
            10_000 + i,
            5907,
            money(kopecks),
            10_000 + i,
            if is_cancelled { "NOW()" } else { "NULL" }
        ));
    }
    // Outside the range: the day before and the day after.
    values.push("('osmp', '1', '59071', 0, 999.99, '2024-04-30 23:59:59', NOW(), 1, NULL)".into());
    values.push("('osmp', '2', '59071', 0, 999.99, '2024-06-01 00:00:00', NOW(), 2, NULL)".into());
    for chunk in values.chunks(1000) {
        conn.query_drop(format!(
            "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, \
             txn_date, created, prv_txn, cancelled) VALUES {}",
            chunk.join(", ")
        ))
        .unwrap();
    }

    let run = report(&site, "2024-05-01", "2024-05-31", &["--format", "csv"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    // stderr is not a terminal: not a byte of progress.
    assert_eq!(run.err, "");
    let (header, rows) = csv(&run.out);
    assert_eq!(
        header,
        [
            "day",
            "credited",
            "credited_sum",
            "cancelled",
            "cancelled_sum",
            "refused"
        ]
    );
    assert_eq!(rows.len(), 31, "{}", run.out);
    let (mut count, mut sum) = (0u64, 0i128);
    for (day, fields) in &rows {
        let c = credited.get(day).copied().unwrap_or_default();
        let x = cancelled.get(day).copied().unwrap_or_default();
        assert_eq!(
            fields[1..],
            [
                c.0.to_string(),
                money(c.1),
                x.0.to_string(),
                money(x.1),
                "0".to_string()
            ],
            "{day}"
        );
        count += c.0;
        sum += c.1;
    }
    assert_eq!(count, n - n / 10);

    let run = report(&site, "2024-05-01", "2024-05-31", &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let total = run
        .out
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>();
    let cancelled_sum: i128 = cancelled.values().map(|c| c.1).sum();
    assert_eq!(
        total,
        [
            "total",
            &count.to_string(),
            &money(sum),
            &(n / 10).to_string(),
            &money(cancelled_sum),
            "0"
        ],
        "{}",
        run.out
    );
    assert!(run.out.contains("no pay refused"), "{}", run.out);

    let run = report(
        &site,
        "2024-05-01",
        "2024-05-31",
        &["--by", "system", "--format", "csv"],
    );
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let (_, rows) = csv(&run.out);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["osmp", "qiwi"],
        "{}",
        run.out
    );
    let by_system: u64 = rows.values().map(|f| f[1].parse::<u64>().unwrap()).sum();
    assert_eq!(by_system, count);

    let run = report(&site, "2024-05-01", "2024-05-31", &["--format", "html"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert_eq!(run.out.matches("<rect").count(), 31);
}

#[test]
fn pays_through_osmp_and_their_refusals_by_comment() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    for (txn, account, sum) in [("9001", "59071", "10.5"), ("9002", "33", "10.25")] {
        let answer = site.get(&pay_query(txn, account, sum));
        assert_eq!(answer.result(), 0, "{}", answer.body);
    }
    assert_eq!(site.get(&pay_query("9003", "59072", "5")).result(), 4);
    assert_eq!(site.get(&pay_query("9004", "12341", "5")).result(), 4);
    assert_eq!(
        site.get(&pay_query("9005", "59071", "15000.01")).result(),
        242
    );
    let window = site.get(&format!(
        "command=pay&txn_id=9006&account=59071&sum=7&txn_date={}",
        txn_date(-25 * 60)
    ));
    assert_eq!(window.comment(), "nod12", "{}", window.body);
    assert_eq!(site.get("command=check&account=59072").result(), 4);
    let days: Vec<String> = db
        .conn()
        .query(
            "SELECT DATE_FORMAT(txn_date, '%Y-%m-%d') FROM paysys_txn UNION \
             SELECT DATE_FORMAT(at, '%Y-%m-%d') FROM paysys_refusal ORDER BY 1",
        )
        .unwrap();
    let (from, to) = (&days[0], &days[days.len() - 1]);

    let run = report(&site, from, to, &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let total: Vec<&str> = run
        .out
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        total,
        ["total", "2", "20.75", "0", "0.00", "4"],
        "{}",
        run.out
    );
    let line = |prefix: &str| {
        run.out
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The reason shown is the latest refusal's.
    assert_eq!(
        line("nod4 "),
        "nod4 2 wrong check digit: expected 0",
        "{}",
        run.out
    );
    assert_eq!(line("nod9 "), "nod9 1 sum above max_sum 15000.00");
    assert_eq!(line("nod12 "), "nod12 1 txn_date more than 24 h from now");

    let run = report(&site, from, to, &["--format", "csv"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let (header, rows) = csv(&run.out);
    assert_eq!(
        header[5..],
        ["refused", "refused:nod12", "refused:nod4", "refused:nod9"]
    );
    let refused: u64 = rows.values().map(|f| f[5].parse::<u64>().unwrap()).sum();
    let nod4: u64 = rows.values().map(|f| f[7].parse::<u64>().unwrap()).sum();
    assert_eq!((refused, nod4), (4, 2), "{}", run.out);

    let run = report(&site, from, to, &["--format", "html", "--system", "osmp"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let page = &run.out;
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<svg"), "{page}");
    let days_with_payments = rows.values().filter(|f| f[1] != "0").count();
    assert_eq!(page.matches("<rect").count(), days_with_payments, "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(
        !page.contains("http://") || !page.contains("src="),
        "{page}"
    );
    assert!(page.contains("wrong check digit: expected 0"), "{page}");

    let run = report(&site, from, to, &["--system", "other"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(
        run.out.contains("no pay refused") && run.out.contains("0.00"),
        "{}",
        run.out
    );
}

#[test]
fn nothing_in_the_range_prints_zeros_and_mistakes_exit_2() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let run = report(&site, "2020-01-01", "2020-01-03", &["--format", "csv"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert_eq!(
        run.out,
        "day,credited,credited_sum,cancelled,cancelled_sum,refused\n\
         2020-01-01,0,0.00,0,0.00,0\n2020-01-02,0,0.00,0,0.00,0\n2020-01-03,0,0.00,0,0.00,0\n"
    );
    let run = report(&site, "2020-01-01", "2020-01-03", &["--by", "system"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(
        run.out.contains("\nosmp "),
        "the config's system: {}",
        run.out
    );
    let run = report(&site, "2020-01-01", "2020-01-03", &["--format", "html"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(
        run.out.contains("<svg") && !run.out.contains("<rect"),
        "{}",
        run.out
    );

    for args in [
        &["report", "--from", "2020-01-02", "--to", "2020-01-01"][..],
        &["report", "--from", "2020-01-01"],
        &["report", "--from", "x", "--to", "2020-01-01"],
        &[
            "report",
            "--from",
            "2020-01-01",
            "--to",
            "2020-01-01",
            "--format",
            "pdf",
        ],
    ] {
        let run = paysys(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}{}", run.out, run.err);
        assert!(run.err.contains("usage: paysys report"), "{}", run.err);
    }
    let help = paysys(&["report", "--help"]);
    assert_eq!(help.code, Some(0));
    assert!(help.out.contains("txn_date"), "{}", help.out);

    db.conn().query_drop("DROP TABLE paysys_refusal").unwrap();
    let run = report(&site, "2020-01-01", "2020-01-03", &[]);
    assert_eq!(run.code, Some(2), "{}{}", run.out, run.err);
    assert!(run.err.contains("load sql/paysys.sql again"), "{}", run.err);
    let missing = site.base.join("etc/none.toml");
    let run = paysys(&[
        "report",
        "--from",
        "2020-01-01",
        "--to",
        "2020-01-01",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2), "{}{}", run.out, run.err);
}

/// The part of a terminal's screen before `text`, and from it on; the progress line must have
/// been wiped, from its start, right before `text`.
fn wiped_before<'a>(screen: &'a str, text: &str) -> (&'a str, &'a str) {
    let at = screen
        .find(text)
        .unwrap_or_else(|| panic!("no {text:?} in {screen:?}"));
    let (progress, rest) = screen.split_at(at);
    let wiped = progress
        .strip_suffix('\r')
        .and_then(|p| p.rsplit('\r').next())
        .unwrap_or_default();
    assert!(
        !wiped.is_empty() && wiped.bytes().all(|b| b == b' '),
        "{progress:?}"
    );
    (progress, rest)
}

#[test]
fn on_a_terminal_each_query_is_named_then_wiped() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    db.conn()
        .query_drop(
            "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, \
             txn_date, created, prv_txn) VALUES ('osmp', '1', '59071', 5907, 10.50, \
             '2024-05-02 10:00:00', NOW(), 1)",
        )
        .unwrap();
    let config = site.config_path();
    let args = [
        "report",
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-31",
        "--config",
        config.to_str().unwrap(),
    ];
    let Some((code, screen)) = common::paysys_on_a_terminal(&args) else {
        eprintln!("skipped: no script(1) to run paysys on a terminal");
        return;
    };
    assert_eq!(code, Some(0), "{screen:?}");
    let (progress, report) = wiped_before(&screen, "paysys report 2024-05-01 .. 2024-05-31");
    assert!(
        progress.starts_with(
            "\rsumming paysys_txn by day over 2024-05-01 .. 2024-05-31…\
             \rcounting paysys_refusal by day over 2024-05-01 .. 2024-05-31…"
        ),
        "{progress:?}"
    );
    assert!(
        report.contains("2024-05-02          1         10.50"),
        "{report:?}"
    );

    // An error, too, starts on a clean line.
    db.conn().query_drop("DROP TABLE paysys_refusal").unwrap();
    let Some((code, screen)) = common::paysys_on_a_terminal(&args) else {
        return;
    };
    assert_eq!(code, Some(2), "{screen:?}");
    let (progress, _) = wiped_before(&screen, "paysys report: database: paysys_refusal");
    assert!(
        progress.contains("\rcounting paysys_refusal"),
        "{progress:?}"
    );
}
