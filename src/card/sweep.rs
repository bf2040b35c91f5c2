//! `paysys sweep`: the card orders whose callback never came, settled from the provider's
//! status API.
//!
//! For each card system of the config, each of its orders still `waiting` — and, until its
//! validity ends, each that `failed` (a provider may take a second attempt after a declined
//! one, and its callback may be lost too) — is asked about
//! (LiqPay's status request, Monobank's invoice status, WayForPay's `CHECK_STATUS`; at
//! most [`ORDERS_PER_RUN`] a run, those never asked or asked longest ago first), and
//! the provider's word is settled by [`pipeline::settle_order`] — the very path a verified
//! callback takes, so the two can never differ: a success is the pay of the order (exactly
//! once by the order id, through the ledger), a failure, an expiry or a reversal is noted.
//! A word that the payment is still in progress, or that the provider knows no payment
//! yet, changes nothing (and writes nothing) until the order's validity ends; then the
//! order is asked one last time — a late success is still credited — and, when nothing
//! came of it, given up as `expired`.
//!
//! Running next to callbacks and next to another sweep is safe without locks of its own:
//! whoever settles a success first pays it (the ledger's UNIQUE key on (system, order id)
//! and the order row locked in the pay's transaction), the others find it paid
//! (`repeat`); a noted state never takes back a paid order (`order::note`'s own
//! condition), so an `expired` or `failed` racing a success loses to it whichever commits
//! first. No row lock is held while the provider is asked: a lock held over a network call
//! would make a callback for that order wait on it.
//!
//! The pure parts — which request to send ([`status_request`]) and what an answer means
//! ([`interpret`]) — take no I/O; [`Http`] sends the requests (feature `sweep`).

use std::fmt;

use chrono::{DateTime, Local};

use crate::card::callback::{
    liqpay_settlement, merchant, monobank_settlement, wayforpay_settlement,
};
use crate::card::order::{self, Waiting};
use crate::card::{liqpay, monobank, wayforpay, Secret};
use crate::config::{CardSettings, Config, Credentials, ProtocolKind, System};
use crate::db::{self, Connections};
use crate::outcome::{CardState, Outcome, Refusal, Settlement};
use crate::pipeline;

/// The most waiting orders of one system asked about in one run; the rest wait for the
/// next run (a minute later, from the timer), and are asked first then: the orders are
/// taken never-asked first, then asked longest ago ([`order::waiting`]).
pub const ORDERS_PER_RUN: u32 = 1000;

/// One request to a provider's status API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    pub url: String,
    /// Besides `Content-Type`.
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: String,
}

/// What the provider said about an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    /// It knows a payment for the order: its word, ready to be settled.
    Word(Settlement),
    /// It knows no payment for the order (yet): its own words for that.
    NoPayment(String),
    /// The order cannot be asked about (a Monobank order with no invoiceId stored).
    CannotAsk(String),
}

/// Why an order could not be asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskError {
    /// The provider did not answer (connection, timeout, HTTP 5xx): the system's other
    /// orders are left for the next run.
    NoAnswer(String),
    /// It answered, but not with a word on the order: refused our request (wrong keys), or
    /// an answer that does not parse. Needs the admin.
    Refused(String),
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::NoAnswer(why) => write!(f, "no answer: {why}"),
            AskError::Refused(why) => f.write_str(why),
        }
    }
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Asks providers. [`Http`] over the network; tests may answer otherwise.
pub trait StatusApi {
    fn send(&self, request: &StatusRequest) -> Result<HttpAnswer, AskError>;
}

/// The status request for `waiting`'s order of a system with `card` settings, or why the
/// order cannot be asked about yet.
pub fn status_request(
    protocol: ProtocolKind,
    card: &CardSettings,
    waiting: &Waiting,
) -> Result<StatusRequest, String> {
    let order_id = waiting.order.order_id.as_str();
    match (&card.credentials, protocol) {
        (
            Credentials::Liqpay {
                public_key,
                private_key,
            },
            ProtocolKind::Liqpay,
        ) => {
            let keys = liqpay::Keys {
                public_key: public_key.clone(),
                private_key: Secret::new(private_key.clone()),
            };
            Ok(StatusRequest {
                method: "POST",
                url: card.api_url.clone(),
                headers: Vec::new(),
                content_type: Some("application/x-www-form-urlencoded"),
                body: liqpay::status_request(&keys, order_id).form_body(),
            })
        }
        (Credentials::Monobank { token, .. }, ProtocolKind::Monobank) => {
            if waiting.order.provider_ref.is_empty() {
                return Err(
                    "no Monobank invoiceId stored for it (invoice/create never answered?): \
                     Monobank is asked by invoice, so it cannot be asked"
                        .into(),
                );
            }
            let query = serde_urlencoded::to_string([("invoiceId", &waiting.order.provider_ref)])
                .map_err(|e| format!("invoiceId cannot be put in a URL: {e}"))?;
            Ok(StatusRequest {
                method: "GET",
                url: format!(
                    "{}/api/merchant/invoice/status?{query}",
                    card.api_url.trim_end_matches('/')
                ),
                headers: vec![("X-Token", token.clone())],
                content_type: None,
                body: String::new(),
            })
        }
        (Credentials::Wayforpay { .. }, ProtocolKind::Wayforpay) => {
            let merchant = merchant(card).ok_or("the system's keys are not WayForPay's")?;
            let body =
                wayforpay::check_status_request(&merchant, order_id).map_err(|e| e.to_string())?;
            Ok(StatusRequest {
                method: "POST",
                url: card.api_url.clone(),
                headers: Vec::new(),
                content_type: Some("application/json"),
                body,
            })
        }
        _ => Err(format!(
            "the system's keys are not those of protocol {}",
            protocol.name()
        )),
    }
}

/// What the provider's `answer` to [`status_request`] says about `waiting`'s order. The
/// answer is read as the callback's word is ([`liqpay_settlement`] and its siblings); an
/// answer about another order is refused.
pub fn interpret(
    protocol: ProtocolKind,
    card: &CardSettings,
    waiting: &Waiting,
    answer: &HttpAnswer,
) -> Result<Asked, AskError> {
    let order_id = waiting.order.order_id.as_str();
    if answer.status >= 500 {
        return Err(AskError::NoAnswer(format!(
            "the status API answered HTTP {}",
            answer.status
        )));
    }
    let bad = |e: crate::card::Error| AskError::Refused(format!("HTTP {}: {e}", answer.status));
    let refused = |code: &str, text: &str| {
        AskError::Refused(format!(
            "the status API refused the request: {code} {text} (check the system's keys)"
        ))
    };
    match (&card.credentials, protocol) {
        (
            Credentials::Liqpay {
                public_key,
                private_key,
            },
            ProtocolKind::Liqpay,
        ) => {
            let keys = liqpay::Keys {
                public_key: public_key.clone(),
                private_key: Secret::new(private_key.clone()),
            };
            match liqpay::parse_status_answer(&keys, order_id, &answer.body).map_err(bad)? {
                liqpay::StatusAnswer::Payment(p) => Ok(Asked::Word(liqpay_settlement(card, p))),
                liqpay::StatusAnswer::Refused(r) if r.code == "payment_not_found" => {
                    Ok(Asked::NoPayment(r.code))
                }
                liqpay::StatusAnswer::Refused(r) => Err(refused(&r.code, &r.text)),
            }
        }
        (Credentials::Monobank { .. }, ProtocolKind::Monobank) => {
            let invoice_id = waiting.order.provider_ref.as_str();
            match monobank::parse_status_answer(invoice_id, &answer.body).map_err(bad)? {
                monobank::StatusAnswer::Invoice(invoice) => {
                    if invoice.reference.as_deref() != Some(order_id) {
                        return Err(AskError::Refused(format!(
                            "invoice {invoice_id} is for reference {:?}, not this order",
                            invoice.reference.as_deref().unwrap_or("")
                        )));
                    }
                    monobank_settlement(invoice)
                        .map(Asked::Word)
                        .map_err(AskError::Refused)
                }
                monobank::StatusAnswer::Refused(r)
                    if answer.status == 404 || r.code == "NOT_FOUND" =>
                {
                    Ok(Asked::NoPayment(r.code))
                }
                monobank::StatusAnswer::Refused(r) => Err(refused(&r.code, &r.text)),
            }
        }
        (Credentials::Wayforpay { .. }, ProtocolKind::Wayforpay) => {
            let merchant = merchant(card)
                .ok_or_else(|| AskError::Refused("the system's keys are not WayForPay's".into()))?;
            match wayforpay::parse_check_status_answer(&merchant, order_id, &answer.body)
                .map_err(bad)?
            {
                wayforpay::StatusAnswer::Payment(p) => Ok(Asked::Word(wayforpay_settlement(p))),
                // 1127: Order Not Found, WayForPay's word for an order never paid.
                wayforpay::StatusAnswer::Refused(r)
                    if r.code == "1127" || r.text.to_ascii_lowercase().contains("not found") =>
                {
                    Ok(Asked::NoPayment(format!("{} {}", r.code, r.text)))
                }
                wayforpay::StatusAnswer::Refused(r) => Err(refused(&r.code, &r.text)),
            }
        }
        _ => Err(AskError::Refused(format!(
            "the system's keys are not those of protocol {}",
            protocol.name()
        ))),
    }
}

/// An order the sweep changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub order_id: String,
    pub system: String,
    pub account: String,
    pub sum: String,
    /// What the order was: `waiting`, or `failed` (asked again within its validity).
    pub from: String,
    /// `paid`, `failed`, `expired`, `reversed`, `mismatch`.
    pub state: String,
    /// The payment's `prv_txn`, when it paid.
    pub prv_txn: Option<u64>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} → {}",
            self.order_id, self.system, self.account, self.sum, self.from, self.state
        )?;
        if let Some(prv_txn) = self.prv_txn {
            write!(f, " (prv_txn {prv_txn})")?;
        }
        Ok(())
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub systems: usize,
    /// Waiting orders found.
    pub waiting: usize,
    /// Asked about (the others: not askable, or left after a provider did not answer).
    pub asked: usize,
    pub changes: Vec<Change>,
    /// Settled meanwhile by someone else (a callback, another sweep).
    pub settled_elsewhere: usize,
    /// Still waiting: in progress, or no payment yet, within their validity.
    pub still_waiting: usize,
    /// Orders that cannot be asked yet, and why.
    pub not_askable: Vec<String>,
    /// What went wrong, one line each (an order, a system, the database).
    pub errors: Vec<String>,
}

impl Summary {
    fn count(&self, state: &str) -> usize {
        self.changes.iter().filter(|c| c.state == state).count()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sweep: {} waiting orders in {} card systems, {} asked: {} paid, {} failed, \
             {} expired, {} other changes, {} settled meanwhile by a callback, {} still \
             waiting, {} cannot be asked yet; {} errors",
            self.waiting,
            self.systems,
            self.asked,
            self.count("paid"),
            self.count("failed"),
            self.count("expired"),
            self.changes.len() - self.count("paid") - self.count("failed") - self.count("expired"),
            self.settled_elsewhere,
            self.still_waiting,
            self.not_askable.len(),
            self.errors.len()
        )
    }
}

/// One run over every card system of `config`: each change is handed to `changed` as it
/// happens (the command prints it at once), the rest is counted in the [`Summary`].
pub fn sweep(
    config: &Config,
    api: &dyn StatusApi,
    conns: &mut Connections,
    changed: &mut dyn FnMut(&Change),
) -> Summary {
    let mut summary = Summary::default();
    for system in config.systems.iter().filter(|s| s.protocol.card()) {
        let Some(card) = system.card() else {
            summary.errors.push(format!(
                "{}: a card system with no keys in the config: its orders are not asked about",
                system.name
            ));
            continue;
        };
        summary.systems += 1;
        let waiting = match conns.get(&config.database, db::Use::Read).and_then(|conn| {
            // Monobank is asked by invoice: an order with none was never sent on to it.
            let needs_ref = system.protocol == ProtocolKind::Monobank;
            order::waiting(conn, &system.name, needs_ref, ORDERS_PER_RUN).map_err(|e| e.to_string())
        }) {
            Ok(waiting) => waiting,
            Err(why) => {
                conns.done(false);
                summary.errors.push(format!(
                    "{}: waiting orders cannot be read: {why}",
                    system.name
                ));
                continue;
            }
        };
        summary.waiting += waiting.len();
        for (i, w) in waiting.iter().enumerate() {
            match sweep_one(config, system, card, api, conns, w, &mut summary) {
                Ok(Some(change)) => {
                    changed(&change);
                    summary.changes.push(change);
                }
                Ok(None) => {}
                Err(AskError::NoAnswer(why)) => {
                    let left = waiting.len() - i - 1;
                    summary.errors.push(format!(
                        "{}: {} did not answer ({why}); {} orders left for the next run",
                        system.name,
                        card.api_url,
                        left + 1
                    ));
                    break;
                }
                Err(AskError::Refused(why)) => summary
                    .errors
                    .push(format!("{} {}: {why}", w.order.order_id, system.name)),
            }
        }
    }
    summary
}

/// Asks about one order and settles the answer: the change it made, if any.
fn sweep_one(
    config: &Config,
    system: &System,
    card: &CardSettings,
    api: &dyn StatusApi,
    conns: &mut Connections,
    w: &Waiting,
    summary: &mut Summary,
) -> Result<Option<Change>, AskError> {
    let asked = match status_request(system.protocol, card, w) {
        Ok(request) => {
            summary.asked += 1;
            // Asked now, whatever the answer: the next run asks others first.
            if let Err(why) = conns
                .get(&config.database, db::Use::Write)
                .and_then(|conn| order::polled(conn, &w.order).map_err(|e| e.to_string()))
            {
                conns.done(false);
                summary.errors.push(format!(
                    "{} {}: the time it was asked is not noted: {why}",
                    w.order.order_id, system.name
                ));
            }
            let answer = api.send(&request)?;
            interpret(system.protocol, card, w, &answer)?
        }
        Err(why) => Asked::CannotAsk(why),
    };
    let settlement = match asked {
        Asked::Word(s) if s.state != CardState::Pending => s,
        // In progress at the provider (LiqPay's wait_accept or hold_wait, Monobank's
        // processing or hold: the money may already be taken): never given up, however old
        // the order is; asked again on every run until the provider says how it ended.
        Asked::Word(_) => {
            summary.still_waiting += 1;
            return Ok(None);
        }
        // No payment yet, not askable: nothing to write while the order is valid; after,
        // it is given up.
        other if !w.overdue => {
            match other {
                Asked::CannotAsk(why) => summary
                    .not_askable
                    .push(format!("{} {}: {why}", w.order.order_id, system.name)),
                _ => summary.still_waiting += 1,
            }
            return Ok(None);
        }
        // Never sent on to the provider (no Monobank invoice) and past its validity: given
        // up here. Nothing can pay it (a webhook must name the invoice made for the order),
        // so the path of a provider's word, which checks that invoice, is not taken.
        Asked::CannotAsk(why) => {
            let noted = conns
                .get(&config.database, db::Use::Write)
                .and_then(|conn| {
                    order::note_and_close(
                        conn,
                        crate::billing::of(config.database.billing),
                        system,
                        &w.order,
                        CardState::Expired,
                        "expired, never sent on to the provider",
                        "",
                        None,
                    )
                    .map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    conns.done(false);
                    AskError::Refused(format!("not given up ({why}): {e}"))
                })?;
            return Ok(noted.then(|| Change {
                from: w.order.state.clone(),
                order_id: w.order.order_id.clone(),
                system: system.name.clone(),
                account: w.order.account.clone(),
                sum: w.order.amount.to_string(),
                state: "expired".into(),
                prv_txn: None,
            }));
        }
        other => {
            let word = match other {
                Asked::Word(s) => s.status,
                Asked::NoPayment(word) => word,
                Asked::CannotAsk(_) => String::new(),
            };
            Settlement {
                order_id: w.order.order_id.clone(),
                state: CardState::Expired,
                amount: w.order.charged,
                currency: w.order.currency.clone(),
                // The invoice the order was made with (Monobank): the settle checks the word
                // is about it.
                provider_ref: w.order.provider_ref.clone(),
                status: if word.is_empty() {
                    "expired".into()
                } else {
                    word
                },
                at: None,
            }
        }
    };
    let now: DateTime<Local> = Local::now();
    let outcome = pipeline::settle_order(config, system, settlement, conns, now);
    let change = |state: &str, prv_txn: Option<u64>| Change {
        from: w.order.state.clone(),
        order_id: w.order.order_id.clone(),
        system: system.name.clone(),
        account: w.order.account.clone(),
        sum: w.order.amount.to_string(),
        state: state.to_string(),
        prv_txn,
    };
    match outcome {
        Outcome::Paid {
            prv_txn,
            repeat: false,
            ..
        } => Ok(Some(change("paid", Some(prv_txn)))),
        Outcome::Paid { repeat: true, .. } => {
            summary.settled_elsewhere += 1;
            Ok(None)
        }
        Outcome::Noted { .. } | Outcome::Refused(Refusal::Conflict { .. }) => {
            // What the order is now: noted by us, or settled by someone else meanwhile.
            let now_state = conns
                .get(&config.database, db::Use::Read)
                .and_then(|conn| {
                    order::find(conn, &system.name, &w.order.order_id).map_err(|e| e.to_string())
                })
                .map_err(|why| AskError::Refused(format!("the order cannot be read again: {why}")))?
                .map(|o| o.state)
                .unwrap_or_default();
            match now_state.as_str() {
                "waiting" => {
                    summary.still_waiting += 1;
                    Ok(None)
                }
                "paid" => {
                    summary.settled_elsewhere += 1;
                    Ok(None)
                }
                // A failed order asked again within its validity, still failed.
                state if state == w.order.state => {
                    summary.still_waiting += 1;
                    Ok(None)
                }
                state => Ok(Some(change(state, None))),
            }
        }
        Outcome::Refused(refusal) => Err(AskError::Refused(format!(
            "the provider's word was not settled: {}",
            refusal.detail()
        ))),
        Outcome::Failed(fault) => Err(AskError::Refused(format!(
            "not settled, tried again next run: {}",
            fault.detail()
        ))),
        other => Err(AskError::Refused(format!("unexpected outcome {other:?}"))),
    }
}

/// The status APIs over HTTPS: rustls with the built-in roots, a bounded time per request,
/// redirects not followed.
#[cfg(feature = "sweep")]
pub struct Http {
    agent: ureq::Agent,
}

#[cfg(feature = "sweep")]
impl Http {
    /// `timeout`: for the whole of one request (connect, send, answer).
    pub fn new(timeout: std::time::Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("paysys-sweep/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

#[cfg(feature = "sweep")]
impl StatusApi for Http {
    fn send(&self, request: &StatusRequest) -> Result<HttpAnswer, AskError> {
        let url = &request.url;
        let failed = |e: ureq::Error| match e {
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                AskError::Refused(format!("api_url {url} is not a usable URL: {e}"))
            }
            e => AskError::NoAnswer(format!("{url}: {e}")),
        };
        let result = if request.method == "GET" {
            let mut r = self.agent.get(url);
            for (name, value) in &request.headers {
                r = r.header(*name, value);
            }
            r.call()
        } else {
            let mut r = self.agent.post(url);
            for (name, value) in &request.headers {
                r = r.header(*name, value);
            }
            r.content_type(request.content_type.unwrap_or("application/json"))
                .send(request.body.as_bytes())
        };
        let mut response = result.map_err(failed)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(crate::card::MAX_BODY as u64 + 1)
            .read_to_vec()
            .map_err(failed)?;
        Ok(HttpAnswer { status, body })
    }
}
