//! Several merchants of one card provider (an ISP that is several legal entities): the
//! page shows the provider once, and the merchant that takes the payment is chosen for the
//! subscriber by ABillS group or by account, through the real executable on ABillS 1.50's
//! tables. The order, ABillS's `paysys_log` row and the provider's form are the chosen
//! merchant's, and its callback pays the order into its `abills_id`.

mod common;

use base64::Engine as _;
use common::abills::{Abills, Ddl};
use common::providers::{self, LiqPay};
use mysql::prelude::Queryable;

const PUBLIC_URL: &str = "https://isp.example/cgi-bin/paysys_check.cgi";

/// Two LiqPay merchants: `lp_town` takes group 1's `test…` logins, `lp_field` accounts
/// starting `0001`. Both sign with the stand-in's private key; their public keys differ.
fn systems(liqpay: &LiqPay) -> String {
    let one = |name: &str, id: u32, pick: &str| {
        format!(
            "\n[[system]]\nname = \"{name}\"\nprotocol = \"liqpay\"\npublic_key = \"pk_{name}\"\n\
             private_key = \"{sk}\"\ncheckout_url = \"{checkout}\"\napi_url = \"{api}\"\n\
             account = \"login\"\nabills_id = {id}\n{pick}\n",
            sk = liqpay.private_key(),
            checkout = liqpay.checkout_url(),
            api = liqpay.api_url(),
        )
    };
    one("lp_town", 62, "groups = [1]\naccounts = \"^test\"")
        + &one("lp_field", 65, "accounts = \"^0001\"")
        + &format!("\n[page]\npublic_url = \"{PUBLIC_URL}\"\n")
}

fn post(ab: &Abills, path: &str, body: &str) -> common::Answer {
    let len = body.len().to_string();
    ab.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("PATH_INFO", path),
            ("REMOTE_ADDR", "198.51.100.7"),
            ("HTTP_HOST", "isp.example"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", &len),
        ],
        body.as_bytes(),
    )
}

/// The decoded `data` of the LiqPay form on `body`.
fn liqpay_data(body: &str) -> serde_json::Value {
    let at = body
        .find("name=\"data\" value=\"")
        .unwrap_or_else(|| panic!("no data field in {body}"));
    let rest = &body[at + 19..];
    let data = &rest[..rest.find('"').unwrap()];
    let json = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn the_page_shows_the_provider_once_and_each_subscriber_pays_their_own_merchant() {
    let liqpay = LiqPay::start();
    let ab = Abills::on_ddl(Ddl::V1_50, &systems(&liqpay));
    let form = ab.cgi(
        &[
            ("REQUEST_METHOD", "GET"),
            ("PATH_INFO", "/pay"),
            ("REMOTE_ADDR", "198.51.100.7"),
        ],
        b"",
    );
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.body.matches("<button").count(), 1, "{}", form.body);
    assert!(form.body.contains(">LiqPay</button>"), "{}", form.body);

    // The button names the first merchant; the subscriber decides which one is paid.
    for (account, merchant, abills_id) in [("test1", "lp_town", 62), ("00012345", "lp_field", 65)] {
        let page = post(
            &ab,
            "/pay",
            &format!("account={account}&sum=100&system=lp_town"),
        );
        assert_eq!(page.status, 200, "{account}: {}", page.body);
        let data = liqpay_data(&page.body);
        assert_eq!(data["public_key"], format!("pk_{merchant}"), "{data}");
        let server_url = data["server_url"].as_str().unwrap();
        assert_eq!(server_url, format!("{PUBLIC_URL}/callback/{merchant}"));
        let order_id = data["order_id"].as_str().unwrap().to_string();
        let (system, log_system): (String, u32) = ab
            .db
            .conn()
            .exec_first(
                "SELECT o.system_name, l.system_id FROM paysys_order o \
                 JOIN paysys_log l ON l.transaction_id LIKE CONCAT('%:', o.order_id) \
                 WHERE o.order_id = ?",
                (&order_id,),
            )
            .unwrap()
            .unwrap();
        assert_eq!((system.as_str(), log_system), (merchant, abills_id));

        // The merchant's callback pays it, into its own ABillS system.
        let json = format!(
            "{{\"public_key\":\"pk_{merchant}\",\"version\":3,\"action\":\"pay\",\
             \"status\":\"success\",\"order_id\":\"{order_id}\",\"payment_id\":77,\
             \"amount\":100,\"currency\":\"UAH\",\"end_date\":1700000000000}}"
        );
        let data = base64::engine::general_purpose::STANDARD.encode(json);
        let signature = providers::liqpay::sign(liqpay.private_key(), &data);
        let body = serde_urlencoded::to_string([("data", data), ("signature", signature)]).unwrap();
        let paid = post(&ab, &format!("/callback/{merchant}"), &body);
        assert_eq!(paid.status, 200, "{}", paid.body);
        let (state, status): (String, u8) = ab
            .db
            .conn()
            .exec_first(
                "SELECT o.state, l.status FROM paysys_order o \
                 JOIN paysys_log l ON l.transaction_id LIKE CONCAT('%:', o.order_id) \
                 WHERE o.order_id = ?",
                (&order_id,),
            )
            .unwrap()
            .unwrap();
        assert_eq!((state.as_str(), status), ("paid", 2), "{account}");
        let method_system: u32 = ab
            .db
            .conn()
            .exec_first(
                "SELECT l.system_id FROM payments p JOIN paysys_log l \
                 ON l.transaction_id = p.ext_id WHERE p.ext_id LIKE CONCAT('%:', ?)",
                (&order_id,),
            )
            .unwrap()
            .unwrap();
        assert_eq!(method_system, abills_id);
    }
}

#[test]
fn a_subscriber_no_merchant_takes_is_told_and_nothing_is_stored() {
    let liqpay = LiqPay::start();
    let ab = Abills::on_ddl(Ddl::V1_50, &systems(&liqpay));
    let logged = ab.db.count("SELECT COUNT(*) FROM paysys_log");
    // a1b: group 1 but not a `test…` login, and not `0001…`.
    let page = post(&ab, "/pay", "account=a1b&sum=100&system=lp_field");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("Оплата карткою для цього рахунку тут недоступна"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("name=\"data\""), "{}", page.body);
    assert_eq!(ab.db.count("SELECT COUNT(*) FROM paysys_order"), 0);
    assert_eq!(ab.db.count("SELECT COUNT(*) FROM paysys_log"), logged);
    let log = ab.site.log();
    assert!(
        log.contains("no liqpay merchant takes account 'a1b' (group 1)"),
        "{log}"
    );
}

/// A merchant picked by `accounts` is picked by who the subscriber is, not by the text
/// typed: with an account rule of several keys (login or uid), the subscriber `test1`
/// (uid 1) is `lp_town`'s whether they type their login, their uid, or their login in
/// capitals (which ABillS's collation finds): `accounts` is matched against the login as
/// stored (the rule's first key).
#[test]
fn one_subscriber_pays_one_merchant_whichever_key_they_type() {
    let liqpay = LiqPay::start();
    let one = |name: &str, id: u32, pick: &str| {
        format!(
            "\n[[system]]\nname = \"{name}\"\nprotocol = \"liqpay\"\npublic_key = \"pk_{name}\"\n\
             private_key = \"{sk}\"\ncheckout_url = \"{checkout}\"\napi_url = \"{api}\"\n\
             account = [\"login\", \"uid\"]\nabills_id = {id}\n{pick}\n",
            sk = liqpay.private_key(),
            checkout = liqpay.checkout_url(),
            api = liqpay.api_url(),
        )
    };
    let systems = one("lp_town", 62, "accounts = \"^test\"")
        + &one("lp_main", 66, "")
        + &format!("\n[page]\npublic_url = \"{PUBLIC_URL}\"\n");
    let ab = Abills::on_ddl(Ddl::V1_50, &systems);
    let mut chosen = Vec::new();
    // Also by login in other letters: ABillS's collation finds `test1`, the regex does not.
    for typed in ["test1", "1", "TEST1"] {
        let page = post(
            &ab,
            "/pay",
            &format!("account={typed}&sum=100&system=lp_town"),
        );
        assert_eq!(page.status, 200, "{typed}: {}", page.body);
        let data = liqpay_data(&page.body);
        chosen.push((typed, data["public_key"].as_str().unwrap().to_string()));
    }
    assert!(
        chosen.iter().all(|(_, merchant)| *merchant == chosen[0].1),
        "uid 1, typed three ways, went to different merchants: {chosen:?}"
    );
}
