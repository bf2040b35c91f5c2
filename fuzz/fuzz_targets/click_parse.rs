//! Click's SHOP API: `echo`, `parse`, `render` on arbitrary requests.
//!
//! The input goes in as a form POST body twice: as it is, and with the `sign_string` the
//! test key gives its fields appended, so that the parser past the signature is reached.
//! Without the key a request never parses; with a signature it parses only when its
//! `sign_string` is the one the fields compute; a parsed Prepare or Complete carries a
//! `click_trans_id` of digits, a sum that is not negative, and a Complete binds the order
//! to its id, account and sum. Every answer is one JSON object with an integer `error`
//! and a text `error_note`.
#![no_main]

// The XML checker is for the XML protocols; Click answers JSON.
#[allow(dead_code)]
mod shared;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Form, MAX_BODY};
use paysys::config::{ServiceSlot, SignHash, SignRule};
use paysys::domain::{AccountKey, AccountRule, Amount};
use paysys::outcome::{Command, Fault, Outcome, Refusal};
use paysys::protocol::click::{signature, Click};
use paysys::protocol::{ParseContext, Protocol};
use shared::{now, request};

fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    let mut all = vec![
        Outcome::Failed(Fault::DatabaseWrite("gone".into())),
        Outcome::Refused(Refusal::CallerNotAllowed),
    ];
    match parsed {
        Err(r) => all.push(Outcome::Refused(r.clone())),
        Ok(Command::Book(b)) => {
            assert!(
                b.order_id.as_str().bytes().all(|c| c.is_ascii_digit()),
                "{b:?}"
            );
            assert!(b.sum.kopecks() >= 0);
            assert_eq!(Amount::parse(&b.sum.to_string()), Ok(b.sum));
            all.push(Outcome::Booked {
                payment_id: 1,
                repeat: true,
            });
        }
        Ok(Command::Confirm(r)) | Ok(Command::Unbook(r)) => {
            assert!(r.payment_id.is_some_and(|p| p > 0) && !r.reverses, "{r:?}");
            assert!(r.order_id.is_some() && r.account.is_some(), "{r:?}");
            assert!(r.sum.is_some_and(|s| s.kopecks() >= 0), "{r:?}");
            all.push(Outcome::Paid {
                prv_txn: 7,
                sum: Amount::from_kopecks(1),
                repeat: false,
            });
            all.push(Outcome::Cancelled {
                prv_txn: 7,
                sum: Amount::from_kopecks(1),
                repeat: true,
            });
        }
        Ok(other) => panic!("Click parsed into {other:?}"),
    }
    all
}

/// The body with the sign_string its fields compute under `rule` appended, if they can
/// be signed at all.
fn signed(data: &[u8], rule: &SignRule) -> Option<Vec<u8>> {
    let form = Form::decode(data);
    let get = |k: &str| form.get(k).ok().flatten().unwrap_or("");
    let action = get("action");
    let sign = signature(
        rule,
        get("click_trans_id"),
        get("merchant_trans_id"),
        (action == "1").then(|| get("merchant_prepare_id")),
        get("amount"),
        action,
        get("sign_time"),
    )
    .ok()?;
    let mut body = data.to_vec();
    body.extend_from_slice(format!("&sign_string={sign}").as_bytes());
    Some(body)
}

fn check_json(body: &str) {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body:?}"));
    assert!(
        o.get("error").and_then(|e| e.as_i64()).is_some(),
        "{body:?}"
    );
    assert!(
        o.get("error_note").and_then(|e| e.as_str()).is_some(),
        "{body:?}"
    );
    assert!(o.contains_key("click_trans_id"), "{body:?}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let form = "application/x-www-form-urlencoded";
    let rule = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: true,
        service: ServiceSlot::Fixed("17449".into()),
    };
    let mut bodies = vec![data.to_vec()];
    bodies.extend(signed(data, &rule));
    let rules = [
        AccountRule::new(AccountKey::Id),
        AccountRule::new(AccountKey::Login),
    ];
    for body in &bodies {
        let req = request("POST", form, b"", body);
        let echo = Click.echo(&req);
        for account in &rules {
            let ctx = |sign| ParseContext {
                account,
                now: now(),
                test: false,
                sign,
                rsa: None,
                card: None,
                monobank_key: None,
            };
            let unkeyed = Click.parse(&req, &ctx(None));
            assert!(
                matches!(
                    unkeyed,
                    Err(Refusal::BadSignature(_) | Refusal::BadRequest(_) | Refusal::NoCommand(_))
                ),
                "parsed without a key: {unkeyed:?}"
            );
            let parsed = Click.parse(&req, &ctx(Some(&rule)));
            if parsed.is_ok() {
                // Parsed: its sign_string is the one its fields compute.
                let form = Form::decode(body);
                let get = |k: &str| form.get(k).ok().flatten().unwrap_or("");
                let action = get("action");
                let expected = signature(
                    &rule,
                    get("click_trans_id"),
                    get("merchant_trans_id"),
                    (action == "1").then(|| get("merchant_prepare_id")),
                    get("amount"),
                    action,
                    get("sign_time"),
                );
                assert_eq!(
                    expected.as_deref(),
                    Ok(get("sign_string").to_ascii_lowercase().as_str())
                );
                assert_eq!(get("service_id"), "17449");
            }
            for outcome in outcomes(&parsed) {
                let reply = Click.render(&echo, &outcome);
                check_json(&reply.response.body);
            }
        }
    }
});
