//! LiqPay's stand-in: the checkout page (`POST /api/3/checkout`, the form our page
//! auto-submits) and the status API (`POST /api/request`), both `data` + `signature` forms
//! signed with SHA-1 over `private_key + data + private_key`; callbacks posted the same way
//! to the order's `server_url`.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use paysys::card::{liqpay, Secret};
use paysys::domain::Amount;
use serde_json::Value;
use sha1::{Digest, Sha1};

use super::http::{HttpServer, Request, Response};
use super::{deliver, lock, unix_now, Delivery, Outgoing, Script};

/// The keys a stand-in uses when the test names none.
pub const PUBLIC_KEY: &str = "sandbox_i00000000042";
pub const PRIVATE_KEY: &str = "sandbox_standin_private_key_0123456789abcdef";

/// base64(SHA-1(private_key + data + private_key)), LiqPay's signature.
pub fn sign(private_key: &str, data: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(private_key.as_bytes());
    sha.update(data.as_bytes());
    sha.update(private_key.as_bytes());
    BASE64.encode(sha.finalize())
}

/// An order as the stand-in saw it at checkout, and the payment's state since.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_id: String,
    pub amount: Amount,
    pub currency: String,
    pub description: String,
    pub server_url: String,
    pub result_url: String,
    /// `sandbox: 1` was in the form: a paid order's status is `sandbox`, not `success`, as
    /// LiqPay reports test payments.
    pub sandbox: bool,
    /// The decoded `data` of the checkout form.
    pub json: Value,
    /// The script applied when the browser arrived.
    pub script: Script,
    /// The payment's status as the status API reports it; `None`: no payment.
    pub status: Option<String>,
    /// What the callbacks and the status API say was paid (the order's, unless the script
    /// says otherwise).
    pub paid_amount: Amount,
    pub paid_currency: String,
    pub payment_id: u64,
}

#[derive(Default)]
struct State {
    orders: Vec<Order>,
    requests: Vec<Request>,
    deliveries: Vec<Delivery>,
    rejected: Vec<String>,
    next_payment_id: u64,
}

struct Shared {
    public_key: String,
    private_key: String,
    script: Mutex<Script>,
    state: Mutex<State>,
}

/// LiqPay on a 127.0.0.1 port; stopped on drop.
pub struct LiqPay {
    shared: Arc<Shared>,
    server: HttpServer,
}

impl LiqPay {
    /// With [`PUBLIC_KEY`] / [`PRIVATE_KEY`] and [`Script::Pay`].
    pub fn start() -> LiqPay {
        LiqPay::with_keys(PUBLIC_KEY, PRIVATE_KEY)
    }

    pub fn with_keys(public_key: &str, private_key: &str) -> LiqPay {
        let shared = Arc::new(Shared {
            public_key: public_key.to_string(),
            private_key: private_key.to_string(),
            script: Mutex::new(Script::Pay),
            state: Mutex::new(State {
                next_payment_id: 2_400_000_001,
                ..State::default()
            }),
        });
        let handler_shared = Arc::clone(&shared);
        let server = HttpServer::start(move |request| handle(&handler_shared, request));
        LiqPay { shared, server }
    }

    /// What the next browser to arrive at the checkout gets.
    pub fn set_script(&self, script: Script) {
        *lock(&self.shared.script) = script;
    }

    /// `checkout_url` for the config: where our page's form posts.
    pub fn checkout_url(&self) -> String {
        format!("{}/api/3/checkout", self.server.base_url())
    }

    /// `api_url` for the config: the status API.
    pub fn api_url(&self) -> String {
        format!("{}/api/request", self.server.base_url())
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn public_key(&self) -> &str {
        &self.shared.public_key
    }

    pub fn private_key(&self) -> &str {
        &self.shared.private_key
    }

    /// The keys as `src/card` takes them.
    pub fn keys(&self) -> liqpay::Keys {
        liqpay::Keys {
            public_key: self.shared.public_key.clone(),
            private_key: Secret::new(self.shared.private_key.clone()),
        }
    }

    /// Every request the stand-in got, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.state).requests.clone()
    }

    /// Every callback it posted, with paysys's answers, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.state).deliveries.clone()
    }

    /// Why it refused requests (a bad signature, a missing field), in order.
    pub fn rejected(&self) -> Vec<String> {
        lock(&self.shared.state).rejected.clone()
    }

    pub fn orders(&self) -> Vec<Order> {
        lock(&self.shared.state).orders.clone()
    }

    pub fn order(&self, order_id: &str) -> Option<Order> {
        lock(&self.shared.state)
            .orders
            .iter()
            .find(|o| o.order_id == order_id)
            .cloned()
    }

    /// Changes what the status API says about the order (`None`: no payment), posting
    /// nothing: a payment whose callback was lost.
    pub fn set_status(&self, order_id: &str, status: Option<&str>) {
        self.shared
            .with_order(order_id, |o| o.status = status.map(str::to_string));
    }

    /// The signed callback for the order with `status`, not posted and changing nothing.
    pub fn callback_for(&self, order_id: &str, status: &str) -> Outgoing {
        let order = self
            .order(order_id)
            .unwrap_or_else(|| panic!("LiqPay stand-in: no order '{order_id}' came to checkout"));
        self.shared
            .callback(&order, status, &self.shared.private_key)
    }

    /// Posts `out` as it is (a test may have tampered with it) and records the delivery.
    pub fn send(&self, out: &Outgoing) -> Delivery {
        self.shared.send(out)
    }

    /// The payment's status becomes `status`, and a signed callback says so.
    pub fn post_callback(&self, order_id: &str, status: &str) -> Delivery {
        self.set_status(order_id, Some(status));
        let out = self.callback_for(order_id, status);
        self.send(&out)
    }
}

impl Shared {
    fn with_order(&self, order_id: &str, change: impl FnOnce(&mut Order)) {
        let mut state = lock(&self.state);
        let order = state
            .orders
            .iter_mut()
            .find(|o| o.order_id == order_id)
            .unwrap_or_else(|| panic!("LiqPay stand-in: no order '{order_id}' came to checkout"));
        change(order);
    }

    fn reject(&self, why: String) -> Response {
        lock(&self.state).rejected.push(why.clone());
        Response::text(400, format!("LiqPay stand-in refused: {why}\n"))
    }

    fn send(&self, out: &Outgoing) -> Delivery {
        let delivery = Delivery {
            sent: out.clone(),
            answer: deliver(out),
            accepted: None,
        };
        lock(&self.state).deliveries.push(delivery.clone());
        delivery
    }

    /// The payment JSON that callbacks and the status API carry.
    fn payment_json(&self, order: &Order, status: &str) -> String {
        let now_ms = unix_now() * 1000;
        let s = |t: &str| serde_json::to_string(t).expect("a string serializes");
        let mut json = format!(
            "{{\"payment_id\":{id},\"action\":\"pay\",\"status\":{status},\"version\":3,\
             \"type\":\"buy\",\"paytype\":\"card\",\"public_key\":{pk},\"acq_id\":414963,\
             \"order_id\":{order_id},\"liqpay_order_id\":\"LQSTANDIN{id}\",\
             \"description\":{description},\"sender_card_mask2\":\"473118*24\",\
             \"sender_card_bank\":\"pb\",\"sender_card_type\":\"visa\",\
             \"sender_card_country\":804,\"amount\":{amount},\"currency\":{currency},\
             \"sender_commission\":0.0,\"receiver_commission\":0.0,\"agent_commission\":0.0,\
             \"amount_debit\":{amount},\"amount_credit\":{amount},\"commission_debit\":0.0,\
             \"commission_credit\":0.0,\"currency_debit\":{currency},\
             \"currency_credit\":{currency},\"sender_bonus\":0.0,\"amount_bonus\":0.0,\
             \"mpi_eci\":\"7\",\"is_3ds\":false,\"language\":\"uk\",\
             \"create_date\":{created},\"end_date\":{now_ms},\"transaction_id\":{id}",
            id = order.payment_id,
            status = s(status),
            pk = s(&self.public_key),
            order_id = s(&order.order_id),
            description = s(&order.description),
            amount = order.paid_amount,
            currency = s(&order.paid_currency),
            created = now_ms - 5000,
        );
        if matches!(status, "failure" | "error") {
            json.push_str(",\"err_code\":\"9859\",\"err_description\":\"Insufficient funds\"");
        }
        json.push('}');
        json
    }

    /// The callback for `order` with `status`, signed with `private_key`.
    fn callback(&self, order: &Order, status: &str, private_key: &str) -> Outgoing {
        let data = BASE64.encode(self.payment_json(order, status));
        let signature = sign(private_key, &data);
        Outgoing {
            url: order.server_url.clone(),
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: super::http::form_body(&[("data", data), ("signature", signature)]).into_bytes(),
        }
    }

    /// `data` and `signature` of a form, verified, `data` decoded into a JSON object.
    fn verified_form(&self, request: &Request) -> Result<serde_json::Map<String, Value>, String> {
        let data = request.form_field("data").unwrap_or_default();
        let signature = request.form_field("signature").unwrap_or_default();
        if data.is_empty() || signature.is_empty() {
            return Err("data or signature missing".into());
        }
        if sign(&self.private_key, &data) != signature {
            return Err("signature does not verify with the merchant's private key".into());
        }
        let json = BASE64
            .decode(data.as_bytes())
            .map_err(|e| format!("data is not base64: {e}"))?;
        let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(&json) else {
            return Err("data is not a JSON object".into());
        };
        match json.get("public_key").and_then(Value::as_str) {
            Some(pk) if pk == self.public_key => {}
            other => return Err(format!("public_key {other:?} is not this merchant's")),
        }
        match json.get("version") {
            Some(v) if v == 3 || v == "3" => {}
            other => return Err(format!("version {other:?}, not 3")),
        }
        Ok(json)
    }

    fn checkout(&self, request: &Request) -> Response {
        if request.method != "POST" {
            return Response::text(405, "POST the checkout form\n");
        }
        let json = match self.verified_form(request) {
            Ok(json) => json,
            Err(why) => return self.reject(format!("checkout: {why}")),
        };
        let text = |name: &str| match json.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        if text("action") != "pay" {
            return self.reject(format!("checkout: action '{}', not pay", text("action")));
        }
        for name in [
            "order_id",
            "currency",
            "description",
            "server_url",
            "result_url",
        ] {
            if text(name).is_empty() {
                return self.reject(format!("checkout: no {name}"));
            }
        }
        let amount = match Amount::parse(&text("amount")) {
            Ok(a) if a.kopecks() > 0 => a,
            _ => return self.reject(format!("checkout: amount '{}'", text("amount"))),
        };
        let script = lock(&self.script).clone();
        let order_id = text("order_id");
        let order = {
            let mut state = lock(&self.state);
            if let Some(paid) = state
                .orders
                .iter()
                .find(|o| o.order_id == order_id && o.status.as_deref() == Some("success"))
            {
                let why = format!("checkout: order '{}' is already paid", paid.order_id);
                drop(state);
                return self.reject(why);
            }
            state.orders.retain(|o| o.order_id != order_id);
            let payment_id = state.next_payment_id;
            state.next_payment_id += 1;
            let order = Order {
                order_id,
                amount,
                currency: text("currency"),
                description: text("description"),
                server_url: text("server_url"),
                result_url: text("result_url"),
                sandbox: json.get("sandbox").is_some_and(|v| v == 1 || v == "1"),
                json: Value::Object(json.clone()),
                script: script.clone(),
                status: None,
                paid_amount: match script {
                    Script::PayOtherAmount(other) => other,
                    _ => amount,
                },
                paid_currency: match script {
                    Script::PayOtherCurrency => "USD".into(),
                    _ => text("currency"),
                },
                payment_id,
            };
            state.orders.push(order.clone());
            order
        };
        self.play(&order, &script);
        Response::see_other(&order.result_url)
    }

    /// Moves the order along per `script`, posting its callbacks.
    fn play(&self, order: &Order, script: &Script) {
        let success = if order.sandbox { "sandbox" } else { "success" };
        let key = self.private_key.as_str();
        let set = |status: &str| {
            self.with_order(&order.order_id, |o| o.status = Some(status.to_string()))
        };
        let post = |status: &str, times: usize, key: &str| {
            let out = self.callback(order, status, key);
            for _ in 0..times {
                self.send(&out);
            }
        };
        match script {
            Script::Pay | Script::PayOtherAmount(_) | Script::PayOtherCurrency => {
                set(success);
                post(success, 1, key);
            }
            Script::Fail => {
                set("failure");
                post("failure", 1, key);
            }
            Script::PayNoCallback => set(success),
            Script::PayTwice => {
                set(success);
                post(success, 2, key);
            }
            Script::PayOutOfOrder => {
                set(success);
                post(success, 1, key);
                post("processing", 1, key);
            }
            Script::PayThenReverse => {
                set(success);
                post(success, 1, key);
                set("reversed");
                post("reversed", 1, key);
            }
            Script::InProgress => {
                set("processing");
                post("processing", 1, key);
            }
            Script::Abandon => {}
            Script::ForgedSuccess => post(success, 1, &format!("{key}-not-the-merchants")),
        }
    }

    fn status_api(&self, request: &Request) -> Response {
        let error = |code: &str, text: &str| {
            Response::json(
                200,
                format!(
                    "{{\"result\":\"error\",\"status\":\"error\",\"err_code\":{},\
                     \"err_description\":{}}}",
                    serde_json::to_string(code).expect("string"),
                    serde_json::to_string(text).expect("string"),
                ),
            )
        };
        if request.method != "POST" {
            return Response::text(405, "POST the status request\n");
        }
        let json = match self.verified_form(request) {
            Ok(json) => json,
            Err(why) => {
                lock(&self.state)
                    .rejected
                    .push(format!("status API: {why}"));
                return error("invalid_signature", &why);
            }
        };
        if json.get("action").and_then(Value::as_str) != Some("status") {
            let why = format!("action {:?}, not status", json.get("action"));
            lock(&self.state)
                .rejected
                .push(format!("status API: {why}"));
            return error("invalid_action", &why);
        }
        let order_id = match json.get("order_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return error("order_id_empty", "no order_id"),
        };
        let order = lock(&self.state)
            .orders
            .iter()
            .find(|o| o.order_id == order_id)
            .cloned();
        match order {
            Some(order) => match &order.status {
                Some(status) => {
                    let mut json = self.payment_json(&order, status);
                    json.insert_str(1, "\"result\":\"ok\",");
                    Response::json(200, json)
                }
                None => error("payment_not_found", "payment not found"),
            },
            None => error("payment_not_found", "payment not found"),
        }
    }
}

fn handle(shared: &Shared, request: &Request) -> Response {
    lock(&shared.state).requests.push(request.clone());
    match request.path() {
        "/api/3/checkout" => shared.checkout(request),
        "/api/request" => shared.status_api(request),
        other => Response::text(404, format!("LiqPay stand-in: nothing at {other}\n")),
    }
}
