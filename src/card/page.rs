//! The subscriber's page, served by `paysys_check.cgi` itself:
//!
//! * `GET  paysys_check.cgi/pay` (under an ABillS domain `paysys_check.cgi/<domain id>/pay`):
//!   a form — the account, the sum, one button per card system of the config;
//! * `POST` the same address (`account`, `sum`, `system`): the account is looked up (unknown:
//!   the page says so, nothing is stored), the sum checked against the system's limits
//!   (its `commission_percent` added on top), the order stored (ours, and on ABillS the
//!   `paysys_log` row "in progress") in one transaction, and the browser sent on — to LiqPay
//!   and WayForPay by a signed form that submits itself (a button for browsers without
//!   JavaScript), to Monobank by invoice/create and a page that goes on to its `pageUrl`
//!   by itself (a `<meta>` refresh: a `303` after the form's POST would be refused by the
//!   browser under the form page's `form-action 'self'`);
//! * `paysys_check.cgi/pay/<order id>` (any method: WayForPay's `returnUrl` is a POST): where
//!   the provider sends the browser back; shows the order's state, refreshing itself while
//!   it waits.
//!
//! No money moves here: what the browser sends is never trusted for money, only the
//! provider's verified callback (or the sweeper's status request) pays an order.
//!
//! The page is `page.html` (the layout) and `texts.toml` (the words, Ukrainian, Russian and
//! English), both under `etc/page/`, built in and replaceable by the admin's copies in
//! `[page] template_dir`. Every value placed in the page is escaped; the page loads nothing
//! from anywhere, sets no cookie, may not be framed, and its Content-Security-Policy allows
//! no script but the one line that submits a provider's form (by its hash).

use std::fmt::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Local};
use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::billing::{self, Billing};
use crate::card::order::{self, CardOrder, NewOrder};
use crate::card::{liqpay, monobank, wayforpay, Secret};
use crate::card::{merchant, probe};
use crate::cgi::{Form, Request, Response};
use crate::config::{Config, Credentials, PageConfig, ProtocolKind, System, PAGE_LANGUAGES};
use crate::db::{self, Connections};
use crate::domain::{Account, AccountKey, Amount, Domain};
use crate::outcome::{mask_name, CardState, Echo, Fault, Outcome, Refusal};
use crate::protocol::Reply;

/// The built-in layout and texts (`etc/page/`).
const BUILTIN_TEMPLATE: &str = include_str!("../../etc/page/page.html");
const BUILTIN_TEXTS: &str = include_str!("../../etc/page/texts.toml");

/// The only script the page ever runs: it submits the provider's form. Allowed by its hash,
/// so no other script (injected or not) can run.
const SUBMIT_SCRIPT: &str = "document.getElementById('pay').submit();";

/// Seconds between the result page's reloads while the order waits.
const REFRESH_SECS: u32 = 5;

/// The largest logo inlined into the page.
const LOGO_MAX: u64 = 256 * 1024;

/// Where a request for the page goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/pay`, `/<domain>/pay`: the form, or (POST) an order.
    Form { domain: Option<String> },
    /// `/pay/<order id>`, `/<domain>/pay/<order id>`: an order's state.
    Result {
        domain: Option<String>,
        order_id: String,
    },
}

/// The page's route for `PATH_INFO`, or `None` when it is not the page's.
pub fn route(path_info: &str) -> Option<Route> {
    let rest = path_info.strip_prefix('/')?;
    let (domain, rest) = match rest.split_once('/') {
        Some((first, tail)) if first != "pay" && first.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(first.to_string()), tail)
        }
        _ => (None, rest),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest == "pay" {
        return Some(Route::Form { domain });
    }
    let order_id = rest.strip_prefix("pay/")?;
    Some(Route::Result {
        domain,
        order_id: order_id.to_string(),
    })
}

/// What the page answered, for the journal.
pub struct Answered {
    pub reply: Reply,
    pub outcome: Outcome,
    pub echo: Echo,
    pub system: Option<String>,
    pub domain: Domain,
    pub notes: Vec<String>,
    /// Whether the database connection may be used again.
    pub healthy: bool,
}

/// One language's texts.
struct Texts {
    table: toml::Table,
    fallback: toml::Table,
}

impl Texts {
    fn get(&self, key: &str) -> String {
        self.table
            .get(key)
            .or_else(|| self.fallback.get(key))
            .and_then(|v| v.as_str())
            .unwrap_or(key)
            .to_string()
    }

    /// The text of `key` with `{name}`s filled in.
    fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key);
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

/// The page's look and words: built in, or the admin's.
struct Look {
    template: String,
    texts: Texts,
    lang: &'static str,
    title: String,
    logo: String,
}

impl Look {
    fn load(page: &PageConfig, lang: &'static str, notes: &mut Vec<String>) -> Look {
        let mut own = |name: &str| -> Option<String> {
            let path = page.template_dir.as_ref()?.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    notes.push(format!("{}: {e}; the built-in one is used", path.display()));
                    None
                }
            }
        };
        let template = own("page.html").unwrap_or_else(|| BUILTIN_TEMPLATE.to_string());
        let own_texts = own("texts.toml");
        let builtin: toml::Table = BUILTIN_TEXTS.parse().unwrap_or_default();
        let table_of = |all: &toml::Table| -> toml::Table {
            all.get(lang)
                .and_then(|v| v.as_table())
                .cloned()
                .unwrap_or_default()
        };
        let fallback = table_of(&builtin);
        let table = match own_texts.map(|t| t.parse::<toml::Table>()) {
            Some(Ok(all)) => table_of(&all),
            Some(Err(e)) => {
                notes.push(format!(
                    "texts.toml in {}: {e}; the built-in texts are used",
                    page.template_dir
                        .as_deref()
                        .map(Path::display)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                ));
                toml::Table::new()
            }
            None => toml::Table::new(),
        };
        let logo = page
            .logo
            .as_deref()
            .and_then(|path| logo(path, notes))
            .map(|uri| format!("<img src=\"{}\" alt=\"\">", escape(&uri)))
            .unwrap_or_default();
        Look {
            template,
            texts: Texts { table, fallback },
            lang,
            title: page.title.clone(),
            logo,
        }
    }

    /// The whole page around `main` (HTML, already escaped), with `head` added to `<head>`.
    fn page(&self, head: &str, main: &str) -> String {
        let title = if self.title.is_empty() {
            self.texts.get("heading")
        } else {
            self.title.clone()
        };
        let langs: Vec<String> = PAGE_LANGUAGES
            .iter()
            .filter(|l| **l != self.lang)
            .map(|l| {
                format!(
                    "<a href=\"?lang={l}\" hreflang=\"{l}\" lang=\"{l}\">{}</a>",
                    language_name(l)
                )
            })
            .collect();
        fill_template(&self.template, |name| match name {
            "lang" => Some(self.lang.to_string()),
            "title" => Some(escape(&title)),
            "logo" => Some(self.logo.clone()),
            "head" => Some(head.to_string()),
            "main" => Some(main.to_string()),
            "langs" => Some(langs.join(" ")),
            _ => None,
        })
    }

    fn t(&self, key: &str) -> String {
        escape(&self.texts.get(key))
    }
}

fn language_name(lang: &str) -> &'static str {
    match lang {
        "uk" => "Українська",
        "ru" => "Русский",
        _ => "English",
    }
}

/// `template` with each `{{name}}` replaced by what `value` gives (nothing for a name it
/// does not know). One pass: a value is never searched for placeholders itself.
fn fill_template(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 4096);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if let Some(v) = value(name) {
                    out.push_str(&v);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The logo file as a `data:` URI, so that the page loads nothing.
fn logo(path: &Path, notes: &mut Vec<String>) -> Option<String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ => {
            notes.push(format!(
                "logo {}: not a .png, .jpg, .gif, .webp or .svg file: not shown",
                path.display()
            ));
            return None;
        }
    };
    match std::fs::metadata(path).and_then(|m| {
        if m.len() > LOGO_MAX {
            Err(std::io::Error::other(format!(
                "{} bytes, more than the {LOGO_MAX} a logo may have",
                m.len()
            )))
        } else {
            std::fs::read(path)
        }
    }) {
        Ok(bytes) => Some(format!("data:{mime};base64,{}", BASE64.encode(bytes))),
        Err(e) => {
            notes.push(format!("logo {}: {e}: not shown", path.display()));
            None
        }
    }
}

/// Text made safe for HTML, in element content and in quoted attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The language: `?lang=` if it is one of ours, else the first of the browser's
/// (`Accept-Language`, by preference) that is, else the config's.
pub fn language(query_lang: Option<&str>, accept_language: &str, default: &str) -> &'static str {
    let ours = |tag: &str| -> Option<&'static str> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let primary = if primary == "ua" {
            "uk".to_string()
        } else {
            primary
        };
        PAGE_LANGUAGES.iter().copied().find(|l| *l == primary)
    };
    if let Some(l) = query_lang.and_then(ours) {
        return l;
    }
    let mut tags: Vec<(u32, usize, &str)> = accept_language
        .split(',')
        .take(32)
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, |q| {
                    (q.trim().parse::<f32>().unwrap_or(0.0) * 1000.0) as u32
                });
            (q > 0).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.iter()
        .find_map(|(_, _, tag)| ours(tag))
        .or_else(|| ours(default))
        .unwrap_or("uk")
}

/// How the world reaches `paysys_check.cgi`: `[page] public_url`, else built from the
/// request (`HTTPS`, `HTTP_HOST`, `SCRIPT_NAME`). `None`: the request gives no usable host.
pub fn public_url(page: &PageConfig, request: &Request) -> Option<String> {
    if let Some(url) = &page.public_url {
        return Some(url.clone());
    }
    let host = request.host.trim();
    // Host is the browser's word: only a host name or address and a port go into a URL
    // handed to a provider.
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return None;
    }
    let script = request.script_name.trim_end_matches('/');
    if !script
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
    {
        return None;
    }
    let scheme = if request.https { "https" } else { "http" };
    Some(format!("{scheme}://{host}{script}"))
}

/// `scheme://host[:port]` of a URL, for the Content-Security-Policy's `form-action`.
fn origin(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let end = url[i + 3..].find('/').map_or(url.len(), |j| i + 3 + j);
            url[..end].to_string()
        }
        None => String::new(),
    }
}

/// The headers every answer of the page carries. `script`: the provider form's page, whose
/// one script submits the form to `form_to`.
fn security_headers(form_to: Option<&str>) -> Vec<(&'static str, String)> {
    let mut csp = String::from(
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    );
    if let Some(to) = form_to {
        let origin = origin(to);
        if !origin.is_empty() && !origin.contains([';', ',', ' ', '\'']) {
            let _ = write!(csp, " {origin}");
        }
        let hash = BASE64.encode(Sha256::digest(SUBMIT_SCRIPT.as_bytes()));
        let _ = write!(csp, "; script-src 'sha256-{hash}'");
    }
    vec![
        ("Content-Security-Policy", csp),
        ("X-Frame-Options", "DENY".into()),
        ("X-Content-Type-Options", "nosniff".into()),
        ("Referrer-Policy", "no-referrer".into()),
    ]
}

fn html(status: u16, body: String, headers: Vec<(&'static str, String)>) -> Response {
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        body,
        headers: headers.into(),
    }
}

/// The card systems the page offers, in the config's order.
fn card_systems(config: &Config) -> Vec<&System> {
    config
        .systems
        .iter()
        .filter(|s| s.protocol.card() && s.card().is_some())
        .collect()
}

/// A system's button: the provider's name, and the system's where one provider has several
/// buttons.
fn button_label(system: &System, all: &[&System]) -> String {
    let provider = match system.protocol {
        ProtocolKind::Liqpay => "LiqPay",
        ProtocolKind::Monobank => "Monobank",
        _ => "WayForPay",
    };
    if all.iter().filter(|s| s.protocol == system.protocol).count() > 1 {
        format!("{provider} ({})", system.name)
    } else {
        provider.to_string()
    }
}

fn account_label_key(system: Option<&System>) -> &'static str {
    match system.and_then(|s| s.account.keys.first()) {
        Some(AccountKey::PaymentCode) => "account_payment_code",
        Some(AccountKey::Id) => "account_id",
        Some(AccountKey::Login) => "account_login",
        Some(AccountKey::ContractId) => "account_contract_id",
        _ => "account_uid",
    }
}

/// What a request carried, as typed (for the form shown again, escaped).
#[derive(Default)]
struct Typed {
    account: String,
    sum: String,
}

/// The form, with `error` (plain text) above it.
fn form_page(look: &Look, config: &Config, typed: &Typed, error: Option<&str>) -> String {
    let systems = card_systems(config);
    let first = systems.first().copied();
    let mut main = format!("<h1>{}</h1>", look.t("heading"));
    if let Some(error) = error {
        let _ = write!(
            main,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
    if systems.is_empty() {
        let _ = write!(main, "<p class=\"card\">{}</p>", look.t("no_systems"));
        return look.page("", &main);
    }
    let currency = first
        .and_then(|s| s.card())
        .map(|c| c.currency.clone())
        .unwrap_or_default();
    let _ = write!(
        main,
        "<form method=\"post\" class=\"card\" autocomplete=\"off\">\
         <label for=\"account\">{account}</label>\
         <input id=\"account\" name=\"account\" required maxlength=\"64\" value=\"{account_v}\">\
         <label for=\"sum\">{sum}, {currency}</label>\
         <input id=\"sum\" name=\"sum\" required maxlength=\"16\" inputmode=\"decimal\" value=\"{sum_v}\">",
        account = look.t(account_label_key(first)),
        account_v = escape(&typed.account),
        sum = look.t("sum"),
        currency = escape(&currency),
        sum_v = escape(&typed.sum),
    );
    if let Some(s) = first {
        let _ = write!(
            main,
            "<p class=\"hint\">{}</p>",
            escape(&look.texts.fill(
                "limits",
                &[
                    ("min", &s.min_sum.to_string()),
                    ("max", &s.max_sum.to_string())
                ]
            ))
        );
        let percent = s.card().map_or(0, |c| c.commission_basis_points);
        if percent > 0 {
            let _ = write!(
                main,
                "<p class=\"hint\">{}</p>",
                escape(
                    &look
                        .texts
                        .fill("commission_note", &[("percent", &percent_text(percent))])
                )
            );
        }
    }
    let _ = write!(
        main,
        "<p class=\"pay-with\">{}</p><div class=\"buttons\">",
        look.t("pay_with")
    );
    let buttons = merchant::buttons(&systems);
    for s in &buttons {
        let _ = write!(
            main,
            "<button type=\"submit\" name=\"system\" value=\"{}\">{}</button>",
            escape(&s.name),
            escape(&button_label(s, &buttons))
        );
    }
    main.push_str("</div></form>");
    look.page("", &main)
}

/// `250` basis points as `2.5`.
fn percent_text(basis_points: u32) -> String {
    let text = Amount::from_kopecks(i64::from(basis_points)).to_string();
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The commission on `amount`, `basis_points` hundredths of a percent, rounded half up to
/// the kopeck (as ABillS rounds it).
pub fn commission(amount: Amount, basis_points: u32) -> Amount {
    let k = i128::from(amount.kopecks()) * i128::from(basis_points);
    Amount::from_kopecks(((k + 5_000) / 10_000) as i64)
}

/// A sum as a person types it: `150`, `150.50`, `150,50`, spaces around.
fn typed_sum(text: &str) -> Option<Amount> {
    let text = text.trim().replace(',', ".");
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    Amount::parse(&text).ok().filter(|a| a.kopecks() > 0)
}

/// Serves one request for the page.
pub fn serve(
    route: &Route,
    request: &Request,
    config: &Config,
    now: DateTime<Local>,
    conns: &mut Connections,
) -> Answered {
    let mut notes = Vec::new();
    let form = request.form();
    let query_form = Form::decode(&request.query);
    let query_lang = query_form.get("lang").ok().flatten();
    let lang = language(query_lang, &request.accept_language, &config.page.language);
    let look = Look::load(&config.page, lang, &mut notes);
    let billing = billing::of(config.database.billing);
    let domain_text = match route {
        Route::Form { domain } | Route::Result { domain, .. } => domain.as_deref(),
    };
    // Domains are ABillS's; elsewhere the number is ignored, as for terminals.
    let domain = match domain_text {
        Some(d) if billing.has_domains() => Domain::from_path_info(d),
        _ => Ok(Domain::default()),
    };
    let mut answered = Answered {
        reply: Reply {
            response: html(200, String::new(), security_headers(None)),
            result: String::new(),
            comment: String::new(),
        },
        outcome: Outcome::Listed(Vec::new()),
        echo: Echo {
            command: "page".into(),
            dump: request.dump(),
            ..Echo::default()
        },
        system: None,
        domain: *domain.as_ref().unwrap_or(&Domain::default()),
        notes: Vec::new(),
        healthy: true,
    };
    let domain = match domain {
        Ok(d) => d,
        Err(why) => {
            answered.outcome = Outcome::Refused(Refusal::BadDomain(why.clone()));
            answered.reply.response.status = 404;
            answered.reply.response.body = look.page(
                "",
                &format!("<p class=\"error\">{}</p>", look.t("unknown_order")),
            );
            answered.reply.result = "not-found".into();
            answered.reply.comment = why;
            answered.notes = notes;
            return answered;
        }
    };
    match route {
        Route::Result { order_id, .. } => {
            answered.echo.command = "result".into();
            result_page(&mut answered, &look, config, order_id, conns)
        }
        Route::Form { .. } if request.method == "POST" => {
            answered.echo.command = "order".into();
            match form {
                Ok(form) => order_page(
                    &mut answered,
                    &look,
                    config,
                    request,
                    &form,
                    domain,
                    now,
                    conns,
                    &mut notes,
                ),
                Err(e) => {
                    answered.outcome = Outcome::Refused(Refusal::BadRequest(e.0.clone()));
                    answered.reply.response.status = 400;
                    answered.reply.response.body = form_page(
                        &look,
                        config,
                        &Typed::default(),
                        Some(&look.texts.get("bad_sum")),
                    );
                    answered.reply.result = "refused".into();
                    answered.reply.comment = e.0;
                }
            }
        }
        Route::Form { .. } if request.method == "GET" || request.method == "HEAD" => {
            answered.reply.response.body = form_page(&look, config, &Typed::default(), None);
            answered.reply.result = "form".into();
            answered.reply.comment = "form shown".into();
        }
        Route::Form { .. } => {
            answered.outcome = Outcome::Refused(Refusal::BadRequest(format!(
                "method {} on the page",
                request.method
            )));
            answered.reply.response.status = 405;
            answered
                .reply
                .response
                .headers
                .push(("Allow", "GET, POST".into()));
            answered.reply.response.body = form_page(&look, config, &Typed::default(), None);
            answered.reply.result = "refused".into();
            answered.reply.comment = "method not allowed".into();
        }
    }
    answered.notes.extend(notes);
    answered
}

/// The form again, with the reason (a text key) above it; nothing was stored.
fn refuse(
    answered: &mut Answered,
    look: &Look,
    config: &Config,
    typed: &Typed,
    text: String,
    outcome: Outcome,
) {
    answered.reply.comment = outcome.detail().unwrap_or_default();
    answered.reply.result = "refused".into();
    answered.reply.response.body = form_page(look, config, typed, Some(&text));
    answered.outcome = outcome;
}

/// A temporary fault: the person is asked to try again later.
fn unavailable(answered: &mut Answered, look: &Look, fault: Fault) {
    answered.reply.response.status = 503;
    answered
        .reply
        .response
        .headers
        .push(("Retry-After", "60".into()));
    answered.reply.response.body = look.page(
        "",
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a class=\"button\" href=\"\">{}</a></p>",
            look.t("unavailable"),
            look.t("refresh")
        ),
    );
    answered.reply.result = "unavailable".into();
    answered.reply.comment = fault.detail();
    answered.outcome = Outcome::Failed(fault);
    answered.healthy = false;
}

#[allow(clippy::too_many_arguments)]
fn order_page(
    answered: &mut Answered,
    look: &Look,
    config: &Config,
    request: &Request,
    form: &Form,
    domain: Domain,
    now: DateTime<Local>,
    conns: &mut Connections,
    notes: &mut Vec<String>,
) {
    let field = |k: &str| form.get(k).ok().flatten().unwrap_or("").to_string();
    let typed = Typed {
        account: field("account").trim().chars().take(64).collect(),
        sum: field("sum").trim().chars().take(16).collect(),
    };
    answered.echo.account = typed.account.clone();
    answered.echo.sum = typed.sum.clone();
    let chosen = field("system");
    let systems = card_systems(config);
    let Some(pressed) = systems.iter().copied().find(|s| s.name == chosen) else {
        let why = format!("no card system '{}'", crate::card::clip(&chosen));
        answered.reply.response.status = 400;
        return refuse(
            answered,
            look,
            config,
            &typed,
            look.texts.get("unknown_system"),
            Outcome::Refused(Refusal::BadRequest(why)),
        );
    };
    answered.system = Some(pressed.name.clone());
    // Every merchant of the pressed provider reads accounts alike (the config makes sure):
    // the account is read before the merchant is known.
    let account = match Account::parse_by(&typed.account, &pressed.account) {
        Ok(a) => a,
        Err(why) => {
            return refuse(
                answered,
                look,
                config,
                &typed,
                look.texts.get("bad_account"),
                Outcome::Refused(Refusal::BadAccount(why)),
            )
        }
    };
    let Some(amount) = typed_sum(&typed.sum) else {
        return refuse(
            answered,
            look,
            config,
            &typed,
            look.texts.get("bad_sum"),
            Outcome::Refused(Refusal::BadSum(format!(
                "'{}' is not a sum",
                crate::card::clip(&typed.sum)
            ))),
        );
    };
    if let Some((text, outcome)) = outside_limits(look, pressed, amount) {
        return refuse(answered, look, config, &typed, text, outcome);
    }
    let Some(base) = public_url(&config.page, request) else {
        return unavailable(
            answered,
            look,
            Fault::Internal(
                "no [page] public_url and no usable HTTP_HOST to build the providers' URLs from"
                    .into(),
            ),
        );
    };
    let billing = billing::of(config.database.billing);
    let conn = match conns.get(&config.database, db::Use::Write) {
        Ok(conn) => conn,
        Err(why) => return unavailable(answered, look, Fault::DatabaseRead(why)),
    };
    let caller = order::caller_key(request.remote_addr);
    // A caller who tried too many accounts that name nobody learns nothing more this hour.
    if config.page.misses_per_address > 0 {
        match probe::misses_last_hour(conn, &caller) {
            Ok(Some(n)) if n >= u64::from(config.page.misses_per_address) => {
                let why = format!(
                    "too many unknown accounts: {n} that name nobody tried from {caller} in \
                     the last hour, the limit is {}",
                    config.page.misses_per_address
                );
                return too_many(answered, look, config, &typed, why);
            }
            Ok(Some(_)) => {}
            Ok(None) => notes.push(
                "table paysys_page_miss is missing: accounts tried are not limited; load \
                 sql/paysys.sql again"
                    .into(),
            ),
            Err(e) => return unavailable(answered, look, Fault::DatabaseRead(e.to_string())),
        }
    }
    let subscriber = match billing.find(conn, pressed, &account, domain) {
        Ok(Ok(s)) => s,
        Ok(Err(refusal)) => {
            let key = match refusal {
                Refusal::AccountInactive | Refusal::PaymentsDisabled | Refusal::NoBill => {
                    "inactive"
                }
                _ => {
                    if config.page.misses_per_address > 0 {
                        if let Err(e) = probe::note_miss(conn, &caller) {
                            notes.push(format!("the miss was not counted: {e}"));
                        }
                    }
                    "unknown_account"
                }
            };
            return refuse(
                answered,
                look,
                config,
                &typed,
                look.texts.get(key),
                Outcome::Refused(refusal),
            );
        }
        Err(e) => return unavailable(answered, look, Fault::DatabaseRead(e.to_string())),
    };
    // The merchant whose subscriber this is: its keys, its limits, its callback.
    // By the account as the billing stores it, not as typed: one subscriber is one
    // merchant's, whichever key or letter case they typed.
    let stored = subscriber.account.as_deref().unwrap_or(account.as_str());
    let Some(system) = merchant::choose(&systems, pressed, subscriber.group, stored) else {
        return refuse(
            answered,
            look,
            config,
            &typed,
            look.texts.get("no_merchant"),
            Outcome::Refused(Refusal::BadAccount(format!(
                "no {} merchant takes account '{}' (group {}): see the systems' groups and \
                 accounts",
                pressed.protocol.name(),
                account.as_str(),
                subscriber
                    .group
                    .map_or_else(|| "none".to_string(), |g| g.to_string())
            ))),
        );
    };
    answered.system = Some(system.name.clone());
    let Some(card) = system.card() else { return };
    if system.name != pressed.name {
        if let Some((text, outcome)) = outside_limits(look, system, amount) {
            return refuse(answered, look, config, &typed, text, outcome);
        }
    }
    let fee = commission(amount, card.commission_basis_points);
    let charged = Amount::from_kopecks(amount.kopecks() + fee.kopecks());
    let new = NewOrder {
        system: &system.name,
        account: account.as_str(),
        amount,
        charged,
        currency: &card.currency,
        domain,
        validity_hours: card.validity_hours,
        subscriber_id: Some(subscriber.id),
    };
    let monobank = matches!(card.credentials, Credentials::Monobank { .. });
    // The same order asked for again (a reload, a second press, back from the provider's
    // page): the browser goes to the order already made, and nothing new is stored or
    // asked of the provider.
    let reused = match order::reusable(conn, &new, config.page.reuse_minutes, monobank) {
        Ok(reused) => reused,
        Err(e) => return unavailable(answered, look, Fault::DatabaseRead(e.to_string())),
    };
    let reused_order = reused.is_some();
    let (order, order_date, page_url) = match reused {
        Some(r) => (r.order, r.created, r.page_url),
        None => {
            match order::made_last_hour(conn, &caller, account.as_str(), domain) {
                Ok(made) => {
                    if let Some(why) = over_limit(&config.page, &caller, made) {
                        let why = format!("too many orders: {why}");
                        return too_many(answered, look, config, &typed, why);
                    }
                }
                Err(e) => return unavailable(answered, look, Fault::DatabaseRead(e.to_string())),
            }
            match store(conn, billing, system, &new, subscriber.id, &caller) {
                Ok(order) => (order, now.timestamp(), None),
                Err(why) => return unavailable(answered, look, Fault::DatabaseWrite(why)),
            }
        }
    };
    answered.echo.txn_id = order.order_id.clone();
    answered.echo.sum = amount.to_string();
    answered.outcome = Outcome::Booked {
        payment_id: order.id,
        repeat: reused_order,
    };
    answered.reply.result = "order".into();
    let server_url = format!("{base}/callback/{}", system.name);
    // The order's domain in the address the browser comes back to, so that "top up again"
    // leads to the same domain's form.
    let result_url = match domain.id() {
        0 => format!("{base}/pay/{}", order.order_id),
        d => format!("{base}/{d}/pay/{}", order.order_id),
    };
    let description = look
        .texts
        .fill("description", &[("account", account.as_str())])
        .replace(';', ",");
    let summary = Summary {
        name: mask_name(&subscriber.name),
        account: account.as_str().to_string(),
        amount,
        fee,
        charged,
        currency: card.currency.clone(),
    };
    let provider_lang = match look.lang {
        "uk" => "uk",
        "ru" => "ru",
        _ => "en",
    };
    // The end of the order's validity (from when it was made, also for an order made
    // again), as LiqPay's expired_date wants it.
    let expires_utc = DateTime::from_timestamp(
        order_date.saturating_add(i64::from(card.validity_hours) * 3600),
        0,
    )
    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    .unwrap_or_default();
    match &card.credentials {
        Credentials::Liqpay {
            public_key,
            private_key,
        } => {
            let keys = liqpay::Keys {
                public_key: public_key.clone(),
                private_key: Secret::new(private_key.clone()),
            };
            let checkout = liqpay::Checkout {
                order_id: &order.order_id,
                amount: charged,
                currency: &card.currency,
                description: &description,
                server_url: &server_url,
                result_url: &result_url,
                sandbox: card.sandbox,
                // LiqPay's checkout speaks Ukrainian and English.
                language: Some(if provider_lang == "en" { "en" } else { "uk" }),
                // Not payable after the order's validity, when we stop asking about it.
                expires: Some(&expires_utc),
            };
            match liqpay::checkout_form(&keys, &checkout) {
                Ok(signed) => submit_page(
                    answered,
                    look,
                    &summary,
                    &card.checkout_url,
                    &[
                        ("data".into(), signed.data),
                        ("signature".into(), signed.signature),
                    ],
                ),
                Err(e) => unavailable(answered, look, Fault::Internal(e.to_string())),
            }
        }
        Credentials::Wayforpay {
            merchant_account,
            secret_key,
            merchant_domain,
        } => {
            let merchant = wayforpay::Merchant {
                account: merchant_account.clone(),
                domain: merchant_domain.clone(),
                secret_key: Secret::new(secret_key.clone()),
            };
            let products = [wayforpay::Product {
                name: &description,
                count: 1,
                price: charged,
            }];
            let checkout = wayforpay::Checkout {
                order_reference: &order.order_id,
                // The order's own date, the same when the form is made again.
                order_date,
                amount: charged,
                currency: &card.currency,
                products: &products,
                service_url: &server_url,
                return_url: &result_url,
                lifetime_secs: Some(card.validity_hours.saturating_mul(3600)),
                language: Some(match provider_lang {
                    "uk" => "UA",
                    "ru" => "RU",
                    _ => "EN",
                }),
            };
            match wayforpay::checkout_form(&merchant, &checkout) {
                Ok(fields) => submit_page(answered, look, &summary, &card.checkout_url, &fields),
                Err(e) => unavailable(answered, look, Fault::Internal(e.to_string())),
            }
        }
        Credentials::Monobank { .. } if page_url.is_some() => {
            let page_url = page_url.unwrap_or_default();
            redirect(answered, look, &page_url);
            answered.reply.comment = "order reused, browser sent to its invoice again".into();
        }
        Credentials::Monobank { token, .. } => {
            let body = monobank::invoice_create_body(&monobank::InvoiceRequest {
                amount: charged,
                ccy: monobank::UAH,
                reference: &order.order_id,
                destination: &description,
                redirect_url: &result_url,
                web_hook_url: &server_url,
                validity_secs: card.validity_hours.saturating_mul(3600),
            });
            let url = format!("{}/api/merchant/invoice/create", card.api_url);
            let created = body
                .map_err(|e| e.to_string())
                .and_then(|body| post_json(&url, token, &body))
                .and_then(|answer| {
                    monobank::parse_create_answer(&answer).map_err(|e| e.to_string())
                });
            match created {
                Ok(monobank::CreateAnswer::Created {
                    invoice_id,
                    page_url,
                }) => {
                    // Every webhook of the order is checked against its invoiceId, and the
                    // sweeper asks Monobank by it: without it on record, a payment of the
                    // invoice could never be credited, so the subscriber is not sent to pay.
                    if let Err(e) = order::note_ref(conn, &order, "created", &invoice_id, None) {
                        return unavailable(
                            answered,
                            look,
                            Fault::DatabaseWrite(format!(
                                "invoice {invoice_id} created, but its id could not be noted on \
                                 the order ({e}): the subscriber was not sent to pay it"
                            )),
                        );
                    }
                    // A repeated request within minutes is sent here again.
                    if let Err(e) = order::note_page_url(conn, &order, &page_url) {
                        notes.push(format!("pageUrl not noted on the order: {e}"));
                    }
                    redirect(answered, look, &page_url);
                    answered.reply.comment = format!("invoice {invoice_id} created");
                }
                Ok(monobank::CreateAnswer::Refused(r)) => {
                    give_up(
                        conn,
                        billing,
                        system,
                        &order,
                        &format!("{} {}", r.code, r.text),
                        notes,
                    );
                    unavailable(
                        answered,
                        look,
                        Fault::Internal(format!(
                            "Monobank refused invoice/create: {} {}",
                            r.code, r.text
                        )),
                    );
                    // The order is ours, written: the connection is fine.
                    answered.healthy = true;
                }
                Err(why) => {
                    give_up(conn, billing, system, &order, &why, notes);
                    unavailable(
                        answered,
                        look,
                        Fault::Internal(format!("Monobank invoice/create: {why}")),
                    );
                    answered.healthy = true;
                }
            }
        }
    }
    if answered.reply.response.status == 200 && answered.reply.comment.is_empty() {
        answered.reply.comment = if reused_order {
            "order reused, browser sent to the provider again".into()
        } else {
            "order stored, browser sent to the provider".into()
        };
    }
}

/// The text and outcome refusing `amount` when it is outside `system`'s sums.
fn outside_limits(look: &Look, system: &System, amount: Amount) -> Option<(String, Outcome)> {
    if amount < system.min_sum {
        let text = look
            .texts
            .fill("sum_below", &[("min", &system.min_sum.to_string())]);
        let outcome = Outcome::Refused(Refusal::SumBelowMin {
            min: system.min_sum,
        });
        return Some((text, outcome));
    }
    if amount > system.max_sum {
        let text = look
            .texts
            .fill("sum_above", &[("max", &system.max_sum.to_string())]);
        let outcome = Outcome::Refused(Refusal::SumAboveMax {
            max: system.max_sum,
        });
        return Some((text, outcome));
    }
    None
}

/// Sends the browser to the provider's page at `url` (Monobank's pageUrl): a page that goes
/// on by itself (`<meta http-equiv="refresh">`), with a link for a browser that does not.
/// Not a `303`: the form was posted from a page whose policy lets forms go to this server
/// only (`form-action 'self'`), and browsers hold a redirect that follows a form's
/// submission to that policy too — Chromium refuses it and the subscriber stays on the form.
fn redirect(answered: &mut Answered, look: &Look, url: &str) {
    answered.reply.response.body = look.page(
        &format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={}\">",
            escape(url)
        ),
        &format!(
            "<p><a class=\"button\" id=\"continue\" href=\"{}\">{}</a></p>",
            escape(url),
            look.t("continue")
        ),
    );
}

/// Why a new order is not made, when `made` (the caller's and the account's orders of the
/// last hour) reaches a limit of `page`.
fn over_limit(page: &PageConfig, caller: &str, made: (u64, u64)) -> Option<String> {
    let (by_caller, by_account) = made;
    if page.orders_per_address > 0 && by_caller >= u64::from(page.orders_per_address) {
        return Some(format!(
            "{by_caller} orders from {caller} in the last hour, the limit is {}",
            page.orders_per_address
        ));
    }
    if page.orders_per_account > 0 && by_account >= u64::from(page.orders_per_account) {
        return Some(format!(
            "{by_account} orders for the account in the last hour, the limit is {}",
            page.orders_per_account
        ));
    }
    None
}

/// Too many new orders, or accounts that name nobody, in the last hour: the person is
/// asked to come back later; nothing was stored, nothing asked of a provider.
fn too_many(answered: &mut Answered, look: &Look, config: &Config, typed: &Typed, why: String) {
    refuse(
        answered,
        look,
        config,
        typed,
        look.texts.get("too_many"),
        Outcome::Refused(Refusal::BadRequest(why)),
    );
    answered.reply.result = "limited".into();
    answered.reply.response.status = 429;
    answered
        .reply
        .response
        .headers
        .push(("Retry-After", "600".into()));
}

/// An order no invoice was made for: failed, so that nobody waits for it (and ABillS's row
/// of it says so).
fn give_up(
    conn: &mut mysql::Conn,
    billing: &dyn Billing,
    system: &System,
    order: &CardOrder,
    why: &str,
    notes: &mut Vec<String>,
) {
    let status = format!("create failed: {}", crate::card::clip(why));
    let noted = order::note_and_close(
        conn,
        billing,
        system,
        order,
        CardState::Failed,
        &status,
        "",
        None,
    );
    if let Err(e) = noted {
        notes.push(format!("order {} not marked failed: {e}", order.order_id));
    }
}

/// The order and, where the billing keeps one, its record "in progress", in one
/// transaction: both or neither.
fn store(
    conn: &mut mysql::Conn,
    billing: &dyn Billing,
    system: &System,
    new: &NewOrder<'_>,
    uid: u64,
    caller: &str,
) -> Result<CardOrder, String> {
    conn.query_drop("START TRANSACTION")
        .map_err(|e| e.to_string())?;
    let stored = order::create_by(conn, new, caller).and_then(|order| {
        billing
            .open_order(conn, system, &order.order_id, uid, new.amount, new.domain)
            .map_err(|e| e.to_string())?;
        Ok(order)
    });
    match stored {
        Ok(order) => {
            conn.query_drop("COMMIT").map_err(|e| e.to_string())?;
            Ok(order)
        }
        Err(why) => {
            let _ = conn.query_drop("ROLLBACK");
            Err(why)
        }
    }
}

/// What the subscriber is about to pay, shown before the browser leaves.
struct Summary {
    name: String,
    account: String,
    amount: Amount,
    fee: Amount,
    charged: Amount,
    currency: String,
}

fn summary_html(look: &Look, s: &Summary) -> String {
    let mut out = String::from("<dl>");
    let mut row = |key: &str, value: &str| {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", look.t(key), escape(value));
    };
    if !s.name.is_empty() {
        row("subscriber", &s.name);
    }
    row("account", &s.account);
    row("amount", &format!("{} {}", s.amount, s.currency));
    if !s.fee.is_zero() {
        row("commission", &format!("{} {}", s.fee, s.currency));
        row("total", &format!("{} {}", s.charged, s.currency));
    }
    out.push_str("</dl>");
    out
}

/// The page that takes the browser to a provider: the signed form, submitted by the one
/// script the policy allows, with a button for a browser without JavaScript.
fn submit_page(
    answered: &mut Answered,
    look: &Look,
    summary: &Summary,
    action: &str,
    fields: &[(String, String)],
) {
    let mut main = format!(
        "<h1>{}</h1><div class=\"card\">{}<form id=\"pay\" method=\"post\" action=\"{}\" \
         accept-charset=\"utf-8\">",
        look.t("redirecting"),
        summary_html(look, summary),
        escape(action)
    );
    for (name, value) in fields {
        let _ = write!(
            main,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    let _ = write!(
        main,
        "<button type=\"submit\">{}</button></form></div><script>{SUBMIT_SCRIPT}</script>",
        look.t("continue")
    );
    answered.reply.response.body = look.page("", &main);
    answered.reply.response.headers = security_headers(Some(action)).into();
}

/// The page of order `order_id`: paid, waiting (refreshing itself), failed.
fn result_page(
    answered: &mut Answered,
    look: &Look,
    config: &Config,
    order_id: &str,
    conns: &mut Connections,
) {
    answered.echo.txn_id = crate::card::clip(order_id);
    let not_found = |answered: &mut Answered| {
        answered.reply.response.status = 404;
        answered.reply.response.body = look.page(
            "",
            &format!(
                "<p class=\"error\">{}</p><p><a class=\"button\" href=\"{}\">{}</a></p>",
                look.t("unknown_order"),
                FORM_HREF,
                look.t("again")
            ),
        );
        answered.reply.result = "not-found".into();
        answered.reply.comment = "no such order".into();
        answered.outcome = Outcome::Refused(Refusal::UnknownTxn);
    };
    // Our ids are 20 letters and digits; anything else names no order, unread.
    if order_id.is_empty()
        || order_id.len() > 64
        || !order_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return not_found(answered);
    }
    let conn = match conns.get(&config.database, db::Use::Read) {
        Ok(conn) => conn,
        Err(why) => return unavailable(answered, look, Fault::DatabaseRead(why)),
    };
    let mut found = None;
    for system in card_systems(config) {
        match order::find(conn, &system.name, order_id) {
            Ok(Some(order)) => {
                found = Some((system, order));
                break;
            }
            Ok(None) => {}
            Err(e) => return unavailable(answered, look, Fault::DatabaseRead(e.to_string())),
        }
    }
    let Some((system, order)) = found else {
        return not_found(answered);
    };
    answered.system = Some(system.name.clone());
    answered.echo.account = order.account.clone();
    answered.echo.sum = order.amount.to_string();
    answered.domain = order.domain;
    let state = match order.state.as_str() {
        "paid" => "paid",
        "waiting" | "booked" => "waiting",
        "failed" | "expired" => "failed",
        _ => "check",
    };
    answered.reply.result = state.into();
    answered.reply.comment = format!("order {}", order.state);
    let head = if state == "waiting" {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">")
    } else {
        String::new()
    };
    let summary = Summary {
        name: String::new(),
        account: order.account.clone(),
        amount: order.amount,
        fee: Amount::from_kopecks(order.charged.kopecks() - order.amount.kopecks()),
        charged: order.charged,
        currency: order.currency.clone(),
    };
    let again = if state == "waiting" {
        format!("<a class=\"button\" href=\"\">{}</a>", look.t("refresh"))
    } else {
        format!(
            "<a class=\"button\" href=\"{}\">{}</a>",
            FORM_HREF,
            look.t("again")
        )
    };
    let main = format!(
        "<h1>{}</h1><div class=\"card\"><p class=\"state {state}\" id=\"state\" \
         data-state=\"{state}\">{}</p>{}{again}</div>",
        look.t("result_heading"),
        look.t(&format!("state_{state}")),
        summary_html(look, &summary),
    );
    answered.reply.response.body = look.page(&head, &main);
}

/// The form's address, relative to the result page: `…/pay/<id>` → `…/pay`, and
/// `…/<domain>/pay/<id>` → `…/<domain>/pay`.
const FORM_HREF: &str = "../pay";

/// POSTs a JSON body with Monobank's `X-Token`; the answer's body, whatever its status
/// (Monobank answers its refusals as JSON with an error status).
#[cfg(feature = "card-api")]
fn post_json(url: &str, token: &str, body: &str) -> Result<Vec<u8>, String> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .user_agent(concat!("paysys/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut answer = agent
        .post(url)
        .header("X-Token", token)
        .content_type("application/json")
        .send(body.as_bytes())
        .map_err(|e| format!("{url}: {e}"))?;
    answer
        .body_mut()
        .with_config()
        .limit(crate::card::MAX_BODY as u64)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))
}

#[cfg(not(feature = "card-api"))]
fn post_json(url: &str, _token: &str, _body: &str) -> Result<Vec<u8>, String> {
    Err(format!(
        "this build has no HTTP client (feature card-api) to call {url}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let form = |d: Option<&str>| {
            Some(Route::Form {
                domain: d.map(str::to_string),
            })
        };
        assert_eq!(route("/pay"), form(None));
        assert_eq!(route("/pay/"), form(None));
        assert_eq!(route("/3/pay"), form(Some("3")));
        assert_eq!(
            route("/pay/abc234"),
            Some(Route::Result {
                domain: None,
                order_id: "abc234".into()
            })
        );
        assert_eq!(
            route("/7/pay/abc"),
            Some(Route::Result {
                domain: Some("7".into()),
                order_id: "abc".into()
            })
        );
        for other in ["", "/", "/3", "/callback/liqpay", "/payx", "/x/pay", "pay"] {
            assert_eq!(route(other), None, "{other}");
        }
    }

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<script>\"'&</script>"),
            "&lt;script&gt;&quot;&#39;&amp;&lt;/script&gt;"
        );
    }

    #[test]
    fn templates_fill_once() {
        let out = fill_template("a{{x}}b{{ y }}c{{z}}{{", |n| match n {
            "x" => Some("{{y}}".into()),
            "y" => Some("Y".into()),
            _ => None,
        });
        assert_eq!(out, "a{{y}}bYc{{");
    }

    #[test]
    fn languages() {
        assert_eq!(language(Some("en"), "uk", "uk"), "en");
        assert_eq!(language(Some("de"), "ru-RU,ru;q=0.9", "uk"), "ru");
        assert_eq!(language(None, "de;q=1, en;q=0.5, ru;q=0.8", "uk"), "ru");
        assert_eq!(language(None, "de, fr", "en"), "en");
        assert_eq!(language(None, "", "uk"), "uk");
        assert_eq!(language(None, "ua", "en"), "uk");
    }

    #[test]
    fn commission_is_rounded_half_up() {
        let a = |t: &str| Amount::parse(t).unwrap();
        assert_eq!(commission(a("100.00"), 250), a("2.50"));
        assert_eq!(commission(a("0.10"), 250), a("0.00"));
        assert_eq!(commission(a("0.20"), 250), a("0.01"));
        assert_eq!(commission(a("100.00"), 0), a("0.00"));
        assert_eq!(percent_text(250), "2.5");
        assert_eq!(percent_text(300), "3");
    }

    #[test]
    fn typed_sums() {
        assert_eq!(typed_sum(" 150,50 "), Some(Amount::from_kopecks(15050)));
        assert_eq!(typed_sum("150"), Some(Amount::from_kopecks(15000)));
        for bad in ["", "0", "-5", "1e3", "99999999999999999999", "1.001", "abc"] {
            assert_eq!(typed_sum(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_builtin_texts_have_every_key_in_every_language() {
        let all: toml::Table = BUILTIN_TEXTS.parse().unwrap();
        let en = all["en"].as_table().unwrap();
        for lang in PAGE_LANGUAGES {
            let table = all[*lang].as_table().unwrap();
            for key in en.keys() {
                assert!(table.contains_key(key), "{lang}: {key}");
            }
        }
    }

    #[test]
    fn the_policy_allows_only_the_submit_script() {
        let headers = security_headers(Some("https://www.liqpay.ua/api/3/checkout"));
        let csp = &headers[0].1;
        assert!(
            csp.contains("form-action 'self' https://www.liqpay.ua;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(!security_headers(None)[0].1.contains("script-src"));
    }
}
