//! `paysys statement pull`: the statements of the `[[statement.bank]]`s with an API
//! (`bank = "privat"` or `"monobank"`), fetched from the bank and credited by
//! [`import::import`] — the very code `paysys statement import` runs on a file, so a row is
//! credited exactly once by (bank, row id) whether it came from a file, a pull, or both,
//! and however often the windows overlap.
//!
//! # Where a pull starts and how far it goes
//!
//! `paysys_statement_pull` keeps, per bank, `pulled_to`: every row the bank had booked
//! before that time (the paysys host's local time) was imported. A pull reads from
//! `pulled_to` minus [`OVERLAP_SECONDS`] (one day: rows the bank books late, a Monobank
//! `hold` that becomes final, an interim PrivatBank row that closes the next morning — rows
//! seen before cost one lookup and credit nothing) up to now. A bank never pulled starts
//! at `--from`, else [`DEFAULT_DAYS`] days ago; `--from` given always wins (to fetch an old
//! period again), and `pulled_to` only ever moves forward.
//!
//! The span is cut into windows; `pulled_to` moves to a window's end only after every
//! page of the window was fetched and every row of it imported:
//!
//! * **PrivatBank** ([`privat_windows`]): windows of at most [`PRIVAT_WINDOW_DAYS`] days
//!   of `/api/statements/transactions?acc&startDate&endDate&limit` (dates `DD-MM-YYYY`),
//!   each followed page by page (`followId` = the previous page's `next_page_id`, while
//!   `exist_next_page`). The window that reaches today is followed by
//!   `/api/statements/transactions/interim`, paged the same way: today's operations before
//!   the bank closes the day. **We call it**: without it a payment made this morning is
//!   credited tomorrow, which is what a pull every 10 minutes is there to avoid. Its rows
//!   carry the `REF.REFN` they keep in the final statement ([`crate::statement::RowId`]),
//!   so the final statement's copy is "seen before"; a row not yet booked (`PR_PR` other
//!   than `r`) is skipped by the importer and taken when a later pull finds it booked
//!   (within the overlap). A window ending before today moves `pulled_to` to the next
//!   day's 00:00; the last one (with the interim part) to the time the run started.
//! * **Monobank** ([`monobank_spans`]): `/personal/statement/{account}/{from}/{to}` (unix
//!   seconds), spans of at most 31 days and 1 hour, one call at most every
//!   [`MONOBANK_INTERVAL`] per token ([`Pacer`]; Monobank answers 429 otherwise — a 429
//!   all the same is waited out and asked once more). A call that returns
//!   [`MONOBANK_MAX_ITEMS`] items is repeated for the same span with `to` = the time of
//!   the oldest item returned ([`monobank_next_to`]), as Monobank's documentation says,
//!   until a call returns fewer. A span moves `pulled_to` to its `to`.
//!
//! # When something fails
//!
//! A bank that cannot be reached, refuses the token, answers an HTTP error or a page that
//! is not a statement, or a database that fails mid-import, stops **that bank's** pull
//! there ([`PullError`], naming the bank, the window, the page and what failed; the other
//! banks are still pulled). Rows of the pages already imported stay imported — each is a
//! whole row, credited exactly once, and the next pull finds it "seen before". `pulled_to`
//! stays at the end of the last window that was imported whole, so the next pull fetches
//! the failed window again from its start; `last_error` says why. A row the database could
//! not decide fails its window the same way. A row the parser cannot read does not stop the
//! pull (the bank will send the same bytes again): it is listed as unreadable, counted, and
//! the command exits 1 so the admin sees it.
//!
//! The pure parts — URLs and headers ([`privat_request`], [`monobank_request`]), windows
//! and spans, paging decisions ([`Paging`], [`monobank_next_to`]), pacing ([`Pacer`]) —
//! take no I/O. [`BankApi`] sends a request: [`Http`] over HTTPS (feature `pull`), a fake
//! in tests.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::config::{BankKind, Config, StatementBank, System};
use crate::db::{Connections, Use};
use crate::statement::import::{self, Line, Summary};
use crate::statement::{clip, monobank, privat, Error as FormatError};

/// How far before `pulled_to` a pull starts again: rows booked late.
pub const OVERLAP_SECONDS: i64 = 86_400;
/// Where a bank never pulled starts, without `--from`: this many days ago.
pub const DEFAULT_DAYS: i64 = 7;
/// PrivatBank: the most days one window asks for; `pulled_to` moves after each.
pub const PRIVAT_WINDOW_DAYS: i64 = 31;
/// PrivatBank: rows per page (`limit`); the API takes up to 500 and advises 100.
pub const PRIVAT_LIMIT: u32 = 100;
/// The most pages of one window followed: a bank that pages on and on stops the pull.
pub const MAX_PAGES: usize = 10_000;
/// Monobank: the longest span of one call, 31 days and 1 hour.
pub const MONOBANK_MAX_SPAN: i64 = 31 * 86_400 + 3_600;
/// Monobank: the most items one call returns; that many means there may be more.
pub const MONOBANK_MAX_ITEMS: usize = 500;
/// Monobank: one statement call per token at most this often.
pub const MONOBANK_INTERVAL: StdDuration = StdDuration::from_secs(60);

/// One `GET` to a bank's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The bank's answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends a request to a bank. `Err`: no answer (connection, TLS, timeout), in its words.
pub trait BankApi {
    fn get(&self, request: &Request) -> Result<Answer, String>;
}

/// Where a pull of a bank starts: `--from` when given, else `pulled_to` minus the overlap,
/// else [`DEFAULT_DAYS`] before `now`. Never after `now`.
pub fn start_of(
    pulled_to: Option<NaiveDateTime>,
    from: Option<NaiveDate>,
    now: NaiveDateTime,
) -> NaiveDateTime {
    let start = match (from, pulled_to) {
        (Some(day), _) => day.and_time(NaiveTime::MIN),
        (None, Some(to)) => to - Duration::seconds(OVERLAP_SECONDS),
        (None, None) => now - Duration::days(DEFAULT_DAYS),
    };
    start.min(now)
}

/// PrivatBank's windows from `start` to `today`, both included: whole days, at most
/// [`PRIVAT_WINDOW_DAYS`] each, in order. A start after today is today.
pub fn privat_windows(start: NaiveDate, today: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut windows = Vec::new();
    let mut from = start.min(today);
    loop {
        let to = (from + Duration::days(PRIVAT_WINDOW_DAYS - 1)).min(today);
        windows.push((from, to));
        if to >= today {
            return windows;
        }
        from = to + Duration::days(1);
    }
}

/// Monobank's spans from `from` to `to` (unix seconds): each at most
/// [`MONOBANK_MAX_SPAN`], the next starting where the previous ended (a row at that very
/// second comes twice and is seen before the second time). Empty when `from >= to`.
pub fn monobank_spans(from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut spans = Vec::new();
    let mut start = from;
    while start < to {
        let end = start.saturating_add(MONOBANK_MAX_SPAN).min(to);
        spans.push((start, end));
        start = end;
    }
    spans
}

/// After a Monobank call for `(from, to)` returned `count` items, the oldest at `oldest`:
/// the `to` of the next call for the rest of the span, or `None` when the span is done
/// (fewer than [`MONOBANK_MAX_ITEMS`] items, or the oldest already at `from`).
pub fn monobank_next_to(
    from: i64,
    to: i64,
    count: usize,
    oldest: Option<i64>,
) -> Result<Option<i64>, String> {
    if count < MONOBANK_MAX_ITEMS {
        return Ok(None);
    }
    match oldest {
        None => Err(format!(
            "{count} items, the most one call returns, but no item has a time to ask on from"
        )),
        Some(t) if t <= from => Ok(None),
        Some(t) if t >= to => Err(format!(
            "{count} items all at or after {to}: asking again with to = the oldest item's time \
             would return the same items"
        )),
        Some(t) => Ok(Some(t)),
    }
}

/// Which PrivatBank statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivatPart {
    /// The final statement of the days `start..=end`.
    Final { start: NaiveDate, end: NaiveDate },
    /// Today's operations before the day is closed.
    Interim,
}

impl fmt::Display for PrivatPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivatPart::Final { start, end } => {
                write!(
                    f,
                    "{}..{}",
                    start.format("%Y-%m-%d"),
                    end.format("%Y-%m-%d")
                )
            }
            PrivatPart::Interim => f.write_str("interim (today)"),
        }
    }
}

/// The request for one page of PrivatBank's statement: `follow` is the previous page's
/// `next_page_id`. Headers `token` and, when configured, `id`.
pub fn privat_request(
    bank: &StatementBank,
    part: PrivatPart,
    follow: Option<&str>,
) -> Result<Request, String> {
    let iban = bank
        .iban
        .as_deref()
        .ok_or("no iban: the account whose statement is pulled")?;
    let mut query: Vec<(&str, String)> = vec![("acc", iban.to_string())];
    let path = match part {
        PrivatPart::Final { start, end } => {
            query.push(("startDate", start.format("%d-%m-%Y").to_string()));
            query.push(("endDate", end.format("%d-%m-%Y").to_string()));
            "/api/statements/transactions"
        }
        PrivatPart::Interim => "/api/statements/transactions/interim",
    };
    query.push(("limit", PRIVAT_LIMIT.to_string()));
    if let Some(id) = follow {
        query.push(("followId", id.to_string()));
    }
    let query = serde_urlencoded::to_string(&query)
        .map_err(|e| format!("the query cannot be put in a URL: {e}"))?;
    let mut headers = vec![("Content-Type", "application/json;charset=utf-8".to_string())];
    if let Some(token) = &bank.token {
        headers.push(("token", token.clone()));
    }
    if let Some(id) = &bank.client_id {
        headers.push(("id", id.clone()));
    }
    Ok(Request {
        url: format!("{}{path}?{query}", bank.api_url.trim_end_matches('/')),
        headers,
    })
}

/// The request for Monobank's statement of `(from, to)`, header `X-Token`.
pub fn monobank_request(bank: &StatementBank, from: i64, to: i64) -> Request {
    let mut headers = Vec::new();
    if let Some(token) = &bank.token {
        headers.push(("X-Token", token.clone()));
    }
    Request {
        url: format!(
            "{}/personal/statement/{}/{from}/{to}",
            bank.api_url.trim_end_matches('/'),
            path_segment(&bank.account_id)
        ),
        headers,
    }
}

/// `text` as one URL path segment: unreserved characters kept, the rest %-escaped.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// PrivatBank's paging of one window: which `followId` to ask for next.
#[derive(Debug, Default)]
pub struct Paging {
    asked: HashSet<String>,
    pages: usize,
}

impl Paging {
    /// After `page` (the next one's id when `exist_next_page`): `None` when the window is
    /// done. A `next_page_id` asked for before (the bank would page in a circle) or more
    /// than [`MAX_PAGES`] pages is an error, not an endless pull.
    pub fn next(&mut self, page: &privat::Page) -> Result<Option<String>, String> {
        self.pages += 1;
        if !page.exist_next_page {
            return Ok(None);
        }
        let id = page
            .next_page_id
            .clone()
            .ok_or("exist_next_page without next_page_id")?;
        if self.pages >= MAX_PAGES {
            return Err(format!("more than {MAX_PAGES} pages in one window"));
        }
        if !self.asked.insert(id.clone()) {
            return Err(format!(
                "next_page_id '{}' again: the bank pages in a circle",
                clip(&id)
            ));
        }
        Ok(Some(id))
    }
}

/// One Monobank statement call per token at most every `interval`.
#[derive(Debug)]
pub struct Pacer {
    interval: StdDuration,
    last: HashMap<String, Instant>,
}

impl Pacer {
    pub fn new(interval: StdDuration) -> Pacer {
        Pacer {
            interval,
            last: HashMap::new(),
        }
    }

    pub fn interval(&self) -> StdDuration {
        self.interval
    }

    /// How long a call with `token` must wait at `now`.
    pub fn due(&self, token: &str, now: Instant) -> StdDuration {
        match self.last.get(token) {
            None => StdDuration::ZERO,
            Some(last) => (*last + self.interval).saturating_duration_since(now),
        }
    }

    /// Waits until a call with `token` may go, and counts it as made now.
    pub fn wait(&mut self, token: &str) {
        let wait = self.due(token, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        self.last.insert(token.to_string(), Instant::now());
    }
}

/// How a pull runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--from`: start here whatever `pulled_to` says.
    pub from: Option<NaiveDate>,
    /// The run's start, local time: the end of the last window.
    pub now: NaiveDateTime,
}

/// What a pull of one bank did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    /// Requests answered.
    pub calls: usize,
    /// Its rows, as the importer counted them.
    pub summary: Summary,
    /// Where `pulled_to` is now (`None`: never pulled whole).
    pub pulled_to: Option<NaiveDateTime>,
}

/// Why a bank's pull stopped, and what it had done before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullError {
    /// What failed, and where: the window, the page.
    pub what: String,
    pub done: Pulled,
}

impl fmt::Display for PullError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; ", self.what)?;
        match self.done.pulled_to {
            Some(to) => write!(
                f,
                "pulled_to stays {}: the next pull fetches from there again",
                to.format("%Y-%m-%d %H:%M:%S")
            ),
            None => f.write_str(
                "no window pulled whole yet: the next pull starts from the same place again",
            ),
        }?;
        if self.done.summary.rows > 0 {
            write!(
                f,
                " (rows of the pages fetched before were imported: {})",
                self.done.summary
            )?;
        }
        Ok(())
    }
}

/// `paysys_statement_pull.pulled_to` of `bank`.
pub fn pulled_to(conn: &mut Conn, bank: &str) -> Result<Option<NaiveDateTime>, mysql::Error> {
    let text: Option<Option<String>> = conn.exec_first(
        "SELECT CAST(pulled_to AS CHAR) FROM paysys_statement_pull WHERE bank = ?",
        (bank,),
    )?;
    Ok(text
        .flatten()
        .and_then(|t| NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S").ok()))
}

/// Moves `bank`'s `pulled_to` to `to` (never back) and clears `last_error`.
pub fn advance(conn: &mut Conn, bank: &str, to: NaiveDateTime) -> Result<(), mysql::Error> {
    let to = to.format("%Y-%m-%d %H:%M:%S").to_string();
    conn.exec_drop(
        "INSERT INTO paysys_statement_pull (bank, pulled_to, updated, last_error) \
         VALUES (?, ?, NOW(), NULL) \
         ON DUPLICATE KEY UPDATE pulled_to = GREATEST(COALESCE(pulled_to, ?), ?), \
         updated = NOW(), last_error = NULL",
        (bank, &to, &to, &to),
    )
}

/// Notes why `bank`'s pull stopped; `pulled_to` unchanged.
pub fn note_error(conn: &mut Conn, bank: &str, why: &str) -> Result<(), mysql::Error> {
    let why = crate::ledger::column_text(why, 255);
    conn.exec_drop(
        "INSERT INTO paysys_statement_pull (bank, pulled_to, updated, last_error) \
         VALUES (?, NULL, NOW(), ?) \
         ON DUPLICATE KEY UPDATE updated = NOW(), last_error = ?",
        (bank, &why, &why),
    )
}

/// The unix time of a local time (a time skipped by the spring change is taken an hour
/// later; one repeated in autumn, the first time).
fn unix_of(local: NaiveDateTime) -> i64 {
    Local
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            Local
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| local.and_utc().timestamp(), |t| t.timestamp())
}

/// The local time of a unix time.
fn local_of(unix: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(unix, 0).map(|t| t.with_timezone(&Local).naive_local())
}

/// Pulls `bank`'s statement (see the module's docs), handing each row's line to `line`.
pub fn pull(
    config: &Config,
    bank: &System,
    api: &dyn BankApi,
    options: &Options,
    pacer: &mut Pacer,
    conns: &mut Connections,
    line: &mut dyn FnMut(&Line),
) -> Result<Pulled, PullError> {
    let mut run = Run {
        config,
        bank,
        api,
        conns,
        line,
        done: Pulled::default(),
        calls: Vec::new(),
    };
    let result = run.pull(options, pacer);
    if let Err(what) = &result {
        run.history(what.clone(), true);
        // Best effort: the error is said on stderr whatever happens here.
        let noted = run
            .conns
            .get(&config.database, Use::Write)
            .and_then(|conn| note_error(conn, &bank.name, what).map_err(|e| e.to_string()));
        if noted.is_err() {
            run.conns.done(false);
        }
    }
    match result {
        Ok(()) => Ok(run.done),
        Err(what) => Err(PullError {
            what,
            done: run.done,
        }),
    }
}

struct Run<'a> {
    config: &'a Config,
    bank: &'a System,
    api: &'a dyn BankApi,
    conns: &'a mut Connections,
    line: &'a mut dyn FnMut(&Line),
    done: Pulled,
    /// The calls to the bank since the last window was done, for the request history:
    /// `GET <url, secrets masked> → HTTP <status>`.
    calls: Vec<String>,
}

impl Run<'_> {
    fn settings(&self) -> Result<&StatementBank, String> {
        self.bank
            .statement()
            .ok_or_else(|| "not a [[statement.bank]]".to_string())
    }

    fn pull(&mut self, options: &Options, pacer: &mut Pacer) -> Result<(), String> {
        let settings = self.settings()?.clone();
        let before = {
            let bank = self.bank;
            let conn = self.db()?;
            let read = pulled_to(conn, &bank.name);
            read.map_err(|e| self.db_error(e))?
        };
        self.done.pulled_to = before;
        let start = start_of(before, options.from, options.now);
        match settings.bank {
            BankKind::Privat => self.privat(&settings, start, options.now),
            BankKind::Monobank => self.monobank(&settings, start, options.now, pacer),
            BankKind::File => Err(
                "bank = \"file\" has no API: its statements are imported with paysys statement \
                 import"
                    .into(),
            ),
        }
    }

    fn db(&mut self) -> Result<&mut Conn, String> {
        self.conns
            .get(&self.config.database, Use::Write)
            .map_err(|e| format!("database: {e}"))
    }

    fn db_error(&mut self, e: mysql::Error) -> String {
        self.conns.done(false);
        let text = e.to_string();
        if text.contains("paysys_statement_pull") && text.contains("doesn't exist") {
            return crate::db::our_table_missing("paysys_statement_pull");
        }
        format!("database: {text}")
    }

    /// Sends `request`, described as `what` in errors: the body of a 200 answer.
    fn fetch(
        &mut self,
        request: &Request,
        what: &str,
        refusal: fn(&[u8]) -> Option<String>,
    ) -> Result<Answer, String> {
        let answer = self.api.get(request);
        let url = crate::history::masked_url(&request.url);
        self.calls.push(match &answer {
            Ok(a) => format!("GET {url} → HTTP {}", a.status),
            Err(e) => format!("GET {url} → no answer: {e}"),
        });
        let answer = answer.map_err(|e| format!("{what}: no answer: {e}"))?;
        self.done.calls += 1;
        if answer.status == 200 {
            return Ok(answer);
        }
        let said = refusal(&answer.body)
            .unwrap_or_else(|| clip(String::from_utf8_lossy(&answer.body).trim()));
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        Err(match answer.status {
            401 | 403 => format!(
                "{what}: the bank refused the token (HTTP {}){said}",
                answer.status
            ),
            429 => format!("{what}: too many requests (HTTP 429){said}"),
            s => format!("{what}: the bank answered HTTP {s}{said}"),
        })
    }

    /// Imports one page's rows; `Err` when the database cannot be reached.
    fn import(
        &mut self,
        rows: Vec<Result<crate::statement::StatementRow, crate::statement::RowError>>,
        source: &str,
        window: &mut Summary,
    ) -> Result<(), String> {
        let options = import::Options {
            dry_run: false,
            source: source.to_string(),
        };
        let summary = import::import(
            self.config,
            self.bank,
            rows.into_iter(),
            &options,
            self.conns,
            self.line,
        )
        .map_err(|e| {
            self.conns.done(false);
            format!("database: {e}")
        })?;
        window.add(&summary);
        self.done.summary.add(&summary);
        Ok(())
    }

    /// A window whose rows are all imported: `pulled_to` moves to `to`.
    fn window_done(
        &mut self,
        window: &Summary,
        what: &str,
        to: NaiveDateTime,
    ) -> Result<(), String> {
        if window.failed > 0 {
            self.conns.done(false);
            return Err(format!(
                "{what}: {} rows not decided (the database failed on them)",
                window.failed
            ));
        }
        let bank = self.bank;
        let conn = self.db()?;
        let moved = advance(conn, &bank.name, to);
        moved.map_err(|e| self.db_error(e))?;
        self.done.pulled_to = Some(self.done.pulled_to.map_or(to, |p| p.max(to)));
        self.history(format!("{what}: {window}"), false);
        Ok(())
    }

    /// With `[log] database = true`, the request history's row of the window just done
    /// (or failed): one row per window, its calls to the bank as the request, what came of
    /// them as the answer. A row that cannot be written is said on stderr; the pull goes on.
    fn history(&mut self, response: String, failed: bool) {
        let calls = std::mem::take(&mut self.calls);
        if !self.config.log.database || calls.is_empty() {
            return;
        }
        let entry = crate::history::Entry {
            system: self.bank.name.clone(),
            abills_id: self.bank.abills.id,
            method: "GET".into(),
            request: calls.join("\n"),
            command: "pull".into(),
            error: if failed {
                response.clone()
            } else {
                String::new()
            },
            response,
            failed,
            ..Default::default()
        };
        let written = match self.conns.get(&self.config.database, Use::Write) {
            Ok(conn) => crate::history::write(conn, self.config.database.billing, &entry),
            Err(why) => Err(crate::history::Unwritten {
                why,
                connection_lost: true,
            }),
        };
        if let Err(why) = written {
            // A refused row (its table missing) leaves the connection to the pull.
            if why.connection_lost {
                self.conns.done(false);
            }
            eprintln!(
                "paysys statement pull: bank {}: request history not written: {why}",
                self.bank.name
            );
        }
    }

    fn privat(
        &mut self,
        settings: &StatementBank,
        start: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<(), String> {
        let today = now.date();
        let windows = privat_windows(start.date(), today);
        let mut parts: Vec<PrivatPart> = windows
            .iter()
            .map(|&(start, end)| PrivatPart::Final { start, end })
            .collect();
        parts.push(PrivatPart::Interim);
        let mut window = Summary::default();
        for part in parts {
            let mut paging = Paging::default();
            let mut follow: Option<String> = None;
            let mut page_number = 0usize;
            loop {
                page_number += 1;
                let what = format!("statement {part}, page {page_number}");
                let request = privat_request(settings, part, follow.as_deref())
                    .map_err(|e| format!("{what}: {e}"))?;
                let answer = self.fetch(&request, &what, privat_refusal)?;
                let page = privat::parse_page(&answer.body)
                    .map_err(|e| format!("{what}: a broken page: {e}"))?;
                let next = paging.next(&page).map_err(|e| format!("{what}: {e}"))?;
                let source = match part {
                    PrivatPart::Final { start, end } => format!(
                        "pull {}..{}",
                        start.format("%Y-%m-%d"),
                        end.format("%Y-%m-%d")
                    ),
                    PrivatPart::Interim => format!("pull interim {}", today.format("%Y-%m-%d")),
                };
                self.import(page.rows, &source, &mut window)?;
                match next {
                    Some(id) => follow = Some(id),
                    None => break,
                }
            }
            // The window that reaches today moves `pulled_to` only with its interim part.
            let to = match part {
                PrivatPart::Final { end, .. } if end < today => {
                    Some((end + Duration::days(1)).and_time(NaiveTime::MIN))
                }
                PrivatPart::Final { .. } => None,
                PrivatPart::Interim => Some(now),
            };
            if let Some(to) = to {
                self.window_done(&window, &format!("statement {part}"), to)?;
                window = Summary::default();
            }
        }
        Ok(())
    }

    fn monobank(
        &mut self,
        settings: &StatementBank,
        start: NaiveDateTime,
        now: NaiveDateTime,
        pacer: &mut Pacer,
    ) -> Result<(), String> {
        let token = settings.token.clone().unwrap_or_default();
        for (from, to) in monobank_spans(unix_of(start), unix_of(now)) {
            let span = format!(
                "statement {}..{}",
                local_of(from).map_or_else(
                    || from.to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S").to_string()
                ),
                local_of(to).map_or_else(
                    || to.to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S").to_string()
                )
            );
            let mut window = Summary::default();
            let mut call_to = to;
            let mut call = 0usize;
            loop {
                call += 1;
                let what = format!("{span}, call {call} (to={call_to})");
                let request = monobank_request(settings, from, call_to);
                pacer.wait(&token);
                let mut answer = self.fetch(&request, &what, monobank_refusal);
                if matches!(&answer, Err(e) if e.contains("HTTP 429")) {
                    // Another run (or another program with this token) asked within the
                    // minute: wait it out and ask once more.
                    pacer.wait(&token);
                    answer = self.fetch(&request, &what, monobank_refusal);
                }
                let answer = answer?;
                let rows = monobank::parse(&answer.body)
                    .map_err(|e| format!("{what}: a broken page: {e}"))?;
                let count = rows.len();
                let oldest = item_times(&answer.body).into_iter().min();
                let next = monobank_next_to(from, call_to, count, oldest)
                    .map_err(|e| format!("{what}: {e}"))?;
                let source = format!("pull monobank {from}..{call_to}");
                self.import(rows, &source, &mut window)?;
                match next {
                    Some(t) => call_to = t,
                    None => break,
                }
            }
            let end = local_of(to).unwrap_or(now);
            self.window_done(&window, &span, end)?;
        }
        Ok(())
    }
}

/// The `time` of every item of a Monobank answer that has one.
fn item_times(body: &[u8]) -> Vec<i64> {
    serde_json::from_slice::<Vec<serde_json::Value>>(body)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("time").and_then(serde_json::Value::as_i64))
                .collect()
        })
        .unwrap_or_default()
}

/// The bank's own words in an error answer, if it is one of PrivatBank's.
fn privat_refusal(body: &[u8]) -> Option<String> {
    match privat::parse_page(body) {
        Err(FormatError::Refused { message, .. }) => Some(message),
        _ => None,
    }
}

/// The bank's own words in an error answer, if it is one of Monobank's.
fn monobank_refusal(body: &[u8]) -> Option<String> {
    match monobank::parse(body) {
        Err(FormatError::Refused { message, .. }) => Some(message),
        _ => None,
    }
}

/// The banks' APIs over HTTPS: rustls with the built-in roots, a bounded time per request,
/// redirects not followed (as [`crate::card::sweep::Http`]).
#[cfg(feature = "pull")]
pub struct Http {
    agent: ureq::Agent,
}

#[cfg(feature = "pull")]
impl Http {
    /// `timeout`: for the whole of one request (connect, send, answer).
    pub fn new(timeout: StdDuration) -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("paysys-statement/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

#[cfg(feature = "pull")]
impl BankApi for Http {
    fn get(&self, request: &Request) -> Result<Answer, String> {
        let url = &request.url;
        // The URL without its query: what an error names (the query holds the IBAN).
        let shown = url.split('?').next().unwrap_or(url);
        let mut r = self.agent.get(url);
        for (name, value) in &request.headers {
            r = r.header(*name, value);
        }
        let mut response = r.call().map_err(|e| format!("{shown}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(privat::MAX_BODY as u64)
            .read_to_vec()
            .map_err(|e| format!("{shown}: reading the answer: {e}"))?;
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn bank(kind: BankKind) -> StatementBank {
        StatementBank {
            bank: kind,
            iban: Some("UA213223130000026007233566001".into()),
            token: Some("tok+en/=".into()),
            client_id: Some("client-7".into()),
            account_id: "kKGVoZu/HWzq=".into(),
            api_url: "https://bank.example/".into(),
            currency: "UAH".into(),
        }
    }

    #[test]
    fn a_pull_starts_a_day_before_where_the_last_got_to_else_from_else_a_week_ago() {
        let now = at("2026-12-10 12:00:00");
        assert_eq!(
            start_of(Some(at("2026-12-09 08:30:00")), None, now),
            at("2026-12-08 08:30:00")
        );
        assert_eq!(start_of(None, None, now), at("2026-12-03 12:00:00"));
        assert_eq!(
            start_of(None, Some(day("2026-11-01")), now),
            at("2026-11-01 00:00:00")
        );
        // --from wins over pulled_to (to fetch an old period again).
        assert_eq!(
            start_of(
                Some(at("2026-12-09 08:30:00")),
                Some(day("2026-10-01")),
                now
            ),
            at("2026-10-01 00:00:00")
        );
        // Never in the future.
        assert_eq!(start_of(None, Some(day("2027-01-01")), now), now);
    }

    #[test]
    fn privat_windows_are_whole_days_of_at_most_31_up_to_today() {
        assert_eq!(
            privat_windows(day("2026-12-08"), day("2026-12-10")),
            vec![(day("2026-12-08"), day("2026-12-10"))]
        );
        assert_eq!(
            privat_windows(day("2026-10-01"), day("2026-12-10")),
            vec![
                (day("2026-10-01"), day("2026-10-31")),
                (day("2026-11-01"), day("2026-12-01")),
                (day("2026-12-02"), day("2026-12-10")),
            ]
        );
        assert_eq!(
            privat_windows(day("2026-12-10"), day("2026-12-10")),
            vec![(day("2026-12-10"), day("2026-12-10"))]
        );
        assert_eq!(
            privat_windows(day("2027-01-01"), day("2026-12-10")),
            vec![(day("2026-12-10"), day("2026-12-10"))]
        );
    }

    #[test]
    fn monobank_spans_are_at_most_31_days_and_an_hour_and_meet() {
        assert_eq!(monobank_spans(100, 200), vec![(100, 200)]);
        assert!(monobank_spans(200, 200).is_empty());
        assert!(monobank_spans(300, 200).is_empty());
        let from = 1_790_000_000;
        let to = from + 40 * 86_400;
        let spans = monobank_spans(from, to);
        assert_eq!(
            spans,
            vec![
                (from, from + MONOBANK_MAX_SPAN),
                (from + MONOBANK_MAX_SPAN, to)
            ]
        );
        let exact = monobank_spans(from, from + MONOBANK_MAX_SPAN);
        assert_eq!(exact, vec![(from, from + MONOBANK_MAX_SPAN)]);
        let long = monobank_spans(0, 10 * MONOBANK_MAX_SPAN + 1);
        assert_eq!(long.len(), 11);
        assert!(long
            .iter()
            .all(|(a, b)| b - a <= MONOBANK_MAX_SPAN && a < b));
        assert!(long.windows(2).all(|w| w[0].1 == w[1].0));
    }

    #[test]
    fn monobank_asks_again_up_to_the_oldest_item_when_500_came() {
        assert_eq!(monobank_next_to(100, 900, 499, Some(500)), Ok(None));
        assert_eq!(monobank_next_to(100, 900, 0, None), Ok(None));
        assert_eq!(monobank_next_to(100, 900, 500, Some(500)), Ok(Some(500)));
        assert_eq!(monobank_next_to(100, 900, 500, Some(100)), Ok(None));
        assert!(monobank_next_to(100, 900, 500, Some(900)).is_err());
        assert!(monobank_next_to(100, 900, 500, None).is_err());
    }

    #[test]
    fn privat_requests_carry_the_dates_paging_and_headers() {
        let b = bank(BankKind::Privat);
        let r = privat_request(
            &b,
            PrivatPart::Final {
                start: day("2026-12-01"),
                end: day("2026-12-05"),
            },
            None,
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://bank.example/api/statements/transactions?acc=UA213223130000026007233566001\
             &startDate=01-12-2026&endDate=05-12-2026&limit=100"
        );
        assert!(r.headers.contains(&("token", "tok+en/=".to_string())));
        assert!(r.headers.contains(&("id", "client-7".to_string())));
        assert!(r
            .headers
            .contains(&("Content-Type", "application/json;charset=utf-8".to_string())));
        let next = privat_request(&b, PrivatPart::Interim, Some("a b&c")).unwrap();
        assert_eq!(
            next.url,
            "https://bank.example/api/statements/transactions/interim?\
             acc=UA213223130000026007233566001&limit=100&followId=a+b%26c"
        );
        let mut no_id = b.clone();
        no_id.client_id = None;
        let r = privat_request(&no_id, PrivatPart::Interim, None).unwrap();
        assert!(!r.headers.iter().any(|(k, _)| *k == "id"));
        no_id.iban = None;
        assert!(privat_request(&no_id, PrivatPart::Interim, None).is_err());
    }

    #[test]
    fn monobank_requests_name_the_account_and_the_span() {
        let r = monobank_request(&bank(BankKind::Monobank), 1000, 2000);
        assert_eq!(
            r.url,
            "https://bank.example/personal/statement/kKGVoZu%2FHWzq%3D/1000/2000"
        );
        assert_eq!(r.headers, vec![("X-Token", "tok+en/=".to_string())]);
    }

    fn page(next: Option<&str>) -> privat::Page {
        privat::Page {
            rows: Vec::new(),
            exist_next_page: next.is_some(),
            next_page_id: next.map(str::to_string),
        }
    }

    #[test]
    fn privat_paging_follows_next_page_id_and_refuses_a_circle() {
        let mut paging = Paging::default();
        assert_eq!(paging.next(&page(Some("p2"))), Ok(Some("p2".into())));
        assert_eq!(paging.next(&page(Some("p3"))), Ok(Some("p3".into())));
        assert!(paging.next(&page(Some("p2"))).is_err());
        let mut paging = Paging::default();
        assert_eq!(paging.next(&page(None)), Ok(None));
        let mut broken = page(None);
        broken.exist_next_page = true;
        assert!(Paging::default().next(&broken).is_err());
    }

    #[test]
    fn the_pacer_spaces_calls_of_one_token() {
        let mut pacer = Pacer::new(StdDuration::from_secs(60));
        let now = Instant::now();
        assert_eq!(pacer.due("a", now), StdDuration::ZERO);
        pacer.last.insert("a".into(), now);
        assert_eq!(pacer.due("a", now), StdDuration::from_secs(60));
        assert_eq!(
            pacer.due("a", now + StdDuration::from_secs(45)),
            StdDuration::from_secs(15)
        );
        assert_eq!(
            pacer.due("a", now + StdDuration::from_secs(61)),
            StdDuration::ZERO
        );
        // Another token is not held back.
        assert_eq!(pacer.due("b", now), StdDuration::ZERO);
        let mut quick = Pacer::new(StdDuration::from_millis(20));
        let started = Instant::now();
        quick.wait("a");
        quick.wait("a");
        assert!(started.elapsed() >= StdDuration::from_millis(20));
    }

    #[test]
    fn item_times_reads_every_items_time() {
        assert_eq!(
            item_times(br#"[{"id":"a","time":300},{"id":"b","time":100},{"id":"c"}]"#),
            vec![300, 100]
        );
        assert!(item_times(b"{}").is_empty());
    }

    #[test]
    fn local_and_unix_times_round_trip() {
        let t = at("2026-12-10 12:34:56");
        assert_eq!(local_of(unix_of(t)), Some(t));
    }

    #[test]
    fn an_error_says_where_pulled_to_stays() {
        let e = PullError {
            what: "statement 2026-12-01..2026-12-05, page 2: the bank answered HTTP 500".into(),
            done: Pulled {
                calls: 1,
                summary: Summary {
                    rows: 2,
                    credited: 1,
                    ..Summary::default()
                },
                pulled_to: None,
            },
        };
        let text = e.to_string();
        assert!(
            text.contains("page 2: the bank answered HTTP 500"),
            "{text}"
        );
        assert!(
            text.contains("the next pull starts from the same place"),
            "{text}"
        );
        assert!(text.contains("2 rows: 1 credited"), "{text}");
    }
}
