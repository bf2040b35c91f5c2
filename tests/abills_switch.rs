//! The switch-over from ABillS's own `paysys_check.cgi`, on both ABillS DDLs that exist in
//! the field: 1.20's (`sql/abills.sql`, ids cut at 24 and 28 characters) and 1.50's
//! (`tests/fixtures/abills-1.50.sql`, ABillS's own DDL, 50 characters), under the server's
//! strict SQL mode. The payments ABillS's script made before the switch are written as that
//! script writes them (a non-strict session, so the server cuts long ids), and then retried,
//! asked about and cancelled through the real `paysys_check` executable. Also here: ids that
//! differ only in letter case, ABillS's script writing the same payment beside us, and the
//! clock `payments.date` is taken from.

mod common;

use std::time::Duration;

use common::abills::{system, Abills, Ddl, DEFAULT_ALLOW};
use common::{pay_query, txn_date, Answer};
use mysql::prelude::Queryable;

/// A 20-digit OSMP txn_id: with ABillS's old-scheme prefix "OSMP" (docs/ABILLS.md, "Legacy
/// rows"), "OSMP:" and it are 25 characters, one more than ABillS 1.20's column.
const LONG_TXN: &str = "12345678901234567890";

fn ok(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.result(), 0, "{}", a.body);
    a.prv_txn().unwrap_or_default()
}

fn refused(a: &Answer, result: i32, comment: &str) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (result, comment),
        "{}",
        a.body
    );
}

/// ABillS's `paysys_log.info` of an OSMP pay.
fn osmp_info(txn: &str, account: &str, sum: &str) -> String {
    format!(
        "account, {account}\ncommand, pay\nsum, {sum}\ntxn_date, 20240501100000\ntxn_id, {txn}\n"
    )
}

/// The old-scheme OSMP system: prefix "OSMP", ABillS id 44.
fn osmp_old_scheme() -> String {
    system("osmp", DEFAULT_ALLOW, "txn_prefix = \"OSMP\"")
}

fn the_text_cut(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

// ----- item: ids longer than ABillS's narrowest column -----------------------------------------

fn a_long_id_abills_script_paid_is_a_repeat_not_a_second_credit(ddl: Ddl) {
    let ab = Abills::on_ddl(ddl, &osmp_old_scheme());
    let whole = format!("OSMP:{LONG_TXN}");
    let log_id = ab.abills_script_pays(
        44,
        &whole,
        1,
        1,
        "100.00",
        &osmp_info(LONG_TXN, "1", "100.00"),
    );
    let (log_width, ext_width) = ddl.widths();
    // What the server kept of the text: cut to each column on 1.20, whole on 1.50.
    assert_eq!(
        ab.paysys_log()[1].transaction_id,
        the_text_cut(&whole, log_width)
    );
    assert_eq!(ab.payments()[1].ext_id, the_text_cut(&whole, ext_width));
    let paid = ab.deposit(1);
    let payments = ab.payments().len();

    // The terminal's retry after the switch: the first answer, nothing credited.
    for _ in 0..2 {
        let a = ab.get(&pay_query(LONG_TXN, "1", "100.00"));
        assert_eq!(ok(&a), log_id.to_string(), "{ddl:?}: {}", a.body);
    }
    assert_eq!(ab.deposit(1), paid, "{ddl:?}: credited again");
    assert_eq!(ab.payments().len(), payments, "{ddl:?}");
    // Its status is the payment's.
    let a = ab.get(&format!("command=status&txn_id={LONG_TXN}"));
    assert_eq!(ok(&a), log_id.to_string(), "{ddl:?}");
    // Another sum for the same id: a conflict, nothing credited.
    refused(&ab.get(&pay_query(LONG_TXN, "1", "99.00")), 7, "nod11");
    assert_eq!(ab.deposit(1), paid, "{ddl:?}");

    // Another id whose first 24 characters are the same: on 1.20 its cut text is the one
    // ABillS's script kept, but the request ABillS kept (info) names another id. A new
    // payment, credited once, written whole where the columns hold it.
    let next = "12345678901234567891";
    let a = ab.get(&pay_query(next, "1", "10.00"));
    let prv_txn = ok(&a);
    assert_ne!(prv_txn, log_id.to_string(), "{ddl:?}");
    assert_ne!(ab.deposit(1), paid, "{ddl:?}: a new payment is credited");
    let written = match ddl {
        Ddl::V1_20 => paysys::billing::abills::transaction_id("OSMP", next),
        Ddl::V1_50 => format!("OSMP:{next}"),
    };
    assert_eq!(ab.payment(&written).sum, "10.00", "{ddl:?}");
    assert_eq!(ab.log_row(&written).id.to_string(), prv_txn, "{ddl:?}");
    // Its repeat, and its status.
    assert_eq!(ok(&ab.get(&pay_query(next, "1", "10.00"))), prv_txn);
    assert_eq!(
        ok(&ab.get(&format!("command=status&txn_id={next}"))),
        prv_txn
    );
}

#[test]
fn a_long_id_abills_script_paid_is_a_repeat_on_abills_1_20() {
    a_long_id_abills_script_paid_is_a_repeat_not_a_second_credit(Ddl::V1_20);
}

#[test]
fn a_long_id_abills_script_paid_is_a_repeat_on_abills_1_50() {
    a_long_id_abills_script_paid_is_a_repeat_not_a_second_credit(Ddl::V1_50);
}

/// A GUID (City24 and other protocols' ids): 40 characters with its prefix.
fn a_guid_is_written_whole_where_abills_holds_it(ddl: Ddl) {
    let ab = Abills::on_ddl(
        ddl,
        &system("city24", DEFAULT_ALLOW, "account = \"login\"")
            .replace("protocol = \"osmp\"", "protocol = \"city24\""),
    );
    let guid = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
    let pay = format!(
        "QueryType=pay&TransactionId={guid}&Account=test1&Amount=5.00&TransactionDate={}",
        txn_date(-1)
    );
    assert_eq!(code(&ab.get(&pay)), 0);
    let whole = format!("CIT:{guid}");
    let written = match ddl {
        Ddl::V1_20 => paysys::billing::abills::transaction_id("CIT", guid),
        Ddl::V1_50 => whole.clone(),
    };
    assert_eq!(ab.payment(&written).sum, "5.00", "{ddl:?}");
    assert_eq!(ab.log_row(&written).status, 2, "{ddl:?}");
    // A retry: nothing more.
    let paid = ab.deposit(1);
    assert_eq!(code(&ab.get(&pay)), 0);
    assert_eq!(ab.deposit(1), paid);
    // Cancelled through RevertId: ABillS's rows reversed.
    let cancel = format!(
        "QueryType=cancel&TransactionId=C1&RevertId={guid}&Amount=5.00&Account=test1&RevertDate={}",
        txn_date(-1)
    );
    assert_eq!(code(&ab.get(&cancel)), 0);
    assert_eq!(ab.log_row(&written).status, 3, "{ddl:?}");
    assert!(ab.payments().iter().all(|p| p.ext_id != written));
}

#[test]
fn a_guid_is_hashed_on_abills_1_20() {
    a_guid_is_written_whole_where_abills_holds_it(Ddl::V1_20);
}

#[test]
fn a_guid_is_written_whole_on_abills_1_50() {
    a_guid_is_written_whole_where_abills_holds_it(Ddl::V1_50);
}

// ----- item: cancel of a payment ABillS's script made --------------------------------------------

fn city24_code(a: &Answer) -> i32 {
    code(a)
}

fn code(a: &Answer) -> i32 {
    a.element("ResultCode")
        .unwrap_or_else(|| panic!("no ResultCode: {a:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("ResultCode: {a:?}"))
}

fn a_payment_abills_script_made_is_cancelled_as_abills_would(ddl: Ddl) {
    // The fixture's OSM:777: 100.00 to test1 (bill 1, now 12.50), paysys_log.id 1, paid by
    // ABillS's script; no retry reached paysys before the cancel.
    let ab = Abills::on_ddl(
        ddl,
        &(system("osmp", &["127.0.0.1"], "account = \"login\"")
            + &system(
                "qiwi",
                &["10.0.0.13"],
                "abills_id = 45\ntxn_prefix = \"QIW\"",
            )),
    );
    // Status says paid; so must cancel find it.
    assert_eq!(ok(&ab.get("command=status&txn_id=777")), "1");
    // Another system may not cancel it.
    let before = ab.snapshot();
    refused(
        &ab.get_from("10.0.0.13", "command=cancel&prv_txn=1"),
        300,
        "nod23",
    );
    assert_eq!(ab.snapshot(), before, "{ddl:?}");
    // Nor may a cancel that names it with another txn.
    refused(&ab.get("command=cancel&prv_txn=1&txn_id=778"), 300, "nod23");
    assert_eq!(ab.snapshot(), before, "{ddl:?}");

    // Its own system reverses it as ABillS's cancel does.
    let a = ab.get("command=cancel&prv_txn=1");
    assert_eq!(ok(&a), "1", "{ddl:?}");
    assert_eq!(ab.deposit(1), "-87.50", "{ddl:?}: the deposit back");
    assert!(
        ab.payments().iter().all(|p| p.ext_id != "OSM:777"),
        "{ddl:?}"
    );
    assert_eq!(ab.log_row("OSM:777").status, 3, "{ddl:?}");
    // Again: the same answer, nothing reversed twice.
    let after = ab.snapshot();
    assert_eq!(ok(&ab.get("command=cancel&prv_txn=1")), "1");
    assert_eq!(ok(&ab.get("command=cancel&prv_txn=1&txn_id=777")), "1");
    assert_eq!(ab.snapshot(), after, "{ddl:?}");
    // The terminal's retry of the pay is refused, never credited again.
    refused(&ab.get(&pay_query("777", "test1", "100.00")), 7, "nod22");
    assert_eq!(ab.deposit(1), "-87.50", "{ddl:?}");
}

#[test]
fn a_payment_abills_script_made_is_cancelled_on_abills_1_20() {
    a_payment_abills_script_made_is_cancelled_as_abills_would(Ddl::V1_20);
}

#[test]
fn a_payment_abills_script_made_is_cancelled_on_abills_1_50() {
    a_payment_abills_script_made_is_cancelled_as_abills_would(Ddl::V1_50);
}

fn city24() -> String {
    system("city24", DEFAULT_ALLOW, "account = \"login\"")
        .replace("protocol = \"osmp\"", "protocol = \"city24\"")
}

#[test]
fn a_revert_of_a_payment_abills_script_made_goes_through_the_same_lookup() {
    for ddl in Ddl::ALL {
        let ab = Abills::on_ddl(ddl, &city24());
        // City24 is ABillS's USMP module, system 47, prefix CIT; a GUID id, cut on 1.20.
        let guid = "0D7C5E5A-3B4C-4E61-9A5B-7C8D9E0F1A2B";
        let whole = format!("CIT:{guid}");
        let info =
            format!("Account, test1\nAmount, 20.00\nQueryType, pay\nTransactionId, {guid}\n");
        ab.abills_script_pays(47, &whole, 1, 1, "20.00", &info);
        assert_eq!(ab.deposit(1), "32.50");
        let revert = |id: &str| {
            format!(
                "QueryType=cancel&TransactionId={id}&RevertId={guid}&Amount=20.00&Account=test1&RevertDate={}",
                txn_date(-1)
            )
        };
        assert_eq!(city24_code(&ab.get(&revert("R1"))), 0, "{ddl:?}");
        assert_eq!(ab.deposit(1), "12.50", "{ddl:?}");
        // A repeated revert: answered, nothing taken twice.
        assert_eq!(city24_code(&ab.get(&revert("R1"))), 0, "{ddl:?}");
        assert_eq!(ab.deposit(1), "12.50", "{ddl:?}");
        // The pay retried: refused, not credited.
        let pay = format!(
            "QueryType=pay&TransactionId={guid}&Account=test1&Amount=20.00&TransactionDate={}",
            txn_date(-1)
        );
        assert_eq!(city24_code(&ab.get(&pay)), 22, "{ddl:?}");
        assert_eq!(ab.deposit(1), "12.50", "{ddl:?}");
    }
}

// ----- item: ids are exact text ------------------------------------------------------------------

#[test]
fn txn_ids_that_differ_in_letter_case_are_never_one_payment() {
    for ddl in Ddl::ALL {
        let ab = Abills::on_ddl(ddl, &city24());
        let pay = |id: &str| {
            format!(
                "QueryType=pay&TransactionId={id}&Account=test1&Amount=7.00&TransactionDate={}",
                txn_date(-1)
            )
        };
        assert_eq!(code(&ab.get(&pay("PbA7x"))), 0);
        let paid = ab.deposit(1);
        let before = ab.snapshot();
        // ABillS's ext_id and its UNIQUE key compare ignoring case: it cannot keep both,
        // so the second is refused, never answered with the first's success.
        let a = ab.get(&pay("pba7X"));
        assert_eq!(code(&a), 22, "{ddl:?}: {a:?}");
        assert_eq!(ab.snapshot(), before, "{ddl:?}: nothing written");
        assert_eq!(ab.deposit(1), paid);
        // The first one's repeat is still its repeat.
        assert_eq!(code(&ab.get(&pay("PbA7x"))), 0);
        assert_eq!(ab.deposit(1), paid);
        let txns = ab.txns();
        assert_eq!(txns.len(), 1, "{txns:?}");
        assert_eq!(txns[0].txn_id, "PbA7x");
    }
}

#[test]
fn txn_ids_that_differ_in_letter_case_are_two_payments_on_nodeny() {
    let db = common::TestDb::new();
    let site = common::Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n{}",
        db.url,
        system("city24", DEFAULT_ALLOW, "account = \"id\"")
            .replace("protocol = \"osmp\"", "protocol = \"city24\"")
    ));
    let balance = |conn: &mut mysql::Conn| -> String {
        conn.query_first("SELECT CAST(balance AS CHAR) FROM users WHERE id = 5907")
            .unwrap()
            .unwrap()
    };
    let mut conn = db.conn();
    let start = balance(&mut conn);
    let config = site.config_path().to_string_lossy().into_owned();
    let pay = |id: &str| {
        let q = format!(
            "QueryType=pay&TransactionId={id}&Account=5907&Amount=7.00&TransactionDate={}",
            txn_date(-1)
        );
        common::abills::run_paysys_check(
            &[
                ("GATEWAY_INTERFACE", "CGI/1.1"),
                ("PAYSYS_CONFIG", &config),
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", &q),
                ("REMOTE_ADDR", "127.0.0.1"),
            ],
            b"",
        )
    };
    assert_eq!(code(&pay("PbA7x")), 0);
    assert_eq!(code(&pay("pba7X")), 0);
    assert_eq!(code(&pay("pba7X")), 0, "a repeat");
    let count: u64 = conn
        .query_first("SELECT COUNT(*) FROM pays WHERE mid = 5907")
        .unwrap()
        .unwrap();
    let credited: String = conn
        .query_first(format!(
            "SELECT CAST(balance - {start} AS DECIMAL(16,2)) FROM users WHERE id = 5907"
        ))
        .unwrap()
        .unwrap();
    assert_eq!(credited, "14.00", "two payments, {count} pays rows");
}

// ----- item: ABillS's script writing the same payment beside us -----------------------------------

/// Waits until the pay waits for the bill's row (held by the script).
fn until_a_lock_wait(conn: &mut mysql::Conn) {
    for _ in 0..500 {
        let waiting: u64 = conn
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'UPDATE bills SET deposit = (@paysys_deposit%'",
            )
            .unwrap()
            .unwrap();
        if waiting > 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the pay never waited for the bill's lock");
}

/// ABillS's script, in its own transaction, holds the bill while it pays txn 900, and our
/// pay of the same txn comes in between: it has written its `paysys_log` row and waits for
/// the bill. The script's payment goes in, and its log row meets ours on the UNIQUE key
/// while we wait for its bill: the server ends one of the two as a deadlock. Either way the
/// payment is credited once — ours rolled back and tried again finds the script's payment
/// (a repeat with its answer); the script's rolled back leaves ours. Run on a server in
/// READ COMMITTED, as some installs (and Galera setups) are, and in the default REPEATABLE
/// READ.
#[test]
fn a_payment_abills_script_commits_while_we_pay_it_is_a_repeat() {
    on_both_isolations("switch", |server, ddl, isolation| {
        script_pays_beside_us(server, ddl, isolation, false)
    });
}

/// `case` on a private server in READ COMMITTED, as some installs (and Galera setups) are,
/// and on one in the default REPEATABLE READ, with each ABillS DDL.
fn on_both_isolations(name: &str, case: impl Fn(&str, Ddl, &str)) {
    for isolation in ["READ-COMMITTED", "REPEATABLE-READ"] {
        let Some(server) = common::mariadb::PrivateServer::start(
            &format!("{name}_{}", isolation.to_lowercase().replace('-', "_")),
            &[&format!("--transaction-isolation={isolation}")],
        )
        .unwrap_or_else(|e| panic!("{e}")) else {
            return;
        };
        for ddl in Ddl::ALL {
            case(&server.url(), ddl, isolation);
        }
    }
}

/// As above, but the way ABillS's script really writes: its payment (and the bill) are
/// committed first, and its `paysys_log` row is written after, on its own. Nothing of the
/// script's then meets our `paysys_log` row while we wait for the bill, so only our pay's
/// look for the txn's rows, made by the statement that completes our row once the script
/// has let the bill go, stops a second payment: it finds the script's, and our pay is
/// made again looking first — a repeat. (When that look came first, it was its gap lock
/// that stopped the script's payment, and a server in READ COMMITTED, which takes no gap
/// locks, credited the txn twice: our sessions ask for REPEATABLE READ.)
#[test]
fn a_payment_abills_script_commits_before_its_log_row_is_credited_once() {
    on_both_isolations("switch_log", |server, ddl, isolation| {
        script_pays_beside_us(server, ddl, isolation, true)
    });
}

/// Waits until the pay's last statement, the one that completes our row, has waited for a
/// lock a while; `false` when the pay ended first.
fn until_the_completion_waits(
    conn: &mut mysql::Conn,
    pay: &std::thread::ScopedJoinHandle<'_, Answer>,
) -> bool {
    while !pay.is_finished() {
        let waiting: u64 = conn
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'UPDATE paysys_txn SET %' AND TIME_MS > 300",
            )
            .unwrap()
            .unwrap();
        if waiting > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// ABillS's script has written its payment of txn 901, not yet committed, when our pay of
/// it comes. Our pay looks for the txn's rows only in its last statement, and the script
/// does not hold the bill here (ABillS's own script takes the bill first: then our pay
/// waits for the bill, as above; this is the script paying another bill of the same
/// subscriber's txn, or any writer of a payment without the bill), so our pay writes its
/// rows, and its last statement, which looks under lock, waits for the script. The script
/// commits: our pay rolls back, is made again looking first, and finds the script's
/// payment — a repeat, nothing credited by us. Or the script rolls back: our pay goes on
/// and credits the txn. Once, either way, on servers in READ COMMITTED and in REPEATABLE
/// READ: our sessions read in REPEATABLE READ on both, where that look locks (a snapshot
/// read would not wait, and would credit the txn twice).
#[test]
fn a_payment_abills_script_writes_while_our_pay_completes_is_credited_once() {
    on_both_isolations("switch_late", |server, ddl, isolation| {
        for script_commits in [true, false] {
            script_pays_while_we_complete(server, ddl, isolation, script_commits);
        }
    });
}

fn script_pays_while_we_complete(server: &str, ddl: Ddl, isolation: &str, commits: bool) {
    let case = format!("{ddl:?} {isolation}, the script commits: {commits}");
    let (ab, mut script, mut watch) = beside_abills_script(server, ddl);
    let mut tx = script.start_transaction(mysql::TxOpts::default()).unwrap();
    tx.query_drop(
        "INSERT INTO payments (id, date, sum, dsc, uid, aid, method, ext_id, bill_id, \
         amount, reg_date, last_deposit) VALUES (70, NOW(), 10, 'OSMP Payments', 1, 2, 2, \
         'OSM:901', 1, 10, NOW(), 12.5)",
    )
    .unwrap();
    let query = pay_query("901", "1", "10.00");
    let answer = std::thread::scope(|s| {
        let pay = s.spawn(|| ab.get(&query));
        if !until_the_completion_waits(&mut watch, &pay) {
            let answer = pay.join().unwrap();
            panic!(
                "{case}: the pay ended without waiting: {answer:?} {}",
                ab.site.log()
            );
        }
        if commits {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
        pay.join().unwrap()
    });
    ok(&answer);
    let payments = ab.payments();
    assert_eq!(payments.len(), 2, "{case}: {payments:?}");
    if commits {
        // The script's payment, found by the pay made again: our bill untouched.
        assert_eq!(ab.deposit(1), "12.50", "{case}");
        assert!(payments.iter().any(|p| p.id == 70), "{case}: {payments:?}");
    } else {
        assert_eq!(ab.deposit(1), "22.50", "{case}");
    }
    assert_eq!(ok(&ab.get(&query)), ok(&answer), "{case}");
}

/// An ABillS of `ddl` on `server` with an OSMP system, a session writing as ABillS's script
/// does (non-strict), and one to watch the server with.
fn beside_abills_script(server: &str, ddl: Ddl) -> (Abills, mysql::Conn, mysql::Conn) {
    let db = common::TestDb::on_server(server, &ddl.fixture());
    let ab = Abills::on(db, &system("osmp", DEFAULT_ALLOW, ""));
    let mut script = ab.db.conn();
    let watch = ab.db.conn();
    script
        .query_drop("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        .unwrap();
    (ab, script, watch)
}

fn script_pays_beside_us(server: &str, ddl: Ddl, isolation: &str, log_after_commit: bool) {
    let (ab, mut script, mut watch) = beside_abills_script(server, ddl);
    let mut tx = script.start_transaction(mysql::TxOpts::default()).unwrap();
    tx.query_drop("SELECT deposit FROM bills WHERE id = 1 FOR UPDATE")
        .unwrap();
    let query = pay_query("900", "1", "10.00");
    let (answer, script_paid) = std::thread::scope(|s| {
        let pay = s.spawn(|| ab.get(&query));
        until_a_lock_wait(&mut watch);
        tx.query_drop("UPDATE bills SET deposit = deposit + 10 WHERE id = 1")
            .unwrap();
        // The script's log row meets ours on the UNIQUE key while we wait for its bill:
        // where the deadlock may end it.
        const LOG_ROW: &str = "INSERT INTO paysys_log (id, system_id, datetime, sum, uid, \
             transaction_id, info, paysys_ip, domain_id, status) VALUES (50, 44, NOW(), 10, 1, \
             'OSM:900', 'txn_id, 900\n', 0, 0, 2)";
        let paid = tx.query_drop(
            "INSERT INTO payments (date, sum, dsc, uid, aid, method, ext_id, bill_id, \
             amount, reg_date, last_deposit) VALUES (NOW(), 10, 'OSMP Payments', 1, 2, 2, \
             'OSM:900', 1, 10, NOW(), 12.5)",
        );
        let logged = if log_after_commit {
            paid
        } else {
            paid.and_then(|()| tx.query_drop(LOG_ROW))
        };
        let script_paid = match logged {
            Ok(()) => {
                tx.commit().unwrap();
                if log_after_commit {
                    // Its log row, on its own: our row of the txn may have taken the key.
                    let _ = watch.query_drop(LOG_ROW);
                }
                true
            }
            // The script chosen as the deadlock's victim: rolled back whole.
            Err(e) => {
                assert!(
                    e.to_string().contains("Deadlock"),
                    "{ddl:?} {isolation}: {e}"
                );
                drop(tx);
                false
            }
        };
        (pay.join().unwrap(), script_paid)
    });
    // Credited once, whoever paid it.
    assert_eq!(ab.deposit(1), "22.50", "{ddl:?} {isolation}");
    assert_eq!(ab.payments().len(), 2, "{ddl:?} {isolation}");
    let first = ok(&answer);
    if log_after_commit {
        return;
    }
    if script_paid {
        // The script's payment is this one: a repeat with its answer.
        assert_eq!(first, "50", "{ddl:?} {isolation}: {}", answer.body);
    }
    assert_eq!(ok(&ab.get(&query)), first, "{ddl:?} {isolation}");
}

#[test]
fn a_duplicate_of_another_key_is_a_temporary_answer_not_a_refusal() {
    for ddl in Ddl::ALL {
        let ab = Abills::on_ddl(ddl, &system("osmp", DEFAULT_ALLOW, ""));
        // A paysys_log insert that meets the primary key (here: a trigger that reuses row
        // 1's id) says nothing about this txn: the terminal must retry, not give up.
        ab.db
            .conn()
            .query_drop(
                "CREATE TRIGGER reuse_id BEFORE INSERT ON paysys_log FOR EACH ROW SET NEW.id = 1",
            )
            .unwrap();
        let before = ab.snapshot();
        let a = ab.get(&pay_query("901", "1", "10.00"));
        assert_eq!(a.result(), 1, "{ddl:?}: {}", a.body);
        assert_eq!(ab.snapshot(), before, "{ddl:?}: nothing written");
        // Once the fault is gone, the retry pays.
        ab.db.conn().query_drop("DROP TRIGGER reuse_id").unwrap();
        ok(&ab.get(&pay_query("901", "1", "10.00")));
        assert_eq!(ab.deposit(1), "22.50", "{ddl:?}");
    }
}

// ----- item: the clock of payments.date ---------------------------------------------------------

#[test]
fn payments_date_is_the_web_servers_clock_as_abills_writes_it() {
    let ab = Abills::new("");
    let config = ab.site.config_path().to_string_lossy().into_owned();
    let query = pay_query("902", "1", "10.00");
    // The web server runs in Tokyo (UTC+9, no daylight saving); the database's clock does
    // not.
    let a = common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", &query),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("TZ", "Asia/Tokyo"),
        ],
        b"",
    );
    ok(&a);
    let mut conn = ab.db.conn();
    let tokyo = chrono::Utc::now() + chrono::Duration::hours(9);
    let close_to_tokyo = |text: String| {
        let at = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").unwrap();
        (at - tokyo.naive_utc()).num_seconds().abs() < 120
    };
    let date: String = conn
        .query_first("SELECT CAST(date AS CHAR) FROM payments WHERE ext_id = 'OSM:902'")
        .unwrap()
        .unwrap();
    let logged: String = conn
        .query_first(
            "SELECT CAST(datetime AS CHAR) FROM paysys_log WHERE transaction_id = 'OSM:902'",
        )
        .unwrap()
        .unwrap();
    let utc_now: String = conn
        .query_first("SELECT CAST(UTC_TIMESTAMP() AS CHAR)")
        .unwrap()
        .unwrap();
    assert!(
        close_to_tokyo(date.clone()),
        "payments.date {date}, UTC now {utc_now}"
    );
    assert!(
        close_to_tokyo(logged.clone()),
        "paysys_log.datetime {logged}"
    );
}

// ----- cancels of cut ids: only the payment that is certainly the one named ---------------------

#[test]
fn a_cancel_of_a_cut_id_reverses_that_payment_and_no_neighbour() {
    let ddl = Ddl::V1_20;
    let ab = Abills::on_ddl(ddl, &osmp_old_scheme());
    // Before the switch ABillS's script paid X and Y, whose texts share their first 24
    // characters: both payments rows hold the whole 25 characters (ext_id is 28 wide); X's
    // log row holds the cut 24, and Y's log row could not be written (the key held X's).
    let (x, y, z) = (LONG_TXN, "12345678901234567891", "12345678901234567892");
    let log_x = ab.abills_script_pays(
        44,
        &format!("OSMP:{x}"),
        1,
        1,
        "100.00",
        &osmp_info(x, "1", "100.00"),
    );
    {
        let mut conn = ab.db.conn();
        conn.query_drop("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
            .unwrap();
        conn.exec_drop(
            "INSERT INTO payments (date, sum, dsc, uid, aid, method, ext_id, bill_id, amount, \
             reg_date, last_deposit) VALUES (NOW(), 30, 'OSMP Payments', 1, 2, 2, ?, 1, 30, \
             NOW(), 0)",
            (format!("OSMP:{y}"),),
        )
        .unwrap();
        conn.query_drop("UPDATE bills SET deposit = deposit + 30 WHERE id = 1")
            .unwrap();
    }
    assert_eq!(ab.deposit(1), "142.50");
    let before = ab.snapshot();
    // Named with another txn: the cut text is X's (its info says so), not Z's.
    refused(
        &ab.get(&format!("command=cancel&prv_txn={log_x}&txn_id={z}")),
        300,
        "nod23",
    );
    assert_eq!(ab.snapshot(), before);
    // By prv_txn alone: the whole id is read back from the request ABillS kept, and X's
    // payment — only X's — is reversed.
    assert_eq!(
        ok(&ab.get(&format!("command=cancel&prv_txn={log_x}"))),
        log_x.to_string()
    );
    assert_eq!(ab.deposit(1), "42.50");
    let left: Vec<String> = ab.payments().into_iter().map(|p| p.ext_id).collect();
    assert!(left.contains(&format!("OSMP:{y}")), "{left:?}");
    assert!(!left.contains(&format!("OSMP:{x}")), "{left:?}");
    // X's retry is refused; the ledger now holds the cancel under X's whole id.
    refused(&ab.get(&pay_query(x, "1", "100.00")), 7, "nod22");
    assert!(ab.txn("osmp", x).cancelled);
    assert_eq!(ab.deposit(1), "42.50");
}

#[test]
fn a_cancel_that_cannot_tell_the_payment_reverses_nothing() {
    let ab = Abills::on_ddl(Ddl::V1_20, &osmp_old_scheme());
    // A log row cut to 24 characters whose request ABillS did not keep (empty info): which
    // payment it was cannot be told.
    let log = ab.abills_script_pays(44, &format!("OSMP:{LONG_TXN}"), 1, 1, "100.00", "");
    let before = ab.snapshot();
    refused(
        &ab.get(&format!("command=cancel&prv_txn={log}")),
        300,
        "nod23",
    );
    assert_eq!(ab.snapshot(), before, "nothing reversed");
    // Nor when a txn is named: a cut text proves nothing without the request that says
    // whose it is (another id sharing the first 24 characters has the same text).
    refused(
        &ab.get(&format!("command=cancel&prv_txn={log}&txn_id={LONG_TXN}")),
        300,
        "nod23",
    );
    assert_eq!(ab.snapshot(), before, "nothing reversed");

    // A payment removed by hand in ABillS (its log row still says paid): not "cancelled",
    // and nothing is taken back.
    let ab = Abills::on_ddl(
        Ddl::V1_20,
        &system("osmp", DEFAULT_ALLOW, "account = \"login\""),
    );
    ab.db
        .conn()
        .query_drop("DELETE FROM payments WHERE ext_id = 'OSM:777'")
        .unwrap();
    let before = ab.snapshot();
    refused(&ab.get("command=cancel&prv_txn=1"), 300, "nod23");
    assert_eq!(ab.snapshot(), before);
}

#[test]
fn a_payment_cancelled_through_a_domain_is_not_paid_again_through_it() {
    for ddl in Ddl::ALL {
        // The fixture's OSM:777 was paid in the default domain; the terminal reaches us
        // through /paysys_check.cgi/2 now.
        let ab = Abills::on_ddl(ddl, &system("osmp", DEFAULT_ALLOW, "account = \"login\""));
        assert_eq!(
            ok(&ab.get_at("/2", "command=cancel&prv_txn=1")),
            "1",
            "{ddl:?}"
        );
        assert_eq!(ab.deposit(1), "-87.50", "{ddl:?}");
        let after = ab.snapshot();
        // Its retry, through the same domain and through the default one: never credited.
        let a = ab.get_at("/2", &pay_query("777", "test1", "100.00"));
        assert_eq!(a.result(), 7, "{ddl:?}: {}", a.body);
        refused(&ab.get(&pay_query("777", "test1", "100.00")), 7, "nod22");
        assert_eq!(ab.deposit(1), "-87.50", "{ddl:?}");
        assert_eq!(ab.snapshot(), after, "{ddl:?}");
    }
}

/// MariaDB 11.6.2 and later (Debian 13's 11.8 among them) run REPEATABLE READ with
/// `innodb_snapshot_isolation = ON` unless told otherwise: a locking read of a row that
/// another transaction committed after ours first read anything ends ours with error 1020.
/// An ABillS pay reads the subscriber and the bill, then updates the bill and looks for
/// the txn's rows under lock: pays to one bill at once met that all the time, each
/// answered a temporary error. Our sessions run the REPEATABLE READ the money path is
/// built on, where such a read waits and then sees the row; here on a server started with
/// it on, eight pays at once to one bill, each paid once, on both DDLs.
#[test]
fn pays_at_once_to_one_bill_all_pay_on_a_server_with_snapshot_isolation() {
    let Some(server) = common::mariadb::PrivateServer::start(
        "snapshot_isolation",
        &["--innodb-snapshot-isolation=ON"],
    )
    .unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let on: i64 = server
        .conn()
        .query_first("SELECT @@global.innodb_snapshot_isolation")
        .unwrap()
        .unwrap();
    assert_eq!(on, 1);
    for ddl in Ddl::ALL {
        let db = common::TestDb::on_server(&server.url(), &ddl.fixture());
        let ab = Abills::on(db, &system("osmp", DEFAULT_ALLOW, ""));
        // A write session of ours runs with it off; a session that sets nothing, with it on.
        let config = paysys::config::DatabaseConfig {
            urls: vec![ab.db.url.clone()],
            billing: paysys::config::BillingKind::Abills,
            connect_timeout: 5,
            lock_timeout: 3,
            procedure: false,
        };
        let mut ours = paysys::db::connect(&config, paysys::db::Use::Write).unwrap();
        let isolation = |conn: &mut mysql::Conn| -> i64 {
            conn.query_first("SELECT @@session.innodb_snapshot_isolation")
                .unwrap()
                .unwrap()
        };
        assert_eq!(isolation(&mut ours), 0, "{ddl:?}");
        assert_eq!(isolation(&mut ab.db.conn()), 1, "{ddl:?}");
        let (before, payments) = (ab.deposit(1), ab.payments().len());
        for round in 0..3 {
            let answers: Vec<Answer> = std::thread::scope(|s| {
                let pays: Vec<_> = (0..8)
                    .map(|i| {
                        let query = pay_query(&format!("95{round}{i}"), "1", "1.00");
                        let ab = &ab;
                        s.spawn(move || ab.get(&query))
                    })
                    .collect();
                pays.into_iter().map(|p| p.join().unwrap()).collect()
            });
            for a in &answers {
                ok(a);
            }
        }
        let after = format!("{:.2}", before.parse::<f64>().unwrap() + 24.0);
        assert_eq!(ab.deposit(1), after, "{ddl:?}");
        assert_eq!(ab.payments().len(), payments + 24, "{ddl:?}");
    }
}
