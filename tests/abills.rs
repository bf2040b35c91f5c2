//! `paysys_check.cgi` on ABillS: the real `paysys_check` executable run as a web server runs
//! a CGI, against the ABillS fixture (`sql/abills.sql`) in a database of its own per test.
//! Every test checks the answer and the rows ABillS keeps (`bills`, `payments`,
//! `paysys_log`) and ours (`paysys_txn`), column by column.

mod common;

use common::abills::{inet_aton, system, Abills, DEFAULT_ALLOW, LOOPBACK_INT, UNKNOWN_SYSTEM};
use common::{pay_query, txn_date, Answer, TestDb};
use mysql::prelude::Queryable;

/// Fixture uid 1 (`test1`, Иванов Иван Иванович), bill 1 at 12.50.
const UID1_MASKED: &str = "Balance: 12.50 Ив*** И*** И*******";

fn ok(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.content_type, "text/xml; charset=utf-8", "{a:?}");
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

fn unknown_system(a: &Answer) {
    assert_eq!(
        (a.status, a.content_type.as_str(), a.body.as_str()),
        (200, "text/plain; charset=utf-8", UNKNOWN_SYSTEM),
        "{a:?}"
    );
}

/// The `paysys_log.info` ABillS writes for these parameters: sorted `"key, value\n"` lines.
fn info(lines: &[(&str, &str)]) -> String {
    let mut lines = lines.to_vec();
    lines.sort();
    lines.iter().map(|(k, v)| format!("{k}, {v}\n")).collect()
}

/// Two systems: `osmp` for 10/8 except 10.0.0.13, `qiwi` for 10.0.0.13 and 192.0.2.0/24.
fn two_systems() -> String {
    system("osmp", &["10.0.0.0/8", "!10.0.0.13"], "")
        + &system(
            "qiwi",
            &["10.0.0.13", "192.0.2.0/24"],
            "abills_id = 45\ntxn_prefix = \"QIW\"",
        )
}

// ----- which system ----------------------------------------------------------------------------

#[test]
fn the_callers_address_picks_the_system() {
    let ab = Abills::with_systems(&two_systems());
    let cases = [
        ("10.0.0.7", "1", "osmp", "OSM", 44, "10.0.0.7"),
        // A dual-stack socket's view of an IPv4 peer meets the IPv4 rules...
        ("::ffff:10.0.0.7", "2", "osmp", "OSM", 44, "10.0.0.7"),
        ("10.0.0.13", "3", "qiwi", "QIW", 45, "10.0.0.13"),
        // ...and cannot walk around an IPv4 exclusion.
        ("::ffff:10.0.0.13", "4", "qiwi", "QIW", 45, "10.0.0.13"),
        ("192.0.2.10", "5", "qiwi", "QIW", 45, "192.0.2.10"),
    ];
    for (ip, txn, name, prefix, system_id, v4) in cases {
        let a = ab.get_from(ip, &pay_query(txn, "1", "1.00"));
        let prv_txn = ok(&a);
        let ext = format!("{prefix}:{txn}");
        let log = ab.log_row(&ext);
        assert_eq!(
            (log.id.to_string(), log.system_id, log.paysys_ip),
            (prv_txn, system_id, inet_aton(v4)),
            "{ip}"
        );
        assert_eq!(ab.payment(&ext).ip, inet_aton(v4), "{ip}: payments.ip");
        let txn_row = ab.txn(name, txn);
        assert_eq!(txn_row.caller_ip, v4, "{ip}");
        assert_eq!(txn_row.prv_txn, log.id, "{ip}");
    }
    let lines = ab.site.log_lines();
    assert_eq!(lines.len(), 5, "{}", ab.site.log());
    assert!(
        lines[1].contains("ip=::ffff:10.0.0.7 system=osmp "),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].contains("ip=::ffff:10.0.0.13 system=qiwi "),
        "{}",
        lines[3]
    );
    assert_eq!(ab.deposit(1), "17.50");
}

#[test]
fn the_first_system_in_config_order_wins_an_overlap() {
    let first = system("first", &["10.0.0.0/8"], "");
    let second = system("second", &["10.0.0.7"], "");
    let ab = Abills::with_systems(&(first.clone() + &second));
    ok(&ab.get_from("10.0.0.7", &pay_query("1", "1", "1.00")));
    assert_eq!(ab.log_row("FIR:1").system_id, 44);
    assert_eq!(ab.txn("first", "1").txn_id, "1");

    ab.set_systems(&(second + &first));
    ok(&ab.get_from("10.0.0.7", &pay_query("2", "1", "1.00")));
    ab.payment("SEC:2");
    assert_eq!(ab.txn("second", "2").txn_id, "2");
    // Still `first` for the rest of 10/8.
    ok(&ab.get_from("10.0.0.8", &pay_query("3", "1", "1.00")));
    ab.payment("FIR:3");
    assert_eq!(ab.deposit(1), "15.50");
}

#[test]
fn an_unknown_caller_gets_unknown_payment_system_and_changes_nothing() {
    let ab = Abills::new("");
    let before = ab.snapshot();
    let query = pay_query("9", "1", "10.25");
    let callers = [
        "203.0.113.9",
        "::ffff:203.0.113.9",
        "10.0.0.13",
        "::ffff:10.0.0.13",
    ];
    for ip in callers {
        unknown_system(&ab.get_from(ip, &query));
    }
    // No address at all, or one that is not an address.
    unknown_system(&ab.cgi(&[("REQUEST_METHOD", "GET"), ("QUERY_STRING", &query)], b""));
    unknown_system(&ab.get_from("10.0.0.7, 127.0.0.1", &query));
    unknown_system(&ab.get_from("", "command=check&account=1"));
    assert_eq!(ab.snapshot(), before, "no row anywhere changed");

    let lines = ab.site.log_lines();
    assert_eq!(lines.len(), 7, "{}", ab.site.log());
    for (line, ip) in lines.iter().zip(callers) {
        assert!(line.contains(&format!(" ip={ip} system=- ")), "{line}");
        assert!(
            line.contains(&format!("request=\"GET {query}\"")),
            "the request is logged whole: {line}"
        );
        assert!(line.contains("result=unknown-system"), "{line}");
    }
    assert!(lines[4].contains(" ip=- system=- "), "{}", lines[4]);
}

#[test]
fn a_request_without_parameters_never_gets_http_500() {
    let ab = Abills::new("");
    let before = ab.snapshot();
    let requests: [&[(&str, &str)]; 5] = [
        &[("REQUEST_METHOD", "GET"), ("REMOTE_ADDR", "127.0.0.1")],
        &[
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", ""),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_LENGTH", "0"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        &[("REMOTE_ADDR", "127.0.0.1")],
        &[("REQUEST_METHOD", "GET"), ("REMOTE_ADDR", "203.0.113.9")],
    ];
    for vars in requests {
        let a = ab.cgi(vars, b"");
        assert_eq!((a.exit, a.status), (Some(0), 200), "{vars:?}: {a:?}");
        if vars.contains(&("REMOTE_ADDR", "203.0.113.9")) {
            unknown_system(&a);
        } else {
            assert_eq!(a.content_type, "text/xml; charset=utf-8", "{a:?}");
            assert_ne!(a.result(), 0, "{}", a.body);
        }
    }
    assert_eq!(ab.snapshot(), before);
    assert_eq!(ab.site.log_lines().len(), 5, "{}", ab.site.log());
}

#[test]
fn test_allow_admits_txn_date_now_and_says_so_in_the_log() {
    let with_test = system("osmp", &["10.0.0.0/8"], "test_allow = [\"192.0.2.50\"]");
    let ab = Abills::with_systems(&with_test);
    let now_query = |txn: &str| format!("command=pay&txn_id={txn}&account=1&sum=1.00&txn_date=now");

    let a = ab.get_from("192.0.2.50", &now_query("1"));
    let prv_txn = ok(&a);
    assert_eq!(ab.deposit(1), "13.50");
    assert_eq!(ab.log_row("OSM:1").id.to_string(), prv_txn);
    let line = ab.site.log_lines().pop().unwrap();
    assert!(
        line.contains(" ip=192.0.2.50 system=osmp test=1 cmd=pay txn=1 "),
        "{line}"
    );

    // A caller in `allow` is no tester: `now` is not a date.
    let before = ab.snapshot();
    refused(&ab.get_from("10.0.0.7", &now_query("2")), 300, "nod10");
    let line = ab.site.log_lines().pop().unwrap();
    assert!(!line.contains("test="), "{line}");
    assert!(
        line.contains(" ip=10.0.0.7 system=osmp cmd=pay txn=2 "),
        "{line}"
    );

    // Without the test_allow entry the same address is nobody.
    ab.set_systems(&system("osmp", &["10.0.0.0/8"], ""));
    unknown_system(&ab.get_from("192.0.2.50", &now_query("3")));
    assert_eq!(ab.snapshot(), before);
    assert_eq!(ab.deposit(1), "13.50");
}

// ----- check -----------------------------------------------------------------------------------

#[test]
fn check_shows_the_balance_and_the_masked_name() {
    let ab = Abills::new("");
    let a = ab.get("command=check&txn_id=5&account=1&sum=10.25");
    ok(&a);
    assert_eq!(a.comment(), UID1_MASKED);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("5"));
    assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    assert_eq!(a.prv_txn(), None);
    assert!(a
        .body
        .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));

    ab.set_systems(&system("osmp", DEFAULT_ALLOW, "mask_name = false"));
    let a = ab.get("command=check&txn_id=5&account=1&sum=10.25");
    ok(&a);
    assert_eq!(a.comment(), "Balance: 12.50 Иванов Иван Иванович");
    // A company's user shows the company's balance.
    let a = ab.get("command=check&account=5");
    ok(&a);
    assert_eq!(a.comment(), "Balance: 100.00 Сидоров Сидор Сидорович");
    // A debt, and a deposit with more places than kopecks.
    let mut conn = ab.db.conn();
    conn.query_drop("UPDATE bills SET deposit = -87.5 WHERE id = 1")
        .unwrap();
    let a = ab.get("command=check&account=1");
    assert_eq!(a.comment(), "Balance: -87.50 Иванов Иван Иванович");
    conn.query_drop("UPDATE bills SET deposit = 12.345678 WHERE id = 1")
        .unwrap();
    let a = ab.get("command=check&account=1");
    assert_eq!(a.comment(), "Balance: 12.35 Иванов Иван Иванович");
}

#[test]
fn check_with_a_zero_or_no_sum_answers_for_the_account() {
    let ab = Abills::new("min_sum = \"1.00\"");
    for query in [
        "command=check&txn_id=1&account=1&sum=0.00",
        "command=check&txn_id=1&account=1&sum=0",
        "command=check&txn_id=1&account=1&sum=",
        "command=check&txn_id=1&account=1",
        "command=check&account=1",
    ] {
        let a = ab.get(query);
        ok(&a);
        assert_eq!(a.comment(), UID1_MASKED, "{query}");
    }
    refused(&ab.get("command=check&account=99&sum=0.00"), 5, "nod5");
    // Disabled (uid 2): about the account all the same, as ABillS answers.
    ok(&ab.get("command=check&account=2&sum=0.00"));
    refused(&ab.get("command=check&account=4"), 7, "nod21");
    // A real sum is still judged.
    refused(&ab.get("command=check&account=1&sum=0.50"), 241, "nod8");
}

#[test]
fn check_by_each_account_key() {
    let ab = Abills::new("");
    let check = |account: &str| ab.get(&format!("command=check&txn_id=1&account={account}"));
    let comment_of = |account: &str| {
        let a = check(account);
        ok(&a);
        a.comment()
    };
    // uid (the default).
    assert_eq!(comment_of("1"), UID1_MASKED);
    assert_eq!(comment_of("0001"), UID1_MASKED);
    refused(&check("test1"), 4, "nod4");
    refused(&check("C-0001"), 4, "nod4");

    ab.set_systems(&system("osmp", DEFAULT_ALLOW, "account = \"login\""));
    assert_eq!(comment_of("test1"), UID1_MASKED);
    refused(&check("1"), 5, "nod5");
    // Blanks around a login are dropped, as ABillS's script took such an account; the rest
    // compares as ABillS's column does.
    assert_eq!(comment_of("TEST1%20"), UID1_MASKED);

    ab.set_systems(&system("osmp", DEFAULT_ALLOW, "account = \"contract_id\""));
    assert_eq!(comment_of("C-0001"), UID1_MASKED);
    refused(&check("test1"), 5, "nod5");
    // A contract number is the user's own, not the company's.
    assert_eq!(
        comment_of("C-0005"),
        "Balance: 100.00 Си*** С**** С********"
    );
    refused(&check("K-0001"), 5, "nod5");

    // A list: tried in order, the first key that finds somebody decides.
    let mut conn = ab.db.conn();
    conn.query_drop(
        "INSERT INTO bills (id, deposit, uid, registration) VALUES (20, 3.00, 20, '2024-01-01')",
    )
    .unwrap();
    conn.query_drop(
        "INSERT INTO users (id, password, uid, gid, bill_id) VALUES ('7', '', 20, 1, 20)",
    )
    .unwrap();
    conn.query_drop(
        "INSERT INTO users_pi (uid, fio, comments, reg_address) VALUES (20, 'Логин Семь', '', '')",
    )
    .unwrap();
    let all = "account = [\"uid\", \"login\", \"contract_id\"]";
    ab.set_systems(&system("osmp", DEFAULT_ALLOW, all));
    assert_eq!(comment_of("1"), UID1_MASKED);
    assert_eq!(comment_of("test1"), UID1_MASKED);
    assert_eq!(comment_of("C-0001"), UID1_MASKED);
    assert_eq!(
        comment_of("7"),
        "Balance: 0.00 Ша*** Ц****",
        "uid 7 before login '7'"
    );
    // uid 12345 does not exist; the login 00012345 does.
    assert_eq!(comment_of("00012345"), "Balance: 0.00 Ци*** Л****");
    // uid 2 is disabled: found, and payable as in ABillS.
    assert_eq!(comment_of("C-0002"), "Balance: 0.00 От*** А******");
    ab.set_systems(&system(
        "osmp",
        DEFAULT_ALLOW,
        "account = [\"login\", \"uid\"]",
    ));
    assert_eq!(
        comment_of("7"),
        "Balance: 3.00 Ло*** С***",
        "login '7' before uid 7"
    );
    assert_eq!(comment_of("1"), UID1_MASKED, "no login '1': uid 1");
}

#[test]
fn account_expr_rewrites_the_account_before_the_lookup() {
    let ab = Abills::new("account = \"login\"\naccount_expr = '\\d+(\\d{8})$/$1'");
    let a = ab.get("command=check&account=38000012345");
    ok(&a);
    assert_eq!(a.comment(), "Balance: 0.00 Ци*** Л****");
    // No match: the account as typed.
    assert_eq!(ab.get("command=check&account=test1").comment(), UID1_MASKED);
    refused(&ab.get("command=check&account=1234567"), 5, "nod5");

    let prv_txn = ok(&ab.get(&pay_query("1", "38000012345", "5.00")));
    assert_eq!(ab.deposit(9), "5.00");
    let txn = ab.txn("osmp", "1");
    assert_eq!(
        (
            txn.account.as_str(),
            txn.subscriber_id,
            txn.prv_txn.to_string()
        ),
        ("38000012345", 8, prv_txn)
    );
    let log = ab.log_row("OSM:1");
    assert_eq!(log.uid, 8);
    assert!(
        log.info.starts_with("account, 38000012345\n"),
        "{}",
        log.info
    );
    assert_eq!(ab.payment("OSM:1").bill_id, 9);
}

#[test]
fn search_patterns_find_nobody_but_an_exact_login() {
    let ab = Abills::new("account = [\"uid\", \"login\", \"contract_id\"]");
    let before = ab.snapshot();
    for account in [
        "%2A", "%3E0", "%3C100", "%25", "_", "a_b", "test%25", "%21test1", "_EMPTY_", "%2A1",
        "test1%2A", "C-%25",
    ] {
        refused(
            &ab.get(&format!("command=check&account={account}")),
            5,
            "nod5",
        );
        refused(&ab.get(&pay_query("1", account, "1.00")), 5, "nod5");
    }
    assert_eq!(ab.snapshot(), before);
    // `a%b` is uid 6's login, and only that: not a1b (uid 7).
    let a = ab.get("command=check&account=a%25b");
    ok(&a);
    assert_eq!(a.comment(), "Balance: 0.00 Ша*** П******");
    ok(&ab.get(&pay_query("2", "a%25b", "1.00")));
    assert_eq!(
        (ab.deposit(7), ab.deposit(8)),
        ("1.00".into(), "0.00".into())
    );
    assert_eq!(ab.payment("OSM:2").uid, 6);
}

#[test]
fn deleted_and_paysys_off_subscribers_are_refused() {
    let ab = Abills::new("");
    let before = ab.snapshot();
    // uid 3 deleted, uid 4 in a group with disable_paysys.
    for (uid, result, comment) in [(3, 5, "nod5"), (4, 7, "nod21")] {
        refused(
            &ab.get(&format!("command=check&txn_id=1&account={uid}")),
            result,
            comment,
        );
        refused(
            &ab.get(&pay_query(&uid.to_string(), &uid.to_string(), "10.00")),
            result,
            comment,
        );
    }
    assert_eq!(ab.snapshot(), before, "nothing written for a refused pay");
    // No bill to credit: "not finished", the terminal keeps the payment and retries.
    ab.db
        .conn()
        .query_drop(
            "INSERT INTO users (id, password, uid, gid, bill_id) VALUES ('nobill', '', 30, 1, 0)",
        )
        .unwrap();
    let before = ab.snapshot();
    refused(&ab.get(&pay_query("30", "30", "10.00")), 90, "nod27");
    assert_eq!(ab.snapshot(), before);
}

#[test]
fn disabled_subscribers_are_paid_as_abills_pays_them_unless_refuse_disabled_names_them() {
    // ABillS's script credits users.disable 1 (disabled) and 2 (not active) alike: the
    // subscriber may be paying to be switched back on.
    let ab = Abills::new("");
    ab.db
        .conn()
        .query_drop("UPDATE users SET disable = 2 WHERE uid = 5")
        .unwrap();
    ok(&ab.get("command=check&txn_id=1&account=2"));
    ok(&ab.get(&pay_query("21", "2", "10.00")));
    assert_eq!(ab.deposit(2), "10.00");
    ok(&ab.get(&pay_query("22", "5", "10.00")));
    assert_eq!(
        ab.deposit(6),
        "110.00",
        "uid 5 pays into its company's bill"
    );

    // refuse_disabled = [1]: state 1 is inactive (79), state 2 still paid.
    ab.set_systems(&system("osmp", DEFAULT_ALLOW, "refuse_disabled = [1]"));
    let before = ab.snapshot();
    refused(&ab.get("command=check&txn_id=1&account=2"), 79, "nod20");
    refused(&ab.get(&pay_query("23", "2", "10.00")), 79, "nod20");
    assert_eq!(ab.snapshot(), before, "nothing written for a refused pay");
    ok(&ab.get(&pay_query("24", "5", "10.00")));
    // A repeat of a payment made before the rule keeps its first answer.
    ok(&ab.get(&pay_query("21", "2", "10.00")));
    assert_eq!(ab.deposit(2), "10.00");

    // true: every state but 0.
    ab.set_systems(&system("osmp", DEFAULT_ALLOW, "refuse_disabled = true"));
    refused(&ab.get(&pay_query("25", "5", "10.00")), 79, "nod20");
    refused(&ab.get(&pay_query("26", "2", "10.00")), 79, "nod20");
    ok(&ab.get(&pay_query("27", "1", "10.00")));
}

// ----- pay -------------------------------------------------------------------------------------

#[test]
fn pay_writes_the_rows_abills_writes() {
    let ab = Abills::new("");
    let date = txn_date(-1);
    let query =
        format!("command=pay&txn_id=1001&account=1&sum=10.25&txn_date={date}&prv_id=5&trm_id=");
    let a = ab.get(&query);
    let prv_txn = ok(&a);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("1001"));
    assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    assert_eq!(ab.deposit(1), "22.75", "bills.deposit + 10.25 exactly");

    let payments = ab.payments();
    assert_eq!(
        payments.len(),
        2,
        "the fixture's and this one: {payments:?}"
    );
    let p = ab.payment("OSM:1001");
    assert_eq!(
        (
            p.sum.as_str(),
            p.amount.as_str(),
            p.dsc.as_str(),
            p.ip,
            p.last_deposit.as_str(),
            p.uid,
            p.aid,
            p.method,
            p.bill_id,
            p.inner_describe.as_str(),
            p.currency,
        ),
        (
            "10.25",
            "10.25",
            "OSMP Payments",
            LOOPBACK_INT,
            "12.50",
            1,
            2,
            2,
            1,
            "",
            0
        ),
        "{p:?}"
    );
    assert!(
        (0..60).contains(&p.date_age) && (0..60).contains(&p.reg_date_age),
        "{p:?}"
    );

    let logs = ab.paysys_log();
    assert_eq!(logs.len(), 2, "{logs:?}");
    let log = ab.log_row("OSM:1001");
    assert_eq!(log.id.to_string(), prv_txn, "prv_txn is paysys_log.id");
    assert_eq!(
        (
            log.system_id,
            log.sum.as_str(),
            log.commission.as_str(),
            log.uid,
            log.ip,
            log.code_hex.as_str(),
            log.paysys_ip,
            log.domain_id,
            log.status,
            log.user_info.as_str(),
            log.merchant_id,
        ),
        (44, "10.25", "0.00", 1, 0, "", LOOPBACK_INT, 0, 2, "NULL", 0),
        "{log:?}"
    );
    assert_eq!(
        log.info,
        info(&[
            ("command", "pay"),
            ("txn_id", "1001"),
            ("account", "1"),
            ("sum", "10.25"),
            ("txn_date", &date),
            ("prv_id", "5"),
        ]),
        "sorted, without empty values"
    );
    assert!((0..60).contains(&log.datetime_age), "{log:?}");

    let txns = ab.txns();
    assert_eq!(txns.len(), 1, "{txns:?}");
    let t = &txns[0];
    assert_eq!(
        (
            t.system_name.as_str(),
            t.txn_id.as_str(),
            t.account.as_str(),
            t.subscriber_id,
            t.amount.as_str(),
            t.prv_txn,
            t.payment_ref,
            t.cancelled,
            t.domain_id,
            t.caller_ip.as_str(),
        ),
        (
            "osmp",
            "1001",
            "1",
            1,
            "10.25",
            log.id,
            p.id,
            false,
            0,
            "127.0.0.1"
        ),
    );
    let line = ab.site.log_lines().pop().unwrap();
    assert!(
        line.contains(&format!(
            " ip=127.0.0.1 system=osmp cmd=pay txn=1001 account=1 sum=10.25 result=0 prv_txn={prv_txn} "
        )),
        "{line}"
    );
}

#[test]
fn a_company_users_payment_goes_to_the_company_bill() {
    let ab = Abills::new("");
    let prv_txn = ok(&ab.get(&pay_query("1", "5", "10.25")));
    assert_eq!(ab.deposit(6), "110.25", "the company's bill");
    assert_eq!(ab.deposit(5), "3.00", "the user's own bill untouched");
    let p = ab.payment("OSM:1");
    assert_eq!(
        (p.bill_id, p.uid, p.last_deposit.as_str(), p.sum.as_str()),
        (6, 5, "100.00", "10.25")
    );
    let log = ab.log_row("OSM:1");
    assert_eq!((log.uid, log.id.to_string()), (5, prv_txn));
    let t = ab.txn("osmp", "1");
    assert_eq!((t.subscriber_id, t.payment_ref), (5, p.id));
}

#[test]
fn the_systems_abills_keys_land_in_the_rows() {
    let ab = Abills::new(
        "abills_id = 99\npayment_method = 10\nadmin_id = 1\n\
         description = \"Терминалы QIWI\"\ntxn_prefix = \"QW\"",
    );
    let prv_txn = ok(&ab.get(&pay_query("1002", "1", "3.00")));
    let p = ab.payment("QW:1002");
    assert_eq!(
        (p.method, p.aid, p.dsc.as_str(), p.uid),
        (10, 1, "Терминалы QIWI", 1)
    );
    let log = ab.log_row("QW:1002");
    assert_eq!((log.system_id, log.id.to_string()), (99, prv_txn.clone()));
    assert_eq!(ab.deposit(1), "15.50");
    // The status and cancel of this system find it by the same prefix.
    ok(&ab.get("command=status&txn_id=1002"));
    ok(&ab.get(&format!("command=cancel&prv_txn={prv_txn}")));
    assert_eq!(ab.deposit(1), "12.50");
    assert_eq!(ab.log_row("QW:1002").status, 3);
}

/// A pay with rows checked, for the SQL mode tests.
fn pay_and_check_rows(ab: &Abills) {
    let prv_txn = ok(&ab.get(&format!(
        "{}&note=%D0%98%D0%B2%D0%B0%D0%BD%20%F0%9F%98%80",
        pay_query("1", "1", "10.25")
    )));
    assert_eq!(ab.deposit(1), "22.75");
    let log = ab.log_row("OSM:1");
    assert_eq!(
        (log.id.to_string(), log.status, log.code_hex.as_str()),
        (prv_txn.clone(), 2, "")
    );
    assert!(log.info.contains("note, Иван ?\n"), "{}", log.info);
    assert_eq!(ab.payment("OSM:1").last_deposit, "12.50");
    let prv_txn2 = ok(&ab.get(&format!("command=cancel&prv_txn={prv_txn}")));
    assert_eq!(prv_txn2, prv_txn);
    assert_eq!(ab.deposit(1), "12.50");
}

#[test]
fn pay_works_in_strict_sql_mode() {
    let ab = Abills::new("");
    let mode: String = ab
        .db
        .conn()
        .query_first("SELECT @@GLOBAL.sql_mode")
        .unwrap()
        .unwrap();
    assert!(
        mode.contains("STRICT_TRANS_TABLES") || mode.contains("STRICT_ALL_TABLES"),
        "the test server must run in strict mode (MariaDB's default); it runs '{mode}'"
    );
    pay_and_check_rows(&ab);
}

#[test]
fn pay_works_with_sql_mode_no_engine_substitution() {
    // ABillS's own setting: its connections run SET sql_mode='NO_ENGINE_SUBSTITUTION'.
    let Some(server) = common::mariadb::PrivateServer::start(
        "abills_mode",
        &["--sql-mode=NO_ENGINE_SUBSTITUTION"],
    )
    .unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let db = TestDb::on_server(&server.url(), &common::abills::fixture());
    let mode: String = db
        .conn()
        .query_first("SELECT @@GLOBAL.sql_mode")
        .unwrap()
        .unwrap();
    assert_eq!(mode, "NO_ENGINE_SUBSTITUTION");
    let ab = Abills::on(db, &system("osmp", DEFAULT_ALLOW, ""));
    pay_and_check_rows(&ab);
}

/// The statements a CGI pay prepares on a server nobody else uses: our row, the subscriber
/// and ABillS's rows of the txn (one statement: the subscriber's part read plainly, the
/// txn's parts locked), ABillS's log row, the bill, the payment, our row completed. Each is
/// prepared once and executed once. Through the stored procedure (a run with
/// `PAYSYS_TEST_ABILLS_PROCEDURE=1`): its CALL alone.
#[test]
fn a_pay_asks_for_the_subscriber_and_the_txns_rows_in_one_statement() {
    let Some(server) = common::mariadb::PrivateServer::start("abills_statements", &[])
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let db = TestDb::on_server(&server.url(), &common::abills::fixture());
    let ab = Abills::on(db, &system("osmp", DEFAULT_ALLOW, ""));
    let mut conn = ab.db.conn();
    let mut counts = || -> (u64, u64) {
        conn.query_first(
            "SELECT SUM(IF(VARIABLE_NAME = 'COM_STMT_PREPARE', VARIABLE_VALUE, 0)), \
             SUM(IF(VARIABLE_NAME = 'COM_STMT_EXECUTE', VARIABLE_VALUE, 0)) \
             FROM information_schema.GLOBAL_STATUS",
        )
        .unwrap()
        .unwrap()
    };
    let before = counts();
    ok(&ab.get(&pay_query("31", "1", "1.00")));
    let after = counts();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        if common::abills::procedure_run() {
            (1, 1)
        } else {
            (6, 6)
        },
        "(prepared, executed)"
    );
    assert_eq!(ab.deposit(1), "13.50");
}

/// A pay's first key that finds nobody hands over to the next, as a check's does; the
/// txn's rows are looked for once, and a repeat is answered as the first pay.
#[test]
fn a_pay_finds_the_subscriber_by_the_next_key() {
    let ab = Abills::new("account = [\"login\", \"uid\"]");
    let prv_txn = ok(&ab.get(&pay_query("32", "1", "2.00")));
    assert_eq!(ab.deposit(1), "14.50", "no login '1': uid 1");
    assert_eq!(ab.log_row("OSM:32").uid, 1);
    assert_eq!(ab.payment("OSM:32").uid, 1);
    assert_eq!(ok(&ab.get(&pay_query("32", "1", "2.00"))), prv_txn);
    assert_eq!(ab.deposit(1), "14.50", "a repeat credits nothing");
    // The first key finds: the login.
    ok(&ab.get(&pay_query("33", "test1", "1.00")));
    assert_eq!(ab.deposit(1), "15.50");
    // Neither finds.
    refused(&ab.get(&pay_query("34", "nobody", "1.00")), 5, "nod5");
}

// ----- repeats ---------------------------------------------------------------------------------

#[test]
fn a_repeated_pay_gets_the_first_answer_and_credits_nothing() {
    let ab = Abills::new("");
    let query = pay_query("1", "1", "10.25");
    let prv_txn = ok(&ab.get(&query));
    let after_first = ab.snapshot();
    for _ in 0..3 {
        let a = ab.get(&query);
        assert_eq!(ok(&a), prv_txn);
        assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    }
    assert_eq!(ab.snapshot(), after_first, "nothing more written");
    assert_eq!(ab.deposit(1), "22.75");
    assert_eq!(
        ab.site
            .log()
            .matches("detail=\"repeat: first answer returned, nothing credited\"")
            .count(),
        3
    );
}

#[test]
fn concurrent_identical_pays_credit_once() {
    let ab = Abills::new("");
    let query = pay_query("4242", "1", "7.77");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| ab.get(&query))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let seen: Vec<_> = answers.iter().map(|a| (a.result(), a.prv_txn())).collect();
    assert!(seen.iter().all(|(r, p)| *r == 0 && p.is_some()), "{seen:?}");
    assert!(
        seen.iter().all(|(_, p)| *p == seen[0].1),
        "one prv_txn: {seen:?}"
    );
    assert_eq!(ab.deposit(1), "20.27");
    ab.payment("OSM:4242");
    let log = ab.log_row("OSM:4242");
    assert_eq!(seen[0].1, Some(log.id.to_string()));
    assert_eq!(
        (ab.payments().len(), ab.paysys_log().len(), ab.txns().len()),
        (2, 2, 1)
    );
    assert_eq!(ab.site.log_lines().len(), 20, "one line per request");
}

#[test]
fn a_repeat_with_another_sum_is_refused_and_credits_nothing() {
    let ab = Abills::new("");
    let prv_txn = ok(&ab.get(&pay_query("1", "1", "10.25")));
    let after_first = ab.snapshot();
    for query in [pay_query("1", "1", "10.26"), pay_query("1", "7", "10.25")] {
        let a = ab.get(&query);
        refused(&a, 7, "nod11");
        assert_eq!(a.prv_txn(), Some(prv_txn.clone()));
    }
    assert_eq!(ab.snapshot(), after_first);
    assert_eq!(
        (ab.deposit(1), ab.deposit(8)),
        ("22.75".into(), "0.00".into())
    );
}

// ----- switch-over from ABillS's own script ----------------------------------------------------

#[test]
fn a_payment_abills_script_made_is_answered_as_a_repeat() {
    // The fixture's OSM:777: 100.00 to test1, paysys_log.id 1, paid before the switch-over.
    let ab = Abills::new("account = \"login\"");
    let query = pay_query("777", "test1", "100.00");
    for _ in 0..2 {
        let a = ab.get(&query);
        assert_eq!(ok(&a), "1", "{}", a.body);
        assert_eq!(a.element("sum").as_deref(), Some("100.00"));
    }
    assert_eq!(ab.deposit(1), "12.50", "not credited again");
    assert_eq!(ab.payments().len(), 1, "no new payments row");
    let logs = ab.paysys_log();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!((logs[0].status, logs[0].uid), (2, 1));
    let t = ab.txn("osmp", "777");
    assert_eq!((t.prv_txn, t.subscriber_id), (1, 1));
}

#[test]
fn a_payment_abills_script_made_keeps_its_answer_outside_the_window() {
    // Retried long after the txn_date of ABillS's payment: the first answer, not nod12
    // (terminals retry lost answers, and the window judges only payments not made yet).
    let ab = Abills::new("account = \"login\"");
    let before = ab.snapshot();
    let late = "command=pay&txn_id=777&account=test1&sum=100.00&txn_date=20240501100000";
    let a = ab.get(late);
    assert_eq!(ok(&a), "1", "{}", a.body);
    assert_eq!(ab.snapshot(), before, "nothing written");
    refused(
        &ab.get(&late.replace("sum=100.00", "sum=99.00")),
        7,
        "nod11",
    );
    // Its status is known before any retry reached paysys.
    let status = ab.get("command=status&txn_id=777");
    assert_eq!(ok(&status), "1", "{}", status.body);
    assert_eq!(status.element("sum").as_deref(), Some("100.00"));
}

#[test]
fn a_payment_abills_script_made_is_refused_with_another_sum() {
    let ab = Abills::new("account = \"login\"");
    let before = ab.snapshot();
    let a = ab.get(&pay_query("777", "test1", "100.01"));
    refused(&a, 7, "nod11");
    assert_eq!(a.prv_txn().as_deref(), Some("1"));
    assert_eq!(ab.snapshot(), before);
    // The right sum still gets the first answer.
    assert_eq!(ok(&ab.get(&pay_query("777", "test1", "100.00"))), "1");
    assert_eq!(ab.deposit(1), "12.50");
}

#[test]
fn a_payment_abills_script_made_can_be_cancelled_after_its_retry() {
    let ab = Abills::new("account = \"login\"");
    assert_eq!(ok(&ab.get(&pay_query("777", "test1", "100.00"))), "1");
    let a = ab.get("command=cancel&prv_txn=1");
    assert_eq!(ok(&a), "1");
    assert_eq!(
        ab.deposit(1),
        "-87.50",
        "deposit back to before ABillS's payment"
    );
    assert!(ab.payments().is_empty(), "its payments row is deleted");
    assert_eq!(ab.log_row("OSM:777").status, 3);
    assert!(ab.txn("osmp", "777").cancelled);
    refused(&ab.get(&pay_query("777", "test1", "100.00")), 7, "nod22");
    assert_eq!(ab.deposit(1), "-87.50");
}

#[test]
fn a_payment_abills_cancelled_is_not_paid_again() {
    let ab = Abills::new("account = \"login\"");
    // ABillS's own cancel: the payments row deleted, the deposit restored, the log row 3.
    let mut conn = ab.db.conn();
    conn.query_drop("DELETE FROM payments WHERE ext_id = 'OSM:777'")
        .unwrap();
    conn.query_drop("UPDATE bills SET deposit = -87.5 WHERE id = 1")
        .unwrap();
    conn.query_drop("UPDATE paysys_log SET status = 3 WHERE id = 1")
        .unwrap();
    let before = ab.snapshot();
    let a = ab.get(&pay_query("777", "test1", "100.00"));
    refused(&a, 7, "nod22");
    assert_eq!(a.prv_txn().as_deref(), Some("1"));
    assert_eq!(ab.snapshot(), before, "nothing credited");
}

// ----- domains ---------------------------------------------------------------------------------

#[test]
fn path_info_names_the_domain() {
    let ab = Abills::new("account = \"login\"");
    let a = ab.get_at("/2", "command=check&account=test1");
    ok(&a);
    assert_eq!(a.comment(), "Balance: 40.00 Пе*** П*** П*******", "uid 10");
    assert_eq!(ab.get("command=check&account=test1").comment(), UID1_MASKED);
    assert_eq!(
        ab.get_at("/", "command=check&account=test1").comment(),
        UID1_MASKED
    );
    // Users of domain 0 are not in domain 2.
    refused(&ab.get_at("/2", "command=check&account=a1b"), 5, "nod5");

    let prv_txn = ok(&ab.get_at("/2", &pay_query("1", "test1", "10.25")));
    assert_eq!(
        (ab.deposit(10), ab.deposit(1)),
        ("50.25".into(), "12.50".into())
    );
    let log = ab.log_row("OSM:1");
    assert_eq!(
        (log.id.to_string(), log.domain_id, log.uid),
        (prv_txn, 2, 10)
    );
    let p = ab.payment("OSM:1");
    assert_eq!((p.uid, p.bill_id), (10, 10));
    let t = ab.txn("osmp", "1");
    assert_eq!((t.domain_id, t.subscriber_id), (2, 10));
    let line = ab.site.log_lines().pop().unwrap();
    assert!(line.contains(" system=osmp domain=2 cmd=pay "), "{line}");
}

#[test]
fn a_path_info_that_is_no_domain_is_refused_cleanly() {
    let ab = Abills::new("");
    let before = ab.snapshot();
    for path in ["/abc", "/2/extra", "/-1", "/99999999999"] {
        refused(&ab.get_at(path, "command=check&account=1"), 300, "nod25");
        refused(
            &ab.get_at(path, &pay_query("1", "1", "10.00")),
            300,
            "nod25",
        );
    }
    assert_eq!(ab.snapshot(), before);
}

// ----- status ----------------------------------------------------------------------------------

#[test]
fn status_of_a_paid_txn_and_of_an_unknown_one() {
    let ab = Abills::new("");
    let prv_txn = ok(&ab.get(&pay_query("31", "1", "10.25")));
    let a = ab.get("command=status&txn_id=31");
    assert_eq!(ok(&a), prv_txn);
    assert_eq!(a.element("sum").as_deref(), Some("10.25"));
    let before = ab.snapshot();
    refused(&ab.get("command=status&txn_id=32"), 300, "nod17");
    refused(&ab.get("command=status&txn_id=abc"), 300, "nod6");
    assert_eq!(ab.snapshot(), before);
}

// ----- cancel ----------------------------------------------------------------------------------

#[test]
fn cancel_reverses_the_payment_as_abills_does() {
    let ab = Abills::new("");
    let query = pay_query("41", "1", "10.25");
    let prv_txn = ok(&ab.get(&query));
    let payment_id = ab.payment("OSM:41").id;
    assert_eq!(ab.deposit(1), "22.75");

    let a = ab.get(&format!("command=cancel&prv_txn={prv_txn}"));
    assert_eq!(ok(&a), prv_txn);
    assert_eq!(ab.deposit(1), "12.50", "deposit back to before");
    assert!(
        ab.payments()
            .iter()
            .all(|p| p.id != payment_id && p.ext_id != "OSM:41"),
        "the payments row is deleted"
    );
    assert_eq!(ab.payments().len(), 1, "the fixture's stays");
    let log = ab.log_row("OSM:41");
    assert_eq!((log.id.to_string(), log.status), (prv_txn.clone(), 3));
    let t = ab.txn("osmp", "41");
    assert!(t.cancelled, "{t:?}");
    assert_eq!(
        (t.prv_txn.to_string(), t.payment_ref),
        (prv_txn.clone(), payment_id)
    );

    let after_cancel = ab.snapshot();
    let a = ab.get(&format!("command=cancel&prv_txn={prv_txn}"));
    assert_eq!(ok(&a), prv_txn, "a second cancel gets the first answer");
    assert_eq!(ab.snapshot(), after_cancel);

    // Paid and cancelled: not paid again, and status says so.
    let a = ab.get(&query);
    refused(&a, 7, "nod22");
    assert_eq!(a.prv_txn(), Some(prv_txn.clone()));
    refused(&ab.get("command=status&txn_id=41"), 7, "nod22");
    assert_eq!(ab.snapshot(), after_cancel);
    assert_eq!(ab.deposit(1), "12.50");
}

#[test]
fn cancel_of_another_systems_payment_is_refused() {
    let ab = Abills::with_systems(&two_systems());
    let prv_txn = ok(&ab.get_from("10.0.0.7", &pay_query("51", "1", "10.25")));
    let before = ab.snapshot();
    refused(
        &ab.get_from("10.0.0.13", &format!("command=cancel&prv_txn={prv_txn}")),
        300,
        "nod23",
    );
    refused(
        &ab.get_from(
            "10.0.0.13",
            &format!("command=cancel&prv_txn={prv_txn}&txn_id=51"),
        ),
        300,
        "nod23",
    );
    assert_eq!(ab.snapshot(), before);
    assert_eq!(ab.deposit(1), "22.75");
    // Its own system may.
    ok(&ab.get_from("10.0.0.7", &format!("command=cancel&prv_txn={prv_txn}")));
    assert_eq!(ab.deposit(1), "12.50");
}

#[test]
fn cancel_of_an_unknown_prv_txn_is_refused() {
    let ab = Abills::new("");
    let prv_txn = ok(&ab.get(&pay_query("61", "1", "10.25")));
    let before = ab.snapshot();
    for query in [
        "command=cancel&prv_txn=999".to_string(),
        "command=cancel&prv_txn=0".to_string(),
        // The wrong txn_id for a real prv_txn.
        format!("command=cancel&prv_txn={prv_txn}&txn_id=62"),
    ] {
        refused(&ab.get(&query), 300, "nod23");
    }
    refused(&ab.get("command=cancel&prv_txn=abc"), 300, "nod16");
    refused(&ab.get("command=cancel"), 300, "nod16");
    assert_eq!(ab.snapshot(), before);
}

// ----- hostile values --------------------------------------------------------------------------

#[test]
fn hostile_accounts_get_clean_answers_and_touch_nothing() {
    let ab = Abills::new("account = [\"uid\", \"login\", \"contract_id\"]");
    let before = ab.snapshot();
    for account in [
        "%27%3B%20DROP%20TABLE%20users%3B%20--",
        "test1%27%20OR%20%271%27%3D%271",
        "1%20OR%201%3D1",
        "%22",
        "%5C",
        "%5C%27",
        "%F0%9F%98%80",
        "test1%F0%9F%98%80",
        "%D0%98%D0%B2%D0%B0%D0%BD",
        "%FF%FE",
        "%00",
        "test1%00",
    ] {
        for query in [
            format!("command=check&txn_id=1&account={account}"),
            pay_query("1", account, "10.00"),
        ] {
            let a = ab.get(&query);
            assert_eq!(a.status, 200, "{query}: {a:?}");
            assert!(
                [4, 5].contains(&a.result()),
                "{query}: a refusal of the account, not a database error: {}",
                a.body
            );
        }
    }
    assert_eq!(ab.snapshot(), before);
    assert!(!ab.site.log().contains("database"), "{}", ab.site.log());
}

#[test]
fn hostile_fields_get_clean_answers_and_credit_nothing() {
    let ab = Abills::new("");
    let before = ab.snapshot();
    let date = txn_date(-1);
    for (query, result) in [
        (
            format!("command=pay&txn_id=1%27&account=1&sum=1&txn_date={date}"),
            300,
        ),
        (
            format!("command=pay&txn_id=1&account=1&sum=1%27&txn_date={date}"),
            300,
        ),
        (
            format!("command=pay&txn_id=1&account=1&sum=1&txn_date={date}%27"),
            300,
        ),
        (
            format!("command=pay%27&txn_id=1&account=1&sum=1&txn_date={date}"),
            1,
        ),
        ("command=status&txn_id=%F0%9F%98%80".to_string(), 300),
        ("command=cancel&prv_txn=1%27%20OR%201%3D1".to_string(), 300),
    ] {
        let a = ab.get(&query);
        assert_eq!((a.status, a.result()), (200, result), "{query}: {}", a.body);
    }
    assert_eq!(ab.snapshot(), before);
    assert!(!ab.site.log().contains("database"), "{}", ab.site.log());
}

#[test]
fn hostile_extra_parameters_are_kept_in_paysys_log_info() {
    let ab = Abills::new("");
    let date = txn_date(-1);
    let query = format!(
        "command=pay&txn_id=71&account=1&sum=10.25&txn_date={date}\
         &note=%27%3B%20DROP%20TABLE%20payments%3B%20--&q=%22x%22%5C\
         &emoji=%F0%9F%98%80ok&%F0%9F%92%B0=key&name=%D0%98%D0%B2%D0%B0%D0%BD\
         &xml=%3C%2Fresponse%3E&bad=%FF&nl=a%0Ab"
    );
    let a = ab.get(&query);
    let prv_txn = ok(&a);
    assert_eq!(a.body.matches("<response>").count(), 1, "{}", a.body);
    assert_eq!(ab.deposit(1), "22.75");
    let log = ab.log_row("OSM:71");
    assert_eq!(log.id.to_string(), prv_txn);
    // 4-byte characters become '?' (the column is 3-byte utf8); the rest is kept as sent.
    // Keys are sorted as sent: the emoji key comes after every ASCII one.
    assert_eq!(
        log.info,
        info(&[
            ("account", "1"),
            ("bad", "\u{FFFD}"),
            ("command", "pay"),
            ("emoji", "?ok"),
            ("name", "Иван"),
            ("nl", "a\nb"),
            ("note", "'; DROP TABLE payments; --"),
            ("q", "\"x\"\\"),
            ("sum", "10.25"),
            ("txn_date", &date),
            ("txn_id", "71"),
            ("xml", "</response>"),
        ]) + "?, key\n"
    );
    assert_eq!(ab.payments().len(), 2);
    // The log line is one line whatever the request held.
    assert_eq!(ab.site.log_lines().len(), 1, "{}", ab.site.log());
}

#[test]
fn the_grants_in_sql_are_enough() {
    let db = TestDb::with_fixture(&common::abills::fixture());
    let user = format!("pa{}", &db.name[db.name.len() - 8..]);
    let grants = std::fs::read_to_string(common::repo().join("sql/grants-abills.sql"))
        .unwrap()
        .replace("`abills`", &format!("`{}`", db.name))
        .replace("'paysys'@'localhost'", &format!("'{user}'@'%'"))
        .replace("change-me", "s3cret");
    let mut admin = db.conn();
    common::run_script(&mut admin, &grants);
    let url = db
        .url
        .replacen("mysql://root@", &format!("mysql://{user}:s3cret@"), 1);
    let ab = Abills {
        site: common::Site::new(&url, ""),
        db,
    };
    ab.site.write_config(&common::abills::config_text(
        &url,
        &common::abills::system(
            "osmp",
            &["127.0.0.1"],
            "account = [\"uid\", \"login\", \"contract_id\"]",
        ),
    ));
    let check = ab.get("command=check&txn_id=1&account=C-0001&sum=0");
    let paid = ab.get(&pay_query("9001", "test1", "2.00"));
    let status = ab.get("command=status&txn_id=9001");
    let cancel = ab.get(&format!(
        "command=cancel&prv_txn={}",
        paid.prv_txn().unwrap_or_default()
    ));
    let legacy = ab.get(&pay_query("777", "test1", "100.00"));
    let refused = ab.get(&pay_query("9002", "nobody-here", "2.00"));
    admin.query_drop(format!("DROP USER '{user}'@'%'")).unwrap();
    let log = ab.site.log();
    assert_ne!(refused.result(), 0, "{log}");
    assert!(!log.contains("notes="), "{log}");
    assert_eq!(
        ab.db.count("SELECT COUNT(*) FROM paysys_refusal"),
        1,
        "{log}"
    );
    assert_eq!(check.result(), 0, "{log}");
    assert_eq!(paid.result(), 0, "{log}");
    assert_eq!(status.result(), 0, "{log}");
    assert_eq!(cancel.result(), 0, "{log}");
    assert_eq!(legacy.result(), 0, "{log}");
    assert_eq!(ab.deposit(1), "12.50", "paid and cancelled");
}

#[test]
fn a_config_that_cannot_be_read_is_a_temporary_failure_in_plain_http() {
    // Without a config no system, so no protocol, is known: HTTP 503 says "later" to every
    // client, and the log says why.
    let ab = Abills::new("");
    std::fs::write(ab.site.config_path(), "[database\n").unwrap();
    let a = ab.get(&pay_query("1", "1", "1.00"));
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.content_type.starts_with("text/plain"), "{a:?}");
    let line = ab.site.log_lines().pop().unwrap_or_default();
    assert!(
        line.contains("line 1") && line.contains("result=unavailable"),
        "{line}"
    );
    std::fs::remove_file(ab.site.config_path()).unwrap();
    let a = ab.get(&pay_query("1", "1", "1.00"));
    assert_eq!(a.status, 503, "{a:?}");
    assert!(
        ab.site.log().contains("cannot be read"),
        "{}",
        ab.site.log()
    );
}

/// `paysys txn` with the site's config: exit code and everything printed.
fn paysys_txn(ab: &Abills, args: &[&str]) -> (i32, String) {
    let config = ab.site.config_path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("txn")
        .args(args)
        .args(["--config", config.to_str().unwrap()])
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

#[test]
fn paysys_txn_shows_our_row_abills_rows_and_the_log() {
    let ab = Abills::new("account = \"login\"");
    let paid = ab.get(&pay_query("5150", "test1", "10.25"));
    let prv_txn = ok(&paid);
    let (code, out) = paysys_txn(&ab, &["5150", "--system", "osmp"]);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "committed: txn_id 5150 of system osmp\n",
        "  paysys_txn\n",
        "    prv_txn  ",
        &format!(" {prv_txn}\n"),
        "  payments\n",
        " OSM:5150\n",
        "  paysys_log\n",
        "    transaction_id  OSM:5150\n",
        "cmd=pay txn=5150 account=test1",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    // The account's payments, and a cancel seen in all three places.
    ok(&ab.get(&format!("command=cancel&prv_txn={prv_txn}")));
    let (code, out) = paysys_txn(&ab, &["--account", "test1", "--from", "2020-01-01"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("of system osmp, cancelled since"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("    status ") && l.ends_with(" 3")),
        "{out}"
    );
    assert!(
        !out.contains("  payments\n"),
        "the payments row is gone: {out}"
    );
    // Nothing to an account: exit 1; a bad date: exit 2.
    let (code, out) = paysys_txn(&ab, &["--account", "nobody"]);
    assert_eq!(code, 1, "{out}");
    let (code, _) = paysys_txn(&ab, &["--account", "test1", "--from", "yesterday"]);
    assert_eq!(code, 2);
}

#[test]
fn a_payment_abills_script_made_keeps_its_answer_after_its_bill_was_deleted() {
    // The fixture's OSM:777 as a payments row alone (its log row gone, so ours takes the
    // key), and test1's bill deleted since: the pay finds its subscriber, writes its rows,
    // and the bill's UPDATE finds nothing. The payment recorded before is still answered
    // before that refusal (as ABillS's script answers a payment without a log row: 0, with
    // the log row written now), not 90; nothing credited, no payments row added.
    let ab = Abills::new("account = \"login\"");
    let mut conn = ab.db.conn();
    conn.query_drop("DELETE FROM paysys_log WHERE id = 1")
        .unwrap();
    conn.query_drop("DELETE FROM bills WHERE id = 1").unwrap();
    let a = ab.get(&pay_query("777", "test1", "100.00"));
    let prv_txn = ok(&a);
    assert_eq!(ab.payments().len(), 1, "no new payments row");
    let logs = ab.paysys_log();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(prv_txn, logs[0].id.to_string());
    assert_eq!(ok(&ab.get(&pay_query("777", "test1", "100.00"))), prv_txn);
}

#[test]
fn a_payment_abills_script_made_keeps_its_answer_after_the_subscriber_was_disabled() {
    // The first answer comes before every other rule: a subscriber disabled (or barred from
    // payment systems, or deleted) since ABillS's script paid still gets it, in the window
    // or out of it; nothing is credited.
    let ab = Abills::new("account = \"login\"");
    ab.db
        .conn()
        .query_drop("UPDATE users SET disable = 1, gid = 2 WHERE uid = 1")
        .unwrap();
    let before = ab.snapshot();
    let late = "command=pay&txn_id=777&account=test1&sum=100.00&txn_date=20240501100000";
    assert_eq!(ok(&ab.get(late)), "1");
    assert_eq!(ab.snapshot(), before, "out of the window: nothing written");
    assert_eq!(ok(&ab.get(&pay_query("777", "test1", "100.00"))), "1");
    assert_eq!(ab.deposit(1), "12.50", "not credited again");
    refused(&ab.get(&pay_query("777", "test1", "99.00")), 7, "nod11");
    // Deleted since: the account names nobody, the txn id and the sum still match.
    ab.db
        .conn()
        .query_drop("UPDATE users SET deleted = 1 WHERE uid = 1")
        .unwrap();
    assert_eq!(ok(&ab.get(late)), "1");
}
