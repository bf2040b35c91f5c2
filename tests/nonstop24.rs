//! `protocol = "24nonstop"` through the real `paysys_check` executable, run as a web server
//! runs a CGI, against a real MariaDB: ABillS's tables (sql/abills.sql) and NoDeny's.
//! Requests are signed as a 24NonStop terminal signs them, with the system's secret.

mod common;

use common::abills::{self, Abills};
use common::{Answer, Site, TestDb};
use mysql::prelude::Queryable;
use paysys::config::{ServiceSlot, SignHash, SignRule};
use paysys::protocol::nonstop24::signature;

const SECRET: &str = "guessmeifyoucan";
const GUID: &str = "6F9619FF-8B86-D011-B42D-00C04FC964FF";

fn rule() -> SignRule {
    SignRule {
        secret: SECRET.into(),
        hash: SignHash::Md5,
        amount: false,
        service: ServiceSlot::Sent,
    }
}

/// A signed query: ACT, account, PAY_ID and amount as given, SERVICE_ID=Internet.
fn query(act: &str, account: &str, pay_id: &str, amount: &str) -> String {
    let sign = signature(&rule(), act, account, Some("Internet"), pay_id, None).unwrap();
    let mut q = format!("ACT={act}&SERVICE_ID=Internet&PAY_ID={pay_id}&SIGN={sign}");
    if !account.is_empty() {
        q.push_str(&format!("&PAY_ACCOUNT={account}"));
    }
    if !amount.is_empty() {
        q.push_str(&format!(
            "&PAY_AMOUNT={amount}&RECEIPT_NUM=1846427660&TRADE_POINT=7523"
        ));
    }
    q
}

/// The text of `<name>` in an answer.
fn tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + end].to_string())
}

fn status(a: &Answer) -> i32 {
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.content_type.starts_with("text/xml"), "{a:?}");
    tag(&a.body, "status_code")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status_code: {a:?}"))
}

fn system(extra: &str) -> String {
    abills::system(
        "24ns",
        abills::DEFAULT_ALLOW,
        &format!("protocol = \"24nonstop\"\naccount = \"login\"\nsecret = \"{SECRET}\"\n{extra}"),
    )
    .replace("protocol = \"osmp\"\n", "")
}

#[test]
fn abills_check_pay_repeat_status_and_refusals() {
    let a = Abills::with_systems(&system(""));
    let before = a.deposit(1);

    let r = a.get(&query("1", "test1", GUID, ""));
    assert_eq!(status(&r), 21, "{r:?}");
    assert_eq!(tag(&r.body, "balance").as_deref(), Some(before.as_str()));
    assert_eq!(tag(&r.body, "name").as_deref(), Some("Ив*** И*** И*******"));
    assert_eq!(tag(&r.body, "account").as_deref(), Some("test1"));
    assert_eq!(tag(&r.body, "service_id").as_deref(), Some("Internet"));

    let r = a.get(&query("4", "test1", GUID, "10.00"));
    assert_eq!(status(&r), 22, "{r:?}");
    assert_eq!(tag(&r.body, "pay_id").as_deref(), Some(GUID));
    assert_eq!(tag(&r.body, "amount").as_deref(), Some("10.00"));
    let after = a.deposit(1);
    assert_ne!(after, before);

    // ABillS's rows: system 52, as its 24_non_stop module; the 36-character PAY_ID does
    // not fit transaction_id (24), so it is written hashed, the same way every time.
    let logs: Vec<_> = a
        .paysys_log()
        .into_iter()
        .filter(|l| l.system_id == 52)
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let tid = &logs[0].transaction_id;
    assert_eq!(tid.len(), 24, "{tid}");
    assert!(tid.starts_with("24N:"), "{tid}");
    assert_eq!(
        tid,
        &paysys::billing::abills::transaction_id("24N", GUID),
        "{logs:?}"
    );
    let (txn_id,): (String,) =
        a.db.conn()
            .query_first("SELECT txn_id FROM paysys_txn")
            .unwrap()
            .unwrap();
    assert_eq!(txn_id, GUID, "our own row keeps the whole id");

    // The terminal's repeat: 22 again, nothing credited.
    let r = a.get(&query("4", "test1", GUID, "10.00"));
    assert_eq!(status(&r), 22, "{r:?}");
    assert_eq!(a.deposit(1), after);
    // The same PAY_ID with another sum: -100, nothing credited.
    let r = a.get(&query("4", "test1", GUID, "11.00"));
    assert_eq!(status(&r), -100, "{r:?}");
    assert_eq!(a.deposit(1), after);

    let r = a.get(&query("7", "", GUID, ""));
    assert_eq!(status(&r), 11, "{r:?}");
    assert_eq!(tag(&r.body, "status").as_deref(), Some("111"));
    let r = a.get(&query("7", "", "no-such-payment", ""));
    assert_eq!(status(&r), -10, "{r:?}");

    let r = a.get(&query("1", "nobody", "1", ""));
    assert_eq!(status(&r), -40, "{r:?}");
    let r = a.get(&query("4", "test1", "2", "0.00"));
    assert_eq!(status(&r), -42, "{r:?}");
    let r = a.get(&query("9", "test1", "3", ""));
    assert_eq!(status(&r), -101, "{r:?}");

    // Signatures: wrong, missing, or right for another account. Nothing is looked up or
    // credited, and the log says why.
    let good = query("4", "test1", "77", "5.00");
    for bad in [
        good.replace("&SIGN=", "&SIGN=00"),
        good.split("&SIGN=").next().unwrap().to_string() + "&PAY_ACCOUNT=test1&PAY_AMOUNT=5.00",
        good.replace("PAY_ACCOUNT=test1", "PAY_ACCOUNT=test4"),
    ] {
        let r = a.get(&bad);
        assert_eq!(status(&r), -101, "{bad}: {r:?}");
    }
    assert_eq!(a.deposit(1), after);
    let log = a.site.log();
    assert!(log.contains("bad sign"), "{log}");
    assert!(
        !log.contains(SECRET),
        "the secret never reaches the log: {log}"
    );
    // Refused pays are on record for paysys report.
    let refused: u64 =
        a.db.conn()
            .query_first("SELECT COUNT(*) FROM paysys_refusal WHERE system_name = '24ns'")
            .unwrap()
            .unwrap();
    assert!(refused >= 4, "{refused}");
}

#[test]
fn two_click_signs_the_amount_with_sha1() {
    let a = Abills::with_systems(&system("sign = \"sha1\"\nsign_amount = true"));
    let sha1 = SignRule {
        secret: SECRET.into(),
        hash: SignHash::Sha1,
        amount: true,
        service: ServiceSlot::Sent,
    };
    let sign = signature(&sha1, "4", "test1", Some("Internet"), "900", Some("2.50")).unwrap();
    let q = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=900&PAY_AMOUNT=2.50&SIGN={sign}"
    );
    assert_eq!(status(&a.get(&q)), 22);
    // The same signature over another amount does not verify.
    let r = a.get(&q.replace("PAY_AMOUNT=2.50", "PAY_AMOUNT=25.00"));
    assert_eq!(status(&r), -101, "{r:?}");
    // An MD5 signature is not a SHA-1 one.
    assert_eq!(status(&a.get(&query("1", "test1", "901", ""))), -101);
}

/// What a terminal computes: the upper-case hex of the digest of the signed text, written
/// out in full here so that the test does not lean on the code it tests.
fn terminal_sign(hash: SignHash, text: &str) -> String {
    use sha1::Digest;
    let bytes: Vec<u8> = match hash {
        SignHash::Sha1 => sha1::Sha1::digest(text.as_bytes()).to_vec(),
        _ => md5::Md5::digest(text.as_bytes()).to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A 24NonStop SIGN is a digest of a string. One genuine SIGN, with text moved between the
/// fields it signs, must not pass for another request: not for a new PAY_ID (credited
/// again, with any sum, the amount being unsigned), not for another subscriber. Each is
/// refused -101 before anything is looked up; nothing is credited.
#[test]
fn a_sign_does_not_pass_for_text_moved_between_fields() {
    let a = Abills::with_systems(&system(""));
    // A genuine pay, as a 2.20 terminal signs it: "4_test1_Internet_G1_<secret>".
    let sign = terminal_sign(SignHash::Md5, &format!("4_test1_Internet_G1_{SECRET}"));
    let genuine = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=G1&PAY_AMOUNT=10.00&SIGN={sign}"
    );
    assert_eq!(status(&a.get(&genuine)), 22);
    let after = a.deposit(1);
    let payments = a.payments().len();
    // What a terminal signs for a subscriber whose login is test1_x.
    let login = terminal_sign(SignHash::Md5, &format!("4_test1_x_Internet_G2_{SECRET}"));
    let forged = [
        // SERVICE_ID moved into PAY_ID: a new payment id, and a sum of one's choosing.
        format!("ACT=4&PAY_ACCOUNT=test1&PAY_ID=Internet_G1&PAY_AMOUNT=5000.00&SIGN={sign}"),
        format!("ACT=4&PAY_ACCOUNT=test1&PAY_ID=Internet%5FG1&PAY_AMOUNT=5000.00&SIGN={sign}"),
        // SERVICE_ID moved into PAY_ACCOUNT.
        format!("ACT=4&PAY_ACCOUNT=test1_Internet&PAY_ID=G1&PAY_AMOUNT=5000.00&SIGN={sign}"),
        // test1_x's text as test1's: "x" moved into the service slot or into PAY_ID.
        format!(
            "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=x&PAY_ID=Internet_G2&PAY_AMOUNT=5000.00&SIGN={login}"
        ),
        format!(
            "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=x_Internet&PAY_ID=G2&PAY_AMOUNT=5000.00&SIGN={login}"
        ),
        format!("ACT=4&PAY_ACCOUNT=test1&PAY_ID=x_Internet_G2&PAY_AMOUNT=5000.00&SIGN={login}"),
    ];
    for q in &forged {
        let r = a.get(q);
        assert_eq!(status(&r), -101, "{q}: {r:?}");
    }
    // The same move in a POSTed <pay-request>.
    let xml = format!(
        "<pay-request><act>4</act><pay_account>test1</pay_account><pay_id>Internet_G1</pay_id>\
         <pay_amount>5000.00</pay_amount><sign>{sign}</sign></pay-request>"
    );
    let len = xml.len().to_string();
    let r = a.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "text/xml"),
            ("CONTENT_LENGTH", &len),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        xml.as_bytes(),
    );
    assert_eq!(status(&r), -101, "{r:?}");
    assert_eq!(a.deposit(1), after, "nothing credited");
    assert_eq!(a.payments().len(), payments, "no payments row");
    let log = a.site.log();
    assert!(log.contains("holds '_'"), "the log says why: {log}");
}

/// 2click signs the amount too: the moved text cannot change the sum, but a new PAY_ID
/// would credit the same sum again.
#[test]
fn a_two_click_sign_does_not_pass_for_text_moved_between_fields() {
    let a = Abills::with_systems(&system("sign = \"sha1\"\nsign_amount = true"));
    let before = a.deposit(1);
    let sign = terminal_sign(
        SignHash::Sha1,
        &format!("4_test1_Internet_G1_10.00_{SECRET}"),
    );
    let genuine = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=G1&PAY_AMOUNT=10.00&SIGN={sign}"
    );
    assert_eq!(status(&a.get(&genuine)), 22);
    // The signed amount is the credited one.
    let paid = a.payment("24N:G1");
    assert_eq!(paid.sum, "10.00", "{paid:?}");
    let after = a.deposit(1);
    assert_ne!(after, before);
    for q in [
        format!("ACT=4&PAY_ACCOUNT=test1&PAY_ID=Internet_G1&PAY_AMOUNT=10.00&SIGN={sign}"),
        format!("ACT=4&PAY_ACCOUNT=test1_Internet&PAY_ID=G1&PAY_AMOUNT=10.00&SIGN={sign}"),
    ] {
        let r = a.get(&q);
        assert_eq!(status(&r), -101, "{q}: {r:?}");
    }
    assert_eq!(a.deposit(1), after, "nothing credited again");
}

/// The SERVICE_ID slot is the config's, never the request's: `service_id` fills it whether
/// or not a request sends one, and refuses another; `sign_service_id = false` (2.10) has
/// none and refuses a request that sends one; without either, a request must send it.
#[test]
fn the_service_slot_is_the_configs() {
    let md5 = |text: &str| terminal_sign(SignHash::Md5, &format!("{text}_{SECRET}"));
    let a = Abills::with_systems(&system("service_id = \"Internet\""));
    let before = a.deposit(1);
    let sent = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=S1&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_Internet_S1")
    );
    assert_eq!(status(&a.get(&sent)), 22);
    let unsent = format!(
        "ACT=4&PAY_ACCOUNT=test1&PAY_ID=S2&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_Internet_S2")
    );
    assert_eq!(status(&a.get(&unsent)), 22);
    // Signed right, with the same secret, for a service that is not this system's.
    let other = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=TV&PAY_ID=S3&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_TV_S3")
    );
    assert_eq!(status(&a.get(&other)), -101);
    // And 2.10's text, no slot, is not this system's either.
    let old = format!(
        "ACT=4&PAY_ACCOUNT=test1&PAY_ID=S4&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_S4")
    );
    assert_eq!(status(&a.get(&old)), -101);
    let paid = a.deposit(1);
    assert_ne!(paid, before);

    // 2.10: no slot. The issue's example: test1_x's SIGN for PAY_ID=G as test1's x_G.
    a.set_systems(&system("sign_service_id = false"));
    assert_eq!(status(&a.get(&old)), 22);
    let with_service = format!(
        "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=S5&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_S5")
    );
    assert_eq!(status(&a.get(&with_service)), -101);
    let moved = format!(
        "ACT=4&PAY_ACCOUNT=test1&PAY_ID=x_G&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_x_G")
    );
    assert_eq!(status(&a.get(&moved)), -101);
    let paid_210 = a.deposit(1);
    assert_ne!(paid_210, paid);

    // The default: the slot holds what the request sends, so it must send one.
    a.set_systems(&system(""));
    let unsent = format!(
        "ACT=4&PAY_ACCOUNT=test1&PAY_ID=S6&PAY_AMOUNT=1.00&SIGN={}",
        md5("4_test1_S6")
    );
    let r = a.get(&unsent);
    assert_eq!(status(&r), -101, "{r:?}");
    assert_eq!(a.deposit(1), paid_210);
    assert!(
        a.site.log().contains("SERVICE_ID is missing"),
        "{}",
        a.site.log()
    );
}

/// NoDeny, through paysys_check.cgi: twenty copies of one pay at once credit once, and
/// every copy is answered 22.
#[test]
fn nodeny_twenty_concurrent_repeats_credit_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    site.write_config(&format!(
        r#"[database]
url = "{}"
billing = "nodeny"
lock_timeout = 10

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "24ns"
protocol = "24nonstop"
allow = ["127.0.0.1"]
account = "payment_code"
secret = "{SECRET}"
"#,
        db.url
    ));
    let config = site.config_path().to_string_lossy().into_owned();
    let q = query("4", "59071", GUID, "10.25");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    abills::run_paysys_check(
                        &[
                            ("GATEWAY_INTERFACE", "CGI/1.1"),
                            ("PAYSYS_CONFIG", &config),
                            ("REQUEST_METHOD", "GET"),
                            ("QUERY_STRING", &q),
                            ("REMOTE_ADDR", "127.0.0.1"),
                        ],
                        b"",
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for a in &answers {
        assert_eq!(status(a), 22, "{a:?}");
    }
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.pays(), db.txns()), (1, 1));
    assert_eq!(site.log_lines().len(), 20);
}

/// Hostile bodies get a clean -101 and move no money.
#[test]
fn malformed_bodies_are_refused_cleanly() {
    let a = Abills::with_systems(&system("sign = \"none\""));
    let before = a.deposit(1);
    let post = |content_type: &str, body: &[u8]| -> Answer {
        let len = body.len().to_string();
        a.cgi(
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_TYPE", content_type),
                ("CONTENT_LENGTH", &len),
                ("REMOTE_ADDR", "127.0.0.1"),
            ],
            body,
        )
    };
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \
                \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\
                <pay-request><act>4</act><pay_account>&lol2;</pay_account></pay-request>";
    let huge = format!(
        "<pay-request><act>4</act><pay_account>test1</pay_account><pay_id>5</pay_id>\
         <pay_amount>1.00</pay_amount>{}</pay-request>",
        "<x>1</x>".repeat(100_000)
    );
    let cp1251 = b"ACT=4&PAY_ACCOUNT=\xf2\xe5\xf1\xf2&PAY_ID=6&PAY_AMOUNT=1.00".to_vec();
    for (ct, body) in [
        ("text/xml", bomb.as_bytes().to_vec()),
        ("text/xml", huge.into_bytes()),
        ("text/xml", b"<pay-request><act>4</act>".to_vec()),
        ("text/xml", b"\xff\xfe<\x00p\x00".to_vec()),
        ("application/x-www-form-urlencoded", cp1251),
    ] {
        let r = post(ct, &body);
        assert!(r.status == 200 || r.status == 413, "{r:?}");
        if r.status == 200 {
            let code = status(&r);
            assert!(code == -101 || code == -40, "{code}: {r:?}");
        }
    }
    assert_eq!(a.deposit(1), before);
    // An XML pay that is well formed goes through (sign = "none" here).
    let ok = "<pay-request><act>4</act><pay_account>test1</pay_account><pay_id>8</pay_id>\
              <pay_amount>1.00</pay_amount></pay-request>";
    assert_eq!(status(&post("text/xml", ok.as_bytes())), 22);
}
