//! Click's SHOP API (Uzbekistan), as Click's merchant documentation and ABillS's `Click`
//! module (its `t/Click.t` request) take it.
//!
//! Two form POSTs per payment, each with `click_trans_id` (Click's id of the payment),
//! `service_id`, `click_paydoc_id`, `merchant_trans_id` (the account), `amount` (sums, as
//! `1000` or `1000.00`), `action`, `error`, `error_note`, `sign_time`
//! (`YYYY-MM-DD HH:MM:SS`) and `sign_string`:
//!
//! * `action=0`, **Prepare**: may this account be paid this sum? Books the order
//!   (`paysys_order`, by `click_trans_id`) and answers its number as `merchant_prepare_id`;
//!   nothing is credited. A repeat gets the same number.
//! * `action=1`, **Complete**, with `merchant_prepare_id`: `error=0` pays the booked order
//!   exactly once (`paysys_txn`, txn id `click_trans_id`) and answers `merchant_confirm_id`
//!   (the billing's payment number); a repeat gets the first answer again. `error < 0`
//!   (Click could not take the money) cancels the booked order: no later Complete pays it
//!   (-9); an order already paid is not reversed (-4).
//!
//! ```text
//! sign_string = md5_hex(click_trans_id service_id SECRET_KEY merchant_trans_id
//!                       [merchant_prepare_id, on Complete] amount action sign_time)
//! ```
//!
//! with the raw values as sent, nothing between them, `service_id` the system's own
//! (`service_id = "…"`: a request for another service is refused). The boundaries between
//! the fields hold by their forms ([`crate::protocol::sign::concatenated`]): the
//! config fixes `service_id` and the key, `click_trans_id` and `merchant_prepare_id` are
//! digits without a leading zero, `action` one character, `sign_time` nineteen; where the
//! account meets the prepare id and the sum, a Complete pays only an order booked with
//! that very `click_trans_id`, account and sum. A missing or wrong `sign_string` is refused
//! (-1) before anything is looked up.
//!
//! Answer (JSON): `click_trans_id`, `merchant_trans_id`, `merchant_prepare_id` (Prepare) or
//! `merchant_confirm_id` (Complete), `error`, `error_note`. Errors: 0 success, -1 sign
//! check failed, -2 wrong amount, -3 unknown action, -4 already paid, -5 no such user
//! (or payments refused for them), -6 no such transaction, -7 our temporary error (with
//! HTTP 503: Click asks again; unconfirmed by Click's text, which names -7 only as "failed
//! to update user"), -8 bad request, -9 transaction cancelled.

use chrono::NaiveDateTime;
use md5::{Digest, Md5};

use crate::cgi::{Form, Request};
use crate::config::{ProtocolKind, ServiceSlot, SignRule};
use crate::domain::{Account, Amount, AmountError, TxnId};
use crate::outcome::{Booking, Command, Echo, OrderRef, Outcome, Refusal};
use crate::protocol::osmp::clean;
use crate::protocol::sign::{self, Part};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Click;

/// `sign_time`'s shape: `D` a digit, anything else itself.
const SIGN_TIME: &str = "DDDD-DD-DD DD:DD:DD";

/// `error` and `error_note` for every ending.
pub fn code(outcome: &Outcome) -> (i32, &'static str) {
    match outcome {
        Outcome::Booked { .. } | Outcome::Paid { .. } => (0, "Success"),
        Outcome::Cancelled { .. } => (-9, "Transaction cancelled"),
        // No action checks, asks, lists or settles: none reaches here.
        Outcome::Checked { .. }
        | Outcome::Found { .. }
        | Outcome::Listed(_)
        | Outcome::Noted { .. }
        | Outcome::LookedUp { .. } => (-8, "Error in request from click"),
        Outcome::Refused(refusal) => match refusal {
            Refusal::BadSignature(_) => (-1, "SIGN CHECK FAILED!"),
            Refusal::BadSum(_)
            | Refusal::SumBelowMin { .. }
            | Refusal::SumAboveMax { .. }
            | Refusal::SumTooLarge(_) => (-2, "Incorrect parameter amount"),
            Refusal::NoCommand(_) => (-3, "Action not found"),
            Refusal::CancelUnknown(_) => (-4, "Already paid"),
            Refusal::NoSuchSubscriber | Refusal::BadAccount(_) => (-5, "User does not exist"),
            Refusal::AccountInactive | Refusal::PaymentsDisabled | Refusal::HookRefused(_) => {
                (-5, "Payments to this user are refused")
            }
            Refusal::UnknownTxn => (-6, "Transaction does not exist"),
            Refusal::PaidThenCancelled { .. } => (-9, "Transaction cancelled"),
            // The admin must give the subscriber a bill: "later", as a fault.
            Refusal::NoBill => (-7, "Failed to update user"),
            Refusal::Conflict { .. }
            | Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadTxnDate(_)
            | Refusal::TxnDateOutOfWindow { .. }
            | Refusal::BadDomain(_)
            | Refusal::CancelNotSupported(_)
            | Refusal::CallerNotAllowed => (-8, "Error in request from click"),
        },
        Outcome::Failed(_) => (-7, "Failed to update user"),
    }
}

/// The request's fields as sent, or why it has none.
fn form(request: &Request) -> Result<Form, Refusal> {
    request.form().map_err(|e| Refusal::BadRequest(e.0))
}

/// `click_trans_id` and `merchant_prepare_id`: digits, no leading zero, at most 19 (a
/// signed 64-bit number, as Click's own ids are).
fn number(name: &str, text: &str) -> Result<u64, String> {
    let digits = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(n) if digits && n > 0 && !text.starts_with('0') => Ok(n),
        _ => Err(format!(
            "{name} '{}' is not a number Click sends (digits, no leading zero)",
            clean(text)
        )),
    }
}

/// The `sign_string` a request with these raw values must carry under `rule` (hex, lower
/// case), or why none can vouch for it. `prepare_id` is in on Complete (`action=1`) only.
pub fn signature(
    rule: &SignRule,
    click_trans_id: &str,
    merchant_trans_id: &str,
    prepare_id: Option<&str>,
    amount: &str,
    action: &str,
    sign_time: &str,
) -> Result<String, String> {
    let ServiceSlot::Fixed(service_id) = &rule.service else {
        return Err("the system has no service_id".into());
    };
    let part = |name, value| Part {
        name,
        value,
        may_be_empty: false,
    };
    let mut parts = vec![
        part("click_trans_id", click_trans_id),
        part("service_id", service_id),
        part("secret_key", &rule.secret),
        part("merchant_trans_id", merchant_trans_id),
    ];
    if let Some(id) = prepare_id {
        parts.push(part("merchant_prepare_id", id));
    }
    parts.extend([
        part("amount", amount),
        part("action", action),
        part("sign_time", sign_time),
    ]);
    let text = sign::concatenated(&parts)?;
    Ok(Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Protocol for Click {
    fn secrets(&self) -> &'static [&'static str] {
        &["sign_string"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Click
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        if let Ok(form) = form(request) {
            let field = |k: &str| form.get(k).ok().flatten().unwrap_or("").to_string();
            let error = field("error");
            echo.command = match field("action").as_str() {
                "0" => "book".into(),
                "1" if error.starts_with('-') => "cancel".into(),
                "1" => "pay".into(),
                other => format!("action={other}"),
            };
            echo.txn_id = field("click_trans_id");
            echo.account = field("merchant_trans_id");
            echo.sum = field("amount");
            echo.params = form.pairs().to_vec();
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let form = form(request)?;
        let get = |key: &str| -> Result<&str, Refusal> {
            Ok(form
                .get(key)
                .map_err(|e| Refusal::BadRequest(e.0))?
                .unwrap_or(""))
        };
        let action = get("action")?;
        if !matches!(action, "0" | "1") {
            return Err(Refusal::NoCommand(if action.is_empty() {
                String::new()
            } else {
                format!("action={}", clean(action))
            }));
        }
        let complete = action == "1";
        let click_trans_id = get("click_trans_id")?;
        let account_text = get("merchant_trans_id")?;
        let prepare_text = get("merchant_prepare_id")?;
        let amount_text = get("amount")?;
        let sign_time = get("sign_time")?;
        // The signature first: an unsigned request learns nothing, not even whether the
        // account exists. Click's systems always have a key (the config refuses one
        // without); a system without one here refuses everything.
        let rule = ctx.sign.ok_or_else(|| {
            Refusal::BadSignature("the system has no secret_key: nothing can be checked".into())
        })?;
        let sent = get("sign_string")?;
        if sent.is_empty() {
            return Err(Refusal::BadSignature("sign_string is missing".into()));
        }
        let expected = signature(
            rule,
            click_trans_id,
            account_text,
            complete.then_some(prepare_text),
            amount_text,
            action,
            sign_time,
        )
        .map_err(Refusal::BadSignature)?;
        if !sign::same_text(&expected, &sent.to_ascii_lowercase()) {
            return Err(Refusal::BadSignature(format!(
                "sign_string {} does not match the request signed with this system's secret_key",
                clean(sent)
            )));
        }
        // Signed, so the service is the signed one: it must be ours.
        if let ServiceSlot::Fixed(ours) = &rule.service {
            let named = get("service_id")?;
            if named != ours {
                return Err(Refusal::BadSignature(format!(
                    "service_id '{}' is not this system's service_id '{ours}'",
                    clean(named)
                )));
            }
        }
        // The forms that hold the signed text's boundaries (the module docs).
        number("click_trans_id", click_trans_id).map_err(Refusal::BadTxnId)?;
        let order_id = TxnId::parse(click_trans_id).map_err(Refusal::BadTxnId)?;
        // Exactly nineteen characters, each field its full width: chrono alone takes
        // `2021-10-5 20:17:14` too, and a shorter sign_time would move the boundary the
        // signed text relies on.
        let shaped = sign_time.len() == SIGN_TIME.len()
            && sign_time
                .bytes()
                .zip(SIGN_TIME.bytes())
                .all(|(b, want)| match want {
                    b'D' => b.is_ascii_digit(),
                    sep => b == sep,
                });
        if !shaped || NaiveDateTime::parse_from_str(sign_time, "%Y-%m-%d %H:%M:%S").is_err() {
            return Err(Refusal::BadTxnDate(format!(
                "sign_time '{}' is not YYYY-MM-DD HH:MM:SS",
                clean(sign_time)
            )));
        }
        if account_text.is_empty() {
            return Err(Refusal::BadAccount("merchant_trans_id is missing".into()));
        }
        let account = Account::parse_by(account_text, ctx.account).map_err(Refusal::BadAccount)?;
        let sum = Amount::parse(amount_text).map_err(|e| match e {
            AmountError::TooLarge => Refusal::SumTooLarge(format!("amount '{amount_text}': {e}")),
            AmountError::Malformed(why) => {
                Refusal::BadSum(format!("amount '{}': {why}", clean(amount_text)))
            }
        })?;
        if !complete {
            return Ok(Command::Book(Booking {
                order_id,
                account,
                sum,
                at: None,
            }));
        }
        let payment_id = number("merchant_prepare_id", prepare_text).map_err(Refusal::BadTxnId)?;
        // Click's own verdict on the payment: 0 it took the money, below 0 it could not.
        let error = get("error")?;
        let failed = match error.parse::<i64>() {
            Ok(n) => n < 0,
            Err(_) => {
                return Err(Refusal::BadRequest(format!(
                    "error '{}' is not Click's error code",
                    clean(error)
                )))
            }
        };
        let order = OrderRef {
            payment_id: Some(payment_id),
            order_id: Some(order_id),
            account: Some(account.as_str().to_string()),
            sum: Some(sum),
            reverses: false,
            note: None,
        };
        Ok(if failed {
            Command::Unbook(order)
        } else {
            Command::Confirm(order)
        })
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let (error, note) = code(outcome);
        let field = |k: &str| {
            echo.params
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        // Click's ids are numbers; anything else sent is echoed as text.
        let id = |text: &str| -> serde_json::Value {
            match number("", text) {
                Ok(n) => n.into(),
                Err(_) => clean(text).into(),
            }
        };
        let mut answer = serde_json::Map::new();
        answer.insert("click_trans_id".into(), id(field("click_trans_id")));
        answer.insert(
            "merchant_trans_id".into(),
            clean(field("merchant_trans_id")).into(),
        );
        match outcome {
            Outcome::Booked { payment_id, .. } => {
                answer.insert("merchant_prepare_id".into(), (*payment_id).into());
            }
            Outcome::Paid { prv_txn, .. } => {
                answer.insert("merchant_confirm_id".into(), (*prv_txn).into());
            }
            _ if field("action") == "0" => {
                answer.insert("merchant_prepare_id".into(), serde_json::Value::Null);
            }
            _ => {
                answer.insert("merchant_confirm_id".into(), serde_json::Value::Null);
            }
        }
        answer.insert("error".into(), error.into());
        answer.insert("error_note".into(), note.into());
        let body = serde_json::Value::Object(answer).to_string();
        let status = match outcome {
            Outcome::Failed(_) | Outcome::Refused(Refusal::NoBill) => 503,
            Outcome::Refused(Refusal::CallerNotAllowed) => 403,
            _ => 200,
        };
        Reply {
            response: crate::cgi::Response {
                status,
                content_type: "application/json; charset=utf-8",
                body,
                headers: Default::default(),
            },
            result: error.to_string(),
            comment: note.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountKey, AccountRule};

    fn rule() -> SignRule {
        SignRule {
            secret: "s3cr3t".into(),
            hash: crate::config::SignHash::Md5,
            amount: true,
            service: ServiceSlot::Fixed("17449".into()),
        }
    }

    /// A form as Click posts it, signed with `rule()`'s key.
    fn signed(action: &str, fields: &[(&str, &str)]) -> String {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| *v)
                .unwrap_or("")
        };
        let sign = signature(
            &rule(),
            get("click_trans_id"),
            get("merchant_trans_id"),
            (action == "1").then(|| get("merchant_prepare_id")),
            get("amount"),
            action,
            get("sign_time"),
        )
        .unwrap();
        let mut pairs: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.push(("action".into(), action.into()));
        pairs.push(("sign_string".into(), sign));
        serde_urlencoded::to_string(pairs).unwrap()
    }

    const PREPARE: &[(&str, &str)] = &[
        ("click_trans_id", "1485296553"),
        ("service_id", "17449"),
        ("click_paydoc_id", "1574969493"),
        ("merchant_trans_id", "5907"),
        ("amount", "1100.00"),
        ("error", "0"),
        ("error_note", "Success"),
        ("sign_time", "2021-10-05 20:17:14"),
    ];

    fn complete(error: &str) -> Vec<(&'static str, String)> {
        let mut f: Vec<(&str, String)> = PREPARE.iter().map(|(k, v)| (*k, v.to_string())).collect();
        f.push(("merchant_prepare_id", "20226190".into()));
        f.retain(|(k, _)| *k != "error");
        f.push(("error", error.into()));
        f
    }

    fn parse(body: &str, sign: Option<&SignRule>) -> Result<Command, Refusal> {
        let account = AccountRule::new(AccountKey::Id);
        let ctx = ParseContext {
            account: &account,
            now: NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap(),
            test: false,
            sign,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        Click.parse(
            &crate::protocol::testing::post("application/x-www-form-urlencoded", body),
            &ctx,
        )
    }

    fn borrowed<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        f.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn the_signature_is_md5_of_the_fields_with_the_key_in_third_place() {
        // md5("1485296553" "17449" "s3cr3t" "5907" "1100.00" "0" "2021-10-05 20:17:14")
        let text = "148529655317449s3cr3t59071100.0002021-10-05 20:17:14";
        let want: String = Md5::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let got = signature(
            &rule(),
            "1485296553",
            "5907",
            None,
            "1100.00",
            "0",
            "2021-10-05 20:17:14",
        );
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn prepare_books_and_complete_pays_or_cancels_the_booked_order() {
        let r = rule();
        let Ok(Command::Book(b)) = parse(&signed("0", PREPARE), Some(&r)) else {
            panic!("{:?}", parse(&signed("0", PREPARE), Some(&r)));
        };
        assert_eq!(
            (b.order_id.as_str(), b.account.as_str(), b.sum),
            ("1485296553", "5907", Amount::from_kopecks(110_000))
        );
        let want = OrderRef {
            payment_id: Some(20226190),
            order_id: Some(TxnId::parse("1485296553").unwrap()),
            account: Some("5907".into()),
            sum: Some(Amount::from_kopecks(110_000)),
            reverses: false,
            note: None,
        };
        let ok = complete("0");
        assert_eq!(
            parse(&signed("1", &borrowed(&ok)), Some(&r)),
            Ok(Command::Confirm(want.clone()))
        );
        let failed = complete("-5017");
        assert_eq!(
            parse(&signed("1", &borrowed(&failed)), Some(&r)),
            Ok(Command::Unbook(want))
        );
    }

    #[test]
    fn a_bad_missing_or_foreign_signature_is_refused_first() {
        let r = rule();
        let good = signed("0", PREPARE);
        let other = SignRule {
            secret: "other".into(),
            ..rule()
        };
        let mut foreign = PREPARE.to_vec();
        foreign[1] = ("service_id", "99");
        let mut wrong_service = rule();
        wrong_service.service = ServiceSlot::Fixed("99".into());
        let cases = [
            (good.replace("5907", "5908"), Some(&r)),
            (good.replace("1100.00", "1100.01"), Some(&r)),
            (good.replace("sign_string=", "sign_string=0"), Some(&r)),
            (good.replace("sign_string=", "x="), Some(&r)),
            (good.clone(), Some(&other)),
            (good.clone(), None),
            // Signed right for service 99, but this system is 17449's.
            (signed("0", &foreign), Some(&r)),
            // The fields of a Prepare, signed as a Complete (no prepare id slot moved).
            (good.replace("action=0", "action=1"), Some(&r)),
        ];
        for (body, sign) in cases {
            let got = parse(&body, sign);
            assert!(
                matches!(got, Err(Refusal::BadSignature(_))),
                "{body}: {got:?}"
            );
        }
        // An upper-case hex signature is the same signature.
        let upper = good.replace(
            &good.split("sign_string=").nth(1).unwrap().to_string(),
            &good.split("sign_string=").nth(1).unwrap().to_uppercase(),
        );
        assert!(parse(&upper, Some(&r)).is_ok());
        let _ = wrong_service;
    }

    #[test]
    fn bad_requests_get_click_codes() {
        let r = rule();
        let with = |k: &'static str, v: &'static str| {
            let mut f = PREPARE.to_vec();
            f.retain(|(n, _)| *n != k);
            f.push((k, v));
            signed("0", &f)
        };
        let table: Vec<(String, i32)> = vec![
            (String::new(), -3),
            ("action=2".into(), -3),
            (with("amount", "1e3"), -2),
            (with("amount", "-5"), -2),
            (with("amount", "10.001"), -2),
            (with("merchant_trans_id", "abc"), -5),
            (with("click_trans_id", "0123"), -8),
            (with("click_trans_id", "12a"), -8),
            (with("sign_time", "2021-10-05T20:17:14"), -8),
            // chrono takes single-digit fields; Click's sign_time has none.
            (with("sign_time", "2021-10-5 20:17:14"), -8),
            (with("sign_time", "2021-1-05 20:17:14"), -8),
            (with("sign_time", "2021-10-05 2:17:14"), -8),
            (with("sign_time", "2021-10-05 20:17:4"), -8),
            (with("sign_time", "2021-10-05 20:17:14 "), -8),
            (with("sign_time", "+2021-10-05 20:17:1"), -8),
            (with("sign_time", "2021-13-05 20:17:14"), -8),
            ("action=0&action=1".into(), -8),
        ];
        for (body, want) in table {
            let got = parse(&body, Some(&r)).unwrap_err();
            assert_eq!(
                code(&Outcome::Refused(got.clone())).0,
                want,
                "{body}: {got:?}"
            );
        }
        let mut f = complete("x");
        f.retain(|(k, _)| *k != "merchant_prepare_id");
        f.push(("merchant_prepare_id", "007".into()));
        let got = parse(&signed("1", &borrowed(&f)), Some(&r)).unwrap_err();
        assert_eq!(code(&Outcome::Refused(got)).0, -8);
        let got = parse(&signed("1", &borrowed(&complete("x"))), Some(&r)).unwrap_err();
        assert!(matches!(got, Refusal::BadRequest(_)), "{got:?}");
    }

    #[test]
    fn answers_name_the_ids_click_expects() {
        let body = signed("0", PREPARE);
        let request = crate::protocol::testing::post("application/x-www-form-urlencoded", &body);
        let echo = Click.echo(&request);
        assert_eq!(
            (echo.command.as_str(), echo.txn_id.as_str()),
            ("book", "1485296553")
        );
        let reply = Click.render(
            &echo,
            &Outcome::Booked {
                payment_id: 42,
                repeat: false,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&reply.response.body).unwrap();
        assert_eq!(v["click_trans_id"], 1485296553u64);
        assert_eq!(v["merchant_trans_id"], "5907");
        assert_eq!(v["merchant_prepare_id"], 42);
        assert_eq!((v["error"].as_i64(), reply.response.status), (Some(0), 200));
        let reply = Click.render(
            &echo,
            &Outcome::Failed(crate::outcome::Fault::Internal("x".into())),
        );
        assert_eq!(reply.response.status, 503);
        assert!(reply.response.body.contains("\"error\":-7"));
        // Hostile text is echoed as JSON text, escaped.
        let hostile = crate::protocol::testing::post(
            "application/x-www-form-urlencoded",
            "click_trans_id=%22%7D%3C&merchant_trans_id=%22%0A&action=9",
        );
        let reply = Click.render(
            &Click.echo(&hostile),
            &Outcome::Refused(Refusal::NoCommand("9".into())),
        );
        let v: serde_json::Value = serde_json::from_str(&reply.response.body).unwrap();
        assert_eq!(v["click_trans_id"], "\"}<");
        assert_eq!(v["error"], -3);
    }
}
