//! `paysys reconcile`: a provider's daily registry of successful payments against what we
//! credited.
//!
//! The registry is a CSV file whose header row names the columns (`txn_id`, `sum`, `date`,
//! `account` unless told otherwise). It is read one record at a time ([`Registry`]); the
//! database is asked once for the day ([`credited_on`]) and once more, in batches, for the
//! registry's txn ids that the day does not hold ([`credited_among`]), both inside one
//! read-only transaction.
//!
//! **The day is `txn_date`'s.** A provider's registry lists payments by its own payment
//! time, and that is what it sent us as `txn_date`; `created` (when we committed) can fall on
//! the next day for a payment made just before midnight or retried later. A registry row whose
//! txn id we hold with a `txn_date` on another day is reported as "on another day", not as
//! missing: it was credited, once.
//!
//! What the [`Reconciler`] finds, row by row:
//! - missing on our side: in the registry, not in `paysys_txn` at all;
//! - missing on their side: credited by us that day (not cancelled), not in the registry;
//! - mismatch: the same txn id with another sum or account;
//! - cancelled: cancelled by us, yet in their registry of successful payments;
//! - on another day: see above;
//! - twice in the registry: a txn id on two lines of the file.
//!
//! Sums are [`Amount`]s (integer kopecks); totals add them up in `i128`, exactly.
//!
//! On a terminal, a [`Progress`] line counts our rows as they come, the registry's lines
//! as they are read and the txn ids looked up on other days; nothing when stderr is not a
//! terminal.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use mysql::prelude::Queryable;
use mysql::{AccessMode, Conn, TxOpts};

use crate::config::Config;
use crate::domain::{parse_balance, Amount, AmountError, TxnId};
use crate::progress::{count, Progress};

/// Exit codes: the registry and we agree, they differ, or the run failed.
pub const AGREE: u8 = 0;
pub const DIFFER: u8 = 1;
pub const ERROR: u8 = 2;

/// How many txn ids one `IN (…)` asks about.
const BATCH: usize = 1000;

pub const USAGE: &str =
    "usage: paysys reconcile REGISTRY --system S --date YYYY-MM-DD [--config CONFIG] [OPTIONS]

Compares a provider's registry of one day's successful payments (a CSV file) with what we
credited for system S that day: the paysys_txn rows of S whose txn_date falls on the date,
not cancelled. The day is the payment's txn_date (the provider's own payment time, as the
registry has it), not the time we committed it.

Lists what is in the registry but not credited by us, what we credited but the registry
lacks, the same txn_id with another sum or account, payments we cancelled that the
registry still has, registry rows we credited on another day, txn_ids the registry has
twice; then count and sum on each side.

  REGISTRY           the CSV file; its first line names the columns
  --system S         the payment system, as named in the config ([[system]] name)
  --date YYYY-MM-DD  the registry's day
  --config CONFIG    default: $PAYSYS_CONFIG, or ../etc/paysys.toml next to this program

OPTIONS, for how the registry is written:
  --txn-column C     the header name (any letter case) or 1-based number of the column
  --sum-column C       holding the txn id, the sum, the payment time and the account;
  --date-column C      defaults txn_id, sum, date, account. The date is shown, not
  --account-column C   compared. Date and account columns may be absent unless named
                       (without one, accounts are not compared)
  --delimiter D      ',' ';' '|' or tab (also 'tab'); default: whichever of ',' ';' tab
                     the header line has most of
  --encoding E       utf-8 (default; a byte order mark is skipped) or windows-1251

A Portmone <PAY_ORDERS> document (the settlement listing Portmone posts, saved as XML or
as the data=… form it came in) is read as the registry instead: BILL_ID, PAYED_AMOUNT,
PAY_DATE and PAYER/CONTRACT_NUMBER of each BILL, whatever the column options say.

Sums are digits with up to 2 decimals after '.' or ',' (10, 10.5, 10,25); a sum with a
comma in a ','-separated file must be quoted (\"10,25\"). Quoted fields may hold the
delimiter, line breaks and doubled quotes. Blank lines are skipped; CRLF or LF.

The database is only read (SELECT on paysys_txn). When stderr is a terminal, one line
there shows what is being read, wiped before the report; otherwise only errors go there.
Exit status: 0 they agree, 1 they differ, 2 usage, config, database or file error.";

/// The registry's text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1251,
}

impl Encoding {
    pub fn parse(text: &str) -> Option<Encoding> {
        match text.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "windows-1251" | "cp1251" | "win1251" => Some(Encoding::Windows1251),
            _ => None,
        }
    }

    /// One line's bytes (without its line break) as text.
    fn decode(self, bytes: &[u8]) -> Result<String, String> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if self == Encoding::Utf8 || bytes.is_ascii() {
                return Ok(text.to_string());
            }
        }
        match self {
            Encoding::Utf8 => {
                let at = std::str::from_utf8(bytes)
                    .err()
                    .map_or(0, |e| e.valid_up_to() + 1);
                Err(format!(
                    "not UTF-8 text (byte {at} of the line): a registry saved by Excel on \
                     Windows is usually Windows-1251; add --encoding windows-1251"
                ))
            }
            Encoding::Windows1251 => bytes
                .iter()
                .map(|&b| {
                    crate::cp1251::char_of(b).ok_or_else(|| {
                        "byte 0x98 is not Windows-1251 text: is this the file's encoding? \
                         Try --encoding utf-8"
                            .to_string()
                    })
                })
                .collect(),
        }
    }
}

/// A column of the registry: a header name (any letter case) or a 1-based number; `given`
/// when the admin named it, which makes it required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub given: bool,
}

impl Column {
    fn default(name: &str) -> Column {
        Column {
            name: name.to_string(),
            given: false,
        }
    }
}

/// Which columns hold what, and how the file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    pub txn: Column,
    pub sum: Column,
    pub date: Column,
    pub account: Column,
    /// `None`: whichever of `,` `;` tab the header line has most of.
    pub delimiter: Option<char>,
    pub encoding: Encoding,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            txn: Column::default("txn_id"),
            sum: Column::default("sum"),
            date: Column::default("date"),
            account: Column::default("account"),
            delimiter: None,
            encoding: Encoding::Utf8,
        }
    }
}

/// What went wrong reading the registry, and on which line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    pub line: u64,
    pub why: String,
}

impl RegistryError {
    fn at(line: u64, why: impl Into<String>) -> RegistryError {
        RegistryError {
            line,
            why: why.into(),
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// One payment of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file's line the record starts on.
    pub line: u64,
    pub txn_id: String,
    pub sum: Amount,
    /// `None` when the registry has no account column.
    pub account: Option<String>,
    pub date: Option<String>,
}

/// A registry sum: [`Amount::parse`]'s text, or the same with a decimal comma (`10,25`), as
/// spreadsheet exports write it.
pub fn parse_sum(text: &str) -> Result<Amount, String> {
    let dotted;
    let text = if !text.contains('.') && text.matches(',').count() == 1 {
        dotted = text.replacen(',', ".", 1);
        dotted.as_str()
    } else {
        text
    };
    Amount::parse(text).map_err(|e| match e {
        AmountError::TooLarge => format!("{e}"),
        AmountError::Malformed(why) => format!(
            "{why} (a sum is digits with up to 2 decimals after '.' or ',', no sign, no spaces)"
        ),
    })
}

/// Where each value is in a record.
#[derive(Debug, Clone, Copy)]
struct Indexes {
    txn: usize,
    sum: usize,
    date: Option<usize>,
    account: Option<usize>,
}

/// The registry, read one record at a time.
pub struct Registry<R> {
    input: R,
    encoding: Encoding,
    delimiter: char,
    /// Physical lines read so far.
    line: u64,
    /// Bytes read so far.
    bytes: u64,
    buf: Vec<u8>,
    header: Vec<String>,
    at: Indexes,
}

/// The delimiter a header line uses: the most frequent of `;` `,` tab outside quotes.
fn detect_delimiter(header: &str) -> Option<char> {
    let mut counts = [(';', 0usize), (',', 0), ('\t', 0)];
    let mut quoted = false;
    for c in header.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            for (d, n) in counts.iter_mut() {
                if c == *d {
                    *n += 1;
                }
            }
        }
    }
    // Ties go to the first: ';' before ',' (a ';' file's text may hold commas).
    let (d, n) = counts.iter().fold(
        (';', 0),
        |best, &(d, n)| if n > best.1 { (d, n) } else { best },
    );
    (n > 0).then_some(d)
}

fn delimiter_name(d: char) -> String {
    match d {
        '\t' => "tab".to_string(),
        d => format!("'{d}'"),
    }
}

impl<R: BufRead> Registry<R> {
    /// Reads the header line and finds the columns.
    pub fn open(input: R, options: &ReadOptions) -> Result<Registry<R>, RegistryError> {
        let mut registry = Registry {
            input,
            encoding: options.encoding,
            delimiter: options.delimiter.unwrap_or(','),
            line: 0,
            bytes: 0,
            buf: Vec::new(),
            header: Vec::new(),
            at: Indexes {
                txn: 0,
                sum: 0,
                date: None,
                account: None,
            },
        };
        let (first, start) = loop {
            match registry.next_line()? {
                None => {
                    return Err(RegistryError::at(
                        registry.line.max(1),
                        "the file is empty: a registry starts with a header line naming its \
                         columns (txn_id;sum;date;account)",
                    ))
                }
                Some(l) if l.trim().is_empty() => continue,
                Some(l) => break (l, registry.line),
            }
        };
        registry.delimiter = match options.delimiter {
            Some(d) => d,
            None => detect_delimiter(&first).ok_or_else(|| {
                RegistryError::at(
                    start,
                    format!(
                        "the header '{}' has no ',' ';' or tab between column names: \
                         give the delimiter with --delimiter",
                        first.trim()
                    ),
                )
            })?,
        };
        let header: Vec<String> = registry
            .read_record(first, start)?
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let split_at = delimiter_name(registry.delimiter);
        let find = |column: &Column, option: &str, required: bool| {
            find_column(&header, column, option, required, &split_at)
                .map_err(|why| RegistryError::at(start, why))
        };
        let txn = find(&options.txn, "--txn-column", true)?.unwrap_or(0);
        let sum = find(&options.sum, "--sum-column", true)?.unwrap_or(0);
        let date = find(&options.date, "--date-column", options.date.given)?;
        let account = find(&options.account, "--account-column", options.account.given)?;
        registry.at = Indexes {
            txn,
            sum,
            date,
            account,
        };
        registry.header = header;
        Ok(registry)
    }

    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    pub fn has_account(&self) -> bool {
        self.at.account.is_some()
    }

    /// Lines of the file read so far, the header's included.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Bytes of the file read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The header names of the columns in use: txn id, sum, date, account.
    pub fn columns(&self) -> Vec<&str> {
        [
            Some(self.at.txn),
            Some(self.at.sum),
            self.at.date,
            self.at.account,
        ]
        .into_iter()
        .flatten()
        .map(|i| self.header[i].as_str())
        .collect()
    }

    /// The next payment; `None` at the end of the file.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, RegistryError> {
        let (first, start) = loop {
            match self.next_line()? {
                None => return Ok(None),
                Some(l) if l.trim().is_empty() => continue,
                Some(l) => break (l, self.line),
            }
        };
        let fields = self.read_record(first, start)?;
        if fields.len() != self.header.len() {
            return Err(RegistryError::at(
                start,
                format!(
                    "{} fields, the header has {} (delimiter {}): a sum with a decimal comma \
                     in a ','-separated file must be quoted (\"10,25\"); fix the line, or give \
                     --delimiter if it is not {}",
                    fields.len(),
                    self.header.len(),
                    delimiter_name(self.delimiter),
                    delimiter_name(self.delimiter),
                ),
            ));
        }
        let value = |i: usize| fields[i].trim();
        let named = |i: usize| self.header[i].as_str();
        let txn_id = TxnId::parse(value(self.at.txn)).map_err(|e| {
            RegistryError::at(
                start,
                format!(
                    "{} '{}': {e}; a txn id is the provider's payment number, 1 to 20 digits \
                     (a total or comment line must be removed from the file)",
                    named(self.at.txn),
                    value(self.at.txn)
                ),
            )
        })?;
        let sum = parse_sum(value(self.at.sum)).map_err(|why| {
            RegistryError::at(
                start,
                format!("{} '{}': {why}", named(self.at.sum), value(self.at.sum)),
            )
        })?;
        Ok(Some(Entry {
            line: start,
            txn_id: txn_id.as_str().to_string(),
            sum,
            account: self.at.account.map(|i| value(i).to_string()),
            date: self.at.date.map(|i| value(i).to_string()),
        }))
    }

    /// The next physical line as text, without its line break (LF or CRLF) and, on the first
    /// line, without a UTF-8 byte order mark.
    fn next_line(&mut self) -> Result<Option<String>, RegistryError> {
        self.buf.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| RegistryError::at(self.line + 1, format!("cannot be read: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        self.bytes += n as u64;
        let mut bytes = self.buf.as_slice();
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if self.line == 1 {
            if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
                return Err(RegistryError::at(
                    1,
                    "UTF-16 text: save the registry as CSV in UTF-8 or Windows-1251 \
                     (or convert it: iconv -f UTF-16 -t UTF-8)",
                ));
            }
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                if self.encoding == Encoding::Windows1251 {
                    return Err(RegistryError::at(
                        1,
                        "the file starts with a UTF-8 byte order mark: it is UTF-8, drop \
                         --encoding windows-1251",
                    ));
                }
                bytes = rest;
            }
        }
        self.encoding
            .decode(bytes)
            .map(Some)
            .map_err(|why| RegistryError::at(self.line, why))
    }

    /// Splits a record that starts with `text` (line `start`) into its fields; a quoted field
    /// may go on over the next lines.
    fn read_record(&mut self, mut text: String, start: u64) -> Result<Vec<String>, RegistryError> {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut quoted = false;
        loop {
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                if in_quotes {
                    if c != '"' {
                        field.push(c);
                    } else if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        in_quotes = false;
                    }
                } else if c == self.delimiter {
                    fields.push(std::mem::take(&mut field));
                    quoted = false;
                } else if quoted {
                    if !c.is_whitespace() {
                        return Err(RegistryError::at(
                            self.line,
                            format!(
                                "field {} has text after its closing quote: a '\"' inside a \
                                 quoted field is written twice (\"\")",
                                fields.len() + 1
                            ),
                        ));
                    }
                } else if c == '"' && field.trim().is_empty() {
                    field.clear();
                    in_quotes = true;
                    quoted = true;
                } else {
                    field.push(c);
                }
            }
            if !in_quotes {
                break;
            }
            match self.next_line()? {
                Some(next) => {
                    field.push('\n');
                    text = next;
                }
                None => {
                    return Err(RegistryError::at(
                        start,
                        format!(
                            "field {} opens a quote that is never closed: a '\"' is missing",
                            fields.len() + 1
                        ),
                    ))
                }
            }
        }
        fields.push(field);
        Ok(fields)
    }
}

/// The index of `column` in the header: by name (any letter case), else by 1-based number.
fn find_column(
    header: &[String],
    column: &Column,
    option: &str,
    required: bool,
    split_at: &str,
) -> Result<Option<usize>, String> {
    let want = column.name.trim().to_lowercase();
    let found: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].to_lowercase() == want)
        .collect();
    match found.as_slice() {
        [i] => return Ok(Some(*i)),
        [a, b, ..] => {
            return Err(format!(
                "the header names column '{}' twice (columns {} and {}): give the one to use \
                 by number, {option} {}",
                column.name,
                a + 1,
                b + 1,
                a + 1
            ))
        }
        [] => {}
    }
    if !want.is_empty() && want.bytes().all(|b| b.is_ascii_digit()) {
        return match want.parse::<usize>() {
            Ok(n) if (1..=header.len()).contains(&n) => Ok(Some(n - 1)),
            _ => Err(format!(
                "{option} {}: the header has columns 1 to {}",
                column.name,
                header.len()
            )),
        };
    }
    if !required {
        return Ok(None);
    }
    Err(format!(
        "no column '{}' in the header ({}; split at {split_at}): name the right one with \
         {option}, or the delimiter with --delimiter",
        column.name,
        header.join(", ")
    ))
}

/// A payment we committed, as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credited {
    pub txn_id: String,
    pub account: String,
    pub sum: Amount,
    pub txn_date: String,
    /// The number the payment was answered with.
    pub prv_txn: u64,
    /// When it was cancelled, if it was.
    pub cancelled: Option<String>,
}

type CreditedRow = (String, String, String, String, u64, Option<String>);

const CREDITED: &str = "SELECT txn_id, account, CAST(amount AS CHAR), CAST(txn_date AS CHAR), \
     IF(prv_txn = 0, id, prv_txn), CAST(cancelled AS CHAR) FROM paysys_txn WHERE system_name = ?";

fn credited(row: CreditedRow) -> Result<Credited, String> {
    let (txn_id, account, amount, txn_date, prv_txn, cancelled) = row;
    let sum = parse_balance(&amount)
        .ok_or_else(|| format!("paysys_txn: txn_id {txn_id} has amount '{amount}', not a sum"))?;
    Ok(Credited {
        txn_id,
        account,
        sum,
        txn_date,
        prv_txn,
        cancelled,
    })
}

/// `system`'s payments whose `txn_date` falls on `date`, cancelled ones included; counted on
/// `progress` as they come.
pub fn credited_on(
    conn: &mut impl Queryable,
    system: &str,
    date: NaiveDate,
    progress: &mut Progress,
) -> Result<Vec<Credited>, String> {
    let next = date
        .succ_opt()
        .ok_or_else(|| format!("{date} has no next day"))?;
    let what = format!("reading paysys_txn of {system} on {date}");
    progress.stage(&format!("{what}…"));
    let rows = conn
        .exec_iter(
            format!("{CREDITED} AND txn_date >= ? AND txn_date < ? ORDER BY txn_date, id"),
            (system, date.to_string(), next.to_string()),
        )
        .map_err(|e| e.to_string())?;
    let mut day = Vec::new();
    for row in rows {
        let row = row.map_err(|e| e.to_string())?;
        let row: CreditedRow = mysql::from_row_opt(row).map_err(|e| format!("paysys_txn: {e}"))?;
        day.push(credited(row)?);
        progress.tick(|| format!("{what}: row {}…", count(day.len() as u64)));
    }
    Ok(day)
}

/// `system`'s payments with these txn ids, whatever their day; `BATCH` ids a query, counted
/// on `progress`.
pub fn credited_among(
    conn: &mut impl Queryable,
    system: &str,
    txn_ids: &[&str],
    progress: &mut Progress,
) -> Result<Vec<Credited>, String> {
    let mut all = Vec::new();
    if txn_ids.is_empty() {
        return Ok(all);
    }
    let what = "looking up the registry's txn ids on other days";
    let of = count(txn_ids.len() as u64);
    progress.stage(&format!("{what}: 0 of {of}…"));
    for (done, batch) in txn_ids.chunks(BATCH).enumerate() {
        let marks = vec!["?"; batch.len()].join(", ");
        let mut params: Vec<mysql::Value> = vec![system.into()];
        params.extend(batch.iter().map(|&t| mysql::Value::from(t)));
        let rows: Vec<CreditedRow> = conn
            .exec(format!("{CREDITED} AND txn_id IN ({marks})"), params)
            .map_err(|e| e.to_string())?;
        for row in rows {
            all.push(credited(row)?);
        }
        let looked = ((done + 1) * BATCH).min(txn_ids.len()) as u64;
        progress.tick(|| format!("{what}: {} of {of}…", count(looked)));
    }
    Ok(all)
}

/// A count and an exact sum of kopecks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    pub count: u64,
    pub kopecks: i128,
}

impl Total {
    fn add(&mut self, sum: Amount) {
        self.count += 1;
        self.kopecks += i128::from(sum.kopecks());
    }
}

/// Kopecks as roubles with two decimals: `1234.50`, `-3.00`.
pub fn money(kopecks: i128) -> String {
    let sign = if kopecks < 0 { "-" } else { "" };
    let abs = kopecks.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A registry row and our row with the same txn id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub registry: Entry,
    pub ours: Credited,
}

/// A txn id on a second line of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub entry: Entry,
    pub first_line: u64,
}

/// What the comparison found. Each list is in txn id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In the registry, not credited by us on any day.
    pub missing_ours: Vec<Entry>,
    /// Credited by us on the day (not cancelled), not in the registry.
    pub missing_theirs: Vec<Credited>,
    /// Same txn id, another sum or account.
    pub mismatches: Vec<Pair>,
    /// Cancelled by us, in the registry.
    pub cancelled: Vec<Pair>,
    /// In the registry, credited by us with a txn_date on another day.
    pub other_day: Vec<Pair>,
    pub duplicates: Vec<Duplicate>,
    /// Registry rows that match ours exactly.
    pub matched: u64,
    /// Every registry row.
    pub registry: Total,
    /// Our rows of the day, not cancelled.
    pub ours: Total,
    /// False when the registry has no account column.
    pub accounts_compared: bool,
}

impl Report {
    pub fn differences(&self) -> usize {
        self.missing_ours.len()
            + self.missing_theirs.len()
            + self.mismatches.len()
            + self.cancelled.len()
            + self.other_day.len()
            + self.duplicates.len()
    }

    pub fn agrees(&self) -> bool {
        self.differences() == 0 && self.registry == self.ours
    }
}

/// Compares registry rows, as they are read, with our rows of the day.
pub struct Reconciler {
    day: HashMap<String, Credited>,
    seen: HashMap<String, u64>,
    pending: Vec<Entry>,
    report: Report,
}

/// Numeric order for digit strings of any length.
fn txn_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

impl Reconciler {
    /// `day`: our rows whose txn_date is the registry's day, cancelled ones included.
    pub fn new(day: Vec<Credited>, accounts_compared: bool) -> Reconciler {
        let mut report = Report {
            accounts_compared,
            ..Report::default()
        };
        for row in day.iter().filter(|r| r.cancelled.is_none()) {
            report.ours.add(row.sum);
        }
        Reconciler {
            day: day.into_iter().map(|r| (r.txn_id.clone(), r)).collect(),
            seen: HashMap::new(),
            pending: Vec::new(),
            report,
        }
    }

    fn differs(&self, entry: &Entry, ours: &Credited) -> bool {
        entry.sum != ours.sum
            || (self.report.accounts_compared
                && entry.account.as_deref() != Some(ours.account.as_str()))
    }

    pub fn add(&mut self, entry: Entry) {
        self.report.registry.add(entry.sum);
        if let Some(&first_line) = self.seen.get(&entry.txn_id) {
            self.report.duplicates.push(Duplicate { entry, first_line });
            return;
        }
        self.seen.insert(entry.txn_id.clone(), entry.line);
        match self.day.remove(&entry.txn_id) {
            None => self.pending.push(entry),
            Some(ours) if ours.cancelled.is_some() => self.report.cancelled.push(Pair {
                registry: entry,
                ours,
            }),
            Some(ours) if self.differs(&entry, &ours) => self.report.mismatches.push(Pair {
                registry: entry,
                ours,
            }),
            Some(_) => self.report.matched += 1,
        }
    }

    /// The registry's txn ids that our day does not hold: look them up on other days.
    pub fn pending(&self) -> Vec<&str> {
        self.pending.iter().map(|e| e.txn_id.as_str()).collect()
    }

    /// `elsewhere`: our rows for (some of) the pending txn ids.
    pub fn finish(mut self, elsewhere: Vec<Credited>) -> Report {
        let mut elsewhere: HashMap<String, Credited> = elsewhere
            .into_iter()
            .map(|r| (r.txn_id.clone(), r))
            .collect();
        let mut report = self.report;
        for entry in self.pending {
            match elsewhere.remove(&entry.txn_id) {
                Some(ours) => report.other_day.push(Pair {
                    registry: entry,
                    ours,
                }),
                None => report.missing_ours.push(entry),
            }
        }
        report.missing_theirs = self
            .day
            .drain()
            .map(|(_, r)| r)
            .filter(|r| r.cancelled.is_none())
            .collect();
        report
            .missing_ours
            .sort_by(|a, b| txn_order(&a.txn_id, &b.txn_id));
        report
            .missing_theirs
            .sort_by(|a, b| txn_order(&a.txn_id, &b.txn_id));
        for pairs in [
            &mut report.mismatches,
            &mut report.cancelled,
            &mut report.other_day,
        ] {
            pairs.sort_by(|a, b| txn_order(&a.registry.txn_id, &b.registry.txn_id));
        }
        report
    }
}

/// Prints `rows` under `title` as aligned columns; `right` marks the right-aligned ones.
fn table(
    out: &mut impl Write,
    title: &str,
    headers: &[&str],
    right: &[usize],
    rows: &[Vec<String>],
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}: {}", rows.len())?;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            text.push_str("  ");
            if right.contains(&i) {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// What the report's head names: the file and our side.
pub struct Heading<'a> {
    pub registry: &'a Path,
    /// `None`: not a CSV file but Portmone's `<PAY_ORDERS>` document.
    pub delimiter: Option<char>,
    pub columns: Vec<&'a str>,
    pub system: &'a str,
    pub date: NaiveDate,
}

fn or_dash(text: Option<&str>) -> String {
    match text {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => "-".to_string(),
    }
}

pub fn write_report(out: &mut impl Write, head: &Heading<'_>, r: &Report) -> io::Result<()> {
    match head.delimiter {
        Some(d) => writeln!(
            out,
            "registry  {} (delimiter {}, columns {})",
            head.registry.display(),
            delimiter_name(d),
            head.columns.join(", ")
        )?,
        None => writeln!(
            out,
            "registry  {} (Portmone <PAY_ORDERS>, fields {})",
            head.registry.display(),
            head.columns.join(", ")
        )?,
    }
    writeln!(
        out,
        "ours      paysys_txn of system {}, txn_date on {}, not cancelled",
        head.system, head.date
    )?;
    if !r.accounts_compared {
        writeln!(
            out,
            "note      the registry has no account column: accounts are not compared"
        )?;
    }
    let rows: Vec<Vec<String>> = r
        .missing_ours
        .iter()
        .map(|e| {
            vec![
                e.txn_id.clone(),
                e.sum.to_string(),
                or_dash(e.account.as_deref()),
                or_dash(e.date.as_deref()),
                e.line.to_string(),
            ]
        })
        .collect();
    table(
        out,
        "missing on our side (in the registry, not credited by us)",
        &["txn_id", "sum", "account", "date", "line"],
        &[1, 4],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = r
        .missing_theirs
        .iter()
        .map(|c| {
            vec![
                c.txn_id.clone(),
                c.sum.to_string(),
                c.account.clone(),
                c.prv_txn.to_string(),
                c.txn_date.clone(),
            ]
        })
        .collect();
    table(
        out,
        "missing on their side (credited by us, not in the registry)",
        &["txn_id", "sum", "account", "prv_txn", "txn_date"],
        &[1, 3],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = r
        .mismatches
        .iter()
        .map(|p| {
            vec![
                p.registry.txn_id.clone(),
                p.registry.sum.to_string(),
                p.ours.sum.to_string(),
                or_dash(p.registry.account.as_deref()),
                p.ours.account.clone(),
                p.ours.prv_txn.to_string(),
                p.registry.line.to_string(),
            ]
        })
        .collect();
    table(
        out,
        "mismatches (same txn_id, another sum or account)",
        &[
            "txn_id",
            "their sum",
            "our sum",
            "their account",
            "our account",
            "prv_txn",
            "line",
        ],
        &[1, 2, 5, 6],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = r
        .cancelled
        .iter()
        .map(|p| {
            vec![
                p.registry.txn_id.clone(),
                p.registry.sum.to_string(),
                or_dash(p.registry.account.as_deref()),
                p.ours.prv_txn.to_string(),
                or_dash(p.ours.cancelled.as_deref()),
                p.registry.line.to_string(),
            ]
        })
        .collect();
    table(
        out,
        "cancelled by us, yet in their registry (not credited now)",
        &["txn_id", "sum", "account", "prv_txn", "cancelled", "line"],
        &[1, 3, 5],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = r
        .other_day
        .iter()
        .map(|p| {
            let mut note = Vec::new();
            if p.registry.sum != p.ours.sum {
                note.push(format!("our sum {}", p.ours.sum));
            }
            if r.accounts_compared && p.registry.account.as_deref() != Some(&p.ours.account) {
                note.push(format!("our account {}", p.ours.account));
            }
            if let Some(when) = &p.ours.cancelled {
                note.push(format!("cancelled {when}"));
            }
            vec![
                p.registry.txn_id.clone(),
                p.registry.sum.to_string(),
                or_dash(p.registry.account.as_deref()),
                or_dash(p.registry.date.as_deref()),
                p.ours.txn_date.clone(),
                p.ours.prv_txn.to_string(),
                p.registry.line.to_string(),
                note.join(", "),
            ]
        })
        .collect();
    table(
        out,
        "on another day (in the registry, credited by us with another txn_date)",
        &[
            "txn_id",
            "sum",
            "account",
            "date",
            "our txn_date",
            "prv_txn",
            "line",
            "",
        ],
        &[1, 5, 6],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = r
        .duplicates
        .iter()
        .map(|d| {
            vec![
                d.entry.txn_id.clone(),
                d.entry.sum.to_string(),
                d.entry.line.to_string(),
                d.first_line.to_string(),
            ]
        })
        .collect();
    table(
        out,
        "twice in the registry (counted in its total each time)",
        &["txn_id", "sum", "line", "first on line"],
        &[1, 2, 3],
        &rows,
    )?;
    let (theirs, ours) = (r.registry, r.ours);
    let count_diff = i128::from(theirs.count) - i128::from(ours.count);
    let rows = [
        ("registry", theirs.count.to_string(), money(theirs.kopecks)),
        ("ours", ours.count.to_string(), money(ours.kopecks)),
        (
            "difference",
            count_diff.to_string(),
            money(theirs.kopecks - ours.kopecks),
        ),
    ];
    let cw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(5);
    let sw = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(3);
    writeln!(out, "\ntotals        {:>cw$}  {:>sw$}", "count", "sum")?;
    for (name, count, sum) in rows {
        writeln!(out, "  {name:<10}  {count:>cw$}  {sum:>sw$}")?;
    }
    if r.agrees() {
        writeln!(
            out,
            "\nagree: {} payments, {}",
            theirs.count,
            money(theirs.kopecks)
        )
    } else {
        let parts: Vec<String> = [
            (r.missing_ours.len(), "missing on our side"),
            (r.missing_theirs.len(), "missing on their side"),
            (r.mismatches.len(), "mismatched"),
            (r.cancelled.len(), "cancelled by us"),
            (r.other_day.len(), "on another day"),
            (r.duplicates.len(), "twice in the registry"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        writeln!(out, "\ndiffer: {}", parts.join(", "))
    }
}

/// The command line of `paysys reconcile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub registry: PathBuf,
    pub system: String,
    pub date: NaiveDate,
    pub config: Option<PathBuf>,
    pub read: ReadOptions,
}

/// `None` for `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut registry = None;
    let (mut system, mut date, mut config) = (None, None, None);
    let mut read = ReadOptions::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if !arg.starts_with("--") || arg == "-" {
            if registry.is_some() {
                return Err(format!("one registry file, not also '{arg}'"));
            }
            registry = Some(PathBuf::from(arg));
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let value = match inline.or_else(|| rest.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value")),
        };
        let column = || Column {
            name: value.clone(),
            given: true,
        };
        match name {
            "--system" => system = Some(value),
            "--date" => {
                date = Some(NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|_| {
                    format!("--date '{value}': give the registry's day as YYYY-MM-DD")
                })?)
            }
            "--config" => config = Some(PathBuf::from(value)),
            "--txn-column" => read.txn = column(),
            "--sum-column" => read.sum = column(),
            "--date-column" => read.date = column(),
            "--account-column" => read.account = column(),
            "--delimiter" => {
                read.delimiter = Some(match value.as_str() {
                    "tab" | "\\t" | "\t" => '\t',
                    "," | ";" | "|" => value.chars().next().unwrap_or(','),
                    _ => return Err(format!("--delimiter '{value}': one of ',' ';' '|' or tab")),
                })
            }
            "--encoding" => {
                read.encoding = Encoding::parse(&value)
                    .ok_or_else(|| format!("--encoding '{value}': utf-8 or windows-1251"))?
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    let registry = registry.ok_or("no registry file given")?;
    let system = system.ok_or("--system S is required: the payment system of the registry")?;
    let date = date.ok_or("--date YYYY-MM-DD is required: the registry's day")?;
    Ok(Some(Args {
        registry,
        system,
        date,
        config,
        read,
    }))
}

/// `paysys reconcile …`; `config_path` resolves the config as the other commands do.
/// Returns the exit status: [`AGREE`], [`DIFFER`] or [`ERROR`].
pub fn command(args: &[String], config_path: impl Fn(Option<PathBuf>) -> PathBuf) -> u8 {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return AGREE;
        }
        Err(why) => {
            eprintln!("paysys reconcile: {why}\n{USAGE}");
            return ERROR;
        }
    };
    match run(&args, &config_path(args.config.clone())) {
        Ok(code) => code,
        Err(why) => {
            eprintln!("paysys reconcile: {why}");
            ERROR
        }
    }
}

fn run(args: &Args, config: &Path) -> Result<u8, String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    if !config.systems.iter().any(|s| s.name == args.system) {
        let names: Vec<&str> = config.systems.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "no system '{}' in {} (its systems: {}): give --system as the config names it",
            args.system,
            config.files[0].display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    let path = &args.registry;
    if let Some(entries) = portmone_registry(path)? {
        return reconcile_entries(&config, args, entries);
    }
    let file = std::fs::File::open(path)
        .map_err(|e| format!("registry {} cannot be opened: {e}", path.display()))?;
    // For the share read so far; a pipe has no size.
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let in_file = |e: RegistryError| format!("registry {} {e}", path.display());
    let mut registry =
        Registry::open(io::BufReader::with_capacity(1 << 16, file), &args.read).map_err(in_file)?;

    // Cleared before the report is printed, and when an error returns.
    let mut progress = Progress::stderr();
    let mut conn: Conn = crate::db::connect(&config.database, crate::db::Use::Read)
        .map_err(|e| format!("database: {e}"))?;
    // One snapshot for both queries, and a server-side promise that nothing is written.
    let mut tx = conn
        .start_transaction(
            TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_access_mode(Some(AccessMode::ReadOnly)),
        )
        .map_err(|e| format!("database: {e}"))?;
    let day = credited_on(&mut tx, &args.system, args.date, &mut progress)
        .map_err(|e| format!("database: {e}"))?;
    let mut reconciler = Reconciler::new(day, registry.has_account());
    progress.stage("reading the registry…");
    while let Some(entry) = registry.next_entry().map_err(in_file)? {
        reconciler.add(entry);
        progress.tick(|| reading(registry.lines(), registry.bytes(), size));
    }
    let elsewhere = credited_among(&mut tx, &args.system, &reconciler.pending(), &mut progress)
        .map_err(|e| format!("database: {e}"))?;
    drop(tx);
    let report = reconciler.finish(elsewhere);
    progress.clear();

    let heading = Heading {
        registry: path,
        delimiter: Some(registry.delimiter()),
        columns: registry.columns(),
        system: &args.system,
        date: args.date,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // A closed pipe (`| head`) is the reader's choice; the exit status still tells.
    let _ = write_report(&mut out, &heading, &report).and_then(|()| out.flush());
    Ok(if report.agrees() { AGREE } else { DIFFER })
}

/// The largest `<PAY_ORDERS>` document read (it is read whole): a month of a busy ISP's
/// Portmone payments is a few megabytes.
const PAY_ORDERS_MAX: u64 = 64 << 20;

/// Portmone's `<PAY_ORDERS>` settlement listing as registry entries (`BILL_ID`,
/// `PAYED_AMOUNT`, `CONTRACT_NUMBER`, `PAY_DATE`), if the file is one: XML, or the
/// `data=` form it was posted as. `None` for anything else (a CSV registry).
fn portmone_registry(path: &Path) -> Result<Option<Vec<Entry>>, String> {
    use std::io::Read;
    let opened = |e: io::Error| format!("registry {} cannot be read: {e}", path.display());
    let mut head = [0u8; 64];
    // A file that cannot be opened is the CSV reader's to report.
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return Ok(None);
    };
    let start = head[..n]
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(&head[..n]);
    let start: Vec<u8> = start
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .collect();
    if !(start.starts_with(b"<") || start.starts_with(b"data=")) {
        return Ok(None);
    }
    let size = std::fs::metadata(path).map_err(opened)?.len();
    if size > PAY_ORDERS_MAX {
        return Err(format!(
            "registry {}: {size} bytes is more than a <PAY_ORDERS> document paysys reads \
             ({PAY_ORDERS_MAX})",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "registry {}: a <PAY_ORDERS> document must be UTF-8 text: {e}",
            path.display()
        )
    })?;
    let bills = crate::protocol::portmone::pay_orders(&text)
        .map_err(|why| format!("registry {}: {why}", path.display()))?;
    bills
        .into_iter()
        .map(|b| {
            let at = |why: String| {
                format!(
                    "registry {} line {}: BILL {}: {why}",
                    path.display(),
                    b.line,
                    b.bill_id
                )
            };
            if b.bill_id.is_empty() {
                return Err(at("no BILL_ID".into()));
            }
            let sum = parse_sum(&b.amount).map_err(|e| at(format!("PAYED_AMOUNT: {e}")))?;
            Ok(Entry {
                line: b.line,
                txn_id: b.bill_id,
                sum,
                account: Some(b.contract),
                date: Some(b.pay_date).filter(|d| !d.is_empty()),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// [`run`] for a registry already read whole (Portmone's `<PAY_ORDERS>`).
fn reconcile_entries(config: &Config, args: &Args, entries: Vec<Entry>) -> Result<u8, String> {
    let mut progress = Progress::stderr();
    let mut conn: Conn = crate::db::connect(&config.database, crate::db::Use::Read)
        .map_err(|e| format!("database: {e}"))?;
    let mut tx = conn
        .start_transaction(
            TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_access_mode(Some(AccessMode::ReadOnly)),
        )
        .map_err(|e| format!("database: {e}"))?;
    let day = credited_on(&mut tx, &args.system, args.date, &mut progress)
        .map_err(|e| format!("database: {e}"))?;
    let mut reconciler = Reconciler::new(day, true);
    for entry in entries {
        reconciler.add(entry);
    }
    let elsewhere = credited_among(&mut tx, &args.system, &reconciler.pending(), &mut progress)
        .map_err(|e| format!("database: {e}"))?;
    drop(tx);
    let report = reconciler.finish(elsewhere);
    progress.clear();
    let heading = Heading {
        registry: &args.registry,
        delimiter: None,
        columns: vec!["BILL_ID", "PAYED_AMOUNT", "PAY_DATE", "CONTRACT_NUMBER"],
        system: &args.system,
        date: args.date,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let _ = write_report(&mut out, &heading, &report).and_then(|()| out.flush());
    Ok(if report.agrees() { AGREE } else { DIFFER })
}

/// The progress of reading the registry: the line, and the share of a file of `size` bytes.
fn reading(lines: u64, bytes: u64, size: u64) -> String {
    let share = match bytes.saturating_mul(100).checked_div(size) {
        Some(percent) => format!(" ({} %)", percent.min(100)),
        None => String::new(),
    };
    format!("reading the registry: line {}{share}…", count(lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_lines_and_the_share_of_the_file() {
        assert_eq!(
            reading(40_000, 350, 1000),
            "reading the registry: line 40 000 (35 %)…"
        );
        // A pipe has no size; a file that grew while read stops at 100 %.
        assert_eq!(reading(12, 350, 0), "reading the registry: line 12…");
        assert_eq!(
            reading(12, 2000, 1000),
            "reading the registry: line 12 (100 %)…"
        );
    }

    fn read_with(bytes: &[u8], options: &ReadOptions) -> Result<Vec<Entry>, RegistryError> {
        let mut registry = Registry::open(bytes, options)?;
        let mut all = Vec::new();
        while let Some(e) = registry.next_entry()? {
            all.push(e);
        }
        Ok(all)
    }

    fn read(bytes: &[u8]) -> Result<Vec<Entry>, RegistryError> {
        read_with(bytes, &ReadOptions::default())
    }

    fn entry(line: u64, txn: &str, kopecks: i64, account: &str, date: &str) -> Entry {
        Entry {
            line,
            txn_id: txn.into(),
            sum: Amount::from_kopecks(kopecks),
            account: Some(account.into()),
            date: Some(date.into()),
        }
    }

    #[test]
    fn delimiters_are_told_from_the_header() {
        for d in [",", ";", "\t"] {
            let text =
                format!("txn_id{d}sum{d}date{d}account\n1{d}10.25{d}2024-05-01 10:00:00{d}59071\n");
            let mut r = Registry::open(text.as_bytes(), &ReadOptions::default()).unwrap();
            assert_eq!(r.delimiter(), d.chars().next().unwrap());
            assert_eq!(
                r.next_entry().unwrap().unwrap(),
                entry(2, "1", 1025, "59071", "2024-05-01 10:00:00")
            );
        }
        // A given delimiter wins over the header's commas.
        let options = ReadOptions {
            delimiter: Some(';'),
            ..ReadOptions::default()
        };
        let text = b"txn_id;sum;a,b,c,d\n7;1,50;x,y,z,w\n";
        let rows = read_with(text, &options).unwrap();
        assert_eq!(
            (rows[0].sum, rows[0].account.as_ref()),
            (Amount::from_kopecks(150), None)
        );
        let e = read(text).unwrap_err();
        assert!(
            e.why.contains("no column 'txn_id'") && e.why.contains("split at ','"),
            "{e}"
        );
        let e = read(b"txn_id sum\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.why.contains("--delimiter"), "{e}");
    }

    #[test]
    fn quotes_bom_crlf_and_blank_lines() {
        let text = "\u{feff}\"txn_id\",\"sum\",\"date\",\"account\"\r\n\
                    \"1\",\"10,25\",\"2024-05-01\",\"59071\"\r\n\
                    \r\n\
                    2,\"3\",\"say \"\"hi\"\",\r\nthen go\",\"33\"\r\n\
                    3, 4.5 ,d, 44 \r\n";
        let rows = read(text.as_bytes()).unwrap();
        assert_eq!(
            rows,
            vec![
                entry(2, "1", 1025, "59071", "2024-05-01"),
                entry(4, "2", 300, "33", "say \"hi\",\nthen go"),
                entry(6, "3", 450, "44", "d"),
            ]
        );
    }

    #[test]
    fn comma_decimals_and_bad_sums_by_line() {
        assert_eq!(parse_sum("10,25"), Ok(Amount::from_kopecks(1025)));
        assert_eq!(parse_sum("10,5"), Ok(Amount::from_kopecks(1050)));
        assert_eq!(parse_sum("10"), Ok(Amount::from_kopecks(1000)));
        for bad in [
            "1,000.50", "1 000,50", "-5", "1e3", "10,001", "", "10,2,5", "NaN",
        ] {
            assert!(parse_sum(bad).is_err(), "{bad}");
        }
        let e = read(b"txn_id;sum;date;account\n1;10;d;a\n2;-5;d;a\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.why.starts_with("sum '-5': "), "{e}");
        // An unquoted decimal comma in a ','-file makes one field too many.
        let e = read(b"txn_id,sum,date,account\n1,10,25,d,a\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.why.contains("5 fields, the header has 4"), "{e}");
        assert!(e.why.contains("\"10,25\""), "{e}");
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let cases: &[(&[u8], u64, &str)] = &[
            (b"", 1, "the file is empty"),
            (
                b"txn_id;sum\n1;2\nTotal;2\n",
                3,
                "txn_id 'Total': txn_id must be digits only",
            ),
            (b"txn_id;sum\n1;2\n2;\"3\n", 3, "never closed"),
            (b"txn_id;sum\n1;\"2\"x\n", 2, "after its closing quote"),
            (b"txn_id;sum\n1;2;3\n", 2, "3 fields, the header has 2"),
            (
                b"id;sum\n1;2\n",
                1,
                "no column 'txn_id' in the header (id, sum; split at ';'): name the right one with --txn-column",
            ),
            (b"txn_id;sum;SUM\n", 1, "names column 'sum' twice"),
            (b"txn_id;sum\n1;2\n\xcf\xf0;3\n", 3, "not UTF-8 text"),
            (b"\xff\xfet\x00", 1, "UTF-16"),
        ];
        for (text, line, why) in cases {
            let e = read(text).unwrap_err();
            assert_eq!(e.line, *line, "{e}");
            assert!(e.why.contains(why), "{e} / {why}");
        }
    }

    #[test]
    fn custom_columns_by_name_or_number() {
        let options = ReadOptions {
            txn: Column {
                name: "ID платежа".into(),
                given: true,
            },
            sum: Column {
                name: "3".into(),
                given: true,
            },
            account: Column {
                name: "Лицевой счёт".into(),
                given: true,
            },
            date: Column {
                name: "Дата".into(),
                given: true,
            },
            ..ReadOptions::default()
        };
        let text = "Дата;ID платежа;Сумма;лицевой СЧЁТ\n01.05.2024 10:00;77;1 ,5;59071\n";
        let e = read_with(text.as_bytes(), &options).unwrap_err();
        assert_eq!(e.line, 2);
        let text = "Дата;ID платежа;Сумма;лицевой СЧЁТ\n01.05.2024 10:00;77;1,5;59071\n";
        let rows = read_with(text.as_bytes(), &options).unwrap();
        assert_eq!(rows, vec![entry(2, "77", 150, "59071", "01.05.2024 10:00")]);
        // Named, so required.
        let e = read_with("ID платежа;Сумма\n".as_bytes(), &options).unwrap_err();
        assert!(
            e.why
                .contains("--sum-column 3: the header has columns 1 to 2"),
            "{e}"
        );
        let e = read_with("ID платежа;Дата;Сумма\n".as_bytes(), &options).unwrap_err();
        assert!(
            e.why.contains("no column 'Лицевой счёт' in the header"),
            "{e}"
        );
        // Not named: absent date and account columns are fine.
        let rows = read(b"sum;txn_id\n5;9\n").unwrap();
        assert_eq!(rows[0].account, None);
        assert_eq!(rows[0].date, None);
    }

    #[test]
    fn windows_1251() {
        let options = ReadOptions {
            txn: Column {
                name: "Номер".into(),
                given: true,
            },
            sum: Column {
                name: "Сумма".into(),
                given: true,
            },
            encoding: Encoding::Windows1251,
            ..ReadOptions::default()
        };
        // "Номер;Сумма;account\n5;10,00;Ёж №1" in Windows-1251.
        let text =
            b"\xcd\xee\xec\xe5\xf0;\xd1\xf3\xec\xec\xe0;account\r\n5;10,00;\xa8\xe6 \xb9\x31\r\n";
        let rows = read_with(text, &options).unwrap();
        assert_eq!(rows[0].account.as_deref(), Some("Ёж №1"));
        assert_eq!(rows[0].sum, Amount::from_kopecks(1000));
        let e = read_with(b"\xef\xbb\xbftxn_id;sum\n", &options).unwrap_err();
        assert!(e.why.contains("drop --encoding windows-1251"), "{e}");
        let e = read_with(
            b"\xcd\xee\xec\xe5\xf0;\xd1\xf3\xec\xec\xe0\n1;\x98\n",
            &options,
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
    }

    fn ours(txn: &str, kopecks: i64, account: &str, cancelled: bool) -> Credited {
        Credited {
            txn_id: txn.into(),
            account: account.into(),
            sum: Amount::from_kopecks(kopecks),
            txn_date: "2024-05-01 10:00:00".into(),
            prv_txn: txn.parse::<u64>().unwrap() + 1000,
            cancelled: cancelled.then(|| "2024-05-01 11:00:00".to_string()),
        }
    }

    fn reconcile(registry: &[Entry], day: &[Credited], elsewhere: &[Credited]) -> Report {
        let mut r = Reconciler::new(day.to_vec(), true);
        for e in registry {
            r.add(e.clone());
        }
        let pending: Vec<String> = r.pending().iter().map(|s| s.to_string()).collect();
        let found = elsewhere
            .iter()
            .filter(|c| pending.contains(&c.txn_id))
            .cloned()
            .collect();
        r.finish(found)
    }

    #[test]
    fn comparison() {
        let e = |line, txn, k, acc| entry(line, txn, k, acc, "2024-05-01");
        struct Case {
            name: &'static str,
            registry: Vec<Entry>,
            day: Vec<Credited>,
            elsewhere: Vec<Credited>,
            check: fn(&Report),
        }
        let cases = vec![
            Case {
                name: "agree",
                registry: vec![e(2, "1", 1000, "11"), e(3, "2", 2550, "22")],
                day: vec![ours("2", 2550, "22", false), ours("1", 1000, "11", false)],
                elsewhere: vec![],
                check: |r| {
                    assert!(r.agrees());
                    assert_eq!(r.matched, 2);
                    assert_eq!(
                        r.registry,
                        Total {
                            count: 2,
                            kopecks: 3550
                        }
                    );
                    assert_eq!(r.ours, r.registry);
                },
            },
            Case {
                name: "missing on our side",
                registry: vec![e(2, "1", 1000, "11"), e(3, "2", 500, "22")],
                day: vec![ours("1", 1000, "11", false)],
                elsewhere: vec![],
                check: |r| {
                    assert!(!r.agrees());
                    assert_eq!(r.missing_ours, vec![entry(3, "2", 500, "22", "2024-05-01")]);
                    assert_eq!(r.differences(), 1);
                    assert_eq!(
                        r.ours,
                        Total {
                            count: 1,
                            kopecks: 1000
                        }
                    );
                },
            },
            Case {
                name: "missing on their side",
                registry: vec![e(2, "1", 1000, "11")],
                day: vec![ours("1", 1000, "11", false), ours("9", 900, "99", false)],
                elsewhere: vec![],
                check: |r| {
                    assert_eq!(r.missing_theirs, vec![ours("9", 900, "99", false)]);
                    assert_eq!(r.differences(), 1);
                },
            },
            Case {
                name: "mismatched sum and account",
                registry: vec![e(2, "1", 1000, "11"), e(3, "2", 500, "22")],
                day: vec![ours("1", 1001, "11", false), ours("2", 500, "23", false)],
                elsewhere: vec![],
                check: |r| {
                    let ids: Vec<&str> = r
                        .mismatches
                        .iter()
                        .map(|p| p.registry.txn_id.as_str())
                        .collect();
                    assert_eq!(ids, ["1", "2"]);
                    assert_eq!(r.differences(), 2);
                },
            },
            Case {
                name: "cancelled by us, and cancelled not in the registry",
                registry: vec![e(2, "1", 1000, "11")],
                day: vec![ours("1", 1000, "11", true), ours("5", 700, "55", true)],
                elsewhere: vec![],
                check: |r| {
                    assert_eq!(r.cancelled.len(), 1);
                    assert_eq!(r.cancelled[0].ours.txn_id, "1");
                    assert_eq!(r.differences(), 1);
                    assert_eq!(r.ours, Total::default());
                },
            },
            Case {
                name: "on another day, not missing",
                registry: vec![e(2, "1", 1000, "11"), e(3, "3", 300, "33")],
                day: vec![ours("1", 1000, "11", false)],
                elsewhere: vec![ours("3", 300, "33", false)],
                check: |r| {
                    assert!(r.missing_ours.is_empty());
                    assert_eq!(r.other_day.len(), 1);
                    assert_eq!(r.other_day[0].registry.line, 3);
                },
            },
            Case {
                name: "twice in the registry",
                registry: vec![e(2, "1", 1000, "11"), e(5, "1", 1000, "11")],
                day: vec![ours("1", 1000, "11", false)],
                elsewhere: vec![],
                check: |r| {
                    assert_eq!(r.duplicates.len(), 1);
                    assert_eq!(r.duplicates[0].first_line, 2);
                    assert_eq!(
                        r.registry,
                        Total {
                            count: 2,
                            kopecks: 2000
                        }
                    );
                    assert_eq!(r.matched, 1);
                },
            },
        ];
        for case in cases {
            let report = reconcile(&case.registry, &case.day, &case.elsewhere);
            eprintln!("case: {}", case.name);
            (case.check)(&report);
        }
    }

    #[test]
    fn without_an_account_column_accounts_are_not_compared() {
        let mut r = Reconciler::new(vec![ours("1", 1000, "11", false)], false);
        r.add(Entry {
            line: 2,
            txn_id: "1".into(),
            sum: Amount::from_kopecks(1000),
            account: None,
            date: None,
        });
        assert!(r.finish(vec![]).agrees());
    }

    #[test]
    fn totals_are_exact_and_the_report_reads() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(i128::from(i64::MAX) * 3), "276701161105643274.21");
        let report = reconcile(
            &[
                entry(2, "1", 1000, "11", "d1"),
                entry(3, "2", 250, "22", "d2"),
            ],
            &[ours("1", 1000, "11", false), ours("7", 700, "77", false)],
            &[],
        );
        let mut out = Vec::new();
        let heading = Heading {
            registry: Path::new("reg.csv"),
            delimiter: Some(';'),
            columns: vec!["txn_id", "sum", "date", "account"],
            system: "osmp",
            date: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        };
        write_report(&mut out, &heading, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("missing on our side (in the registry, not credited by us): 1\n  txn_id   sum  account  date  line\n  2       2.50  22       d2       3\n"), "{text}");
        assert!(
            text.contains("missing on their side (credited by us, not in the registry): 1\n"),
            "{text}"
        );
        assert!(text.contains("  registry        2  12.50\n  ours            2  17.00\n  difference      0  -4.50\n"), "{text}");
        assert!(
            text.ends_with("differ: 1 missing on our side, 1 missing on their side\n"),
            "{text}"
        );
    }

    #[test]
    fn arguments() {
        let args = |s: &str| -> Vec<String> { s.split(' ').map(String::from).collect() };
        let a = parse_args(&args("r.csv --system osmp --date 2024-05-01 --delimiter tab --encoding cp1251 --sum-column=Сумма"))
            .unwrap()
            .unwrap();
        assert_eq!(a.registry, PathBuf::from("r.csv"));
        assert_eq!(a.read.delimiter, Some('\t'));
        assert_eq!(a.read.encoding, Encoding::Windows1251);
        assert_eq!(
            a.read.sum,
            Column {
                name: "Сумма".into(),
                given: true
            }
        );
        assert_eq!(parse_args(&args("--help")), Ok(None));
        assert!(parse_args(&args("r.csv --system osmp --date 01.05.2024"))
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert!(parse_args(&args("r.csv --date 2024-05-01"))
            .unwrap_err()
            .contains("--system"));
        assert!(parse_args(&args("r.csv --system"))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_args(&args("r.csv s.csv")).is_err());
    }
}
