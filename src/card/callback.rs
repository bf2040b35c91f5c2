//! The card providers' callbacks as protocols of the request path: each verifies the
//! provider's signature over the bytes received before it reads anything (no signature, no
//! money), and turns the provider's word into a [`Settlement`] of one of our orders; the
//! pipeline looks the order up, compares the amount and currency with it, and pays it
//! through the ledger like any payment (exactly once by the order id) — or notes a failure,
//! a payment in progress, a reversal.
//!
//! The answer is what each provider expects: LiqPay and Monobank read the HTTP status (200:
//! received; anything else: post again later), WayForPay a signed `accept` ([`Protocol::seal`]
//! signs it with the system's key).

use chrono::{DateTime, Utc};

use crate::card::{liqpay, monobank, wayforpay, Error, Provider, Secret};
use crate::cgi::{Request, Response};
use crate::config::{CardSettings, Credentials, ProtocolKind, System};
use crate::domain::Amount;
use crate::outcome::{CardState, Command, Echo, Outcome, Refusal, Settlement};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Liqpay;
pub struct Monobank;
pub struct Wayforpay;

/// ISO 4217's number of the hryvnia, the only currency Monobank's acquiring takes.
const UAH: u16 = 980;

/// The card settings a callback is checked with, or why there are none.
fn settings<'a>(ctx: &ParseContext<'a>) -> Result<&'a CardSettings, Refusal> {
    ctx.card.ok_or_else(|| {
        Refusal::BadSignature(
            "the system has no card keys in the config: nothing is trusted".into(),
        )
    })
}

/// A provider's error as the log and the refusal name it.
fn refused(e: Error) -> Refusal {
    match e {
        Error::Unsigned { .. } | Error::Forged { .. } | Error::Key { .. } => {
            Refusal::BadSignature(e.to_string())
        }
        _ => Refusal::BadRequest(e.to_string()),
    }
}

/// The body as received: a callback is verified over its exact bytes.
fn body(request: &Request) -> Result<&[u8], Refusal> {
    request
        .body
        .as_deref()
        .map_err(|e| Refusal::BadRequest(e.0.clone()))
}

/// The answer of a callback: the HTTP status carries it (200 received and settled, 400 not
/// believed, 503 try again), the body says it for a person reading the provider's logs.
fn plain(outcome: &Outcome) -> Reply {
    let (status, result, comment) = match outcome {
        Outcome::Paid { .. } => (200, "0", "paid"),
        Outcome::Noted { state, .. } => (200, "0", state.name()),
        Outcome::Refused(Refusal::Conflict { .. }) => (200, "7", "amount differs from the order"),
        Outcome::Refused(Refusal::PaidThenCancelled { .. }) => (200, "7", "order cancelled"),
        Outcome::Refused(Refusal::CallerNotAllowed) => (403, "403", "caller not allowed"),
        Outcome::Refused(Refusal::BadSignature(_)) => (400, "400", "signature not verified"),
        Outcome::Refused(Refusal::UnknownTxn) => (400, "400", "no such order"),
        Outcome::Refused(_) => (400, "400", "refused"),
        Outcome::Failed(_) => (503, "1", "temporary error"),
        _ => (400, "400", "unexpected"),
    };
    Reply {
        response: Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{comment}\n"),
            headers: Default::default(),
        },
        result: result.into(),
        comment: comment.into(),
    }
}

fn echo_of(request: &Request, order_id: &str, sum: &str) -> Echo {
    Echo {
        command: "callback".into(),
        txn_id: order_id.into(),
        account: String::new(),
        sum: sum.into(),
        dump: request.dump(),
        params: Vec::new(),
    }
}

impl Protocol for Liqpay {
    fn secrets(&self) -> &'static [&'static str] {
        // `data` is LiqPay's base64 JSON: a masked card number, the payer's name and phone,
        // perhaps a card token — none of it readable to the masking, so none of it kept.
        &["signature", "data"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Liqpay
    }

    fn echo(&self, request: &Request) -> Echo {
        // The order id is inside the signed data; the log names it once it is verified
        // (the pipeline's echo is the request's, before anything is trusted).
        echo_of(request, "", "")
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let card = settings(ctx)?;
        let Credentials::Liqpay {
            public_key,
            private_key,
        } = &card.credentials
        else {
            return Err(Refusal::BadSignature(
                "the system's keys are not LiqPay's".into(),
            ));
        };
        let keys = liqpay::Keys {
            public_key: public_key.clone(),
            private_key: Secret::new(private_key.clone()),
        };
        let form = request.form().map_err(|e| Refusal::BadRequest(e.0))?;
        let get = |k: &str| form.get(k).map_err(|e| Refusal::BadRequest(e.0));
        let payment =
            liqpay::verify_callback(&keys, get("data")?, get("signature")?).map_err(refused)?;
        Ok(Command::Settle(liqpay_settlement(card, payment)))
    }

    fn render(&self, _echo: &Echo, outcome: &Outcome) -> Reply {
        plain(outcome)
    }
}

impl Protocol for Monobank {
    fn secrets(&self) -> &'static [&'static str] {
        // The signature comes in the X-Sign header, which is not kept.
        &["maskedPan"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Monobank
    }

    fn echo(&self, request: &Request) -> Echo {
        echo_of(request, "", "")
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let card = settings(ctx)?;
        let Credentials::Monobank { pubkey, .. } = &card.credentials else {
            return Err(Refusal::BadSignature(
                "the system's keys are not Monobank's".into(),
            ));
        };
        let x_sign = request.x_sign.as_deref();
        let body = body(request)?;
        let invoice = match (pubkey, ctx.monobank_key) {
            // The admin's key is never replaced by a fetched one; when it stops verifying,
            // the refusal says why that may be (verify_webhook's Forged names a rotation).
            (Some(configured), _) => {
                let key = monobank::PublicKey::parse(configured).map_err(refused)?;
                monobank::verify_webhook(&key, x_sign, body).map_err(refused)?
            }
            // The key the pipeline cached or fetched (card::pubkey): if it does not verify,
            // it was just fetched from Monobank, so the webhook is not Monobank's.
            (None, Some(key)) => {
                monobank::verify_webhook(key, x_sign, body).map_err(|e| match e {
                    Error::Forged { .. } => Refusal::BadSignature(
                        "Monobank: X-Sign does not verify with the key Monobank's API gives \
                         now (GET /api/merchant/pubkey): refused; the webhook is not signed \
                         by Monobank"
                            .into(),
                    ),
                    e => refused(e),
                })?
            }
            // Nothing resolved: unsigned (nothing is fetched for it), or no pipeline.
            (None, None) => {
                if x_sign.is_some_and(|s| !s.trim().is_empty()) {
                    return Err(Refusal::BadSignature(
                        "Monobank: no pubkey in the config and none cached or fetched to \
                         verify the X-Sign with: refused"
                            .into(),
                    ));
                }
                return Err(refused(Error::Unsigned {
                    provider: Provider::Monobank,
                    field: "X-Sign header",
                }));
            }
        };
        monobank_settlement(invoice)
            .map(Command::Settle)
            .map_err(Refusal::BadRequest)
    }

    fn render(&self, _echo: &Echo, outcome: &Outcome) -> Reply {
        plain(outcome)
    }
}

impl Protocol for Wayforpay {
    fn secrets(&self) -> &'static [&'static str] {
        &["merchantSignature", "cardPan", "recToken"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Wayforpay
    }

    fn echo(&self, request: &Request) -> Echo {
        echo_of(request, "", "")
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let card = settings(ctx)?;
        let merchant = merchant(card)
            .ok_or_else(|| Refusal::BadSignature("the system's keys are not WayForPay's".into()))?;
        let payment = wayforpay::verify_callback(&merchant, body(request)?).map_err(refused)?;
        Ok(Command::Settle(wayforpay_settlement(payment)))
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let mut reply = plain(outcome);
        if reply.response.status == 200 {
            // Sealed below with the order's reference and the merchant's key.
            reply.response.content_type = "application/json";
            reply.response.body = echo.txn_id.clone();
        }
        reply
    }

    #[allow(clippy::result_large_err)] // as the trait's: the reply comes back whole
    fn seal(&self, reply: Reply, system: &System) -> Result<Reply, (Reply, String)> {
        if reply.response.status != 200 {
            return Ok(reply);
        }
        let Some(merchant) = system.card().and_then(merchant) else {
            return Err((reply, "no WayForPay keys to sign the accept with".into()));
        };
        let order = reply.response.body.clone();
        match wayforpay::accept_answer(&merchant, &order, Utc::now().timestamp()) {
            Ok(body) => {
                let mut reply = reply;
                reply.response.body = body;
                Ok(reply)
            }
            Err(e) => Err((reply, e.to_string())),
        }
    }
}

// What a provider's word means for our order. A callback and the sweeper's status request
// read the same word the same way: both come through these.

/// A LiqPay payment (a verified callback, or the status API's answer) as the word on our
/// order: only `success` pays (and `sandbox`, where the admin set `sandbox = true`).
pub fn liqpay_settlement(card: &CardSettings, payment: liqpay::Payment) -> Settlement {
    let state = match &payment.status {
        liqpay::Status::Success => CardState::Paid,
        // A test payment: money only in a sandbox the admin asked for.
        liqpay::Status::Sandbox if card.sandbox => CardState::Paid,
        liqpay::Status::Sandbox | liqpay::Status::Failure | liqpay::Status::Error => {
            CardState::Failed
        }
        liqpay::Status::Reversed => CardState::Reversed,
        // "Successful, credited in the daily settlement": the money is taken.
        liqpay::Status::InProgress(t) if t == "wait_compensation" => CardState::Paid,
        _ => CardState::Pending,
    };
    Settlement {
        order_id: payment.order_id,
        state,
        amount: payment.amount,
        currency: payment.currency,
        provider_ref: payment.payment_id.unwrap_or_default(),
        status: payment.status.as_str().to_string(),
        at: None,
    }
}

/// A Monobank invoice (a verified webhook, or the status API's answer) as the word on our
/// order, dated by its `modifiedDate`; refused when it names no order of ours.
pub fn monobank_settlement(invoice: monobank::Invoice) -> Result<Settlement, String> {
    let state = match invoice.status {
        monobank::InvoiceStatus::Success => CardState::Paid,
        monobank::InvoiceStatus::Failure => CardState::Failed,
        monobank::InvoiceStatus::Reversed => CardState::Reversed,
        monobank::InvoiceStatus::Expired => CardState::Expired,
        _ => CardState::Pending,
    };
    let Some(order_id) = invoice.reference.clone() else {
        return Err(format!(
            "invoice {} names no reference: not one of our orders",
            invoice.invoice_id
        ));
    };
    // What was paid: the final amount once there is one.
    let amount: Amount = invoice.final_amount.unwrap_or(invoice.amount);
    let modified: DateTime<Utc> = invoice.modified_date;
    Ok(Settlement {
        order_id,
        state,
        amount,
        currency: if invoice.ccy == UAH {
            "UAH".into()
        } else {
            format!("ISO-{}", invoice.ccy)
        },
        provider_ref: invoice.invoice_id,
        status: invoice.status.as_str().to_string(),
        at: Some(modified.naive_utc()),
    })
}

/// A WayForPay payment (a verified callback, or `CHECK_STATUS`'s answer) as the word on our
/// order: only `Approved` pays.
pub fn wayforpay_settlement(payment: wayforpay::Payment) -> Settlement {
    let state = match payment.transaction_status {
        wayforpay::TransactionStatus::Approved => CardState::Paid,
        wayforpay::TransactionStatus::Declined => CardState::Failed,
        wayforpay::TransactionStatus::Expired => CardState::Expired,
        wayforpay::TransactionStatus::Refunded | wayforpay::TransactionStatus::Voided => {
            CardState::Reversed
        }
        _ => CardState::Pending,
    };
    Settlement {
        order_id: payment.order_reference,
        state,
        amount: payment.amount,
        currency: payment.currency,
        provider_ref: payment.auth_code.unwrap_or_default(),
        status: payment.transaction_status.as_str().to_string(),
        at: None,
    }
}

/// The merchant of a WayForPay system, `None` when its keys are another provider's.
pub fn merchant(card: &CardSettings) -> Option<wayforpay::Merchant> {
    match &card.credentials {
        Credentials::Wayforpay {
            merchant_account,
            secret_key,
            merchant_domain,
        } => Some(wayforpay::Merchant {
            account: merchant_account.clone(),
            domain: merchant_domain.clone(),
            secret_key: Secret::new(secret_key.clone()),
        }),
        _ => None,
    }
}
