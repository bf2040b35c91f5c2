//! A real browser for end-to-end tests of pages a person uses: Debian's `chromium`,
//! headless, driven through WebDriver by Debian's `chromium-driver` (`chromedriver`), each
//! test with a chromedriver of its own on a free 127.0.0.1 port, so tests run in parallel.
//! The WebDriver client is the few lines of HTTP/1.1 + JSON below (std `TcpStream`,
//! `serde_json`).
//!
//! ```ignore
//! let Some(b) = Browser::start(1280, 800).expect("browser") else { return };  // "skipped: …"
//! b.goto(&format!("http://127.0.0.1:{port}/cgi-bin/paysys_check.cgi/pay"));
//! b.type_into("input[name=account]", "59071");
//! b.click("button[type=submit]");
//! b.wait_for_text("paid", Duration::from_secs(10));
//! b.screenshot("card_flow");   // target/screenshots/card_flow-1280x800.png
//! ```
//!
//! `Browser::start_phone(390, 844)` is the same page on a phone (mobile emulation: touch,
//! the page's viewport meta obeyed). Screenshots go to `screenshots/` in cargo's target dir,
//! named `<name>-<width>x<height>.png`, and are kept for a person to look at.
//!
//! The browser reaches loopback only: every host name but `localhost` fails to resolve
//! (`--host-resolver-rules`), no proxy is used, and the background traffic a fresh Chromium
//! starts (component and Safe Browsing updates, sync, metrics, crash reports, field trials,
//! translate, suggestions) is switched off. Its profile, cache and logs live in a temp dir
//! of its own, deleted on drop unless the test is panicking or `PAYSYS_KEEP_WEB=1` is set
//! (then the path and the tail of chromedriver's log are printed).
//!
//! Elements are found by CSS selector. The finders panic, with the URL and the page source
//! in the message, when nothing matches: in a test that is the report one wants.
//!
//! Environment:
//! - `PAYSYS_REQUIRE_WEB=1`: a missing chromium or chromedriver panics instead of skipping.
//! - `PAYSYS_CHROMIUM_BIN`, `PAYSYS_CHROMEDRIVER_BIN`: binaries to use.
//! - `PAYSYS_KEEP_WEB=1`: keep the browser's temp dir.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// How long `start` waits for chromedriver to answer, and then for the browser to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// One WebDriver command, from connect to the last byte of the answer. A navigation waits
/// for the page's load event, bounded by `PAGE_LOAD_TIMEOUT` inside the browser.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(45);
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Drop` waits for the session to end, then for chromedriver to exit on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// `wait_for*` polls this often.
const POLL: Duration = Duration::from_millis(50);
/// How much of a page's source a panic message quotes.
const SOURCE_IN_PANIC: usize = 6000;
/// The key under which WebDriver names an element (W3C).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What `Browser::start_with` sets up.
#[derive(Clone, Debug)]
pub struct Options {
    /// The viewport (the page's `window.innerWidth` × `innerHeight`) in CSS pixels, and the
    /// size of a screenshot.
    pub width: u32,
    pub height: u32,
    /// A phone: Chromium's mobile emulation (touch, a phone's user agent, the page's
    /// `<meta name="viewport">` obeyed, a page without one laid out 980 px wide and shrunk),
    /// at a device pixel ratio of 1 so that a screenshot is `width` × `height`.
    pub mobile: bool,
    /// `Accept-Language` (and `navigator.language`), e.g. "uk" or "en-US,en".
    pub lang: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            width: 1280,
            height: 800,
            mobile: false,
            lang: "en-US,en".into(),
        }
    }
}

/// A headless Chromium in a WebDriver session; the session ends and chromedriver (with the
/// browser, its process group) is killed on drop.
pub struct Browser {
    port: u16,
    session: String,
    driver: Option<Child>,
    dir: PathBuf,
    opts: Options,
}

/// An element found on the current page. It belongs to that page: after a navigation, find
/// it again.
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
    css: String,
}

/// What `wait_for` waits for.
#[derive(Clone, Copy, Debug)]
pub enum Until<'a> {
    /// An element matching this CSS selector, displayed.
    Css(&'a str),
    /// This text in the page's visible text (`document.body.innerText`).
    Text(&'a str),
    /// A URL containing this.
    Url(&'a str),
}

impl Browser {
    /// A desktop window whose viewport is `width` × `height`.
    ///
    /// `Ok(None)`, after printing "skipped: …": chromium or chromedriver is not installed
    /// (with `PAYSYS_REQUIRE_WEB=1` that panics instead). `Err`: they are installed but did
    /// not start.
    pub fn start(width: u32, height: u32) -> Result<Option<Browser>, String> {
        Browser::start_with(&Options {
            width,
            height,
            ..Options::default()
        })
    }

    /// A phone's screen of `width` × `height` (see `Options::mobile`), e.g. 390 × 844.
    pub fn start_phone(width: u32, height: u32) -> Result<Option<Browser>, String> {
        Browser::start_with(&Options {
            width,
            height,
            mobile: true,
            ..Options::default()
        })
    }

    pub fn start_with(opts: &Options) -> Result<Option<Browser>, String> {
        let Some((chromium, chromedriver)) = find_binaries() else {
            return Ok(None);
        };
        let dir = std::env::temp_dir().join(super::unique("paysys_browser"));
        for sub in ["profile", "home", "cache", "config"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("creating {}: {e}", dir.join(sub).display()))?;
        }
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port()?;
            let mut driver = spawn_driver(&chromedriver, port, &dir)?;
            match wait_until_ready(&mut driver, port, &dir) {
                Ok(()) => {}
                Err(Failure::Exited(e)) => {
                    // Most likely another process took the port between the probe and
                    // chromedriver's bind; a new port will do.
                    stop_group(&mut driver);
                    last_err = e;
                    continue;
                }
                Err(Failure::Other(e)) => {
                    stop_group(&mut driver);
                    let _ = fs::remove_dir_all(&dir);
                    return Err(e);
                }
            }
            let mut browser = Browser {
                port,
                session: String::new(),
                driver: Some(driver),
                dir: dir.clone(),
                opts: opts.clone(),
            };
            browser.session = browser.new_session(&chromium)?;
            browser.fit_viewport()?;
            return Ok(Some(browser));
        }
        let _ = fs::remove_dir_all(&dir);
        Err(format!("chromedriver did not start: {last_err}"))
    }

    /// The viewport size given at start.
    pub fn size(&self) -> (u32, u32) {
        (self.opts.width, self.opts.height)
    }

    /// Opens `url` and returns when its load event has fired (or panics after
    /// `PAGE_LOAD_TIMEOUT`).
    pub fn goto(&self, url: &str) {
        if let Err(e) = self.try_goto(url) {
            self.fail(&e);
        }
    }

    /// `goto`, with a page that did not load (a name that does not resolve, a refused
    /// connection) as `Err` with the browser's reason, e.g. "net::ERR_NAME_NOT_RESOLVED".
    pub fn try_goto(&self, url: &str) -> Result<(), String> {
        self.command("POST", "url", json!({ "url": url }))
            .map(|_| ())
            .map_err(|e| format!("goto {url}: {e}"))
    }

    pub fn current_url(&self) -> String {
        let v = self.must("GET", "url", Value::Null, "current_url");
        v.as_str().unwrap_or_default().to_string()
    }

    pub fn title(&self) -> String {
        let v = self.must("GET", "title", Value::Null, "title");
        v.as_str().unwrap_or_default().to_string()
    }

    /// The current DOM serialized as HTML (what the page is now, scripts' changes included).
    pub fn page_source(&self) -> String {
        let v = self.must("GET", "source", Value::Null, "page_source");
        v.as_str().unwrap_or_default().to_string()
    }

    /// The page's visible text.
    pub fn body_text(&self) -> String {
        self.script("return document.body ? document.body.innerText : '';", &[])
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`; panics with the page source when there is none.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| self.fail(&format!("no element matches {css:?}")))
    }

    /// The first element matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        match self.command(
            "POST",
            "element",
            json!({ "using": "css selector", "value": css }),
        ) {
            Ok(v) => Some(element(&v, css)),
            Err(WebDriverError::Driver { error, .. }) if error == "no such element" => None,
            Err(e) => self.fail(&format!("find {css:?}: {e}")),
        }
    }

    /// Every element matching `css`.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.must(
            "POST",
            "elements",
            json!({ "using": "css selector", "value": css }),
            &format!("find_all {css:?}"),
        );
        v.as_array()
            .map(|a| a.iter().map(|e| element(e, css)).collect())
            .unwrap_or_default()
    }

    /// Clears the field matching `css` and types `text` into it, key by key.
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.must(
            "POST",
            &format!("element/{}/clear", el.id),
            json!({}),
            &format!("clear {css:?}"),
        );
        self.must(
            "POST",
            &format!("element/{}/value", el.id),
            json!({ "text": text }),
            &format!("type into {css:?}"),
        );
    }

    /// Clicks the element matching `css` (scrolled into view first, as a person would). A
    /// click that submits a form returns before the next page has loaded: `wait_for` what
    /// that page shows.
    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.click_element(&el);
    }

    pub fn click_element(&self, el: &Element) {
        self.must(
            "POST",
            &format!("element/{}/click", el.id),
            json!({}),
            &format!("click {:?}", el.css),
        );
    }

    /// The visible text of the element matching `css`.
    pub fn text_of(&self, css: &str) -> String {
        let el = self.find(css);
        self.element_text(&el)
    }

    pub fn element_text(&self, el: &Element) -> String {
        let v = self.must(
            "GET",
            &format!("element/{}/text", el.id),
            Value::Null,
            &format!("text of {:?}", el.css),
        );
        v.as_str().unwrap_or_default().to_string()
    }

    /// The current value of a property of the element matching `css` (`value` of an input,
    /// `checked`, …), as JSON.
    pub fn property(&self, css: &str, name: &str) -> Value {
        let el = self.find(css);
        self.must(
            "GET",
            &format!("element/{}/property/{name}", el.id),
            Value::Null,
            &format!("property {name} of {css:?}"),
        )
    }

    /// An attribute of the element matching `css` as written in the page, if present.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let el = self.find(css);
        let v = self.must(
            "GET",
            &format!("element/{}/attribute/{name}", el.id),
            Value::Null,
            &format!("attribute {name} of {css:?}"),
        );
        v.as_str().map(str::to_string)
    }

    /// Runs `body` as a function in the page (`arguments[0]`… are `args`) and returns what
    /// it returns.
    pub fn script(&self, body: &str, args: &[Value]) -> Value {
        self.must(
            "POST",
            "execute/sync",
            json!({ "script": body, "args": args }),
            "script",
        )
    }

    /// Polls every 50 ms until `until` holds, for at most `timeout`; panics with the page
    /// source when it does not. Navigations in between (a form submitted by a script, a
    /// redirect) are waited through.
    pub fn wait_for(&self, until: Until<'_>, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.holds(until) {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("waited {timeout:?} for {until:?}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `wait_for(Until::Css(css))`, and the element.
    pub fn wait_for_css(&self, css: &str, timeout: Duration) -> Element {
        self.wait_for(Until::Css(css), timeout);
        self.find(css)
    }

    pub fn wait_for_text(&self, text: &str, timeout: Duration) {
        self.wait_for(Until::Text(text), timeout)
    }

    pub fn wait_for_url(&self, part: &str, timeout: Duration) {
        self.wait_for(Until::Url(part), timeout)
    }

    /// Whether `until` holds now. Errors count as "not yet": while a page is being replaced,
    /// commands may fail or find the old page's elements gone.
    fn holds(&self, until: Until<'_>) -> bool {
        match until {
            Until::Css(css) => {
                let found = self.command(
                    "POST",
                    "element",
                    json!({ "using": "css selector", "value": css }),
                );
                let Ok(v) = found else { return false };
                let id = element(&v, css).id;
                self.command("GET", &format!("element/{id}/displayed"), Value::Null)
                    .is_ok_and(|d| d.as_bool() == Some(true))
            }
            Until::Text(text) => self
                .command(
                    "POST",
                    "execute/sync",
                    json!({
                        "script": "return document.body ? document.body.innerText : '';",
                        "args": [],
                    }),
                )
                .is_ok_and(|v| v.as_str().is_some_and(|s| s.contains(text))),
            Until::Url(part) => self
                .command("GET", "url", Value::Null)
                .is_ok_and(|v| v.as_str().is_some_and(|s| s.contains(part))),
        }
    }

    /// Saves what the viewport shows as `target/screenshots/<name>-<width>x<height>.png` and
    /// returns the path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshots_dir().join(format!(
            "{name}-{}x{}.png",
            self.opts.width, self.opts.height
        ));
        self.save_screenshot(&path);
        path
    }

    /// Saves what the viewport shows as a PNG at `path` (parent directories created).
    pub fn save_screenshot(&self, path: &Path) {
        let v = self.must("GET", "screenshot", Value::Null, "screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot: not base64: {e}"));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "screenshot: not a PNG"
        );
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        fs::write(path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Panics with `what`, the URL and the page's source.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        let url = self
            .command("GET", "url", Value::Null)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "(unknown)".into());
        let source = self
            .command("GET", "source", Value::Null)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "(unavailable)".into());
        let shown = if source.len() > SOURCE_IN_PANIC {
            let mut end = SOURCE_IN_PANIC;
            while !source.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\n… ({} bytes in all)", &source[..end], source.len())
        } else {
            source
        };
        panic!("browser: {what}\n--- at {url} ---\n{shown}\n---");
    }

    /// A session command that must succeed; panics with the page source otherwise.
    #[track_caller]
    fn must(&self, method: &str, path: &str, body: Value, what: &str) -> Value {
        match self.command(method, path, body) {
            Ok(v) => v,
            Err(e) => self.fail(&format!("{what}: {e}")),
        }
    }

    /// `method /session/<id>/<path>` with `body`; the answer's `value`.
    fn command(&self, method: &str, path: &str, body: Value) -> Result<Value, WebDriverError> {
        request(
            self.port,
            method,
            &format!("/session/{}/{path}", self.session),
            &body,
            COMMAND_TIMEOUT,
        )
    }

    fn new_session(&self, chromium: &Path) -> Result<String, String> {
        let o = &self.opts;
        let profile = self.dir.join("profile");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            // Loopback only: no name resolves but localhost, no proxy.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            "--no-proxy-server",
            // None of the traffic a fresh Chromium starts on its own.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--disable-client-side-phishing-detection",
            "--disable-domain-reliability",
            "--disable-field-trial-config",
            "--disable-features=Translate,OptimizationHints,MediaRouter,\
             AutofillServerCommunication,CertificateTransparencyComponentUpdater,\
             InterestFeedContentSuggestions,DialMediaRouteProvider",
            "--metrics-recording-only",
            "--no-first-run",
            "--no-default-browser-check",
            "--no-pings",
            "--safebrowsing-disable-auto-update",
            "--password-store=basic",
            // The same pixels on every run.
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--mute-audio",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", o.width, o.height));
        args.push(format!(
            "--lang={}",
            o.lang.split(',').next().unwrap_or("en-US")
        ));
        let mut chrome = json!({
            "binary": chromium.to_string_lossy(),
            "args": args,
            "prefs": { "intl.accept_languages": o.lang },
        });
        if o.mobile {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": o.width,
                    "height": o.height,
                    "pixelRatio": 1.0,
                    "mobile": true,
                    "touch": true,
                },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                              (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            });
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {
                        "implicit": 0,
                        "pageLoad": PAGE_LOAD_TIMEOUT.as_millis() as u64,
                        "script": SCRIPT_TIMEOUT.as_millis() as u64,
                    },
                    "goog:chromeOptions": chrome,
                }
            }
        });
        let v = request(self.port, "POST", "/session", &caps, START_TIMEOUT).map_err(|e| {
            format!(
                "starting {} through chromedriver: {e}\n--- tail of chromedriver's log ---\n{}",
                chromium.display(),
                tail(&self.dir.join("chromedriver.log"), 30)
            )
        })?;
        v["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("chromedriver's new session has no sessionId: {v}"))
    }

    /// Makes the viewport exactly `width` × `height`: `--window-size` is the window's outer
    /// size, which in headless mode may or may not equal the viewport.
    fn fit_viewport(&self) -> Result<(), String> {
        if self.opts.mobile {
            return Ok(()); // mobile emulation sets the viewport itself
        }
        let (w, h) = (self.opts.width as i64, self.opts.height as i64);
        for _ in 0..3 {
            let inner = self
                .command(
                    "POST",
                    "execute/sync",
                    json!({ "script": "return [window.innerWidth, window.innerHeight];", "args": [] }),
                )
                .map_err(|e| format!("reading the viewport size: {e}"))?;
            let (iw, ih) = (
                inner[0].as_i64().unwrap_or(0),
                inner[1].as_i64().unwrap_or(0),
            );
            if (iw, ih) == (w, h) {
                return Ok(());
            }
            let rect = self
                .command("GET", "window/rect", Value::Null)
                .map_err(|e| format!("window rect: {e}"))?;
            let (ow, oh) = (
                rect["width"].as_i64().unwrap_or(w),
                rect["height"].as_i64().unwrap_or(h),
            );
            self.command(
                "POST",
                "window/rect",
                json!({ "width": ow + (w - iw), "height": oh + (h - ih) }),
            )
            .map_err(|e| format!("setting the window size: {e}"))?;
        }
        Err(format!("could not make the viewport {w}x{h}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                &Value::Null,
                STOP_TIMEOUT,
            );
        }
        if let Some(mut driver) = self.driver.take() {
            stop_group(&mut driver);
        }
        let keep = std::env::var("PAYSYS_KEEP_WEB").is_ok_and(|v| v == "1");
        if std::thread::panicking() || keep {
            eprintln!(
                "browser: state kept in {}\n--- tail of chromedriver.log ---\n{}",
                self.dir.display(),
                tail(&self.dir.join("chromedriver.log"), 30)
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where `Browser::screenshot` saves: `screenshots/` in cargo's target dir (the one holding
/// the running test executable), else in the repository's `target/`.
pub fn screenshots_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|d| d.join("CACHEDIR.TAG").is_file())
            .map(Path::to_path_buf)
    });
    from_exe
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| super::repo().join("target"))
        .join("screenshots")
}

/// Whether `path` holds a PNG, and its width and height (from its IHDR chunk).
pub fn png_size(path: &Path) -> Option<(u32, u32)> {
    let bytes = fs::read(path).ok()?;
    if bytes.len() < 24 || !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

fn element(v: &Value, css: &str) -> Element {
    Element {
        id: v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {v}"))
            .to_string(),
        css: css.to_string(),
    }
}

/// chromium and chromedriver, or `None` after "skipped: …" (a panic with
/// `PAYSYS_REQUIRE_WEB=1`).
fn find_binaries() -> Option<(PathBuf, PathBuf)> {
    // Debian's /usr/bin/chromium is a shell script that adds the flags in /etc/chromium.d
    // (Google API keys, remote extensions) to the real binary: we run the binary.
    let chromium = binary(
        "PAYSYS_CHROMIUM_BIN",
        &[
            "/usr/lib/chromium/chromium",
            "chromium",
            "chromium-browser",
            "google-chrome",
        ],
    );
    let driver = binary(
        "PAYSYS_CHROMEDRIVER_BIN",
        &["chromedriver", "/usr/lib/chromium/chromedriver"],
    );
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, _) => {
            let (what, var) = if c.is_none() {
                ("chromium", "PAYSYS_CHROMIUM_BIN")
            } else {
                ("chromedriver", "PAYSYS_CHROMEDRIVER_BIN")
            };
            let named = std::env::var(var)
                .map(|p| format!(" at {var}={p}"))
                .unwrap_or_default();
            let msg = format!(
                "{what} not found{named} (Debian: apt-get install chromium chromium-driver)"
            );
            if std::env::var("PAYSYS_REQUIRE_WEB").is_ok_and(|v| v == "1") {
                panic!("{msg} and PAYSYS_REQUIRE_WEB=1");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// `$var` if set (`None` if that is not an executable file), else the first of `names` that is an executable file (a bare name looked
/// up in `PATH`).
fn binary(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        if name.starts_with('/') {
            return is_executable(Path::new(name)).then(|| PathBuf::from(name));
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// chromedriver on `port`, in a process group of its own (the browser it starts joins it),
/// its profile-less state and log under `dir`.
fn spawn_driver(chromedriver: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    let log = dir.join("chromedriver.log");
    Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .arg(format!("--log-path={}", log.display()))
        // Its own HOME and XDG dirs: nothing read from or written to the user's.
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", chromedriver.display()))
}

enum Failure {
    /// chromedriver exited (on a port taken, it does).
    Exited(String),
    Other(String),
}

/// Waits for chromedriver's `/status` to say ready, at most `START_TIMEOUT`.
fn wait_until_ready(driver: &mut Child, port: u16, dir: &Path) -> Result<(), Failure> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(Failure::Exited(format!(
                "chromedriver exited ({status}) on port {port}:\n{}",
                tail(&dir.join("chromedriver.log"), 20)
            )));
        }
        let answer = request(port, "GET", "/status", &Value::Null, Duration::from_secs(2));
        if answer.is_ok_and(|v| v["ready"].as_bool() == Some(true)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::Other(format!(
                "chromedriver did not answer ready on port {port} within {START_TIMEOUT:?}:\n{}",
                tail(&dir.join("chromedriver.log"), 20)
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// SIGTERM to the group, SIGKILL if it is still there after `STOP_TIMEOUT`; reaped.
fn stop_group(child: &mut Child) {
    let pgid = child.id() as i32;
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(POLL);
    }
    // The browser's processes may outlive chromedriver: the whole group goes.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// A port nobody listens on now, and that no other browser of this process was given (so
/// that two tests never talk to one chromedriver).
fn free_port() -> Result<u16, String> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..50 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("binding 127.0.0.1:0 to find a free port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr of probe socket: {e}"))?
            .port();
        if given.insert(port) {
            return Ok(port);
        }
    }
    Err("no free port found on 127.0.0.1".into())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[derive(Debug)]
enum WebDriverError {
    /// No answer, or not HTTP, or not JSON.
    Transport(String),
    /// WebDriver's error answer: `error` is its code ("no such element", "timeout", …).
    Driver {
        status: u16,
        error: String,
        message: String,
    },
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebDriverError::Transport(e) => write!(f, "{e}"),
            WebDriverError::Driver {
                status,
                error,
                message,
            } => {
                // chromedriver's messages end in a long native stack trace.
                let message = message.split("\nStacktrace:").next().unwrap_or(message);
                write!(f, "{error} (HTTP {status}): {message}")
            }
        }
    }
}

/// One WebDriver exchange on a connection of its own (`Connection: close`): the answer's
/// `value`, or its error.
fn request(
    port: u16,
    method: &str,
    path: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Value, WebDriverError> {
    let transport = |e: String| WebDriverError::Transport(format!("{method} {path}: {e}"));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))
        .map_err(|e| transport(format!("connect: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| transport(e.to_string()))?;
    let payload = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Accept: application/json\r\n"
    );
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    stream
        .write_all(req.as_bytes())
        .map_err(|e| transport(format!("send: {e}")))?;

    // The answer ends at Content-Length (chromedriver says `Connection: close` but keeps
    // the connection open), at the last chunk, or at EOF; never later than `timeout`.
    let deadline = Instant::now() + timeout;
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut header: Option<(usize, String)> = None;
    loop {
        if header.is_none() {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                header = Some((i + 4, String::from_utf8_lossy(&raw[..i]).into_owned()));
            }
        }
        if let Some((start, head)) = &header {
            let body = &raw[*start..];
            match header_value(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
                Some(n) if body.len() >= n => break,
                Some(_) => {}
                None if is_chunked(head) && dechunk(body).is_some() => break,
                None => {}
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(transport(format!("no complete answer within {timeout:?}")));
        }
        let _ = stream.set_read_timeout(Some(deadline - now));
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(transport(format!("receive: {e}"))),
        }
    }
    let Some((start, head)) = header else {
        return Err(transport("no HTTP header in the answer".into()));
    };
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| transport(format!("bad status line: {head:?}")))?;
    let content = match header_value(&head, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => raw
            .get(start..start + n)
            .ok_or_else(|| transport("answer shorter than its Content-Length".into()))?
            .to_vec(),
        None if is_chunked(&head) => {
            dechunk(&raw[start..]).ok_or_else(|| transport("bad chunked body".into()))?
        }
        None => raw[start..].to_vec(),
    };
    let v: Value = serde_json::from_slice(&content).map_err(|e| {
        transport(format!(
            "HTTP {status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&content)
        ))
    })?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if status >= 400 || value.get("error").is_some_and(Value::is_string) {
        return Err(WebDriverError::Driver {
            status,
            error: value["error"].as_str().unwrap_or("unknown error").into(),
            message: value["message"].as_str().unwrap_or_default().into(),
        });
    }
    Ok(value)
}

/// The value of header `name` (lower case) in `head`.
fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn is_chunked(head: &str) -> bool {
    header_value(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
