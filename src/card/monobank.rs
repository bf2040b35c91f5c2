//! Monobank acquiring ("plata by mono"): invoice/create, the webhook, the merchant's public
//! key and the invoice status API. `../shared/PROTOCOLS.md` §7 has the sources.
//!
//! A webhook's body is the invoice status object; its `X-Sign` header is base64 of a DER
//! ECDSA P-256 / SHA-256 signature over the **raw body bytes**, so it is verified before the
//! body is parsed, and never over a re-serialized copy. Webhooks may come out of order (a
//! `success` before a `processing`): [`Invoice::modified_date`] says which is newer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    body_text, clip, from_json, malformed, scalar_text, ApiRefusal, Error, Provider, MAX_BODY,
};
use crate::domain::Amount;

const P: Provider = Provider::Monobank;

/// ISO 4217 numeric code of the hryvnia, Monobank's `ccy` for UAH.
pub const UAH: u16 = 980;

/// The invoice to create (POST its [`invoice_create_body`] to
/// `/api/merchant/invoice/create` with the `X-Token` header).
#[derive(Debug, Clone)]
pub struct InvoiceRequest<'a> {
    pub amount: Amount,
    /// ISO 4217 numeric, [`UAH`] usually.
    pub ccy: u16,
    /// Our order id: comes back in every webhook and status answer.
    pub reference: &'a str,
    /// What the payer sees as the purpose.
    pub destination: &'a str,
    /// Where the browser returns.
    pub redirect_url: &'a str,
    /// Where Monobank posts the webhooks.
    pub web_hook_url: &'a str,
    /// How long the invoice can be paid, in seconds (Monobank's default is 24 h).
    pub validity_secs: u32,
}

/// The JSON body of invoice/create. Refused when the amount is not positive or the
/// reference is empty.
pub fn invoice_create_body(request: &InvoiceRequest) -> Result<String, Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PaymInfo<'a> {
        reference: &'a str,
        destination: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        amount: i64,
        ccy: u16,
        merchant_paym_info: PaymInfo<'a>,
        redirect_url: &'a str,
        web_hook_url: &'a str,
        validity: u32,
        payment_type: &'a str,
    }
    if request.amount.kopecks() <= 0 {
        return Err(Error::Unsignable {
            provider: P,
            why: format!("amount {} is not positive", request.amount),
        });
    }
    if request.reference.is_empty() {
        return Err(Error::Unsignable {
            provider: P,
            why: "reference (our order id) is empty".to_string(),
        });
    }
    let body = Body {
        amount: request.amount.kopecks(),
        ccy: request.ccy,
        merchant_paym_info: PaymInfo {
            reference: request.reference,
            destination: request.destination,
        },
        redirect_url: request.redirect_url,
        web_hook_url: request.web_hook_url,
        validity: request.validity_secs,
        payment_type: "debit",
    };
    serde_json::to_string(&body).map_err(|e| malformed(P, e.to_string()))
}

/// What invoice/create answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateAnswer {
    /// Send the browser to `page_url`.
    Created {
        invoice_id: String,
        page_url: String,
    },
    /// `{errCode, errText}`: a bad token, a bad request.
    Refused(ApiRefusal),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateWire {
    invoice_id: Option<String>,
    page_url: Option<String>,
    err_code: Option<Box<RawValue>>,
    err_text: Option<String>,
}

/// Refusal `{errCode, errText}` if the answer is one.
fn refusal(
    err_code: &Option<Box<RawValue>>,
    err_text: &Option<String>,
) -> Result<Option<ApiRefusal>, Error> {
    match err_code {
        None => Ok(None),
        Some(raw) => {
            let code = scalar_text(raw).map_err(|e| malformed(P, format!("errCode: {e}")))?;
            Ok(Some(ApiRefusal {
                code,
                text: err_text.clone().unwrap_or_default(),
            }))
        }
    }
}

/// `http://` to this machine itself (127.0.0.0/8, `[::1]`, `localhost`): a browser sent
/// there never leaves the machine, so no one on the way can read or change the page. Only
/// a local stand-in of Monobank (a test's, a developer's) answers so; the real API's
/// `pageUrl` is always `https://`, and any other `http://` address is refused.
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        }
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// invoice/create's JSON answer.
pub fn parse_create_answer(body: &[u8]) -> Result<CreateAnswer, Error> {
    let text = body_text(P, "invoice/create answer", body)?;
    let wire: CreateWire = from_json(P, "invoice/create answer", text)?;
    if let Some(refused) = refusal(&wire.err_code, &wire.err_text)? {
        return Ok(CreateAnswer::Refused(refused));
    }
    match (wire.invoice_id, wire.page_url) {
        (Some(invoice_id), Some(page_url)) if !invoice_id.is_empty() && !page_url.is_empty() => {
            if !page_url.starts_with("https://") && !loopback_http(&page_url) {
                return Err(malformed(
                    P,
                    format!(
                        "invoice/create answered pageUrl '{}', not an https:// address",
                        clip(&page_url)
                    ),
                ));
            }
            Ok(CreateAnswer::Created {
                invoice_id,
                page_url,
            })
        }
        _ => Err(malformed(
            P,
            "invoice/create answer has neither invoiceId and pageUrl nor errCode",
        )),
    }
}

/// The merchant's public key for webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key as `GET /api/merchant/pubkey` gives it (`key`: base64 of a PEM), or the PEM
    /// itself (`-----BEGIN PUBLIC KEY-----`), as an admin may paste either into the config.
    pub fn parse(text: &str) -> Result<PublicKey, Error> {
        let key_error = |why: String| Error::Key { provider: P, why };
        let text = text.trim();
        if text.is_empty() {
            return Err(key_error("the public key is empty".to_string()));
        }
        let decoded;
        let pem = if text.starts_with("-----BEGIN") {
            text
        } else {
            let compact: String = text.split_ascii_whitespace().collect();
            decoded = BASE64.decode(compact.as_bytes()).map_err(|e| {
                key_error(format!(
                    "the public key is neither a PEM nor base64 of one ({e}): copy the `key` \
                     that GET /api/merchant/pubkey returns, as it is"
                ))
            })?;
            std::str::from_utf8(&decoded).map_err(|_| {
                key_error("the public key's base64 does not decode to a PEM (not text)".into())
            })?
        };
        let key = p256::PublicKey::from_public_key_pem(pem.trim()).map_err(|e| {
            key_error(format!(
                "the public key is not an EC P-256 public key PEM ({e}): copy the `key` that \
                 GET /api/merchant/pubkey returns, as it is"
            ))
        })?;
        Ok(PublicKey(VerifyingKey::from(key)))
    }
}

/// `GET /api/merchant/pubkey`'s JSON answer, `{"key": "<base64 of a PEM>"}`.
pub fn parse_pubkey_answer(body: &[u8]) -> Result<PublicKey, Error> {
    parse_pubkey_answer_text(body).map(|(_, key)| key)
}

/// As [`parse_pubkey_answer`], with the `key` text as Monobank gave it (what a cache keeps,
/// and [`PublicKey::parse`] reads back).
pub fn parse_pubkey_answer_text(body: &[u8]) -> Result<(String, PublicKey), Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        key: Option<String>,
        err_code: Option<Box<RawValue>>,
        err_text: Option<String>,
    }
    let text = body_text(P, "pubkey answer", body)?;
    let wire: Wire = from_json(P, "pubkey answer", text)?;
    if let Some(refused) = refusal(&wire.err_code, &wire.err_text)? {
        return Err(Error::Key {
            provider: P,
            why: format!(
                "pubkey API refused: {} {}: check the token in the config",
                clip(&refused.code),
                clip(&refused.text)
            ),
        });
    }
    match wire.key {
        Some(key) => {
            let parsed = PublicKey::parse(&key)?;
            Ok((key.trim().to_string(), parsed))
        }
        None => Err(malformed(P, "pubkey answer has no key")),
    }
}

/// An invoice's `status`. Final: `success` (the only one that credits), `failure`,
/// `reversed`, `expired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceStatus {
    Created,
    Processing,
    /// Money held, waiting for finalize (hold invoices only; ours are `debit`).
    Hold,
    Success,
    Failure,
    Reversed,
    Expired,
    /// A status Monobank added after this code was written: not final.
    Other(String),
}

impl InvoiceStatus {
    pub fn parse(text: &str) -> InvoiceStatus {
        match text {
            "created" => InvoiceStatus::Created,
            "processing" => InvoiceStatus::Processing,
            "hold" => InvoiceStatus::Hold,
            "success" => InvoiceStatus::Success,
            "failure" => InvoiceStatus::Failure,
            "reversed" => InvoiceStatus::Reversed,
            "expired" => InvoiceStatus::Expired,
            other => InvoiceStatus::Other(other.to_string()),
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            InvoiceStatus::Success
                | InvoiceStatus::Failure
                | InvoiceStatus::Reversed
                | InvoiceStatus::Expired
        )
    }

    pub fn as_str(&self) -> &str {
        match self {
            InvoiceStatus::Created => "created",
            InvoiceStatus::Processing => "processing",
            InvoiceStatus::Hold => "hold",
            InvoiceStatus::Success => "success",
            InvoiceStatus::Failure => "failure",
            InvoiceStatus::Reversed => "reversed",
            InvoiceStatus::Expired => "expired",
            InvoiceStatus::Other(t) => t,
        }
    }
}

/// The invoice status object: a webhook's body, or the status API's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub invoice_id: String,
    pub status: InvoiceStatus,
    /// The invoice's amount, in the currency `ccy`.
    pub amount: Amount,
    pub ccy: u16,
    /// What was actually paid (a partial reversal lowers it).
    pub final_amount: Option<Amount>,
    /// Our order id, from invoice/create.
    pub reference: Option<String>,
    pub created_date: Option<DateTime<Utc>>,
    /// When the status last changed: of two messages about one invoice, the later
    /// `modified_date` wins (see [`Invoice::supersedes`]).
    pub modified_date: DateTime<Utc>,
    pub failure_reason: Option<String>,
}

impl Invoice {
    /// Whether this message is newer than the one whose `modified_date` was `stored`. An
    /// equal date is the same change delivered again: not newer.
    pub fn supersedes(&self, stored: DateTime<Utc>) -> bool {
        self.modified_date > stored
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceWire {
    invoice_id: Option<String>,
    status: Option<String>,
    amount: Option<Box<RawValue>>,
    ccy: Option<Box<RawValue>>,
    final_amount: Option<Box<RawValue>>,
    reference: Option<String>,
    created_date: Option<String>,
    modified_date: Option<String>,
    failure_reason: Option<String>,
    err_code: Option<Box<RawValue>>,
    err_text: Option<String>,
}

/// Kopecks from a JSON integer (`4200`); a float, a string or a sign is refused.
fn kopecks(raw: &RawValue, name: &str) -> Result<Amount, Error> {
    let text = raw.get();
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            P,
            format!("{name} '{}' is not a whole number of kopecks", clip(text)),
        ));
    }
    // Up to 15 ASCII digits always fit an i64.
    let value = text
        .bytes()
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    Amount::from_minor_units(value)
        .map_err(|e| malformed(P, format!("{name} {value} kopecks: {e}")))
}

fn date(text: &str, name: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            malformed(
                P,
                format!("{name} '{}' is not an RFC 3339 time: {e}", clip(text)),
            )
        })
}

impl InvoiceWire {
    fn invoice(self, what: &str) -> Result<Invoice, Error> {
        let missing = |name: &str| malformed(P, format!("{what} has no {name}"));
        let invoice_id = self
            .invoice_id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| missing("invoiceId"))?;
        let status = match self.status.as_deref() {
            None | Some("") => return Err(missing("status")),
            Some(s) => InvoiceStatus::parse(s),
        };
        let amount = kopecks(
            self.amount.as_deref().ok_or_else(|| missing("amount"))?,
            "amount",
        )?;
        let ccy = self.ccy.as_deref().ok_or_else(|| missing("ccy"))?.get();
        let ccy = ccy
            .parse::<u16>()
            .ok()
            .filter(|_| ccy.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                malformed(
                    P,
                    format!("{what}: ccy '{}' is not a currency code", clip(ccy)),
                )
            })?;
        let final_amount = match self.final_amount.as_deref() {
            None => None,
            Some(raw) => Some(kopecks(raw, "finalAmount")?),
        };
        let created_date = match self.created_date.as_deref() {
            None | Some("") => None,
            Some(text) => Some(date(text, "createdDate")?),
        };
        let modified_date = match self.modified_date.as_deref() {
            None | Some("") => return Err(missing("modifiedDate")),
            Some(text) => date(text, "modifiedDate")?,
        };
        Ok(Invoice {
            invoice_id,
            status,
            amount,
            ccy,
            final_amount,
            reference: self.reference.filter(|r| !r.is_empty()),
            created_date,
            modified_date,
            failure_reason: self.failure_reason.filter(|r| !r.is_empty()),
        })
    }
}

/// The invoice status object, parsed. Use it only on a body that is verified
/// ([`verify_webhook`]) or that came from our own request to the status API.
pub fn parse_invoice(body: &[u8]) -> Result<Invoice, Error> {
    let text = body_text(P, "invoice", body)?;
    from_json::<InvoiceWire>(P, "invoice", text)?.invoice("invoice")
}

/// A webhook: `X-Sign` must be there and verify over the raw `body` with `key` before
/// the body is parsed.
pub fn verify_webhook(
    key: &PublicKey,
    x_sign: Option<&str>,
    body: &[u8],
) -> Result<Invoice, Error> {
    let x_sign = match x_sign.map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => {
            return Err(Error::Unsigned {
                provider: P,
                field: "X-Sign header",
            })
        }
    };
    if body.len() > MAX_BODY {
        return Err(Error::TooLarge {
            provider: P,
            len: body.len(),
        });
    }
    let forged = Error::Forged {
        provider: P,
        field: "X-Sign",
        check: "Monobank changed its key: fetch it again (GET /api/merchant/pubkey) and \
                compare with the pubkey in the config",
    };
    let der = BASE64
        .decode(x_sign.as_bytes())
        .map_err(|_| forged.clone())?;
    let signature = Signature::from_der(&der).map_err(|_| forged.clone())?;
    key.0.verify(body, &signature).map_err(|_| forged)?;
    parse_invoice(body)
}

/// What the status API (`GET /api/merchant/invoice/status?invoiceId=…`) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAnswer {
    Invoice(Invoice),
    /// `{errCode, errText}`: an unknown invoice, a bad token.
    Refused(ApiRefusal),
}

/// The status API's JSON answer about `invoice_id`. It answers our own request over TLS
/// and carries no signature; an answer about another invoice is refused.
pub fn parse_status_answer(invoice_id: &str, body: &[u8]) -> Result<StatusAnswer, Error> {
    let text = body_text(P, "status answer", body)?;
    let wire: InvoiceWire = from_json(P, "status answer", text)?;
    if let Some(refused) = refusal(&wire.err_code, &wire.err_text)? {
        return Ok(StatusAnswer::Refused(refused));
    }
    let invoice = wire.invoice("status answer")?;
    if invoice.invoice_id != invoice_id {
        return Err(malformed(
            P,
            format!(
                "status answer is about invoice '{}', not the '{}' asked for",
                clip(&invoice.invoice_id),
                clip(invoice_id)
            ),
        ));
    }
    Ok(StatusAnswer::Invoice(invoice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::SigningKey;

    // Monobank's documented webhook example, which verifies: the merchant key (base64 of a
    // PEM, as GET /api/merchant/pubkey returns it), the X-Sign, and the body byte for byte
    // (the docs' invoice example, 2-space indent, no final newline; 582 bytes, SHA-256
    // b68de0ef3e300b8813f0c39f87feea8519bd2b0628b5c2400b7bd1256f3bf58f). Copied from a
    // public client's test (loqimean/monobank_webhook_sign_verification, script.rb) and
    // checked with `openssl dgst -sha256 -verify`.
    const DOC_PUBKEY: &str = "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZrd0V3WUhLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FFQUc1LzZ3NnZubGJZb0ZmRHlYWE4vS29CbVVjTgo3NWJSUWg4MFBhaEdldnJoanFCQnI3OXNSS0JSbnpHODFUZVQ5OEFOakU1c0R3RmZ5Znhub0ZJcmZBPT0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg==";
    const DOC_X_SIGN: &str = "MEUCIQC/mVKhi8FKoayul2Mim3E2oaIOCNJk5dEXxTqbkeJSOQIgOM0hsW0qcP2H8iXy1aQYpmY0SJWEaWur7nQXlKDCFxA=";
    const DOC_BODY: &str = r#"{
  "invoiceId": "p2_9ZgpZVsl3",
  "status": "created",
  "failureReason": "string",
  "amount": 4200,
  "ccy": 980,
  "finalAmount": 4200,
  "createdDate": "2019-08-24T14:15:22Z",
  "modifiedDate": "2019-08-24T14:15:22Z",
  "reference": "84d0070ee4e44667b31371d8f8813947",
  "cancelList": [
    {
      "status": "processing",
      "amount": 4200,
      "ccy": 980,
      "createdDate": "2019-08-24T14:15:22Z",
      "modifiedDate": "2019-08-24T14:15:22Z",
      "approvalCode": "662476",
      "rrn": "060189181768",
      "extRef": "635ace02599849e981b2cd7a65f417fe"
    }
  ]
}"#;

    fn doc_key() -> PublicKey {
        PublicKey::parse(DOC_PUBKEY).unwrap()
    }

    /// A key pair of our own, for messages the docs do not have.
    fn our_signer() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
    }

    fn sign(signer: &SigningKey, body: &[u8]) -> String {
        let signature: Signature = signer.sign(body);
        BASE64.encode(signature.to_der().as_bytes())
    }

    fn ts(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn documented_webhook_verifies() {
        assert_eq!(DOC_BODY.len(), 582);
        let invoice = verify_webhook(&doc_key(), Some(DOC_X_SIGN), DOC_BODY.as_bytes()).unwrap();
        assert_eq!(
            invoice,
            Invoice {
                invoice_id: "p2_9ZgpZVsl3".into(),
                status: InvoiceStatus::Created,
                amount: Amount::from_kopecks(4200),
                ccy: UAH,
                final_amount: Some(Amount::from_kopecks(4200)),
                reference: Some("84d0070ee4e44667b31371d8f8813947".into()),
                created_date: Some(ts("2019-08-24T14:15:22Z")),
                modified_date: ts("2019-08-24T14:15:22Z"),
                failure_reason: Some("string".into()),
            }
        );
    }

    #[test]
    fn the_key_parses_as_base64_or_pem() {
        let pem = String::from_utf8(BASE64.decode(DOC_PUBKEY).unwrap()).unwrap();
        assert_eq!(PublicKey::parse(&pem).unwrap(), doc_key());
        // Wrapped over lines, as a config file may hold it.
        let wrapped = format!("{}\n  {}\n", &DOC_PUBKEY[..60], &DOC_PUBKEY[60..]);
        assert_eq!(PublicKey::parse(&wrapped).unwrap(), doc_key());
        let answer = format!(r#"{{"key":"{DOC_PUBKEY}"}}"#);
        assert_eq!(parse_pubkey_answer(answer.as_bytes()).unwrap(), doc_key());
        for bad in ["", "not base64!", "aGVsbG8=", &DOC_PUBKEY[..100]] {
            assert!(
                matches!(PublicKey::parse(bad), Err(Error::Key { .. })),
                "{bad}"
            );
        }
        let refused = parse_pubkey_answer(br#"{"errCode":"403","errText":"forbidden"}"#);
        assert!(refused.unwrap_err().to_string().contains("check the token"));
    }

    #[test]
    fn changed_truncated_missing_or_foreign_signatures_are_refused() {
        let key = doc_key();
        let forged = |r: Result<Invoice, Error>| matches!(r, Err(Error::Forged { .. }));
        // One byte of the body changed (the amount 4200 → 4201).
        let changed = DOC_BODY.replacen("4200", "4201", 1);
        assert_eq!(changed.len(), DOC_BODY.len());
        assert!(forged(verify_webhook(
            &key,
            Some(DOC_X_SIGN),
            changed.as_bytes()
        )));
        // A byte added: a final newline.
        let longer = format!("{DOC_BODY}\n");
        assert!(forged(verify_webhook(
            &key,
            Some(DOC_X_SIGN),
            longer.as_bytes()
        )));
        // The signature truncated (as DER and as base64), or not base64 at all.
        let der = BASE64.decode(DOC_X_SIGN).unwrap();
        let short = BASE64.encode(&der[..der.len() - 1]);
        for sig in [short.as_str(), &DOC_X_SIGN[..40], "%%%"] {
            assert!(
                forged(verify_webhook(&key, Some(sig), DOC_BODY.as_bytes())),
                "{sig}"
            );
        }
        // No header, or an empty one.
        let unsigned = Err(Error::Unsigned {
            provider: P,
            field: "X-Sign header",
        });
        assert_eq!(verify_webhook(&key, None, DOC_BODY.as_bytes()), unsigned);
        assert_eq!(
            verify_webhook(&key, Some(""), DOC_BODY.as_bytes()),
            unsigned
        );
        assert_eq!(
            verify_webhook(&key, Some("  "), DOC_BODY.as_bytes()),
            unsigned
        );
        // Another merchant's key.
        let other = PublicKey(*our_signer().verifying_key());
        assert!(forged(verify_webhook(
            &other,
            Some(DOC_X_SIGN),
            DOC_BODY.as_bytes()
        )));
        // Huge.
        let huge = vec![b' '; MAX_BODY + 1];
        assert!(matches!(
            verify_webhook(&key, Some(DOC_X_SIGN), &huge),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn signed_webhooks_parse_and_order_by_modified_date() {
        let signer = our_signer();
        let key = PublicKey(*signer.verifying_key());
        let body = br#"{"invoiceId":"2401015abc","status":"success","amount":15050,"ccy":980,"finalAmount":15050,"createdDate":"2024-01-01T10:00:00Z","modifiedDate":"2024-01-01T10:01:02.345+02:00","reference":"ord-42"}"#;
        let success = verify_webhook(&key, Some(&sign(&signer, body)), body).unwrap();
        assert_eq!(success.status, InvoiceStatus::Success);
        assert!(success.status.is_final());
        assert_eq!(success.amount, Amount::parse("150.50").unwrap());
        assert_eq!(success.reference.as_deref(), Some("ord-42"));
        assert_eq!(success.modified_date, ts("2024-01-01T08:01:02.345Z"));
        // A `processing` delivered after it but changed before it does not win.
        assert!(!success.supersedes(ts("2024-01-01T08:01:02.345Z")));
        assert!(success.supersedes(ts("2024-01-01T08:00:59Z")));
        assert!(!success.supersedes(ts("2024-01-01T08:05:00Z")));
    }

    #[test]
    fn hostile_bodies_are_refused() {
        let table: &[(&str, &str)] = &[
            (
                r#"{"invoiceId":"i","status":"success","amount":42.5,"ccy":980,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "amount '42.5'",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":"4200","ccy":980,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "amount '\"4200\"'",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":-1,"ccy":980,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "amount '-1'",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":1e3,"ccy":980,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "amount '1e3'",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":9999999999999999,"ccy":980,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "not a whole number",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":1,"amount":2,"ccy":980,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "duplicate field `amount`",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":1,"ccy":98000,"modifiedDate":"2024-01-01T00:00:00Z"}"#,
                "ccy '98000'",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":1,"ccy":980,"modifiedDate":"yesterday"}"#,
                "modifiedDate 'yesterday'",
            ),
            (
                r#"{"invoiceId":"i","status":"success","amount":1,"ccy":980}"#,
                "no modifiedDate",
            ),
            (
                r#"{"invoiceId":"i","status":true,"amount":1,"ccy":980}"#,
                "invalid type",
            ),
            (r#"{"status":"success"}"#, "no invoiceId"),
            ("[]", "not a JSON object"),
            (r#"["i","success",1,980]"#, "not a JSON object"),
            ("", "not a JSON object"),
            ("{", "EOF"),
        ];
        for (body, want) in table {
            let err = parse_invoice(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
        assert!(parse_invoice(b"{\"invoiceId\":\"\xff\"}").is_err());
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert!(parse_invoice(deep.as_bytes()).is_err());
    }

    #[test]
    fn invoice_create_request_and_answers() {
        let request = InvoiceRequest {
            amount: Amount::parse("150.50").unwrap(),
            ccy: UAH,
            reference: "ord-42",
            destination: "Інтернет, рахунок 59071",
            redirect_url: "https://isp.example/cgi-bin/paysys_check.cgi/pay/ord-42",
            web_hook_url: "https://isp.example/cgi-bin/paysys_check.cgi/callback/mono",
            validity_secs: 86400,
        };
        assert_eq!(
            invoice_create_body(&request).unwrap(),
            r#"{"amount":15050,"ccy":980,"merchantPaymInfo":{"reference":"ord-42","destination":"Інтернет, рахунок 59071"},"redirectUrl":"https://isp.example/cgi-bin/paysys_check.cgi/pay/ord-42","webHookUrl":"https://isp.example/cgi-bin/paysys_check.cgi/callback/mono","validity":86400,"paymentType":"debit"}"#
        );
        let zero = InvoiceRequest {
            amount: Amount::from_kopecks(0),
            ..request.clone()
        };
        assert!(matches!(
            invoice_create_body(&zero),
            Err(Error::Unsignable { .. })
        ));

        let created =
            br#"{"invoiceId":"p2_9ZgpZVsl3","pageUrl":"https://pay.mbnk.biz/p2_9ZgpZVsl3"}"#;
        assert_eq!(
            parse_create_answer(created).unwrap(),
            CreateAnswer::Created {
                invoice_id: "p2_9ZgpZVsl3".into(),
                page_url: "https://pay.mbnk.biz/p2_9ZgpZVsl3".into()
            }
        );
        let refused = br#"{"errCode":"BAD_REQUEST","errText":"empty 'amount'"}"#;
        assert_eq!(
            parse_create_answer(refused).unwrap(),
            CreateAnswer::Refused(ApiRefusal {
                code: "BAD_REQUEST".into(),
                text: "empty 'amount'".into()
            })
        );
        for bad in [
            &b"{}"[..],
            b"{\"invoiceId\":\"x\",\"pageUrl\":\"javascript:alert(1)\"}",
            b"{\"invoiceId\":\"x\",\"pageUrl\":\"http://pay.mbnk.biz/x\"}",
            b"{\"invoiceId\":\"x\",\"pageUrl\":\"http://127.0.0.1.evil.example/x\"}",
            b"{\"invoiceId\":\"x\",\"pageUrl\":\"http://localhost@evil.example/x\"}",
            b"{\"invoiceId\":\"x\",\"pageUrl\":\"http://[::1].evil/x\"}",
            b"\xff",
        ] {
            assert!(
                parse_create_answer(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A local stand-in serves plain http on loopback: accepted there only.
        for local in [
            "http://127.0.0.1:8080/pay/x",
            "http://127.5.0.1/pay/x",
            "http://[::1]:9/pay/x",
            "http://localhost:9/pay/x",
        ] {
            let body = format!("{{\"invoiceId\":\"x\",\"pageUrl\":\"{local}\"}}");
            assert!(parse_create_answer(body.as_bytes()).is_ok(), "{local}");
        }
    }

    #[test]
    fn status_answers() {
        let answer = parse_status_answer("p2_9ZgpZVsl3", DOC_BODY.as_bytes()).unwrap();
        assert!(matches!(answer, StatusAnswer::Invoice(i) if i.status == InvoiceStatus::Created));
        let other = parse_status_answer("p2_other", DOC_BODY.as_bytes()).unwrap_err();
        assert!(other.to_string().contains("not the 'p2_other'"), "{other}");
        let refused = br#"{"errCode":"NOT_FOUND","errText":"invoice not found"}"#;
        assert!(matches!(
            parse_status_answer("x", refused).unwrap(),
            StatusAnswer::Refused(r) if r.code == "NOT_FOUND"
        ));
    }

    #[test]
    fn statuses() {
        for (text, is_final) in [
            ("created", false),
            ("processing", false),
            ("hold", false),
            ("success", true),
            ("failure", true),
            ("reversed", true),
            ("expired", true),
            ("refunded", false),
        ] {
            let status = InvoiceStatus::parse(text);
            assert_eq!(status.is_final(), is_final, "{text}");
            assert_eq!(status.as_str(), text);
        }
    }
}
