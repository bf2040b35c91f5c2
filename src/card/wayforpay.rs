//! WayForPay: the checkout form, the `serviceUrl` callback with the signed answer it
//! expects, and `CHECK_STATUS`. `../shared/PROTOCOLS.md` §8 has the sources.
//!
//! Every signature is lowercase hex HMAC-MD5, keyed with the merchant's secret key, of
//! fields joined by `;`. A field holding `;` would let one signature vouch for other field
//! values, so no signed field may hold one. The callback's amount is signed as
//! the text WayForPay sent (`150.5`), not as we would format it.

use hmac::{Hmac, Mac};
use md5::Md5;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    body_text, clip, from_json, malformed, parse_amount_text, scalar_text, ApiRefusal, Error,
    Provider, Secret,
};
use crate::domain::Amount;

const P: Provider = Provider::WayForPay;

/// The merchant, as WayForPay's cabinet shows it.
#[derive(Debug, Clone)]
pub struct Merchant {
    /// `merchantAccount`.
    pub account: String,
    /// `merchantDomainName`: the site's domain registered with WayForPay.
    pub domain: String,
    pub secret_key: Secret,
}

/// One line of the order (WayForPay wants at least one).
#[derive(Debug, Clone)]
pub struct Product<'a> {
    pub name: &'a str,
    pub count: u32,
    pub price: Amount,
}

/// What the subscriber pays for.
#[derive(Debug, Clone)]
pub struct Checkout<'a> {
    /// Our order id: WayForPay's idempotency key, and how its callback finds the order.
    pub order_reference: &'a str,
    /// When the order was made, Unix seconds.
    pub order_date: i64,
    pub amount: Amount,
    /// `UAH`, `USD`, `EUR`.
    pub currency: &'a str,
    pub products: &'a [Product<'a>],
    /// Where WayForPay posts the callback.
    pub service_url: &'a str,
    /// Where the browser returns.
    pub return_url: &'a str,
    /// `UA`, `EN`, …; `None` leaves it to WayForPay.
    pub language: Option<&'a str>,
    /// `orderLifetime`: seconds WayForPay takes payment of the order for — the order's
    /// validity, after which we no longer ask about it. `None`: WayForPay's own default.
    pub lifetime_secs: Option<u32>,
}

/// Joins the fields WayForPay signs with `;`, refusing a field that holds `;`: a signature
/// over `a;b;c` would otherwise also vouch for the same string split another way (the rule
/// of [`crate::protocol::sign`]).
fn joined(parts: &[(&str, &str)]) -> Result<String, Error> {
    let mut text = String::new();
    for (i, (name, value)) in parts.iter().enumerate() {
        if value.contains(';') {
            return Err(Error::Unsignable {
                provider: P,
                why: format!(
                    "{name} '{}' holds ';', which separates the signed fields: a signature \
                     over it would also sign other values",
                    clip(value)
                ),
            });
        }
        if i > 0 {
            text.push(';');
        }
        text.push_str(value);
    }
    Ok(text)
}

fn mac(secret: &Secret, text: &str) -> Result<Hmac<Md5>, Error> {
    let mut mac =
        Hmac::<Md5>::new_from_slice(secret.expose().as_bytes()).map_err(|e| Error::Key {
            provider: P,
            why: format!("secret_key cannot key HMAC-MD5: {e}"),
        })?;
    mac.update(text.as_bytes());
    Ok(mac)
}

/// Lowercase hex HMAC-MD5 of the `;`-joined `parts`.
fn signature(secret: &Secret, parts: &[(&str, &str)]) -> Result<String, Error> {
    let text = joined(parts)?;
    Ok(hex(&mac(secret, &text)?.finalize().into_bytes()))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Bytes from hex text (either case); `None` for anything else.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

/// The checkout form's fields, in order, `merchantSignature` included; POST them from the
/// subscriber's browser to WayForPay's checkout URL. Product fields repeat
/// (`productName[]`, …), one per product. Refused when the amount is not positive, there is
/// no product, or a signed field holds `;`.
pub fn checkout_form(
    merchant: &Merchant,
    checkout: &Checkout,
) -> Result<Vec<(String, String)>, Error> {
    let unsignable = |why: String| Error::Unsignable { provider: P, why };
    if checkout.amount.kopecks() <= 0 {
        return Err(unsignable(format!(
            "amount {} is not positive",
            checkout.amount
        )));
    }
    if checkout.products.is_empty() {
        return Err(unsignable(
            "an order needs at least one product".to_string(),
        ));
    }
    if checkout.order_reference.is_empty() {
        return Err(unsignable("orderReference is empty".to_string()));
    }
    let order_date = checkout.order_date.to_string();
    let amount = checkout.amount.to_string();
    let counts: Vec<String> = checkout
        .products
        .iter()
        .map(|p| p.count.to_string())
        .collect();
    let prices: Vec<String> = checkout
        .products
        .iter()
        .map(|p| p.price.to_string())
        .collect();

    let mut signed: Vec<(&str, &str)> = vec![
        ("merchantAccount", &merchant.account),
        ("merchantDomainName", &merchant.domain),
        ("orderReference", checkout.order_reference),
        ("orderDate", &order_date),
        ("amount", &amount),
        ("currency", checkout.currency),
    ];
    signed.extend(checkout.products.iter().map(|p| ("productName[]", p.name)));
    signed.extend(counts.iter().map(|c| ("productCount[]", c.as_str())));
    signed.extend(prices.iter().map(|c| ("productPrice[]", c.as_str())));
    let merchant_signature = signature(&merchant.secret_key, &signed)?;

    let mut fields: Vec<(String, String)> = vec![
        ("merchantAccount".into(), merchant.account.clone()),
        ("merchantAuthType".into(), "SimpleSignature".into()),
        ("merchantDomainName".into(), merchant.domain.clone()),
        ("merchantSignature".into(), merchant_signature),
        ("orderReference".into(), checkout.order_reference.into()),
        ("orderDate".into(), order_date.clone()),
        ("amount".into(), amount.clone()),
        ("currency".into(), checkout.currency.into()),
    ];
    for product in checkout.products {
        fields.push(("productName[]".into(), product.name.into()));
    }
    for count in counts {
        fields.push(("productCount[]".into(), count));
    }
    for price in prices {
        fields.push(("productPrice[]".into(), price));
    }
    fields.push(("serviceUrl".into(), checkout.service_url.into()));
    fields.push(("returnUrl".into(), checkout.return_url.into()));
    if let Some(language) = checkout.language {
        fields.push(("language".into(), language.into()));
    }
    if let Some(secs) = checkout.lifetime_secs {
        fields.push(("orderLifetime".into(), secs.to_string()));
    }
    Ok(fields)
}

/// `transactionStatus`. Final: `Approved` (the only one that credits), `Declined`,
/// `Expired`, `Refunded`, `Voided`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionStatus {
    Approved,
    Declined,
    Expired,
    Refunded,
    Voided,
    InProcessing,
    WaitingAuthComplete,
    /// `Pending`, `RefundInProcessing`, and any status added later: not final.
    Other(String),
}

impl TransactionStatus {
    pub fn parse(text: &str) -> TransactionStatus {
        match text {
            "Approved" => TransactionStatus::Approved,
            "Declined" => TransactionStatus::Declined,
            "Expired" => TransactionStatus::Expired,
            "Refunded" => TransactionStatus::Refunded,
            "Voided" => TransactionStatus::Voided,
            "InProcessing" => TransactionStatus::InProcessing,
            "WaitingAuthComplete" => TransactionStatus::WaitingAuthComplete,
            other => TransactionStatus::Other(other.to_string()),
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TransactionStatus::Approved
                | TransactionStatus::Declined
                | TransactionStatus::Expired
                | TransactionStatus::Refunded
                | TransactionStatus::Voided
        )
    }

    pub fn as_str(&self) -> &str {
        match self {
            TransactionStatus::Approved => "Approved",
            TransactionStatus::Declined => "Declined",
            TransactionStatus::Expired => "Expired",
            TransactionStatus::Refunded => "Refunded",
            TransactionStatus::Voided => "Voided",
            TransactionStatus::InProcessing => "InProcessing",
            TransactionStatus::WaitingAuthComplete => "WaitingAuthComplete",
            TransactionStatus::Other(t) => t,
        }
    }
}

/// A payment as the callback or `CHECK_STATUS` describes it, signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Our order id.
    pub order_reference: String,
    pub amount: Amount,
    pub currency: String,
    pub transaction_status: TransactionStatus,
    /// `1100` is "Ok"; others say why a payment failed (`reason`).
    pub reason_code: String,
    pub reason: Option<String>,
    pub auth_code: Option<String>,
    /// The masked card number, `41****8217`.
    pub card_pan: Option<String>,
    /// When WayForPay processed the payment, Unix seconds.
    pub processing_date: Option<i64>,
}

/// The JSON of a callback or a `CHECK_STATUS` answer. The signed fields are read raw:
/// their text is what was signed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    merchant_account: Option<Box<RawValue>>,
    order_reference: Option<Box<RawValue>>,
    amount: Option<Box<RawValue>>,
    currency: Option<Box<RawValue>>,
    auth_code: Option<Box<RawValue>>,
    card_pan: Option<Box<RawValue>>,
    transaction_status: Option<Box<RawValue>>,
    reason_code: Option<Box<RawValue>>,
    merchant_signature: Option<String>,
    reason: Option<Box<RawValue>>,
    processing_date: Option<Box<RawValue>>,
}

/// A field's text; a missing field is empty (WayForPay's own libraries sign it so).
fn text(raw: &Option<Box<RawValue>>, name: &str) -> Result<String, Error> {
    match raw {
        None => Ok(String::new()),
        Some(raw) => scalar_text(raw).map_err(|e| malformed(P, format!("{name}: {e}"))),
    }
}

impl Wire {
    /// Verifies `merchantSignature`, then reads the payment.
    fn payment(self, merchant: &Merchant, what: &str) -> Result<Payment, Error> {
        let signature = match self.merchant_signature.as_deref() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                return Err(Error::Unsigned {
                    provider: P,
                    field: "merchantSignature",
                })
            }
        };
        let account = text(&self.merchant_account, "merchantAccount")?;
        let order_reference = text(&self.order_reference, "orderReference")?;
        let amount = text(&self.amount, "amount")?;
        let currency = text(&self.currency, "currency")?;
        let auth_code = text(&self.auth_code, "authCode")?;
        let card_pan = text(&self.card_pan, "cardPan")?;
        let status = text(&self.transaction_status, "transactionStatus")?;
        let reason_code = text(&self.reason_code, "reasonCode")?;
        let signed = joined(&[
            ("merchantAccount", &account),
            ("orderReference", &order_reference),
            ("amount", &amount),
            ("currency", &currency),
            ("authCode", &auth_code),
            ("cardPan", &card_pan),
            ("transactionStatus", &status),
            ("reasonCode", &reason_code),
        ])
        .map_err(|e| malformed(P, format!("{what}: {e}")))?;
        let received = unhex(&signature).unwrap_or_default();
        // `verify_slice` compares in constant time, and refuses a wrong length.
        if mac(&merchant.secret_key, &signed)?
            .verify_slice(&received)
            .is_err()
        {
            return Err(Error::Forged {
                provider: P,
                field: "merchantSignature",
                check: "secret_key in the config is not the one WayForPay's cabinet shows for \
                        this merchant account",
            });
        }
        if account != merchant.account {
            return Err(malformed(
                P,
                format!(
                    "{what} is for merchant '{}', this system is '{}': check merchant_account \
                     and secret_key in the config",
                    clip(&account),
                    clip(&merchant.account)
                ),
            ));
        }
        let missing = |name: &str| malformed(P, format!("{what} has no {name}"));
        if order_reference.is_empty() {
            return Err(missing("orderReference"));
        }
        if currency.is_empty() {
            return Err(missing("currency"));
        }
        if status.is_empty() {
            return Err(missing("transactionStatus"));
        }
        let amount =
            parse_amount_text(&amount).map_err(|e| malformed(P, format!("{what}: {e}")))?;
        let processing_date = match text(&self.processing_date, "processingDate")?.as_str() {
            "" => None,
            t => Some(t.parse::<i64>().map_err(|_| {
                malformed(
                    P,
                    format!("{what}: processingDate '{}' is not Unix seconds", clip(t)),
                )
            })?),
        };
        let reason = text(&self.reason, "reason")?;
        Ok(Payment {
            order_reference,
            amount,
            currency,
            transaction_status: TransactionStatus::parse(&status),
            reason_code,
            reason: Some(reason).filter(|r| !r.is_empty()),
            auth_code: Some(auth_code).filter(|a| !a.is_empty()),
            card_pan: Some(card_pan).filter(|c| !c.is_empty()),
            processing_date,
        })
    }
}

/// The `serviceUrl` callback's JSON body, its `merchantSignature` verified (constant time)
/// over the signed fields' text as received, and the merchant account checked to be ours.
pub fn verify_callback(merchant: &Merchant, body: &[u8]) -> Result<Payment, Error> {
    let text = body_text(P, "callback", body)?;
    from_json::<Wire>(P, "callback", text)?.payment(merchant, "callback")
}

/// The answer WayForPay expects to a callback (`time`: now, Unix seconds); without it
/// WayForPay posts the callback again.
pub fn accept_answer(
    merchant: &Merchant,
    order_reference: &str,
    time: i64,
) -> Result<String, Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Accept<'a> {
        order_reference: &'a str,
        status: &'a str,
        time: i64,
        signature: String,
    }
    let time_text = time.to_string();
    let signature = signature(
        &merchant.secret_key,
        &[
            ("orderReference", order_reference),
            ("status", "accept"),
            ("time", &time_text),
        ],
    )?;
    let accept = Accept {
        order_reference,
        status: "accept",
        time,
        signature,
    };
    serde_json::to_string(&accept).map_err(|e| malformed(P, e.to_string()))
}

/// The `CHECK_STATUS` request's JSON body (POST it to `https://api.wayforpay.com/api`).
pub fn check_status_request(merchant: &Merchant, order_reference: &str) -> Result<String, Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CheckStatus<'a> {
        transaction_type: &'a str,
        merchant_account: &'a str,
        order_reference: &'a str,
        merchant_signature: String,
        api_version: u8,
    }
    let merchant_signature = signature(
        &merchant.secret_key,
        &[
            ("merchantAccount", &merchant.account),
            ("orderReference", order_reference),
        ],
    )?;
    let request = CheckStatus {
        transaction_type: "CHECK_STATUS",
        merchant_account: &merchant.account,
        order_reference,
        merchant_signature,
        api_version: 1,
    };
    serde_json::to_string(&request).map_err(|e| malformed(P, e.to_string()))
}

/// What `CHECK_STATUS` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAnswer {
    /// A payment for the order, signature verified as for a callback.
    Payment(Payment),
    /// No payment: WayForPay's `reasonCode` and `reason` (an unknown order, a bad
    /// signature on our request).
    Refused(ApiRefusal),
}

/// `CHECK_STATUS`'s JSON answer about `order_reference`. An answer that describes a
/// payment must carry a valid `merchantSignature` (the callback's fields); one without a
/// `transactionStatus` is a refusal and moves nothing. An answer about another order is
/// refused.
pub fn parse_check_status_answer(
    merchant: &Merchant,
    order_reference: &str,
    body: &[u8],
) -> Result<StatusAnswer, Error> {
    let text_body = body_text(P, "CHECK_STATUS answer", body)?;
    let wire: Wire = from_json(P, "CHECK_STATUS answer", text_body)?;
    if text(&wire.transaction_status, "transactionStatus")?.is_empty() {
        let code = text(&wire.reason_code, "reasonCode")?;
        if code.is_empty() {
            return Err(malformed(
                P,
                "CHECK_STATUS answer has neither a transactionStatus nor a reasonCode",
            ));
        }
        let reason = text(&wire.reason, "reason")?;
        return Ok(StatusAnswer::Refused(ApiRefusal { code, text: reason }));
    }
    let payment = wire.payment(merchant, "CHECK_STATUS answer")?;
    if payment.order_reference != order_reference {
        return Err(malformed(
            P,
            format!(
                "CHECK_STATUS answer is about order '{}', not the '{}' asked for",
                clip(&payment.order_reference),
                clip(order_reference)
            ),
        ));
    }
    Ok(StatusAnswer::Payment(payment))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Our own vectors. WayForPay's documentation example does not reproduce with any
    // published secret, so these are computed here: the merchant is the widespread test
    // merchant `test_merch_n1` with its secret, the signatures computed independently with
    // `python3 -c 'import hmac,hashlib; print(hmac.new(key, text.encode(), hashlib.md5).hexdigest())'`
    // and checked with `printf %s TEXT | openssl dgst -md5 -hmac KEY`.
    const SECRET: &str = "flk3409refn54t54t*FNJRET";
    // "test_merch_n1;isp.example;ord-42;1700000000;150.50;UAH;Інтернет, рахунок 59071;1;150.50"
    const CHECKOUT_SIGNATURE: &str = "9b0f80a59fa102f65414347133bd414e";
    // "test_merch_n1;isp.example;ord-43;1700000000;250.00;UAH;Інтернет;Підключення;1;2;150.00;50.00"
    const TWO_PRODUCTS_SIGNATURE: &str = "aa7030778cff6d78f49b8103129b4b53";
    // "test_merch_n1;ord-42;150.5;UAH;541963;41****8217;Approved;1100"
    const CALLBACK_SIGNATURE: &str = "c47ad51de7ccaf6bb887193a42fc9102";
    // "ord-42;accept;1700000100"
    const ACCEPT_SIGNATURE: &str = "a3d591827b9537460ec6a13a315bf352";
    // "test_merch_n1;ord-42"
    const CHECK_STATUS_SIGNATURE: &str = "98f96529d02df2c75c094d792fc7a529";

    fn merchant() -> Merchant {
        Merchant {
            account: "test_merch_n1".into(),
            domain: "isp.example".into(),
            secret_key: Secret::new(SECRET),
        }
    }

    fn callback(signature: &str) -> String {
        format!(
            r#"{{"merchantAccount":"test_merch_n1","orderReference":"ord-42","merchantSignature":"{signature}","amount":150.5,"currency":"UAH","authCode":"541963","email":"a@b.example","phone":"380501234567","createdDate":1700000000,"processingDate":1700000050,"cardPan":"41****8217","cardType":"Visa","issuerBankCountry":"Ukraine","issuerBankName":"Privatbank","recToken":"","transactionStatus":"Approved","reason":"Ok","reasonCode":1100,"fee":3.01,"paymentSystem":"card","rrn":"123456789012"}}"#
        )
    }

    fn amount(text: &str) -> Amount {
        Amount::parse(text).unwrap()
    }

    #[test]
    fn checkout_form_is_signed() {
        let products = [Product {
            name: "Інтернет, рахунок 59071",
            count: 1,
            price: amount("150.5"),
        }];
        let checkout = Checkout {
            order_reference: "ord-42",
            order_date: 1_700_000_000,
            amount: amount("150.5"),
            currency: "UAH",
            products: &products,
            service_url: "https://isp.example/cgi-bin/paysys_check.cgi/callback/wfp",
            return_url: "https://isp.example/cgi-bin/paysys_check.cgi/pay/ord-42",
            language: Some("UA"),
            lifetime_secs: None,
        };
        let fields = checkout_form(&merchant(), &checkout).unwrap();
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("merchantAccount", "test_merch_n1"),
                ("merchantAuthType", "SimpleSignature"),
                ("merchantDomainName", "isp.example"),
                ("merchantSignature", CHECKOUT_SIGNATURE),
                ("orderReference", "ord-42"),
                ("orderDate", "1700000000"),
                ("amount", "150.50"),
                ("currency", "UAH"),
                ("productName[]", "Інтернет, рахунок 59071"),
                ("productCount[]", "1"),
                ("productPrice[]", "150.50"),
                (
                    "serviceUrl",
                    "https://isp.example/cgi-bin/paysys_check.cgi/callback/wfp"
                ),
                (
                    "returnUrl",
                    "https://isp.example/cgi-bin/paysys_check.cgi/pay/ord-42"
                ),
                ("language", "UA"),
            ]
        );

        let products = [
            Product {
                name: "Інтернет",
                count: 1,
                price: amount("150"),
            },
            Product {
                name: "Підключення",
                count: 2,
                price: amount("50"),
            },
        ];
        let two = Checkout {
            order_reference: "ord-43",
            amount: amount("250"),
            products: &products,
            ..checkout.clone()
        };
        let fields = checkout_form(&merchant(), &two).unwrap();
        assert!(fields.contains(&("merchantSignature".into(), TWO_PRODUCTS_SIGNATURE.into())));
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names.iter().filter(|k| **k == "productName[]").count(), 2);

        let semicolon = [Product {
            name: "Інтернет; рахунок 1",
            count: 1,
            price: amount("150"),
        }];
        let bad = Checkout {
            products: &semicolon,
            ..checkout.clone()
        };
        let err = checkout_form(&merchant(), &bad).unwrap_err();
        assert!(err.to_string().contains("holds ';'"), "{err}");
        let none = Checkout {
            products: &[],
            ..checkout.clone()
        };
        assert!(checkout_form(&merchant(), &none).is_err());
        let zero = Checkout {
            amount: Amount::from_kopecks(0),
            ..checkout.clone()
        };
        assert!(checkout_form(&merchant(), &zero).is_err());
    }

    #[test]
    fn our_callback_vector_verifies() {
        let payment =
            verify_callback(&merchant(), callback(CALLBACK_SIGNATURE).as_bytes()).unwrap();
        assert_eq!(
            payment,
            Payment {
                order_reference: "ord-42".into(),
                amount: amount("150.50"),
                currency: "UAH".into(),
                transaction_status: TransactionStatus::Approved,
                reason_code: "1100".into(),
                reason: Some("Ok".into()),
                auth_code: Some("541963".into()),
                card_pan: Some("41****8217".into()),
                processing_date: Some(1_700_000_050),
            }
        );
        // Upper-case hex is the same signature.
        let upper = callback(&CALLBACK_SIGNATURE.to_uppercase());
        assert!(verify_callback(&merchant(), upper.as_bytes()).is_ok());
    }

    #[test]
    fn the_amount_is_signed_as_received() {
        // The same payment with the amount written `150.50`: signed over "150.5" it does
        // not verify, because WayForPay would have signed "150.50".
        let body = callback(CALLBACK_SIGNATURE).replace("\"amount\":150.5,", "\"amount\":150.50,");
        assert!(matches!(
            verify_callback(&merchant(), body.as_bytes()),
            Err(Error::Forged { .. })
        ));
    }

    #[test]
    fn bad_signatures_are_refused() {
        let m = merchant();
        let forged = |body: String| {
            matches!(
                verify_callback(&m, body.as_bytes()),
                Err(Error::Forged { .. })
            )
        };
        let unsigned = |body: String| {
            matches!(
                verify_callback(&m, body.as_bytes()),
                Err(Error::Unsigned { .. })
            )
        };
        assert!(unsigned(callback("")));
        assert!(unsigned(callback(CALLBACK_SIGNATURE).replace(
            &format!(r#""merchantSignature":"{CALLBACK_SIGNATURE}","#),
            ""
        )));
        assert!(forged(callback(&CALLBACK_SIGNATURE[..30])));
        assert!(forged(callback("zz0f80a59fa102f65414347133bd414e")));
        assert!(forged(callback(&format!("{CALLBACK_SIGNATURE}00"))));
        // Each signed field changed.
        for (from, to) in [
            ("\"ord-42\"", "\"ord-43\""),
            ("150.5", "1500.5"),
            ("\"UAH\"", "\"USD\""),
            ("\"541963\"", "\"541964\""),
            ("\"41****8217\"", "\"41****8218\""),
            ("\"Approved\"", "\"Declined\""),
            ("1100", "1101"),
        ] {
            let body = callback(CALLBACK_SIGNATURE).replacen(from, to, 1);
            assert!(forged(body), "{from} → {to}");
        }
        // Another secret.
        let other = Merchant {
            secret_key: Secret::new("another"),
            ..merchant()
        };
        assert!(matches!(
            verify_callback(&other, callback(CALLBACK_SIGNATURE).as_bytes()),
            Err(Error::Forged { .. })
        ));
        // Signed correctly, but for another merchant account.
        let mut theirs = merchant();
        theirs.account = "other_merchant".into();
        let sig = signature(
            &theirs.secret_key,
            &[
                ("", "other_merchant"),
                ("", "ord-42"),
                ("", "150.5"),
                ("", "UAH"),
                ("", "541963"),
                ("", "41****8217"),
                ("", "Approved"),
                ("", "1100"),
            ],
        )
        .unwrap();
        let body = callback(&sig).replace("\"test_merch_n1\"", "\"other_merchant\"");
        let err = verify_callback(&merchant(), body.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("merchant 'other_merchant'"),
            "{err}"
        );
    }

    #[test]
    fn hostile_bodies_are_refused() {
        let m = merchant();
        let deep = "[".repeat(300) + &"]".repeat(300);
        let cases: Vec<(String, &str)> = vec![
            (
                callback(CALLBACK_SIGNATURE)
                    .replace("\"amount\":150.5", "\"amount\":150.5,\"amount\":1"),
                "duplicate field `amount`",
            ),
            (
                callback(CALLBACK_SIGNATURE).replace("\"amount\":150.5", "\"amount\":[150.5]"),
                "amount: expected a string or a number",
            ),
            (
                callback(CALLBACK_SIGNATURE)
                    .replace("\"amount\":150.5", &format!("\"amount\":{deep}")),
                "amount",
            ),
            (
                callback(CALLBACK_SIGNATURE).replace("\"ord-42\"", "\"ord;42\""),
                "holds ';'",
            ),
            (
                callback(CALLBACK_SIGNATURE).replace(
                    "\"merchantSignature\":\"",
                    "\"merchantSignature\":7,\"x\":\"",
                ),
                "invalid type",
            ),
            ("[]".to_string(), "not a JSON object"),
            ("{".to_string(), "EOF"),
        ];
        for (body, want) in cases {
            let err = verify_callback(&m, body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
        assert!(verify_callback(&m, b"{\"amount\":\"\xff\"}").is_err());
        assert!(matches!(
            verify_callback(&m, &vec![b' '; super::super::MAX_BODY + 1]),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn signed_amounts_that_are_no_sums_are_refused() {
        let m = merchant();
        for bad in ["1e3", "-5", "150.555"] {
            let sig = signature(
                &m.secret_key,
                &[
                    ("", "test_merch_n1"),
                    ("", "ord-42"),
                    ("", bad),
                    ("", "UAH"),
                    ("", "541963"),
                    ("", "41****8217"),
                    ("", "Approved"),
                    ("", "1100"),
                ],
            )
            .unwrap();
            let body = callback(&sig).replace("\"amount\":150.5", &format!("\"amount\":{bad}"));
            let err = verify_callback(&m, body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("amount '{bad}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn accept_answer_is_signed() {
        assert_eq!(
            accept_answer(&merchant(), "ord-42", 1_700_000_100).unwrap(),
            format!(
                r#"{{"orderReference":"ord-42","status":"accept","time":1700000100,"signature":"{ACCEPT_SIGNATURE}"}}"#
            )
        );
        assert!(accept_answer(&merchant(), "ord;42", 1).is_err());
    }

    #[test]
    fn check_status_request_and_answers() {
        assert_eq!(
            check_status_request(&merchant(), "ord-42").unwrap(),
            format!(
                r#"{{"transactionType":"CHECK_STATUS","merchantAccount":"test_merch_n1","orderReference":"ord-42","merchantSignature":"{CHECK_STATUS_SIGNATURE}","apiVersion":1}}"#
            )
        );
        let m = merchant();
        let answer =
            parse_check_status_answer(&m, "ord-42", callback(CALLBACK_SIGNATURE).as_bytes());
        assert!(
            matches!(answer, Ok(StatusAnswer::Payment(p)) if p.transaction_status == TransactionStatus::Approved)
        );
        let other = parse_check_status_answer(&m, "ord-7", callback(CALLBACK_SIGNATURE).as_bytes());
        assert!(other.unwrap_err().to_string().contains("not the 'ord-7'"));
        let forged = parse_check_status_answer(&m, "ord-42", callback("00").as_bytes());
        assert!(matches!(forged, Err(Error::Forged { .. })));
        let not_found = br#"{"reason":"Order not found","reasonCode":1112}"#;
        assert_eq!(
            parse_check_status_answer(&m, "ord-42", not_found).unwrap(),
            StatusAnswer::Refused(ApiRefusal {
                code: "1112".into(),
                text: "Order not found".into()
            })
        );
        assert!(parse_check_status_answer(&m, "ord-42", b"{}").is_err());
    }

    #[test]
    fn statuses() {
        for (text, is_final) in [
            ("Approved", true),
            ("Declined", true),
            ("Expired", true),
            ("Refunded", true),
            ("Voided", true),
            ("InProcessing", false),
            ("WaitingAuthComplete", false),
            ("Pending", false),
            ("RefundInProcessing", false),
        ] {
            let status = TransactionStatus::parse(text);
            assert_eq!(status.is_final(), is_final, "{text}");
            assert_eq!(status.as_str(), text);
        }
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("é1"), None);
    }

    #[test]
    fn the_secret_stays_out_of_debug() {
        let shown = format!("{:?}", merchant());
        assert!(!shown.contains("flk3409"), "{shown}");
    }
}
