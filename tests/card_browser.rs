//! A subscriber pays by card in a real browser: headless Chromium (tests/common/browser.rs)
//! opens `paysys_check.cgi/pay` behind a real web server on 127.0.0.1 (nginx + fcgiwrap, or
//! Apache: tests/webserver), types the account and the sum, presses a provider's button and
//! lands on that provider's stand-in (tests/common/providers), which posts its signed
//! callback to paysys through the same web server before it sends the browser back — and the
//! result page says what happened. Each test checks the money too: the balance, and the
//! stand-in's record of paysys's answers (WayForPay: the signed `accept`).
//!
//! Screenshots of the form and of each result page go to `target/screenshots/`, one name
//! per flow. Without a web server or a browser the tests print "skipped: …"; with
//! `PAYSYS_REQUIRE_WEB=1` (CI) that is a failure instead.

mod common;
mod webserver;

use std::path::Path;
use std::time::Duration;

use common::abills::Ddl;
use common::browser::{self, Browser, Options as BrowserOptions};
use common::providers::{LiqPay, Monobank, Script, WayForPay};
use common::TestDb;
use mysql::prelude::Queryable;
use webserver::{Kind, Options, TempPrefix, WebServer};

/// How long a page may take to show what it should (a CGI per request, a callback before
/// the redirect: far less than this).
const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Billing {
    /// ABillS 1.50's tables (`tests/fixtures/abills-1.50.sql`): `test1`, bill 1 at 12.50.
    Abills,
    /// NoDeny: payment code 59071 (subscriber 5907) at 100.00.
    Nodeny,
}

/// paysys_check.cgi behind a web server, on a billing, with the three providers' stand-ins.
/// Fields drop in order: the server stops before its prefix goes.
struct Stage {
    web: WebServer,
    prefix: TempPrefix,
    db: TestDb,
    billing: Billing,
    /// `http://127.0.0.1:<port>/cgi-bin/paysys_check.cgi`
    cgi: String,
    liqpay: LiqPay,
    mono: Monobank,
    wfp: WayForPay,
}

impl Stage {
    /// `None` after "skipped: …" when the web server is not installed or the database is
    /// reached by a socket the CGI (run as www-data) may not use.
    fn start(kind: Kind, billing: Billing, public_url: bool, tag: &str) -> Option<Stage> {
        let server = common::server_url();
        if server.contains("socket=") {
            eprintln!(
                "skipped: the CGI runs as www-data and needs a TCP database URL, not {server}"
            );
            return None;
        }
        let prefix = TempPrefix(webserver::temp_prefix(tag).expect("temp prefix"));
        let p = prefix.0.as_path();
        webserver::prepare_prefix(p).expect("prepare_prefix");
        webserver::install_cgi(
            p,
            "paysys_check.cgi",
            Path::new(env!("CARGO_BIN_EXE_paysys_check")),
        )
        .expect("install paysys_check.cgi");
        let db = match billing {
            Billing::Abills => TestDb::with_fixture(&Ddl::V1_50.fixture()),
            Billing::Nodeny => TestDb::new(),
        };
        let liqpay = LiqPay::start();
        let mono = Monobank::start();
        let wfp = WayForPay::start();
        // As WayForPay does: the browser comes back by a POST to returnUrl.
        wfp.set_return_by_post(true);
        let config =
            |public: Option<&str>| config_text(&db.url, billing, &liqpay, &mono, &wfp, public);
        std::fs::write(p.join("etc/paysys.toml"), config(None)).expect("config");
        let Some(web) = WebServer::start(kind, p, &Options::default()).expect("web server") else {
            eprintln!("skipped: {kind} is not installed");
            return None;
        };
        let cgi = format!("{}/cgi-bin/paysys_check.cgi", web.base_url());
        if public_url {
            std::fs::write(p.join("etc/paysys.toml"), config(Some(&cgi))).expect("config");
        }
        Some(Stage {
            web,
            prefix,
            db,
            billing,
            cgi,
            liqpay,
            mono,
            wfp,
        })
    }

    /// The account the subscriber types.
    fn account(&self) -> &'static str {
        match self.billing {
            Billing::Abills => "test1",
            Billing::Nodeny => "59071",
        }
    }

    /// The subscriber's money: ABillS's bill 1, NoDeny's `users.balance` of 5907.
    fn balance(&self) -> String {
        match self.billing {
            Billing::Abills => self
                .db
                .conn()
                .query_first("SELECT CAST(deposit AS DECIMAL(16,2)) FROM bills WHERE id = 1")
                .expect("select")
                .expect("bill 1"),
            Billing::Nodeny => self.db.balance(5907),
        }
    }

    /// The billing's payment rows: ABillS's `payments`, NoDeny's `pays`.
    fn payment_rows(&self) -> u64 {
        match self.billing {
            Billing::Abills => self.db.count("SELECT COUNT(*) FROM payments"),
            Billing::Nodeny => self.db.pays(),
        }
    }

    /// The state of our order `order_id`.
    fn order_state(&self, order_id: &str) -> String {
        self.db
            .conn()
            .exec_first(
                "SELECT state FROM paysys_order WHERE order_id = ?",
                (order_id,),
            )
            .expect("select")
            .unwrap_or_else(|| panic!("no order {order_id}"))
    }

    /// paysys's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.0.join("var/log/paysys_check.log")).unwrap_or_default()
    }

    /// The web server's access log so far: `"METHOD /path HTTP/1.1" status` per request.
    fn access_log(&self) -> String {
        std::fs::read_to_string(self.web.state_dir().join("logs/access.log")).unwrap_or_default()
    }

    /// Whether the web server served `method` on `path` (under `/cgi-bin/paysys_check.cgi`)
    /// with `status`.
    fn served(&self, method: &str, path: &str, status: u16) -> bool {
        let request = format!("\"{method} /cgi-bin/paysys_check.cgi{path} HTTP/1.1\" {status} ");
        self.access_log().lines().any(|l| l.contains(&request))
    }

    /// A browser of this size, `None` after "skipped: …" when there is none.
    fn browser(&self, width: u32, height: u32, mobile: bool) -> Option<Browser> {
        Browser::start_with(&BrowserOptions {
            width,
            height,
            mobile,
            lang: "uk".into(),
        })
        .expect("browser")
    }

    /// What a subscriber does: opens the form, types the account and `sum`, presses
    /// `system`'s button, and waits until the page the provider sends the browser back to
    /// shows a settled order. Returns that page's `data-state` and the order id from its
    /// address. `shot`: the screenshots' name (`<shot>_form`, `<shot>_<state>`).
    fn pay(&self, b: &Browser, system: &str, sum: &str, shot: &str) -> (String, String) {
        let (width, _) = b.size();
        b.goto(&format!("{}/pay", self.cgi));
        let button = format!("button[value={system}]");
        b.wait_for_css(&button, WAIT);
        assert!(
            b.body_text().contains("Мережа Приклад"),
            "{}",
            b.body_text()
        );
        // Readable on a phone: nothing wider than the screen.
        let scroll = b.script("return document.documentElement.scrollWidth;", &[]);
        assert!(
            scroll.as_u64().unwrap_or(0) <= u64::from(width),
            "{shot}: the form is {scroll} px wide on a {width} px screen"
        );
        b.type_into("input[name=account]", self.account());
        b.type_into("input[name=sum]", sum);
        shot_of(b, &format!("{shot}_form"));
        b.click(&button);
        // The provider's callback comes before the browser is sent back, so the first
        // result page shows a settled order; a page still waiting would refresh itself.
        b.wait_for_css("#state:not([data-state=waiting])", WAIT);
        let state = b.attribute("#state", "data-state").unwrap_or_default();
        let url = b.current_url();
        let order_id = url
            .strip_prefix(&format!("{}/pay/", self.cgi))
            .unwrap_or_else(|| panic!("{shot}: back at {url}, not a result page of {}", self.cgi))
            .to_string();
        let scroll = b.script("return document.documentElement.scrollWidth;", &[]);
        assert!(
            scroll.as_u64().unwrap_or(0) <= u64::from(width),
            "{shot}: the result page is {scroll} px wide on a {width} px screen"
        );
        shot_of(b, &format!("{shot}_{state}"));
        (state, order_id)
    }
}

/// A screenshot as big as the viewport.
fn shot_of(b: &Browser, name: &str) {
    let path = b.screenshot(name);
    assert_eq!(
        browser::png_size(&path),
        Some(b.size()),
        "{}",
        path.display()
    );
}

/// The config: the three card systems pointed at their stand-ins, and the page's title;
/// `public_url` when given, else the providers' URLs come from the request.
fn config_text(
    db_url: &str,
    billing: Billing,
    liqpay: &LiqPay,
    mono: &Monobank,
    wfp: &WayForPay,
    public_url: Option<&str>,
) -> String {
    let (name, account) = match billing {
        Billing::Abills => ("abills", "login"),
        Billing::Nodeny => ("nodeny", "payment_code"),
    };
    let public_url = public_url
        .map(|u| format!("public_url = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"[database]
url = "{db_url}"
billing = "{name}"
lock_timeout = 3

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "liqpay"
protocol = "liqpay"
public_key = "{liqpay_pk}"
private_key = "{liqpay_sk}"
checkout_url = "{liqpay_checkout}"
api_url = "{liqpay_api}"
account = "{account}"
min_sum = "10.00"
max_sum = "5000.00"
commission_percent = "2.5"
abills_id = 62

[[system]]
name = "mono"
protocol = "monobank"
token = "{mono_token}"
pubkey = "{mono_pubkey}"
api_url = "{mono_api}"
account = "{account}"
abills_id = 63

[[system]]
name = "wfp"
protocol = "wayforpay"
merchant_account = "{wfp_account}"
secret_key = "{wfp_secret}"
merchant_domain = "{wfp_domain}"
checkout_url = "{wfp_checkout}"
api_url = "{wfp_api}"
account = "{account}"
abills_id = 64

[page]
{public_url}title = "Мережа Приклад"
"#,
        liqpay_pk = liqpay.public_key(),
        liqpay_sk = liqpay.private_key(),
        liqpay_checkout = liqpay.checkout_url(),
        liqpay_api = liqpay.api_url(),
        mono_token = mono.token(),
        mono_pubkey = mono.pubkey_base64(),
        mono_api = mono.api_url(),
        wfp_account = wfp.merchant_account(),
        wfp_secret = wfp.secret_key(),
        wfp_domain = wfp.merchant_domain(),
        wfp_checkout = wfp.checkout_url(),
        wfp_api = wfp.api_url(),
    )
}

/// LiqPay behind nginx on ABillS 1.50, on a desktop window and then on a phone's screen:
/// each press of the button pays once, through the callback the stand-in posted to the web
/// server, and the result page says "paid".
#[test]
fn liqpay_pays_behind_nginx_on_a_desktop_and_a_phone() {
    let Some(stage) = Stage::start(Kind::Nginx, Billing::Abills, true, "card-liqpay") else {
        return;
    };
    let rows = stage.payment_rows();
    // 12.50 on the bill; each sum credited without LiqPay's 2.5 % on top.
    for ((width, height, mobile), sum, after) in [
        ((1280, 800, false), "100", "112.50"),
        ((390, 844, true), "50", "162.50"),
    ] {
        let Some(b) = stage.browser(width, height, mobile) else {
            return;
        };
        let (state, order_id) = stage.pay(&b, "liqpay", sum, "card_liqpay");
        assert_eq!(state, "paid", "{width}x{height}: {}", b.body_text());
        assert!(b.body_text().contains("Оплачено"), "{}", b.body_text());
        assert_eq!(stage.order_state(&order_id), "paid");
        assert_eq!(stage.balance(), after, "{width}x{height}");
    }
    let deliveries = stage.liqpay.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for d in &deliveries {
        assert_eq!(d.status(), 200, "{d:?}\n{}", stage.web.logs());
    }
    assert!(
        stage.liqpay.rejected().is_empty(),
        "{:?}",
        stage.liqpay.rejected()
    );
    assert_eq!(stage.payment_rows(), rows + 2);
}

/// WayForPay behind nginx on NoDeny: the checkout posts its signed `serviceUrl` callback,
/// paysys answers with the signed `accept` (the stand-in checks its signature), and the
/// browser comes back by WayForPay's POST to `returnUrl`: "paid", the balance credited.
/// Then a card the bank declines: the same way back, the result page says the payment did
/// not go through, and nothing is credited.
#[test]
fn wayforpay_pays_and_a_declined_card_credits_nothing() {
    let Some(stage) = Stage::start(Kind::Nginx, Billing::Nodeny, true, "card-wfp") else {
        return;
    };
    let Some(b) = stage.browser(1280, 800, false) else {
        return;
    };
    assert_eq!(stage.balance(), "100.00");
    let rows = stage.payment_rows();
    let (state, paid) = stage.pay(&b, "wfp", "100", "card_wayforpay");
    assert_eq!(state, "paid", "{}", b.body_text());
    assert!(b.body_text().contains("Оплачено"), "{}", b.body_text());
    assert_eq!(stage.balance(), "200.00");
    assert_eq!(stage.order_state(&paid), "paid");
    let order = stage.wfp.order(&paid).expect("the order came to checkout");
    assert_eq!(order.return_url, format!("{}/pay/{paid}", stage.cgi));
    assert_eq!(
        order.service_url,
        format!("{}/callback/wfp", stage.cgi),
        "the callback goes through the web server"
    );
    let deliveries = stage.wfp.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        deliveries[0].accepted,
        Some(true),
        "paysys's answer is not WayForPay's signed accept: {deliveries:?}\n{}",
        stage.web.logs()
    );
    // Through the web server: the callback, and the browser's way back by WayForPay's POST.
    assert!(
        stage.served("POST", "/callback/wfp", 200),
        "{}",
        stage.access_log()
    );
    assert!(
        stage.served("POST", &format!("/pay/{paid}"), 200),
        "{}",
        stage.access_log()
    );

    stage.wfp.set_script(Script::Fail);
    let (state, declined) = stage.pay(&b, "wfp", "50", "card_wayforpay_declined");
    assert_eq!(state, "failed", "{}", b.body_text());
    assert!(
        b.body_text().contains("Оплата не пройшла"),
        "{}",
        b.body_text()
    );
    assert!(!b.body_text().contains("Оплачено"), "{}", b.body_text());
    assert_ne!(declined, paid);
    assert_eq!(stage.order_state(&declined), "failed");
    assert_eq!(
        stage.balance(),
        "200.00",
        "nothing credited for a declined card"
    );
    assert_eq!(stage.payment_rows(), rows + 1);
    let deliveries = stage.wfp.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(
        deliveries[1].accepted,
        Some(true),
        "a decline is received (and accepted) too: {deliveries:?}"
    );
    assert!(
        stage.wfp.rejected().is_empty(),
        "{:?}",
        stage.wfp.rejected()
    );
    // Each order: one line for the form posted, one for the callback.
    let log = stage.log();
    for order_id in [&paid, &declined] {
        assert!(
            log.lines()
                .any(|l| l.contains("cmd=order") && l.contains(&format!("txn={order_id}"))),
            "{log}"
        );
    }
}

/// Monobank behind nginx on ABillS 1.50, on a phone's screen and then on a desktop window:
/// paysys calls the stand-in's invoice/create and sends the browser to its `pageUrl`; the
/// stand-in's page posts the webhook signed with its P-256 key (`X-Sign`) to `webHookUrl`
/// and sends the browser to `redirectUrl`: "paid", the bill credited, ABillS's
/// `paysys_log` row complete.
#[test]
fn monobank_pays_on_a_phone_and_a_desktop() {
    let Some(stage) = Stage::start(Kind::Nginx, Billing::Abills, true, "card-mono") else {
        return;
    };
    let rows = stage.payment_rows();
    for ((width, height, mobile), sum, after) in [
        ((390, 844, true), "75", "87.50"),
        ((1280, 800, false), "80", "167.50"),
    ] {
        let Some(b) = stage.browser(width, height, mobile) else {
            return;
        };
        let (state, order_id) = stage.pay(&b, "mono", sum, "card_monobank");
        assert_eq!(state, "paid", "{width}x{height}: {}", b.body_text());
        assert!(b.body_text().contains("Оплачено"), "{}", b.body_text());
        assert_eq!(stage.balance(), after, "{width}x{height}");
        let invoice = stage.mono.invoice(&order_id).expect("invoice/create");
        assert_eq!(invoice.web_hook_url, format!("{}/callback/mono", stage.cgi));
        assert_eq!(
            invoice.redirect_url,
            format!("{}/pay/{order_id}", stage.cgi)
        );
        let status: u8 = stage
            .db
            .conn()
            .exec_first(
                "SELECT status FROM paysys_log WHERE transaction_id LIKE ?",
                (format!("%:{order_id}"),),
            )
            .expect("select")
            .expect("ABillS's paysys_log row");
        assert_eq!(status, 2, "complete");
    }
    let deliveries = stage.mono.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for d in &deliveries {
        assert!(d.sent.header("X-Sign").is_some());
        assert_eq!(d.status(), 200, "{d:?}\n{}", stage.web.logs());
    }
    assert!(
        stage.mono.rejected().is_empty(),
        "{:?}",
        stage.mono.rejected()
    );
    assert_eq!(stage.payment_rows(), rows + 2);
}

/// LiqPay behind Apache (mod_cgid), where ABillS installs usually are, on ABillS 1.50 —
/// without `public_url`: the providers' URLs come from what Apache hands the CGI
/// (`HTTP_HOST`, `SCRIPT_NAME`), and the callback reaches paysys by them.
#[test]
fn liqpay_pays_behind_apache() {
    let Some(stage) = Stage::start(Kind::Apache, Billing::Abills, false, "card-apache") else {
        return;
    };
    let Some(b) = stage.browser(1280, 800, false) else {
        return;
    };
    let (state, order_id) = stage.pay(&b, "liqpay", "100", "card_apache_liqpay");
    assert_eq!(state, "paid", "{}", b.body_text());
    assert!(b.body_text().contains("Оплачено"), "{}", b.body_text());
    assert_eq!(stage.balance(), "112.50");
    let order = stage
        .liqpay
        .order(&order_id)
        .expect("the order came to checkout");
    assert_eq!(order.server_url, format!("{}/callback/liqpay", stage.cgi));
    assert_eq!(order.result_url, format!("{}/pay/{order_id}", stage.cgi));
    assert!(
        stage.served("POST", "/callback/liqpay", 200),
        "{}",
        stage.access_log()
    );
    let deliveries = stage.liqpay.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        deliveries[0].status(),
        200,
        "{deliveries:?}\n{}",
        stage.web.logs()
    );
    let status: u8 = stage
        .db
        .conn()
        .exec_first(
            "SELECT status FROM paysys_log WHERE transaction_id = ?",
            (format!("LIQ:{order_id}"),),
        )
        .expect("select")
        .expect("ABillS's paysys_log row");
    assert_eq!(status, 2, "complete");
}
