//! The request history (`[log] database = true`) through the real executables against
//! MariaDB: a row for every request of a known system — a terminal's check, pay and
//! refused pay, a card provider's callback, other protocols' signed requests — on NoDeny in
//! our `paysys_request`, on ABillS (1.20's and 1.50's tables, strict mode) in ABillS's own
//! `paysys_requests`; none for an unknown caller; no secret in any row; a table that cannot
//! be written leaves the answer as it was and notes the log line; `[log] file = false`;
//! `paysys requests` with its filters, and its purges.

mod common;

use std::process::Command;

use common::abills::{self, Abills, Ddl, LOOPBACK_INT};
use common::{log_field, pay_query, Site, TestDb};
use mysql::prelude::Queryable;

/// The tests' config with the request history on (and `more` lines in `[log]`).
fn history_on(site: &Site, more: &str) {
    let text = std::fs::read_to_string(site.config_path()).unwrap();
    assert!(text.contains("[log]\n"));
    site.write_config(&text.replacen("[log]\n", &format!("[log]\ndatabase = true\n{more}"), 1));
}

/// Our table's rows: (command, txn_id, account, amount, result, status, prv_txn,
/// subscriber_id, error, request, response), oldest first.
type OwnRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    u8,
    Option<u64>,
    Option<u64>,
    String,
    String,
    String,
);

fn own_rows(db: &TestDb) -> Vec<OwnRow> {
    db.conn()
        .query_map(
            "SELECT command, txn_id, account, CAST(amount AS CHAR), result, status, prv_txn, \
             subscriber_id, error, request, response FROM paysys_request ORDER BY id",
            |(a, b, c, d, e, f, g, h, i, j, k): OwnRow| (a, b, c, d, e, f, g, h, i, j, k),
        )
        .unwrap()
}

/// Waits up to 10 s for `done`.
fn wait_for(done: impl Fn() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < until, "not done in 10 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `paysys ARGS`: exit code, stdout, stderr.
fn paysys(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn nodeny_check_pay_and_refusal_each_leave_a_row_with_the_answer() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    let check = site.get("command=check&txn_id=1&account=59071&sum=10.00");
    assert_eq!(check.result(), 0, "{check:?}");
    let pay = site.get(&pay_query("701", "59071", "10.25"));
    assert_eq!(pay.result(), 0, "{pay:?}");
    let refused = site.get(&pay_query("702", "59072", "10.25"));
    assert_eq!(refused.result(), 4, "{refused:?}");

    let rows = own_rows(&db);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let (cmd, txn, account, amount, result, status, prv, uid, error, request, response) = &rows[0];
    assert_eq!(
        (
            cmd.as_str(),
            txn.as_str(),
            account.as_str(),
            amount.as_deref()
        ),
        ("check", "1", "59071", Some("10.00"))
    );
    assert_eq!(
        (result.as_str(), *status, *prv, *uid),
        ("0", 0, None, Some(5907))
    );
    assert!(error.is_empty() && request == "command=check&txn_id=1&account=59071&sum=10.00");
    assert_eq!(*response, check.body);

    let (cmd, txn, _, amount, result, status, prv, uid, _, _, response) = &rows[1];
    assert_eq!(
        (cmd.as_str(), txn.as_str(), amount.as_deref()),
        ("pay", "701", Some("10.25"))
    );
    let prv_txn: u64 = pay.prv_txn().unwrap().parse().unwrap();
    assert_eq!(
        (result.as_str(), *status, *prv, *uid),
        ("0", 0, Some(prv_txn), Some(5907))
    );
    assert_eq!(*response, pay.body);

    let (cmd, txn, _, _, result, status, _, uid, error, _, _) = &rows[2];
    assert_eq!(
        (cmd.as_str(), txn.as_str(), result.as_str(), *status),
        ("pay", "702", "4", 1)
    );
    assert_eq!(*uid, None);
    assert!(error.contains("check digit"), "{error}");
    // The refusal's own row is there as before, and every request still has its log line.
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_refusal"), 1);
    assert_eq!(site.log_lines().len(), 3, "{}", site.log());
    assert!(!site.log().contains("notes="), "{}", site.log());
}

#[test]
fn the_history_is_off_unless_the_config_says_so() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    assert_eq!(site.get(&pay_query("703", "59071", "1.00")).result(), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_request"), 0);
}

#[test]
fn unknown_callers_get_no_row_only_their_log_line() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    for _ in 0..3 {
        let a = site.cgi(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", "command=check&txn_id=1&account=59071"),
                ("REMOTE_ADDR", "10.0.0.13"),
            ],
            b"",
        );
        assert_ne!(a.result(), 0);
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_request"), 0);
    let log = site.log();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(
        log.lines().all(|l| log_field(l, "system") == Some("-")),
        "{log}"
    );
}

#[test]
fn a_table_that_cannot_be_written_changes_no_answer_and_notes_the_line() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    db.conn().query_drop("DROP TABLE paysys_request").unwrap();
    let before = db.balance(5907);
    let pay = site.get(&pay_query("704", "59071", "5.00"));
    assert_eq!(pay.result(), 0, "{pay:?}");
    assert_ne!(db.balance(5907), before, "credited all the same");
    let check = site.get("command=check&txn_id=2&account=59071");
    assert_eq!(check.result(), 0, "{check:?}");
    let lines = site.log_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(
            line.contains("notes=\"request not recorded: table paysys_request is missing: load sql/paysys.sql"),
            "{line}"
        );
        assert_eq!(log_field(line, "result"), Some("0"), "{line}");
    }
}

#[test]
fn file_false_keeps_no_log_file_and_sends_what_the_database_lacks_to_stderr() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    let text = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&text.replace("file = \"var/log/paysys_check.log\"", "file = false"));
    let pay = site.get(&pay_query("705", "59071", "2.00"));
    assert_eq!(pay.result(), 0, "{pay:?}");
    assert!(pay.stderr.is_empty(), "{:?}", pay.stderr);
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_request"), 1);
    // An unknown caller has no row: its line goes to the web server's error log.
    let unknown = site.cgi(
        &[
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", "command=check&account=59071"),
            ("REMOTE_ADDR", "10.0.0.13"),
        ],
        b"",
    );
    assert_eq!(unknown.stderr.lines().count(), 1, "{:?}", unknown.stderr);
    assert!(
        unknown.stderr.contains(" ip=10.0.0.13 system=- "),
        "{:?}",
        unknown.stderr
    );
    // So does a request whose row could not be written.
    db.conn().query_drop("DROP TABLE paysys_request").unwrap();
    let check = site.get("command=check&txn_id=3&account=59071");
    assert_eq!(check.result(), 0);
    assert!(
        check.stderr.contains("request not recorded"),
        "{:?}",
        check.stderr
    );
    assert!(!site.log_path().exists(), "no log file at all");
}

#[test]
fn abills_rows_are_abills_own_paysys_requests_rows() {
    for ddl in Ddl::ALL {
        let ab = Abills::on_ddl(
            ddl,
            &abills::system("osmp", abills::DEFAULT_ALLOW, "account = \"login\""),
        );
        history_on(&ab.site, "");
        let check = ab.get("command=check&txn_id=1&account=test1&sum=10.25");
        assert_eq!(check.result(), 0, "{ddl:?}: {check:?}");
        let pay = ab.get(&pay_query("801", "test1", "10.25"));
        assert_eq!(pay.result(), 0, "{ddl:?}: {pay:?}");
        let refused = ab.get(&pay_query("802", "nobody", "10.25"));
        assert_eq!(refused.result(), 5, "{ddl:?}: {refused:?}");

        type Row = (
            u8,
            u64,
            String,
            String,
            u64,
            String,
            u64,
            String,
            u8,
            u8,
            String,
        );
        let rows: Vec<Row> = ab
            .db
            .conn()
            .query_map(
                "SELECT system_id, uid, request, response, COALESCE(transaction_id, 0), http_method, \
                 paysys_ip, error, status, request_type, CAST(sum AS CHAR) FROM paysys_requests ORDER BY id",
                |r: Row| r,
            )
            .unwrap();
        assert_eq!(rows.len(), 3, "{ddl:?}: {rows:?}");
        let log_id: u64 = pay.prv_txn().unwrap().parse().unwrap();
        assert_eq!(ab.log_row("OSM:801").id, log_id);
        let uid = 1;
        let (system_id, u, request, response, txn, method, ip, error, status, kind, sum) = &rows[0];
        assert_eq!(
            (*system_id, *u, *txn, method.as_str(), *ip),
            (44, uid, 0, "GET", LOOPBACK_INT)
        );
        assert_eq!(
            (*status, *kind, sum.as_str(), error.as_str()),
            (0, 3, "10.25", "")
        );
        assert_eq!(request, "command=check&txn_id=1&account=test1&sum=10.25");
        assert_eq!(*response, check.body);
        let (_, u, _, response, txn, _, _, _, status, kind, _) = &rows[1];
        assert_eq!((*u, *txn, *status, *kind), (uid, log_id, 0, 4), "{ddl:?}");
        assert_eq!(*response, pay.body);
        let (_, u, _, _, txn, _, _, error, status, kind, _) = &rows[2];
        assert_eq!((*u, *txn, *status, *kind), (0, 0, 1, 4), "{ddl:?}");
        assert_eq!(error, "no such subscriber");

        // paysys requests finds them by txn (the payment's paysys_log row, or the words
        // of the request), by account, by system.
        let config = ab.site.config_path().to_string_lossy().into_owned();
        let (code, out, err) = paysys(&["requests", "--txn", "801", "--config", &config]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.contains(" system=osmp ")
                && out.contains(" cmd=pay ")
                && out.contains(&format!(" prv_txn={log_id} ")),
            "{out}"
        );
        let (_, out, _) = paysys(&["requests", "--account", "test1", "--config", &config]);
        assert_eq!(out.lines().count(), 2, "{out}");
        let (_, out, _) = paysys(&["requests", "--txn", "80", "--config", &config]);
        assert_eq!(out.lines().count(), 0, "whole words only: {out}");
        let (_, out, _) = paysys(&["requests", "--system", "other", "--config", &config]);
        assert_eq!(out.lines().count(), 0, "{out}");
    }
}

#[test]
fn an_abills_table_without_request_type_and_sum_takes_the_row_too() {
    // ABillS 0.94's table: no request_type, no sum (added by 0.95's update 152). The
    // server runs strict (STRICT_TRANS_TABLES), as ABillS installs may.
    let ab = Abills::new("account = \"login\"");
    history_on(&ab.site, "");
    let mut conn = ab.db.conn();
    conn.query_drop("ALTER TABLE paysys_requests DROP COLUMN request_type, DROP COLUMN sum")
        .unwrap();
    let pay = ab.get(&pay_query("803", "test1", "1.00"));
    assert_eq!(pay.result(), 0);
    assert_eq!(ab.db.count("SELECT COUNT(*) FROM paysys_requests"), 1);
    assert!(!ab.site.log().contains("notes="), "{}", ab.site.log());
}

const LIQPAY_PUBLIC: &str = "i00000000";
const LIQPAY_PRIVATE: &str = "a4825234f4bae72a0be04eafe9e8e2bada209255";

fn post_callback(ab: &Abills, system: &str, content_type: &str, body: &[u8]) -> common::Answer {
    let length = body.len().to_string();
    let path = format!("/callback/{system}");
    ab.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("PATH_INFO", &path),
            ("CONTENT_TYPE", content_type),
            ("CONTENT_LENGTH", &length),
            ("REMOTE_ADDR", "203.0.113.9"),
        ],
        body,
    )
}

#[test]
fn card_callbacks_and_signed_protocols_leave_rows_without_their_secrets() {
    use paysys::card::{liqpay, order, Secret};
    use paysys::domain::{Amount, Domain};
    let nonstop_secret = "guessmeifyoucan";
    let systems = format!(
        "\n[[system]]\nname = \"liqpay\"\nprotocol = \"liqpay\"\npublic_key = \"{LIQPAY_PUBLIC}\"\n\
         private_key = \"{LIQPAY_PRIVATE}\"\nabills_id = 62\naccount = \"login\"\n\
         \n[[system]]\nname = \"wfp\"\nprotocol = \"wayforpay\"\nmerchant_account = \"test_merch_n1\"\n\
         secret_key = \"flk3409refn54t54t*FNJRET\"\nmerchant_domain = \"isp.example\"\nabills_id = 63\n{}",
        abills::system(
            "24ns",
            &["127.0.0.1"],
            &format!("protocol = \"24nonstop\"\naccount = \"login\"\nsecret = \"{nonstop_secret}\"\n"),
        )
        .replace("protocol = \"osmp\"\n", "")
    );
    let ab = Abills::on_ddl(Ddl::V1_50, &systems);
    history_on(&ab.site, "");

    // A LiqPay success, verified: the order is paid, the row is the callback's.
    let o = order::create(
        &mut ab.db.conn(),
        &order::NewOrder {
            system: "liqpay",
            account: "test1",
            amount: Amount::parse("100.00").unwrap(),
            charged: Amount::parse("100.00").unwrap(),
            currency: "UAH",
            domain: Domain::default(),
            validity_hours: 24,
            subscriber_id: None,
        },
    )
    .unwrap();
    let json = format!(
        "{{\"public_key\":\"{LIQPAY_PUBLIC}\",\"version\":3,\"action\":\"pay\",\"status\":\"success\",\
         \"order_id\":\"{}\",\"payment_id\":1234567,\"amount\":100.00,\"currency\":\"UAH\",\
         \"end_date\":1700000000000}}",
        o.order_id
    );
    let signed = liqpay::SignedForm::new(&Secret::new(LIQPAY_PRIVATE), &json);
    let form = "application/x-www-form-urlencoded";
    let a = post_callback(&ab, "liqpay", form, signed.form_body().as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    let liqpay_signature = signed
        .form_body()
        .split('&')
        .find_map(|p| p.strip_prefix("signature="))
        .map(|s| s.to_string())
        .unwrap();

    // WayForPay with a signature that does not verify, and a card number in the body.
    let wfp = r#"{"merchantAccount":"test_merch_n1","orderReference":"ord-1","merchantSignature":"0123456789abcdef0123456789abcdef","amount":1,"currency":"UAH","cardPan":"41****8217","recToken":"rec-token-42","transactionStatus":"Approved"}"#;
    let b = post_callback(&ab, "wfp", "application/json", wfp.as_bytes());
    assert_ne!(b.status, 500, "{b:?}");

    // A 24NonStop pay signed as its terminals sign it.
    let rule = paysys::config::SignRule {
        secret: nonstop_secret.into(),
        hash: paysys::config::SignHash::Md5,
        amount: false,
        service: paysys::config::ServiceSlot::Sent,
    };
    let sign =
        paysys::protocol::nonstop24::signature(&rule, "4", "test1", Some("Internet"), "NS1", None)
            .unwrap();
    let q = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=NS1&PAY_AMOUNT=3.00&SIGN={sign}"
    );
    let c = ab.get(&q);
    assert!(c.body.contains("<status_code>22</status_code>"), "{c:?}");

    let rows: Vec<(u8, u8, u8, String)> = ab
        .db
        .conn()
        .query_map(
            "SELECT system_id, status, request_type, request FROM paysys_requests ORDER BY id",
            |r| r,
        )
        .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0].0, rows[0].1, rows[0].2),
        (62, 0, 4),
        "liqpay: {rows:?}"
    );
    assert!(rows[0].3.contains("signature=***"), "{}", rows[0].3);
    assert_eq!((rows[1].0, rows[1].1), (63, 1), "wfp refused: {rows:?}");
    assert!(
        rows[1].3.contains("\"orderReference\":\"ord-1\""),
        "{}",
        rows[1].3
    );
    assert_eq!(
        (rows[2].0, rows[2].1, rows[2].2),
        (52, 0, 4),
        "24ns: {rows:?}"
    );
    assert!(
        rows[2].3.contains("SIGN=***") && rows[2].3.contains("PAY_ID=NS1"),
        "{}",
        rows[2].3
    );
    let secrets = [
        liqpay_signature.as_str(),
        "0123456789abcdef0123456789abcdef",
        "41****8217",
        "rec-token-42",
        sign.as_str(),
        nonstop_secret,
    ];
    let everything: String = ab
        .db
        .conn()
        .query_map(
            "SELECT CONCAT(request, '|', error) FROM paysys_requests",
            |s: String| s,
        )
        .unwrap()
        .join("\n");
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "{secret} stored: {everything}"
        );
    }
}

#[test]
fn paysys_requests_filters_and_purges_in_batches() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "keep_days = 30\n");
    for (txn, account) in [("901", "59071"), ("902", "59071"), ("903", "59072")] {
        site.get(&pay_query(txn, account, "1.00"));
    }
    site.get("command=check&txn_id=1&account=59071");
    let config = site.config_path().to_string_lossy().into_owned();
    let list = |args: &[&str]| {
        let mut all = vec!["requests"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", &config]);
        let (code, out, err) = paysys(&all);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        out
    };
    let all = list(&[]);
    assert_eq!(all.lines().count(), 4, "{all}");
    let first = all.lines().next().unwrap();
    assert!(
        first.contains(" system=osmp ip=127.0.0.1 method=GET cmd=pay txn=901 account=59071 sum=1.00 status=ok result=0 prv_txn="),
        "{first}"
    );
    assert!(
        first.contains(" request=\"command=pay&txn_id=901&"),
        "{first}"
    );
    assert_eq!(list(&["--txn", "902"]).lines().count(), 1);
    assert_eq!(list(&["--account", "59071"]).lines().count(), 3);
    let refused = list(&["--account", "59072"]);
    assert!(
        refused.contains(" status=error result=4 ") && refused.contains(" error=\""),
        "{refused}"
    );
    assert_eq!(list(&["--system", "osmp"]).lines().count(), 4);
    assert_eq!(list(&["--system", "qiwi"]).lines().count(), 0);
    let today = chrono::Local::now().date_naive();
    let tomorrow = (today + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let yesterday = (today - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(list(&["--from", &tomorrow]).lines().count(), 0);
    assert_eq!(list(&["--to", &yesterday]).lines().count(), 0);
    assert_eq!(
        list(&["--from", &yesterday, "--to", &tomorrow])
            .lines()
            .count(),
        4
    );
    let (code, _, err) = paysys(&["requests", "--purge", "--txn", "1", "--config", &config]);
    assert_eq!(code, Some(2), "{err}");

    // Rows older than keep_days go with --purge, and in batches of a thousand.
    let mut conn = db.conn();
    conn.query_drop(
        "INSERT INTO paysys_request (at, system_name, request, response) \
         SELECT NOW() - INTERVAL 40 DAY, 'osmp', 'old', '' FROM \
         (SELECT 1 FROM (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
         UNION ALL SELECT 4) a, (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL \
         SELECT 3 UNION ALL SELECT 4) b, (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 \
         UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL \
         SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c, (SELECT 0 UNION ALL SELECT 1 \
         UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL \
         SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d) AS many",
    )
    .unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_request"), 2504);
    let (code, _, err) = paysys(&["requests", "--purge", "--config", &config]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("2500 rows from before"), "{err}");
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_request"), 4);
    let (code, _, err) = paysys(&["requests", "--purge-before", &tomorrow, "--config", &config]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_request"), 0);
}

#[test]
fn the_persistent_mode_writes_the_same_rows_on_its_kept_connection() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    let responder = common::fcgi::Responder::start(&site, 1);
    assert_eq!(
        responder.get(&pay_query("951", "59071", "1.00")).result(),
        0
    );
    assert_eq!(
        responder
            .get("command=check&txn_id=1&account=59071")
            .result(),
        0
    );
    // The answer is sent before the row and the line are written.
    let lines = |n: usize| wait_for(|| site.log_lines().len() >= n);
    lines(2);
    let rows = own_rows(&db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("pay", "951"));
    assert_eq!(rows[1].0, "check");
    // A table gone: the answers stay, the lines say so, and the worker goes on serving.
    db.conn().query_drop("DROP TABLE paysys_request").unwrap();
    assert_eq!(
        responder.get(&pay_query("952", "59071", "1.00")).result(),
        0
    );
    assert_eq!(
        responder
            .get("command=check&txn_id=2&account=59071")
            .result(),
        0
    );
    lines(4);
    let log = site.log();
    assert_eq!(log.matches("request not recorded").count(), 2, "{log}");
}

#[test]
fn a_database_that_cannot_be_reached_is_not_tried_again_for_the_row() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    let text = std::fs::read_to_string(site.config_path()).unwrap();
    let url_line = text.lines().find(|l| l.starts_with("url = ")).unwrap();
    // Nothing listens on port 1: every connect is refused at once.
    site.write_config(&text.replace(url_line, "url = \"mysql://paysys@127.0.0.1:1/nodeny\""));
    let pay = site.get(&pay_query("961", "59071", "1.00"));
    assert_eq!(pay.result(), 1, "temporary: {pay:?}");
    let log = site.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains(
            "request not recorded: the database could not be reached for the request itself"
        ),
        "{log}"
    );
}

/// The worker's connections to `db`: every one but `mine`'s.
fn others(mine: &mut mysql::Conn, db: &TestDb) -> Vec<u64> {
    mine.exec(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() \
         ORDER BY ID",
        (&db.name,),
    )
    .unwrap()
}

#[test]
fn a_row_the_server_refuses_keeps_the_persistent_connection() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    let mut mine = db.conn();
    mine.query_drop("DROP TABLE paysys_request").unwrap();
    let responder = common::fcgi::Responder::start(&site, 1);
    let mut seen = Vec::new();
    for (n, txn) in ["971", "972", "973"].into_iter().enumerate() {
        assert_eq!(responder.get(&pay_query(txn, "59071", "1.00")).result(), 0);
        wait_for(|| site.log_lines().len() > n);
        seen.push(others(&mut mine, &db));
    }
    let log = site.log();
    assert_eq!(log.matches("request not recorded").count(), 3, "{log}");
    // One connection, kept through the refused rows: no reconnect per request.
    assert_eq!(seen[0].len(), 1, "{seen:?}");
    assert!(seen.iter().all(|ids| *ids == seen[0]), "{seen:?}");
}

/// A row of `command` for the ABillS system 52 (the tests' `osmp`).
fn abills_entry(command: &str) -> paysys::history::Entry {
    paysys::history::Entry {
        system: "osmp".into(),
        abills_id: 52,
        method: "GET".into(),
        request: format!("command={command}&txn_id=1"),
        command: command.into(),
        ..Default::default()
    }
}

#[test]
fn an_abills_table_without_request_type_and_sum_costs_one_insert_a_row() {
    use paysys::config::BillingKind;
    let ab = Abills::new("account = \"login\"");
    let mut conn = ab.db.conn();
    conn.query_drop("ALTER TABLE paysys_requests DROP COLUMN request_type, DROP COLUMN sum")
        .unwrap();
    let prepared = |conn: &mut mysql::Conn| -> u64 {
        let (_, n): (String, u64) = conn
            .query_first("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
            .unwrap()
            .unwrap();
        n
    };
    let entry = abills_entry("check");
    paysys::history::write(&mut conn, BillingKind::Abills, &entry).unwrap();
    let before = prepared(&mut conn);
    for _ in 0..3 {
        paysys::history::write(&mut conn, BillingKind::Abills, &entry).unwrap();
    }
    // The row's INSERT was prepared with the first; no refused INSERT before each row.
    assert_eq!(prepared(&mut conn) - before, 0);
    assert_eq!(ab.db.count("SELECT COUNT(*) FROM paysys_requests"), 4);
}

#[test]
fn long_requests_are_clipped_to_the_column_on_both_billings() {
    use paysys::config::BillingKind;
    // A statement pull's calls to the bank: thousands of them in a long window.
    let calls = vec!["GET https://acp.privatbank.ua/api/statements/transactions?acc=UA1&startDate=01-12-2026 → HTTP 200"; 1000].join("\n");
    assert!(calls.chars().count() > 70_000);
    let entry = paysys::history::Entry {
        command: "pull".into(),
        request: calls,
        ..abills_entry("pull")
    };
    let ab = Abills::new("account = \"login\"");
    paysys::history::write(&mut ab.db.conn(), BillingKind::Abills, &entry).unwrap();
    let db = TestDb::new();
    paysys::history::write(&mut db.conn(), BillingKind::NoDeny, &entry).unwrap();
    for (db, table) in [(&ab.db, "paysys_requests"), (&db, "paysys_request")] {
        let n = db.count(&format!("SELECT CHAR_LENGTH(request) FROM {table}"));
        assert_eq!(n, 16_001, "{table}");
    }
}

#[test]
fn abills_rows_name_the_requests_own_subscriber_before_the_payments() {
    use paysys::config::BillingKind;
    let ab = Abills::new("account = \"login\"");
    assert_eq!(ab.get(&pay_query("981", "test1", "1.00")).result(), 0);
    let (log_id, log_uid): (u64, u64) = ab
        .db
        .conn()
        .query_first("SELECT id, uid FROM paysys_log")
        .unwrap()
        .unwrap();
    let mut conn = ab.db.conn();
    conn.query_drop("DELETE FROM paysys_requests").unwrap();
    let own = paysys::history::Entry {
        prv_txn: Some(log_id),
        uid: Some(log_uid + 100),
        ..abills_entry("pay")
    };
    let payments = paysys::history::Entry {
        uid: None,
        ..own.clone()
    };
    let none = paysys::history::Entry {
        prv_txn: None,
        ..payments.clone()
    };
    for entry in [&own, &payments, &none] {
        paysys::history::write(&mut conn, BillingKind::Abills, entry).unwrap();
    }
    let uids: Vec<u64> = conn
        .query("SELECT uid FROM paysys_requests ORDER BY id")
        .unwrap();
    assert_eq!(uids, [log_uid + 100, log_uid, 0]);
}

#[test]
fn the_request_text_is_made_after_the_answer_not_before() {
    use paysys::pipeline::{record, serve, OSMP_CGI};
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    let vars = [
        ("REQUEST_METHOD", "GET"),
        ("REMOTE_ADDR", "127.0.0.1"),
        (
            "QUERY_STRING",
            "command=check&txn_id=5&account=59071&sign=S3CR3T",
        ),
    ];
    let var = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| std::ffi::OsString::from(v))
    };
    let request = paysys::cgi::Request::read(var, &mut std::io::empty());
    let mut conns = paysys::db::Connections::per_request();
    let started = std::time::Instant::now();
    let mut served = serve(
        &OSMP_CGI,
        &request,
        &site.config_path(),
        chrono::Local::now(),
        &mut conns,
    );
    assert!(
        served.reply.response.body.contains("<result>0</result>"),
        "{:?}",
        served.reply.response.body
    );
    // The answer is ready; its row waits without the request's text: masking it is no
    // work the answer waits for.
    let pending = served.history.as_ref().expect("a row to write");
    assert_eq!(pending.entry().command, "check");
    assert_eq!(pending.entry().request, "");
    record(&request, &mut served, &mut conns, started);
    assert!(served.stored, "{:?}", served.notes);
    let rows = own_rows(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].9, "command=check&txn_id=5&account=59071&sign=***");
}

/// `n` (a multiple of 10, at most 10 000) copies of `select`'s row, in a statement that
/// reads no table but its own: `INSERT INTO t (…) SELECT … FROM (…) AS many` with `many`'s
/// rows the digits' cross join.
fn times(n: u32, columns: &str) -> String {
    let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    format!(
        "SELECT {columns} FROM {digits} a, {digits} b, {digits} c, {digits} e \
         WHERE a.d + 10 * b.d + 100 * c.d + 1000 * e.d < {n}"
    )
}

#[test]
fn abills_whole_word_filters_are_not_cut_by_the_limit_before_they_pick() {
    let ab = Abills::new("account = \"login\"");
    history_on(&ab.site, "");
    let mut conn = ab.db.conn();
    // 10 000 rows naming 6666 (666 inside a longer number), then one naming 666.
    conn.query_drop(format!(
        "INSERT INTO paysys_requests (system_id, request, response) {}",
        times(10_000, "52, 'command=pay&txn_id=6666&account=test1', ''")
    ))
    .unwrap();
    conn.query_drop(
        "INSERT INTO paysys_requests (system_id, request, response) \
         VALUES (52, 'command=pay&txn_id=666&account=test1', '')",
    )
    .unwrap();
    let config = ab.site.config_path().to_string_lossy().into_owned();
    let (code, out, err) = paysys(&["requests", "--txn", "666", "--config", &config]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("txn_id=666&"), "{out}");
    assert!(err.contains("1 rows"), "{err}");
}

/// Runs `paysys ARGS` with its output thrown away: its exit code and its peak resident
/// memory in KiB (`wait4`'s `ru_maxrss`).
fn paysys_peak_kib(args: &[&str]) -> (Option<i32>, i64) {
    use std::os::unix::process::ExitStatusExt;
    // Reaped by `wait4` below, which `Child::wait` cannot stand in for (no rusage).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: plain out-parameters; the child is ours and waited for once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = std::process::ExitStatus::from_raw(status).code();
    (code, usage.ru_maxrss)
}

#[test]
fn paysys_requests_writes_rows_as_they_come_not_all_at_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    history_on(&site, "");
    // 4000 rows of 16000 characters: 64 MB to list.
    db.conn()
        .query_drop(format!(
            "INSERT INTO paysys_request (at, system_name, request, response) {}",
            times(4_000, "NOW(), 'osmp', REPEAT('r', 16000), ''")
        ))
        .unwrap();
    let config = site.config_path().to_string_lossy().into_owned();
    let (code, peak) = paysys_peak_kib(&["requests", "--config", &config]);
    assert_eq!(code, Some(0));
    // A row at a time: far less than the listing in memory.
    // (Measured: 21 MB streamed, 87 MB with the rows collected first.)
    assert!(peak < 40 * 1024, "peak {peak} KiB");
}
