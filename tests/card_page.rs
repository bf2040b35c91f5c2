//! The subscriber's page at `paysys_check.cgi/pay`, through the real executable against
//! MariaDB (ABillS 1.50's tables and NoDeny): the form, an order stored before the browser
//! leaves (and ABillS's `paysys_log` row "in progress"), the providers' signed forms and
//! Monobank's invoice, the result page, hostile input, the security headers. The whole flow
//! in a real browser behind a real web server is tests/card_browser.rs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::abills::{Abills, Ddl};
use common::providers::{self, LiqPay, Monobank};
use common::TestDb;
use mysql::prelude::Queryable;

const PUBLIC_URL: &str = "https://isp.example/cgi-bin/paysys_check.cgi";

/// The card systems every test's config has: LiqPay and WayForPay, Monobank pointed at
/// `mono` (its stand-in's API), plus an OSMP terminal (not a card system: no button).
fn systems(liqpay: &LiqPay, mono: &Monobank, account: &str, extra: &str) -> String {
    format!(
        r#"
[[system]]
name = "liqpay"
protocol = "liqpay"
public_key = "{pk}"
private_key = "{sk}"
checkout_url = "{checkout}"
api_url = "{api}"
account = "{account}"
min_sum = "10.00"
max_sum = "5000.00"
commission_percent = "2.5"
abills_id = 62
{extra}

[[system]]
name = "mono"
protocol = "monobank"
token = "{token}"
pubkey = "{pubkey}"
api_url = "{mono_api}"
account = "{account}"
abills_id = 63

[[system]]
name = "wfp"
protocol = "wayforpay"
merchant_account = "test_merch_n1"
secret_key = "flk3409refn54t54t*FNJRET"
merchant_domain = "isp.example"
account = "{account}"
abills_id = 64

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["127.0.0.1"]
account = "{account}"
"#,
        pk = liqpay.public_key(),
        sk = liqpay.private_key(),
        checkout = liqpay.checkout_url(),
        api = liqpay.api_url(),
        token = mono.token(),
        pubkey = mono.pubkey_base64(),
        mono_api = mono.api_url(),
    )
}

fn page_section(public_url: Option<&str>) -> String {
    let url = public_url
        .map(|u| format!("public_url = \"{u}\"\n"))
        .unwrap_or_default();
    format!("\n[page]\n{url}title = \"<b>Мережа & Co</b>\"\n")
}

/// A billing with the page set up: ABillS 1.50's tables or NoDeny's.
struct Site {
    db: TestDb,
    config: std::path::PathBuf,
    _base: common::Site,
    abills: bool,
    liqpay: LiqPay,
    mono: Monobank,
}

impl Site {
    fn abills() -> Site {
        let liqpay = LiqPay::start();
        let mono = Monobank::start();
        let ab = Abills::on_ddl(
            Ddl::V1_50,
            &(systems(&liqpay, &mono, "login", "") + &page_section(Some(PUBLIC_URL))),
        );
        let config = ab.site.config_path();
        Site {
            db: ab.db,
            config,
            _base: ab.site,
            abills: true,
            liqpay,
            mono,
        }
    }

    fn nodeny() -> Site {
        let liqpay = LiqPay::start();
        let mono = Monobank::start();
        let db = TestDb::new();
        let site = common::Site::new(&db.url, "");
        let text = std::fs::read_to_string(site.config_path()).unwrap();
        // The OSMP system of the default config gives way to ours.
        let head = &text[..text.find("[[system]]").unwrap()];
        site.write_config(
            &(head.to_string()
                + &systems(&liqpay, &mono, "payment_code", "")
                + &page_section(Some(PUBLIC_URL))),
        );
        Site {
            config: site.config_path(),
            db,
            _base: site,
            abills: false,
            liqpay,
            mono,
        }
    }

    fn both() -> [Site; 2] {
        [Site::abills(), Site::nodeny()]
    }

    /// An account written as the system's rule reads it that names nobody.
    fn unknown_account(&self) -> &'static str {
        if self.abills {
            "nosuchlogin"
        } else {
            "999995"
        }
    }

    /// An account of the fixture that names a subscriber: `(account, masked name)`.
    fn good_account(&self) -> (&'static str, &'static str) {
        if self.abills {
            ("test1", "Ив*** И*** И*******")
        } else {
            // NoDeny shows its users.name (the login), masked as terminals show it.
            ("59071", "iv***")
        }
    }

    fn get(&self, path: &str, query: &str) -> Page {
        run(&self.config, "GET", path, query, "", &[])
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        run(&self.config, "POST", path, "", &body, &[])
    }

    fn orders(&self) -> u64 {
        self.db.count("SELECT COUNT(*) FROM paysys_order")
    }

    fn paysys_log_rows(&self) -> u64 {
        if self.abills {
            self.db.count("SELECT COUNT(*) FROM paysys_log")
        } else {
            0
        }
    }

    fn name(&self) -> &'static str {
        if self.abills {
            "abills"
        } else {
            "nodeny"
        }
    }
}

/// A whole CGI answer, headers kept.
#[derive(Debug)]
struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Where the page sends the browser on by itself: the URL of its
    /// `<meta http-equiv="refresh" content="0; url=…">`, unescaped, when it has one.
    fn refresh_to(&self) -> Option<String> {
        let marker = "<meta http-equiv=\"refresh\" content=\"0; url=";
        let rest = &self.body[self.body.find(marker)? + marker.len()..];
        Some(unescape(&rest[..rest.find('"')?]))
    }

    /// The value of the hidden input `name`, unescaped as a browser would.
    fn hidden(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.body[at + name.len() + 15..];
        Some(unescape(&rest[..rest.find('"')?]))
    }
}

/// An attribute's value as a browser reads it.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `paysys_check` as a web server runs it, at `PATH_INFO` `path`.
fn run(
    config: &Path,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Page {
    let mut cmd = Command::new(common::paysys_check_exe());
    cmd.env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("PAYSYS_CONFIG", config)
        .env("REQUEST_METHOD", method)
        .env("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "198.51.100.7")
        .env("HTTP_HOST", "isp.example")
        .env("CONTENT_TYPE", "application/x-www-form-urlencoded")
        .env("CONTENT_LENGTH", body.len().to_string());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn paysys_check");
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(body.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no CGI header in {text:?}"));
    let headers: Vec<(String, String)> = head
        .split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let status = headers
        .iter()
        .find(|(k, _)| k == "Status")
        .map(|(_, v)| v[..3].parse().unwrap())
        .unwrap_or(200);
    Page {
        status,
        headers,
        body: body.to_string(),
    }
}

fn assert_secure(page: &Page) {
    let csp = page
        .header("Content-Security-Policy")
        .unwrap_or_else(|| panic!("no CSP: {page:?}"));
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("X-Frame-Options"), Some("DENY"));
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert!(page.header("Set-Cookie").is_none(), "{page:?}");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    // Nothing loaded from anywhere: no src or stylesheet pointing out.
    for bad in ["src=\"http", "src=\"//", "<link", "@import", "url(http"] {
        assert!(!page.body.contains(bad), "{bad} in {}", page.body);
    }
}

#[test]
fn the_form_has_a_button_per_card_system_and_the_escaped_isp_name() {
    for site in Site::both() {
        let page = site.get("/pay", "");
        assert_eq!(page.status, 200, "{}: {page:?}", site.name());
        assert_secure(&page);
        assert!(!page
            .header("Content-Security-Policy")
            .unwrap()
            .contains("script-src"));
        assert!(!page.body.contains("<script"), "no script on the form");
        assert!(
            page.body.contains("&lt;b&gt;Мережа &amp; Co&lt;/b&gt;"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("<b>Мережа"));
        for (system, label) in [
            ("liqpay", "LiqPay"),
            ("mono", "Monobank"),
            ("wfp", "WayForPay"),
        ] {
            assert!(
                page.body.contains(&format!(
                    "<button type=\"submit\" name=\"system\" value=\"{system}\">{label}</button>"
                )),
                "{system}: {}",
                page.body
            );
        }
        assert_eq!(
            page.body.matches("name=\"system\"").count(),
            3,
            "no button for osmp"
        );
        assert!(page.body.contains("name=\"account\"") && page.body.contains("name=\"sum\""));
        assert!(page.body.contains("name=\"viewport\""));
        // Ukrainian by default; the browser's language or ?lang= picks another.
        assert!(page.body.contains("Поповнення рахунку"), "{}", page.body);
        assert!(
            page.body.contains("2.5%"),
            "the commission is told: {}",
            page.body
        );
        let ru = run(
            &site.config,
            "GET",
            "/pay",
            "",
            "",
            &[("HTTP_ACCEPT_LANGUAGE", "ru-RU,ru;q=0.9,en;q=0.8")],
        );
        assert!(ru.body.contains("Пополнение счёта") && ru.body.contains("lang=\"ru\""));
        let en = site.get("/pay", "lang=en");
        assert!(en.body.contains("Top up your account") && en.body.contains("lang=\"en\""));
        // Under a domain, the same form.
        let domain = site.get("/2/pay", "");
        assert_eq!(domain.status, 200, "{domain:?}");
        assert_eq!(site.orders(), 0);
    }
}

#[test]
fn an_unknown_account_stores_nothing_and_says_so() {
    for site in Site::both() {
        let before = site.paysys_log_rows();
        let unknown = site.unknown_account();
        let page = site.post(
            "/pay",
            &[("account", unknown), ("sum", "100"), ("system", "liqpay")],
        );
        assert_eq!(page.status, 200, "{page:?}");
        assert_secure(&page);
        assert!(
            page.body.contains("Абонента з таким рахунком не знайдено"),
            "{}: {}",
            site.name(),
            page.body
        );
        assert!(
            page.body.contains(&format!("value=\"{unknown}\"")),
            "the form keeps what was typed"
        );
        assert!(!page.body.contains("<script"));
        assert_eq!(site.orders(), 0, "{}", site.name());
        assert_eq!(site.paysys_log_rows(), before);
    }
}

#[test]
fn sums_outside_the_limits_and_hostile_input_are_refused_and_escaped() {
    for site in Site::both() {
        let (account, _) = site.good_account();
        let post = |sum: &str, system: &str| {
            site.post(
                "/pay",
                &[("account", account), ("sum", sum), ("system", system)],
            )
        };
        let below = post("5", "liqpay");
        assert!(
            below.body.contains("Найменша сума: 10.00"),
            "{}",
            below.body
        );
        let above = post("5000.01", "liqpay");
        assert!(
            above.body.contains("Найбільша сума: 5000.00"),
            "{}",
            above.body
        );
        for bad in [
            "1e3",
            "-5",
            "0",
            "99999999999999999999",
            "10.001",
            "NaN",
            "",
        ] {
            let page = post(bad, "liqpay");
            assert!(
                page.body.contains("Введіть суму числом"),
                "{bad}: {}",
                page.body
            );
        }
        let unknown = post("100", "<img src=x onerror=alert(1)>");
        assert_eq!(unknown.status, 400);
        assert!(unknown.body.contains("Оберіть спосіб оплати"));
        assert!(!unknown.body.contains("<img src=x"), "{}", unknown.body);
        let osmp = post("100", "osmp");
        assert_eq!(osmp.status, 400, "a terminal's system is no card system");
        // HTML in the account comes back escaped, never as markup.
        let html = site.post(
            "/pay",
            &[
                ("account", "\"><script>alert(1)</script>"),
                ("sum", "100"),
                ("system", "liqpay"),
            ],
        );
        assert!(!html.body.contains("<script>alert"), "{}", html.body);
        assert!(
            html.body
                .contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            html.body
        );
        // A huge body is refused, a repeated field with two values too.
        let huge = "a".repeat(70_000);
        let big = site.post(
            "/pay",
            &[("account", &huge), ("sum", "100"), ("system", "liqpay")],
        );
        assert_eq!(big.status, 400, "{}", &big.body[..200.min(big.body.len())]);
        let twice = run(
            &site.config,
            "POST",
            "/pay",
            "",
            &format!("account={account}&sum=100&sum=200&system=liqpay"),
            &[],
        );
        assert!(twice.body.contains("Введіть суму числом"), "{}", twice.body);
        // An order page for an id that is not one: 404, the id not echoed.
        let odd = site.get("/pay/%3Cscript%3E", "");
        assert_eq!(odd.status, 404);
        let odd = site.get("/pay/<script>alert(1)</script>", "");
        assert_eq!(odd.status, 404);
        assert!(!odd.body.contains("<script>alert"));
        assert_secure(&odd);
        let put = run(&site.config, "PUT", "/pay", "", "", &[]);
        assert_eq!(put.status, 405);
        assert_eq!(site.orders(), 0, "{}: nothing stored", site.name());
    }
}

/// The JSON of a LiqPay form's `data`, after checking its `signature`.
fn liqpay_json(site: &Site, page: &Page) -> serde_json::Value {
    let data = page
        .hidden("data")
        .unwrap_or_else(|| panic!("no data: {}", page.body));
    let signature = page.hidden("signature").expect("signature");
    assert_eq!(
        providers::liqpay::sign(site.liqpay.private_key(), &data),
        signature,
        "LiqPay's signature: base64(SHA-1(private + data + private))"
    );
    let json = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    serde_json::from_slice(&json).expect("json")
}

#[test]
fn a_good_post_stores_the_order_and_answers_a_signed_liqpay_form() {
    for site in Site::both() {
        let (account, masked) = site.good_account();
        let before = site.paysys_log_rows();
        let page = site.post(
            "/pay",
            &[("account", account), ("sum", "100"), ("system", "liqpay")],
        );
        assert_eq!(page.status, 200, "{}: {page:?}", site.name());
        assert_secure(&page);
        let csp = page.header("Content-Security-Policy").unwrap();
        let checkout_origin = site.liqpay.base_url();
        assert!(
            csp.contains(&format!("form-action 'self' {checkout_origin}")),
            "{csp}"
        );
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(
            page.body
                .contains(&format!("action=\"{}\"", site.liqpay.checkout_url())),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("<button type=\"submit\">"),
            "a button without JavaScript"
        );
        assert!(
            page.body.contains(masked),
            "{}: the masked name: {}",
            site.name(),
            page.body
        );
        assert!(
            page.body.contains("102.50 UAH"),
            "the total with commission: {}",
            page.body
        );
        // The order, stored before the browser leaves.
        let (order_id, amount, charged, state, system): (String, String, String, String, String) = site
            .db
            .conn()
            .query_first(
                "SELECT order_id, CAST(amount AS CHAR), CAST(charged AS CHAR), state, system_name FROM paysys_order",
            )
            .unwrap()
            .expect("an order");
        assert_eq!(
            (
                amount.as_str(),
                charged.as_str(),
                state.as_str(),
                system.as_str()
            ),
            ("100.00", "102.50", "waiting", "liqpay")
        );
        assert_eq!(order_id.len(), 20);
        let json = liqpay_json(&site, &page);
        assert_eq!(json["order_id"], order_id.as_str());
        assert_eq!(json["amount"].to_string(), "102.5");
        assert_eq!(json["currency"], "UAH");
        assert_eq!(json["action"], "pay");
        assert_eq!(json["public_key"], site.liqpay.public_key());
        // Payable until the order's validity ends (24 h after it was made, UTC), not after.
        let (expires,): (String,) = site
            .db
            .conn()
            .query_first(
                "SELECT DATE_FORMAT(CONVERT_TZ(valid_until, @@session.time_zone, '+00:00'), \
                 '%Y-%m-%d %H:%i:%s') FROM paysys_order",
            )
            .unwrap()
            .unwrap();
        let sent = json["expired_date"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let secs = |t: &str| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp()
        };
        assert!(
            (secs(&sent) - secs(&expires)).abs() <= 2,
            "expired_date {sent}, the order valid until {expires} UTC"
        );
        assert_eq!(
            json["server_url"],
            format!("{PUBLIC_URL}/callback/liqpay").as_str()
        );
        assert_eq!(
            json["result_url"],
            format!("{PUBLIC_URL}/pay/{order_id}").as_str()
        );
        if site.abills {
            assert_eq!(site.paysys_log_rows(), before + 1);
            let (status, sum, uid, system_id): (u8, String, u64, u8) = site
                .db
                .conn()
                .exec_first(
                    "SELECT status, CAST(sum AS DECIMAL(16,2)), uid, system_id FROM paysys_log WHERE transaction_id = ?",
                    (format!("LIQ:{order_id}"),),
                )
                .unwrap()
                .expect("ABillS's row in progress");
            assert_eq!((status, sum.as_str(), uid, system_id), (1, "100.00", 1, 62));
        }
        // One log line, naming the order.
        let log = std::fs::read_to_string(
            site.config
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("var/log/paysys_check.log"),
        )
        .unwrap();
        let line = log.lines().last().unwrap();
        assert!(
            line.contains("cmd=order")
                && line.contains(&format!("txn={order_id}"))
                && line.contains("system=liqpay"),
            "{line}"
        );
    }
}

#[test]
fn without_public_url_the_urls_come_from_the_request() {
    let site = Site::abills();
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace(&format!("public_url = \"{PUBLIC_URL}\"\n"), ""),
    )
    .unwrap();
    let body = "account=test1&sum=20&system=liqpay";
    let page = run(
        &site.config,
        "POST",
        "/pay",
        "",
        body,
        &[("HTTPS", "on"), ("HTTP_HOST", "pay.isp.example:8443")],
    );
    let json = liqpay_json(&site, &page);
    assert_eq!(
        json["server_url"],
        "https://pay.isp.example:8443/cgi-bin/paysys_check.cgi/callback/liqpay"
    );
    // A Host that is no host name stores nothing and sends nobody anywhere.
    let before = site.orders();
    let bad = run(
        &site.config,
        "POST",
        "/pay",
        "",
        body,
        &[("HTTP_HOST", "evil\"><x")],
    );
    assert_eq!(bad.status, 503, "{bad:?}");
    assert_eq!(site.orders(), before);
}

#[test]
fn wayforpay_gets_a_signed_form() {
    let site = Site::nodeny();
    let page = site.post(
        "/pay",
        &[("account", "59071"), ("sum", "50.5"), ("system", "wfp")],
    );
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page
        .body
        .contains("action=\"https://secure.wayforpay.com/pay\""));
    let order_id: String = site
        .db
        .conn()
        .query_first("SELECT order_id FROM paysys_order")
        .unwrap()
        .unwrap();
    assert_eq!(
        page.hidden("orderReference").as_deref(),
        Some(order_id.as_str())
    );
    assert_eq!(page.hidden("amount").as_deref(), Some("50.50"));
    assert_eq!(
        page.hidden("serviceUrl").unwrap(),
        format!("{PUBLIC_URL}/callback/wfp")
    );
    assert_eq!(
        page.hidden("returnUrl").unwrap(),
        format!("{PUBLIC_URL}/pay/{order_id}")
    );
    let signature = page.hidden("merchantSignature").unwrap();
    assert_eq!(signature.len(), 32, "hex HMAC-MD5");
    // Payable for the order's validity (24 h), not after.
    assert_eq!(page.hidden("orderLifetime").as_deref(), Some("86400"));
}

#[test]
fn monobank_creates_an_invoice_and_redirects_to_its_page() {
    for site in Site::both() {
        let (account, _) = site.good_account();
        let page = site.post(
            "/pay",
            &[("account", account), ("sum", "75"), ("system", "mono")],
        );
        // Not a 303: after the form's POST, the form page's `form-action 'self'` would make
        // the browser refuse a redirect to Monobank (tests/card_browser.rs goes there).
        assert_eq!(page.status, 200, "{}: {page:?}", site.name());
        assert!(page.header("Location").is_none(), "{page:?}");
        assert_secure(&page);
        assert!(!page.body.contains("<script"), "no script: {}", page.body);
        let order_id: String = site
            .db
            .conn()
            .query_first("SELECT order_id FROM paysys_order")
            .unwrap()
            .unwrap();
        let invoice = site
            .mono
            .invoice(&order_id)
            .expect("invoice/create was called");
        let page_url = site.mono.page_url(&invoice.invoice_id);
        assert_eq!(page.refresh_to().as_deref(), Some(page_url.as_str()));
        assert!(
            page.body.contains(&format!("href=\"{page_url}\"")),
            "a link for a browser that does not go on: {}",
            page.body
        );
        let body = &invoice.json;
        assert_eq!(body["amount"], 7500);
        assert_eq!(body["ccy"], 980);
        assert_eq!(
            body["redirectUrl"],
            format!("{PUBLIC_URL}/pay/{order_id}").as_str()
        );
        assert_eq!(
            body["webHookUrl"],
            format!("{PUBLIC_URL}/callback/mono").as_str()
        );
        // The sweeper asks about the order by its invoiceId.
        let reference: String = site
            .db
            .conn()
            .query_first("SELECT provider_ref FROM paysys_order")
            .unwrap()
            .unwrap();
        assert_eq!(reference, invoice.invoice_id);
    }
}

#[test]
fn monobank_refusing_the_invoice_leaves_a_failed_order_and_a_page_for_people() {
    let site = Site::nodeny();
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace(
            &format!("token = \"{}\"", site.mono.token()),
            "token = \"not-the-token\"",
        ),
    )
    .unwrap();
    let page = site.post(
        "/pay",
        &[("account", "59071"), ("sum", "75"), ("system", "mono")],
    );
    assert_eq!(page.status, 503, "{page:?}");
    assert!(
        page.body.contains("Сервіс тимчасово недоступний"),
        "{}",
        page.body
    );
    let state: String = site
        .db
        .conn()
        .query_first("SELECT state FROM paysys_order")
        .unwrap()
        .unwrap();
    assert_eq!(state, "failed");
}

#[test]
fn the_result_page_shows_waiting_paid_and_failed() {
    for site in Site::both() {
        let (account, _) = site.good_account();
        let order = |sum: &str| {
            site.post(
                "/pay",
                &[("account", account), ("sum", sum), ("system", "liqpay")],
            );
            site.db
                .conn()
                .query_first::<String, _>(
                    "SELECT order_id FROM paysys_order ORDER BY id DESC LIMIT 1",
                )
                .unwrap()
                .unwrap()
        };
        let paid = order("100");
        let waiting = site.get(&format!("/pay/{paid}"), "");
        assert_eq!(waiting.status, 200, "{waiting:?}");
        assert_secure(&waiting);
        assert!(
            waiting.body.contains("data-state=\"waiting\""),
            "{}",
            waiting.body
        );
        assert!(
            waiting.body.contains("http-equiv=\"refresh\""),
            "refreshes while waiting"
        );
        // LiqPay's signed callback through the executable pays it.
        let body = signed_callback(&site, &paid, "success", "102.50");
        let cb = run(&site.config, "POST", "/callback/liqpay", "", &body, &[]);
        assert_eq!(cb.status, 200, "{cb:?}");
        let done = site.get(&format!("/pay/{paid}"), "lang=en");
        assert!(done.body.contains("data-state=\"paid\""), "{}", done.body);
        assert!(done.body.contains("Paid."), "{}", done.body);
        assert!(!done.body.contains("http-equiv=\"refresh\""));
        // WayForPay's returnUrl is a POST: the same page.
        let posted = run(
            &site.config,
            "POST",
            &format!("/pay/{paid}"),
            "",
            "orderReference=x",
            &[],
        );
        assert!(
            posted.body.contains("data-state=\"paid\""),
            "{}",
            posted.body
        );
        let failed = order("20");
        let body = signed_callback(&site, &failed, "failure", "20.50");
        assert_eq!(
            run(&site.config, "POST", "/callback/liqpay", "", &body, &[]).status,
            200
        );
        let page = site.get(&format!("/pay/{failed}"), "");
        assert!(page.body.contains("data-state=\"failed\""), "{}", page.body);
        let unknown = site.get("/pay/aaaaaaaaaaaaaaaaaaaa", "");
        assert_eq!(unknown.status, 404);
    }
}

/// LiqPay's callback for `order_id`, signed with the stand-in's key.
fn signed_callback(site: &Site, order_id: &str, status: &str, amount: &str) -> String {
    let json = format!(
        "{{\"public_key\":\"{}\",\"version\":3,\"action\":\"pay\",\"status\":\"{status}\",\
         \"order_id\":\"{order_id}\",\"payment_id\":1234567,\"amount\":{amount},\"currency\":\"UAH\",\
         \"end_date\":1700000000000}}",
        site.liqpay.public_key()
    );
    let data = base64::engine::general_purpose::STANDARD.encode(json);
    let signature = providers::liqpay::sign(site.liqpay.private_key(), &data);
    serde_urlencoded::to_string([("data", data), ("signature", signature)]).unwrap()
}

#[test]
fn check_config_warns_without_public_url() {
    let site = Site::nodeny();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args(["check-config", &site.config.to_string_lossy()])
            .output()
            .expect("paysys check-config");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(!check().contains("no public_url"), "{}", check());
    let text = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text.replace(&format!("public_url = \"{PUBLIC_URL}\"\n"), ""),
    )
    .unwrap();
    assert!(check().contains("[page] has no public_url"), "{}", check());
}

/// `keys` added to the site's `[page]`.
fn set_page_keys(site: &Site, keys: &str) {
    let text = std::fs::read_to_string(&site.config).unwrap();
    let title = "title = \"<b>Мережа & Co</b>\"\n";
    assert!(text.contains(title), "{text}");
    std::fs::write(
        &site.config,
        text.replace(title, &format!("{title}{keys}\n")),
    )
    .unwrap();
}

/// A POST from the caller at `addr`.
fn post_from(site: &Site, addr: &str, form: &[(&str, &str)]) -> Page {
    let body = serde_urlencoded::to_string(form).unwrap();
    run(
        &site.config,
        "POST",
        "/pay",
        "",
        &body,
        &[("REMOTE_ADDR", addr)],
    )
}

#[test]
fn a_repeated_post_reuses_the_waiting_order() {
    for site in Site::both() {
        let (account, masked) = site.good_account();
        let before = site.paysys_log_rows();
        let form = [("account", account), ("sum", "100"), ("system", "liqpay")];
        let first = site.post("/pay", &form);
        let again = site.post("/pay", &form);
        assert_eq!(again.status, 200, "{}: {again:?}", site.name());
        assert_secure(&again);
        assert!(again.body.contains(masked), "{}", again.body);
        assert_eq!(site.orders(), 1, "{}: one order", site.name());
        let (a, b) = (liqpay_json(&site, &first), liqpay_json(&site, &again));
        assert_eq!(a["order_id"], b["order_id"]);
        assert_eq!(a["amount"], b["amount"]);
        assert_eq!(a["result_url"], b["result_url"]);
        if site.abills {
            assert_eq!(site.paysys_log_rows(), before + 1, "one row in progress");
        }
        // Another sum or another system is another order.
        site.post(
            "/pay",
            &[("account", account), ("sum", "101"), ("system", "liqpay")],
        );
        site.post(
            "/pay",
            &[("account", account), ("sum", "100"), ("system", "wfp")],
        );
        assert_eq!(site.orders(), 3, "{}", site.name());
        // WayForPay's form, made again, is the same form (orderDate included).
        let wfp = [("account", account), ("sum", "100"), ("system", "wfp")];
        let (w1, w2) = (site.post("/pay", &wfp), site.post("/pay", &wfp));
        assert_eq!(site.orders(), 3, "{}", site.name());
        for name in ["orderReference", "orderDate", "merchantSignature"] {
            assert_eq!(w1.hidden(name), w2.hidden(name), "{name}");
        }
        // An order the provider refused, or one paid, or one older than reuse_minutes, is
        // not sent to again.
        site.db
            .conn()
            .query_drop("UPDATE paysys_order SET state = 'failed' WHERE system_name = 'liqpay' AND amount = 100")
            .unwrap();
        let fresh = site.post("/pay", &form);
        assert_eq!(site.orders(), 4, "{}", site.name());
        assert_ne!(liqpay_json(&site, &fresh)["order_id"], a["order_id"]);
        site.db
            .conn()
            .query_drop("UPDATE paysys_order SET created = created - INTERVAL 31 MINUTE")
            .unwrap();
        site.post("/pay", &form);
        assert_eq!(site.orders(), 5, "{}", site.name());
    }
}

#[test]
fn a_repeated_monobank_post_reuses_the_invoice() {
    for site in Site::both() {
        let (account, _) = site.good_account();
        let form = [("account", account), ("sum", "75"), ("system", "mono")];
        let first = site.post("/pay", &form);
        assert_eq!(first.status, 200, "{}: {first:?}", site.name());
        assert!(first.refresh_to().is_some(), "{first:?}");
        let again = site.post("/pay", &form);
        assert_eq!(again.status, 200, "{}: {again:?}", site.name());
        assert_secure(&again);
        assert_eq!(first.refresh_to(), again.refresh_to());
        assert_eq!(site.orders(), 1, "{}", site.name());
        assert_eq!(site.mono.invoices().len(), 1, "one invoice/create");
        let page_url: Option<String> = site
            .db
            .conn()
            .query_first("SELECT page_url FROM paysys_order")
            .unwrap()
            .unwrap();
        assert_eq!(page_url, first.refresh_to());
    }
}

#[test]
fn too_many_orders_from_one_address_are_refused_and_store_nothing() {
    for site in Site::both() {
        set_page_keys(&site, "orders_per_address = 3\norders_per_account = 100");
        let (account, _) = site.good_account();
        let post = |addr: &str, sum: &str| {
            post_from(
                &site,
                addr,
                &[("account", account), ("sum", sum), ("system", "liqpay")],
            )
        };
        for sum in ["11", "12", "13"] {
            assert_eq!(post("203.0.113.5", sum).status, 200);
        }
        let log_rows = site.paysys_log_rows();
        let refused = post("203.0.113.5", "14");
        assert_eq!(refused.status, 429, "{}: {refused:?}", site.name());
        assert_secure(&refused);
        assert!(
            refused.body.contains("Забагато спроб оплати"),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("value=\"14\""),
            "the form keeps the sum"
        );
        assert_eq!(site.orders(), 3, "{}: nothing stored", site.name());
        assert_eq!(site.paysys_log_rows(), log_rows);
        // In English too.
        let body = "account=x&sum=15&system=liqpay";
        let en = run(
            &site.config,
            "POST",
            "/pay",
            "lang=en",
            &body.replace('x', account),
            &[("REMOTE_ADDR", "203.0.113.5")],
        );
        assert_eq!(en.status, 429);
        assert!(en.body.contains("Too many payment attempts"), "{}", en.body);
        // The same order asked for again is still served: nothing new is made.
        let again = post("203.0.113.5", "12");
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(site.orders(), 3);
        // Another address is not limited; one IPv6 network (a /64) counts as one caller.
        assert_eq!(post("203.0.113.6", "14").status, 200);
        for (i, addr) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
            .iter()
            .enumerate()
        {
            assert_eq!(post(addr, &format!("2{i}")).status, 200);
        }
        assert_eq!(post("2001:db8:1:2::99", "30").status, 429);
        assert_eq!(post("2001:db8:1:3::1", "30").status, 200);
        assert_eq!(site.orders(), 8, "{}", site.name());
        // The refusal is logged, naming why.
        let log = std::fs::read_to_string(
            site.config
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("var/log/paysys_check.log"),
        )
        .unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains("too many orders") && l.contains("203.0.113.5")),
            "{log}"
        );
    }
}

#[test]
fn too_many_orders_for_one_account_are_refused_and_store_nothing() {
    for site in Site::both() {
        set_page_keys(&site, "orders_per_account = 2");
        let (account, _) = site.good_account();
        let post = |addr: &str, sum: &str, system: &str| {
            post_from(
                &site,
                addr,
                &[("account", account), ("sum", sum), ("system", system)],
            )
        };
        assert_eq!(post("203.0.113.1", "11", "liqpay").status, 200);
        assert_eq!(post("203.0.113.2", "12", "wfp").status, 200);
        let before = site.mono.invoices().len();
        for (addr, system) in [("203.0.113.3", "liqpay"), ("203.0.113.4", "mono")] {
            let refused = post(addr, "13", system);
            assert_eq!(refused.status, 429, "{}: {refused:?}", site.name());
            assert!(refused.body.contains("Забагато спроб оплати"));
        }
        assert_eq!(site.orders(), 2, "{}", site.name());
        assert_eq!(site.mono.invoices().len(), before, "Monobank is not asked");
        // Orders older than an hour no longer count.
        site.db
            .conn()
            .query_drop("UPDATE paysys_order SET created = created - INTERVAL 61 MINUTE")
            .unwrap();
        assert_eq!(post("203.0.113.3", "13", "liqpay").status, 200);
    }
}

/// One caller cannot learn which accounts exist by trying them: after `misses_per_address`
/// accounts that name nobody in an hour, the page answers 429 before any lookup, also for
/// an account that exists; other callers are not limited.
#[test]
fn a_caller_trying_accounts_that_name_nobody_is_stopped() {
    for site in Site::both() {
        set_page_keys(&site, "misses_per_address = 3");
        let (account, _) = site.good_account();
        let unknown = site.unknown_account();
        let post = |addr: &str, account: &str| {
            post_from(
                &site,
                addr,
                &[("account", account), ("sum", "11"), ("system", "liqpay")],
            )
        };
        for _ in 0..3 {
            let missed = post("203.0.113.5", unknown);
            assert_eq!(missed.status, 200, "{}: {missed:?}", site.name());
        }
        let stopped = post("203.0.113.5", account);
        assert_eq!(stopped.status, 429, "{}: {stopped:?}", site.name());
        assert_secure(&stopped);
        assert_eq!(site.orders(), 0, "{}: nothing stored", site.name());
        // Nothing of the accounts is kept: the caller and the time only.
        let kept: u64 = site
            .db
            .count("SELECT COUNT(*) FROM paysys_page_miss WHERE caller_ip = '203.0.113.5'");
        assert_eq!(kept, 3);
        // Another caller pays as ever; an account that exists is no miss.
        assert_eq!(post("203.0.113.6", account).status, 200);
        assert_eq!(post("203.0.113.6", account).status, 200);
        assert_eq!(
            site.db
                .count("SELECT COUNT(*) FROM paysys_page_miss WHERE caller_ip = '203.0.113.6'"),
            0
        );
        let log = std::fs::read_to_string(
            site.config
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("var/log/paysys_check.log"),
        )
        .unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains("too many unknown accounts") && l.contains("203.0.113.5")),
            "{log}"
        );
    }
}
