//! Stand-ins for the card providers' APIs: LiqPay, Monobank acquiring and WayForPay, each a
//! small HTTP server on a free 127.0.0.1 port that a test starts, points a config at
//! (`checkout_url()`, `api_url()`, the keys), and drops at the end. The only network is
//! loopback.
//!
//! Each stand-in plays the provider's side of a card payment as paysys will meet it:
//!
//! * it checks what paysys sends (the signed checkout form, the `X-Token`, the signed status
//!   request) with the merchant keys the stand-in was made with, and refuses what does not
//!   verify, as the provider would;
//! * a browser that lands on its checkout page "pays" per the stand-in's [`Script`]: the
//!   stand-in posts the signed callback (webhook, `serviceUrl` call) to the URL the order
//!   named, **before** it redirects the browser back, so that a test that followed the
//!   redirect can look at the database at once;
//! * its status API answers with the order's current state;
//! * a test can post a callback by hand (`post_callback(order, status)`), or build one
//!   (`callback_for`), tamper with it and [`send`](LiqPay::send) it;
//! * it records every request it got ([`Request`]) and every callback it posted
//!   ([`Delivery`], with paysys's answer).
//!
//! The signing code here (LiqPay's SHA-1, Monobank's ECDSA P-256, WayForPay's HMAC-MD5) is
//! the provider's half and exists only for tests; `src/card` only verifies.
//!
//! [`http`] is the HTTP/1.1 server and client underneath; tests use its [`HttpServer`] for a
//! receiver playing paysys's callback URL and its [`Browser`] to follow redirects.

#![allow(dead_code)]

pub mod http;
pub mod liqpay;
pub mod monobank;
pub mod wayforpay;

#[allow(unused_imports)]
pub use http::{Answer, Browser, HttpServer, Request, Response, Visit};
#[allow(unused_imports)]
pub use liqpay::LiqPay;
#[allow(unused_imports)]
pub use monobank::Monobank;
#[allow(unused_imports)]
pub use wayforpay::WayForPay;

use paysys::domain::Amount;

/// What happens when a browser lands on a stand-in's checkout page. A stand-in applies the
/// script it holds at that moment ([`LiqPay::set_script`], …) to the order, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// The payment succeeds; one signed callback says so.
    Pay,
    /// The payment fails (declined card); one signed callback says so.
    Fail,
    /// The payment succeeds but no callback ever comes: only the status API knows (the
    /// sweeper's case).
    PayNoCallback,
    /// The payment succeeds; the same callback, byte for byte, is posted twice.
    PayTwice,
    /// The payment succeeds for another sum: the callback and the status API name `Amount`,
    /// not the order's.
    PayOtherAmount(Amount),
    /// The payment succeeds in another currency (USD, ccy 840): callback and status API.
    PayOtherCurrency,
    /// The payment succeeds; then an older in-progress callback arrives after the success
    /// (Monobank: `processing` with an earlier `modifiedDate`).
    PayOutOfOrder,
    /// The payment succeeds (one callback), then is reversed/refunded (a second callback).
    PayThenReverse,
    /// The payment stays in progress (`processing`, `InProcessing`): one callback says so.
    InProgress,
    /// The payer leaves the page: no payment, no callback. The status API knows no payment
    /// (LiqPay, WayForPay) or an invoice still `created` (Monobank).
    Abandon,
    /// No payment happens, but a "success" callback signed with a wrong key is posted: a
    /// forgery. The status API knows no payment.
    ForgedSuccess,
}

/// A callback a stand-in is about to post: a test may change any part before
/// [`LiqPay::send`] (or the others' `send`) posts it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    /// `Content-Type` included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }
}

/// A callback a stand-in posted, and what it got back.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub sent: Outgoing,
    /// paysys's answer, or why there was none (connection refused, timeout).
    pub answer: Result<Answer, String>,
    /// WayForPay only: whether the answer was the signed `accept` for this order (without
    /// it WayForPay keeps posting). `None` for the other providers.
    pub accepted: Option<bool>,
}

impl Delivery {
    /// The HTTP status paysys answered, 0 when it did not answer.
    pub fn status(&self) -> u16 {
        self.answer.as_ref().map(|a| a.status).unwrap_or(0)
    }
}

/// Posts `out` and records nothing: the caller records the [`Delivery`].
fn deliver(out: &Outgoing) -> Result<Answer, String> {
    let headers: Vec<(&str, &str)> = out
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http::request("POST", &out.url, &headers, &out.body)
}

/// Seconds since 1970, now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The lock's value, also after a panic elsewhere poisoned it (a failed assertion in a
/// test thread must not hide the request log).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
