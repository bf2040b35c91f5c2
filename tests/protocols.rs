//! Every protocol paysys_check.cgi speaks, side by side on one ABillS database (one system
//! per protocol, told apart by the caller's address): hostile bodies get a clean protocol
//! error and move no money, and twenty copies of one pay at once credit once.

mod common;

use common::abills::Abills;
use common::Answer;
use paysys::config::{ServiceSlot, SignHash, SignRule};

/// (system, protocol, caller) — the same layout as bench_5_protocols.
const SYSTEMS: &[(&str, &str, &str)] = &[
    ("osmp", "osmp", "127.0.0.1"),
    ("ibox", "ibox", "127.0.0.2"),
    ("city24", "city24", "127.0.0.3"),
    ("privat", "privat", "127.0.0.4"),
    ("24ns", "24nonstop", "127.0.0.5"),
    ("easypay", "easypay", "127.0.0.6"),
    ("kaspi", "kaspi", "127.0.0.7"),
    ("portmone", "portmone", "127.0.0.8"),
    ("click", "click", "127.0.0.9"),
    ("payme", "payme", "127.0.0.10"),
];

fn site() -> Abills {
    let cert = common::repo().join("tests/fixtures/easypay/easysoft.cer");
    let systems: String = SYSTEMS
        .iter()
        .map(|(name, protocol, caller)| {
            let extra = match *protocol {
                "24nonstop" => "secret = \"s3cret\"".to_string(),
                "easypay" => format!("certificate = \"{}\"", cert.display()),
                // ABillS's id of its Kaspi module is the admin's paysys_connect's.
                "kaspi" => "abills_id = 130".to_string(),
                "portmone" => "abills_id = 131".to_string(),
                "click" => {
                    "service_id = \"17449\"\nsecret_key = \"s3cret\"\nabills_id = 99".to_string()
                }
                "payme" => "key = \"s3cret\"\nabills_id = 98".to_string(),
                _ => String::new(),
            };
            format!(
                "\n[[system]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nallow = [\"{caller}\"]\naccount = \"login\"\n{extra}\n"
            )
        })
        .collect();
    Abills::with_systems(&systems)
}

fn post(a: &Abills, caller: &str, content_type: &str, body: &[u8]) -> Answer {
    let len = body.len().to_string();
    a.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", content_type),
            ("CONTENT_LENGTH", &len),
            ("REMOTE_ADDR", caller),
        ],
        body,
    )
}

#[test]
fn hostile_bodies_get_a_clean_error_and_move_no_money() {
    let a = site();
    let before = a.deposit(1);
    let txns = a.txns().len();
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \
                \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><Request><pay>&lol2;</pay></Request>";
    let huge = format!("<Request>{}</Request>", "<x>1</x>".repeat(20_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("text/xml", bomb.as_bytes().to_vec()),
        ("text/xml", huge.into_bytes()),
        ("text/xml", b"<Request><Payment><Amount>1".to_vec()),
        ("text/xml", b"\xff\xfe<\x00R\x00e\x00q\x00".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"command=pay&account=\xf2\xe5\xf1\xf2&sum=1".to_vec(),
        ),
        ("application/x-www-form-urlencoded", b"%%%&&&===".to_vec()),
    ];
    for (system, protocol, caller) in SYSTEMS {
        for (content_type, body) in &bodies {
            let r = post(&a, caller, content_type, body);
            // A clean answer: the protocol's XML or JSON (an error in it), or the body
            // refused whole.
            let clean = match *protocol {
                "click" => {
                    r.content_type.starts_with("application/json")
                        && serde_json::from_str::<serde_json::Value>(&r.body)
                            .is_ok_and(|v| v["error"].as_i64().is_some_and(|e| e < 0))
                }
                // Without the key: -32504, whatever the body.
                "payme" => {
                    r.content_type.starts_with("application/json")
                        && serde_json::from_str::<serde_json::Value>(&r.body)
                            .is_ok_and(|v| v["error"]["code"] == -32504)
                }
                _ => r.content_type.starts_with("text/xml") && r.body.contains("<?xml"),
            };
            assert!(
                (r.status == 200 && clean) || r.status == 413,
                "{system} ({protocol}) on {content_type}: {r:?}"
            );
            assert!(
                r.stderr.is_empty() || !r.stderr.contains("panicked"),
                "{system}: {r:?}"
            );
        }
    }
    assert_eq!(a.deposit(1), before);
    assert_eq!(a.txns().len(), txns);
    // One log line per request.
    assert_eq!(a.site.log_lines().len(), SYSTEMS.len() * bodies.len());
}

#[test]
fn twenty_concurrent_repeats_credit_once_in_every_form_protocol() {
    let a = site();
    let date = common::txn_date(0);
    let sign = |id: &str| {
        let rule = SignRule {
            secret: "s3cret".into(),
            hash: SignHash::Md5,
            amount: false,
            service: ServiceSlot::Sent,
        };
        paysys::protocol::nonstop24::signature(&rule, "4", "test1", Some("Internet"), id, None)
            .expect("a signable request")
    };
    let pays = [
        (
            "127.0.0.2",
            format!("command=pay&txn_id=901&account=test1&sum=1.00&txn_date={date}&pay_type=1"),
        ),
        (
            "127.0.0.3",
            format!(
                "QueryType=pay&TransactionId=902&Account=test1&Amount=1.00&TransactionDate={date}"
            ),
        ),
        (
            "127.0.0.5",
            format!(
                "ACT=4&PAY_ACCOUNT=test1&SERVICE_ID=Internet&PAY_ID=G-903&PAY_AMOUNT=1.00&SIGN={}",
                sign("G-903")
            ),
        ),
        (
            "127.0.0.7",
            format!("command=pay&txn_id=904&account=test1&sum=1.00&txn_date={date}"),
        ),
        (
            "127.0.0.8",
            serde_urlencoded::to_string([(
                "data",
                "<BILLS><BILL><BILL_ID>905</BILL_ID><PAYED_AMOUNT>1.00</PAYED_AMOUNT><PAYER>\
                 <CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER><STATUS>PAYED</STATUS></BILL>\
                 </BILLS>",
            )])
            .expect("a form"),
        ),
    ];
    let before = a.deposit(1);
    let txns = a.txns().len();
    for (caller, query) in &pays {
        let answers: Vec<Answer> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..20)
                .map(|_| s.spawn(|| a.get_from(caller, query)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let first = &answers[0].body;
        for r in &answers {
            assert_eq!(r.status, 200, "{caller}: {r:?}");
            // The same answer each time, but for the answer's own time stamp (24NonStop).
            let strip = |b: &str| b.split("<time_stamp>").next().unwrap_or(b).to_string();
            assert_eq!(strip(&r.body), strip(first), "{caller}");
        }
    }
    assert_eq!(a.txns().len(), txns + pays.len(), "each pay credited once");
    assert_ne!(a.deposit(1), before);
    // The iBox txn_id again with another sum: refused (7), nothing credited.
    let paid = a.deposit(1);
    let r = a.get_from(
        "127.0.0.2",
        &format!("command=pay&txn_id=901&account=test1&sum=2.00&txn_date={date}"),
    );
    assert_eq!(r.element("result").as_deref(), Some("7"), "{r:?}");
    assert_eq!(a.deposit(1), paid);
}

#[test]
fn an_account_typed_with_blanks_around_it_is_the_subscriber_in_every_protocol() {
    let a = site();
    // ABillS's script paid "test1 " to test1; so does every protocol here.
    let forms = [
        ("127.0.0.1", "command=check&account=%20test1%20".to_string()),
        (
            "127.0.0.2",
            "command=check&account=test1%20%20&sum=1.00".to_string(),
        ),
        (
            "127.0.0.3",
            "QueryType=check&TransactionId=500&Account=%20test1".to_string(),
        ),
        ("127.0.0.5", {
            let rule = SignRule {
                secret: "s3cret".into(),
                hash: SignHash::Md5,
                amount: false,
                service: ServiceSlot::Sent,
            };
            let sign = paysys::protocol::nonstop24::signature(
                &rule,
                "1",
                "test1 ",
                Some("Internet"),
                "G-1",
                None,
            )
            .expect("a signable request");
            format!("ACT=1&PAY_ACCOUNT=test1%20&SERVICE_ID=Internet&PAY_ID=G-1&SIGN={sign}")
        }),
    ];
    for (caller, query) in &forms {
        let r = a.get_from(caller, query);
        assert!(
            r.body.contains("12.50"),
            "{caller} {query}: the subscriber's balance: {r:?}"
        );
    }
    let search = "<Transfer xmlns=\"http://debt.privatbank.ua/Transfer\" interface=\"Debt\" \
         action=\"Search\"><Data xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:type=\"Payer\"><Unit name=\"bill_identifier\" value=\" test1 \"/></Data></Transfer>";
    let r = post(&a, "127.0.0.4", "text/xml", search.as_bytes());
    assert!(r.body.contains("<Balance>12.50</Balance>"), "privat: {r:?}");
    let check = {
        use paysys::protocol::easypay::{load_private_key, sign};
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Request><DateTime>{}</DateTime>\
             <Sign></Sign><Check><ServiceId>1220</ServiceId><Account> test1 </Account></Check>\
             </Request>",
            chrono::Local::now().format("%Y-%m-%dT%H:%M:%S")
        );
        let key =
            load_private_key(&common::repo().join("tests/fixtures/easypay/easysoft.key")).unwrap();
        let hex = sign(&key, SignHash::Sha1, doc.as_bytes());
        doc.replace("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"))
    };
    let r = post(&a, "127.0.0.6", "text/xml", check.as_bytes());
    assert_eq!(
        r.element("StatusCode").as_deref(),
        Some("0"),
        "easypay: {r:?}"
    );
    assert_eq!(
        r.element("Balance").as_deref(),
        Some("12.50"),
        "easypay: {r:?}"
    );

    // A pay: credited to test1, our row has the account without the blanks, the log line
    // the request as it came.
    let before = a.deposit(1);
    let r = a.get_from(
        "127.0.0.1",
        &format!(
            "command=pay&txn_id=931&account=test1%20&sum=2.00&txn_date={}",
            common::txn_date(-1)
        ),
    );
    assert_eq!(r.element("result").as_deref(), Some("0"), "{r:?}");
    assert_ne!(a.deposit(1), before);
    assert_eq!(a.txn("osmp", "931").account, "test1");
    let line = a.site.log_lines().pop().unwrap_or_default();
    assert!(line.contains("account=\"test1 \""), "{line}");
}
