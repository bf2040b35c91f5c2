//! `paysys audit`: our ledger against the billing's own rows, on NoDeny and ABillS in a real
//! database, through the real executables: payments made by the CGIs, then the billing's
//! rows broken by hand the way they break in the field, one discrepancy at a time.

mod common;

use std::process::Command;

use common::abills::{system, Abills, DEFAULT_ALLOW};
use common::{pay_query, Site, TestDb};
use mysql::prelude::Queryable;

struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    /// The lines of one kind of discrepancy.
    fn lines(&self, kind: &str) -> Vec<&str> {
        self.out
            .lines()
            .filter(|l| l.starts_with(&format!("{kind} ")) || l.starts_with(&format!("{kind}:")))
            .collect()
    }

    /// The one line about `txn` of this kind that contains `text`; fails naming what ran.
    fn has(&self, kind: &str, txn: Option<&str>, text: &str) -> &str {
        let found = self
            .lines(kind)
            .into_iter()
            .find(|l| l.contains(text) && txn.is_none_or(|t| l.contains(&format!(" txn={t}:"))));
        let line = found.unwrap_or_else(|| {
            panic!(
                "no '{kind}' line for {txn:?} with {text:?}:\n{}{}",
                self.out, self.err
            )
        });
        assert!(line.contains(". To do: "), "{line}");
        line
    }
}

fn audit(config: &std::path::Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("audit")
        .args(extra)
        .arg(config)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn paid(a: &common::Answer) -> u64 {
    assert_eq!(a.result(), 0, "{a:?}");
    a.prv_txn().and_then(|p| p.parse().ok()).expect("prv_txn")
}

// ----- NoDeny ------------------------------------------------------------------------------

/// NoDeny's fixture with the history its balances come from (NoDeny holds a balance to the
/// sum of the subscriber's pays rows), and three payments through osmp.cgi.
fn nodeny() -> (TestDb, Site) {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    db.conn()
        .query_drop(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, \
             type, category) SELECT id, balance, UNIX_TIMESTAMP() - 864000, 1, 0, 0, '', \
             'opening balance', '', 10, 0 FROM users WHERE mid = 0 AND balance <> 0",
        )
        .unwrap();
    for (txn, account, sum) in [
        ("101", "59071", "10.25"),
        ("102", "59071", "5.00"),
        ("103", "12340", "7.77"),
    ] {
        paid(&site.get(&pay_query(txn, account, sum)));
    }
    (db, site)
}

#[test]
fn nodeny_a_clean_ledger_exits_0_and_logs_its_result() {
    let (db, site) = nodeny();
    // A cancel through osmp.cgi: reversed as NoDeny's admin deletes a payment, so clean.
    let prv: u64 = db
        .conn()
        .query_first("SELECT prv_txn FROM paysys_txn WHERE txn_id = '103'")
        .unwrap()
        .unwrap();
    paid(&site.get(&format!("command=cancel&prv_txn={prv}")));
    let run = audit(&site.config_path(), &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(
        run.out
            .contains("payments   3 checked: 2 credited (15.25), 1 cancelled"),
        "{}",
        run.out
    );
    assert!(run.out.contains("balances   2 checked"), "{}", run.out);
    assert!(run.out.contains("\nclean: no discrepancy\n"), "{}", run.out);
    assert!(run.out.contains("not checkable: "), "{}", run.out);
    let log = site.log();
    let line = log
        .lines()
        .find(|l| l.contains("cmd=audit"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(" result=0 ") && line.contains(" payments=3 "),
        "{line}"
    );
}

/// Old NoDeny installs keep money in `FLOAT(10,2)`, which above 131 072 holds 64ths, not
/// kopecks: a payment of 150000.37 is kept as 150000.375 (150000.38 as DECIMAL). The pays
/// row is what the pay wrote, so the audit finds nothing; a row edited to another sum is
/// still named.
#[test]
fn nodeny_a_large_sum_in_float_money_columns_is_judged_as_the_float_it_was_written_as() {
    let db = TestDb::with_float_money();
    let site = Site::new(&db.url, "");
    site.write_config(
        &common::config_text(&db.url, &["127.0.0.1"], "")
            .replace("max_sum = \"15000.00\"", "max_sum = \"none\""),
    );
    let mut conn = db.conn();
    conn.query_drop(
        "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, \
         type, category) SELECT id, balance, UNIX_TIMESTAMP() - 864000, 1, 0, 0, '', \
         'opening balance', '', 10, 0 FROM users WHERE mid = 0 AND balance <> 0",
    )
    .unwrap();
    paid(&site.get(&pay_query("301", "59071", "150000.37")));
    let run = audit(&site.config_path(), &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(run.out.contains("\nclean: no discrepancy\n"), "{}", run.out);
    // Edited in NoDeny to a kopeck less (kept as 150000.359375), balance and all.
    conn.query_drop("UPDATE pays SET cash = 150000.36 WHERE reason = 'osmp txn_id=301'")
        .unwrap();
    conn.query_drop("UPDATE users SET balance = balance - 0.01 WHERE id = 5907")
        .unwrap();
    let run = audit(&site.config_path(), &[]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    run.has("differs", Some("301"), "paysys credited 150000.37");
}

#[test]
fn nodeny_each_discrepancy_is_named_with_what_to_do() {
    let (db, site) = nodeny();
    let mut conn = db.conn();
    for (txn, account, sum) in [
        ("104", "33", "1.00"),
        ("105", "33", "2.00"),
        ("106", "33", "3.00"),
    ] {
        paid(&site.get(&pay_query(txn, account, sum)));
    }
    let pays_of = |conn: &mut mysql::Conn, txn: &str| -> u64 {
        conn.exec_first(
            "SELECT payment_ref FROM paysys_txn WHERE txn_id = ?",
            (txn,),
        )
        .unwrap()
        .unwrap()
    };
    // 101: its pays row deleted (and the balance with it, as NoDeny's interface does).
    let p101 = pays_of(&mut conn, "101");
    conn.exec_drop("DELETE FROM pays WHERE id = ?", (p101,))
        .unwrap();
    conn.exec_drop(
        "UPDATE users SET balance = balance - 10.25 WHERE id = 5907",
        (),
    )
    .unwrap();
    // 103: another sum; 104: another subscriber.
    let p103 = pays_of(&mut conn, "103");
    conn.exec_drop("UPDATE pays SET cash = 7.70 WHERE id = ?", (p103,))
        .unwrap();
    let p104 = pays_of(&mut conn, "104");
    conn.exec_drop("UPDATE pays SET mid = 5907 WHERE id = ?", (p104,))
        .unwrap();
    // 105: cancelled in our ledger, its pays row left.
    conn.query_drop("UPDATE paysys_txn SET cancelled = NOW() WHERE txn_id = '105'")
        .unwrap();
    // 106: cancelled through osmp.cgi, then NoDeny's old record of it deleted by hand.
    let prv106: u64 = conn
        .query_first("SELECT prv_txn FROM paysys_txn WHERE txn_id = '106'")
        .unwrap()
        .unwrap();
    paid(&site.get(&format!("command=cancel&prv_txn={prv106}")));
    let p106 = pays_of(&mut conn, "106");
    conn.exec_drop(
        "DELETE FROM pays WHERE category = 501 AND reason LIKE CONCAT(?, ':%')",
        (p106,),
    )
    .unwrap();
    // A pays row with our mark that our ledger does not know.
    conn.query_drop(
        "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, \
         type, category) VALUES (5907, 50, UNIX_TIMESTAMP(), 0, 0, 0, '', 'osmp txn_id=999', '', \
         10, 0)",
    )
    .unwrap();

    let run = audit(&site.config_path(), &[]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    run.has(
        "missing",
        Some("101"),
        &format!("pays row {p101} is missing"),
    );
    run.has(
        "differs",
        Some("103"),
        "has cash 7.70, paysys credited 7.77",
    );
    run.has(
        "differs",
        Some("104"),
        "credits subscriber 5907, paysys credited subscriber 3",
    );
    run.has(
        "not-reversed",
        Some("105"),
        "is still there: the subscriber keeps the money",
    );
    run.has(
        "unknown",
        None,
        "'osmp txn_id=999', 50.00 to subscriber 5907",
    );
    run.has(
        "not-reversed",
        Some("106"),
        "is gone, but NoDeny keeps no record of it",
    );
    // 1234's pays add up to 7.70 + 15.50 against 23.27; 5907's and 3's moved with 104's row
    // and the row written by hand.
    run.has(
        "balance",
        None,
        "subscriber 1234: balance 23.27, but the pays rows add up to 23.20",
    );
    run.has(
        "balance",
        None,
        "subscriber 3: balance 3.00, but the pays rows add up to 2.00",
    );
    assert!(run.out.contains("discrepancies: "), "{}", run.out);

    // Only the balance off, after the rest is put right.
    conn.query_drop("DELETE FROM pays WHERE reason = 'osmp txn_id=999'")
        .unwrap();
    conn.exec_drop("UPDATE pays SET cash = 7.77 WHERE id = ?", (p103,))
        .unwrap();
    conn.exec_drop("UPDATE pays SET mid = 3 WHERE id = ?", (p104,))
        .unwrap();
    conn.query_drop("UPDATE paysys_txn SET cancelled = NULL WHERE txn_id = '105'")
        .unwrap();
    conn.query_drop("DELETE FROM paysys_txn WHERE txn_id IN ('101', '106')")
        .unwrap();
    let run = audit(&site.config_path(), &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    conn.query_drop("UPDATE users SET balance = balance + 1 WHERE id = 3")
        .unwrap();
    let run = audit(&site.config_path(), &[]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    run.has(
        "balance",
        None,
        "subscriber 3: balance 4.00, but the pays rows add up to 3.00",
    );
    assert_eq!(run.out.matches(". To do: ").count(), 1, "{}", run.out);
}

// ----- ABillS ------------------------------------------------------------------------------

/// ABillS's fixture, one system `osmp`, and payments through paysys_check.cgi: uid 1 twice,
/// uid 6 and uid 7 once, uid 5 (a company's user: the company's bill) once.
fn abills() -> Abills {
    let ab = Abills::new("");
    for (txn, uid, sum) in [
        ("201", "1", "100.00"),
        ("202", "1", "20.50"),
        ("203", "6", "30.00"),
        ("204", "7", "40.00"),
        ("205", "5", "50.00"),
    ] {
        paid(&ab.get(&pay_query(txn, uid, sum)));
    }
    ab
}

fn payment_ref(ab: &Abills, txn: &str) -> (u64, u64) {
    ab.db
        .conn()
        .exec_first(
            "SELECT payment_ref, prv_txn FROM paysys_txn WHERE txn_id = ?",
            (txn,),
        )
        .unwrap()
        .unwrap()
}

#[test]
fn abills_a_clean_ledger_exits_0() {
    let ab = abills();
    // A cancel through paysys: reversed as ABillS's would, so still clean.
    let (_, prv) = payment_ref(&ab, "204");
    paid(&ab.get(&format!("command=cancel&prv_txn={prv}")));
    // A fee between two payments of uid 1, written as ABillS writes one.
    let mut conn = ab.db.conn();
    conn.query_drop(
        "INSERT INTO fees (date, sum, dsc, last_deposit, uid, bill_id) \
         SELECT NOW(), 12.3456, 'Monthly fee', deposit, 1, 1 FROM bills WHERE id = 1",
    )
    .unwrap();
    conn.query_drop("UPDATE bills SET deposit = deposit - 12.3456 WHERE id = 1")
        .unwrap();
    paid(&ab.get(&pay_query("206", "1", "1.00")));
    // A payment ABillS's script made before the switch (the fixture's OSM:777, prv_txn 1),
    // retried since: our row has no payment_ref, its payments row is found by its text.
    assert_eq!(paid(&ab.get(&pay_query("777", "1", "100.00"))), 1);
    assert_eq!(payment_ref(&ab, "777"), (0, 1));

    let run = audit(&ab.site.config_path(), &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(
        run.out
            .contains("payments   7 checked: 6 credited (301.50), 1 cancelled"),
        "{}",
        run.out
    );
    assert!(run.out.contains("balances   4 checked"), "{}", run.out);
    assert!(run.out.contains("\nclean: no discrepancy\n"), "{}", run.out);
    // ABillS's own payment of 2024 (the fixture's OSM:777) is before paysys's first.
    assert!(
        run.out
            .contains("billing    0 rows of our systems not in paysys_txn"),
        "{}",
        run.out
    );
}

/// ABillS's script credited one payment twice before the switch (two `payments` rows with
/// its text; `ext_id` has no UNIQUE key), and the terminal retried it since: the payment is
/// judged once, and the second row is named as a discrepancy.
#[test]
fn abills_a_payment_the_old_script_credited_twice_is_named() {
    let ab = abills();
    assert_eq!(paid(&ab.get(&pay_query("777", "1", "100.00"))), 1);
    assert_eq!(payment_ref(&ab, "777"), (0, 1));
    let mut conn = ab.db.conn();
    conn.query_drop(
        "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, method, ext_id, \
         bill_id, reg_date) SELECT date + INTERVAL 1 SECOND, sum, dsc, ip, last_deposit + sum, \
         uid, aid, method, ext_id, bill_id, reg_date FROM payments WHERE ext_id = 'OSM:777'",
    )
    .unwrap();
    let second: u64 = conn
        .query_first("SELECT MAX(id) FROM payments WHERE ext_id = 'OSM:777'")
        .unwrap()
        .unwrap();
    let first: u64 = conn
        .query_first("SELECT MIN(id) FROM payments WHERE ext_id = 'OSM:777'")
        .unwrap()
        .unwrap();
    let run = audit(&ab.site.config_path(), &[]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    let line = run.has(
        "unknown",
        Some("777"),
        &format!("payments row {second} (100.00 to uid 1, bill 1) carries ext_id 'OSM:777'"),
    );
    assert!(
        line.contains(&format!("as payments row {first} does")),
        "{line}"
    );
    assert!(
        line.contains("credited this payment more than once"),
        "{line}"
    );
    assert_eq!(run.lines("unknown").len(), 1, "{}", run.out);
    // Judged once: five payments of ours and 777, counted once each.
    assert!(
        run.out
            .contains("payments   6 checked: 6 credited (340.50), 0 cancelled"),
        "{}",
        run.out
    );
}

#[test]
fn abills_each_discrepancy_is_named_with_what_to_do() {
    let ab = abills();
    for (txn, uid, sum) in [
        ("207", "8", "1.00"),
        ("208", "8", "2.00"),
        ("209", "2", "3.00"),
    ] {
        paid(&ab.get(&pay_query(txn, uid, sum)));
    }
    let mut conn = ab.db.conn();
    // 201: its payments row deleted, as ABillS's interface deletes one (deposit lowered).
    let (p201, _) = payment_ref(&ab, "201");
    conn.exec_drop("DELETE FROM payments WHERE id = ?", (p201,))
        .unwrap();
    conn.query_drop("UPDATE bills SET deposit = deposit - 100 WHERE id = 1")
        .unwrap();
    // 203: another sum on the payment; 205: the log row names another subscriber.
    let (p203, _) = payment_ref(&ab, "203");
    conn.exec_drop("UPDATE payments SET sum = 3.00 WHERE id = ?", (p203,))
        .unwrap();
    let (_, l205) = payment_ref(&ab, "205");
    conn.exec_drop("UPDATE paysys_log SET uid = 2 WHERE id = ?", (l205,))
        .unwrap();
    // 202: its log row left "processing".
    let (_, l202) = payment_ref(&ab, "202");
    conn.exec_drop("UPDATE paysys_log SET status = 1 WHERE id = ?", (l202,))
        .unwrap();
    // 204: cancelled in our ledger only.
    conn.query_drop("UPDATE paysys_txn SET cancelled = NOW() WHERE txn_id = '204'")
        .unwrap();
    // A payment of our system written after the switch by the old script.
    ab.abills_script_pays(44, "OSM:999", 1, 1, "9.00", "txn_id, 999\n");
    // Bill 9 (uid 8): the deposit raised by hand between 207 and 208.
    let (p208, _) = payment_ref(&ab, "208");
    conn.exec_drop(
        "UPDATE payments SET last_deposit = last_deposit + 5 WHERE id = ?",
        (p208,),
    )
    .unwrap();
    conn.query_drop("UPDATE bills SET deposit = deposit + 5 WHERE id = 9")
        .unwrap();

    // 209: its payment moved onto another subscriber's bill.
    let (p209, _) = payment_ref(&ab, "209");
    conn.exec_drop("UPDATE payments SET bill_id = 1 WHERE id = ?", (p209,))
        .unwrap();

    let run = audit(&ab.site.config_path(), &[]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    run.has(
        "missing",
        Some("201"),
        &format!("payments row {p201} is missing"),
    );
    run.has(
        "differs",
        Some("203"),
        "has sum 3.00, paysys credited 30.00",
    );
    run.has("differs", Some("205"), "names uid 2, paysys credited uid 5");
    run.has(
        "differs",
        Some("202"),
        "has status 1 (processing), not 2 (complete)",
    );
    run.has("not-reversed", Some("204"), "payments row");
    run.has("not-reversed", Some("204"), "not 3 (cancelled)");
    run.has(
        "differs",
        Some("209"),
        "raised bill 1, which is uid 1's, not uid 2's",
    );
    run.has("unknown", None, "payments row");
    run.has("unknown", None, "'OSM:999', 9.00 to uid 1");
    run.has("unknown", None, "paysys_log row");
    let gap = run.has("balance", None, "bill 9 (uid 8)");
    assert!(gap.contains("5.00 moved without a row"), "{gap}");
    assert!(run.out.contains("discrepancies: "), "{}", run.out);
    let log = ab.site.log();
    assert!(
        log.lines()
            .any(|l| l.contains("cmd=audit") && l.contains(" result=1 ")),
        "{log}"
    );
}

#[test]
fn abills_from_to_and_system_choose_what_is_audited() {
    let ab = Abills::with_systems(&format!(
        "{}{}",
        system("osmp", DEFAULT_ALLOW, ""),
        system(
            "qiwi",
            &["192.0.2.50"],
            "abills_id = 45\ntxn_prefix = \"QIW\""
        )
    ));
    paid(&ab.get(&pay_query("301", "1", "1.00")));
    paid(&ab.get_from("192.0.2.50", &pay_query("302", "6", "2.00")));
    paid(&ab.get_from("192.0.2.50", &pay_query("303", "7", "3.00")));
    let mut conn = ab.db.conn();
    // 303 was paid three days ago: not in the default range (yesterday and today).
    conn.query_drop(
        "UPDATE paysys_txn SET created = created - INTERVAL 3 DAY WHERE txn_id = '303'",
    )
    .unwrap();
    let (p302, _) = payment_ref(&ab, "302");
    conn.exec_drop("UPDATE payments SET uid = 7 WHERE id = ?", (p302,))
        .unwrap();

    let run = audit(&ab.site.config_path(), &["--system", "osmp"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(run.out.contains("payments   1 checked"), "{}", run.out);

    let run = audit(&ab.site.config_path(), &["--system", "qiwi"]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    assert!(run.out.contains("payments   1 checked"), "{}", run.out);
    run.has(
        "differs",
        Some("302"),
        "credits uid 7, paysys credited uid 6",
    );

    let today = chrono::Local::now().date_naive();
    let back = |days: i64| (today - chrono::Duration::days(days)).to_string();
    let run = audit(
        &ab.site.config_path(),
        &["--from", &back(3), "--to", &back(3)],
    );
    assert!(
        run.out.contains("payments   1 checked"),
        "{}{}",
        run.out,
        run.err
    );
    let run = audit(&ab.site.config_path(), &["--from", &back(5)]);
    assert!(
        run.out.contains("payments   3 checked"),
        "{}{}",
        run.out,
        run.err
    );
    let run = audit(
        &ab.site.config_path(),
        &["--from", "2020-01-01", "--to", "2020-01-31"],
    );
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(run.out.contains("payments   0 checked"), "{}", run.out);
    assert!(run.out.contains("billing    not looked at"), "{}", run.out);

    // ABillS's old script, still answering after the switch: its rows are found, also
    // above where the audit starts reading paysys_log (our last log row before the range).
    ab.abills_script_pays(44, "OSM:998", 1, 1, "1.00", "txn_id, 998\n");
    let run = audit(&ab.site.config_path(), &["--system", "osmp"]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    run.has("unknown", None, "payments row");
    run.has("unknown", None, "paysys_log row");
    assert_eq!(run.lines("unknown").len(), 2, "{}", run.out);
}

#[test]
fn a_database_error_exits_2_and_says_what_to_do() {
    let ab = abills();
    let mut conn = ab.db.conn();
    conn.query_drop("ALTER TABLE paysys_txn DROP INDEX payment_ref")
        .unwrap();
    let run = audit(&ab.site.config_path(), &[]);
    assert_eq!(run.code, Some(2), "{}{}", run.out, run.err);
    assert!(run.err.contains("load sql/paysys.sql again"), "{}", run.err);
    conn.query_drop("CREATE INDEX payment_ref ON paysys_txn (payment_ref)")
        .unwrap();
    conn.query_drop("DROP TABLE fees").unwrap();
    let run = audit(&ab.site.config_path(), &[]);
    assert_eq!(run.code, Some(2), "{}{}", run.out, run.err);
    assert!(run.err.contains("fees"), "{}", run.err);
    let log = ab.site.log();
    assert!(
        log.lines()
            .any(|l| l.contains("cmd=audit") && l.contains(" result=2 ")),
        "{log}"
    );
    // A usage error, too.
    let run = audit(&ab.site.config_path(), &["--from", "yesterday"]);
    assert_eq!(run.code, Some(2));
    assert!(run.err.contains("is not a date"), "{}", run.err);
}
