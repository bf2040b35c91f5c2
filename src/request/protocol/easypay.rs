//! EasyPay's provider protocol 3.1 (Ukraine), as ABillS's Easypay module takes it
//! (`../shared/PROTOCOLS.md`, section 3).
//!
//! Request: a POSTed XML `<Request>` with `<DateTime>`, `<Sign>` and one operation:
//!
//! * `<Check><ServiceId/><Account/></Check>`: who is this? Answered with `<AccountInfo>`:
//!   the masked name and the balance.
//! * `<Payment><ServiceId/><OrderId/><Account/><Amount/></Payment>`: book an order.
//!   Nothing is credited; the answer's `<PaymentId>` names the booking (`paysys_order`),
//!   and a repeat of the same `OrderId`, account and sum gets the same one.
//! * `<Confirm><ServiceId/><PaymentId/></Confirm>`: pay the booked order — exactly once,
//!   through `paysys_txn` with the `OrderId` as its txn id. A repeat answers 0 again.
//! * `<Cancel><ServiceId/><PaymentId/></Cancel>`: reverse the order's payment if it was
//!   confirmed, else make sure it never will be.
//!
//! `<Sign>` is the upper-case hex of an RSA signature (PKCS#1 v1.5, SHA-1 unless
//! `sign = "sha256"`) over the request exactly as received with the `<Sign>` element's
//! content removed, checked with the public key of the certificate EasySoft issues
//! (`certificate = "…"`); a bad or missing one is refused (-5) before anything is looked
//! up. With `private_key = "…"` every answer is signed the same way with our key. The
//! signed bytes are the most likely reading of a specification no public source confirms:
//! `paysys easypay-verify REQUEST.xml` tells whether a captured request verifies before
//! going live.
//!
//! Answer: `<Response>` with `<StatusCode>` (0 OK; -1 no such account, -2 refused, -3 the
//! order id was booked with another account or sum, -4 no such payment, -5 bad signature,
//! -6 bad request, -10 our temporary error: ask again), `<StatusDetail>`, `<DateTime>`,
//! `<Sign>`, and the operation's element.

use std::path::Path;

use chrono::Local;
use quick_xml::events::Event;
use quick_xml::Reader;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::cgi::Request;
use crate::config::{ProtocolKind, RsaRule, SignHash, System};
use crate::domain::{Account, Amount, AmountError, TxnId};
use crate::outcome::{Booking, Check, Command, Echo, OrderRef, Outcome, Refusal};
use crate::protocol::osmp::{clean, clean_long, push_element};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Easypay;

/// `StatusCode` and `StatusDetail` for every ending.
pub fn code(outcome: &Outcome) -> (i32, &'static str) {
    match outcome {
        Outcome::Checked { .. }
        | Outcome::Booked { .. }
        | Outcome::Paid { .. }
        | Outcome::Found { .. }
        | Outcome::Cancelled { .. }
        | Outcome::Listed(_) => (0, "OK"),
        Outcome::Noted { .. } | Outcome::LookedUp { .. } => (-3, "Not supported"),
        Outcome::Refused(refusal) => match refusal {
            Refusal::NoSuchSubscriber | Refusal::BadAccount(_) => (-1, "Account not found"),
            Refusal::AccountInactive
            | Refusal::PaymentsDisabled
            | Refusal::HookRefused(_)
            | Refusal::NoBill
            | Refusal::PaidThenCancelled { .. }
            | Refusal::CancelNotSupported(_)
            | Refusal::SumBelowMin { .. }
            | Refusal::SumAboveMax { .. }
            | Refusal::SumTooLarge(_)
            | Refusal::CallerNotAllowed => (-2, "Payment refused"),
            Refusal::Conflict { .. } => (-3, "Order exists with another account or amount"),
            Refusal::UnknownTxn | Refusal::CancelUnknown(_) => (-4, "Payment not found"),
            Refusal::BadSignature(_) => (-5, "Wrong signature"),
            Refusal::NoCommand(_)
            | Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadSum(_)
            | Refusal::BadTxnDate(_)
            | Refusal::TxnDateOutOfWindow { .. }
            | Refusal::BadDomain(_) => (-6, "Bad request"),
        },
        Outcome::Failed(_) => (-10, "Temporary error, try again later"),
    }
}

/// The request's operation and fields.
#[derive(Debug, Default)]
struct Read {
    operation: String,
    fields: Vec<(String, String)>,
}

impl Read {
    fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// The request body as text: UTF-8, or Windows-1251 (EasyPay may declare it).
fn text(request: &Request) -> Result<(Vec<u8>, String), Refusal> {
    let body = request
        .body
        .as_ref()
        .map_err(|e| Refusal::BadRequest(e.0.clone()))?;
    if body.is_empty() {
        return Err(Refusal::NoCommand(String::new()));
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t.to_string(),
        Err(_) => crate::cp1251::decode(body),
    };
    Ok((body.clone(), text))
}

fn read(text: &str) -> Result<Read, Refusal> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut r = Read::default();
    let bad = |e: quick_xml::Error| Refusal::BadRequest(format!("XML body: {e}"));
    loop {
        match reader.read_event().map_err(bad)? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match path.len() {
                    0 if name != "Request" => {
                        return Err(Refusal::BadRequest(
                            "the XML body is not a <Request>".into(),
                        ))
                    }
                    1 if matches!(name.as_str(), "Check" | "Payment" | "Confirm" | "Cancel") => {
                        if !r.operation.is_empty() {
                            return Err(Refusal::BadRequest("more than one operation".into()));
                        }
                        r.operation = name.clone();
                    }
                    _ if path.len() > 3 => {
                        return Err(Refusal::BadRequest("the <Request> nests too deep".into()))
                    }
                    _ => {}
                }
                path.push(name);
                value.clear();
            }
            Event::Text(t) => value.push_str(&t.unescape().map_err(bad)?),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                if path.len() == 2 && r.fields.len() < 32 {
                    r.fields
                        .push((name, std::mem::take(&mut value).trim().to_string()));
                }
                value.clear();
            }
            Event::DocType(_) => {
                return Err(Refusal::BadRequest("a DOCTYPE in the XML body".into()))
            }
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err(Refusal::BadRequest("the XML body ends early".into())),
            _ => {}
        }
    }
    Ok(r)
}

/// The bytes a signature covers: the document with the `<Sign>` element's content
/// removed, and that content (the signature's hex).
pub fn signed_part(body: &[u8]) -> Option<(Vec<u8>, String)> {
    let open = find(body, b"<Sign>")? + b"<Sign>".len();
    let close = open + find(&body[open..], b"</Sign>")?;
    let mut signed = body[..open].to_vec();
    signed.extend_from_slice(&body[close..]);
    let hex = String::from_utf8_lossy(&body[open..close])
        .trim()
        .to_string();
    Some((signed, hex))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The public key of a certificate file (PEM or DER), or why not.
pub fn load_certificate(path: &Path) -> Result<RsaPublicKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cert = x509_cert::Certificate::from_pem(&bytes)
        .or_else(|_| x509_cert::Certificate::from_der(&bytes))
        .map_err(|e| {
            format!(
                "{}: not an X.509 certificate (PEM or DER): {e}",
                path.display()
            )
        })?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| format!("{}: not an RSA key: {e}", path.display()))
}

/// A private key file (PEM, PKCS#8 or PKCS#1), or why not.
pub fn load_private_key(path: &Path) -> Result<RsaPrivateKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    RsaPrivateKey::from_pkcs8_pem(&text)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            RsaPrivateKey::from_pkcs1_pem(&text)
        })
        .map_err(|e| format!("{}: not an RSA private key in PEM: {e}", path.display()))
}

/// Whether `hex` is `key`'s signature of `message` with `hash`.
pub fn verify(key: &RsaPublicKey, hash: SignHash, message: &[u8], hex: &str) -> Result<(), String> {
    let bytes = decode_hex(hex).ok_or("the Sign is not hexadecimal")?;
    let signature = Signature::try_from(bytes.as_slice()).map_err(|e| e.to_string())?;
    let checked = match hash {
        SignHash::Sha256 => {
            VerifyingKey::<sha2::Sha256>::new(key.clone()).verify(message, &signature)
        }
        _ => VerifyingKey::<sha1::Sha1>::new(key.clone()).verify(message, &signature),
    };
    checked.map_err(|_| "the Sign does not verify with the system's certificate".to_string())
}

/// `key`'s signature of `message`, upper-case hex.
pub fn sign(key: &RsaPrivateKey, hash: SignHash, message: &[u8]) -> String {
    let bytes = match hash {
        SignHash::Sha256 => SigningKey::<sha2::Sha256>::new(key.clone())
            .sign(message)
            .to_vec(),
        _ => SigningKey::<sha1::Sha1>::new(key.clone())
            .sign(message)
            .to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Protocol for Easypay {
    fn secrets(&self) -> &'static [&'static str] {
        &["Sign"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Easypay
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        if let Ok(r) = text(request).and_then(|(_, t)| read(&t)) {
            echo.command = match r.operation.as_str() {
                "Check" => "check",
                "Payment" => "book",
                "Confirm" => "pay",
                "Cancel" => "cancel",
                _ => "",
            }
            .to_string();
            echo.txn_id = match r.operation.as_str() {
                "Payment" => r.get("OrderId").to_string(),
                _ => r.get("PaymentId").to_string(),
            };
            echo.account = r.get("Account").to_string();
            echo.sum = r.get("Amount").to_string();
            echo.params = r.fields.clone();
            echo.params
                .insert(0, ("operation".into(), r.operation.clone()));
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let (raw, text) = text(request)?;
        let r = read(&text)?;
        // The signature first: an unsigned request learns nothing.
        if let Some(rule) = ctx.rsa {
            let (signed, hex) = signed_part(&raw)
                .ok_or_else(|| Refusal::BadSignature("no <Sign> in the request".into()))?;
            let key = load_certificate(&rule.certificate).map_err(|e| {
                Refusal::BadSignature(format!("the system's certificate cannot be used: {e}"))
            })?;
            verify(&key, rule.hash, &signed, &hex).map_err(Refusal::BadSignature)?;
            // EasySoft signs for every provider with one key: a genuine request for another
            // provider's service verifies too. With service_id set, it is refused.
            if let Some(ours) = &rule.service_id {
                let named = r.get("ServiceId");
                if named != ours {
                    return Err(Refusal::BadSignature(format!(
                        "the request is signed for ServiceId '{}', not this system's \
                         service_id '{ours}'",
                        clean(named)
                    )));
                }
            }
        }
        let account = || -> Result<Account, Refusal> {
            match r.get("Account") {
                "" => Err(Refusal::BadAccount("Account is missing".into())),
                t => Account::parse_by(t, ctx.account).map_err(Refusal::BadAccount),
            }
        };
        let payment_id = || -> Result<OrderRef, Refusal> {
            let t = r.get("PaymentId");
            t.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(OrderRef::ours)
                .ok_or_else(|| {
                    Refusal::BadTxnId(format!("PaymentId '{}' is not our number", clean(t)))
                })
        };
        match r.operation.as_str() {
            "Check" => Ok(Command::Check(Check {
                txn_id: None,
                account: account()?,
                sum: None,
            })),
            "Payment" => {
                let order_id = TxnId::parse_token(r.get("OrderId"))
                    .map_err(|e| Refusal::BadTxnId(format!("OrderId: {e}")))?;
                let account = account()?;
                let text = r.get("Amount");
                let sum = Amount::parse(text).map_err(|e| match e {
                    AmountError::TooLarge => Refusal::SumTooLarge(format!("Amount '{text}': {e}")),
                    AmountError::Malformed(why) => {
                        Refusal::BadSum(format!("Amount '{text}': {why}"))
                    }
                })?;
                Ok(Command::Book(Booking {
                    order_id,
                    account,
                    sum,
                    at: None,
                }))
            }
            "Confirm" => Ok(Command::Confirm(payment_id()?)),
            "Cancel" => Ok(Command::Unbook(payment_id()?)),
            _ => Err(Refusal::NoCommand(String::new())),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let (status, detail) = code(outcome);
        let now = Local::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut xml = String::with_capacity(384);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
        push_element(&mut xml, "StatusCode", &status.to_string());
        push_element(&mut xml, "StatusDetail", detail);
        push_element(&mut xml, "DateTime", &now);
        xml.push_str("<Sign></Sign>");
        match outcome {
            Outcome::Checked { subscriber, .. } => {
                xml.push_str("<AccountInfo>");
                push_element(&mut xml, "Name", &clean_long(&subscriber.name));
                let balance = subscriber
                    .balance
                    .map(|b| b.to_string())
                    .unwrap_or_default();
                push_element(&mut xml, "Balance", &balance);
                xml.push_str("</AccountInfo>");
            }
            Outcome::Booked { payment_id, .. } => {
                push_element(&mut xml, "PaymentId", &payment_id.to_string());
            }
            Outcome::Paid { .. } => push_element(&mut xml, "OrderDate", &now),
            Outcome::Cancelled { .. } => push_element(&mut xml, "CancelDate", &now),
            _ => {}
        }
        xml.push_str("</Response>\n");
        let _ = echo;
        Reply::xml(xml, outcome, status.to_string(), detail.to_string())
    }

    fn seal(&self, mut reply: Reply, system: &System) -> Result<Reply, (Reply, String)> {
        let Some(RsaRule {
            private_key: Some(path),
            hash,
            ..
        }) = system.rsa()
        else {
            return Ok(reply);
        };
        let key = match load_private_key(path) {
            Ok(k) => k,
            Err(e) => return Err((reply, e)),
        };
        let body = &reply.response.body;
        let signature = sign(&key, *hash, body.as_bytes());
        reply.response.body =
            body.replacen("<Sign></Sign>", &format!("<Sign>{signature}</Sign>"), 1);
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountKey, AccountRule};
    use chrono::NaiveDateTime;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/easypay")
            .join(name)
    }

    /// A request as EasySoft signs it: the document with `<Sign></Sign>`, signed, the hex
    /// put in.
    fn signed_request(operation: &str) -> String {
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Request><DateTime>2026-11-22T10:00:00</DateTime>\
             <Sign></Sign>{operation}</Request>"
        );
        let key = load_private_key(&fixture("easysoft.key")).unwrap();
        let hex = sign(&key, SignHash::Sha1, doc.as_bytes());
        doc.replace("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"))
    }

    fn parse(body: &str, rsa: Option<&RsaRule>) -> Result<Command, Refusal> {
        let rule = AccountRule::new(AccountKey::Id);
        let now = NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap();
        let ctx = ParseContext {
            account: &rule,
            now,
            test: false,
            sign: None,
            rsa,
            card: None,
            monobank_key: None,
        };
        Easypay.parse(&crate::protocol::testing::post("text/xml", body), &ctx)
    }

    fn rule() -> RsaRule {
        RsaRule {
            certificate: fixture("easysoft.cer"),
            private_key: Some(fixture("provider.key")),
            hash: SignHash::Sha1,
            service_id: None,
        }
    }

    #[test]
    fn operations_parse_when_signed() {
        let rule = rule();
        let pay = signed_request(
            "<Payment><ServiceId>1220</ServiceId><OrderId>352862406</OrderId><Account>5907</Account>\
             <Amount>100.00</Amount><ObjectId>1004</ObjectId></Payment><Token>Gq</Token>",
        );
        let Ok(Command::Book(b)) = parse(&pay, Some(&rule)) else {
            panic!("{:?}", parse(&pay, Some(&rule)))
        };
        assert_eq!(
            (b.order_id.as_str(), b.sum),
            ("352862406", Amount::from_kopecks(10000))
        );
        let confirm =
            signed_request("<Confirm><ServiceId>1</ServiceId><PaymentId>7</PaymentId></Confirm>");
        assert_eq!(
            parse(&confirm, Some(&rule)),
            Ok(Command::Confirm(OrderRef::ours(7)))
        );
        let cancel =
            signed_request("<Cancel><ServiceId>1</ServiceId><PaymentId>7</PaymentId></Cancel>");
        assert_eq!(
            parse(&cancel, Some(&rule)),
            Ok(Command::Unbook(OrderRef::ours(7)))
        );
        let check =
            signed_request("<Check><ServiceId>1</ServiceId><Account>5907</Account></Check>");
        assert!(matches!(parse(&check, Some(&rule)), Ok(Command::Check(_))));
    }

    #[test]
    fn bad_or_missing_signatures_are_refused_first() {
        let rule = rule();
        let good = signed_request("<Check><ServiceId>1</ServiceId><Account>5907</Account></Check>");
        for bad in [
            good.replace("<Account>5907</Account>", "<Account>5908</Account>"),
            good.replace("<Sign>", "<Sign>00"),
            good.split("<Sign>").next().unwrap().to_string()
                + "<Sign></Sign><Check><Account>x</Account></Check></Request>",
            good.replace("<Sign>", "<X>").replace("</Sign>", "</X>"),
        ] {
            let r = parse(&bad, Some(&rule));
            assert!(matches!(r, Err(Refusal::BadSignature(_))), "{bad}: {r:?}");
        }
        // Signed by someone else (our own key is not EasySoft's).
        let other = RsaRule {
            certificate: fixture("provider.cer"),
            ..rule.clone()
        };
        assert!(matches!(
            parse(&good, Some(&other)),
            Err(Refusal::BadSignature(_))
        ));
        let missing = RsaRule {
            certificate: fixture("nonexistent.cer"),
            ..rule
        };
        let r = parse(&good, Some(&missing));
        assert!(
            matches!(&r, Err(Refusal::BadSignature(why)) if why.contains("certificate")),
            "{r:?}"
        );
    }

    #[test]
    fn bad_requests_get_codes() {
        let table: &[(&str, i32)] = &[
            ("", -6),
            ("<Other/>", -6),
            ("<Request><Sign></Sign></Request>", -6),
            ("<!DOCTYPE x><Request/>", -6),
            ("<Request><Check><Account>x</Account></Check></Request>", -1),
            ("<Request><Payment><OrderId>1</OrderId><Account>5907</Account><Amount>1,00</Amount></Payment></Request>", -6),
            ("<Request><Payment><OrderId></OrderId><Account>5907</Account><Amount>1</Amount></Payment></Request>", -6),
            ("<Request><Confirm><PaymentId>x</PaymentId></Confirm></Request>", -6),
            ("<Request><Check/><Confirm/></Request>", -6),
        ];
        for (body, want) in table {
            let r = parse(body, None).unwrap_err();
            assert_eq!(code(&Outcome::Refused(r.clone())).0, *want, "{body}: {r:?}");
        }
    }

    #[test]
    fn answers_are_signed_with_our_key() {
        let echo = Easypay.echo(&crate::protocol::testing::post(
            "text/xml",
            "<Request><Payment><OrderId>1</OrderId></Payment></Request>",
        ));
        let reply = Easypay.render(
            &echo,
            &Outcome::Booked {
                payment_id: 42,
                repeat: false,
            },
        );
        assert!(reply.response.body.contains("<StatusCode>0</StatusCode>"));
        assert!(reply.response.body.contains("<PaymentId>42</PaymentId>"));
        let key = load_private_key(&fixture("provider.key")).unwrap();
        let hex = sign(&key, SignHash::Sha1, reply.response.body.as_bytes());
        let sealed =
            reply
                .response
                .body
                .replacen("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"), 1);
        let (signed, found) = signed_part(sealed.as_bytes()).unwrap();
        assert_eq!(found, hex);
        let cert = load_certificate(&fixture("provider.cer")).unwrap();
        assert_eq!(verify(&cert, SignHash::Sha1, &signed, &found), Ok(()));
        assert!(verify(&cert, SignHash::Sha256, &signed, &found).is_err());
    }
}
