//! Tests of the browser harness (tests/common/browser.rs) on pages served by a small HTTP
//! server inside the test, shaped like a card payment: a form (account, sum), a page that
//! shows what was posted with a button to pay, a page that sends the browser on to the
//! checkout by a form its script submits (as the LiqPay and WayForPay checkouts are reached),
//! a stand-in checkout that redirects back, and a result page. Every test starts its own
//! headless Chromium; without chromium and chromedriver the tests print "skipped: …" (a
//! failure with PAYSYS_REQUIRE_WEB=1).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::browser::{png_size, Browser, Until};

const WAIT: Duration = Duration::from_secs(10);
/// The nonce the pages' Content-Security-Policy admits their one inline script and style
/// with (the real page is served under a policy like this one).
const NONCE: &str = "dGVzdG5vbmNl";

/// One request the site answered.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    body: String,
}

/// The test's web site on a free 127.0.0.1 port, one thread per connection; stopped on drop.
struct Site {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let seen = seen.clone();
                    thread::spawn(move || serve(conn, &seen));
                }
            })
        };
        Site {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (headers, then Content-Length bytes of body), answers, closes. A
/// connection the browser opens and never uses (a preconnect) times out.
fn serve(mut conn: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if raw.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let mut parts = head.split(' ');
    let request = Seen {
        method: parts.next().unwrap_or_default().to_string(),
        target: parts.next().unwrap_or_default().to_string(),
        body: String::from_utf8_lossy(&body[..length.min(body.len())]).into_owned(),
    };
    let answer = route(&request);
    seen.lock().unwrap().push(request);
    let _ = conn.write_all(answer.as_bytes());
}

fn form(body: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(body).unwrap_or_default()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page in the style the real one will have: one column, readable on a phone.
fn page(title: &str, main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style nonce="{NONCE}">
body {{ font: 18px/1.4 sans-serif; margin: 0 auto; max-width: 28rem; padding: 1rem; }}
h1 {{ font-size: 1.4rem; }}
label {{ display: block; margin: 1rem 0 .3rem; }}
input {{ width: 100%; box-sizing: border-box; font-size: 1.1rem; padding: .5rem; }}
button {{ margin-top: 1.2rem; width: 100%; font-size: 1.1rem; padding: .7rem;
          background: #2e7d32; color: #fff; border: 0; border-radius: .3rem; }}
.paid {{ color: #2e7d32; font-weight: bold; }}
</style></head>
<body><h1>Example ISP</h1><p lang="uk">Поповнення рахунку</p>
{main}
</body></html>
"#
    )
}

fn html(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Security-Policy: default-src 'none'; script-src 'nonce-{NONCE}'; \
         style-src 'nonce-{NONCE}'; form-action 'self'; frame-ancestors 'none'\r\n\
         X-Frame-Options: DENY\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn route(r: &Seen) -> String {
    let fields = form(&r.body);
    match (r.method.as_str(), r.target.split('?').next().unwrap_or("")) {
        // The form.
        ("GET", "/pay") => html(
            "200 OK",
            &page(
                "Top up",
                r#"<form method="post" action="/pay">
<label for="account">Account</label><input id="account" name="account" inputmode="numeric" required>
<label for="sum">Sum, UAH</label><input id="sum" name="sum" inputmode="decimal" required>
<button type="submit" id="next">Next</button>
</form>"#,
            ),
        ),
        // What was posted, and a button that goes on to the checkout.
        ("POST", "/pay") => html(
            "200 OK",
            &page(
                "Confirm",
                &format!(
                    r#"<p>Account <b id="account">{}</b>, sum <b id="sum">{}</b> UAH.</p>
<form method="post" action="/go"><input type="hidden" name="order" value="7">
<button type="submit" id="liqpay">Pay with LiqPay</button></form>"#,
                    escape(field(&fields, "account")),
                    escape(field(&fields, "sum"))
                ),
            ),
        ),
        // A form the page's script submits at once, as a checkout redirect does.
        ("POST", "/go") => html(
            "200 OK",
            &page(
                "Redirecting",
                &format!(
                    r#"<form id="checkout" method="post" action="/checkout">
<input type="hidden" name="data" value="{}">
<input type="hidden" name="signature" value="c2lnbmVk">
<noscript><button type="submit">Continue to payment</button></noscript></form>
<script nonce="{NONCE}">document.getElementById('checkout').submit();</script>"#,
                    escape(&base64::engine::general_purpose::STANDARD.encode(
                        serde_json::json!({ "order_id": field(&fields, "order") }).to_string()
                    ))
                ),
            ),
        ),
        // The stand-in checkout: takes the signed form, sends the browser back.
        ("POST", "/checkout") => {
            "HTTP/1.1 303 See Other\r\nLocation: /result?order=7\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
                .to_string()
        }
        ("GET", "/result") => html(
            "200 OK",
            &page(
                "Order 7",
                r#"<p>Order 7: <span class="paid" id="state">paid</span></p>"#,
            ),
        ),
        _ => html("404 Not Found", &page("Not found", "<p>Not found</p>")),
    }
}

/// Open, type, click, read the posted values, pay, follow the script's submission and the
/// checkout's redirect, see "paid", save a screenshot: the flow a card payment takes.
fn checkout_flow(b: &Browser, site: &Site, shot: &str) {
    let (width, height) = b.size();
    let started = Instant::now();
    b.goto(&site.url("/pay"));
    assert_eq!(b.title(), "Top up");
    let viewport = b.script("return [window.innerWidth, window.innerHeight];", &[]);
    assert_eq!(viewport, serde_json::json!([width, height]), "viewport");

    b.type_into("#account", "59071");
    b.type_into("input[name=sum]", "10.50");
    assert_eq!(b.property("#sum", "value"), "10.50");
    let form_shot = b.screenshot(&format!("{shot}_form"));
    assert_eq!(png_size(&form_shot), Some((width, height)));
    b.click("#next");
    b.wait_for(Until::Css("#liqpay"), WAIT);
    assert_eq!(b.text_of("#account"), "59071");
    assert_eq!(b.text_of("#sum"), "10.50");
    assert!(b.page_source().contains("Pay with LiqPay"));

    b.click("#liqpay");
    b.wait_for_text("paid", WAIT);
    b.wait_for_url("/result?order=7", WAIT);
    assert_eq!(b.text_of("#state"), "paid");
    assert_eq!(b.current_url(), site.url("/result?order=7"));

    let seen: Vec<String> = site
        .seen()
        .iter()
        .filter(|s| s.target != "/favicon.ico")
        .map(|s| format!("{} {}", s.method, s.target))
        .collect();
    assert_eq!(
        seen,
        [
            "GET /pay",
            "POST /pay",
            "POST /go",
            "POST /checkout",
            "GET /result?order=7"
        ],
        "the requests the browser made"
    );
    let posted = site.seen();
    let pay = posted
        .iter()
        .find(|s| s.target == "/pay" && s.method == "POST");
    assert_eq!(pay.unwrap().body, "account=59071&sum=10.50");
    let checkout = posted.iter().find(|s| s.target == "/checkout").unwrap();
    assert_eq!(
        form(&checkout.body),
        [
            ("data".to_string(), "eyJvcmRlcl9pZCI6IjcifQ==".to_string()),
            ("signature".to_string(), "c2lnbmVk".to_string())
        ],
        "the form the script submitted"
    );

    let path = b.screenshot(shot);
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("{shot}-{width}x{height}.png")
    );
    assert!(path.ends_with(Path::new("screenshots").join(path.file_name().unwrap())));
    assert_eq!(png_size(&path), Some((width, height)), "{}", path.display());
    eprintln!(
        "flow at {width}x{height}: {:?}, screenshot {}",
        started.elapsed(),
        path.display()
    );
}

#[test]
fn checkout_flow_desktop() {
    let Some(b) = Browser::start(1280, 800).expect("browser") else {
        return;
    };
    let site = Site::start();
    checkout_flow(&b, &site, "browser_checkout");
}

#[test]
fn checkout_flow_phone() {
    let Some(b) = Browser::start_phone(390, 844).expect("browser") else {
        return;
    };
    let site = Site::start();
    checkout_flow(&b, &site, "browser_checkout");
    // A phone's browser: touch, and the page laid out at the device's width.
    assert_eq!(
        b.script("return navigator.maxTouchPoints > 0;", &[]),
        serde_json::json!(true)
    );
    assert_eq!(
        b.script("return document.documentElement.clientWidth;", &[]),
        serde_json::json!(390)
    );
}

/// A missing element and a wait that never ends both panic, in bounded time, with the URL
/// and the page's source in the message.
#[test]
fn failures_show_the_page() {
    let Some(b) = Browser::start(800, 600).expect("browser") else {
        return;
    };
    let site = Site::start();
    b.goto(&site.url("/pay"));
    assert!(b.try_find("#nowhere").is_none());

    let message = |r: std::thread::Result<()>| -> String {
        let e = r.expect_err("should have panicked");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let m = message(catch_unwind(AssertUnwindSafe(|| {
        b.find("#nowhere");
    })));
    assert!(m.contains("no element matches \"#nowhere\""), "{m}");
    assert!(m.contains(&site.url("/pay")), "{m}");
    assert!(m.contains(r#"<input id="account""#), "{m}");

    let started = Instant::now();
    let m = message(catch_unwind(AssertUnwindSafe(|| {
        b.wait_for(Until::Text("never shown"), Duration::from_millis(500));
    })));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(m.contains("waited 500ms for Text(\"never shown\")"), "{m}");
    assert!(m.contains("<title>Top up</title>"), "{m}");
}

/// Names other than loopback do not resolve: the browser cannot reach the internet (a
/// checkout's real address included).
#[test]
fn only_loopback_resolves() {
    let Some(b) = Browser::start(800, 600).expect("browser") else {
        return;
    };
    for url in [
        "http://www.liqpay.ua/api/3/checkout",
        "https://example.com/",
        "http://10.0.0.1.nip.io/",
    ] {
        let e = b.try_goto(url).expect_err(url);
        assert!(e.contains("ERR_NAME_NOT_RESOLVED"), "{url}: {e}");
    }
    let site = Site::start();
    b.goto(&format!("http://localhost:{}/result", site.port));
    assert_eq!(b.text_of("#state"), "paid");
}
