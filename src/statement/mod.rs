//! Bank statements: the rows of a bank's statement, read from a file or an API answer into
//! typed values — the parsing layer of the third way money reaches an ISP. Pure functions
//! over bytes, like [`crate::card`]: nothing here touches the database or the network, and
//! nothing decides what a row is for. Which rows are credited, skipped (a debit, another
//! currency, not yet posted) or listed for the admin is the importer's call; a row here
//! carries what it needs to decide.
//!
//! * [`privat`] — one page of PrivatBank's Autoclient API (`/api/statements/transactions`),
//!   with its paging.
//! * [`monobank`] — Monobank's personal/FOP statement (`/personal/statement/…`).
//! * [`onec`] — `1CClientBankExchange` text files, 1.03 (Russian and Ukrainian banks) and
//!   the Kazakh 2.00, Windows-1251 or UTF-8, streamed line by line.
//! * [`csv`] — a bank's CSV export read through a named column mapping ([`csv::CsvPreset`]),
//!   streamed record by record.
//! * [`pull`] — `paysys statement pull`: the same statements fetched from PrivatBank's and
//!   Monobank's APIs, window by window, and how far each bank got
//!   (`paysys_statement_pull`).
//!
//! Every format becomes [`StatementRow`]s. Rules every module keeps:
//!
//! 1. A row the parser cannot read does not stop the file: it becomes a [`RowError`] that
//!    says which row, where, and what is wrong, and the rows after it are still read. Only
//!    a file that is not the format at all (no `1CClientBankExchange` header, not JSON, a
//!    CSV without the preset's columns, a bank's error answer) is an [`Error`].
//! 2. Amounts are [`Amount`] (integer kopecks, always positive here) read from the exact
//!    text or integer the bank wrote, never through a float; the sign is
//!    [`Direction`].
//! 3. Every row has a [`RowId`]: the bank's own id where the format has one, else one
//!    derived from the row's content ([`RowId::derived`]), stable across re-exports.
//! 4. Text files are read line by line from a `BufRead`, so a 50 000-row file costs one
//!    line of memory, not the file twice. The JSON answers are one page each, read whole.
//! 5. Hostile input (not UTF-8, huge lines, broken quoting, numbers past `i64`) is an error
//!    value, never a panic.

pub mod csv;
pub mod import;
pub mod matching;
pub mod monobank;
pub mod onec;
pub mod privat;
pub mod pull;
pub mod store;

use std::fmt;
use std::io::{self, BufRead};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use sha2::{Digest, Sha256};

use crate::domain::Amount;

/// The formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `1CClientBankExchange`, any version.
    OneC,
    /// PrivatBank Autoclient API, one page of `transactions`.
    Privat,
    /// Monobank's personal/FOP statement, a JSON array.
    Monobank,
    /// A bank's CSV export, read through a [`csv::CsvPreset`].
    Csv,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::OneC => "1CClientBankExchange",
            Format::Privat => "PrivatBank Autoclient",
            Format::Monobank => "Monobank statement",
            Format::Csv => "CSV",
        })
    }
}

/// Which format `head` — the first bytes of a file or an API answer; 4 KiB is plenty, the
/// whole body is fine — is in. A 1C file by its `1CClientBankExchange` first line (after a
/// UTF-8 BOM and blank lines, in any case); PrivatBank by a JSON object with a
/// `"transactions"` or `"status"` key; Monobank by a JSON array whose first object has
/// `"id"`, `"time"` and `"amount"` keys (or an empty array: a statement with no rows).
///
/// `None` for everything else: a CSV has no signature of its own, so it is read as CSV
/// only when the admin names a preset for it ([`csv::Reader`]).
pub fn detect(head: &[u8]) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &head[start..];
    if onec::is_header_line(text) {
        return Some(Format::OneC);
    }
    let has = |key: &[u8]| text.windows(key.len()).any(|w| w == key);
    match text.first() {
        Some(b'{') if has(b"\"transactions\"") || has(b"\"status\"") => Some(Format::Privat),
        Some(b'[') => {
            let rest = &text[1..];
            let next = rest.iter().find(|b| !b.is_ascii_whitespace());
            match next {
                Some(b']') => Some(Format::Monobank),
                Some(b'{') if has(b"\"id\"") && has(b"\"time\"") && has(b"\"amount\"") => {
                    Some(Format::Monobank)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Money into our account or out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Money came in: the only direction a subscriber's payment can have.
    Credit,
    /// Money went out: the bank's commission, a refund, a transfer we made.
    Debit,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        })
    }
}

/// A row's id: the key, with our bank account, that credits a row exactly once however
/// many times the statement is imported.
///
/// * PrivatBank: `REF` + `.` + `REFN`, falling back to `ID` when `REF` is empty. `REF` is
///   the bank's reference of the payment document and `REFN` numbers the rows one document
///   makes (a payment and its commission share a `REF`); the pair is what stays the same
///   when an operation moves from the interim statement to the final one, which is why
///   PrivatBank's own clients deduplicate on it. `ID` is a row number in the bank's
///   answer, kept only for rows without a `REF`.
/// * Monobank: `id`.
/// * 1C and CSV: the formats have no row id; one is derived from the row's content
///   ([`RowId::derived`]).
///
/// At most [`RowId::MAX_LEN`] printable ASCII characters with no spaces, so it fits a
/// `VARCHAR(64)` and a log line unquoted. A bank id that does not fit is replaced by a
/// digest of itself ([`RowId::from_bank`]), which is just as stable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(String);

impl RowId {
    pub const MAX_LEN: usize = 64;

    /// The bank's own id. Trimmed; refused when empty. An id longer than
    /// [`RowId::MAX_LEN`] or with characters outside printable ASCII becomes `x:` and 32
    /// hex digits of its SHA-256: still one id per bank id, and still the same on the next
    /// import.
    pub fn from_bank(text: &str) -> Result<RowId, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the bank's row id is empty".into());
        }
        if text.len() <= Self::MAX_LEN && text.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(RowId(text.to_string()));
        }
        Ok(RowId(format!("x:{}", hex32(&[text]))))
    }

    /// An id for a format without one: `tag` (`1c`, `csv`), `:`, and the first 32 hex
    /// digits (128 bits) of SHA-256 over `fields`, each [normalised](normalise) and joined
    /// by the unit separator (U+001F, which no normalised field holds, so two different
    /// field lists never join into the same text).
    ///
    /// Normalising before hashing is what makes the same payment give the same id from a
    /// cp1251 and a UTF-8 export, with CRLF or LF, with a purpose wrapped differently: the
    /// digest is over the decoded text, not the bytes. Which fields go in is the format's
    /// choice; [`onec`] and [`csv`] say why each one is there.
    pub fn derived(tag: &str, fields: &[&str]) -> RowId {
        let normalised: Vec<String> = fields.iter().map(|f| normalise(f)).collect();
        let refs: Vec<&str> = normalised.iter().map(String::as_str).collect();
        RowId(format!("{tag}:{}", hex32(&refs)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text as it goes into a derived id: trimmed, every run of whitespace (spaces, NBSP, tabs,
/// CR, LF) one space, control characters dropped.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            space = true;
        } else if !c.is_control() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

fn hex32(fields: &[&str]) -> String {
    let mut sha = Sha256::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            sha.update([0x1F]);
        }
        sha.update(field.as_bytes());
    }
    let digest = sha.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// One row of a statement, whatever format it came in.
///
/// "Payer" is the other side of the operation: for a credit the one who paid us, for a
/// debit the one we paid (PrivatBank's `AUT_CNTR_*`, Monobank's `counter*`, the 1C
/// document's receiver when the payer is us).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    pub id: RowId,
    /// Where the row was in its file: the 1-based row (document, record, array element)
    /// number, for the admin's listing.
    pub row: usize,
    /// The day the money moved, in the bank's local time: the posting day where the format
    /// has one (1C's `ДатаПоступило`, PrivatBank's `DAT_OD`), else the document's date.
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
    /// Always more than zero; [`direction`](Self::direction) is the sign.
    pub amount: Amount,
    pub direction: Direction,
    /// ISO 4217 letters (`UAH`, `KZT`, `RUB`, `USD`, …), see [`currency`]; `None` when the
    /// format does not say (1C; a CSV preset without a currency column): the currency of
    /// the account the statement is for.
    pub currency: Option<String>,
    /// The payment's purpose as the payer wrote it; empty when there is none.
    pub purpose: String,
    /// Empty when the bank gives none.
    pub payer_name: String,
    /// ЄДРПОУ (8 digits), РНОКПП or a Russian company's ИНН (10), БИН/ИИН or a Russian
    /// person's ИНН (12): digits only. `None` when absent or not one of these (banks write
    /// `0` or `0000000000` for a payer without one), see [`payer_code`].
    pub payer_code: Option<String>,
    /// The other side's IBAN or ИИК, upper case, no spaces.
    pub payer_account: Option<String>,
    /// Our account the row is on, upper case, no spaces, when the row says.
    pub our_account: Option<String>,
    /// Booked by the bank. `false`: PrivatBank's `PR_PR` other than `r`, Monobank's
    /// `hold`, a 1C document whose posting date is empty. The importer waits for such a
    /// row to come back posted.
    pub posted: bool,
}

/// A row that could not be read. The file goes on; the importer lists this with its
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based, counted like [`StatementRow::row`].
    pub row: usize,
    /// The line the row starts on, for text files.
    pub line: Option<u64>,
    /// The row's id, when it was read before the error.
    pub id: Option<RowId>,
    /// What is wrong, naming the key or column.
    pub why: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(id) = &self.id {
            write!(f, " id {id}")?;
        }
        write!(f, ": {}", self.why)
    }
}

impl std::error::Error for RowError {}

/// Why a whole file or answer was refused (rows that cannot be read are [`RowError`]s
/// instead).
#[derive(Debug)]
pub enum Error {
    /// Not the format we were asked to read: what was expected and what was found.
    NotFormat { format: Format, why: String },
    /// The bank answered with an error instead of a statement: its own words.
    Refused { format: Format, message: String },
    /// A CSV preset that cannot read any file: which preset and what to fix.
    Preset { name: String, why: String },
    /// The file could not be read (after `line` lines, when known).
    Io { line: u64, source: io::Error },
    /// A 1C file that ends without `КонецФайла`: it was cut short (a download or a copy
    /// that did not finish), so rows may be missing after the last one read.
    Truncated { format: Format, line: u64 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFormat { format, why } => write!(f, "not a {format} file: {why}"),
            Error::Refused { format, message } => {
                write!(f, "{format}: the bank refused: {message}")
            }
            Error::Preset { name, why } => write!(f, "CSV preset '{name}': {why}"),
            Error::Io { line, source } => {
                write!(
                    f,
                    "reading the statement failed after line {line}: {source}"
                )
            }
            Error::Truncated { format, line } => write!(
                f,
                "{format}: the file ends at line {line} without its end marker: it was cut \
                 short, rows after the last one read may be missing; export or download it \
                 again"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// At most 64 characters of `text`, control characters replaced, for an error message.
pub(crate) fn clip(text: &str) -> String {
    crate::card::clip(text)
}

/// Which decimal mark a sum may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalMark {
    /// `.` decimal; `,` groups thousands (`1,234.56`).
    Point,
    /// `,` decimal (`1 234,56`); a `.` is refused.
    Comma,
    /// Either `.` or `,` is the decimal mark (1C files); no thousands mark but spaces.
    Either,
}

/// A sum as text banks write it: digits, an optional decimal mark and one or two decimals,
/// thousands grouped by spaces or NBSP (`1 234,56`), or by `,` when the mark is a point.
/// Never through a float: `1.234` (three decimals: a thousands dot or a typo, we cannot
/// tell) and `1e3` are refused, not guessed. Zero is a valid sum here; a sign is not (see
/// [`parse_signed_sum`]).
pub(crate) fn parse_sum(text: &str, mark: DecimalMark) -> Result<Amount, String> {
    unsigned_sum(text, mark).map_err(|why| format!("'{}' is not a sum: {why}", clip(text)))
}

fn unsigned_sum(text: &str, mark: DecimalMark) -> Result<Amount, String> {
    let bad = |why: &str| Err(why.to_string());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return bad("empty");
    }
    if trimmed.starts_with(['-', '+']) {
        return bad("a sign is not allowed here");
    }
    let (int_part, frac_part) = match mark {
        DecimalMark::Point => match trimmed.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (trimmed, None),
        },
        DecimalMark::Comma => {
            if trimmed.contains('.') {
                return bad("a '.' where this file writes decimals after ','");
            }
            match trimmed.split_once(',') {
                Some((i, f)) => (i, Some(f)),
                None => (trimmed, None),
            }
        }
        DecimalMark::Either => match trimmed.find(['.', ',']) {
            Some(at) => (&trimmed[..at], Some(&trimmed[at + 1..])),
            None => (trimmed, None),
        },
    };
    // Thousands: groups after the first have exactly 3 digits.
    let is_group_mark = |c: char| {
        c == ' ' || c == '\u{A0}' || c == '\u{202F}' || (mark == DecimalMark::Point && c == ',')
    };
    let mut digits = String::with_capacity(int_part.len());
    for (i, group) in int_part.split(is_group_mark).enumerate() {
        let ok_len = if i == 0 {
            (1..=3).contains(&group.len()) || !int_part.contains(is_group_mark)
        } else {
            group.len() == 3
        };
        if !ok_len || !group.bytes().all(|b| b.is_ascii_digit()) {
            return bad("only digits, one decimal mark and thousands grouped by three");
        }
        digits.push_str(group);
    }
    let exact = match frac_part {
        None => digits,
        Some(frac) => {
            if frac.contains(['.', ',']) {
                return bad("more than one decimal mark");
            }
            format!("{digits}.{frac}")
        }
    };
    Amount::parse(&exact).map_err(|e| e.to_string())
}

/// A sum that may carry a sign (`-150.00`, `+100`, `−5`): the sign says the direction.
/// Returns the absolute amount and whether it was negative.
pub(crate) fn parse_signed_sum(text: &str, mark: DecimalMark) -> Result<(Amount, bool), String> {
    let trimmed = text.trim();
    let (negative, rest) = if let Some(r) = trimmed.strip_prefix(['-', '\u{2212}']) {
        (true, r)
    } else if let Some(r) = trimmed.strip_prefix('+') {
        (false, r)
    } else {
        (false, trimmed)
    };
    let sum = if rest.starts_with(['-', '+', '\u{2212}']) {
        Err("two signs".to_string())
    } else {
        unsigned_sum(rest, mark)
    };
    sum.map(|a| (a, negative))
        .map_err(|why| format!("'{}' is not a sum: {why}", clip(text)))
}

/// ISO 4217 letters for a currency as banks write it: letters (`uah` → `UAH`), the numeric
/// code (`980` → `UAH`, Monobank's `currencyCode`), or the local abbreviation (`грн`,
/// `тг`, `руб`). `RUR`, the code Russian banks kept after 1998, is `RUB`. A numeric code
/// not in our table is kept as its three digits (`"978"` stays readable to the admin and
/// never equals an account's `UAH`).
pub fn currency(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the currency is empty".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let code: u32 = t
            .parse()
            .map_err(|_| format!("currency code '{}' is not ISO 4217", clip(t)))?;
        let letters = match code {
            980 => "UAH",
            398 => "KZT",
            643 | 810 => "RUB",
            840 => "USD",
            978 => "EUR",
            985 => "PLN",
            826 => "GBP",
            756 => "CHF",
            933 => "BYN",
            860 => "UZS",
            417 => "KGS",
            498 => "MDL",
            981 => "GEL",
            944 => "AZN",
            51 => "AMD",
            972 => "TJS",
            156 => "CNY",
            949 => "TRY",
            203 => "CZK",
            _ if code <= 999 => return Ok(format!("{code:03}")),
            _ => return Err(format!("currency code '{}' is not ISO 4217", clip(t))),
        };
        return Ok(letters.to_string());
    }
    let upper = t.to_uppercase();
    let upper = upper.trim_end_matches('.');
    match upper {
        "ГРН" | "ГРИВНЯ" => return Ok("UAH".into()),
        "ТГ" | "ТЕНГЕ" | "₸" => return Ok("KZT".into()),
        "РУБ" | "RUR" | "₽" => return Ok("RUB".into()),
        "$" => return Ok("USD".into()),
        "€" => return Ok("EUR".into()),
        "₴" => return Ok("UAH".into()),
        _ => {}
    }
    if upper.len() == 3 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok(upper.to_string());
    }
    Err(format!(
        "'{}' is not a currency (expected ISO letters like UAH or a code like 980)",
        clip(t)
    ))
}

/// A payer's tax code, digits only: 8 (ЄДРПОУ), 10 (РНОКПП, a Russian company's ИНН) or
/// 12 (Kazakh БИН/ИИН, a Russian person's ИНН). Spaces are dropped. Anything else — empty,
/// `0`, all zeros (what banks write for a payer with no code), letters, another length —
/// is `None`: a code the importer matches subscribers by must be a real one.
pub fn payer_code(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !matches!(digits.len(), 8 | 10 | 12)
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.bytes().all(|b| b == b'0')
    {
        return None;
    }
    Some(digits)
}

/// An account number as rows carry it: upper case, no spaces; `None` when empty.
pub fn account(text: &str) -> Option<String> {
    let out: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    Some(out).filter(|a| !a.is_empty())
}

/// A day as banks write it: `DD.MM.YYYY`, `YYYY-MM-DD`, also `DD/MM/YYYY` and `DD.MM.YY`;
/// a time after a space or `T` is returned too (`05.12.2026 14:03`, `…:05`).
pub(crate) fn parse_date_time(text: &str) -> Option<(NaiveDate, Option<NaiveTime>)> {
    let t = text.trim();
    let (day, time) = match t.split_once([' ', 'T']) {
        Some((d, rest)) => (d, Some(rest.trim())),
        None => (t, None),
    };
    let date = ["%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(day, f).ok())?;
    let time = match time {
        None | Some("") => None,
        Some(t) => Some(parse_time(t)?),
    };
    Some((date, time))
}

/// `HH:MM` or `HH:MM:SS`.
pub(crate) fn parse_time(text: &str) -> Option<NaiveTime> {
    let t = text.trim();
    NaiveTime::parse_from_str(t, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
        .ok()
}

/// Kyiv's local time for a UTC time, by the rule Ukraine has kept since 1996, the EU's:
/// UTC+3 (EEST) from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday
/// of October, UTC+2 (EET) otherwise. A few lines instead of a time-zone database
/// (chrono-tz is not in the build); should Ukraine drop summer time, this is the one
/// place to change. `None` only at the very end of chrono's calendar.
pub fn kyiv_time(utc: NaiveDateTime) -> Option<NaiveDateTime> {
    let year = utc.date().year();
    // 01:00 UTC on the last Sunday of `month`.
    let switch = |month: u32| {
        let last = NaiveDate::from_ymd_opt(year, month, 31)?.and_hms_opt(1, 0, 0)?;
        let back = i64::from(last.weekday().num_days_from_sunday());
        last.checked_sub_signed(Duration::days(back))
    };
    let summer = match (switch(3), switch(10)) {
        (Some(start), Some(end)) => utc >= start && utc < end,
        _ => false,
    };
    utc.checked_add_signed(Duration::hours(if summer { 3 } else { 2 }))
}

/// The longest line (or CSV record) we read: real statement lines are short; a file with
/// no line breaks must not become one string of its whole size.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Lines of a `BufRead`, as bytes without the line end (LF or CRLF), one buffer reused.
/// A line longer than [`MAX_LINE`] is cut there and reported as such, the rest of it
/// skipped, so memory stays at one line whatever the input.
pub(crate) struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    /// Lines read so far: the number of the line in `buf`.
    pub(crate) number: u64,
    done: bool,
}

/// One line from [`Lines::next_line`].
pub(crate) struct Line<'a> {
    pub(crate) bytes: &'a [u8],
    /// The line was longer than [`MAX_LINE`]; `bytes` is its start.
    pub(crate) too_long: bool,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(input: R) -> Lines<R> {
        Lines {
            input,
            buf: Vec::new(),
            number: 0,
            done: false,
        }
    }

    /// The next line, `None` at the end of the input.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                self.done = true;
                break;
            }
            any = true;
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE.saturating_sub(self.buf.len());
            if take > room {
                too_long = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            self.input.consume(if end { take + 1 } else { take });
            if end {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Line {
            bytes: &self.buf,
            too_long,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_or_refused() {
        use DecimalMark::*;
        let table: &[(&str, DecimalMark, Option<i64>)] = &[
            ("0.01", Either, Some(1)),
            ("0,01", Either, Some(1)),
            ("100", Either, Some(10000)),
            ("100.5", Either, Some(10050)),
            ("1 234,56", Either, Some(123456)),
            ("1\u{A0}234,56", Comma, Some(123456)),
            ("12 345 678.90", Either, Some(1234567890)),
            ("1,234.56", Point, Some(123456)),
            ("154000.00", Point, Some(15400000)),
            (" 42.00 ", Point, Some(4200)),
            ("0", Either, Some(0)),
            ("1.234", Either, None),
            ("1.234", Point, None),
            ("1,234", Either, None),
            ("1.5", Comma, None),
            ("1 23,00", Either, None),
            ("12 34", Either, None),
            ("1,2,3", Either, None),
            ("-5", Either, None),
            ("+5", Either, None),
            ("1e3", Either, None),
            ("", Either, None),
            (",5", Either, None),
            ("5.", Either, None),
            ("NaN", Either, None),
            ("１２", Either, None),
            ("99999999999999", Either, None),
        ];
        for (text, mark, want) in table {
            let got = parse_sum(text, *mark).map(Amount::kopecks).ok();
            assert_eq!(got, *want, "{text:?} {mark:?}");
        }
        assert_eq!(
            parse_signed_sum("-150,00", Comma).map(|(a, n)| (a.kopecks(), n)),
            Ok((15000, true))
        );
        assert_eq!(
            parse_signed_sum("+1 000", Comma).map(|(a, n)| (a.kopecks(), n)),
            Ok((100000, false))
        );
        assert!(parse_signed_sum("--5", Point).is_err());
        let why = parse_sum("1.234", Either).unwrap_err();
        assert!(why.contains("'1.234'") && why.contains("2 digits"), "{why}");
    }

    #[test]
    fn currencies_are_normalised() {
        for (text, want) in [
            ("UAH", "UAH"),
            ("uah", "UAH"),
            ("980", "UAH"),
            ("398", "KZT"),
            ("643", "RUB"),
            ("RUR", "RUB"),
            ("грн", "UAH"),
            ("Грн.", "UAH"),
            ("840", "USD"),
            ("051", "AMD"),
            ("999", "999"),
        ] {
            assert_eq!(currency(text).as_deref(), Ok(want), "{text}");
        }
        for bad in ["", "1000", "US", "долар", "U$D"] {
            assert!(currency(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payer_codes_are_real_ones_or_none() {
        assert_eq!(payer_code("12345678").as_deref(), Some("12345678"));
        assert_eq!(payer_code(" 3012345678 ").as_deref(), Some("3012345678"));
        assert_eq!(payer_code("123456789012").as_deref(), Some("123456789012"));
        for none in [
            "",
            "0",
            "0000000000",
            "1234567",
            "123456789",
            "12345678A",
            "１２３",
        ] {
            assert_eq!(payer_code(none), None, "{none}");
        }
    }

    #[test]
    fn derived_ids_hash_normalised_text() {
        let a = RowId::derived(
            "1c",
            &["2026-12-05", "17", "100.00", "Плата за\r\nінтернет"],
        );
        let b = RowId::derived(
            "1c",
            &[" 2026-12-05", "17", "100.00", "Плата за \n інтернет "],
        );
        assert_eq!(a, b);
        assert!(a.as_str().starts_with("1c:") && a.as_str().len() == 3 + 32);
        let c = RowId::derived("1c", &["2026-12-05", "18", "100.00", "Плата за інтернет"]);
        assert_ne!(a, c);
        // Field boundaries count: moving text from one field to the next is another id.
        assert_ne!(
            RowId::derived("csv", &["ab", "c"]),
            RowId::derived("csv", &["a", "bc"])
        );
    }

    #[test]
    fn bank_ids_are_kept_or_digested() {
        assert_eq!(RowId::from_bank(" J24A.1 ").unwrap().as_str(), "J24A.1");
        assert!(RowId::from_bank("  ").is_err());
        let long = "x".repeat(65);
        let id = RowId::from_bank(&long).unwrap();
        assert!(id.as_str().starts_with("x:") && id.as_str().len() == 34);
        assert_eq!(id, RowId::from_bank(&long).unwrap());
        assert!(RowId::from_bank("з пробілом")
            .unwrap()
            .as_str()
            .starts_with("x:"));
    }

    #[test]
    fn kyiv_time_follows_summer_time() {
        let utc = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        let table = [
            // Winter: +2; the last day of the year moves to the next one.
            ("2026-12-31 22:30:00", "2027-01-01 00:30:00"),
            ("2026-01-15 10:00:00", "2026-01-15 12:00:00"),
            // 2026: summer time from Sunday 29 March 01:00 UTC to Sunday 25 October.
            ("2026-03-29 00:59:59", "2026-03-29 02:59:59"),
            ("2026-03-29 01:00:00", "2026-03-29 04:00:00"),
            ("2026-07-01 21:30:00", "2026-07-02 00:30:00"),
            ("2026-10-25 00:59:59", "2026-10-25 03:59:59"),
            ("2026-10-25 01:00:00", "2026-10-25 03:00:00"),
        ];
        for (from, want) in table {
            assert_eq!(kyiv_time(utc(from)), Some(utc(want)), "{from}");
        }
    }

    #[test]
    fn dates_in_the_forms_banks_write() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s);
        assert_eq!(parse_date_time("05.12.2026"), Some((d(2026, 12, 5), None)));
        assert_eq!(parse_date_time("2026-12-05"), Some((d(2026, 12, 5), None)));
        assert_eq!(
            parse_date_time("05.12.2026 14:03"),
            Some((d(2026, 12, 5), t(14, 3, 0)))
        );
        assert_eq!(
            parse_date_time("2026-12-05T14:03:09"),
            Some((d(2026, 12, 5), t(14, 3, 9)))
        );
        for bad in ["", "32.12.2026", "05.12.2026 25:00", "вчора", "2026/12/05"] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn detects_formats_by_their_own_marks() {
        assert_eq!(
            detect(b"\xEF\xBB\xBF1CClientBankExchange\r\n"),
            Some(Format::OneC)
        );
        assert_eq!(detect(b"\n1cclientbankexchange\n"), Some(Format::OneC));
        assert_eq!(
            detect(br#"{"status":"SUCCESS","type":"transactions","transactions":[]}"#),
            Some(Format::Privat)
        );
        assert_eq!(
            detect(br#"{"status":"ERROR","message":"x"}"#),
            Some(Format::Privat)
        );
        assert_eq!(
            detect(br#" [ {"id":"a","time":1,"amount":100} ]"#),
            Some(Format::Monobank)
        );
        assert_eq!(detect(b"[]"), Some(Format::Monobank));
        assert_eq!(detect(b"[1,2]"), None);
        assert_eq!(detect("ДАТА;ЧАС;НОМЕР".as_bytes()), None);
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"{\"a\":1}"), None);
    }

    #[test]
    fn lines_split_on_lf_and_crlf_and_cap_long_ones() {
        let text = format!("a\r\nb\n\nc{}\nlast", "x".repeat(MAX_LINE + 10));
        let mut lines = Lines::new(text.as_bytes());
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            got.push((line.bytes.len(), line.too_long, lines.number));
        }
        assert_eq!(
            got,
            vec![
                (1, false, 1),
                (1, false, 2),
                (0, false, 3),
                (MAX_LINE, true, 4),
                (4, false, 5)
            ]
        );
    }
}
