//! 24NonStop terminals (and 2click, the same protocol), as ABillS's `24_non_stop` module
//! speaks it (`../shared/PROTOCOLS.md`, section 2).
//!
//! Request, by GET or form POST (or POSTed as `<pay-request>` XML with lower-case tags):
//! `ACT=1` may this account be paid, `ACT=4` pay, `ACT=7` status; `PAY_ACCOUNT`,
//! `SERVICE_ID`, `PAY_ID` (the terminal's payment id, GUID-like, the same for the ACT=1, 4
//! and 7 of one payment), `PAY_AMOUNT`, `RECEIPT_NUM`, `TRADE_POINT`, and `SIGN`:
//!
//! ```text
//! SIGN = UPPER(hex(H(ACT _ PAY_ACCOUNT [_ SERVICE_ID] _ PAY_ID [_ PAY_AMOUNT] _ secret)))
//! ```
//!
//! with the raw values as sent; `PAY_ACCOUNT` is empty where the request has none (ACT=7).
//! Which fields are in is the system's config, never the request's choice, or one `SIGN`
//! would sign two requests ([`crate::protocol::sign`]): the `SERVICE_ID` slot is always
//! there (24NonStop 2.20 and later, 2click) holding the request's `SERVICE_ID`, or the
//! configured `service_id`, which a sent one must equal; with `sign_service_id = false`
//! (2.10) it never is, and a request carrying `SERVICE_ID` is refused. `PAY_AMOUNT` is in
//! on ACT=4 with `sign_amount = true` (2click 2.30), as the very text that is credited. No
//! signed field may hold `_`: `PAY_ACCOUNT=ivan_x PAY_ID=G` would sign `PAY_ACCOUNT=ivan
//! PAY_ID=x_G` too. H is MD5, or SHA-1 with `sign = "sha1"`. A missing or wrong `SIGN`, or
//! one that cannot vouch for a single request, is refused (-101) before anything is looked
//! up.
//!
//! Answer: `<pay-response>` with `status_code` 21 (may pay; with `balance`, `name`, limits),
//! 22 (paid; a repeat of the same `PAY_ID` gets 22 again and credits nothing), 11 (status
//! found, `<transaction>` status 111 done or 130 cancelled), or an error: -10 no such
//! payment, -40 no such account, -41 payments impossible for it, -42 this sum impossible,
//! -90 service unavailable (our temporary error: the terminal asks again), -100 this
//! `PAY_ID` was paid with another account or sum, -101 bad request or signature.
//! A pay carries no payment time: its `txn_date` is when it reached us.

use chrono::Local;
use md5::Md5;
use quick_xml::events::Event;
use sha1::{Digest, Sha1};

use crate::cgi::{Form, Request};
use crate::config::{ProtocolKind, ServiceSlot, SignHash, SignRule};
use crate::domain::{Account, Amount, AmountError, TxnDate, TxnId};
use crate::outcome::{Check, Command, Echo, Outcome, Pay, Refusal, StatusQuery};
use crate::protocol::osmp::{clean, clean_long, push_element};
use crate::protocol::sign::{self, Part};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Nonstop24;

/// Every status code we answer, with the words the log gets for it.
pub fn code(outcome: &Outcome) -> (i32, &'static str) {
    match outcome {
        Outcome::Checked { .. } => (21, "payment possible"),
        Outcome::Paid { .. } => (22, "payment accepted"),
        Outcome::Found {
            cancelled: false, ..
        } => (11, "paid"),
        Outcome::Found {
            cancelled: true, ..
        } => (11, "cancelled"),
        // No ACT cancels or lists; neither reaches here.
        Outcome::Cancelled { .. } => (-101, "cancel unsupported"),
        Outcome::Listed(_) => (-101, "listing unsupported"),
        Outcome::Booked { .. } | Outcome::Noted { .. } | Outcome::LookedUp { .. } => {
            (-101, "booking unsupported")
        }
        Outcome::Refused(refusal) => match refusal {
            Refusal::NoSuchSubscriber | Refusal::BadAccount(_) => (-40, "client not found"),
            Refusal::AccountInactive
            | Refusal::PaymentsDisabled
            | Refusal::HookRefused(_)
            | Refusal::PaidThenCancelled { .. } => (-41, "payments impossible"),
            Refusal::SumBelowMin { .. }
            | Refusal::SumAboveMax { .. }
            | Refusal::SumTooLarge(_)
            | Refusal::BadSum(_) => (-42, "amount impossible"),
            Refusal::Conflict { .. } => (-100, "pay_id paid otherwise"),
            Refusal::UnknownTxn => (-10, "transaction not found"),
            // The admin must give the subscriber a bill: "later", as OSMP's 90.
            Refusal::NoBill => (-90, "no bill"),
            Refusal::BadSignature(_) => (-101, "bad sign"),
            Refusal::NoCommand(_)
            | Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadTxnDate(_)
            | Refusal::TxnDateOutOfWindow { .. }
            | Refusal::BadDomain(_)
            | Refusal::CancelUnknown(_)
            | Refusal::CancelNotSupported(_)
            | Refusal::CallerNotAllowed => (-101, "bad request"),
        },
        Outcome::Failed(_) => (-90, "service unavailable"),
    }
}

impl Protocol for Nonstop24 {
    fn secrets(&self) -> &'static [&'static str] {
        &["SIGN"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Nonstop24
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        if let Ok(form) = fields(request) {
            let field = |k: &str| form.get(k).ok().flatten().unwrap_or("").to_string();
            echo.command = match field("ACT").as_str() {
                "1" => "check".into(),
                "4" => "pay".into(),
                "7" => "status".into(),
                other => format!("ACT={other}"),
            };
            echo.txn_id = field("PAY_ID");
            echo.account = field("PAY_ACCOUNT");
            echo.sum = field("PAY_AMOUNT");
            echo.params = form.pairs().to_vec();
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let form = fields(request)?;
        let get = |key: &str| form.get(key).map_err(|e| Refusal::BadRequest(e.0));
        let act = get("ACT")?.unwrap_or("");
        if !matches!(act, "1" | "4" | "7") {
            return Err(Refusal::NoCommand(if act.is_empty() {
                String::new()
            } else {
                format!("ACT={act}")
            }));
        }
        let account_text = get("PAY_ACCOUNT")?.unwrap_or("");
        let pay_id = get("PAY_ID")?.unwrap_or("");
        let amount_text = get("PAY_AMOUNT")?.unwrap_or("");
        // The signature first: an unsigned request learns nothing, not even whether the
        // account exists.
        if let Some(rule) = ctx.sign {
            let sent = get("SIGN")?.unwrap_or("");
            if sent.is_empty() {
                return Err(Refusal::BadSignature("SIGN is missing".into()));
            }
            // `amount_text` is the text Amount::parse credits below: a signed amount is the
            // credited one, character for character.
            let expected = signature(
                rule,
                act,
                account_text,
                get("SERVICE_ID")?,
                pay_id,
                Some(amount_text),
            )
            .map_err(Refusal::BadSignature)?;
            if !same_text(&expected, &sent.to_ascii_uppercase()) {
                return Err(Refusal::BadSignature(format!(
                    "SIGN {} does not match the request signed with this system's secret",
                    clean(sent)
                )));
            }
        }
        let txn_id =
            TxnId::parse_token(pay_id).map_err(|e| Refusal::BadTxnId(format!("PAY_ID: {e}")))?;
        let account = || -> Result<Account, Refusal> {
            if account_text.is_empty() {
                return Err(Refusal::BadAccount("PAY_ACCOUNT is missing".into()));
            }
            Account::parse_by(account_text, ctx.account).map_err(Refusal::BadAccount)
        };
        match act {
            "1" => Ok(Command::Check(Check {
                txn_id: Some(txn_id),
                account: account()?,
                sum: None,
            })),
            "4" => {
                let account = account()?;
                if amount_text.is_empty() {
                    return Err(Refusal::BadSum("PAY_AMOUNT is missing".into()));
                }
                let sum = Amount::parse(amount_text).map_err(|e| match e {
                    AmountError::TooLarge => {
                        Refusal::SumTooLarge(format!("PAY_AMOUNT '{amount_text}': {e}"))
                    }
                    AmountError::Malformed(why) => {
                        Refusal::BadSum(format!("PAY_AMOUNT '{amount_text}': {why}"))
                    }
                })?;
                Ok(Command::Pay(Pay {
                    txn_id,
                    account,
                    sum,
                    txn_date: TxnDate::received(ctx.now),
                }))
            }
            _ => Ok(Command::Status(StatusQuery { txn_id })),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let (status, words) = code(outcome);
        let now = Local::now().format("%d.%m.%Y %H:%M:%S").to_string();
        let service = echo
            .params
            .iter()
            .find(|(k, _)| k == "SERVICE_ID")
            .map(|(_, v)| clean(v))
            .unwrap_or_default();
        let mut xml = String::with_capacity(320);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pay-response>");
        match outcome {
            Outcome::Checked {
                subscriber, limits, ..
            } => {
                let balance = subscriber
                    .balance
                    .map(|b| b.to_string())
                    .unwrap_or_default();
                push_element(&mut xml, "balance", &balance);
                push_element(&mut xml, "name", &clean_long(&subscriber.name));
                push_element(&mut xml, "account", &clean(&echo.account));
                push_element(&mut xml, "service_id", &service);
                push_element(&mut xml, "abonplata", "0");
                push_element(&mut xml, "min_amount", &limits.0.to_string());
                push_element(&mut xml, "max_amount", &limits.1.to_string());
            }
            Outcome::Paid { sum, .. } => {
                push_element(&mut xml, "pay_id", &clean(&echo.txn_id));
                push_element(&mut xml, "service_id", &service);
                push_element(&mut xml, "amount", &sum.to_string());
                push_element(&mut xml, "description", "");
            }
            _ => {}
        }
        push_element(&mut xml, "status_code", &status.to_string());
        push_element(&mut xml, "time_stamp", &now);
        if let Outcome::Found { sum, cancelled, .. } = outcome {
            xml.push_str("<transaction>");
            push_element(&mut xml, "pay_id", &clean(&echo.txn_id));
            push_element(&mut xml, "service_id", &service);
            push_element(&mut xml, "amount", &sum.to_string());
            push_element(&mut xml, "status", if *cancelled { "130" } else { "111" });
            xml.push_str("</transaction>");
        }
        xml.push_str("</pay-response>\n");
        Reply::xml(xml, outcome, status.to_string(), words.to_string())
    }
}

/// The request's fields: the form (query string and form body), or a POSTed
/// `<pay-request>` whose elements become upper-case fields (`<pay_id>` is `PAY_ID`).
fn fields(request: &Request) -> Result<Form, Refusal> {
    let body = request
        .body
        .as_ref()
        .map_err(|e| Refusal::BadRequest(e.0.clone()))?;
    let xml = !body.is_empty()
        && (request.content_type.to_ascii_lowercase().contains("xml")
            || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<'));
    if !xml {
        return request.form().map_err(|e| Refusal::BadRequest(e.0));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Refusal::BadRequest("the XML body is not UTF-8".into()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut pairs = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<String> = None;
    let mut value = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| Refusal::BadRequest(format!("XML body: {e}")))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth == 1 && e.name().as_ref() != b"pay-request" {
                    return Err(Refusal::BadRequest(
                        "the XML body is not a <pay-request>".into(),
                    ));
                }
                if depth == 2 {
                    current = Some(String::from_utf8_lossy(e.name().as_ref()).to_ascii_uppercase());
                    value.clear();
                }
                if depth > 2 {
                    return Err(Refusal::BadRequest("the <pay-request> is nested".into()));
                }
            }
            Event::Text(t) if depth == 2 => {
                value.push_str(
                    &t.unescape()
                        .map_err(|e| Refusal::BadRequest(format!("XML body: {e}")))?,
                );
            }
            Event::End(_) => {
                if depth == 2 {
                    if let Some(name) = current.take() {
                        pairs.push((name, value.trim().to_string()));
                    }
                }
                depth = depth.saturating_sub(1);
            }
            // No entities of its own: a DOCTYPE is how an XML bomb starts.
            Event::DocType(_) => {
                return Err(Refusal::BadRequest("a DOCTYPE in the XML body".into()))
            }
            Event::Eof if depth == 0 => break,
            Event::Eof => return Err(Refusal::BadRequest("the XML body ends early".into())),
            _ => {}
        }
        if pairs.len() > 64 {
            return Err(Refusal::BadRequest(
                "too many fields in the XML body".into(),
            ));
        }
    }
    Ok(Form::from_pairs(pairs))
}

/// The `SIGN` a request with these raw values must carry under `rule`, or why no `SIGN` can
/// vouch for it alone: a signed field holding `_` or empty where it must not be, a
/// `SERVICE_ID` the rule's slot does not take.
///
/// `service`: the request's `SERVICE_ID`, if it sent one; `amount`: its `PAY_AMOUNT`, signed
/// on ACT=4 when `rule.amount`. Which fields are signed follows from `rule` and `act` alone.
pub fn signature(
    rule: &SignRule,
    act: &str,
    account: &str,
    service: Option<&str>,
    pay_id: &str,
    amount: Option<&str>,
) -> Result<String, String> {
    let service = match (&rule.service, service) {
        (ServiceSlot::Sent, Some(sent)) => Some(sent),
        (ServiceSlot::Sent, None) => {
            return Err(
                "SERVICE_ID is missing: this system's SIGN covers the SERVICE_ID that \
                 24NonStop 2.20 and later send (terminals that send none: set service_id to \
                 the one they sign, or sign_service_id = false for 2.10 ones, which sign none)"
                    .into(),
            )
        }
        (ServiceSlot::Fixed(id), None) => Some(id.as_str()),
        (ServiceSlot::Fixed(id), Some(sent)) if sent == id => Some(id.as_str()),
        (ServiceSlot::Fixed(id), Some(sent)) => {
            return Err(format!(
                "SERVICE_ID '{}' is not this system's service_id '{id}'",
                clean(sent)
            ))
        }
        (ServiceSlot::Absent, None) => None,
        (ServiceSlot::Absent, Some(_)) => {
            return Err(
                "SERVICE_ID is sent, but this system's SIGN has no place for it \
                 (sign_service_id = false, 24NonStop 2.10), so nothing vouches for it; \
                 remove sign_service_id = false if the terminals are 2.20 or later"
                    .into(),
            )
        }
    };
    let field = |name, value, may_be_empty| Part {
        name,
        value,
        may_be_empty,
    };
    // PAY_ACCOUNT is empty on ACT=7; on ACT=1 and 4 a missing one is refused after the
    // signature, as a bad account.
    let mut parts = vec![
        field("ACT", act, false),
        field("PAY_ACCOUNT", account, true),
    ];
    if let Some(service) = service {
        parts.push(field("SERVICE_ID", service, false));
    }
    parts.push(field("PAY_ID", pay_id, false));
    if act == "4" && rule.amount {
        // A missing PAY_AMOUNT is refused after the signature, as a bad sum.
        parts.push(field("PAY_AMOUNT", amount.unwrap_or(""), true));
    }
    let text = sign::joined(&parts, '_', &rule.secret)?;
    let digest: Vec<u8> = match rule.hash {
        SignHash::Md5 => Md5::digest(text.as_bytes()).to_vec(),
        SignHash::Sha1 => Sha1::digest(text.as_bytes()).to_vec(),
        // The config refuses sha256 for 24NonStop; SHA-1's the nearest, never used.
        SignHash::Sha256 => sha2::Sha256::digest(text.as_bytes()).to_vec(),
    };
    Ok(digest.iter().map(|b| format!("{b:02X}")).collect())
}

/// Equal texts, compared in time that does not depend on where they differ.
fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::get as request;

    fn post_xml(body: &str) -> Request {
        crate::protocol::testing::post("text/xml", body)
    }
    use crate::domain::{AccountKey, AccountRule};
    use crate::outcome::Subscriber;
    use chrono::NaiveDateTime;

    fn rule(hash: SignHash, amount: bool) -> SignRule {
        SignRule {
            secret: "guessmeifyoucan".into(),
            hash,
            amount,
            service: ServiceSlot::Sent,
        }
    }

    #[test]
    fn signatures_match_the_protocol_vectors() {
        // (ACT, PAY_ACCOUNT, amount signed, SIGN); SERVICE_ID=Internet, PAY_ID=12345.
        let table: &[(&str, &str, bool, &str)] = &[
            ("1", "1", false, "F4815904D4C731A3E89A0C009A1EDDEE"),
            ("4", "1", false, "EAFE0622EF7573BA7B488455FB9D997C"),
            ("4", "1", true, "3D141DF13345B3949E9D7A683A685077"),
            ("7", "", false, "33DEE597D5F5E769ECBB713B0A3AE174"),
            // ACT=1 signs no amount, whatever sign_amount says.
            ("1", "1", true, "F4815904D4C731A3E89A0C009A1EDDEE"),
        ];
        for (act, acc, amount, want) in table {
            let md5 = rule(SignHash::Md5, *amount);
            let got = signature(&md5, act, acc, Some("Internet"), "12345", Some("10.00"));
            assert_eq!(got.as_deref(), Ok(*want), "{act}");
            // The configured service id signs the same text, sent or not.
            let fixed = SignRule {
                service: ServiceSlot::Fixed("Internet".into()),
                ..md5.clone()
            };
            for sent in [None, Some("Internet")] {
                let got = signature(&fixed, act, acc, sent, "12345", Some("10.00"));
                assert_eq!(got.as_deref(), Ok(*want), "{act} {sent:?}");
            }
        }
        let sha1 = rule(SignHash::Sha1, true);
        assert_eq!(
            signature(&sha1, "4", "1", Some("Internet"), "12345", Some("10.00")).as_deref(),
            Ok("AFB23CB3E713BB8A980B96DF1FEA6F48BDF49454")
        );
        // 2.10: no slot at all ("4_1_12345_guessmeifyoucan").
        let old = SignRule {
            service: ServiceSlot::Absent,
            ..rule(SignHash::Md5, false)
        };
        assert_eq!(
            signature(&old, "4", "1", None, "12345", None),
            Ok(format!("{:X}", Md5::digest(b"4_1_12345_guessmeifyoucan")))
        );
    }

    /// The class of issue 17: a SIGN is over a string, so no signed field may hold `_` and
    /// the service slot is the config's, or one SIGN signs requests with text moved
    /// between fields.
    #[test]
    fn no_two_requests_share_a_signed_text() {
        let sent = rule(SignHash::Md5, false);
        let fixed = SignRule {
            service: ServiceSlot::Fixed("Internet".into()),
            ..sent.clone()
        };
        let old = SignRule {
            service: ServiceSlot::Absent,
            ..sent.clone()
        };
        let two_click = rule(SignHash::Md5, true);
        // (rule, PAY_ACCOUNT, SERVICE_ID, PAY_ID, PAY_AMOUNT): each could be the text of
        // another request; none gets a SIGN.
        let table: &[(&SignRule, &str, Option<&str>, &str, &str)] = &[
            (&sent, "1", None, "Internet_G", "10.00"),
            (&sent, "ivan", Some("x"), "Internet_G", "10.00"),
            (&sent, "ivan", Some("x_Internet"), "G", "10.00"),
            (&sent, "ivan_x", Some("Internet"), "G", "10.00"),
            (&sent, "1", Some(""), "G", "10.00"),
            (&fixed, "1", Some("TV"), "G", "10.00"),
            (&fixed, "1", None, "x_G", "10.00"),
            (&old, "ivan", None, "x_G", "10.00"),
            (&old, "ivan_x", None, "G", "10.00"),
            (&old, "1", Some("Internet"), "G", "10.00"),
            (&two_click, "1", Some("Internet"), "G", "10_00"),
            (&two_click, "1", None, "Internet_G", "10.00"),
        ];
        for (rule, account, service, pay_id, amount) in table {
            let r = signature(rule, "4", account, *service, pay_id, Some(amount));
            assert!(r.is_err(), "{account} {service:?} {pay_id} {amount}: {r:?}");
        }
        let why = signature(&sent, "4", "1", None, "G", None).unwrap_err();
        assert!(why.contains("sign_service_id = false"), "{why}");
    }

    fn parse_with(req: &Request, sign: Option<&SignRule>) -> Result<Command, Refusal> {
        let accounts = AccountRule::new(AccountKey::Id);
        let now = NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap();
        let ctx = ParseContext {
            account: &accounts,
            now,
            test: false,
            sign,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        Nonstop24.parse(req, &ctx)
    }

    fn signed(act: &str, acc: &str, amount: &str, rule: &SignRule) -> String {
        let sign = signature(rule, act, acc, Some("Internet"), "12345", Some(amount)).unwrap();
        format!("ACT={act}&PAY_ACCOUNT={acc}&SERVICE_ID=Internet&PAY_ID=12345&PAY_AMOUNT={amount}&SIGN={sign}")
    }

    #[test]
    fn requests_parse_like_the_protocol_table() {
        let md5 = rule(SignHash::Md5, false);
        let check = parse_with(&request(&signed("1", "5907", "", &md5)), Some(&md5)).unwrap();
        assert!(
            matches!(check, Command::Check(Check { txn_id: Some(ref t), .. }) if t.as_str() == "12345")
        );
        let pay = parse_with(&request(&signed("4", "5907", "10.00", &md5)), Some(&md5)).unwrap();
        let Command::Pay(pay) = pay else {
            panic!("{pay:?}")
        };
        assert_eq!(pay.sum, Amount::from_kopecks(1000));
        assert_eq!(pay.txn_date.sql(), "2026-11-22 10:00:00");
        let status = parse_with(&request(&signed("7", "", "", &md5)), Some(&md5)).unwrap();
        assert!(matches!(status, Command::Status(_)));
        // 2click: the amount is signed too, with SHA-1.
        let sha1 = rule(SignHash::Sha1, true);
        assert!(parse_with(&request(&signed("4", "5907", "10.00", &sha1)), Some(&sha1)).is_ok());
        // Lower-case hex is the same signature.
        let good = signed("1", "5907", "", &md5);
        let (head, sign) = good.split_once("SIGN=").unwrap();
        let lower = format!("{head}SIGN={}", sign.to_ascii_lowercase());
        assert!(parse_with(&request(&lower), Some(&md5)).is_ok(), "{lower}");
    }

    #[test]
    fn bad_or_missing_signatures_are_refused_first() {
        let md5 = rule(SignHash::Md5, false);
        let good = signed("4", "5907", "10.00", &md5);
        let table = [
            good.replace("SIGN=", "SIGN=0"),
            good.replace("PAY_ACCOUNT=5907", "PAY_ACCOUNT=5908"),
            good.replace("PAY_ID=12345", "PAY_ID=12346"),
            good.split("&SIGN=").next().unwrap().to_string(),
            // The amount is not signed in 2.20, but a wrong account with a bad sum is still
            // a bad signature, not a bad sum: nothing is judged before the signature.
            good.replace("PAY_ACCOUNT=5907", "PAY_ACCOUNT=x")
                .replace("PAY_AMOUNT=10.00", "PAY_AMOUNT=abc"),
            // The same signed text, "4_5907_Internet_12345", with SERVICE_ID moved into
            // PAY_ID: a new payment id, were it admitted. Percent-encoded, the same.
            good.replace("SERVICE_ID=Internet&PAY_ID=12345", "PAY_ID=Internet_12345")
                .replace("PAY_AMOUNT=10.00", "PAY_AMOUNT=5000.00"),
            good.replace(
                "SERVICE_ID=Internet&PAY_ID=12345",
                "PAY_ID=Internet%5F12345",
            ),
            good.replace(
                "PAY_ACCOUNT=5907&SERVICE_ID=Internet",
                "PAY_ACCOUNT=5907_Internet",
            ),
        ];
        for query in table {
            let r = parse_with(&request(&query), Some(&md5));
            assert!(matches!(r, Err(Refusal::BadSignature(_))), "{query}: {r:?}");
        }
        // sign = "none": not checked at all.
        assert!(parse_with(&request("ACT=1&PAY_ACCOUNT=5907&PAY_ID=1"), None).is_ok());
    }

    #[test]
    fn bad_input_gets_the_protocols_codes() {
        let cases: &[(&str, i32)] = &[
            ("ACT=2&PAY_ID=1&PAY_ACCOUNT=5907", -101),
            ("PAY_ID=1", -101),
            ("ACT=1&PAY_ID=&PAY_ACCOUNT=5907", -101),
            ("ACT=1&PAY_ID=a%20b&PAY_ACCOUNT=5907", -101),
            ("ACT=1&PAY_ID=1", -40),
            ("ACT=1&PAY_ID=1&PAY_ACCOUNT=x", -40),
            ("ACT=4&PAY_ID=1&PAY_ACCOUNT=5907", -42),
            ("ACT=4&PAY_ID=1&PAY_ACCOUNT=5907&PAY_AMOUNT=1,5", -42),
            (
                "ACT=4&PAY_ID=1&PAY_ACCOUNT=5907&PAY_AMOUNT=99999999999999999999",
                -42,
            ),
            ("ACT=1&ACT=4&PAY_ID=1&PAY_ACCOUNT=5907", -101),
        ];
        for (query, want) in cases {
            let refusal = parse_with(&request(query), None).unwrap_err();
            assert_eq!(
                code(&Outcome::Refused(refusal.clone())).0,
                *want,
                "{query}: {refusal:?}"
            );
        }
    }

    #[test]
    fn xml_requests_are_the_same_fields() {
        let body =
            "<?xml version=\"1.0\"?><pay-request><act>4</act><pay_account>5907</pay_account>\
                    <pay_id>12345</pay_id><pay_amount>10.00</pay_amount></pay-request>";
        let Command::Pay(pay) = parse_with(&post_xml(body), None).unwrap() else {
            panic!()
        };
        assert_eq!(pay.sum, Amount::from_kopecks(1000));
        let echo = Nonstop24.echo(&post_xml(body));
        assert_eq!(
            (echo.command.as_str(), echo.txn_id.as_str()),
            ("pay", "12345")
        );
        for bad in [
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><pay-request><act>&a;</act></pay-request>",
            "<other><act>1</act></other>",
            "<pay-request><act>1</act>",
            "<pay-request><act><b>1</b></act></pay-request>",
        ] {
            let r = parse_with(&post_xml(bad), None);
            assert!(matches!(r, Err(Refusal::BadRequest(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn answers_are_pay_responses() {
        let echo = Nonstop24.echo(&request(
            "ACT=1&PAY_ACCOUNT=%3Cx%3E&SERVICE_ID=Internet&PAY_ID=12345",
        ));
        let reply = Nonstop24.render(
            &echo,
            &Outcome::Checked {
                subscriber: Subscriber {
                    id: 5907,
                    name: "Ив*** И***".into(),
                    balance: Some(Amount::from_kopecks(-350)),
                    group: None,
                    account: None,
                },
                sum: None,
                limits: (Amount::from_kopecks(100), Amount::from_kopecks(1_500_000)),
            },
        );
        let body = &reply.response.body;
        for part in [
            "<balance>-3.50</balance>",
            "<name>Ив*** И***</name>",
            "<account>&lt;x&gt;</account>",
            "<service_id>Internet</service_id>",
            "<min_amount>1.00</min_amount>",
            "<max_amount>15000.00</max_amount>",
            "<status_code>21</status_code>",
        ] {
            assert!(body.contains(part), "{part} in {body}");
        }
        assert_eq!(reply.result, "21");
        let paid = Nonstop24.render(
            &Nonstop24.echo(&request("ACT=4&PAY_ID=12345&SERVICE_ID=Internet")),
            &Outcome::Paid {
                prv_txn: 7,
                sum: Amount::from_kopecks(1000),
                repeat: true,
            },
        );
        assert!(
            paid.response.body.contains(
                "<pay_id>12345</pay_id><service_id>Internet</service_id><amount>10.00</amount>"
            ),
            "{}",
            paid.response.body
        );
        assert!(paid.response.body.contains("<status_code>22</status_code>"));
        let found = Nonstop24.render(
            &Nonstop24.echo(&request("ACT=7&PAY_ID=12345")),
            &Outcome::Found {
                prv_txn: 7,
                sum: Amount::from_kopecks(1000),
                cancelled: false,
            },
        );
        assert!(found
            .response
            .body
            .contains("<status_code>11</status_code>"));
        assert!(found.response.body.contains("<transaction><pay_id>12345</pay_id><service_id></service_id><amount>10.00</amount><status>111</status></transaction>"), "{}", found.response.body);
        let failed = Nonstop24.render(
            &echo,
            &Outcome::Failed(crate::outcome::Fault::DatabaseWrite("x".into())),
        );
        assert!(failed
            .response
            .body
            .contains("<status_code>-90</status_code>"));
    }
}
