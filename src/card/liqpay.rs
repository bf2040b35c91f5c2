//! LiqPay (PrivatBank), API version 3: the checkout form, the server-to-server callback and
//! the status API. `../shared/PROTOCOLS.md` §6 has the sources.
//!
//! Every LiqPay message is two form fields: `data`, base64 of a JSON object, and
//! `signature` = base64(SHA-1(private_key + data + private_key)), the 20 raw digest bytes.
//! The signature covers the base64 *text* of `data`, so a callback is verified over `data`
//! exactly as received, before it is decoded.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::{
    amount_from, body_text, clip, from_json, malformed, scalar_text, ApiRefusal, Error, Provider,
    Secret, MAX_BODY,
};
use crate::domain::Amount;

const P: Provider = Provider::LiqPay;

/// The merchant's keys, as LiqPay's cabinet shows them.
#[derive(Debug, Clone)]
pub struct Keys {
    pub public_key: String,
    pub private_key: Secret,
}

/// The two fields of every LiqPay request: POST them as a form (the browser to the
/// checkout URL, or us to the status API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedForm {
    pub data: String,
    pub signature: String,
}

impl SignedForm {
    /// `data` = base64 of `json`, signed with `private_key`.
    pub fn new(private_key: &Secret, json: &str) -> SignedForm {
        let data = BASE64.encode(json.as_bytes());
        let signature = BASE64.encode(digest(private_key, &data));
        SignedForm { data, signature }
    }

    /// `data=…&signature=…`, form-encoded, for a POST body.
    pub fn form_body(&self) -> String {
        // Two plain string pairs always encode.
        serde_urlencoded::to_string([
            ("data", self.data.as_str()),
            ("signature", self.signature.as_str()),
        ])
        .unwrap_or_default()
    }
}

fn digest(private_key: &Secret, data: &str) -> [u8; 20] {
    let mut sha = Sha1::new();
    sha.update(private_key.expose().as_bytes());
    sha.update(data.as_bytes());
    sha.update(private_key.expose().as_bytes());
    sha.finalize().into()
}

/// What the subscriber pays for: the checkout form's JSON.
#[derive(Debug, Clone)]
pub struct Checkout<'a> {
    /// Our order id: LiqPay's idempotency key, and how its callback finds the order.
    pub order_id: &'a str,
    pub amount: Amount,
    /// `UAH`, `USD`, `EUR`, …
    pub currency: &'a str,
    pub description: &'a str,
    /// Where LiqPay posts the callback.
    pub server_url: &'a str,
    /// Where the browser returns.
    pub result_url: &'a str,
    /// `sandbox: 1`: a test payment, no money moves.
    pub sandbox: bool,
    /// `uk`, `en` (LiqPay's page language); `None` leaves it to LiqPay.
    pub language: Option<&'a str>,
    /// `expired_date`: when LiqPay stops taking payment of the order, UTC
    /// `YYYY-MM-DD HH:MM:SS` — the end of the order's validity, after which we no longer
    /// ask about it. `None`: LiqPay's own default.
    pub expires: Option<&'a str>,
}

#[derive(Serialize)]
struct CheckoutJson<'a> {
    public_key: &'a str,
    version: u8,
    action: &'a str,
    amount: &'a RawValue,
    currency: &'a str,
    description: &'a str,
    order_id: &'a str,
    server_url: &'a str,
    result_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
}

/// The checkout form (`action: "pay"`) for `checkout`; POST its two fields from the
/// subscriber's browser to LiqPay's checkout URL. Refused when the amount is not positive
/// or the order id is empty.
pub fn checkout_form(keys: &Keys, checkout: &Checkout) -> Result<SignedForm, Error> {
    if checkout.amount.kopecks() <= 0 {
        return Err(Error::Unsignable {
            provider: P,
            why: format!("amount {} is not positive", checkout.amount),
        });
    }
    if checkout.order_id.is_empty() {
        return Err(Error::Unsignable {
            provider: P,
            why: "order_id is empty".to_string(),
        });
    }
    // A JSON number with exactly two decimals: `10.25`, never a float's `10.249999`.
    let amount = RawValue::from_string(checkout.amount.to_string())
        .map_err(|e| malformed(P, format!("amount: {e}")))?;
    let json = CheckoutJson {
        public_key: &keys.public_key,
        version: 3,
        action: "pay",
        amount: &amount,
        currency: checkout.currency,
        description: checkout.description,
        order_id: checkout.order_id,
        server_url: checkout.server_url,
        result_url: checkout.result_url,
        sandbox: checkout.sandbox.then_some(1),
        expired_date: checkout.expires,
        language: checkout.language,
    };
    let json = serde_json::to_string(&json).map_err(|e| malformed(P, e.to_string()))?;
    Ok(SignedForm::new(&keys.private_key, &json))
}

/// The status API request for `order_id` (POST its [`SignedForm::form_body`] to
/// `https://www.liqpay.ua/api/request`).
pub fn status_request(keys: &Keys, order_id: &str) -> SignedForm {
    #[derive(Serialize)]
    struct StatusJson<'a> {
        action: &'a str,
        version: u8,
        public_key: &'a str,
        order_id: &'a str,
    }
    let json = StatusJson {
        action: "status",
        version: 3,
        public_key: &keys.public_key,
        order_id,
    };
    // A struct of strings and a number always serializes.
    let json = serde_json::to_string(&json).unwrap_or_default();
    SignedForm::new(&keys.private_key, &json)
}

/// A payment's `status`. Final: [`Success`](Status::Success) (the only one that credits),
/// `failure`, `error`, `reversed`, `sandbox` (a test payment: no money moved). Everything
/// else is a payment still in progress; LiqPay posts again when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    Error,
    Reversed,
    Sandbox,
    Processing,
    WaitSecure,
    /// `3ds_verify`, `otp_verify`, `cvv_verify`, … : the payer still has a step to do.
    Verify(String),
    /// Any other status (`wait_accept`, `hold_wait`, `prepared`, …): not final.
    InProgress(String),
}

impl Status {
    pub fn parse(text: &str) -> Status {
        match text {
            "success" => Status::Success,
            "failure" => Status::Failure,
            "error" => Status::Error,
            "reversed" => Status::Reversed,
            "sandbox" => Status::Sandbox,
            "processing" => Status::Processing,
            "wait_secure" => Status::WaitSecure,
            t if t.ends_with("_verify") => Status::Verify(t.to_string()),
            t => Status::InProgress(t.to_string()),
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Status::Success | Status::Failure | Status::Error | Status::Reversed | Status::Sandbox
        )
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Error => "error",
            Status::Reversed => "reversed",
            Status::Sandbox => "sandbox",
            Status::Processing => "processing",
            Status::WaitSecure => "wait_secure",
            Status::Verify(t) | Status::InProgress(t) => t,
        }
    }
}

/// A payment as a callback or the status API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub status: Status,
    /// Our order id, as we gave it in the checkout form.
    pub order_id: String,
    /// LiqPay's own id of the payment (settlement statements name it).
    pub payment_id: Option<String>,
    pub amount: Amount,
    pub currency: String,
    /// When the payment ended, milliseconds since the Unix epoch.
    pub end_date: Option<i64>,
    /// `err_code` / `err_description` of a failed payment.
    pub err_code: Option<String>,
    pub err_description: Option<String>,
}

/// The JSON of a callback or a status answer. Fields that are numbers in one message and
/// strings in another are read raw; a known field given twice is refused by serde.
#[derive(Deserialize)]
struct Wire {
    status: Option<String>,
    order_id: Option<Box<RawValue>>,
    payment_id: Option<Box<RawValue>>,
    amount: Option<Box<RawValue>>,
    currency: Option<String>,
    end_date: Option<Box<RawValue>>,
    public_key: Option<String>,
    err_code: Option<Box<RawValue>>,
    err_description: Option<String>,
}

fn optional_text(raw: &Option<Box<RawValue>>, name: &str) -> Result<Option<String>, Error> {
    match raw {
        None => Ok(None),
        Some(raw) => {
            let text = scalar_text(raw).map_err(|e| malformed(P, format!("{name}: {e}")))?;
            Ok(Some(text).filter(|t| !t.is_empty()))
        }
    }
}

impl Wire {
    fn read(text: &str, what: &str, keys: &Keys) -> Result<Wire, Error> {
        let wire: Wire = from_json(P, what, text)?;
        if let Some(theirs) = &wire.public_key {
            if *theirs != keys.public_key {
                return Err(malformed(
                    P,
                    format!(
                        "{what} names public_key '{}' but this system's is '{}': check that \
                         public_key and private_key in the config are one pair from the \
                         LiqPay cabinet",
                        clip(theirs),
                        clip(&keys.public_key)
                    ),
                ));
            }
        }
        Ok(wire)
    }

    fn payment(self, what: &str) -> Result<Payment, Error> {
        let status = match self.status.as_deref() {
            None | Some("") => return Err(malformed(P, format!("{what} has no status"))),
            Some(s) => Status::parse(s),
        };
        let order_id = optional_text(&self.order_id, "order_id")?
            .ok_or_else(|| malformed(P, format!("{what} has no order_id")))?;
        let amount = match &self.amount {
            None => return Err(malformed(P, format!("{what} has no amount"))),
            Some(raw) => amount_from(raw).map_err(|e| malformed(P, format!("{what}: {e}")))?,
        };
        let currency = match self.currency {
            Some(c) if !c.is_empty() => c,
            _ => return Err(malformed(P, format!("{what} has no currency"))),
        };
        let end_date = match optional_text(&self.end_date, "end_date")? {
            None => None,
            Some(t) => Some(t.parse::<i64>().map_err(|_| {
                malformed(
                    P,
                    format!(
                        "{what}: end_date '{}' is not milliseconds since 1970",
                        clip(&t)
                    ),
                )
            })?),
        };
        Ok(Payment {
            status,
            order_id,
            payment_id: optional_text(&self.payment_id, "payment_id")?,
            amount,
            currency,
            end_date,
            err_code: optional_text(&self.err_code, "err_code")?,
            err_description: self.err_description.filter(|d| !d.is_empty()),
        })
    }
}

/// A callback's two form fields, verified and parsed. The signature must be there and
/// match `data` as received (compared in constant time) before `data` is decoded;
/// `public_key`, when the JSON names one, must be ours.
pub fn verify_callback(
    keys: &Keys,
    data: Option<&str>,
    signature: Option<&str>,
) -> Result<Payment, Error> {
    let signature = match signature {
        Some(s) if !s.is_empty() => s,
        _ => {
            return Err(Error::Unsigned {
                provider: P,
                field: "signature",
            })
        }
    };
    let data = match data {
        Some(d) if !d.is_empty() => d,
        _ => return Err(malformed(P, "callback has a signature but no data")),
    };
    // base64 of MAX_BODY bytes, with room for padding.
    if data.len() > MAX_BODY / 3 * 4 + 4 {
        return Err(Error::TooLarge {
            provider: P,
            len: data.len(),
        });
    }
    let expected = digest(&keys.private_key, data);
    let received = BASE64.decode(signature.as_bytes()).unwrap_or_default();
    let matches = received.len() == expected.len() && bool::from(received.ct_eq(&expected));
    if !matches {
        return Err(Error::Forged {
            provider: P,
            field: "signature",
            check: "private_key in the config is not the one LiqPay's cabinet shows for \
                    this public_key",
        });
    }
    let json = BASE64
        .decode(data.as_bytes())
        .map_err(|e| malformed(P, format!("data is signed but is not base64: {e}")))?;
    let text = body_text(P, "the decoded data", &json)?;
    Wire::read(text, "callback", keys)?.payment("callback")
}

/// What the status API said about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAnswer {
    /// LiqPay knows a payment for the order (in whatever status).
    Payment(Payment),
    /// LiqPay refused the request or knows no payment (`err_code` `payment_not_found`
    /// when the subscriber never paid): nothing to credit, nothing failed.
    Refused(ApiRefusal),
}

/// The status API's JSON answer for `order_id` (the body LiqPay returned to
/// [`status_request`]). It comes over TLS as the answer to our own signed request, so it
/// carries no signature to check; a payment for another order is refused.
pub fn parse_status_answer(
    keys: &Keys,
    order_id: &str,
    body: &[u8],
) -> Result<StatusAnswer, Error> {
    let text = body_text(P, "status answer", body)?;
    let wire = Wire::read(text, "status answer", keys)?;
    if wire.amount.is_none() || wire.order_id.is_none() {
        // An error answer: `{"result":"error","status":"error","err_code":…}` with no
        // payment in it.
        let code = optional_text(&wire.err_code, "err_code")?;
        let text = wire.err_description.clone().unwrap_or_default();
        return match code {
            Some(code) => Ok(StatusAnswer::Refused(ApiRefusal { code, text })),
            None => Err(malformed(
                P,
                "status answer has neither a payment (order_id, amount) nor an err_code",
            )),
        };
    }
    let payment = wire.payment("status answer")?;
    if payment.order_id != order_id {
        return Err(malformed(
            P,
            format!(
                "status answer is about order '{}', not the '{}' asked for",
                clip(&payment.order_id),
                clip(order_id)
            ),
        ));
    }
    Ok(StatusAnswer::Payment(payment))
}

#[cfg(test)]
mod tests {
    use super::*;

    // LiqPay's published example (its "data and signature" documentation page).
    const DOC_KEY: &str = "a4825234f4bae72a0be04eafe9e8e2bada209255";
    const DOC_JSON: &str = r#"{"public_key":"i00000000","version":"3","action":"pay","amount":"3","currency":"UAH","description":"test","order_id":"000001"}"#;
    const DOC_DATA: &str = "eyJwdWJsaWNfa2V5IjoiaTAwMDAwMDAwIiwidmVyc2lvbiI6IjMiLCJhY3Rpb24iOiJwYXkiLCJhbW91bnQiOiIzIiwiY3VycmVuY3kiOiJVQUgiLCJkZXNjcmlwdGlvbiI6InRlc3QiLCJvcmRlcl9pZCI6IjAwMDAwMSJ9";
    const DOC_SIGNATURE: &str = "wR+UZDC4jjeL/qUOvIsofIWpZh8=";

    fn doc_keys() -> Keys {
        Keys {
            public_key: "i00000000".to_string(),
            private_key: Secret::new(DOC_KEY),
        }
    }

    fn callback_json(status: &str, amount: &str) -> String {
        format!(
            r#"{{"action":"pay","payment_id":165629,"status":"{status}","version":3,"type":"buy","public_key":"i00000000","order_id":"ord-42","description":"1001","amount":{amount},"currency":"UAH","end_date":1700000000123,"transaction_id":165629}}"#
        )
    }

    #[test]
    fn published_vector_signs() {
        let form = SignedForm::new(&Secret::new(DOC_KEY), DOC_JSON);
        assert_eq!(form.data, DOC_DATA);
        assert_eq!(form.signature, DOC_SIGNATURE);
    }

    #[test]
    fn published_vector_verifies_as_a_callback() {
        let payment = verify_callback(&doc_keys(), Some(DOC_DATA), Some(DOC_SIGNATURE));
        // Signed correctly; the doc's JSON has no status, so it is no payment.
        let err = payment.unwrap_err();
        assert_eq!(err, malformed(P, "callback has no status"));
    }

    #[test]
    fn checkout_form_json() {
        let checkout = Checkout {
            order_id: "ord-42",
            amount: Amount::parse("150.5").unwrap(),
            currency: "UAH",
            description: "Інтернет, рахунок 59071",
            server_url: "https://isp.example/cgi-bin/paysys_check.cgi/callback/liqpay",
            result_url: "https://isp.example/cgi-bin/paysys_check.cgi/pay/ord-42",
            sandbox: true,
            language: Some("uk"),
            expires: None,
        };
        let form = checkout_form(&doc_keys(), &checkout).unwrap();
        let json = String::from_utf8(BASE64.decode(&form.data).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"public_key":"i00000000","version":3,"action":"pay","amount":150.50,"currency":"UAH","description":"Інтернет, рахунок 59071","order_id":"ord-42","server_url":"https://isp.example/cgi-bin/paysys_check.cgi/callback/liqpay","result_url":"https://isp.example/cgi-bin/paysys_check.cgi/pay/ord-42","sandbox":1,"language":"uk"}"#
        );
        assert_eq!(
            form.signature,
            BASE64.encode(digest(&Secret::new(DOC_KEY), &form.data))
        );

        let live = Checkout {
            sandbox: false,
            language: None,
            ..checkout.clone()
        };
        let json = BASE64
            .decode(checkout_form(&doc_keys(), &live).unwrap().data)
            .unwrap();
        let json = String::from_utf8(json).unwrap();
        assert!(
            !json.contains("sandbox") && !json.contains("language"),
            "{json}"
        );

        let zero = Checkout {
            amount: Amount::from_kopecks(0),
            ..checkout.clone()
        };
        assert!(matches!(
            checkout_form(&doc_keys(), &zero),
            Err(Error::Unsignable { .. })
        ));
    }

    #[test]
    fn status_request_json() {
        let form = status_request(&doc_keys(), "ord-42");
        let json = String::from_utf8(BASE64.decode(&form.data).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"action":"status","version":3,"public_key":"i00000000","order_id":"ord-42"}"#
        );
        assert_eq!(
            form.signature,
            BASE64.encode(digest(&Secret::new(DOC_KEY), &form.data))
        );
        assert!(form.form_body().starts_with("data=eyJ"));
        assert!(!form.form_body().contains('+'), "{}", form.form_body());
    }

    #[test]
    fn a_signed_callback_parses() {
        let form = SignedForm::new(&Secret::new(DOC_KEY), &callback_json("success", "100.5"));
        let payment =
            verify_callback(&doc_keys(), Some(&form.data), Some(&form.signature)).unwrap();
        assert_eq!(
            payment,
            Payment {
                status: Status::Success,
                order_id: "ord-42".to_string(),
                payment_id: Some("165629".to_string()),
                amount: Amount::from_kopecks(10050),
                currency: "UAH".to_string(),
                end_date: Some(1700000000123),
                err_code: None,
                err_description: None,
            }
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        let form = SignedForm::new(&Secret::new(DOC_KEY), &callback_json("success", "100"));
        let keys = doc_keys();
        let unsigned = Err(Error::Unsigned {
            provider: P,
            field: "signature",
        });
        assert_eq!(verify_callback(&keys, Some(&form.data), None), unsigned);
        assert_eq!(verify_callback(&keys, Some(&form.data), Some("")), unsigned);
        let forged = |r: Result<Payment, Error>| matches!(r, Err(Error::Forged { .. }));
        // Another key.
        let other = Keys {
            private_key: Secret::new("another"),
            ..keys.clone()
        };
        assert!(forged(verify_callback(
            &other,
            Some(&form.data),
            Some(&form.signature)
        )));
        // One character of data changed.
        let mut data = form.data.clone().into_bytes();
        data[120] ^= 1;
        let data = String::from_utf8(data).unwrap();
        assert!(forged(verify_callback(
            &keys,
            Some(&data),
            Some(&form.signature)
        )));
        // Not base64, truncated, padded with junk.
        for sig in [
            "***",
            &form.signature[..20],
            &format!("{}AA", form.signature),
        ] {
            assert!(
                forged(verify_callback(&keys, Some(&form.data), Some(sig))),
                "{sig}"
            );
        }
        // A signature but no data.
        assert!(matches!(
            verify_callback(&keys, None, Some(&form.signature)),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn signed_but_hostile_json_is_refused() {
        let keys = doc_keys();
        // Nesting deeper than serde_json's recursion limit; deep nesting in a field we do not
        // read is skipped without recursion, so it costs no stack either.
        let deep = "[".repeat(200) + &"]".repeat(200);
        let cases: Vec<(String, &str)> = vec![
            (callback_json("success", "1e3"), "amount '1e3'"),
            (callback_json("success", "-5"), "amount '-5'"),
            (callback_json("success", "100.001"), "amount '100.001'"),
            (callback_json("success", "null"), "amount"),
            (callback_json("success", "[1]"), "amount"),
            (
                callback_json("success", "1,\"amount\":2"),
                "duplicate field `amount`",
            ),
            (
                callback_json("success", "1").replace("\"i00000000\"", "\"i11111111\""),
                "public_key 'i11111111'",
            ),
            (r#"{"status":"success"}"#.to_string(), "no order_id"),
            (r#"{"status":7}"#.to_string(), "invalid type"),
            (
                callback_json("success", &deep),
                "amount: expected a string or a number",
            ),
            (deep.clone(), "not a JSON object"),
            ("not json".to_string(), "not a JSON object"),
            ("{not json".to_string(), "key must be a string"),
        ];
        for (json, want) in cases {
            let form = SignedForm::new(&Secret::new(DOC_KEY), &json);
            let err = verify_callback(&keys, Some(&form.data), Some(&form.signature))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        // Signed data that is not base64 or not UTF-8.
        let sig = BASE64.encode(digest(&keys.private_key, "@@@@"));
        assert!(verify_callback(&keys, Some("@@@@"), Some(&sig)).is_err());
        let data = BASE64.encode(b"{\"status\":\"\xff\"}");
        let sig = BASE64.encode(digest(&keys.private_key, &data));
        let err = verify_callback(&keys, Some(&data), Some(&sig)).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        // Huge data is refused before it is hashed.
        let huge = "A".repeat(MAX_BODY * 2);
        assert!(matches!(
            verify_callback(&keys, Some(&huge), Some("x")),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn statuses() {
        let table: &[(&str, Status, bool)] = &[
            ("success", Status::Success, true),
            ("failure", Status::Failure, true),
            ("error", Status::Error, true),
            ("reversed", Status::Reversed, true),
            ("sandbox", Status::Sandbox, true),
            ("processing", Status::Processing, false),
            ("wait_secure", Status::WaitSecure, false),
            ("3ds_verify", Status::Verify("3ds_verify".into()), false),
            ("otp_verify", Status::Verify("otp_verify".into()), false),
            ("hold_wait", Status::InProgress("hold_wait".into()), false),
            ("Success", Status::InProgress("Success".into()), false),
        ];
        for (text, status, is_final) in table {
            assert_eq!(&Status::parse(text), status, "{text}");
            assert_eq!(status.is_final(), *is_final, "{text}");
            assert_eq!(status.as_str(), *text);
        }
    }

    #[test]
    fn status_answers() {
        let keys = doc_keys();
        let answer =
            parse_status_answer(&keys, "ord-42", callback_json("failure", "100").as_bytes());
        match answer.unwrap() {
            StatusAnswer::Payment(p) => assert_eq!(p.status, Status::Failure),
            other => panic!("{other:?}"),
        }
        let not_found = r#"{"result":"error","status":"error","err_code":"payment_not_found","err_description":"Платеж не найден"}"#;
        assert_eq!(
            parse_status_answer(&keys, "ord-42", not_found.as_bytes()).unwrap(),
            StatusAnswer::Refused(ApiRefusal {
                code: "payment_not_found".into(),
                text: "Платеж не найден".into()
            })
        );
        let other_order =
            parse_status_answer(&keys, "ord-43", callback_json("success", "1").as_bytes());
        assert!(other_order
            .unwrap_err()
            .to_string()
            .contains("not the 'ord-43'"));
        assert!(parse_status_answer(&keys, "ord-42", b"{}").is_err());
        assert!(parse_status_answer(&keys, "ord-42", b"\xff").is_err());
    }
}
