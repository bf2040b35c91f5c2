//! A Monobank system with no `pubkey` in the config: paysys_check.cgi fetches the key
//! (`GET {api_url}/api/merchant/pubkey`, `X-Token`) at the first webhook, caches it under
//! the install base (`var/cache/monobank-<system>.pubkey`), uses the cache after, fetches
//! once more when the cache stops verifying (a rotated key), and never credits a webhook it
//! cannot verify; Monobank's API down is a 503 (posted again), nothing written.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::abills::{Abills, Ddl};
use common::providers::monobank::{self as standin, Monobank};
use common::Answer;
use mysql::prelude::Queryable;
use p256::ecdsa::SigningKey;
use paysys::card::order::{self, CardOrder, NewOrder};
use paysys::domain::{Amount, Domain};

fn site(api_url: &str, token: &str) -> Abills {
    Abills::on_ddl(
        Ddl::V1_50,
        &format!(
            "\n[[system]]\nname = \"mono\"\nprotocol = \"monobank\"\ntoken = \"{token}\"\n\
             api_url = \"{api_url}\"\nabills_id = 64\naccount = \"login\"\n"
        ),
    )
}

/// An order of test1 whose invoice (`inv-<order id>`) is recorded, as the page does after
/// invoice/create: a webhook pays only that invoice.
fn order_with_invoice(ab: &Abills, amount: &str) -> CardOrder {
    let mut conn = ab.db.conn();
    let o = order::create(
        &mut conn,
        &NewOrder {
            system: "mono",
            account: "test1",
            amount: Amount::parse(amount).unwrap(),
            charged: Amount::parse(amount).unwrap(),
            currency: "UAH",
            domain: Domain::default(),
            validity_hours: 24,
            subscriber_id: None,
        },
    )
    .unwrap();
    order::note_ref(
        &mut conn,
        &o,
        "created",
        &format!("inv-{}", o.order_id),
        None,
    )
    .unwrap();
    o
}

fn success(o: &CardOrder, kopecks: i64) -> String {
    let id = &o.order_id;
    format!(
        "{{\"invoiceId\":\"inv-{id}\",\"status\":\"success\",\"amount\":{kopecks},\"ccy\":980,\
         \"finalAmount\":{kopecks},\"reference\":\"{id}\",\"createdDate\":\"2026-12-07T10:00:00Z\",\
         \"modifiedDate\":\"2026-12-07T10:01:00Z\"}}"
    )
}

/// Posts `body` to `/callback/mono`, signed with `key`.
fn post(ab: &Abills, key: &SigningKey, body: &str) -> Answer {
    let config = ab.site.config_path().to_string_lossy().into_owned();
    let sign = standin::x_sign(key, body.as_bytes());
    common::abills::run_paysys_check(
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config),
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/callback/mono"),
            ("CONTENT_TYPE", "application/json"),
            ("CONTENT_LENGTH", &body.len().to_string()),
            ("HTTP_X_SIGN", &sign),
            ("REMOTE_ADDR", "203.0.113.7"),
        ],
        body.as_bytes(),
    )
}

fn pubkey_fetches(mono: &Monobank) -> usize {
    mono.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path() == "/api/merchant/pubkey")
        .count()
}

fn order_state(ab: &Abills, o: &CardOrder) -> String {
    ab.db
        .conn()
        .exec_first("SELECT state FROM paysys_order WHERE id = ?", (o.id,))
        .unwrap()
        .unwrap()
}

fn payments(ab: &Abills) -> u64 {
    ab.db
        .conn()
        .query_first("SELECT COUNT(*) FROM payments")
        .unwrap()
        .unwrap()
}

#[test]
fn the_key_is_fetched_once_cached_and_fetched_again_only_when_it_stops_verifying() {
    let mono = Monobank::start();
    let ab = site(&mono.api_url(), mono.token());
    let cache = ab.site.base.join("var/cache/monobank-mono.pubkey");
    assert!(!cache.exists());

    // The first webhook: the key is fetched with the token, cached, and the order paid.
    let o1 = order_with_invoice(&ab, "100.00");
    let a = post(&ab, &mono.signing_key(), &success(&o1, 10000));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ab.deposit(1), "112.50");
    assert_eq!(order_state(&ab, &o1), "paid");
    assert_eq!(pubkey_fetches(&mono), 1);
    let fetch = mono
        .requests()
        .into_iter()
        .find(|r| r.path() == "/api/merchant/pubkey")
        .unwrap();
    assert!(
        fetch
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("x-token") && v == mono.token()),
        "{:?}",
        fetch.headers
    );
    assert_eq!(
        std::fs::read_to_string(&cache).unwrap().trim(),
        mono.pubkey_base64()
    );
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let log =
        std::fs::read_to_string(ab.site.base.join("var/log/paysys_check.log")).unwrap_or_default();
    assert!(log.contains("fetched"), "{log}");

    // The second: the cache verifies it, nothing is fetched.
    let o2 = order_with_invoice(&ab, "5.00");
    let a = post(&ab, &mono.signing_key(), &success(&o2, 500));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ab.deposit(1), "117.50");
    assert_eq!(pubkey_fetches(&mono), 1);

    // Monobank rotates its key: within a minute of the last fetch, the webhook is answered
    // 503 (Monobank posts it again) and nothing is fetched; later, paysys fetches once,
    // pays, and the cache holds the new key.
    let age_cache = || {
        std::fs::File::options()
            .write(true)
            .open(&cache)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
            .unwrap()
    };
    mono.rotate_key();
    let o3 = order_with_invoice(&ab, "7.00");
    let a = post(&ab, &mono.signing_key(), &success(&o3, 700));
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(pubkey_fetches(&mono), 1);
    age_cache();
    let a = post(&ab, &mono.signing_key(), &success(&o3, 700));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ab.deposit(1), "124.50");
    assert_eq!(pubkey_fetches(&mono), 2);
    assert_eq!(
        std::fs::read_to_string(&cache).unwrap().trim(),
        mono.pubkey_base64()
    );
    let log =
        std::fs::read_to_string(ab.site.base.join("var/log/paysys_check.log")).unwrap_or_default();
    assert!(log.contains("rotated"), "{log}");

    // A forged webhook, a while after the last fetch: at most one fetch, refused, nothing
    // written.
    age_cache();
    let o4 = order_with_invoice(&ab, "9.00");
    let before = payments(&ab);
    let forger = standin::signing_key("card_monobank_key forger");
    let a = post(&ab, &forger, &success(&o4, 900));
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(pubkey_fetches(&mono), 3);
    // More of them at once: no fetch within a minute of the last; answered 503 (a genuine
    // webhook with a key rotated just now would come again), nothing written.
    for _ in 0..5 {
        let a = post(&ab, &forger, &success(&o4, 900));
        assert_eq!(a.status, 503, "{a:?}");
    }
    assert_eq!(pubkey_fetches(&mono), 3);
    let log =
        std::fs::read_to_string(ab.site.base.join("var/log/paysys_check.log")).unwrap_or_default();
    assert!(log.contains("not signed by Monobank"), "{log}");
    assert_eq!(ab.deposit(1), "124.50");
    assert_eq!(payments(&ab), before);
    assert_eq!(order_state(&ab, &o4), "waiting");
    // The cached key is still Monobank's: the next genuine webhook fetches nothing.
    let fetched = pubkey_fetches(&mono);
    let o5 = order_with_invoice(&ab, "1.00");
    assert_eq!(
        post(&ab, &mono.signing_key(), &success(&o5, 100)).status,
        200
    );
    assert_eq!(pubkey_fetches(&mono), fetched);
    assert_eq!(ab.deposit(1), "125.50");
}

#[test]
fn monobank_down_is_a_503_and_nothing_is_written() {
    // A port nobody listens on: the stand-in started and stopped.
    let (api_url, token, key) = {
        let mono = Monobank::start();
        (mono.api_url(), mono.token().to_string(), mono.signing_key())
    };
    let ab = site(&api_url, &token);
    let o = order_with_invoice(&ab, "100.00");
    let before = payments(&ab);
    let a = post(&ab, &key, &success(&o, 10000));
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(ab.deposit(1), "12.50");
    assert_eq!(payments(&ab), before);
    assert_eq!(order_state(&ab, &o), "waiting");
    assert!(!ab.site.base.join("var/cache/monobank-mono.pubkey").exists());
    let log =
        std::fs::read_to_string(ab.site.base.join("var/log/paysys_check.log")).unwrap_or_default();
    assert!(log.contains("could not be fetched"), "{log}");
}

#[test]
fn a_wrong_token_is_a_503_and_a_configured_pubkey_is_never_replaced() {
    let mono = Monobank::start();
    // The API refuses the token: nothing to verify with, so Monobank is asked to post again.
    let ab = site(&mono.api_url(), "not-the-token");
    let o = order_with_invoice(&ab, "100.00");
    let a = post(&ab, &mono.signing_key(), &success(&o, 10000));
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(ab.deposit(1), "12.50");

    // A configured pubkey that Monobank has since rotated away from: refused, nothing
    // fetched, the config's key stays the one used.
    let old = mono.pubkey_base64();
    mono.rotate_key();
    let ab = Abills::on_ddl(
        Ddl::V1_50,
        &format!(
            "\n[[system]]\nname = \"mono\"\nprotocol = \"monobank\"\ntoken = \"{}\"\n\
             pubkey = \"{old}\"\napi_url = \"{}\"\nabills_id = 64\naccount = \"login\"\n",
            mono.token(),
            mono.api_url()
        ),
    );
    let fetched = pubkey_fetches(&mono);
    let o = order_with_invoice(&ab, "100.00");
    let a = post(&ab, &mono.signing_key(), &success(&o, 10000));
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(pubkey_fetches(&mono), fetched);
    assert_eq!(ab.deposit(1), "12.50");
    assert!(!ab.site.base.join("var/cache/monobank-mono.pubkey").exists());
    let log =
        std::fs::read_to_string(ab.site.base.join("var/log/paysys_check.log")).unwrap_or_default();
    assert!(log.contains("changed its key"), "{log}");
}
