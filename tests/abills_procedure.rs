//! `[database] procedure = true`: ABillS's pay in one CALL of the stored procedure
//! `sql/abills-pay.sql` installs. It must leave the books as the statements do: every case
//! below is played on two ABillS databases, one paying statement by statement and one
//! through the procedure, and their answers and their rows compared. (The whole ABillS
//! suite runs through the procedure too, with `PAYSYS_TEST_ABILLS_PROCEDURE=1`: `.ci/run`.)

mod common;

use mysql::prelude::Queryable;
use mysql::Row;

use common::abills::{config_text, load_pay_procedure, system, Abills, DEFAULT_ALLOW};
use common::mariadb::PrivateServer;
use common::{pay_query, Answer, TestDb};

/// An ABillS paying through the procedure: loaded, and `procedure = true`.
fn through_procedure(systems: &str) -> Abills {
    with_procedure(Abills::with_systems(systems), systems)
}

/// `ab` (holding the fixture) made to pay through the procedure.
fn with_procedure(ab: Abills, systems: &str) -> Abills {
    if !common::abills::procedure_run() {
        load_pay_procedure(&mut ab.db.conn());
        ab.site
            .write_config(&config_text(&ab.db.url, systems).replace(
                "billing = \"abills\"\n",
                "billing = \"abills\"\nprocedure = true\n",
            ));
    }
    ab
}

/// [`through_procedure`] on a private server of its own where this machine can start one,
/// so that the statements each request sent can be counted ([`executed`]).
fn counted(systems: &str) -> (Abills, Option<PrivateServer>) {
    match PrivateServer::start("abills_procedure", &[]).unwrap_or_else(|e| panic!("{e}")) {
        Some(server) => {
            let db = TestDb::on_server(&server.url(), &common::abills::fixture());
            (
                with_procedure(Abills::on(db, systems), systems),
                Some(server),
            )
        }
        None => (through_procedure(systems), None),
    }
}

/// Statements executed on `server` so far (prepared ones, and CALLs).
fn executed(server: &PrivateServer) -> (u64, u64) {
    server
        .conn()
        .query_first(
            "SELECT SUM(IF(VARIABLE_NAME = 'COM_STMT_EXECUTE', VARIABLE_VALUE, 0)), \
             SUM(IF(VARIABLE_NAME = 'COM_CALL_PROCEDURE', VARIABLE_VALUE, 0)) \
             FROM information_schema.GLOBAL_STATUS",
        )
        .unwrap()
        .unwrap()
}

/// An ABillS paying statement by statement, whatever the run.
fn by_statements(systems: &str) -> Abills {
    let ab = Abills::with_systems(systems);
    ab.site
        .write_config(&config_text(&ab.db.url, systems).replace("procedure = true\n", ""));
    ab
}

/// What an answer says, without the numbers that differ between two databases (ids: a
/// pay the procedure hands back has used an AUTO_INCREMENT value).
fn said(a: &Answer) -> String {
    format!(
        "result {} comment {:?} prv_txn {}",
        a.result(),
        a.comment(),
        if a.prv_txn().is_some_and(|p| !p.is_empty() && p != "0") {
            "given"
        } else {
            "none"
        }
    )
}

/// The books of an ABillS database, without ids and times.
fn books(ab: &Abills) -> String {
    let mut conn = ab.db.conn();
    let mut text = String::new();
    for (table, sql) in [
        (
            "bills",
            "SELECT id, CAST(deposit AS CHAR) FROM bills ORDER BY id",
        ),
        (
            "payments",
            "SELECT ext_id, uid, bill_id, CAST(sum AS CHAR), CAST(last_deposit AS CHAR), \
             method, aid, dsc, ip, CAST(amount AS CHAR) FROM payments ORDER BY ext_id, sum",
        ),
        (
            "paysys_log",
            "SELECT transaction_id, uid, CAST(sum AS CHAR), status, system_id, info, \
             paysys_ip, domain_id FROM paysys_log ORDER BY domain_id, transaction_id",
        ),
        (
            "paysys_txn",
            "SELECT system_name, txn_id, account, subscriber_id, CAST(amount AS CHAR), \
             payment_ref > 0, prv_txn > 0, cancelled IS NULL, domain_id, caller_ip \
             FROM paysys_txn ORDER BY system_name, txn_id",
        ),
    ] {
        let rows: Vec<Row> = conn.query(sql).unwrap_or_else(|e| panic!("{table}: {e}"));
        text.push_str(&format!("-- {table}\n"));
        for row in rows {
            text.push_str(&format!("{:?}\n", row.unwrap()));
        }
    }
    text
}

/// How a request is expected to be made through the procedure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Made {
    /// By the CALL alone: one statement executed.
    Called,
    /// Handed back (or a repeat): the CALL, then statements.
    HandedBack,
    /// Not offered to it (a txn id ABillS's narrowest column does not hold whole).
    NotOffered,
}

/// Plays `requests` (PATH_INFO, query, how) on both, answer by answer, then compares the
/// books. Where the procedure's side has a server of its own, each request's statements
/// are counted: one for a pay the CALL made, more for one it handed back.
fn same_on_both(
    systems: &str,
    requests: &[(&str, String, Made)],
) -> (Abills, Option<PrivateServer>) {
    let plain = by_statements(systems);
    let (called, server) = counted(systems);
    if server.is_none() {
        eprintln!("no private server: the statements of each request are not counted");
    }
    for (path_info, query, made) in requests {
        let before = server.as_ref().map(executed);
        let (a, b) = (
            plain.get_at(path_info, query),
            called.get_at(path_info, query),
        );
        assert_eq!(said(&a), said(&b), "{path_info} {query}");
        if let (Some(server), Some((execs, calls))) = (&server, before) {
            let (execs_after, calls_after) = executed(server);
            let (calls, execs) = (calls_after - calls, execs_after - execs);
            let seen = match (calls, execs) {
                (0, _) => Made::NotOffered,
                (1, 1) => Made::Called,
                _ => Made::HandedBack,
            };
            assert_eq!(
                seen, *made,
                "{path_info} {query}: {calls} CALLs, {execs} statements executed"
            );
        }
    }
    assert_eq!(books(&plain), books(&called));
    (called, server)
}

/// Pays committed with both of ABillS's rows.
fn credited(ab: &Abills) -> u64 {
    ab.db.count(
        "SELECT COUNT(*) FROM paysys_txn t JOIN paysys_log l ON l.id = t.prv_txn \
         WHERE t.payment_ref > 0",
    )
}

#[test]
fn a_plain_pay_and_its_repeat_leave_the_books_the_statements_leave() {
    let (ab, _server) = same_on_both(
        &system("osmp", DEFAULT_ALLOW, "account = \"login\""),
        &[
            ("", pay_query("101", "test1", "10.25"), Made::Called),
            ("", pay_query("101", "test1", "10.25"), Made::HandedBack),
            ("", pay_query("101", "test1", "11.00"), Made::HandedBack),
            ("", pay_query("102", "test5", "3.00"), Made::Called),
            ("/2", pay_query("103", "test1", "4.00"), Made::Called),
            (
                "",
                format!(
                    "{}&note=%D0%98%D0%B2%D0%B0%D0%BD%20%F0%9F%98%80",
                    pay_query("104", "test1", "1.00")
                ),
                Made::Called,
            ),
        ],
    );
    assert_eq!(ab.deposit(1), "23.75");
    assert_eq!(
        ab.deposit(6),
        "103.00",
        "a company's user: the company's bill"
    );
    assert_eq!(ab.deposit(10), "44.00", "domain 2's test1");
    assert_eq!(credited(&ab), 4);
}

#[test]
fn what_the_procedure_leaves_is_answered_as_the_statements_answer_it() {
    let long = "9".repeat(30);
    same_on_both(
        &system(
            "osmp",
            DEFAULT_ALLOW,
            "account = [\"login\", \"uid\"]\nrefuse_disabled = true",
        ),
        &[
            ("", pay_query("201", "nobody", "1.00"), Made::HandedBack),
            ("", pay_query("202", "test2", "1.00"), Made::HandedBack),
            ("", pay_query("203", "test3", "1.00"), Made::HandedBack),
            ("", pay_query("204", "test4", "1.00"), Made::HandedBack),
            ("", pay_query("205", "1", "1.00"), Made::HandedBack),
            ("", pay_query(&long, "test1", "1.00"), Made::NotOffered),
            ("", pay_query(&long, "test1", "1.00"), Made::NotOffered),
            ("", pay_query("777", "test1", "100.00"), Made::HandedBack),
            ("", pay_query("777", "test1", "5.00"), Made::HandedBack),
            (
                "",
                pay_query("206", "%D0%B0%F0%9F%98%80", "1.00"),
                Made::HandedBack,
            ),
            ("", pay_query("207", "a%25b", "1.00"), Made::Called),
        ],
    );
}

#[test]
fn a_txn_abills_script_paid_is_answered_from_its_rows() {
    let systems = system("osmp", DEFAULT_ALLOW, "account = \"login\"");
    let (plain, called) = (by_statements(&systems), through_procedure(&systems));
    for ab in [&plain, &called] {
        ab.abills_script_pays(44, "OSM:301", 1, 1, "7.00", "txn_id, 301\n");
    }
    for query in [
        pay_query("301", "test1", "7.00"),
        pay_query("301", "test1", "7.00"),
        pay_query("302", "test1", "1.00"),
    ] {
        assert_eq!(
            said(&plain.get(&query)),
            said(&called.get(&query)),
            "{query}"
        );
    }
    assert_eq!(books(&plain), books(&called));
    assert_eq!(called.deposit(1), "20.50", "7.00 by the script, 1.00 by us");
}

/// On a server nobody else uses: a CGI pay is one prepared CALL, executed once, and nothing
/// else; a repeat is the CALL and the read of the stored row.
#[test]
fn a_pay_is_one_call_of_the_procedure() {
    let Some(server) = common::mariadb::PrivateServer::start("abills_procedure", &[])
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let systems = system("osmp", DEFAULT_ALLOW, "account = \"login\"");
    let ab = Abills::on(
        TestDb::on_server(&server.url(), &common::abills::fixture()),
        &systems,
    );
    if !common::abills::procedure_run() {
        load_pay_procedure(&mut ab.db.conn());
        ab.site
            .write_config(&config_text(&ab.db.url, &systems).replace(
                "billing = \"abills\"\n",
                "billing = \"abills\"\nprocedure = true\n",
            ));
    }
    let mut conn = ab.db.conn();
    let mut counts = || -> (u64, u64, u64) {
        conn.query_first(
            "SELECT SUM(IF(VARIABLE_NAME = 'COM_STMT_PREPARE', VARIABLE_VALUE, 0)), \
             SUM(IF(VARIABLE_NAME = 'COM_STMT_EXECUTE', VARIABLE_VALUE, 0)), \
             SUM(IF(VARIABLE_NAME = 'COM_CALL_PROCEDURE', VARIABLE_VALUE, 0)) \
             FROM information_schema.GLOBAL_STATUS",
        )
        .unwrap()
        .unwrap()
    };
    let before = counts();
    let first = ab.get(&pay_query("601", "test1", "1.00"));
    let after = counts();
    assert_eq!(first.result(), 0, "{}", first.comment());
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 1, 1),
        "(prepared, executed, CALLs)"
    );
    assert_eq!(ab.deposit(1), "13.50");
    let again = ab.get(&pay_query("601", "test1", "1.00"));
    assert_eq!(again.prv_txn(), first.prv_txn());
    assert_eq!(
        counts().2 - after.2,
        1,
        "a repeat is one CALL, answered from our row"
    );
    assert_eq!(ab.deposit(1), "13.50");
}

/// `refuse_disabled` as a list of states: the procedure refuses exactly those, as the
/// statements do (uid 2 is disabled, state 1).
#[test]
fn refuse_disabled_states_are_refused_as_the_statements_refuse_them() {
    for states in ["[1]", "[2, 3]"] {
        let extra = format!("account = \"login\"\nrefuse_disabled = {states}");
        let made = if states == "[1]" {
            Made::HandedBack
        } else {
            Made::Called
        };
        same_on_both(
            &system("osmp", DEFAULT_ALLOW, &extra),
            &[("", pay_query("701", "test2", "1.00"), made)],
        );
    }
}

/// A pay whose CALL waits for the bill longer than lock_timeout: a temporary answer,
/// nothing written and no transaction left open; the terminal's retry pays it once.
#[test]
fn a_call_that_waits_out_its_lock_timeout_writes_nothing_and_its_retry_pays() {
    let ab = through_procedure(&system("osmp", DEFAULT_ALLOW, "account = \"login\""));
    let mut holder = ab.db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT deposit FROM bills WHERE id = 1 FOR UPDATE")
        .unwrap();
    let waited = ab.get(&pay_query("801", "test1", "2.00"));
    assert_eq!(waited.result(), 1, "temporary: {}", waited.comment());
    holder.query_drop("ROLLBACK").unwrap();
    assert_eq!(
        ab.db
            .count("SELECT COUNT(*) FROM paysys_txn WHERE txn_id = '801'"),
        0
    );
    assert_eq!(
        ab.db
            .count("SELECT COUNT(*) FROM payments WHERE ext_id = 'OSM:801'"),
        0
    );
    let paid = ab.get(&pay_query("801", "test1", "2.00"));
    assert_eq!(paid.result(), 0, "{}", paid.comment());
    assert_eq!(ab.deposit(1), "14.50");
    assert!(
        ab.site.log().contains("Lock wait timeout"),
        "the first answer's reason: {}",
        ab.site.log()
    );
}

#[test]
fn a_cancel_reverses_a_pay_the_procedure_made() {
    let ab = through_procedure(&system("osmp", DEFAULT_ALLOW, "account = \"login\""));
    let prv_txn = ab
        .get(&pay_query("401", "test1", "2.00"))
        .prv_txn()
        .unwrap();
    assert_eq!(ab.deposit(1), "14.50");
    assert_eq!(credited(&ab), 1);
    let cancelled = ab.get(&format!("command=cancel&prv_txn={prv_txn}"));
    assert_eq!(cancelled.result(), 0, "{}", cancelled.comment());
    assert_eq!(ab.deposit(1), "12.50");
    assert_eq!(ab.log_row("OSM:401").status, 3);
    let again = ab.get(&pay_query("401", "test1", "2.00"));
    assert_ne!(again.result(), 0, "not paid again after its cancel");
    assert_eq!(ab.deposit(1), "12.50");
}

/// Forty pays at once to one bill, from eight clients: each credited once, the deposit
/// exact, every payment's `last_deposit` the deposit before it.
#[test]
fn pays_at_once_to_one_bill_through_the_procedure_each_credit_once() {
    let ab = through_procedure(&system("osmp", DEFAULT_ALLOW, "account = \"login\""));
    std::thread::scope(|s| {
        for client in 0..8 {
            let ab = &ab;
            s.spawn(move || {
                for n in 0..5 {
                    let answer = ab.get(&pay_query(&format!("6{client}{n}"), "test1", "1.00"));
                    assert_eq!(answer.result(), 0, "{}", answer.comment());
                }
            });
        }
    });
    assert_eq!(ab.deposit(1), "52.50");
    // The deposits before each: 12.50, 13.50, … 51.50, each once.
    let steps = ab.db.count(
        "SELECT COUNT(DISTINCT last_deposit) FROM payments WHERE ext_id LIKE 'OSM:6%' \
         AND last_deposit BETWEEN 12.5 AND 51.5 AND last_deposit - FLOOR(last_deposit) = 0.5",
    );
    assert_eq!(
        steps, 40,
        "each payment's last_deposit is the deposit before it"
    );
    assert_eq!(credited(&ab), 40);
}

/// `procedure = true` where the procedure is not loaded: pays are made statement by
/// statement, and `paysys check-db` says what to do.
#[test]
fn without_the_procedure_loaded_pays_are_made_statement_by_statement() {
    let systems = system("osmp", DEFAULT_ALLOW, "account = \"login\"");
    let ab = Abills::on(TestDb::with_fixture(&common::abills::fixture()), &systems);
    ab.db
        .conn()
        .query_drop("DROP PROCEDURE IF EXISTS paysys_abills_pay_1")
        .unwrap();
    ab.site.write_config(
        &config_text(&ab.db.url, &systems)
            .replace("procedure = true\n", "")
            .replace(
                "billing = \"abills\"\n",
                "billing = \"abills\"\nprocedure = true\n",
            ),
    );
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["check-config", &common::path_str(&ab.site.config_path())])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("billing  abills, a plain pay in one CALL of paysys_abills_pay_1"),
        "{shown}"
    );
    let answer = ab.get(&pay_query("501", "test1", "1.00"));
    assert_eq!(answer.result(), 0, "{}", answer.comment());
    assert_eq!(ab.deposit(1), "13.50");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["check-db", &common::path_str(&ab.site.config_path())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("paysys_abills_pay_1") && stderr.contains("sql/abills-pay.sql"),
        "{stderr}"
    );
    load_pay_procedure(&mut ab.db.conn());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["check-db", &common::path_str(&ab.site.config_path())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn procedure_is_refused_for_nodeny() {
    let db = TestDb::new();
    let site = common::Site::new(&db.url, "");
    let text = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace(
            "billing = \"nodeny\"\n",
            "billing = \"nodeny\"\nprocedure = true\n",
        );
    site.write_config(&text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["check-config", &common::path_str(&site.config_path())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("procedure = true is for billing = \"abills\""),
        "{stderr}"
    );
}
