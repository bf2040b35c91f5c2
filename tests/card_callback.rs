//! Card providers' callbacks at `paysys_check.cgi/callback/<system>`, through the real
//! executable against MariaDB, on ABillS (1.20's and 1.50's tables) and NoDeny: a verified
//! success pays the order once, whatever is replayed or sent at the same time; no signature,
//! no money; an amount or currency other than the order's credits nothing and marks the
//! order; failures and reversals are noted, never debited; an older word never overwrites a
//! newer one.

mod common;

use common::abills::{Abills, Ddl};
use common::{Answer, TestDb};
use mysql::prelude::Queryable;
use paysys::card::order::{self, CardOrder, NewOrder};
use paysys::card::{liqpay, wayforpay, Secret};
use paysys::domain::{Amount, Domain};

const PUBLIC_KEY: &str = "i00000000";
const PRIVATE_KEY: &str = "a4825234f4bae72a0be04eafe9e8e2bada209255";
const WFP_ACCOUNT: &str = "test_merch_n1";
const WFP_SECRET: &str = "flk3409refn54t54t*FNJRET";

fn liqpay_system(extra: &str) -> String {
    format!(
        "\n[[system]]\nname = \"liqpay\"\nprotocol = \"liqpay\"\npublic_key = \"{PUBLIC_KEY}\"\n\
         private_key = \"{PRIVATE_KEY}\"\n{extra}\n"
    )
}

fn wayforpay_system(extra: &str) -> String {
    format!(
        "\n[[system]]\nname = \"wfp\"\nprotocol = \"wayforpay\"\nmerchant_account = \"{WFP_ACCOUNT}\"\n\
         secret_key = \"{WFP_SECRET}\"\nmerchant_domain = \"isp.example\"\n{extra}\n"
    )
}

/// A LiqPay callback of `order` with `status`, `amount` and `currency`, signed with `key`.
fn liqpay_callback(
    order_id: &str,
    status: &str,
    amount: &str,
    currency: &str,
    key: &str,
) -> String {
    let json = format!(
        "{{\"public_key\":\"{PUBLIC_KEY}\",\"version\":3,\"action\":\"pay\",\"status\":\"{status}\",\
         \"order_id\":\"{order_id}\",\"payment_id\":1234567,\"amount\":{amount},\"currency\":\"{currency}\",\
         \"end_date\":1700000000000}}"
    );
    liqpay::SignedForm::new(&Secret::new(key), &json).form_body()
}

/// Posts `body` to `/callback/<system>` from `caller`.
fn post(
    config: &std::path::Path,
    system: &str,
    caller: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let config = config.to_string_lossy().into_owned();
    let length = body.len().to_string();
    let path = format!("/callback/{system}");
    common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("PATH_INFO", &path),
            ("CONTENT_TYPE", content_type),
            ("CONTENT_LENGTH", &length),
            ("REMOTE_ADDR", caller),
        ],
        body,
    )
}

/// A LiqPay callback `body` POSTed from LiqPay's address to /callback/liqpay.
fn post_liqpay(config: &std::path::Path, body: &str) -> Answer {
    post(
        config,
        "liqpay",
        "203.0.113.9",
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )
}

fn new_order(db: &TestDb, system: &str, account: &str, amount: &str, charged: &str) -> CardOrder {
    let mut conn = db.conn();
    order::create(
        &mut conn,
        &NewOrder {
            system,
            account,
            amount: Amount::parse(amount).unwrap(),
            charged: Amount::parse(charged).unwrap(),
            currency: "UAH",
            domain: Domain::default(),
            validity_hours: 24,
            subscriber_id: None,
        },
    )
    .unwrap()
}

/// The order's state, provider status and note.
fn state(db: &TestDb, id: u64) -> (String, String, String) {
    db.conn()
        .exec_first(
            "SELECT state, provider_status, note FROM paysys_order WHERE id = ?",
            (id,),
        )
        .unwrap()
        .unwrap()
}

fn abills_liqpay(ddl: Ddl) -> Abills {
    Abills::on_ddl(ddl, &liqpay_system("abills_id = 62\naccount = \"login\""))
}

#[test]
fn a_verified_liqpay_success_pays_the_order_once_on_abills() {
    for ddl in Ddl::ALL {
        let ab = abills_liqpay(ddl);
        let o = new_order(&ab.db, "liqpay", "test1", "100.00", "102.50");
        let body = liqpay_callback(&o.order_id, "success", "102.50", "UAH", PRIVATE_KEY);
        let config = ab.site.config_path();
        let form = "application/x-www-form-urlencoded";
        // From any address: the system has no allow list, its signature is the credential.
        let a = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
        assert_eq!(a.status, 200, "{ddl:?}: {a:?}");
        // Credited the order's amount; the commission stays with the provider.
        assert_eq!(ab.deposit(1), "112.50", "{ddl:?}");
        let ext = format!("LIQ:{}", o.order_id);
        let log = ab.log_row(&ext);
        assert_eq!(
            (log.system_id, log.status, log.sum.as_str()),
            (62, 2, "100.00")
        );
        assert_eq!(state(&ab.db, o.id).0, "paid");
        // Replayed, and eight at once: nothing more.
        let again = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
        assert_eq!(again.status, 200, "{again:?}");
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| post(&config, "liqpay", "203.0.113.9", form, body.as_bytes())))
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap().status, 200);
            }
        });
        assert_eq!(ab.deposit(1), "112.50", "{ddl:?}: paid once");
        assert_eq!(ab.payments().iter().filter(|p| p.ext_id == ext).count(), 1);
        // A failure after the success changes nothing; a reversal is noted for the admin,
        // not debited.
        let fail = liqpay_callback(&o.order_id, "failure", "102.50", "UAH", PRIVATE_KEY);
        assert_eq!(
            post(&config, "liqpay", "203.0.113.9", form, fail.as_bytes()).status,
            200
        );
        assert_eq!(state(&ab.db, o.id).0, "paid");
        let back = liqpay_callback(&o.order_id, "reversed", "102.50", "UAH", PRIVATE_KEY);
        assert_eq!(
            post(&config, "liqpay", "203.0.113.9", form, back.as_bytes()).status,
            200
        );
        let (st, status, note) = state(&ab.db, o.id);
        assert_eq!((st.as_str(), status.as_str()), ("reversed", "reversed"));
        assert!(note.contains("reversed"), "{note}");
        assert_eq!(ab.deposit(1), "112.50", "{ddl:?}: never debited by us");
    }
}

#[test]
fn no_signature_no_money() {
    let ab = abills_liqpay(Ddl::V1_50);
    let o = new_order(&ab.db, "liqpay", "test1", "50.00", "50.00");
    let config = ab.site.config_path();
    let form = "application/x-www-form-urlencoded";
    let good = liqpay_callback(&o.order_id, "success", "50.00", "UAH", PRIVATE_KEY);
    let before = ab.snapshot();
    let data_only = good
        .split('&')
        .find(|p| p.starts_with("data="))
        .unwrap()
        .to_string();
    for body in [
        String::new(),
        data_only.clone(),
        format!("{data_only}&signature="),
        liqpay_callback(&o.order_id, "success", "50.00", "UAH", "not-the-key"),
        // The signature of one callback on another's data.
        format!(
            "{data_only}&signature={}",
            liqpay_callback("other", "success", "50.00", "UAH", PRIVATE_KEY)
                .split("signature=")
                .nth(1)
                .unwrap()
        ),
    ] {
        let a = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
        assert_eq!(a.status, 400, "{body}: {a:?}");
    }
    assert_eq!(ab.snapshot(), before, "nothing written");
    assert_eq!(state(&ab.db, o.id).0, "waiting");
    // A system named in the URL that is not a card system's, or no system: unknown caller.
    let a = post(&config, "nosuch", "203.0.113.9", form, good.as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, common::abills::UNKNOWN_SYSTEM);
    assert_eq!(ab.snapshot(), before);
}

#[test]
fn an_amount_or_currency_other_than_the_orders_credits_nothing_and_marks_the_order() {
    let ab = abills_liqpay(Ddl::V1_20);
    let config = ab.site.config_path();
    let form = "application/x-www-form-urlencoded";
    for (amount, currency) in [("1.00", "UAH"), ("100.00", "USD"), ("100.01", "UAH")] {
        let o = new_order(&ab.db, "liqpay", "test1", "100.00", "100.00");
        let body = liqpay_callback(&o.order_id, "success", amount, currency, PRIVATE_KEY);
        let a = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(
            ab.deposit(1),
            "12.50",
            "{amount} {currency}: nothing credited"
        );
        let (st, _, note) = state(&ab.db, o.id);
        assert_eq!(st, "mismatch");
        assert!(note.contains("nothing credited"), "{note}");
        // Marked: even the right amount afterwards is not paid automatically.
        let right = liqpay_callback(&o.order_id, "success", "100.00", "UAH", PRIVATE_KEY);
        post(&config, "liqpay", "203.0.113.9", form, right.as_bytes());
        assert_eq!(ab.deposit(1), "12.50");
    }
    // An order we never made.
    let body = liqpay_callback("nosuchorder", "success", "1.00", "UAH", PRIVATE_KEY);
    assert_eq!(
        post(&config, "liqpay", "203.0.113.9", form, body.as_bytes()).status,
        400
    );
    // A failure is noted, and a payment in progress, and nothing credited.
    let o = new_order(&ab.db, "liqpay", "test1", "5.00", "5.00");
    let wait = liqpay_callback(&o.order_id, "wait_secure", "5.00", "UAH", PRIVATE_KEY);
    post(&config, "liqpay", "203.0.113.9", form, wait.as_bytes());
    assert_eq!(state(&ab.db, o.id).0, "waiting");
    let fail = liqpay_callback(&o.order_id, "failure", "5.00", "UAH", PRIVATE_KEY);
    post(&config, "liqpay", "203.0.113.9", form, fail.as_bytes());
    assert_eq!(state(&ab.db, o.id).0, "failed");
    assert_eq!(ab.deposit(1), "12.50");
}

#[test]
fn an_allow_list_when_set_is_enforced_for_callbacks() {
    let ab = Abills::on_ddl(
        Ddl::V1_50,
        &liqpay_system("abills_id = 62\naccount = \"login\"\nallow = [\"192.0.2.1\"]"),
    );
    let o = new_order(&ab.db, "liqpay", "test1", "10.00", "10.00");
    let body = liqpay_callback(&o.order_id, "success", "10.00", "UAH", PRIVATE_KEY);
    let form = "application/x-www-form-urlencoded";
    let config = ab.site.config_path();
    let a = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
    assert_eq!(a.body, common::abills::UNKNOWN_SYSTEM, "{a:?}");
    assert_eq!(ab.deposit(1), "12.50");
    assert_eq!(
        post(&config, "liqpay", "192.0.2.1", form, body.as_bytes()).status,
        200
    );
    assert_eq!(ab.deposit(1), "22.50");
    // ABillS's own server_url, plain paysys_check.cgi: the caller's address picks the
    // system, as for terminals.
    let o = new_order(&ab.db, "liqpay", "test1", "1.00", "1.00");
    let body = liqpay_callback(&o.order_id, "success", "1.00", "UAH", PRIVATE_KEY);
    let config_text = config.to_string_lossy().into_owned();
    let length = body.len().to_string();
    let a = common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config_text),
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", form),
            ("CONTENT_LENGTH", &length),
            ("REMOTE_ADDR", "192.0.2.1"),
        ],
        body.as_bytes(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ab.deposit(1), "23.50");
}

#[test]
fn a_liqpay_success_pays_a_nodeny_subscriber() {
    let db = TestDb::new();
    let site = common::Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n{}",
        db.url,
        liqpay_system("account = \"payment_code\"")
    ));
    let before = db.balance(5907);
    let o = new_order(&db, "liqpay", "59071", "10.00", "10.00");
    let body = liqpay_callback(&o.order_id, "success", "10.00", "UAH", PRIVATE_KEY);
    let a = post_liqpay(&site.config_path(), &body);
    assert_eq!(a.status, 200, "{a:?}");
    let after = db.balance(5907);
    assert_ne!(before, after);
    assert_eq!(db.pays(), 1);
    // The log line names the order and the sum.
    let log = site.log();
    assert!(log.contains(&format!("txn={}", o.order_id)), "{log}");
    assert!(log.contains("system=liqpay"), "{log}");
}

#[test]
fn a_wayforpay_callback_is_answered_with_the_signed_accept() {
    let ab = Abills::on_ddl(
        Ddl::V1_50,
        &wayforpay_system("abills_id = 63\naccount = \"login\""),
    );
    let o = new_order(&ab.db, "wfp", "test1", "150.50", "150.50");
    let sign = |fields: &[&str]| {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<md5::Md5>::new_from_slice(WFP_SECRET.as_bytes()).unwrap();
        mac.update(fields.join(";").as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let signature = sign(&[
        WFP_ACCOUNT,
        &o.order_id,
        "150.5",
        "UAH",
        "541963",
        "41****8217",
        "Approved",
        "1100",
    ]);
    let body = format!(
        "{{\"merchantAccount\":\"{WFP_ACCOUNT}\",\"orderReference\":\"{}\",\"amount\":150.5,\
         \"currency\":\"UAH\",\"authCode\":\"541963\",\"cardPan\":\"41****8217\",\
         \"transactionStatus\":\"Approved\",\"reasonCode\":1100,\"merchantSignature\":\"{signature}\"}}",
        o.order_id
    );
    let a = post(
        &ab.site.config_path(),
        "wfp",
        "203.0.113.9",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ab.deposit(1), "163.00");
    let answer: serde_json::Value =
        serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {a:?}"));
    assert_eq!(answer["orderReference"], o.order_id.as_str());
    assert_eq!(answer["status"], "accept");
    let time = answer["time"].as_i64().unwrap().to_string();
    assert_eq!(
        answer["signature"],
        sign(&[&o.order_id, "accept", &time]).as_str()
    );
    // Checked with the crate's own builder too.
    let merchant = wayforpay::Merchant {
        account: WFP_ACCOUNT.into(),
        domain: "isp.example".into(),
        secret_key: Secret::new(WFP_SECRET),
    };
    assert_eq!(
        wayforpay::accept_answer(&merchant, &o.order_id, answer["time"].as_i64().unwrap()).unwrap(),
        a.body
    );
    // Tampered: 400, nothing more.
    let forged = body.replace("150.5,", "1500.5,");
    let a = post(
        &ab.site.config_path(),
        "wfp",
        "203.0.113.9",
        "application/json",
        forged.as_bytes(),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(ab.deposit(1), "163.00");
}

#[test]
fn on_abills_an_opened_order_is_in_progress_until_its_payment_completes_it() {
    for ddl in Ddl::ALL {
        let ab = abills_liqpay(ddl);
        let o = new_order(&ab.db, "liqpay", "test1", "40.00", "40.00");
        // What the page does before the browser leaves: ABillS's row "in progress".
        let config = paysys::config::Config::load(&ab.site.config_path()).unwrap();
        let system = config.system("liqpay").unwrap();
        let billing = paysys::billing::of(config.database.billing);
        billing
            .open_order(
                &mut ab.db.conn(),
                system,
                &o.order_id,
                1,
                o.amount,
                Domain::default(),
            )
            .unwrap();
        let ext = format!("LIQ:{}", o.order_id);
        let opened = ab.log_row(&ext);
        assert_eq!(
            (opened.status, opened.uid, opened.sum.as_str()),
            (1, 1, "40.00")
        );
        let body = liqpay_callback(&o.order_id, "success", "40.00", "UAH", PRIVATE_KEY);
        let a = post_liqpay(&ab.site.config_path(), &body);
        assert_eq!(a.status, 200, "{ddl:?}: {a:?}");
        // The same row, completed; one payment; the deposit raised once.
        let done = ab.log_row(&ext);
        assert_eq!((done.id, done.status), (opened.id, 2), "{ddl:?}");
        assert_eq!(ab.payment(&ext).sum, "40.00");
        assert_eq!(ab.deposit(1), "52.50");
        assert_eq!(ab.txn("liqpay", &o.order_id).prv_txn, opened.id);
    }
}

// ----- Monobank: webhooks signed over the raw body, out of order ----------------------------

fn monobank_webhook(order_id: &str, status: &str, kopecks: i64, modified: &str) -> String {
    format!(
        "{{\"invoiceId\":\"inv-{order_id}\",\"status\":\"{status}\",\"amount\":{kopecks},\"ccy\":980,\
         \"finalAmount\":{kopecks},\"reference\":\"{order_id}\",\"createdDate\":\"2026-12-07T10:00:00Z\",\
         \"modifiedDate\":\"{modified}\"}}"
    )
}

/// Posts a Monobank webhook signed with `key`.
fn post_webhook(config: &std::path::Path, key: &p256::ecdsa::SigningKey, body: &str) -> Answer {
    let config = config.to_string_lossy().into_owned();
    let sign = common::providers::monobank::x_sign(key, body.as_bytes());
    let length = body.len().to_string();
    common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/callback/mono"),
            ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", &length),
            ("HTTP_X_SIGN", &sign),
            ("REMOTE_ADDR", "203.0.113.7"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn monobank_webhooks_verify_over_the_raw_body_and_an_older_word_never_wins() {
    use base64::Engine as _;
    let key = common::providers::monobank::signing_key("card_callback test merchant key");
    let pubkey = base64::engine::general_purpose::STANDARD
        .encode(common::providers::monobank::public_pem(&key));
    let ab = Abills::on_ddl(
        Ddl::V1_50,
        &format!(
            "\n[[system]]\nname = \"mono\"\nprotocol = \"monobank\"\ntoken = \"t\"\npubkey = \"{pubkey}\"\n\
             abills_id = 64\naccount = \"login\"\n"
        ),
    );
    let config = ab.site.config_path();
    // What the page does after invoice/create: the order remembers its invoice.
    let mono_order = |amount: &str| {
        let o = new_order(&ab.db, "mono", "test1", amount, amount);
        order::note_ref(
            &mut ab.db.conn(),
            &o,
            "created",
            &format!("inv-{}", o.order_id),
            None,
        )
        .unwrap();
        o
    };
    let o = mono_order("100.00");
    let at = |s: u32| format!("2026-12-07T10:00:{s:02}Z");
    // An invoice that is not the one made for the order (another merchant's, naming our
    // order as its reference): never paid.
    let foreign = monobank_webhook(&o.order_id, "success", 10000, &at(5))
        .replace(&format!("inv-{}", o.order_id), "inv-somebody-elses");
    assert_eq!(post_webhook(&config, &key, &foreign).status, 400);
    assert_eq!(ab.deposit(1), "12.50");
    assert_eq!(state(&ab.db, o.id).0, "waiting");
    // In progress, then paid.
    let a = post_webhook(
        &config,
        &key,
        &monobank_webhook(&o.order_id, "processing", 10000, &at(10)),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(state(&ab.db, o.id).0, "waiting");
    let paid = monobank_webhook(&o.order_id, "success", 10000, &at(30));
    assert_eq!(post_webhook(&config, &key, &paid).status, 200);
    assert_eq!(ab.deposit(1), "112.50");
    // An older "processing" delivered late, and the success again: nothing changes.
    post_webhook(
        &config,
        &key,
        &monobank_webhook(&o.order_id, "processing", 10000, &at(20)),
    );
    post_webhook(&config, &key, &paid);
    assert_eq!(state(&ab.db, o.id).0, "paid");
    assert_eq!(ab.deposit(1), "112.50");

    // Out of order before payment: a newer "processing", then an older "created".
    let o2 = mono_order("5.00");
    post_webhook(
        &config,
        &key,
        &monobank_webhook(&o2.order_id, "processing", 500, &at(40)),
    );
    post_webhook(
        &config,
        &key,
        &monobank_webhook(&o2.order_id, "created", 500, &at(35)),
    );
    let (st, status, _) = state(&ab.db, o2.id);
    assert_eq!((st.as_str(), status.as_str()), ("waiting", "processing"));
    // A newer failure is noted. (A success after it would still credit: a provider's
    // success is money that arrived, whatever it said before.)
    post_webhook(
        &config,
        &key,
        &monobank_webhook(&o2.order_id, "failure", 500, &at(50)),
    );
    assert_eq!(state(&ab.db, o2.id).0, "failed");

    // Signed by somebody else, or not signed, or one byte changed: 400, nothing.
    let o3 = mono_order("9.00");
    let before = ab.deposit(1);
    let forger = common::providers::monobank::signing_key("somebody else");
    let body = monobank_webhook(&o3.order_id, "success", 900, &at(55));
    assert_eq!(post_webhook(&config, &forger, &body).status, 400);
    let sign = common::providers::monobank::x_sign(&key, body.as_bytes());
    let changed = body.replace("900", "901");
    let config_text = config.to_string_lossy().into_owned();
    let a = common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config_text),
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/callback/mono"),
            ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", &changed.len().to_string()),
            ("HTTP_X_SIGN", &sign),
            ("REMOTE_ADDR", "203.0.113.7"),
        ],
        changed.as_bytes(),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(ab.deposit(1), before);
    assert_eq!(state(&ab.db, o3.id).0, "waiting");
}

#[test]
fn a_success_the_billing_cannot_credit_is_held_for_the_admin_and_limits_are_not_judged_again() {
    let ab = abills_liqpay(Ddl::V1_50);
    let config = ab.site.config_path();
    let form = "application/x-www-form-urlencoded";
    // Made under the limits of its day; today's max_sum (the default 15000.00) is lower.
    let big = new_order(&ab.db, "liqpay", "test1", "20000.00", "20000.00");
    let body = liqpay_callback(&big.order_id, "success", "20000.00", "UAH", PRIVATE_KEY);
    assert_eq!(
        post(&config, "liqpay", "203.0.113.9", form, body.as_bytes()).status,
        200
    );
    assert_eq!(ab.deposit(1), "20012.50");
    // The subscriber was deleted between the order and the payment: the money is taken,
    // so the order is held with the reason, and the provider told it was received.
    let o = new_order(&ab.db, "liqpay", "test1", "10.00", "10.00");
    ab.db
        .conn()
        .query_drop("UPDATE users SET deleted = 1 WHERE uid = 1")
        .unwrap();
    let body = liqpay_callback(&o.order_id, "success", "10.00", "UAH", PRIVATE_KEY);
    let a = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    let (st, _, note) = state(&ab.db, o.id);
    assert_eq!(st, "mismatch");
    assert!(note.contains("not credited"), "{note}");
    assert_eq!(ab.deposit(1), "20012.50");
}

/// An order is for the subscriber its account named when it was made: an account renamed
/// or handed to somebody else before the payment comes pays nobody, and the order waits for
/// the admin.
#[test]
fn an_account_that_names_another_subscriber_by_the_payment_holds_the_order() {
    let ab = abills_liqpay(Ddl::V1_50);
    let config = ab.site.config_path();
    let form = "application/x-www-form-urlencoded";
    let o = order::create(
        &mut ab.db.conn(),
        &NewOrder {
            system: "liqpay",
            account: "test1",
            amount: Amount::parse("10.00").unwrap(),
            charged: Amount::parse("10.00").unwrap(),
            currency: "UAH",
            domain: Domain::default(),
            validity_hours: 24,
            subscriber_id: Some(1),
        },
    )
    .unwrap();
    // uid 1 becomes test1-old; uid 7 (a1b) takes the login test1.
    let mut conn = ab.db.conn();
    conn.query_drop("UPDATE users SET id = 'test1-old' WHERE uid = 1")
        .unwrap();
    conn.query_drop("UPDATE users SET id = 'test1' WHERE uid = 7")
        .unwrap();
    let before = (ab.deposit(1), ab.deposit(8));
    let body = liqpay_callback(&o.order_id, "success", "10.00", "UAH", PRIVATE_KEY);
    let a = post(&config, "liqpay", "203.0.113.9", form, body.as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    let (st, _, note) = state(&ab.db, o.id);
    assert_eq!(st, "mismatch");
    assert!(
        note.contains("names subscriber 7 now; the order was made for subscriber 1"),
        "{note}"
    );
    assert_eq!((ab.deposit(1), ab.deposit(8)), before);
    assert_eq!(ab.db.count("SELECT COUNT(*) FROM paysys_txn"), 0);
}

/// On ABillS, an order the provider declined leaves "in progress" as ABillS's portal
/// leaves it (status 6); a late "processing" (LiqPay dates none of its words) does not
/// reopen it; and a second attempt's success still completes the same row, also with a
/// before_payment hook (which looks for an earlier payment of the order first).
#[test]
fn on_abills_a_declined_order_is_closed_and_a_later_success_still_completes_it() {
    let ab = abills_liqpay(Ddl::V1_50);
    let hook = ab.site.base.join("before");
    common::write_executable(&hook, "#!/bin/sh\nexit 0\n");
    let text = std::fs::read_to_string(ab.site.config_path()).unwrap();
    ab.site.write_config(&format!(
        "{text}\n[hooks]\nbefore_payment = {:?}\n",
        hook.display().to_string()
    ));
    let o = new_order(&ab.db, "liqpay", "test1", "40.00", "40.00");
    let config = paysys::config::Config::load(&ab.site.config_path()).unwrap();
    let system = config.system("liqpay").unwrap();
    paysys::billing::of(config.database.billing)
        .open_order(
            &mut ab.db.conn(),
            system,
            &o.order_id,
            1,
            o.amount,
            Domain::default(),
        )
        .unwrap();
    let ext = format!("LIQ:{}", o.order_id);
    let send = |status: &str| {
        let body = liqpay_callback(&o.order_id, status, "40.00", "UAH", PRIVATE_KEY);
        let a = post_liqpay(&ab.site.config_path(), &body);
        assert_eq!(a.status, 200, "{status}: {a:?}");
    };
    send("failure");
    assert_eq!(state(&ab.db, o.id).0, "failed");
    assert_eq!(ab.log_row(&ext).status, 6);
    send("processing");
    assert_eq!(
        state(&ab.db, o.id).0,
        "failed",
        "a late processing reopened it"
    );
    assert_eq!(ab.log_row(&ext).status, 6);
    send("success");
    assert_eq!(state(&ab.db, o.id).0, "paid");
    let done = ab.log_row(&ext);
    assert_eq!(done.status, 2);
    assert_eq!(ab.payment(&ext).sum, "40.00");
    assert_eq!(ab.deposit(1), "52.50");
    assert_eq!(ab.txn("liqpay", &o.order_id).prv_txn, done.id);
    assert_eq!(
        ab.db
            .count("SELECT COUNT(*) FROM paysys_log WHERE transaction_id LIKE 'LIQ:%'"),
        1
    );
}

// ----- Monobank: a word that is not about the order, or older news --------------------------

/// The Monobank setup of the webhook tests: ABillS 1.50, a `mono` system whose pubkey is
/// `key`'s, and orders that remember the invoice made for them (as the page does after
/// invoice/create).
fn mono_site(key: &p256::ecdsa::SigningKey) -> Abills {
    use base64::Engine as _;
    let pubkey = base64::engine::general_purpose::STANDARD
        .encode(common::providers::monobank::public_pem(key));
    Abills::on_ddl(
        Ddl::V1_50,
        &format!(
            "\n[[system]]\nname = \"mono\"\nprotocol = \"monobank\"\ntoken = \"t\"\npubkey = \"{pubkey}\"\n\
             abills_id = 64\naccount = \"login\"\n"
        ),
    )
}

fn mono_order(ab: &Abills, amount: &str) -> CardOrder {
    let o = new_order(&ab.db, "mono", "test1", amount, amount);
    order::note_ref(
        &mut ab.db.conn(),
        &o,
        "created",
        &format!("inv-{}", o.order_id),
        None,
    )
    .unwrap();
    o
}

/// A webhook about an invoice that is not the one made for the order (another merchant's,
/// naming our order id as its reference; the key may not be ours alone) changes nothing,
/// whatever its amount: the order is not marked for the admin, and the subscriber's own
/// payment of the real invoice is credited.
#[test]
fn a_foreign_monobank_invoice_with_another_amount_leaves_the_order_alone() {
    let key = common::providers::monobank::signing_key("card_callback test merchant key");
    let ab = mono_site(&key);
    let config = ab.site.config_path();
    let o = mono_order(&ab, "100.00");
    let foreign = monobank_webhook(&o.order_id, "success", 100, "2026-12-07T10:00:05Z")
        .replace(&format!("inv-{}", o.order_id), "inv-somebody-elses");
    let refused = post_webhook(&config, &key, &foreign);
    let (after_foreign, _, note) = state(&ab.db, o.id);
    // The subscriber pays the invoice made for the order.
    let paid = monobank_webhook(&o.order_id, "success", 10000, "2026-12-07T10:00:30Z");
    let a = post_webhook(&config, &key, &paid);
    assert_eq!(
        ab.deposit(1),
        "112.50",
        "the real payment was not credited (answered {a:?}); a foreign invoice left the order \
         {after_foreign}: {note}"
    );
    assert_eq!(state(&ab.db, o.id).0, "paid");
    assert_eq!(
        refused.status, 400,
        "a foreign invoice is not believed: {refused:?}"
    );
}

/// Monobank's webhooks come out of order, and `modifiedDate` says which is newer: a
/// success older than the reversal already noted on the order is money that left again,
/// and credits nothing.
#[test]
fn a_monobank_success_older_than_a_noted_reversal_credits_nothing() {
    let key = common::providers::monobank::signing_key("card_callback test merchant key");
    let ab = mono_site(&key);
    let config = ab.site.config_path();
    let o = mono_order(&ab, "100.00");
    let before = ab.deposit(1);
    // Paid at :10, reversed at :20; the reversal is delivered first.
    let reversed = monobank_webhook(&o.order_id, "reversed", 10000, "2026-12-07T10:00:20Z");
    assert_eq!(post_webhook(&config, &key, &reversed).status, 200);
    assert_eq!(state(&ab.db, o.id).0, "reversed");
    let success = monobank_webhook(&o.order_id, "success", 10000, "2026-12-07T10:00:10Z");
    let a = post_webhook(&config, &key, &success);
    assert_ne!(a.status, 503, "{a:?}");
    assert_eq!(
        ab.deposit(1),
        before,
        "a success older than the reversal was credited"
    );
    assert_eq!(ab.db.count("SELECT COUNT(*) FROM paysys_txn"), 0);
    assert_ne!(state(&ab.db, o.id).0, "paid");
}

/// On NoDeny a card callback sends the database no more statements than a terminal's pay:
/// the order is read, checked and locked by the pay's own first statement (MariaDB 10.5
/// and later), not by a read before it. Both as CGI processes, counted in the general log
/// of a private server (nobody else's statements), prepares included.
#[test]
fn a_callback_costs_no_more_statements_than_a_terminals_pay_on_nodeny() {
    let Some(logged) = common::mariadb::Logged::start("card_statements") else {
        return;
    };
    let db = TestDb::new_on(&logged.server.url());
    let site = common::Site::new(&db.url, "");
    site.write_config(&format!(
        "[database]\nurl = \"{}\"\nbilling = \"nodeny\"\n\n[log]\nfile = \"var/log/paysys_check.log\"\n\n\
         [[system]]\nname = \"osmp\"\nprotocol = \"osmp\"\nallow = [\"127.0.0.1\"]\naccount = \"payment_code\"\n{}",
        db.url,
        liqpay_system("account = \"payment_code\"")
    ));
    let (pay, a) = logged.statements(|| site.get(&common::pay_query("5001", "59071", "10.00")));
    assert_eq!(a.result(), 0, "{a:?}");
    let o = new_order(&db, "liqpay", "59071", "10.00", "10.00");
    let body = liqpay_callback(&o.order_id, "success", "10.00", "UAH", PRIVATE_KEY);
    let (callback, a) = logged.statements(|| post_liqpay(&site.config_path(), &body));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(db.pays(), 2, "both paid");
    assert_eq!(state(&db, o.id).0, "paid");
    logged.assert_no_more("a callback", &pay, &callback);
    let listing = common::mariadb::listing;
    assert!(
        !callback
            .iter()
            .any(|(c, a)| c == "Execute" && a.starts_with("SELECT")),
        "no read before the pay:\n{}",
        listing(&callback)
    );
}
