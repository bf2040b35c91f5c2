//! A bank's CSV export, read through a named column mapping: a [`CsvPreset`] says which
//! header names hold the date, the sum, the purpose, … Banks change their exports' columns
//! more often than their formats, so the mapping is the admin's config
//! (`[[statement.csv]]` tables), not code.
//!
//! Two presets as examples. A Ukrainian bank's export, `;`-separated Windows-1251, with
//! debit and credit in separate columns and `,` decimals:
//!
//! ```toml
//! [[statement.csv]]
//! name = "ua-bank"
//! delimiter = ";"
//! encoding = "cp1251"
//! decimal_comma = true
//! # ДАТА;ЧАС;НОМЕР;ПРИЗНАЧЕННЯ;КОД ІДЕНТ.;КОНТРАГЕНТ;РАХУНОК КОНТРАГЕНТА;КОД ID НБУ;СУМА ДЕБЕТ;СУМА КРЕДИТ
//! date = "ДАТА"
//! time = "ЧАС"
//! number = "НОМЕР"
//! purpose = "ПРИЗНАЧЕННЯ"
//! payer_code = "КОД ІДЕНТ."
//! payer_name = "КОНТРАГЕНТ"
//! payer_account = "РАХУНОК КОНТРАГЕНТА"
//! debit = "СУМА ДЕБЕТ"
//! credit = "СУМА КРЕДИТ"
//! ```
//!
//! An online bank's export, `,`-separated UTF-8 after two title lines, one signed `Amount`
//! column (negative: money out), its own row id and a currency column:
//!
//! ```toml
//! [[statement.csv]]
//! name = "online-bank"
//! delimiter = ","
//! encoding = "utf-8"
//! skip_rows = 2
//! # Date,Time,Reference,Description,Counterparty,Counterparty IBAN,Counterparty Tax ID,Amount,Currency
//! date = "Date"
//! date_format = "%Y-%m-%d"
//! time = "Time"
//! id = "Reference"
//! purpose = "Description"
//! payer_name = "Counterparty"
//! payer_account = "Counterparty IBAN"
//! payer_code = "Counterparty Tax ID"
//! sum = "Amount"
//! currency = "Currency"
//! ```
//!
//! The reader is our own, small and RFC 4180-ish: fields in double quotes may hold the
//! delimiter, line breaks and doubled quotes (`""`); CRLF or LF. It is lenient where bank
//! exports are sloppy: a quote inside an unquoted field, or inside a quoted one but not
//! before a delimiter or the end, is a literal quote (`"ТОВ "Ромашка" ЛТД"`). A field whose
//! quote never closes spans at most [`MAX_RECORD_LINES`] lines; past that it is a
//! [`RowError`] and reading resumes on the line after its start. (The `csv` crate would
//! read the same files, but its leniency is not ours to tune and its streaming records are
//! no smaller: a hundred lines of our own are simpler than a new dependency.)
//!
//! Header names are matched trimmed and without regard to case. Sums may group thousands
//! with spaces or NBSP (`1 234,56`); with `decimal_comma = false` a `,` groups thousands
//! (`1,234.56`). In separate debit and credit columns, an empty cell is zero and exactly one
//! of the two must be more than zero (a sign there is ignored: some banks write the debit
//! column negative).
//!
//! **Row id.** From the `id` column when the preset names one (the bank's own reference).
//! Otherwise derived ([`RowId::derived`]): `csv:` and SHA-256 of the date, time, number,
//! signed sum, counterparty's account, counterparty's code and purpose — the date, time
//! and number tell apart two equal payments by one payer on one day (the number is what
//! differs when the time is only to the minute); the signed sum tells a payment from its
//! refund; the account, code and purpose tell payers apart. No column that depends on the
//! export (a running `№`, a balance after the row) goes in, so re-exporting the same day
//! gives the same ids. Without `number` and `time` columns, two payments by one payer of
//! the same sum on the same day with the same purpose get one id: name them when the bank
//! has them.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use super::{
    account, clip, currency, parse_date_time, parse_signed_sum, parse_time, payer_code,
    DecimalMark, Direction, Error, Format, Lines, RowError, RowId, StatementRow,
};
use crate::cp1251;
use crate::domain::Amount;

/// The most physical lines one record (a quoted field with line breaks) may span.
pub const MAX_RECORD_LINES: usize = 20;

fn default_delimiter() -> char {
    ';'
}

fn default_encoding() -> String {
    "cp1251".to_string()
}

/// How to read one bank's CSV: a `[[statement.csv]]` table of the config. Column fields
/// are header names as the file writes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvPreset {
    /// The preset's name, as the admin picks it for a file.
    pub name: String,
    /// The field separator; `;` when not given.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// `cp1251` (the default: what Excel on a Russian or Ukrainian Windows saves) or
    /// `utf-8`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// Lines before the header row (a title, the account, the period).
    #[serde(default)]
    pub skip_rows: usize,
    /// `,` is the decimal mark (`1 234,56`); otherwise `.` is.
    #[serde(default)]
    pub decimal_comma: bool,
    pub date: String,
    #[serde(default)]
    pub time: Option<String>,
    /// One signed column (negative: a debit), or …
    #[serde(default)]
    pub sum: Option<String>,
    /// … separate credit and debit columns.
    #[serde(default)]
    pub credit: Option<String>,
    #[serde(default)]
    pub debit: Option<String>,
    pub purpose: String,
    #[serde(default)]
    pub payer_code: Option<String>,
    #[serde(default)]
    pub payer_name: Option<String>,
    #[serde(default)]
    pub payer_account: Option<String>,
    /// The bank's own row id; when absent the id is derived from the row.
    #[serde(default)]
    pub id: Option<String>,
    /// The payment document's number: not unique, but part of a derived id.
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    /// A chrono/strftime format for `date` (`%d.%m.%Y`, `%Y-%m-%d %H:%M`); when absent
    /// `DD.MM.YYYY`, `YYYY-MM-DD`, `DD/MM/YYYY` are tried, with an optional ` HH:MM[:SS]`.
    #[serde(default)]
    pub date_format: Option<String>,
}

/// The text encodings a preset may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Cp1251,
    Utf8,
}

impl CsvPreset {
    fn encoding(&self) -> Option<Encoding> {
        match self.encoding.trim().to_ascii_lowercase().as_str() {
            "cp1251" | "windows-1251" | "win1251" => Some(Encoding::Cp1251),
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            _ => None,
        }
    }

    /// Whether this preset can read any file; the error says what to fix.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |why: String| {
            Err(Error::Preset {
                name: self.name.clone(),
                why,
            })
        };
        if self.name.trim().is_empty() {
            return bad("name is empty: give the preset a name to pick it by".into());
        }
        if matches!(self.delimiter, '"' | '\n' | '\r') {
            return bad(format!(
                "delimiter {:?} cannot separate fields (it is the quote or a line break)",
                self.delimiter
            ));
        }
        if self.encoding().is_none() {
            return bad(format!(
                "encoding '{}' is not one we read: cp1251 or utf-8",
                clip(&self.encoding)
            ));
        }
        match (&self.sum, &self.credit, &self.debit) {
            (Some(_), None, None) | (None, Some(_), _) | (None, _, Some(_)) => {}
            (None, None, None) => {
                return bad(
                    "no sum column: name `sum` (one signed column) or `credit` and \
                            `debit`"
                        .into(),
                )
            }
            (Some(_), _, _) => {
                return bad(
                    "both `sum` and `credit`/`debit`: name one signed `sum` column or \
                            the two separate ones, not both"
                        .into(),
                )
            }
        }
        for (key, column) in self.columns() {
            if let Some(c) = column {
                if c.trim().is_empty() {
                    return bad(format!("{key} names an empty column"));
                }
            }
        }
        if let Some(format) = &self.date_format {
            use chrono::format::{Item, StrftimeItems};
            if format.trim().is_empty()
                || StrftimeItems::new(format).any(|i| matches!(i, Item::Error))
            {
                return bad(format!(
                    "date_format '{}' is not a strftime format like %d.%m.%Y",
                    clip(format)
                ));
            }
        }
        Ok(())
    }

    fn columns(&self) -> [(&'static str, Option<&String>); 12] {
        [
            ("date", Some(&self.date)),
            ("time", self.time.as_ref()),
            ("sum", self.sum.as_ref()),
            ("credit", self.credit.as_ref()),
            ("debit", self.debit.as_ref()),
            ("purpose", Some(&self.purpose)),
            ("payer_code", self.payer_code.as_ref()),
            ("payer_name", self.payer_name.as_ref()),
            ("payer_account", self.payer_account.as_ref()),
            ("id", self.id.as_ref()),
            ("number", self.number.as_ref()),
            ("currency", self.currency.as_ref()),
        ]
    }
}

/// The fields of one record, or `None` when a quoted field runs past the end of the text
/// (the record goes on on the next line).
fn split_record(text: &str, delimiter: char) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                match chars.peek() {
                    Some('"') => {
                        field.push('"');
                        chars.next();
                    }
                    Some(&next) if next != delimiter => field.push('"'),
                    _ => in_quotes = false,
                }
            } else {
                field.push(c);
            }
            continue;
        }
        if c == delimiter {
            fields.push(std::mem::take(&mut field));
            at_start = true;
            continue;
        }
        if c == '"' && at_start && field.trim().is_empty() {
            field.clear();
            in_quotes = true;
        } else {
            field.push(c);
        }
        at_start = false;
    }
    if in_quotes {
        return None;
    }
    fields.push(field);
    Some(fields)
}

/// Column positions, found in the header row.
struct Columns {
    date: usize,
    time: Option<usize>,
    sum: Option<usize>,
    credit: Option<usize>,
    debit: Option<usize>,
    purpose: usize,
    payer_code: Option<usize>,
    payer_name: Option<usize>,
    payer_account: Option<usize>,
    id: Option<usize>,
    number: Option<usize>,
    currency: Option<usize>,
    /// The most fields a row needs.
    width: usize,
}

/// A physical line: its number and its text, or why it cannot be decoded.
type Physical = (u64, Result<String, String>);

/// A CSV file read through a [`CsvPreset`], record by record: the header at
/// [`Reader::new`], then one [`StatementRow`] (or [`RowError`]) per data row.
pub struct Reader<R> {
    lines: Lines<R>,
    preset: CsvPreset,
    encoding: Encoding,
    mark: DecimalMark,
    columns: Columns,
    /// Lines read ahead for an unclosed quote and handed back when it never closed.
    replay: VecDeque<Physical>,
    rows: usize,
    failed: Option<io::Error>,
    stopped: bool,
}

impl<R: BufRead> Reader<R> {
    /// Checks the preset, skips its `skip_rows` lines and reads the header row. Refused
    /// when a column the preset names is not in the header (the error lists the header's
    /// names, to copy from).
    pub fn new(input: R, preset: &CsvPreset) -> Result<Reader<R>, Error> {
        preset.check()?;
        let encoding = preset.encoding().unwrap_or(Encoding::Cp1251);
        let mark = if preset.decimal_comma {
            DecimalMark::Comma
        } else {
            DecimalMark::Point
        };
        let mut lines = Lines::new(input);
        let io_err = |line: u64, source: io::Error| Error::Io { line, source };
        let not_format = |why: String| Error::NotFormat {
            format: Format::Csv,
            why: format!("preset '{}': {why}", preset.name),
        };
        for _ in 0..preset.skip_rows {
            let n = lines.number;
            if lines.next_line().map_err(|e| io_err(n, e))?.is_none() {
                return Err(not_format(format!(
                    "the file has fewer than the {} lines skip_rows skips",
                    preset.skip_rows
                )));
            }
        }
        let mut reader = Reader {
            lines,
            preset: preset.clone(),
            encoding,
            mark,
            columns: Columns {
                date: 0,
                time: None,
                sum: None,
                credit: None,
                debit: None,
                purpose: 0,
                payer_code: None,
                payer_name: None,
                payer_account: None,
                id: None,
                number: None,
                currency: None,
                width: 0,
            },
            replay: VecDeque::new(),
            rows: 0,
            failed: None,
            stopped: false,
        };
        let (line, header) = loop {
            match reader.record() {
                Err(e) => return Err(io_err(reader.lines.number, e)),
                Ok(None) => return Err(not_format("the file has no header row".into())),
                Ok(Some((line, Err(why)))) => {
                    return Err(not_format(format!("the header row (line {line}): {why}")))
                }
                Ok(Some((_, Ok(fields)))) if fields.iter().all(|f| f.trim().is_empty()) => {}
                Ok(Some((line, Ok(fields)))) => break (line, fields),
            }
        };
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if i == 0 {
                    h.trim_start_matches('\u{FEFF}')
                } else {
                    h
                };
                h.trim().to_lowercase()
            })
            .collect();
        if encoding == Encoding::Cp1251 && header.first().is_some_and(|h| h.starts_with("п»ї")) {
            return Err(not_format(
                "the file starts with a UTF-8 byte order mark but the preset says cp1251: \
                 set encoding = \"utf-8\""
                    .into(),
            ));
        }
        let find = |key: &str, column: Option<&String>| -> Result<Option<usize>, Error> {
            let Some(column) = column else {
                return Ok(None);
            };
            let want = column.trim().to_lowercase();
            match names.iter().position(|n| *n == want) {
                Some(i) => Ok(Some(i)),
                None => Err(not_format(format!(
                    "{key} = '{}' is not a column of the header row (line {line}): it has {}",
                    clip(column),
                    header
                        .iter()
                        .map(|h| format!("'{}'", clip(h.trim())))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        };
        let p = preset;
        let required =
            |key: &str, column: &String| find(key, Some(column)).map(|i| i.unwrap_or_default());
        let mut columns = Columns {
            date: required("date", &p.date)?,
            time: find("time", p.time.as_ref())?,
            sum: find("sum", p.sum.as_ref())?,
            credit: find("credit", p.credit.as_ref())?,
            debit: find("debit", p.debit.as_ref())?,
            purpose: required("purpose", &p.purpose)?,
            payer_code: find("payer_code", p.payer_code.as_ref())?,
            payer_name: find("payer_name", p.payer_name.as_ref())?,
            payer_account: find("payer_account", p.payer_account.as_ref())?,
            id: find("id", p.id.as_ref())?,
            number: find("number", p.number.as_ref())?,
            currency: find("currency", p.currency.as_ref())?,
            width: 0,
        };
        columns.width = [
            Some(columns.date),
            columns.time,
            columns.sum,
            columns.credit,
            columns.debit,
            Some(columns.purpose),
            columns.payer_code,
            columns.payer_name,
            columns.payer_account,
            columns.id,
            columns.number,
            columns.currency,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1;
        reader.columns = columns;
        Ok(reader)
    }

    /// After the rows: `Err` when reading the file failed part way.
    pub fn finish(self) -> Result<(), Error> {
        match self.failed {
            Some(source) => Err(Error::Io {
                line: self.lines.number,
                source,
            }),
            None => Ok(()),
        }
    }

    fn physical(&mut self) -> io::Result<Option<Physical>> {
        if let Some(line) = self.replay.pop_front() {
            return Ok(Some(line));
        }
        let encoding = self.encoding;
        let Some(line) = self.lines.next_line()? else {
            return Ok(None);
        };
        let text = if line.too_long {
            Err(format!("longer than {} bytes", super::MAX_LINE))
        } else {
            match encoding {
                Encoding::Cp1251 => Ok(cp1251::decode(line.bytes)),
                Encoding::Utf8 => {
                    std::str::from_utf8(line.bytes)
                        .map(str::to_string)
                        .map_err(|e| {
                            format!(
                                "not UTF-8 (bad byte at {}): is the preset's encoding right?",
                                e.valid_up_to() + 1
                            )
                        })
                }
            }
        };
        Ok(Some((self.lines.number, text)))
    }

    /// The next record: its first line and its fields, or why it cannot be read.
    #[allow(clippy::type_complexity)]
    fn record(&mut self) -> io::Result<Option<(u64, Result<Vec<String>, String>)>> {
        let Some((first, text)) = self.physical()? else {
            return Ok(None);
        };
        let mut text = match text {
            Ok(t) => t,
            Err(why) => return Ok(Some((first, Err(format!("line {first} is {why}"))))),
        };
        let delimiter = self.preset.delimiter;
        let mut more: Vec<Physical> = Vec::new();
        loop {
            if let Some(fields) = split_record(&text, delimiter) {
                return Ok(Some((first, Ok(fields))));
            }
            let next = if more.len() + 1 >= MAX_RECORD_LINES || text.len() > super::MAX_LINE {
                None
            } else {
                self.physical()?
            };
            match next {
                Some((n, Ok(line))) => {
                    text.push('\n');
                    text.push_str(&line);
                    more.push((n, Ok(line)));
                }
                other => {
                    // The quote never closes: this record is lost, the lines after its
                    // first are read again as records of their own.
                    if let Some(line) = other {
                        more.push(line);
                    }
                    for line in more.into_iter().rev() {
                        self.replay.push_front(line);
                    }
                    return Ok(Some((
                        first,
                        Err(format!(
                            "a quoted field opened on line {first} does not close within {} \
                             lines",
                            MAX_RECORD_LINES
                        )),
                    )));
                }
            }
        }
    }

    fn row(&self, number: usize, line: u64, fields: &[String]) -> Result<StatementRow, RowError> {
        let mut id = None;
        let fail = |id: &Option<RowId>, why: String| RowError {
            row: number,
            line: Some(line),
            id: id.clone(),
            why,
        };
        let c = &self.columns;
        let p = &self.preset;
        if fields.len() < c.width {
            return Err(fail(
                &id,
                format!(
                    "{} fields, the preset's columns need {}",
                    fields.len(),
                    c.width
                ),
            ));
        }
        let cell = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
        let opt = |i: Option<usize>| i.map(cell).unwrap_or("");
        if let Some(i) = c.id {
            id = Some(RowId::from_bank(cell(i)).map_err(|_| {
                fail(
                    &None,
                    format!("{} (id) is empty", p.id.as_deref().unwrap_or("")),
                )
            })?);
        }

        let date_text = cell(c.date);
        let parsed = match &p.date_format {
            Some(format) => NaiveDateTime::parse_from_str(date_text, format)
                .map(|dt| (dt.date(), Some(dt.time())))
                .or_else(|_| NaiveDate::parse_from_str(date_text, format).map(|d| (d, None)))
                .ok(),
            None => parse_date_time(date_text),
        };
        let (date, mut time) = parsed.ok_or_else(|| {
            fail(
                &id,
                format!(
                    "{} '{}' is not a date{}",
                    p.date,
                    clip(date_text),
                    p.date_format
                        .as_ref()
                        .map(|f| format!(" in the form {f}"))
                        .unwrap_or_default()
                ),
            )
        })?;
        if let Some(i) = c.time {
            let t = cell(i);
            if !t.is_empty() {
                time = Some(parse_time(t).ok_or_else(|| {
                    fail(
                        &id,
                        format!(
                            "{} '{}' is not a time HH:MM[:SS]",
                            p.time.as_deref().unwrap_or(""),
                            clip(t)
                        ),
                    )
                })?);
            }
        }

        let (amount, direction) = match c.sum {
            Some(i) => {
                let (amount, negative) = parse_signed_sum(cell(i), self.mark)
                    .map_err(|e| fail(&id, format!("{}: {e}", p.sum.as_deref().unwrap_or(""))))?;
                if amount.is_zero() {
                    return Err(fail(
                        &id,
                        format!("{} is zero", p.sum.as_deref().unwrap_or("")),
                    ));
                }
                let direction = if negative {
                    Direction::Debit
                } else {
                    Direction::Credit
                };
                (amount, direction)
            }
            None => {
                let side = |i: Option<usize>, name: &Option<String>| -> Result<Amount, RowError> {
                    let text = opt(i);
                    if text.is_empty() {
                        return Ok(Amount::from_kopecks(0));
                    }
                    parse_signed_sum(text, self.mark)
                        .map(|(a, _)| a)
                        .map_err(|e| fail(&id, format!("{}: {e}", name.as_deref().unwrap_or(""))))
                };
                let credit = side(c.credit, &p.credit)?;
                let debit = side(c.debit, &p.debit)?;
                match (credit.is_zero(), debit.is_zero()) {
                    (false, true) => (credit, Direction::Credit),
                    (true, false) => (debit, Direction::Debit),
                    (true, true) => {
                        return Err(fail(
                            &id,
                            "both the credit and the debit are empty or zero".into(),
                        ))
                    }
                    (false, false) => {
                        return Err(fail(
                            &id,
                            format!(
                                "both the credit ({credit}) and the debit ({debit}) are filled"
                            ),
                        ))
                    }
                }
            }
        };

        let currency =
            match c.currency.map(cell) {
                None => None,
                Some(text) => Some(currency(text).map_err(|e| {
                    fail(&id, format!("{}: {e}", p.currency.as_deref().unwrap_or("")))
                })?),
            };
        let purpose = opt(Some(c.purpose)).to_string();
        let payer_account = account(opt(c.payer_account));
        let code_text = opt(c.payer_code);
        let id = match id {
            Some(id) => id,
            None => {
                let signed = match direction {
                    Direction::Credit => amount.to_string(),
                    Direction::Debit => format!("-{amount}"),
                };
                RowId::derived(
                    "csv",
                    &[
                        &date.to_string(),
                        &time.map(|t| t.to_string()).unwrap_or_default(),
                        opt(c.number),
                        &signed,
                        payer_account.as_deref().unwrap_or(""),
                        code_text,
                        &purpose,
                    ],
                )
            }
        };
        Ok(StatementRow {
            id,
            row: number,
            date,
            time,
            amount,
            direction,
            currency,
            purpose,
            payer_name: opt(c.payer_name).to_string(),
            payer_code: payer_code(code_text),
            payer_account,
            our_account: None,
            posted: true,
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<StatementRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.stopped {
                return None;
            }
            let (line, fields) = match self.record() {
                Err(e) => {
                    self.failed = Some(e);
                    self.stopped = true;
                    return None;
                }
                Ok(None) => {
                    self.stopped = true;
                    return None;
                }
                Ok(Some(record)) => record,
            };
            if let Ok(fields) = &fields {
                if fields.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
            }
            self.rows += 1;
            return Some(match fields {
                Ok(fields) => self.row(self.rows, line, &fields),
                Err(why) => Err(RowError {
                    row: self.rows,
                    line: Some(line),
                    id: None,
                    why,
                }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/statements/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The two presets of the module's doc, read from it through serde as the config will.
    fn doc_presets() -> Vec<CsvPreset> {
        #[derive(Deserialize)]
        struct Config {
            statement: Statement,
        }
        #[derive(Deserialize)]
        struct Statement {
            csv: Vec<CsvPreset>,
        }
        let source = include_str!("csv.rs");
        let mut toml = String::new();
        let mut inside = false;
        for line in source.lines().take_while(|l| l.starts_with("//!")) {
            let line = line.trim_start_matches("//!").trim_start_matches(' ');
            if line.starts_with("```") {
                inside = line == "```toml";
            } else if inside {
                toml.push_str(line);
                toml.push('\n');
            }
        }
        let config: Config = toml::from_str(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        config.statement.csv
    }

    fn read(bytes: &[u8], preset: &CsvPreset) -> Vec<Result<StatementRow, RowError>> {
        let mut reader = Reader::new(bytes, preset).unwrap();
        let rows: Vec<_> = reader.by_ref().collect();
        reader.finish().unwrap();
        rows
    }

    #[test]
    fn the_docs_presets_are_valid() {
        let presets = doc_presets();
        assert_eq!(presets.len(), 2);
        for p in &presets {
            p.check().unwrap();
        }
        assert_eq!(presets[0].delimiter, ';');
        assert_eq!(presets[1].skip_rows, 2);
    }

    #[test]
    fn ukrainian_bank_cp1251_every_field() {
        let preset = &doc_presets()[0];
        let bytes = fixture("csv-ua-bank-cp1251.csv");
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "the fixture is cp1251"
        );
        let rows = read(&bytes, preset);
        assert_eq!(rows.len(), 7);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            *first,
            StatementRow {
                id: first.id.clone(),
                row: 1,
                date: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
                time: NaiveTime::from_hms_opt(9, 14, 0),
                amount: Amount::from_kopecks(35000),
                direction: Direction::Credit,
                currency: None,
                purpose: "Плата за інтернет, о/р 103078, Петренко Петро Володимирович".into(),
                payer_name: "ПЕТРЕНКО ПЕТРО ВОЛОДИМИРОВИЧ".into(),
                payer_code: Some("3012345678".into()),
                payer_account: Some("UA213052990000026201234567890".into()),
                our_account: None,
                posted: true,
            }
        );
        assert!(first.id.as_str().starts_with("csv:") && first.id.as_str().len() == 36);
        // A quoted purpose with the delimiter, doubled quotes and a line break.
        let company = rows[1].as_ref().unwrap();
        assert_eq!(
            company.purpose,
            "Оплата за послуги доступу до Інтернет; рах. № СФ-1207 від 01.12.2026,\n\
             ТОВ \"Агро-Сервіс\", у т.ч. ПДВ 20%"
        );
        assert_eq!(company.amount, Amount::from_kopecks(1_250_000));
        assert_eq!(company.payer_code.as_deref(), Some("41234567"));
        let thousands = rows[2].as_ref().unwrap();
        assert_eq!(thousands.amount, Amount::from_kopecks(123_456));
        let fee = rows[3].as_ref().unwrap();
        assert_eq!(fee.direction, Direction::Debit);
        assert_eq!(fee.amount, Amount::from_kopecks(1575));
        let broken = rows[4].as_ref().unwrap_err();
        assert!(
            broken.why.contains("СУМА КРЕДИТ") && broken.why.contains("1.234"),
            "{broken}"
        );
        assert_eq!(broken.row, 5);
        // Same payer, sum and day as the first, another number: another id.
        let again = rows[5].as_ref().unwrap();
        assert_eq!(
            (again.amount, &again.payer_code),
            (first.amount, &first.payer_code)
        );
        assert_ne!(again.id, first.id);
        let lump = rows[6].as_ref().unwrap();
        assert!(lump.purpose.contains("згідно реєстру від 05.12.2026"));
    }

    #[test]
    fn online_bank_utf8_signed_amount() {
        let preset = &doc_presets()[1];
        let rows = read(&fixture("csv-online-bank-utf8.csv"), preset);
        assert_eq!(rows.len(), 5);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            *first,
            StatementRow {
                id: RowId::from_bank("TX-20261205-000117").unwrap(),
                row: 1,
                date: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
                time: NaiveTime::from_hms_opt(10, 15, 42),
                amount: Amount::from_kopecks(40000),
                direction: Direction::Credit,
                currency: Some("UAH".into()),
                purpose: "Оплата за послуги інтернет ос.рах 00117".into(),
                payer_name: "Сидоренко Олена Ігорівна".into(),
                payer_code: Some("3198765432".into()),
                payer_account: Some("UA583220010000026209301234567".into()),
                our_account: None,
                posted: true,
            }
        );
        assert_eq!(rows[1].as_ref().unwrap().direction, Direction::Debit);
        assert_eq!(rows[1].as_ref().unwrap().amount, Amount::from_kopecks(2500));
        assert_eq!(rows[2].as_ref().unwrap().currency.as_deref(), Some("USD"));
        assert_eq!(
            rows[2].as_ref().unwrap().amount,
            Amount::from_kopecks(1_234_567)
        );
        let e = rows[3].as_ref().unwrap_err();
        assert!(e.why.contains("Date") && e.why.contains("%Y-%m-%d"), "{e}");
        assert_eq!(e.id.as_ref().map(RowId::as_str), Some("TX-20261205-000121"));
        assert!(rows[4].is_ok());
    }

    #[test]
    fn the_same_payment_in_cp1251_and_utf8_has_one_id() {
        let preset = &doc_presets()[0];
        let cp = fixture("csv-ua-bank-cp1251.csv");
        let utf8 = cp1251::decode(&cp).replace("\r\n", "\n");
        let utf8_preset = CsvPreset {
            encoding: "utf-8".into(),
            ..preset.clone()
        };
        let a = read(&cp, preset);
        let b = read(utf8.as_bytes(), &utf8_preset);
        assert_eq!(a, b);
    }

    #[test]
    fn records_split_like_rfc_4180_and_forgive_stray_quotes() {
        let table: &[(&str, Option<&[&str]>)] = &[
            ("a;b;c", Some(&["a", "b", "c"])),
            ("\"a;b\";c", Some(&["a;b", "c"])),
            ("\"say \"\"hi\"\"\";x", Some(&["say \"hi\"", "x"])),
            (
                "\"ТОВ \"Ромашка\" ЛТД\";1",
                Some(&["ТОВ \"Ромашка\" ЛТД", "1"]),
            ),
            ("5 \"inch\";1", Some(&["5 \"inch\"", "1"])),
            (";;", Some(&["", "", ""])),
            ("", Some(&[""])),
            ("\"open;", None),
            ("\"", None),
        ];
        for (text, want) in table {
            let got = split_record(text, ';');
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn an_unclosed_quote_loses_one_row_not_the_file() {
        let preset = CsvPreset {
            encoding: "utf-8".into(),
            ..doc_presets()[0].clone()
        };
        let mut text = String::from(
            "ДАТА;ЧАС;НОМЕР;ПРИЗНАЧЕННЯ;КОД ІДЕНТ.;КОНТРАГЕНТ;РАХУНОК КОНТРАГЕНТА;КОД ID НБУ;\
             СУМА ДЕБЕТ;СУМА КРЕДИТ\n05.12.2026;10:00;1;\"о/р 5;;;;;;100,00\n",
        );
        for i in 0..30 {
            text.push_str(&format!("05.12.2026;10:{i:02};{i};о/р {i};;;;;;{i},00\n"));
        }
        let rows = read(text.as_bytes(), &preset);
        assert!(rows[0].as_ref().unwrap_err().why.contains("does not close"));
        assert_eq!(rows.len(), 31);
        // The row with 0,00 is a zero payment: an error of its own.
        assert!(rows[1].as_ref().unwrap_err().why.contains("zero"));
        for (i, row) in rows[2..].iter().enumerate() {
            assert_eq!(row.as_ref().unwrap().amount.kopecks(), (i as i64 + 1) * 100);
        }
    }

    #[test]
    fn bad_presets_say_what_to_fix() {
        let good = doc_presets()[0].clone();
        let cases: Vec<(CsvPreset, &str)> = vec![
            (
                CsvPreset {
                    name: " ".into(),
                    ..good.clone()
                },
                "name is empty",
            ),
            (
                CsvPreset {
                    delimiter: '"',
                    ..good.clone()
                },
                "delimiter",
            ),
            (
                CsvPreset {
                    encoding: "koi8-r".into(),
                    ..good.clone()
                },
                "koi8-r",
            ),
            (
                CsvPreset {
                    sum: Some("СУМА".into()),
                    ..good.clone()
                },
                "both `sum` and",
            ),
            (
                CsvPreset {
                    credit: None,
                    debit: None,
                    ..good.clone()
                },
                "no sum column",
            ),
            (
                CsvPreset {
                    time: Some("".into()),
                    ..good.clone()
                },
                "time names an empty",
            ),
            (
                CsvPreset {
                    date_format: Some("%Q".into()),
                    ..good.clone()
                },
                "date_format",
            ),
        ];
        for (preset, want) in cases {
            let e = preset.check().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = Reader::new(&b"A;B\n"[..], &good).err().unwrap().to_string();
        assert!(
            e.contains("date = 'ДАТА' is not a column") && e.contains("'A', 'B'"),
            "{e}"
        );
        let e = Reader::new(&b"\xEF\xBB\xBFX\n"[..], &good)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("utf-8"), "{e}");
        let skip = CsvPreset {
            skip_rows: 5,
            ..good.clone()
        };
        let e = Reader::new(&b"x\n"[..], &skip).err().unwrap().to_string();
        assert!(e.contains("skip_rows"), "{e}");
        // An unknown key in the config is refused by serde, not ignored.
        let e =
            toml::from_str::<CsvPreset>("name='x'\ndate='D'\npurpose='P'\nsum='S'\ndelimeter=','")
                .unwrap_err()
                .to_string();
        assert!(e.contains("delimeter"), "{e}");
        // Defaults: `;`, cp1251.
        let p: CsvPreset = toml::from_str("name='x'\ndate='D'\npurpose='P'\nsum='S'").unwrap();
        assert_eq!(
            (p.delimiter, p.encoding.as_str(), p.skip_rows),
            (';', "cp1251", 0)
        );
    }
}
