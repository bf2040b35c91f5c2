//! Payme's Merchant API: `echo`, `parse`, `render`, `render_orders` on arbitrary requests.
//!
//! The input is a POSTed JSON body, sent with the test key's Authorization header, without
//! one, and with a wrong one. Without the right key nothing parses, whatever the body;
//! with it, a parsed request is one of the six methods with its values checked (a sum
//! above 0 that prints and parses back, an id of up to 64 token characters, a period in
//! order, an order named by Payme's id alone). Every answer — to the parse's outcome, and
//! to each success with an order in each state — is one JSON-RPC object: `"jsonrpc":
//! "2.0"`, the request's `id` or null, and exactly one of `result` and `error`, an error
//! with an integer code and its message in three languages.
#![no_main]

// The XML checker is for the XML protocols; Payme answers JSON.
#[allow(dead_code)]
mod shared;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Request, MAX_BODY};
use paysys::config::{ServiceSlot, SignHash, SignRule};
use paysys::domain::{AccountKey, AccountRule, Amount};
use paysys::ledger::OrderView;
use paysys::outcome::{Command, Fault, Outcome, Refusal};
use paysys::protocol::payme::Payme;
use paysys::protocol::{ParseContext, Protocol};
use shared::now;

/// base64("Paycom:s3cret").
const RIGHT: &str = "Basic UGF5Y29tOnMzY3JldA==";

fn post(body: &[u8], auth: Option<&str>) -> Request {
    let length = body.len().to_string();
    let auth = auth.map(|a| a.as_bytes().to_vec());
    let var = |k: &str| -> Option<OsString> {
        let v: Vec<u8> = match k {
            "REQUEST_METHOD" => b"POST".to_vec(),
            "CONTENT_LENGTH" => length.clone().into_bytes(),
            "CONTENT_TYPE" => b"application/json".to_vec(),
            "REMOTE_ADDR" => b"10.0.0.1".to_vec(),
            "HTTP_AUTHORIZATION" => auth.clone()?,
            _ => return None,
        };
        Some(OsString::from_vec(v))
    };
    Request::read(var, &mut &body[..])
}

fn check_json(body: &str) {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    assert_eq!(v["jsonrpc"], "2.0", "{body:?}");
    assert!(v.get("id").is_some(), "{body:?}");
    assert!(
        v.get("result").is_some() != v.get("error").is_some(),
        "{body:?}"
    );
    if let Some(e) = v.get("error") {
        assert!(e["code"].as_i64().is_some(), "{body:?}");
        for lang in ["ru", "uz", "en"] {
            assert!(e["message"][lang].as_str().is_some(), "{body:?}");
        }
    }
}

fn views() -> Vec<OrderView> {
    let base = OrderView {
        payment_id: 7,
        order_id: "x".into(),
        account: "\"<test1>\"".into(),
        account_key: "login",
        amount: Amount::from_kopecks(100),
        at: 1,
        created: 2,
        paid: 0,
        cancelled: 0,
        reversed: false,
        reason: String::new(),
    };
    vec![
        base.clone(),
        OrderView {
            paid: 3,
            ..base.clone()
        },
        OrderView {
            cancelled: 4,
            reason: "4".into(),
            ..base.clone()
        },
        OrderView {
            paid: 3,
            cancelled: 5,
            reversed: true,
            reason: "\u{0}".into(),
            ..base
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let rule = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: false,
        service: ServiceSlot::Absent,
    };
    let accounts = [
        AccountRule::new(AccountKey::Login),
        AccountRule::new(AccountKey::PaymentCode),
    ];
    // Every parse's outcome, gathered first: the answers depend on the body's echo and the
    // outcome alone (not on the header or the account rule), so each distinct outcome is
    // rendered once per input — not once per header and rule, which made this target the
    // slowest by tenfold.
    let mut outcomes = vec![
        Outcome::Failed(Fault::DatabaseWrite("gone".into())),
        Outcome::Refused(Refusal::UnknownTxn),
    ];
    let mut add = |outcome: Outcome| {
        if !outcomes.contains(&outcome) {
            outcomes.push(outcome);
        }
    };
    let mut echoes = Vec::new();
    for auth in [Some(RIGHT), None, Some("Basic UGF5Y29tOnMzY3JldB==")] {
        let req = post(data, auth);
        echoes.push(Payme.echo(&req));
        for account in &accounts {
            let ctx = |sign| ParseContext {
                account,
                now: now(),
                test: false,
                sign,
                rsa: None,
                card: None,
                monobank_key: None,
            };
            let unkeyed = Payme.parse(&req, &ctx(None));
            assert!(
                matches!(unkeyed, Err(Refusal::BadSignature(_))),
                "{unkeyed:?}"
            );
            let parsed = Payme.parse(&req, &ctx(Some(&rule)));
            if auth != Some(RIGHT) {
                assert!(
                    matches!(parsed, Err(Refusal::BadSignature(_))),
                    "{parsed:?}"
                );
            }
            match &parsed {
                Err(r) => add(Outcome::Refused(r.clone())),
                Ok(Command::Check(c)) => {
                    assert!(c.sum.is_some_and(|s| s.kopecks() > 0), "{c:?}");
                }
                Ok(Command::Book(b)) => {
                    assert!(b.sum.kopecks() > 0 && b.at.is_some(), "{b:?}");
                    assert_eq!(Amount::parse(&b.sum.to_string()), Ok(b.sum));
                    assert!(b.order_id.as_str().len() <= 64);
                    add(Outcome::Booked {
                        payment_id: 7,
                        repeat: true,
                    });
                }
                Ok(Command::Confirm(r)) | Ok(Command::Unbook(r)) => {
                    assert!(r.payment_id.is_none() && r.order_id.is_some(), "{r:?}");
                    add(Outcome::Paid {
                        prv_txn: 1,
                        sum: Amount::from_kopecks(1),
                        repeat: false,
                    });
                    add(Outcome::Cancelled {
                        prv_txn: 1,
                        sum: Amount::from_kopecks(1),
                        repeat: true,
                    });
                }
                Ok(Command::Status(_)) => add(Outcome::Found {
                    prv_txn: 1,
                    sum: Amount::from_kopecks(1),
                    cancelled: false,
                }),
                Ok(Command::List(p)) => {
                    assert!(p.from <= p.to, "{p:?}");
                    add(Outcome::Listed(Vec::new()));
                }
                Ok(other) => panic!("Payme parsed into {other:?}"),
            }
        }
    }
    let echo = &echoes[0];
    for other in &echoes[1..] {
        assert_eq!(
            (&other.params, &other.txn_id, &other.account, &other.sum),
            (&echo.params, &echo.txn_id, &echo.account, &echo.sum),
            "the header changed the echo"
        );
    }
    let all = views();
    for outcome in &outcomes {
        check_json(&Payme.render(echo, outcome).response.body);
        check_json(&Payme.render_orders(echo, outcome, &[]).response.body);
        check_json(&Payme.render_orders(echo, outcome, &all).response.body);
        for v in &all {
            let reply = Payme.render_orders(echo, outcome, std::slice::from_ref(v));
            check_json(&reply.response.body);
            assert_eq!(reply.response.status, 200);
        }
    }
});
