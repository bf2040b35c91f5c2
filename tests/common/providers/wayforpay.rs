//! WayForPay's stand-in: the checkout page (`POST /pay`, the form with
//! `merchantSignature`) and `CHECK_STATUS` (`POST /api`). Callbacks are JSON posted to the
//! order's `serviceUrl`, signed with hex HMAC-MD5 over
//! `merchantAccount;orderReference;amount;currency;authCode;cardPan;transactionStatus;reasonCode`;
//! paysys's answer must be the signed `accept`, which the stand-in checks and records
//! ([`Delivery::accepted`]), posting again up to [`WayForPay::set_retries`] times when it
//! is not.
//!
//! The browser goes back to the shop's `returnUrl` by a `303` redirect, or — with
//! [`WayForPay::set_return_by_post`], as WayForPay itself does — by a page whose form POSTs
//! the payment's fields there and submits itself.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use md5::Md5;
use paysys::card::{wayforpay, Secret};
use paysys::domain::Amount;
use serde_json::Value;

use super::http::{HttpServer, Request, Response};
use super::{deliver, lock, unix_now, Delivery, Outgoing, Script};

/// The merchant a stand-in plays when the test names none.
pub const MERCHANT_ACCOUNT: &str = "standin_merch_n1";
pub const MERCHANT_DOMAIN: &str = "isp.example";
pub const SECRET_KEY: &str = "standin-secret-key-0123456789abcdef";

/// Lowercase hex HMAC-MD5 of `parts` joined by `;`.
pub fn sign(secret: &str, parts: &[&str]) -> String {
    let mut mac = Hmac::<Md5>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(parts.join(";").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An amount as WayForPay writes a JSON number: `150.5`, `150`, `150.25` (trailing zeros
/// dropped, so that paysys must sign the text it received, not its own formatting).
pub fn wire_amount(amount: Amount) -> String {
    let text = amount.to_string();
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `reasonCode` and `reason` for a status (codes from WayForPay's list).
fn reason(status: &str) -> (u32, &'static str) {
    match status {
        "Approved" | "Refunded" | "Voided" => (1100, "Ok"),
        "Declined" => (1101, "Declined To Card Issuer"),
        "Expired" => (1124, "Cardholder Session Expired"),
        "InProcessing" => (1131, "Transaction in processing"),
        _ => (1134, "Transaction pending"),
    }
}

/// An order as the stand-in saw it at checkout, and the payment's state since.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_reference: String,
    pub order_date: i64,
    pub amount: Amount,
    pub currency: String,
    pub service_url: String,
    pub return_url: String,
    /// The checkout form's fields, in order.
    pub form: Vec<(String, String)>,
    pub script: Script,
    /// `transactionStatus` as `CHECK_STATUS` reports it; `None`: no payment.
    pub status: Option<String>,
    pub paid_amount: Amount,
    pub paid_currency: String,
}

#[derive(Default)]
struct State {
    orders: Vec<Order>,
    requests: Vec<Request>,
    deliveries: Vec<Delivery>,
    rejected: Vec<String>,
}

struct Shared {
    account: String,
    domain: String,
    secret: String,
    retries: Mutex<usize>,
    return_by_post: Mutex<bool>,
    script: Mutex<Script>,
    state: Mutex<State>,
}

/// WayForPay on a 127.0.0.1 port; stopped on drop.
pub struct WayForPay {
    shared: Arc<Shared>,
    server: HttpServer,
}

impl WayForPay {
    /// As [`MERCHANT_ACCOUNT`] on [`MERCHANT_DOMAIN`] with [`SECRET_KEY`], [`Script::Pay`].
    pub fn start() -> WayForPay {
        WayForPay::with_merchant(MERCHANT_ACCOUNT, MERCHANT_DOMAIN, SECRET_KEY)
    }

    pub fn with_merchant(account: &str, domain: &str, secret: &str) -> WayForPay {
        let shared = Arc::new(Shared {
            account: account.to_string(),
            domain: domain.to_string(),
            secret: secret.to_string(),
            retries: Mutex::new(0),
            return_by_post: Mutex::new(false),
            script: Mutex::new(Script::Pay),
            state: Mutex::new(State::default()),
        });
        let handler_shared = Arc::clone(&shared);
        let server = HttpServer::start(move |request| handle(&handler_shared, request));
        WayForPay { shared, server }
    }

    /// What the next browser to arrive at the checkout gets.
    pub fn set_script(&self, script: Script) {
        *lock(&self.shared.script) = script;
    }

    /// How many more times a callback is posted while the answer is not the signed accept
    /// (0 by default: every callback once, its `accepted` recorded).
    pub fn set_retries(&self, retries: usize) {
        *lock(&self.shared.retries) = retries;
    }

    /// Whether the checkout sends the browser back to `returnUrl` as WayForPay does: a page
    /// whose form POSTs the payment's fields there, submitted by its script (a button
    /// without JavaScript). `false` (the default): a `303` redirect, which [`super::Browser`]
    /// follows.
    pub fn set_return_by_post(&self, on: bool) {
        *lock(&self.shared.return_by_post) = on;
    }

    /// `checkout_url` for the config.
    pub fn checkout_url(&self) -> String {
        format!("{}/pay", self.server.base_url())
    }

    /// `api_url` for the config: where `CHECK_STATUS` goes.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.base_url())
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn merchant_account(&self) -> &str {
        &self.shared.account
    }

    pub fn merchant_domain(&self) -> &str {
        &self.shared.domain
    }

    pub fn secret_key(&self) -> &str {
        &self.shared.secret
    }

    /// The merchant as `src/card` takes it.
    pub fn merchant(&self) -> wayforpay::Merchant {
        wayforpay::Merchant {
            account: self.shared.account.clone(),
            domain: self.shared.domain.clone(),
            secret_key: Secret::new(self.shared.secret.clone()),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.state).requests.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.state).deliveries.clone()
    }

    pub fn rejected(&self) -> Vec<String> {
        lock(&self.shared.state).rejected.clone()
    }

    pub fn orders(&self) -> Vec<Order> {
        lock(&self.shared.state).orders.clone()
    }

    pub fn order(&self, order_reference: &str) -> Option<Order> {
        lock(&self.shared.state)
            .orders
            .iter()
            .find(|o| o.order_reference == order_reference)
            .cloned()
    }

    /// Changes what `CHECK_STATUS` says (`None`: no payment), posting nothing.
    pub fn set_status(&self, order_reference: &str, status: Option<&str>) {
        self.shared
            .with_order(order_reference, |o| o.status = status.map(str::to_string));
    }

    /// The signed callback for the order with `transactionStatus` `status`, not posted and
    /// changing nothing.
    pub fn callback_for(&self, order_reference: &str, status: &str) -> Outgoing {
        let order = self
            .order(order_reference)
            .unwrap_or_else(|| no_order(order_reference));
        self.shared.callback(&order, status, &self.shared.secret)
    }

    /// Posts `out` as it is (a test may have tampered with it), checks the answer and
    /// records the delivery (retries included).
    pub fn send(&self, out: &Outgoing) -> Delivery {
        self.shared.send(out)
    }

    /// The payment's status becomes `status`, and a signed callback says so.
    pub fn post_callback(&self, order_reference: &str, status: &str) -> Delivery {
        self.set_status(order_reference, Some(status));
        let out = self.callback_for(order_reference, status);
        self.send(&out)
    }
}

fn no_order(order_reference: &str) -> ! {
    panic!("WayForPay stand-in: no order '{order_reference}' came to checkout")
}

impl Shared {
    fn with_order(&self, order_reference: &str, change: impl FnOnce(&mut Order)) {
        let mut state = lock(&self.state);
        let order = state
            .orders
            .iter_mut()
            .find(|o| o.order_reference == order_reference)
            .unwrap_or_else(|| no_order(order_reference));
        change(order);
    }

    fn reject(&self, why: String) -> Response {
        lock(&self.state).rejected.push(why.clone());
        Response::text(400, format!("WayForPay stand-in refused: {why}\n"))
    }

    /// Whether `answer` is the signed accept for `order_reference`.
    fn is_accept(&self, order_reference: &str, answer: &Result<super::Answer, String>) -> bool {
        let Ok(answer) = answer else { return false };
        if answer.status != 200 {
            return false;
        }
        let Ok(json) = serde_json::from_slice::<Value>(&answer.body) else {
            return false;
        };
        let (Some(reference), Some("accept"), Some(time), Some(signature)) = (
            json.get("orderReference").and_then(Value::as_str),
            json.get("status").and_then(Value::as_str),
            json.get("time").and_then(Value::as_i64),
            json.get("signature").and_then(Value::as_str),
        ) else {
            return false;
        };
        reference == order_reference
            && signature == sign(&self.secret, &[reference, "accept", &time.to_string()])
    }

    fn send(&self, out: &Outgoing) -> Delivery {
        let reference = serde_json::from_slice::<Value>(&out.body)
            .ok()
            .and_then(|j| j.get("orderReference")?.as_str().map(str::to_string))
            .unwrap_or_default();
        let tries = 1 + *lock(&self.retries);
        let mut last = None;
        for _ in 0..tries {
            let answer = deliver(out);
            let accepted = self.is_accept(&reference, &answer);
            let delivery = Delivery {
                sent: out.clone(),
                answer,
                accepted: Some(accepted),
            };
            lock(&self.state).deliveries.push(delivery.clone());
            last = Some(delivery);
            if accepted {
                break;
            }
        }
        last.expect("at least one try")
    }

    /// The fields a callback and a `CHECK_STATUS` answer carry, signed with `secret`.
    fn payment_json(&self, order: &Order, status: &str, secret: &str) -> String {
        let amount = wire_amount(order.paid_amount);
        let auth_code = "541963";
        let card_pan = "41****8217";
        let (reason_code, reason_text) = reason(status);
        let signature = sign(
            secret,
            &[
                &self.account,
                &order.order_reference,
                &amount,
                &order.paid_currency,
                auth_code,
                card_pan,
                status,
                &reason_code.to_string(),
            ],
        );
        let s = |t: &str| serde_json::to_string(t).expect("a string serializes");
        format!(
            "{{\"merchantAccount\":{account},\"orderReference\":{reference},\
             \"merchantSignature\":{signature},\"amount\":{amount},\"currency\":{currency},\
             \"authCode\":{auth_code},\"email\":\"payer@example.com\",\
             \"phone\":\"380501234567\",\"createdDate\":{created},\
             \"processingDate\":{now},\"cardPan\":{card_pan},\"cardType\":\"Visa\",\
             \"issuerBankCountry\":\"Ukraine\",\"issuerBankName\":\"Privatbank\",\
             \"recToken\":\"\",\"transactionStatus\":{status},\"reason\":{reason_text},\
             \"reasonCode\":{reason_code},\"fee\":0,\"paymentSystem\":\"card\",\
             \"rrn\":\"412345678901\"}}",
            account = s(&self.account),
            reference = s(&order.order_reference),
            signature = s(&signature),
            currency = s(&order.paid_currency),
            auth_code = s(auth_code),
            created = order.order_date,
            now = unix_now(),
            card_pan = s(card_pan),
            status = s(status),
            reason_text = s(reason_text),
        )
    }

    fn callback(&self, order: &Order, status: &str, secret: &str) -> Outgoing {
        Outgoing {
            url: order.service_url.clone(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: self.payment_json(order, status, secret).into_bytes(),
        }
    }

    fn checkout(&self, request: &Request) -> Response {
        if request.method != "POST" {
            return Response::text(405, "POST the checkout form\n");
        }
        let form = request.form();
        let one = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let all = |name: &str| -> Vec<String> {
            form.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let names = all("productName[]");
        let counts = all("productCount[]");
        let prices = all("productPrice[]");
        if names.is_empty() || names.len() != counts.len() || names.len() != prices.len() {
            return self.reject(format!(
                "checkout: products do not line up: {} names, {} counts, {} prices",
                names.len(),
                counts.len(),
                prices.len()
            ));
        }
        let mut signed = vec![
            one("merchantAccount"),
            one("merchantDomainName"),
            one("orderReference"),
            one("orderDate"),
            one("amount"),
            one("currency"),
        ];
        signed.extend(names.iter().cloned());
        signed.extend(counts.iter().cloned());
        signed.extend(prices.iter().cloned());
        let parts: Vec<&str> = signed.iter().map(String::as_str).collect();
        if one("merchantSignature") != sign(&self.secret, &parts) {
            return self.reject(format!(
                "checkout: merchantSignature does not verify over '{}'",
                parts.join(";")
            ));
        }
        if one("merchantAccount") != self.account {
            return self.reject(format!(
                "checkout: merchantAccount '{}' is not this merchant",
                one("merchantAccount")
            ));
        }
        if one("merchantDomainName") != self.domain {
            return self.reject(format!(
                "checkout: merchantDomainName '{}' is not the registered '{}'",
                one("merchantDomainName"),
                self.domain
            ));
        }
        for name in ["orderReference", "currency", "serviceUrl", "returnUrl"] {
            if one(name).is_empty() {
                return self.reject(format!("checkout: no {name}"));
            }
        }
        let Ok(order_date) = one("orderDate").parse::<i64>() else {
            return self.reject(format!("checkout: orderDate '{}'", one("orderDate")));
        };
        let amount = match Amount::parse(&one("amount")) {
            Ok(a) if a.kopecks() > 0 => a,
            _ => return self.reject(format!("checkout: amount '{}'", one("amount"))),
        };
        let script = lock(&self.script).clone();
        let order = Order {
            order_reference: one("orderReference"),
            order_date,
            amount,
            currency: one("currency"),
            service_url: one("serviceUrl"),
            return_url: one("returnUrl"),
            form: form.clone(),
            script: script.clone(),
            status: None,
            paid_amount: match script {
                Script::PayOtherAmount(other) => other,
                _ => amount,
            },
            paid_currency: match script {
                Script::PayOtherCurrency => "USD".into(),
                _ => one("currency"),
            },
        };
        {
            let mut state = lock(&self.state);
            if state.orders.iter().any(|o| {
                o.order_reference == order.order_reference
                    && o.status.as_deref() == Some("Approved")
            }) {
                let why = format!(
                    "checkout: order '{}' is already paid (Duplicate Order ID)",
                    order.order_reference
                );
                drop(state);
                return self.reject(why);
            }
            state
                .orders
                .retain(|o| o.order_reference != order.order_reference);
            state.orders.push(order.clone());
        }
        self.play(&order, &script);
        if *lock(&self.return_by_post) {
            return self.return_page(&order.order_reference);
        }
        Response::see_other(&order.return_url)
    }

    /// The page that takes the browser back to the shop by a POST of the payment's fields
    /// (those of the callback, as the order stands now; only the merchant and the order when
    /// there is no payment).
    fn return_page(&self, order_reference: &str) -> Response {
        let order = lock(&self.state)
            .orders
            .iter()
            .find(|o| o.order_reference == order_reference)
            .cloned()
            .unwrap_or_else(|| no_order(order_reference));
        let mut fields = vec![
            ("merchantAccount".to_string(), self.account.clone()),
            ("orderReference".to_string(), order.order_reference.clone()),
        ];
        if let Some(status) = &order.status {
            let json = self.payment_json(&order, status, &self.secret);
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&json) {
                fields = map
                    .into_iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect();
            }
        }
        let mut inputs = String::new();
        for (name, value) in &fields {
            inputs.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(name),
                html_escape(value)
            ));
        }
        let status = order.status.as_deref().unwrap_or("no payment");
        Response::new(
            200,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><html><head><meta charset=\"utf-8\">\
                 <title>WayForPay stand-in</title></head><body>\
                 <p id=\"standin\">WayForPay stand-in: {}; back to the shop…</p>\
                 <form id=\"back\" method=\"post\" action=\"{}\">{inputs}\
                 <button type=\"submit\">Back to the shop</button></form>\
                 <script>document.getElementById('back').submit();</script></body></html>",
                html_escape(status),
                html_escape(&order.return_url)
            ),
        )
    }

    fn play(&self, order: &Order, script: &Script) {
        let secret = self.secret.as_str();
        let set = |status: &str| {
            self.with_order(&order.order_reference, |o| {
                o.status = Some(status.to_string())
            })
        };
        let post = |status: &str, times: usize, secret: &str| {
            let out = self.callback(order, status, secret);
            for _ in 0..times {
                self.send(&out);
            }
        };
        match script {
            Script::Pay | Script::PayOtherAmount(_) | Script::PayOtherCurrency => {
                set("Approved");
                post("Approved", 1, secret);
            }
            Script::Fail => {
                set("Declined");
                post("Declined", 1, secret);
            }
            Script::PayNoCallback => set("Approved"),
            Script::PayTwice => {
                set("Approved");
                post("Approved", 2, secret);
            }
            Script::PayOutOfOrder => {
                set("Approved");
                post("Approved", 1, secret);
                post("InProcessing", 1, secret);
            }
            Script::PayThenReverse => {
                set("Approved");
                post("Approved", 1, secret);
                set("Refunded");
                post("Refunded", 1, secret);
            }
            Script::InProgress => {
                set("InProcessing");
                post("InProcessing", 1, secret);
            }
            Script::Abandon => {}
            Script::ForgedSuccess => post("Approved", 1, &format!("{secret}-not-the-merchants")),
        }
    }

    fn check_status(&self, request: &Request) -> Response {
        let refusal = |code: u32, reason: &str| {
            Response::json(
                200,
                format!(
                    "{{\"reasonCode\":{code},\"reason\":{}}}",
                    serde_json::to_string(reason).expect("string")
                ),
            )
        };
        if request.method != "POST" {
            return Response::text(405, "POST a JSON request\n");
        }
        let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(&request.body) else {
            lock(&self.state)
                .rejected
                .push("api: body is not a JSON object".into());
            return refusal(1109, "Format error");
        };
        let text = |name: &str| json.get(name).and_then(Value::as_str).unwrap_or("");
        if text("transactionType") != "CHECK_STATUS" {
            let why = format!("api: transactionType '{}'", text("transactionType"));
            lock(&self.state).rejected.push(why);
            return refusal(1117, "Api not allowed");
        }
        let reference = text("orderReference");
        if text("merchantAccount") != self.account
            || text("merchantSignature") != sign(&self.secret, &[&self.account, reference])
        {
            lock(&self.state).rejected.push(format!(
                "api: CHECK_STATUS for '{reference}': merchantAccount '{}' or its signature \
                 does not verify",
                text("merchantAccount")
            ));
            return refusal(1113, "Invalid signature");
        }
        let order = lock(&self.state)
            .orders
            .iter()
            .find(|o| o.order_reference == reference)
            .cloned();
        match order {
            Some(order) => match order.status.as_deref() {
                Some(status) => {
                    Response::json(200, self.payment_json(&order, status, &self.secret))
                }
                None => refusal(1127, "Order not found"),
            },
            None => refusal(1127, "Order not found"),
        }
    }
}

/// Text made safe for HTML content and quoted attribute values.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn handle(shared: &Shared, request: &Request) -> Response {
    lock(&shared.state).requests.push(request.clone());
    match request.path() {
        "/pay" => shared.checkout(request),
        "/api" => shared.check_status(request),
        other => Response::text(404, format!("WayForPay stand-in: nothing at {other}\n")),
    }
}
