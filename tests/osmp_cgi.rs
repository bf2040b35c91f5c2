//! `osmp.cgi` run as a web server runs it, against a real MariaDB, one database per test.

mod common;

use common::{pay_query, txn_date, Site, TestDb};
use mysql::prelude::Queryable;

fn setup() -> (TestDb, Site) {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    (db, site)
}

// ----- check ---------------------------------------------------------------------------------

#[test]
fn a_payment_code_typed_with_blanks_around_it_is_paid() {
    let (db, site) = setup();
    let a = site.get("command=check&account=%2059071%20");
    assert_eq!((a.result(), a.comment().as_str()), (0, "OK"), "{}", a.body);
    let a = site.get(&pay_query("41", "59071%20%20", "3.00"));
    assert_eq!(a.result(), 0, "{}", a.body);
    let account: Option<String> = db
        .conn()
        .query_first("SELECT account FROM paysys_txn WHERE txn_id = '41'")
        .unwrap();
    assert_eq!(account.as_deref(), Some("59071"));
    // The log line has the account as it was sent.
    let line = site.log_lines().pop().unwrap_or_default();
    assert!(line.contains("account=\"59071  \""), "{line}");
    // Blanks alone are no account.
    assert_eq!(site.get("command=check&account=%20%20").result(), 4);
}

#[test]
fn check_finds_the_subscriber_by_payment_code() {
    let (_db, site) = setup();
    let a = site.get("command=check&txn_id=1&account=59071&sum=10.25");
    assert_eq!((a.result(), a.comment().as_str()), (0, "OK"), "{}", a.body);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("1"));
    assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "text/xml; charset=utf-8");
    assert!(a
        .body
        .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
}

#[test]
fn a_pre_check_with_a_zero_or_no_sum_is_about_the_account() {
    // Terminals pre-check with sum=0.00 (or none) before the payer inserts money.
    let (_db, site) = setup();
    for query in [
        "command=check&txn_id=1&account=59071&sum=0.00",
        "command=check&txn_id=1&account=59071&sum=0",
        "command=check&txn_id=1&account=59071",
    ] {
        let a = site.get(query);
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (0, "OK"),
            "{query}: {}",
            a.body
        );
    }
    let a = site.get("command=check&txn_id=1&account=59081&sum=0.00");
    assert_eq!(a.result(), 4, "the account is still checked: {}", a.body);
    let a = site.get("command=check&txn_id=1&account=59071&sum=0.50");
    assert_eq!(a.result(), 241, "a real sum below min_sum: {}", a.body);
}

#[test]
fn check_refuses_a_wrong_check_digit_with_4() {
    let (_db, site) = setup();
    for account in [
        "58071",
        "59072",
        "100",
        "5907",
        "abc",
        "1234567890123456789012345",
    ] {
        let a = site.get(&format!("command=check&txn_id=1&account={account}"));
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (4, "nod4"),
            "{account}: {}",
            a.body
        );
    }
}

#[test]
fn check_refuses_an_unknown_subscriber_with_5() {
    let (_db, site) = setup();
    // 42 → check digit 6; 5908 exists but is an alias (mid != 0) → 59082.
    for account in ["426", "59082"] {
        let a = site.get(&format!("command=check&txn_id=1&account={account}"));
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (5, "nod5"),
            "{account}: {}",
            a.body
        );
    }
}

// ----- pay -----------------------------------------------------------------------------------

#[test]
fn pay_credits_balance_and_writes_rows_in_one_go() {
    let (db, site) = setup();
    let date = txn_date(-5);
    let a = site.get(&format!(
        "command=pay&txn_id=666&account=59071&sum=10.25&txn_date={date}"
    ));
    assert_eq!((a.result(), a.comment().as_str()), (0, "OK"), "{}", a.body);
    let prv_txn = a.prv_txn().expect("prv_txn");
    assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    assert_eq!(db.balance(5907), "110.25");

    let mut conn = db.conn();
    let pay: (u64, String, i64, u32, String, String, i64) = conn
        .query_first(
            "SELECT mid, CAST(cash AS CHAR), time, admin_ip, reason, coment, type FROM pays",
        )
        .unwrap()
        .expect("pays row");
    assert_eq!(pay.0, 5907);
    assert_eq!(pay.1, "10.25");
    let expected_time = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%d%H%M%S")
        .unwrap()
        .and_local_timezone(chrono::Local)
        .unwrap()
        .timestamp();
    assert_eq!(pay.2, expected_time, "pays.time = txn_date");
    assert_eq!(
        pay.3,
        u32::from(std::net::Ipv4Addr::LOCALHOST),
        "admin_ip = caller"
    );
    assert!(pay.4.contains("txn_id=666"), "{}", pay.4);
    assert!(pay.5.contains(&format!("prv_txn={prv_txn}")), "{}", pay.5);
    assert_eq!(pay.6, 10);

    let txn: (String, String, u64, String, u64) = conn
        .query_first("SELECT system_name, txn_id, subscriber_id, CAST(amount AS CHAR), payment_ref FROM paysys_txn")
        .unwrap()
        .expect("paysys_txn row");
    assert_eq!(
        (txn.0.as_str(), txn.1.as_str(), txn.2, txn.3.as_str()),
        ("osmp", "666", 5907, "10.25")
    );
    let pays_id: u64 = conn.query_first("SELECT id FROM pays").unwrap().unwrap();
    assert_eq!(txn.4, pays_id, "our row points at the billing's row");
}

#[test]
fn repeat_pay_returns_first_answer() {
    let (db, site) = setup();
    let query = pay_query("777", "59071", "10.5");
    let first = site.get(&query);
    assert_eq!(first.result(), 0, "{}", first.body);
    for _ in 0..3 {
        let again = site.get(&query);
        assert_eq!(again.result(), 0, "{}", again.body);
        assert_eq!(again.prv_txn(), first.prv_txn());
        assert_eq!(again.element("sum").as_deref(), Some("10.50"));
    }
    assert_eq!(db.balance(5907), "110.50");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    assert!(site
        .log()
        .contains("detail=\"repeat: first answer returned, nothing credited\""));
}

#[test]
fn repeat_with_another_sum_or_account_is_refused_and_credits_nothing() {
    let (db, site) = setup();
    let first = site.get(&pay_query("888", "59071", "10.00"));
    assert_eq!(first.result(), 0, "{}", first.body);
    for query in [
        pay_query("888", "59071", "11.00"),
        pay_query("888", "12340", "10.00"),
    ] {
        let a = site.get(&query);
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (7, "nod11"),
            "{}",
            a.body
        );
    }
    assert_eq!(db.balance(5907), "110.00");
    assert_eq!(db.balance(1234), "15.50");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    assert_eq!(
        site.log().matches("conflict: txn already paid").count(),
        2,
        "{}",
        site.log()
    );
}

#[test]
fn concurrent_identical_pays_credit_once() {
    let (db, site) = setup();
    let query = pay_query("4242", "59071", "7.77");
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| site.get(&query))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let prv: Vec<_> = answers.iter().map(|a| (a.result(), a.prv_txn())).collect();
    assert!(prv.iter().all(|(r, p)| *r == 0 && p.is_some()), "{prv:?}");
    assert!(
        prv.iter().all(|(_, p)| *p == prv[0].1),
        "one prv_txn: {prv:?}"
    );
    assert_eq!(db.balance(5907), "107.77");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    assert_eq!(site.log_lines().len(), 20, "one line per request");
}

#[test]
fn pay_to_unknown_subscriber_is_5_and_writes_nothing() {
    let (db, site) = setup();
    let a = site.get(&pay_query("1", "426", "10"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (5, "nod5"),
        "{}",
        a.body
    );
    assert_eq!((db.pays(), db.txns()), (0, 0));
    // The txn id is still free: a corrected retry with the same id pays.
    let a = site.get(&pay_query("1", "59071", "10"));
    assert_eq!(a.result(), 0, "{}", a.body);
}

#[test]
fn sums_are_exact_and_bounded() {
    let (db, site) = setup();
    let table: &[(&str, i32, &str)] = &[
        ("0.99", 241, "nod8"),
        ("0", 241, "nod8"),
        ("15000.01", 242, "nod9"),
        ("99999999999999999999", 242, "nod9"),
        ("1e3", 300, "nod7"),
        ("-5", 300, "nod7"),
        ("10.001", 300, "nod7"),
        ("NaN", 300, "nod7"),
        ("%2010", 300, "nod7"),
        ("", 300, "nod7"),
        ("10%2C5", 300, "nod7"),
    ];
    for (i, (sum, result, comment)) in table.iter().enumerate() {
        let a = site.get(&pay_query(&format!("{}", 100 + i), "59071", sum));
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (*result, *comment),
            "sum {sum:?}: {}",
            a.body
        );
    }
    assert_eq!((db.pays(), db.txns()), (0, 0));
    assert_eq!(db.balance(5907), "100.00");

    for (i, (sum, credited)) in [
        ("10", "10.00"),
        ("10.5", "10.50"),
        ("00010.00", "10.00"),
        ("15000", "15000.00"),
    ]
    .iter()
    .enumerate()
    {
        let a = site.get(&pay_query(&format!("{}", 200 + i), "12340", sum));
        assert_eq!(a.result(), 0, "sum {sum}: {}", a.body);
        assert_eq!(a.element("sum").as_deref(), Some(*credited));
    }
    assert_eq!(db.balance(1234), "15046.00");
}

#[test]
fn txn_date_must_be_14_digits_within_the_window() {
    let (db, site) = setup();
    let pay = |txn: &str, date: &str| {
        site.get(&format!(
            "command=pay&txn_id={txn}&account=59071&sum=1&txn_date={date}"
        ))
    };
    for (i, date) in [
        "2026112209300",
        "202611220930000",
        "20261399999999",
        "",
        "now",
    ]
    .iter()
    .enumerate()
    {
        let a = pay(&format!("{}", 10 + i), date);
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (300, "nod10"),
            "{date:?}: {}",
            a.body
        );
    }
    for (i, minutes) in [-25 * 60, 25 * 60, -365 * 24 * 60].iter().enumerate() {
        let a = pay(&format!("{}", 20 + i), &txn_date(*minutes));
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (300, "nod12"),
            "{minutes} min: {}",
            a.body
        );
    }
    assert_eq!((db.pays(), db.txns()), (0, 0));
    for (i, minutes) in [-23 * 60, 23 * 60, 0].iter().enumerate() {
        let a = pay(&format!("{}", 30 + i), &txn_date(*minutes));
        assert_eq!(a.result(), 0, "{minutes} min: {}", a.body);
    }
}

#[test]
fn txn_date_now_only_on_a_test_system() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "test = true");
    let a = site.get("command=pay&txn_id=666&txn_date=now&sum=10.25&account=33");
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(db.balance(3), "10.25");
}

#[test]
fn window_follows_the_config() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace("txn_window_hours = 24", "txn_window_hours = 1"));
    let a = site.get(&format!(
        "command=pay&txn_id=1&account=59071&sum=1&txn_date={}",
        txn_date(-90)
    ));
    assert_eq!(a.comment(), "nod12", "{}", a.body);
}

// ----- status --------------------------------------------------------------------------------

#[test]
fn status_tells_whether_a_txn_was_paid() {
    let (_db, site) = setup();
    let paid = site.get(&pay_query("31337", "59071", "3.50"));
    let a = site.get("command=status&txn_id=31337");
    assert_eq!((a.result(), a.prv_txn()), (0, paid.prv_txn()), "{}", a.body);
    assert_eq!(a.element("sum").as_deref(), Some("3.50"));
    let a = site.get("command=status&txn_id=31338");
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (300, "nod17"),
        "{}",
        a.body
    );
}

// ----- NoDeny's own comments -----------------------------------------------------------------

#[test]
fn a_bare_request_is_nod3_with_result_1() {
    let (_db, site) = setup();
    for query in [
        "",
        "command=",
        "command=refund&txn_id=1",
        "command=CHECK&account=59071",
    ] {
        let a = site.get(query);
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (1, "nod3"),
            "{query:?}: {}",
            a.body
        );
    }
}

#[test]
fn missing_config_is_nod1_and_broken_config_is_nod2() {
    let (db, site) = setup();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::remove_file(site.config_path()).unwrap();
    let a = site.get(&pay_query("1", "59071", "1"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod1"),
        "{}",
        a.body
    );
    assert!(site.log().contains("cannot be read"), "{}", site.log());

    site.write_config(&config.replace("\"10.0.0.0/8\"", "\"10.0.0.300/8\""));
    let a = site.get(&pay_query("1", "59071", "1"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod2"),
        "{}",
        a.body
    );
    assert!(
        site.log()
            .contains("line 12: system 'osmp': allow: '10.0.0.300/8'"),
        "{}",
        site.log()
    );
    assert_eq!((db.pays(), db.txns()), (0, 0));

    site.write_config(&config);
    assert_eq!(site.get(&pay_query("1", "59071", "1")).result(), 0);
}

#[test]
fn unreachable_database_is_temporary_and_writes_nothing() {
    let db = TestDb::new();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let site = Site::new("mysql://root@127.0.0.1:9/nodeny", "");
    let a = site.get(&pay_query("1", "59071", "1"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod13"),
        "{}",
        a.body
    );
    let a = site.get("command=check&account=59071");
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod14"),
        "{}",
        a.body
    );
    assert!(site.log().contains("cannot connect"), "{}", site.log());
    assert_eq!((db.pays(), db.txns()), (0, 0));
}

#[test]
fn a_held_lock_answers_temporary_in_bounded_time() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace("lock_timeout = 3", "lock_timeout = 1"));
    let mut holder = db.conn();
    holder.query_drop("START TRANSACTION").unwrap();
    holder
        .query_drop("SELECT * FROM users WHERE id = 5907 FOR UPDATE")
        .unwrap();
    let a = site.get(&pay_query("55", "59071", "1"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod13"),
        "{}",
        a.body
    );
    assert!(site.log().contains("Lock wait timeout"), "{}", site.log());
    holder.query_drop("ROLLBACK").unwrap();
    assert_eq!((db.pays(), db.txns()), (0, 0), "rolled back whole");
    let a = site.get(&pay_query("55", "59071", "1"));
    assert_eq!(a.result(), 0, "the retry pays: {}", a.body);
    assert_eq!(db.balance(5907), "101.00");
}

// ----- the caller ----------------------------------------------------------------------------

#[test]
fn only_remote_addr_identifies_the_caller() {
    let (db, site) = setup();
    let query = pay_query("9", "59071", "1");
    let with = |vars: &[(&str, &str)]| {
        let mut all = vec![("REQUEST_METHOD", "GET"), ("QUERY_STRING", query.as_str())];
        all.extend_from_slice(vars);
        site.cgi(&all, b"")
    };
    for vars in [
        vec![
            ("REMOTE_ADDR", "192.0.2.1"),
            ("HTTP_X_FORWARDED_FOR", "127.0.0.1"),
        ],
        vec![("REMOTE_ADDR", "10.0.0.13")],
        vec![("REMOTE_ADDR", "::ffff:10.0.0.13")],
        vec![("HTTP_X_REAL_IP", "127.0.0.1")],
        vec![("REMOTE_ADDR", "")],
        vec![("REMOTE_ADDR", "127.0.0.1, 10.0.0.1")],
    ] {
        let a = with(&vars);
        assert_eq!(
            (a.status, a.result(), a.comment().as_str()),
            (403, 8, "nod15"),
            "{vars:?}: {}",
            a.body
        );
    }
    assert_eq!((db.pays(), db.txns()), (0, 0));
    assert!(
        site.log().contains("ip=192.0.2.1 system=- cmd=pay"),
        "{}",
        site.log()
    );

    let a = with(&[("REMOTE_ADDR", "::ffff:10.1.2.3")]);
    assert_eq!(
        a.result(),
        0,
        "IPv4-mapped IPv6 meets the IPv4 rules: {}",
        a.body
    );
}

// ----- the request ---------------------------------------------------------------------------

#[test]
fn post_form_bodies_are_read() {
    let (db, site) = setup();
    let body = pay_query("501", "59071", "2.5");
    let len = body.len().to_string();
    let a = site.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", &len),
        ],
        body.as_bytes(),
    );
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(db.balance(5907), "102.50");
}

/// A chunked POST as Apache's mod_cgid passes it: no CONTENT_LENGTH, the de-chunked body
/// on stdin up to EOF. Read as a form, credited once; a repeat finds the first answer.
#[test]
fn a_post_without_content_length_is_read_to_eof() {
    let (db, site) = setup();
    let body = pay_query("503", "59071", "3.25");
    let vars = [
        ("REQUEST_METHOD", "POST"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("HTTP_TRANSFER_ENCODING", "chunked"),
    ];
    let first = site.cgi(&vars, body.as_bytes());
    assert_eq!(
        (first.result(), first.comment().as_str()),
        (0, "OK"),
        "{}",
        first.body
    );
    let prv_txn = first.prv_txn().expect("prv_txn");
    let again = site.cgi(&vars, body.as_bytes());
    assert_eq!(again.result(), 0, "{}", again.body);
    assert_eq!(again.prv_txn(), Some(prv_txn));
    assert_eq!(db.balance(5907), "103.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    let lines = site.log_lines();
    assert!(
        lines[0].contains("cmd=pay txn=503 account=59071 sum=3.25 result=0"),
        "{lines:#?}"
    );

    // Over the limit, without a length to say so up front: the same refusal as a too-long
    // CONTENT_LENGTH, and nothing credited.
    let mut big = body.clone().into_bytes();
    big.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    let a = site.cgi(&vars, &big);
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (300, "nod16"),
        "{}",
        a.body
    );
    assert_eq!(a.exit, Some(0));
    assert_eq!(db.balance(5907), "103.25");
    let lines = site.log_lines();
    assert!(
        lines.len() == 3 && lines[2].contains("limit"),
        "the log says why: {lines:#?}"
    );
}

#[test]
fn broken_bodies_are_clean_refusals() {
    let (db, site) = setup();
    let body = pay_query("502", "59071", "2.5");
    let big = vec![b'a'; 10 * 1024 * 1024];
    let cases: Vec<(&str, &[u8])> = vec![
        ("99999", body.as_bytes()),
        ("-1", body.as_bytes()),
        ("x", body.as_bytes()),
        ("10485760", &big),
    ];
    for (len, stdin) in cases {
        let a = site.cgi(
            &[
                ("REQUEST_METHOD", "POST"),
                ("REMOTE_ADDR", "127.0.0.1"),
                ("CONTENT_LENGTH", len),
            ],
            stdin,
        );
        assert_eq!(
            (a.result(), a.comment().as_str()),
            (300, "nod16"),
            "CONTENT_LENGTH {len}: {}",
            a.body
        );
        assert_eq!(a.exit, Some(0));
    }
    assert_eq!((db.pays(), db.txns()), (0, 0));
}

#[test]
fn hostile_input_is_answered_cleanly_and_credits_nothing() {
    let (db, site) = setup();
    let queries = [
        "command=pay&txn_id=1%27%20OR%20%271%27=%271&account=59071&sum=1&txn_date=20261122093000",
        "command=pay&txn_id=1&account=59071%27;DROP%20TABLE%20users;--&sum=1&txn_date=20261122093000",
        "command=pay&txn_id=%3C/osmp_txn_id%3E%3Cresult%3E0%3C/result%3E&account=59071&sum=1",
        "command=check&account=%3Cresult%3E0%3C/result%3E",
        "command=pay&txn_id=666%0A&account=59071&sum=1",
        "command=pay&txn_id=1%0D%0A2026-11-22%2000:00:00%20fake%20result=0&account=59071&sum=1",
        "command=pay&txn_id=1%00&account=59071%00&sum=1",
        "command=check&account=%FF%FE%FD",
        "command=pay&txn_id=1&txn_id=2&account=59071&sum=1",
        "command=pay&txn_id=123456789012345678901&account=59071&sum=1",
    ];
    for query in queries {
        let a = site.get(query);
        assert_ne!(a.result(), 0, "{query}: {}", a.body);
        assert_eq!(a.body.matches("<result>").count(), 1, "{query}: {}", a.body);
        assert!(
            !a.body.contains('\0') && !a.body.contains("<result>0"),
            "{query}: {}",
            a.body
        );
    }
    let huge = format!(
        "command=pay&txn_id={}&account={}&sum=1",
        "9".repeat(30_000),
        "1".repeat(30_000)
    );
    let a = site.get(&huge);
    assert_eq!(a.result(), 300, "{}", &a.body[..a.body.len().min(300)]);
    assert!(a.body.len() < 1000, "echo is capped");

    assert_eq!((db.pays(), db.txns()), (0, 0));
    assert_eq!(db.count("SELECT COUNT(*) FROM users"), 4, "users intact");
    let lines = site.log_lines();
    assert_eq!(
        lines.len(),
        queries.len() + 1,
        "one line per request:\n{}",
        site.log()
    );
    assert!(lines.iter().all(|l| l.len() < 2000));
}

// ----- schemas and servers -------------------------------------------------------------------

#[test]
fn float_money_columns_work() {
    let db = TestDb::with_float_money();
    let site = Site::new(&db.url, "");
    for (txn, sum) in [
        ("1", "10.25"),
        ("2", "1.10"),
        ("3", "1.20"),
        ("4", "14999.99"),
    ] {
        let a = site.get(&pay_query(txn, "59071", sum));
        assert_eq!(a.result(), 0, "{}", a.body);
    }
    assert_eq!(db.balance(5907), "15112.54");
    let a = site.get("command=check&account=59071");
    assert_eq!(a.result(), 0, "{}", a.body);
}

#[test]
fn pay_works_in_strict_sql_mode() {
    let db = TestDb::new();
    // Our connection sees the server's global mode; make the strictest mode the session
    // default for this test's database user by checking it is in force server-wide.
    let mode: String = db
        .conn()
        .query_first("SELECT @@GLOBAL.sql_mode")
        .unwrap()
        .unwrap();
    assert!(
        mode.contains("STRICT_TRANS_TABLES") || mode.contains("STRICT_ALL_TABLES"),
        "the test server must run in strict mode (MariaDB's default); it runs '{mode}'"
    );
    let site = Site::new(&db.url, "");
    let a = site.get(&pay_query("1", "59071", "10.25"));
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(db.balance(5907), "110.25");
}

// ----- the log -------------------------------------------------------------------------------

#[test]
fn every_request_logs_one_greppable_line() {
    let (_db, site) = setup();
    let paid = site.get(&pay_query("666", "59071", "10.25"));
    site.get("command=check&account=59072");
    let lines = site.log_lines();
    assert_eq!(lines.len(), 2, "{}", site.log());
    let pay = &lines[0];
    let expect = format!(
        "ip=127.0.0.1 system=osmp cmd=pay txn=666 account=59071 sum=10.25 result=0 prv_txn={} ms=",
        paid.prv_txn().unwrap()
    );
    assert!(pay.contains(&expect), "{pay}");
    assert!(
        pay.contains(" pid=") && pay.ends_with("comment=\"OK\""),
        "{pay}"
    );
    assert!(
        lines[1].contains("cmd=check account=59072 result=4"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("comment=\"nod4\" detail=\"wrong check digit: expected 1\""),
        "{}",
        lines[1]
    );
}

#[test]
fn debug_mode_dumps_the_request_on_the_same_line() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace("[log]\n", "[log]\ndebug = true\n"));
    site.get("command=check&account=59071&note=a%0Ab");
    let lines = site.log_lines();
    assert_eq!(lines.len(), 1, "{}", site.log());
    assert!(
        lines[0].contains("request=\"GET command=check&account=59071&note=a%0Ab\""),
        "{}",
        lines[0]
    );
}

#[test]
fn an_unwritable_log_does_not_change_the_payment() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace(
        "file = \"var/log/paysys_check.log\"",
        "file = \"/dev/full\"",
    ));
    let a = site.get(&pay_query("1", "59071", "5"));
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(db.balance(5907), "105.00");
    assert!(
        a.stderr.contains("cannot write log /dev/full"),
        "{}",
        a.stderr
    );
    assert!(
        a.stderr.contains("cmd=pay txn=1"),
        "the line reaches stderr: {}",
        a.stderr
    );
}

#[test]
fn the_grants_in_sql_are_enough() {
    let db = TestDb::new();
    let user = format!("pg{}", &db.name[db.name.len() - 8..]);
    let grants = std::fs::read_to_string(common::repo().join("sql/grants-nodeny.sql"))
        .unwrap()
        .replace("`nodeny`", &format!("`{}`", db.name))
        .replace("'paysys'@'localhost'", &format!("'{user}'@'%'"))
        .replace("change-me", "s3cret");
    let mut admin = db.conn();
    common::run_script(&mut admin, &grants);
    let url = db
        .url
        .replacen("mysql://root@", &format!("mysql://{user}:s3cret@"), 1);
    let site = Site::new(&url, "");
    let a = site.get(&pay_query("1", "59071", "2"));
    let check = site.get("command=check&account=59071");
    let status = site.get("command=status&txn_id=1");
    let refused = site.get(&pay_query("2", "59072", "2"));
    admin.query_drop(format!("DROP USER '{user}'@'%'")).unwrap();
    assert_eq!(a.result(), 0, "{}\n{}", a.body, site.log());
    assert_eq!((check.result(), status.result()), (0, 0), "{}", site.log());
    assert_eq!(refused.result(), 4, "{}", refused.body);
    assert!(!site.log().contains("notes="), "{}", site.log());
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_refusal"), 1);
    assert_eq!(db.balance(5907), "102.00");
}

// ----- refused pays --------------------------------------------------------------------------

type RefusalRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

fn refusals(db: &TestDb) -> Vec<RefusalRow> {
    db.conn()
        .query(
            "SELECT system_name, txn_id, account, CAST(amount AS CHAR), result, comment, reason, \
             caller_ip FROM paysys_refusal ORDER BY id",
        )
        .unwrap()
}

#[test]
fn refused_pays_are_recorded_one_row_each() {
    let (db, site) = setup();
    let bad_digit = site.get(&pay_query("11", "59072", "10.5"));
    let above_max = site.get(&pay_query("12", "59071", "15000.01"));
    let window = site.get(&format!(
        "command=pay&txn_id=13&account=59071&sum=7&txn_date={}",
        txn_date(-25 * 60)
    ));
    let not_a_sum = site.get(&pay_query("14", "59071", "1e3"));
    assert_eq!(
        [
            bad_digit.result(),
            above_max.result(),
            window.result(),
            not_a_sum.result()
        ],
        [4, 242, 300, 300]
    );
    let rows = refusals(&db);
    let row = |txn: &str,
               account: &str,
               amount: Option<&str>,
               result: &str,
               comment: &str,
               reason: &str| {
        (
            "osmp".to_string(),
            txn.to_string(),
            account.to_string(),
            amount.map(str::to_string),
            result.to_string(),
            comment.to_string(),
            reason.to_string(),
            "127.0.0.1".to_string(),
        )
    };
    assert_eq!(
        rows,
        vec![
            row(
                "11",
                "59072",
                Some("10.50"),
                "4",
                "nod4",
                "wrong check digit: expected 1"
            ),
            row(
                "12",
                "59071",
                Some("15000.01"),
                "242",
                "nod9",
                "sum above max_sum 15000.00"
            ),
            row(
                "13",
                "59071",
                Some("7.00"),
                "300",
                "nod12",
                "txn_date more than 24 h from now"
            ),
            row("14", "59071", None, "300", "nod7", &rows[3].6),
        ]
    );
    assert!(!rows[3].6.is_empty());
    assert_eq!((db.pays(), db.txns()), (0, 0));
    assert!(!site.log().contains("notes="), "{}", site.log());
}

#[test]
fn paid_pays_checks_and_statuses_are_not_recorded_as_refusals() {
    let (db, site) = setup();
    assert_eq!(site.get(&pay_query("1", "59071", "5")).result(), 0);
    assert_eq!(
        site.get(&pay_query("1", "59071", "5")).result(),
        0,
        "a repeat"
    );
    assert_eq!(site.get("command=check&account=59072").result(), 4);
    assert_eq!(
        site.get("command=check&account=59071&sum=99999").result(),
        242
    );
    assert_eq!(site.get("command=status&txn_id=2").comment(), "nod17");
    assert_eq!(site.get("command=refund&txn_id=2").comment(), "nod3");
    assert_eq!(db.count("SELECT COUNT(*) FROM paysys_refusal"), 0);
}

#[test]
fn long_and_hostile_fields_are_cut_to_their_columns() {
    let (db, site) = setup();
    let long = "9".repeat(100);
    let a = site.get(&format!(
        "command=pay&txn_id=1%0A2&account={long}&sum=1&txn_date={}",
        txn_date(0)
    ));
    assert_eq!(a.comment(), "nod6", "{}", a.body);
    let rows = refusals(&db);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "1 2");
    assert_eq!(rows[0].2, "9".repeat(64));
    assert!(
        rows[0].6.chars().all(|c| !c.is_control()),
        "{:?}",
        rows[0].6
    );
}

#[test]
fn a_refusal_that_cannot_be_recorded_changes_nothing_but_the_log_note() {
    let (db, site) = setup();
    db.conn().query_drop("DROP TABLE paysys_refusal").unwrap();
    let a = site.get(&pay_query("11", "59072", "10.5"));
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (4, "nod4"),
        "{}",
        a.body
    );
    let paid = site.get(&pay_query("12", "59071", "3"));
    assert_eq!(paid.result(), 0, "{}", paid.body);
    let lines = site.log_lines();
    assert_eq!(lines.len(), 2, "{}", site.log());
    assert!(
        lines[0].contains("result=4") && lines[0].contains(" notes=\"refusal not recorded: "),
        "{}",
        lines[0]
    );
    assert!(!lines[1].contains("notes="), "{}", lines[1]);
}

#[test]
fn config_and_log_are_found_next_to_cgi_bin() {
    let (db, site) = setup();
    let cgi = site.base.join("cgi-bin/osmp.cgi");
    std::fs::create_dir_all(cgi.parent().unwrap()).unwrap();
    common::install_executable(std::path::Path::new(common::osmp_exe()), &cgi);
    let query = pay_query("1", "59071", "3");
    let out = std::process::Command::new(&cgi)
        .env_clear()
        .envs([
            ("REQUEST_METHOD", "GET"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("QUERY_STRING", query.as_str()),
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("<result>0</result>"), "{body}");
    assert_eq!(db.balance(5907), "103.00");
    assert_eq!(
        site.log_lines().len(),
        1,
        "logged under the install base's var/log"
    );
}
