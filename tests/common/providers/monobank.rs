//! Monobank acquiring's stand-in: `POST /api/merchant/invoice/create`,
//! `GET /api/merchant/invoice/status?invoiceId=…` and `GET /api/merchant/pubkey` (all
//! checking `X-Token`), and the payment page (`GET /pay/<invoiceId>`, the `pageUrl` it hands
//! out). Webhooks are the invoice status object, signed with ECDSA P-256 / SHA-256 over the
//! raw body, `X-Sign` = base64 of the DER signature.
//!
//! The stand-in's keys are fixed (derived from constant seeds), so a test run is
//! reproducible; [`Monobank::rotate_key`] switches to a second key, as Monobank may.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use paysys::card::monobank;
use paysys::domain::Amount;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::http::{HttpServer, Request, Response};
use super::{deliver, lock, Delivery, Outgoing, Script};

/// The `X-Token` a stand-in accepts when the test names none.
pub const TOKEN: &str = "uStandInMonobankMerchantToken-0123456789abcdef";

/// A fixed P-256 key from a seed: SHA-256 of the seed is the scalar (valid for these seeds).
pub fn signing_key(seed: &str) -> SigningKey {
    SigningKey::from_slice(&Sha256::digest(seed.as_bytes()))
        .expect("the seed's SHA-256 is a valid P-256 scalar")
}

/// The merchant's keys, in the order [`Monobank::rotate_key`] steps through them.
const KEY_SEEDS: [&str; 2] = [
    "paysys monobank stand-in merchant key 1",
    "paysys monobank stand-in merchant key 2",
];
/// Not the merchant's: what a forger signs with.
const FORGER_SEED: &str = "paysys monobank stand-in forger key";

/// `X-Sign` of `body`: base64 of the DER ECDSA P-256 / SHA-256 signature.
pub fn x_sign(key: &SigningKey, body: &[u8]) -> String {
    let signature: Signature = key.sign(body);
    BASE64.encode(signature.to_der().as_bytes())
}

/// The public key's PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
pub fn public_pem(key: &SigningKey) -> String {
    p256::PublicKey::from(key.verifying_key())
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 public key encodes")
}

/// RFC 3339 in UTC with a `Z`, as Monobank writes its dates.
pub fn rfc3339(date: DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An invoice as invoice/create made it, and its state since.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub invoice_id: String,
    /// `merchantPaymInfo.reference`: our order id.
    pub reference: String,
    pub destination: String,
    pub amount: Amount,
    pub ccy: u16,
    pub redirect_url: String,
    pub web_hook_url: String,
    pub validity: Option<u64>,
    /// invoice/create's JSON body.
    pub json: Value,
    /// The script applied when a browser landed on the page; `None` until one did.
    pub script: Option<Script>,
    /// The status the status API reports.
    pub status: String,
    /// What webhooks and the status API say (the invoice's unless the script says
    /// otherwise).
    pub paid_amount: Amount,
    pub paid_ccy: u16,
    pub created_date: DateTime<Utc>,
    /// The `modifiedDate` of the current status.
    pub modified_date: DateTime<Utc>,
    /// The latest `modifiedDate` handed out: every change gets a later one.
    last_tick: DateTime<Utc>,
}

impl Invoice {
    /// A later `modifiedDate` than any this invoice carried.
    fn tick(&mut self) -> DateTime<Utc> {
        self.last_tick += TimeDelta::seconds(1);
        self.last_tick
    }
}

#[derive(Default)]
struct State {
    invoices: Vec<Invoice>,
    requests: Vec<Request>,
    deliveries: Vec<Delivery>,
    rejected: Vec<String>,
    next_id: u64,
    key: usize,
}

struct Shared {
    token: String,
    keys: Vec<SigningKey>,
    forger: SigningKey,
    page_base: Mutex<String>,
    script: Mutex<Script>,
    state: Mutex<State>,
}

/// Monobank acquiring on a 127.0.0.1 port; stopped on drop.
pub struct Monobank {
    shared: Arc<Shared>,
    server: HttpServer,
}

impl Monobank {
    /// With [`TOKEN`] and [`Script::Pay`].
    pub fn start() -> Monobank {
        Monobank::with_token(TOKEN)
    }

    pub fn with_token(token: &str) -> Monobank {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            keys: KEY_SEEDS.iter().map(|s| signing_key(s)).collect(),
            forger: signing_key(FORGER_SEED),
            page_base: Mutex::new(String::new()),
            script: Mutex::new(Script::Pay),
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
        });
        let handler_shared = Arc::clone(&shared);
        let server = HttpServer::start(move |request| handle(&handler_shared, request));
        *lock(&shared.page_base) = server.base_url();
        Monobank { shared, server }
    }

    /// What the next browser to land on a payment page gets.
    pub fn set_script(&self, script: Script) {
        *lock(&self.shared.script) = script;
    }

    /// `api_url` for the config: the API's base, as `https://api.monobank.ua` is.
    pub fn api_url(&self) -> String {
        self.server.base_url()
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Where the `pageUrl`s invoice/create hands out start (`http://127.0.0.1:<port>` until
    /// changed). The page is served at `/pay/<invoiceId>` whatever this says: a test that
    /// needs an `https://` pageUrl (src/card refuses any other) sets
    /// `https://127.0.0.1:<port>` here and has its browser take it as `http://`.
    pub fn set_page_url_base(&self, base: &str) {
        *lock(&self.shared.page_base) = base.trim_end_matches('/').to_string();
    }

    /// The page of `invoice_id` on the stand-in, plain `http://`.
    pub fn page_url(&self, invoice_id: &str) -> String {
        format!("{}/pay/{invoice_id}", self.server.base_url())
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The merchant's current signing key.
    pub fn signing_key(&self) -> SigningKey {
        self.shared.current_key()
    }

    /// The current public key as `GET /api/merchant/pubkey` gives it: base64 of the PEM
    /// (what the config's `pubkey` takes).
    pub fn pubkey_base64(&self) -> String {
        BASE64.encode(public_pem(&self.shared.current_key()))
    }

    pub fn pubkey_pem(&self) -> String {
        public_pem(&self.shared.current_key())
    }

    /// The current public key as `src/card` takes it.
    pub fn public_key(&self) -> monobank::PublicKey {
        monobank::PublicKey::parse(&self.pubkey_base64()).expect("the stand-in's key parses")
    }

    /// Monobank changes its key: later webhooks and `GET /api/merchant/pubkey` use the next
    /// one (two keys, taken in turn).
    pub fn rotate_key(&self) {
        let mut state = lock(&self.shared.state);
        state.key = (state.key + 1) % self.shared.keys.len();
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

    pub fn invoices(&self) -> Vec<Invoice> {
        lock(&self.shared.state).invoices.clone()
    }

    /// The invoice by its `invoiceId` or by our order id (`reference`; the latest invoice
    /// for it).
    pub fn invoice(&self, id: &str) -> Option<Invoice> {
        lock(&self.shared.state)
            .invoices
            .iter()
            .rev()
            .find(|i| i.invoice_id == id || i.reference == id)
            .cloned()
    }

    /// The invoice's status becomes `status` (a later `modifiedDate`), posting nothing.
    pub fn set_status(&self, id: &str, status: &str) {
        self.shared.with_invoice(id, |i| {
            i.status = status.to_string();
            i.modified_date = i.tick();
        });
    }

    /// The signed webhook for the invoice (`id`: invoiceId or reference) with `status` and
    /// `modified_date`, not posted and changing nothing.
    pub fn webhook_for(&self, id: &str, status: &str, modified_date: DateTime<Utc>) -> Outgoing {
        let invoice = self.invoice(id).unwrap_or_else(|| no_invoice(id));
        let key = self.shared.current_key();
        self.shared.webhook(&invoice, status, modified_date, &key)
    }

    /// The signed webhook with `status` and a `modifiedDate` one second after the current
    /// one, not posted and changing nothing.
    pub fn callback_for(&self, id: &str, status: &str) -> Outgoing {
        let invoice = self.invoice(id).unwrap_or_else(|| no_invoice(id));
        let date = invoice.last_tick + TimeDelta::seconds(1);
        self.webhook_for(id, status, date)
    }

    /// Posts `out` as it is (a test may have tampered with it) and records the delivery.
    pub fn send(&self, out: &Outgoing) -> Delivery {
        self.shared.send(out)
    }

    /// The invoice's status becomes `status` (a later `modifiedDate`), and a signed webhook
    /// says so.
    pub fn post_callback(&self, id: &str, status: &str) -> Delivery {
        self.set_status(id, status);
        let invoice = self.invoice(id).unwrap_or_else(|| no_invoice(id));
        let out = self.webhook_for(id, status, invoice.modified_date);
        self.send(&out)
    }
}

fn no_invoice(id: &str) -> ! {
    panic!("Monobank stand-in: no invoice '{id}' was created")
}

fn error_json(code: &str, text: &str) -> String {
    format!(
        "{{\"errCode\":{},\"errText\":{}}}",
        serde_json::to_string(code).expect("string"),
        serde_json::to_string(text).expect("string")
    )
}

impl Shared {
    fn current_key(&self) -> SigningKey {
        self.keys[lock(&self.state).key].clone()
    }

    fn with_invoice(&self, id: &str, change: impl FnOnce(&mut Invoice)) {
        let mut state = lock(&self.state);
        let invoice = state
            .invoices
            .iter_mut()
            .rev()
            .find(|i| i.invoice_id == id || i.reference == id)
            .unwrap_or_else(|| no_invoice(id));
        change(invoice);
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

    /// The invoice status object with `status` as of `modified`.
    fn status_json(&self, invoice: &Invoice, status: &str, modified: DateTime<Utc>) -> String {
        let s = |t: &str| serde_json::to_string(t).expect("a string serializes");
        let mut json = format!(
            "{{\"invoiceId\":{},\"status\":{}",
            s(&invoice.invoice_id),
            s(status)
        );
        if status == "failure" {
            json.push_str(",\"failureReason\":\"Card declined by the issuer\"");
        }
        json.push_str(&format!(
            ",\"amount\":{},\"ccy\":{}",
            invoice.paid_amount.kopecks(),
            invoice.paid_ccy
        ));
        match status {
            "success" => json.push_str(&format!(
                ",\"finalAmount\":{}",
                invoice.paid_amount.kopecks()
            )),
            "reversed" => json.push_str(",\"finalAmount\":0"),
            _ => {}
        }
        json.push_str(&format!(
            ",\"createdDate\":{},\"modifiedDate\":{},\"reference\":{},\"destination\":{}}}",
            s(&rfc3339(invoice.created_date)),
            s(&rfc3339(modified)),
            s(&invoice.reference),
            s(&invoice.destination),
        ));
        json
    }

    fn webhook(
        &self,
        invoice: &Invoice,
        status: &str,
        modified: DateTime<Utc>,
        key: &SigningKey,
    ) -> Outgoing {
        let body = self.status_json(invoice, status, modified).into_bytes();
        Outgoing {
            url: invoice.web_hook_url.clone(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-Sign".into(), x_sign(key, &body)),
            ],
            body,
        }
    }

    /// `Some(answer)` when the request's `X-Token` is not the merchant's.
    fn refuse_token(&self, request: &Request) -> Option<Response> {
        if request.header("X-Token") == Some(self.token.as_str()) {
            return None;
        }
        lock(&self.state).rejected.push(format!(
            "{}: X-Token {:?} is not the merchant's",
            request.path(),
            request.header("X-Token")
        ));
        Some(Response::json(
            403,
            error_json("FORBIDDEN", "forbidden: invalid X-Token"),
        ))
    }

    fn bad_request(&self, why: String) -> Response {
        lock(&self.state)
            .rejected
            .push(format!("invoice/create: {why}"));
        Response::json(400, error_json("BAD_REQUEST", &why))
    }

    fn create(&self, request: &Request) -> Response {
        if request.method != "POST" {
            return Response::json(405, error_json("METHOD_NOT_ALLOWED", "POST"));
        }
        if let Some(refused) = self.refuse_token(request) {
            return refused;
        }
        let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(&request.body) else {
            return self.bad_request("body is not a JSON object".into());
        };
        let amount = match json.get("amount").and_then(Value::as_u64) {
            Some(a) if a > 0 && json["amount"].is_u64() => Amount::from_kopecks(a as i64),
            _ => {
                return self.bad_request(format!(
                    "amount {:?} is not a positive whole number of kopecks",
                    json.get("amount")
                ))
            }
        };
        let ccy = match json.get("ccy") {
            None => monobank::UAH,
            Some(v) => match v.as_u64().and_then(|c| u16::try_from(c).ok()) {
                Some(c) => c,
                None => return self.bad_request(format!("ccy {v} is not a currency code")),
            },
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let paym_info = json.get("merchantPaymInfo");
        let reference = text(paym_info.and_then(|p| p.get("reference")));
        let destination = text(paym_info.and_then(|p| p.get("destination")));
        let redirect_url = text(json.get("redirectUrl"));
        let web_hook_url = text(json.get("webHookUrl"));
        for (name, value) in [
            ("merchantPaymInfo.reference", &reference),
            ("redirectUrl", &redirect_url),
            ("webHookUrl", &web_hook_url),
        ] {
            if value.is_empty() {
                return self.bad_request(format!("no {name}"));
            }
        }
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default();
        let mut state = lock(&self.state);
        let invoice_id = format!("p2_standin{}", state.next_id);
        state.next_id += 1;
        state.invoices.push(Invoice {
            invoice_id: invoice_id.clone(),
            reference,
            destination,
            amount,
            ccy,
            redirect_url,
            web_hook_url,
            validity: json.get("validity").and_then(Value::as_u64),
            json: Value::Object(json.clone()),
            script: None,
            status: "created".into(),
            paid_amount: amount,
            paid_ccy: ccy,
            created_date: now,
            modified_date: now,
            last_tick: now,
        });
        drop(state);
        let page_url = format!("{}/pay/{invoice_id}", lock(&self.page_base));
        Response::json(
            200,
            format!(
                "{{\"invoiceId\":{},\"pageUrl\":{}}}",
                serde_json::to_string(&invoice_id).expect("string"),
                serde_json::to_string(&page_url).expect("string")
            ),
        )
    }

    fn status_api(&self, request: &Request) -> Response {
        if let Some(refused) = self.refuse_token(request) {
            return refused;
        }
        let id = request.query("invoiceId").unwrap_or_default();
        let invoice = lock(&self.state)
            .invoices
            .iter()
            .find(|i| i.invoice_id == id)
            .cloned();
        match invoice {
            Some(i) => Response::json(200, self.status_json(&i, &i.status, i.modified_date)),
            None => Response::json(
                404,
                error_json("NOT_FOUND", &format!("invoice '{id}' not found")),
            ),
        }
    }

    fn pubkey(&self, request: &Request) -> Response {
        if let Some(refused) = self.refuse_token(request) {
            return refused;
        }
        let key = BASE64.encode(public_pem(&self.current_key()));
        Response::json(200, format!("{{\"key\":\"{key}\"}}"))
    }

    /// A browser landed on the payment page: pay per the script, then send it back.
    fn page(&self, invoice_id: &str) -> Response {
        let script = lock(&self.script).clone();
        let invoice = {
            let mut state = lock(&self.state);
            let Some(invoice) = state
                .invoices
                .iter_mut()
                .find(|i| i.invoice_id == invoice_id)
            else {
                return Response::text(404, format!("no invoice '{invoice_id}'\n"));
            };
            if invoice.script.is_some() {
                // Monobank's page of an invoice already paid or failed shows that; it does
                // not take a second payment.
                return Response::see_other(&invoice.redirect_url);
            }
            invoice.script = Some(script.clone());
            match script {
                Script::PayOtherAmount(other) => invoice.paid_amount = other,
                Script::PayOtherCurrency => invoice.paid_ccy = 840,
                _ => {}
            }
            invoice.clone()
        };
        self.play(&invoice, &script);
        Response::see_other(&invoice.redirect_url)
    }

    /// The status becomes `status` at a later `modifiedDate`, returned.
    fn advance(&self, id: &str, status: &str) -> DateTime<Utc> {
        let mut date = DateTime::default();
        self.with_invoice(id, |i| {
            i.status = status.to_string();
            i.modified_date = i.tick();
            date = i.modified_date;
        });
        date
    }

    fn play(&self, invoice: &Invoice, script: &Script) {
        let id = invoice.invoice_id.as_str();
        let key = self.current_key();
        let post = |status: &str, date: DateTime<Utc>, times: usize, key: &SigningKey| {
            let out = self.webhook(invoice, status, date, key);
            for _ in 0..times {
                self.send(&out);
            }
        };
        match script {
            Script::Pay | Script::PayOtherAmount(_) | Script::PayOtherCurrency => {
                post("success", self.advance(id, "success"), 1, &key)
            }
            Script::Fail => post("failure", self.advance(id, "failure"), 1, &key),
            Script::PayNoCallback => {
                self.advance(id, "success");
            }
            Script::PayTwice => post("success", self.advance(id, "success"), 2, &key),
            Script::PayOutOfOrder => {
                // `processing` happened first (the earlier date) but is delivered last.
                let processing = self.advance(id, "processing");
                let success = self.advance(id, "success");
                post("success", success, 1, &key);
                post("processing", processing, 1, &key);
            }
            Script::PayThenReverse => {
                post("success", self.advance(id, "success"), 1, &key);
                post("reversed", self.advance(id, "reversed"), 1, &key);
            }
            Script::InProgress => post("processing", self.advance(id, "processing"), 1, &key),
            Script::Abandon => {}
            Script::ForgedSuccess => {
                let date = invoice.last_tick + TimeDelta::seconds(1);
                post("success", date, 1, &self.forger);
            }
        }
    }
}

fn handle(shared: &Shared, request: &Request) -> Response {
    lock(&shared.state).requests.push(request.clone());
    match request.path() {
        "/api/merchant/invoice/create" => shared.create(request),
        "/api/merchant/invoice/status" => shared.status_api(request),
        "/api/merchant/pubkey" => shared.pubkey(request),
        path => match path.strip_prefix("/pay/") {
            Some(id) => shared.page(id),
            None => Response::text(404, format!("Monobank stand-in: nothing at {path}\n")),
        },
    }
}
