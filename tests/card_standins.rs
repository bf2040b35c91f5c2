//! The card providers' stand-ins (tests/common/providers) checked against src/card's pure
//! wire code, driven the way paysys will drive them: build the checkout form or invoice with
//! src/card, send a browser through the stand-in's page (following its redirect), receive
//! the callback in a small server playing paysys's callback URL, verify it with src/card
//! (and answer it, for WayForPay), then ask the status API and parse its answer with
//! src/card. No database, no paysys executable: if these pass, a failure in the paysys
//! integration tests that use the stand-ins is paysys's, not the stand-ins'.

mod common;

use std::sync::{Arc, Mutex};

use common::providers::http::{self, Browser, HttpServer, Request, Response};
use common::providers::{monobank as mono_standin, LiqPay, Monobank, Script, WayForPay};
use paysys::card::{liqpay, monobank, wayforpay, Error, Secret};
use paysys::domain::Amount;

fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}

/// paysys's side of the wire in these tests: `/callback/…` is answered by `answer` and
/// recorded; anything else (the result page a browser comes back to) is a plain 200.
struct Receiver {
    server: HttpServer,
    callbacks: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Receiver {
        let callbacks = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&callbacks);
        let server = HttpServer::start(move |request| {
            if request.path().starts_with("/callback/") {
                record.lock().unwrap().push(request.clone());
                answer(request)
            } else {
                Response::text(200, format!("result page {}\n", request.path()))
            }
        });
        Receiver { server, callbacks }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    fn callbacks(&self) -> Vec<Request> {
        self.callbacks.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------- LiqPay

fn liqpay_verify(keys: &liqpay::Keys, request: &Request) -> Result<liqpay::Payment, Error> {
    liqpay::verify_callback(
        keys,
        request.form_field("data").as_deref(),
        request.form_field("signature").as_deref(),
    )
}

/// A receiver that verifies LiqPay callbacks: 200 when they verify, 403 when not.
fn liqpay_receiver(keys: liqpay::Keys) -> Receiver {
    Receiver::start(move |request| match liqpay_verify(&keys, request) {
        Ok(_) => Response::text(200, "OK\n"),
        Err(e) => Response::text(403, format!("{e}\n")),
    })
}

fn liqpay_checkout(
    stand_in: &LiqPay,
    receiver: &Receiver,
    order_id: &str,
    sum: &str,
) -> http::Visit {
    let server_url = receiver.url("/callback/liqpay");
    let result_url = receiver.url(&format!("/pay/{order_id}"));
    let form = liqpay::checkout_form(
        &stand_in.keys(),
        &liqpay::Checkout {
            order_id,
            amount: amount(sum),
            currency: "UAH",
            description: "Інтернет, рахунок 59071",
            server_url: &server_url,
            result_url: &result_url,
            sandbox: false,
            language: Some("uk"),
            expires: None,
        },
    )
    .expect("checkout form");
    Browser::post_form(
        &stand_in.checkout_url(),
        &[("data", &form.data), ("signature", &form.signature)],
    )
    .expect("the browser reaches the checkout")
}

fn liqpay_status(stand_in: &LiqPay, order_id: &str) -> liqpay::StatusAnswer {
    let request = liqpay::status_request(&stand_in.keys(), order_id);
    let answer = http::request(
        "POST",
        &stand_in.api_url(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        request.form_body().as_bytes(),
    )
    .expect("status API answers");
    liqpay::parse_status_answer(&stand_in.keys(), order_id, &answer.body).expect("status parses")
}

#[test]
fn liqpay_checkout_posts_a_signed_callback_then_sends_the_browser_back() {
    let lp = LiqPay::start();
    let receiver = liqpay_receiver(lp.keys());

    let visit = liqpay_checkout(&lp, &receiver, "ord-1", "150.25");

    let statuses: Vec<u16> = visit.hops.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [303, 200], "{:?}", visit.hops);
    assert_eq!(visit.url, receiver.url("/pay/ord-1"));
    let callbacks = receiver.callbacks();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(
        callbacks[0].header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    let payment = liqpay_verify(&lp.keys(), &callbacks[0]).expect("the callback verifies");
    assert_eq!(payment.status, liqpay::Status::Success);
    assert_eq!(payment.order_id, "ord-1");
    assert_eq!(payment.amount, amount("150.25"));
    assert_eq!(payment.currency, "UAH");
    assert!(payment.payment_id.is_some());
    let deliveries = lp.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status(), 200);

    let order = lp.order("ord-1").expect("the stand-in recorded the order");
    assert_eq!(order.amount, amount("150.25"));
    assert_eq!(order.server_url, receiver.url("/callback/liqpay"));
    assert_eq!(order.json["language"], "uk");

    match liqpay_status(&lp, "ord-1") {
        liqpay::StatusAnswer::Payment(p) => {
            assert_eq!(p.status, liqpay::Status::Success);
            assert_eq!(p.amount, amount("150.25"));
        }
        other => panic!("{other:?}"),
    }
    match liqpay_status(&lp, "ord-never") {
        liqpay::StatusAnswer::Refused(r) => assert_eq!(r.code, "payment_not_found"),
        other => panic!("{other:?}"),
    }
    let paths: Vec<String> = lp.requests().iter().map(|r| r.path().to_string()).collect();
    assert_eq!(paths, ["/api/3/checkout", "/api/request", "/api/request"]);
    assert!(lp.rejected().is_empty(), "{:?}", lp.rejected());
}

#[test]
fn liqpay_refuses_a_form_or_status_request_signed_with_another_key() {
    let lp = LiqPay::start();
    let receiver = liqpay_receiver(lp.keys());
    let wrong = liqpay::Keys {
        public_key: lp.public_key().to_string(),
        private_key: Secret::new("not-the-private-key"),
    };

    let server_url = receiver.url("/callback/liqpay");
    let result_url = receiver.url("/pay/ord-2");
    let form = liqpay::checkout_form(
        &wrong,
        &liqpay::Checkout {
            order_id: "ord-2",
            amount: amount("10"),
            currency: "UAH",
            description: "x",
            server_url: &server_url,
            result_url: &result_url,
            sandbox: false,
            language: None,
            expires: None,
        },
    )
    .unwrap();
    let answer = http::post_form(
        &lp.checkout_url(),
        &[("data", &form.data), ("signature", &form.signature)],
    )
    .unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(lp.orders().is_empty());
    assert!(lp.deliveries().is_empty());

    let form = liqpay::status_request(&wrong, "ord-2");
    let answer = http::post_form(
        &lp.api_url(),
        &[("data", &form.data), ("signature", &form.signature)],
    )
    .unwrap();
    match liqpay::parse_status_answer(&lp.keys(), "ord-2", &answer.body).unwrap() {
        liqpay::StatusAnswer::Refused(r) => assert_eq!(r.code, "invalid_signature"),
        other => panic!("{other:?}"),
    }
    assert_eq!(lp.rejected().len(), 2, "{:?}", lp.rejected());
}

#[test]
fn liqpay_tampered_callback_does_not_verify_and_hand_posted_ones_do() {
    let lp = LiqPay::start();
    lp.set_script(Script::Abandon);
    let receiver = liqpay_receiver(lp.keys());
    liqpay_checkout(&lp, &receiver, "ord-3", "100");
    assert!(
        receiver.callbacks().is_empty(),
        "an abandoned payment posts nothing"
    );
    assert!(matches!(
        liqpay_status(&lp, "ord-3"),
        liqpay::StatusAnswer::Refused(_)
    ));

    // The amount raised in `data`, the signature kept: refused.
    let mut out = lp.callback_for("ord-3", "success");
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&out.body).unwrap();
    let json = String::from_utf8(
        base64_decode(&fields[0].1), // data
    )
    .unwrap()
    .replace("\"amount\":100.00", "\"amount\":1000.00");
    assert!(json.contains("1000.00"));
    let tampered = [
        ("data", base64_encode(json.as_bytes())),
        ("signature", fields[1].1.clone()),
    ];
    out.body = http::form_body(&tampered).into_bytes();
    let delivery = lp.send(&out);
    assert_eq!(delivery.status(), 403);
    let err = liqpay_verify(&lp.keys(), &receiver.callbacks()[0]).unwrap_err();
    assert!(matches!(err, Error::Forged { .. }), "{err}");

    // Without a signature: unsigned.
    out.body = http::form_body(&[("data", &tampered[0].1)]).into_bytes();
    lp.send(&out);
    let err = liqpay_verify(&lp.keys(), &receiver.callbacks()[1]).unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");

    // By hand: the status changes, the callback verifies, the status API agrees.
    let delivery = lp.post_callback("ord-3", "success");
    assert_eq!(delivery.status(), 200);
    let payment = liqpay_verify(&lp.keys(), &receiver.callbacks()[2]).unwrap();
    assert_eq!(payment.status, liqpay::Status::Success);
    assert_eq!(payment.amount, amount("100"));
    assert!(matches!(
        liqpay_status(&lp, "ord-3"),
        liqpay::StatusAnswer::Payment(liqpay::Payment {
            status: liqpay::Status::Success,
            ..
        })
    ));
}

#[test]
fn liqpay_scripts_post_what_they_say() {
    let lp = LiqPay::start();
    let receiver = liqpay_receiver(lp.keys());
    let table: &[(Script, &[&str], Option<&str>)] = &[
        (Script::Pay, &["success"], Some("success")),
        (Script::Fail, &["failure"], Some("failure")),
        (Script::PayNoCallback, &[], Some("success")),
        (Script::PayTwice, &["success", "success"], Some("success")),
        (
            Script::PayOutOfOrder,
            &["success", "processing"],
            Some("success"),
        ),
        (
            Script::PayThenReverse,
            &["success", "reversed"],
            Some("reversed"),
        ),
        (Script::InProgress, &["processing"], Some("processing")),
        (Script::Abandon, &[], None),
        (
            Script::PayOtherAmount(amount("1.00")),
            &["success"],
            Some("success"),
        ),
        (Script::PayOtherCurrency, &["success"], Some("success")),
    ];
    for (i, (script, posted, status)) in table.iter().enumerate() {
        let order_id = format!("ord-s{i}");
        lp.set_script(script.clone());
        let before = receiver.callbacks().len();
        liqpay_checkout(&lp, &receiver, &order_id, "42.50");
        let got: Vec<liqpay::Payment> = receiver.callbacks()[before..]
            .iter()
            .map(|r| liqpay_verify(&lp.keys(), r).expect("verifies"))
            .collect();
        let got_statuses: Vec<&str> = got.iter().map(|p| p.status.as_str()).collect();
        assert_eq!(&got_statuses, posted, "{script:?}");
        assert!(got.iter().all(|p| p.order_id == order_id));
        let (want_amount, want_currency) = match script {
            Script::PayOtherAmount(other) => (*other, "UAH"),
            Script::PayOtherCurrency => (amount("42.50"), "USD"),
            _ => (amount("42.50"), "UAH"),
        };
        for p in &got {
            assert_eq!(p.amount, want_amount, "{script:?}");
            assert_eq!(p.currency, want_currency, "{script:?}");
        }
        if *script == Script::PayTwice {
            let c = receiver.callbacks();
            assert_eq!(c[before].body, c[before + 1].body, "the same bytes twice");
        }
        match (liqpay_status(&lp, &order_id), status) {
            (liqpay::StatusAnswer::Payment(p), Some(want)) => {
                assert_eq!(p.status.as_str(), *want, "{script:?}");
                assert_eq!(p.amount, want_amount, "{script:?}");
            }
            (liqpay::StatusAnswer::Refused(_), None) => {}
            (other, want) => panic!("{script:?}: {other:?}, wanted {want:?}"),
        }
    }

    lp.set_script(Script::ForgedSuccess);
    let before = receiver.callbacks().len();
    liqpay_checkout(&lp, &receiver, "ord-forged", "42.50");
    let forged = &receiver.callbacks()[before..];
    assert_eq!(forged.len(), 1);
    let err = liqpay_verify(&lp.keys(), &forged[0]).unwrap_err();
    assert!(matches!(err, Error::Forged { .. }), "{err}");
    assert_eq!(lp.deliveries().last().unwrap().status(), 403);
    assert!(matches!(
        liqpay_status(&lp, "ord-forged"),
        liqpay::StatusAnswer::Refused(_)
    ));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------- Monobank

/// A receiver that records webhooks and answers 200, as Monobank wants, whatever they
/// hold (the test verifies them afterwards).
fn monobank_receiver() -> Receiver {
    Receiver::start(|_| Response::text(200, ""))
}

fn monobank_create(
    stand_in: &Monobank,
    receiver: &Receiver,
    reference: &str,
    sum: &str,
    token: &str,
) -> monobank::CreateAnswer {
    let web_hook_url = receiver.url("/callback/monobank");
    let redirect_url = receiver.url(&format!("/pay/{reference}"));
    let body = monobank::invoice_create_body(&monobank::InvoiceRequest {
        amount: amount(sum),
        ccy: monobank::UAH,
        reference,
        destination: "Інтернет, рахунок 59071",
        redirect_url: &redirect_url,
        web_hook_url: &web_hook_url,
        validity_secs: 3600,
    })
    .expect("invoice body");
    let answer = http::post_json(
        &format!("{}/api/merchant/invoice/create", stand_in.api_url()),
        &[("X-Token", token)],
        &body,
    )
    .expect("invoice/create answers");
    monobank::parse_create_answer(&answer.body).expect("invoice/create answer parses")
}

/// invoice/create, then the browser on the pageUrl (the stand-in speaks plain HTTP; its
/// pageUrl says https:// because src/card accepts no other).
fn monobank_pay(stand_in: &Monobank, receiver: &Receiver, reference: &str, sum: &str) -> String {
    match monobank_create(stand_in, receiver, reference, sum, stand_in.token()) {
        monobank::CreateAnswer::Created {
            invoice_id,
            page_url,
        } => {
            assert_eq!(
                page_url,
                stand_in
                    .page_url(&invoice_id)
                    .replacen("http:", "https:", 1)
            );
            let visit = Browser::get(&page_url.replacen("https:", "http:", 1)).expect("page");
            let statuses: Vec<u16> = visit.hops.iter().map(|(_, s)| *s).collect();
            assert_eq!(statuses, [303, 200], "{:?}", visit.hops);
            assert_eq!(visit.url, receiver.url(&format!("/pay/{reference}")));
            invoice_id
        }
        other => panic!("{other:?}"),
    }
}

fn https_monobank() -> Monobank {
    let mb = Monobank::start();
    mb.set_page_url_base(&mb.base_url().replacen("http:", "https:", 1));
    mb
}

fn monobank_pubkey(stand_in: &Monobank) -> monobank::PublicKey {
    let answer = http::request(
        "GET",
        &format!("{}/api/merchant/pubkey", stand_in.api_url()),
        &[("X-Token", stand_in.token())],
        b"",
    )
    .expect("pubkey answers");
    monobank::parse_pubkey_answer(&answer.body).expect("pubkey parses")
}

fn monobank_verify(
    key: &monobank::PublicKey,
    request: &Request,
) -> Result<monobank::Invoice, Error> {
    monobank::verify_webhook(key, request.header("X-Sign"), &request.body)
}

fn monobank_status(stand_in: &Monobank, invoice_id: &str) -> monobank::StatusAnswer {
    let answer = http::request(
        "GET",
        &format!(
            "{}/api/merchant/invoice/status?invoiceId={invoice_id}",
            stand_in.api_url()
        ),
        &[("X-Token", stand_in.token())],
        b"",
    )
    .expect("status answers");
    monobank::parse_status_answer(invoice_id, &answer.body).expect("status parses")
}

#[test]
fn monobank_invoice_page_posts_a_signed_webhook_then_sends_the_browser_back() {
    let mb = https_monobank();
    let receiver = monobank_receiver();

    let invoice_id = monobank_pay(&mb, &receiver, "ord-m1", "150.25");

    let webhooks = receiver.callbacks();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0].header("Content-Type"), Some("application/json"));
    let key = monobank_pubkey(&mb);
    assert_eq!(key, mb.public_key());
    let invoice = monobank_verify(&key, &webhooks[0]).expect("the webhook verifies");
    assert_eq!(invoice.invoice_id, invoice_id);
    assert_eq!(invoice.status, monobank::InvoiceStatus::Success);
    assert_eq!(invoice.reference.as_deref(), Some("ord-m1"));
    assert_eq!(invoice.amount, amount("150.25"));
    assert_eq!(invoice.final_amount, Some(amount("150.25")));
    assert_eq!(invoice.ccy, monobank::UAH);

    match monobank_status(&mb, &invoice_id) {
        monobank::StatusAnswer::Invoice(i) => {
            assert_eq!(i.status, monobank::InvoiceStatus::Success);
            assert_eq!(i.modified_date, invoice.modified_date);
        }
        other => panic!("{other:?}"),
    }
    let answer = http::request(
        "GET",
        &format!(
            "{}/api/merchant/invoice/status?invoiceId=p2_nothing",
            mb.api_url()
        ),
        &[("X-Token", mb.token())],
        b"",
    )
    .unwrap();
    assert!(matches!(
        monobank::parse_status_answer("p2_nothing", &answer.body).unwrap(),
        monobank::StatusAnswer::Refused(_)
    ));

    let recorded = mb.invoice("ord-m1").expect("recorded by reference");
    assert_eq!(recorded.invoice_id, invoice_id);
    assert_eq!(recorded.validity, Some(3600));
    assert_eq!(recorded.web_hook_url, receiver.url("/callback/monobank"));
    assert_eq!(mb.deliveries()[0].status(), 200);
    assert!(mb.rejected().is_empty(), "{:?}", mb.rejected());
}

#[test]
fn monobank_checks_the_token() {
    let mb = https_monobank();
    let receiver = monobank_receiver();
    match monobank_create(&mb, &receiver, "ord-m2", "10", "wrong-token") {
        monobank::CreateAnswer::Refused(r) => assert_eq!(r.code, "FORBIDDEN"),
        other => panic!("{other:?}"),
    }
    let answer = http::get(&format!("{}/api/merchant/pubkey", mb.api_url())).unwrap();
    assert_eq!(answer.status, 403);
    assert!(monobank::parse_pubkey_answer(&answer.body).is_err());
    assert!(mb.invoices().is_empty());
    assert_eq!(mb.rejected().len(), 2, "{:?}", mb.rejected());
}

#[test]
fn monobank_out_of_order_and_repeated_webhooks_carry_the_right_dates() {
    let mb = https_monobank();
    let receiver = monobank_receiver();
    let key = mb.public_key();

    mb.set_script(Script::PayOutOfOrder);
    let invoice_id = monobank_pay(&mb, &receiver, "ord-m3", "99.99");
    let webhooks: Vec<monobank::Invoice> = receiver
        .callbacks()
        .iter()
        .map(|r| monobank_verify(&key, r).expect("verifies"))
        .collect();
    let statuses: Vec<&str> = webhooks.iter().map(|i| i.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["success", "processing"],
        "success is delivered first"
    );
    let (success, processing) = (&webhooks[0], &webhooks[1]);
    assert!(processing.modified_date < success.modified_date);
    assert!(
        !processing.supersedes(success.modified_date),
        "the late one is older"
    );
    match monobank_status(&mb, &invoice_id) {
        monobank::StatusAnswer::Invoice(i) => {
            assert_eq!(i.status, monobank::InvoiceStatus::Success);
            assert_eq!(i.modified_date, success.modified_date);
        }
        other => panic!("{other:?}"),
    }

    mb.set_script(Script::PayTwice);
    monobank_pay(&mb, &receiver, "ord-m4", "5");
    let twice = &receiver.callbacks()[2..];
    assert_eq!(twice.len(), 2);
    assert_eq!(twice[0].body, twice[1].body, "the same bytes twice");
    let first = monobank_verify(&key, &twice[0]).unwrap();
    let second = monobank_verify(&key, &twice[1]).unwrap();
    assert!(
        !second.supersedes(first.modified_date),
        "a repeat is not newer"
    );

    // By hand: out of order with chosen dates, and a later change.
    let at = |secs: i64| chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap();
    let newer = mb.webhook_for("ord-m4", "reversed", at(20));
    let older = mb.webhook_for("ord-m4", "processing", at(10));
    mb.send(&newer);
    mb.send(&older);
    let got: Vec<monobank::Invoice> = receiver.callbacks()[4..]
        .iter()
        .map(|r| monobank_verify(&key, r).unwrap())
        .collect();
    assert_eq!(got[0].modified_date, at(20));
    assert_eq!(got[1].modified_date, at(10));
    assert!(got[0].supersedes(got[1].modified_date));

    mb.post_callback("ord-m4", "reversed");
    let reversed = monobank_verify(&key, receiver.callbacks().last().unwrap()).unwrap();
    assert_eq!(reversed.status, monobank::InvoiceStatus::Reversed);
    assert!(reversed.supersedes(first.modified_date));
    assert_eq!(reversed.final_amount, Some(amount("0")));
}

#[test]
fn monobank_tampered_forged_and_rotated_webhooks() {
    let mb = https_monobank();
    let receiver = monobank_receiver();
    let key = mb.public_key();
    mb.set_script(Script::Abandon);
    let invoice_id = monobank_pay(&mb, &receiver, "ord-m5", "100");
    assert!(receiver.callbacks().is_empty());
    assert!(matches!(
        monobank_status(&mb, &invoice_id),
        monobank::StatusAnswer::Invoice(monobank::Invoice {
            status: monobank::InvoiceStatus::Created,
            ..
        })
    ));

    // One byte of the amount changed, X-Sign kept.
    let mut out = mb.callback_for("ord-m5", "success");
    out.body = out
        .body_text()
        .replace("\"amount\":10000", "\"amount\":90000")
        .into_bytes();
    mb.send(&out);
    let err = monobank_verify(&key, &receiver.callbacks()[0]).unwrap_err();
    assert!(matches!(err, Error::Forged { .. }), "{err}");
    // No X-Sign at all.
    out.headers.retain(|(k, _)| k != "X-Sign");
    mb.send(&out);
    let err = monobank_verify(&key, &receiver.callbacks()[1]).unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");

    // A forger's key.
    mb.set_script(Script::ForgedSuccess);
    monobank_pay(&mb, &receiver, "ord-m6", "100");
    let err = monobank_verify(&key, &receiver.callbacks()[2]).unwrap_err();
    assert!(matches!(err, Error::Forged { .. }), "{err}");

    // Monobank changes its key: the old one no longer verifies, the refetched one does.
    mb.rotate_key();
    let delivery = mb.post_callback("ord-m5", "success");
    assert_eq!(delivery.status(), 200);
    let webhook = receiver.callbacks()[3].clone();
    assert!(matches!(
        monobank_verify(&key, &webhook),
        Err(Error::Forged { .. })
    ));
    let refetched = monobank_pubkey(&mb);
    assert_ne!(refetched, key);
    let invoice = monobank_verify(&refetched, &webhook).expect("the new key verifies");
    assert_eq!(invoice.status, monobank::InvoiceStatus::Success);
    assert!(mono_standin::public_pem(&mb.signing_key()).starts_with("-----BEGIN PUBLIC KEY-----"));
}

// ---------------------------------------------------------------- WayForPay

/// A receiver playing paysys for WayForPay: a callback that verifies is answered with the
/// signed accept; anything else with 403.
fn wayforpay_receiver(merchant: wayforpay::Merchant) -> Receiver {
    Receiver::start(
        move |request| match wayforpay::verify_callback(&merchant, &request.body) {
            Ok(payment) => {
                let answer =
                    wayforpay::accept_answer(&merchant, &payment.order_reference, 1_700_000_100)
                        .expect("accept");
                Response::json(200, answer)
            }
            Err(e) => Response::text(403, format!("{e}\n")),
        },
    )
}

fn wayforpay_checkout(
    stand_in: &WayForPay,
    receiver: &Receiver,
    order_reference: &str,
    sum: &str,
) -> http::Visit {
    let service_url = receiver.url("/callback/wayforpay");
    let return_url = receiver.url(&format!("/pay/{order_reference}"));
    let products = [wayforpay::Product {
        name: "Інтернет, рахунок 59071",
        count: 1,
        price: amount(sum),
    }];
    let fields = wayforpay::checkout_form(
        &stand_in.merchant(),
        &wayforpay::Checkout {
            order_reference,
            order_date: 1_700_000_000,
            amount: amount(sum),
            currency: "UAH",
            products: &products,
            service_url: &service_url,
            return_url: &return_url,
            language: Some("UA"),
            lifetime_secs: None,
        },
    )
    .expect("checkout form");
    Browser::post_form(&stand_in.checkout_url(), &fields).expect("the browser reaches checkout")
}

fn wayforpay_status(stand_in: &WayForPay, order_reference: &str) -> wayforpay::StatusAnswer {
    let body = wayforpay::check_status_request(&stand_in.merchant(), order_reference).unwrap();
    let answer = http::post_json(&stand_in.api_url(), &[], &body).expect("CHECK_STATUS answers");
    wayforpay::parse_check_status_answer(&stand_in.merchant(), order_reference, &answer.body)
        .expect("CHECK_STATUS parses")
}

#[test]
fn wayforpay_checkout_posts_a_signed_callback_and_checks_the_accept() {
    let wfp = WayForPay::start();
    let receiver = wayforpay_receiver(wfp.merchant());

    let visit = wayforpay_checkout(&wfp, &receiver, "ord-w1", "150.50");

    let statuses: Vec<u16> = visit.hops.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [303, 200], "{:?}", visit.hops);
    assert_eq!(visit.url, receiver.url("/pay/ord-w1"));
    let callbacks = receiver.callbacks();
    assert_eq!(callbacks.len(), 1);
    assert!(
        callbacks[0].body_text().contains("\"amount\":150.5,"),
        "WayForPay's own number text: {}",
        callbacks[0].body_text()
    );
    let payment = wayforpay::verify_callback(&wfp.merchant(), &callbacks[0].body).unwrap();
    assert_eq!(payment.order_reference, "ord-w1");
    assert_eq!(
        payment.transaction_status,
        wayforpay::TransactionStatus::Approved
    );
    assert_eq!(payment.amount, amount("150.50"));
    assert_eq!(payment.reason_code, "1100");
    let deliveries = wfp.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].accepted, Some(true));

    match wayforpay_status(&wfp, "ord-w1") {
        wayforpay::StatusAnswer::Payment(p) => {
            assert_eq!(p.transaction_status, wayforpay::TransactionStatus::Approved);
            assert_eq!(p.amount, amount("150.50"));
        }
        other => panic!("{other:?}"),
    }
    match wayforpay_status(&wfp, "ord-never") {
        wayforpay::StatusAnswer::Refused(r) => assert_eq!(r.code, "1127"),
        other => panic!("{other:?}"),
    }
    let order = wfp.order("ord-w1").unwrap();
    assert_eq!(order.service_url, receiver.url("/callback/wayforpay"));
    let paths: Vec<String> = wfp
        .requests()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    assert_eq!(paths, ["/pay", "/api", "/api"]);
    assert!(wfp.rejected().is_empty(), "{:?}", wfp.rejected());
}

#[test]
fn wayforpay_refuses_a_bad_form_and_records_an_answer_that_is_not_the_accept() {
    let wfp = WayForPay::start();
    let receiver = wayforpay_receiver(wfp.merchant());
    let other = WayForPay::with_merchant(
        wfp.merchant_account(),
        wfp.merchant_domain(),
        "another-secret",
    );
    // A form signed with another secret: refused, nothing posted.
    let products = [wayforpay::Product {
        name: "x",
        count: 1,
        price: amount("1"),
    }];
    let fields = wayforpay::checkout_form(
        &other.merchant(),
        &wayforpay::Checkout {
            order_reference: "ord-w2",
            order_date: 1_700_000_000,
            amount: amount("1"),
            currency: "UAH",
            products: &products,
            service_url: &receiver.url("/callback/wayforpay"),
            return_url: &receiver.url("/pay/ord-w2"),
            language: None,
            lifetime_secs: None,
        },
    )
    .unwrap();
    let answer = http::post_form(&wfp.checkout_url(), &fields).unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(wfp.orders().is_empty() && wfp.deliveries().is_empty());
    // CHECK_STATUS signed with another secret: refused 1113.
    let body = wayforpay::check_status_request(&other.merchant(), "ord-w2").unwrap();
    let answer = http::post_json(&wfp.api_url(), &[], &body).unwrap();
    match wayforpay::parse_check_status_answer(&wfp.merchant(), "ord-w2", &answer.body).unwrap() {
        wayforpay::StatusAnswer::Refused(r) => assert_eq!(r.code, "1113"),
        other => panic!("{other:?}"),
    }

    // A paysys that answers "OK" instead of the signed accept: not accepted, retried.
    let lazy = Receiver::start(|_| Response::text(200, "OK"));
    wfp.set_retries(2);
    wayforpay_checkout(&wfp, &lazy, "ord-w3", "10");
    let deliveries = wfp.deliveries();
    assert_eq!(deliveries.len(), 3, "once and two retries");
    assert!(deliveries.iter().all(|d| d.accepted == Some(false)));
    assert_eq!(lazy.callbacks().len(), 3);
    // An accept for another order, or with a wrong signature, is no accept either.
    let merchant = wfp.merchant();
    let wrong_order = Receiver::start(move |_| {
        Response::json(
            200,
            wayforpay::accept_answer(&merchant, "ord-other", 1).unwrap(),
        )
    });
    wfp.set_retries(0);
    wayforpay_checkout(&wfp, &wrong_order, "ord-w4", "10");
    assert_eq!(wfp.deliveries().last().unwrap().accepted, Some(false));
    let other_merchant = other.merchant();
    let wrong_key = Receiver::start(move |_| {
        Response::json(
            200,
            wayforpay::accept_answer(&other_merchant, "ord-w5", 1).unwrap(),
        )
    });
    wayforpay_checkout(&wfp, &wrong_key, "ord-w5", "10");
    assert_eq!(wfp.deliveries().last().unwrap().accepted, Some(false));
}

#[test]
fn wayforpay_tampered_callback_does_not_verify_and_scripts_post_what_they_say() {
    let wfp = WayForPay::start();
    let receiver = wayforpay_receiver(wfp.merchant());
    wfp.set_script(Script::Abandon);
    wayforpay_checkout(&wfp, &receiver, "ord-w6", "100");
    assert!(receiver.callbacks().is_empty());
    assert!(matches!(
        wayforpay_status(&wfp, "ord-w6"),
        wayforpay::StatusAnswer::Refused(_)
    ));

    let mut out = wfp.callback_for("ord-w6", "Approved");
    out.body = out
        .body_text()
        .replace("\"amount\":100,", "\"amount\":1000,")
        .into_bytes();
    let delivery = wfp.send(&out);
    assert_eq!(delivery.status(), 403);
    assert_eq!(delivery.accepted, Some(false));
    let err =
        wayforpay::verify_callback(&wfp.merchant(), &receiver.callbacks()[0].body).unwrap_err();
    assert!(matches!(err, Error::Forged { .. }), "{err}");

    let delivery = wfp.post_callback("ord-w6", "Approved");
    assert_eq!(delivery.accepted, Some(true));

    let table: &[(Script, &[&str])] = &[
        (Script::Fail, &["Declined"]),
        (Script::PayNoCallback, &[]),
        (Script::PayTwice, &["Approved", "Approved"]),
        (Script::PayOutOfOrder, &["Approved", "InProcessing"]),
        (Script::PayThenReverse, &["Approved", "Refunded"]),
        (Script::InProgress, &["InProcessing"]),
        (Script::PayOtherAmount(amount("7.5")), &["Approved"]),
        (Script::PayOtherCurrency, &["Approved"]),
    ];
    for (i, (script, posted)) in table.iter().enumerate() {
        let reference = format!("ord-ws{i}");
        wfp.set_script(script.clone());
        let before = receiver.callbacks().len();
        wayforpay_checkout(&wfp, &receiver, &reference, "20");
        let got: Vec<wayforpay::Payment> = receiver.callbacks()[before..]
            .iter()
            .map(|r| wayforpay::verify_callback(&wfp.merchant(), &r.body).expect("verifies"))
            .collect();
        let statuses: Vec<&str> = got.iter().map(|p| p.transaction_status.as_str()).collect();
        assert_eq!(&statuses, posted, "{script:?}");
        for p in &got {
            match script {
                Script::PayOtherAmount(other) => assert_eq!(p.amount, *other),
                Script::PayOtherCurrency => assert_eq!(p.currency, "USD"),
                _ => assert_eq!((p.amount, p.currency.as_str()), (amount("20"), "UAH")),
            }
        }
        let want = match script {
            Script::Fail => "Declined",
            Script::PayThenReverse => "Refunded",
            Script::InProgress => "InProcessing",
            _ => "Approved",
        };
        match wayforpay_status(&wfp, &reference) {
            wayforpay::StatusAnswer::Payment(p) => {
                assert_eq!(p.transaction_status.as_str(), want, "{script:?}")
            }
            other => panic!("{script:?}: {other:?}"),
        }
    }

    wfp.set_script(Script::ForgedSuccess);
    let before = receiver.callbacks().len();
    wayforpay_checkout(&wfp, &receiver, "ord-wf", "20");
    let err = wayforpay::verify_callback(&wfp.merchant(), &receiver.callbacks()[before].body)
        .unwrap_err();
    assert!(matches!(err, Error::Forged { .. }), "{err}");
}

// ---------------------------------------------------------------- the HTTP underneath

#[test]
fn the_stand_in_http_server_refuses_what_it_cannot_read() {
    use std::io::{Read, Write};
    let lp = LiqPay::start();
    let raw = |bytes: &[u8]| -> String {
        let addr = lp.base_url().trim_start_matches("http://").to_string();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(bytes).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(raw(b"nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(
        raw(b"POST /api/request HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
            .starts_with("HTTP/1.1 413")
    );
    assert!(
        raw(b"POST /api/request HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
            .starts_with("HTTP/1.1 400")
    );
    assert!(
        raw(b"POST /api/request HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .starts_with("HTTP/1.1 411")
    );
    // A body cut short: the server gives up after its timeout at most, answering 400.
    let mut s = std::net::TcpStream::connect(lp.base_url().trim_start_matches("http://")).unwrap();
    s.write_all(b"POST /api/request HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(http::get("http://192.0.2.1/")
        .unwrap_err()
        .contains("not loopback"));
    assert!(http::get("https://127.0.0.1/").is_err());
    assert_eq!(
        http::resolve("http://127.0.0.1:1/a/b?x", "c"),
        "http://127.0.0.1:1/a/c"
    );
    assert_eq!(
        http::resolve("http://127.0.0.1:1/a/b", "/d"),
        "http://127.0.0.1:1/d"
    );
}
