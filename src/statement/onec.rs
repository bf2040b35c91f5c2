//! `1CClientBankExchange`: the text file most banks in Kazakhstan and Russia, and some in
//! Ukraine, export statements in for 1C:Accounting. `../shared/PROTOCOLS.md` §9.
//!
//! ```text
//! 1CClientBankExchange
//! ВерсияФормата=1.03
//! Кодировка=Windows
//! РасчСчет=UA903052990000026007233566001
//! СекцияРасчСчет
//! РасчСчет=UA903052990000026007233566001
//! КонецРасчСчет
//! СекцияДокумент=Платіжне доручення
//! Номер=17
//! Дата=05.12.2026
//! Сумма=350.00
//! …
//! КонецДокумента
//! КонецФайла
//! ```
//!
//! Two dialects, told apart by their keys rather than by `ВерсияФормата` (exports mix
//! them):
//!
//! * 1.03 (Russian and Ukrainian banks): `Номер`, `Дата`, `Сумма`, `ПлательщикСчет`,
//!   `ПлательщикИНН`, `Плательщик1` or `Плательщик`, `ПолучательСчет`, `ДатаПоступило`
//!   (credited to the receiver) / `ДатаСписано` (debited from the payer),
//!   `НазначениеПлатежа` (some exports misspell it `НазначениениеПлатежа`, some split it
//!   into `НазначениеПлатежа1`…`6`).
//! * 2.00 (Kazakh banks): `НомерДокумента`, `ДатаДокумента`, `СуммаПриход` /
//!   `СуммаРасход` (the direction is which one is filled), `ПлательщикБИН_ИИН`,
//!   `ПлательщикИИК`, `ПлательщикНаименование`, `ПолучательИИК`, `ДатаОперации`,
//!   `НазначениеПлатежа`, `КодНазначенияПлатежа` (a КНП code, not part of the purpose
//!   text and not in the row).
//!
//! Keys and section keywords are matched without regard to case (`СЕКЦИЯДОКУМЕНТ`,
//! `КонецДокумента`), lines end in CRLF or LF, sums use `.` or `,` as the decimal mark.
//!
//! **Encoding.** `Кодировка=Windows` means Windows-1251, but exports relabelled or
//! re-saved as UTF-8 exist, so the bytes decide: the first line with non-ASCII bytes
//! (every key but the first line is Cyrillic, so that is the second line) is UTF-8 when it
//! is valid UTF-8 and Windows-1251 otherwise. Windows-1251 Cyrillic is never valid UTF-8
//! on a whole line of it (a letter byte 0xC0–0xFF would need a 0x80–0xBF after it), so
//! the test does not misjudge real files. DOS (cp866) exports are not read: export with
//! `Кодировка=Windows`.
//!
//! **Direction.** A document is a credit when its receiver's account (`ПолучательСчет`,
//! `ПолучательРасчСчет`, `ПолучательИИК`) is one of ours — the file's `РасчСчет` values,
//! plus any the caller adds ([`Reader::add_our_account`]) — and a debit when the payer's
//! is. When neither is (a file without `РасчСчет`), the dates say: only `ДатаПоступило`
//! filled is a credit, only `ДатаСписано` a debit; both or neither is a [`RowError`] (banks
//! fill both on incoming documents too). In 2.00, `СуммаПриход` > 0 is a credit and
//! `СуммаРасход` > 0 a debit, whatever the accounts.
//!
//! **Posted and date.** The row's date is the day the money moved: `ДатаПоступило` for a
//! credit, `ДатаСписано` for a debit, `ДатаОперации` (2.00), the other one as a fallback.
//! A document with one of these keys but all of them empty is not posted (an order the
//! bank has not executed) and is dated by its `Дата`. A document with none of these keys
//! is posted, dated by `Дата`: a bank's statement lists executed operations, and some
//! exports simply leave the keys out.
//!
//! **Row id.** The format has none, so [`RowId::derived`] makes one: `1c:` and SHA-256 of
//! the document's date, number, sum, payer's account, payer's code and purpose:
//!
//! * the date and number, because a payer's bank numbers its documents per payer and
//!   year: two payments by the same payer for the same sum on the same day still have
//!   different numbers;
//! * the sum, payer's account and code, because numbers restart at each payer (two payers
//!   both send their No. 1);
//! * the purpose, for exports that leave the number empty.
//!
//! No field that depends on the export goes in (not the line, the order, the file's
//! period, the encoding, the receiver's account label), so exporting the same day again,
//! alone or within a month, in cp1251 or UTF-8, gives the same ids. The weakness: two
//! documents with all six fields equal get one id — a payer sending the same numbered
//! order twice, which their bank does not allow; a bank that leaves `Номер` empty and
//! a payer who pays the same sum twice a day with the same purpose would also collide, and
//! the importer would see the second as a repeat.

use std::io::{self, BufRead, Write};

use chrono::NaiveDate;

use super::{
    account, clip, currency, parse_date_time, parse_sum, payer_code, DecimalMark, Direction, Error,
    Format, Lines, RowError, RowId, StatementRow,
};
use crate::cp1251;
use crate::domain::Amount;

const F: Format = Format::OneC;

/// The first line of every 1C exchange file.
const HEADER: &str = "1CClientBankExchange";

/// More keys than any document has: a document that goes on past this is not one.
const MAX_FIELDS: usize = 400;

/// More text than any document has (its keys and values together), so that one document
/// of long lines cannot hold hundreds of them in memory.
const MAX_DOC_BYTES: usize = 256 * 1024;

/// Whether `bytes` (the start of a file, after any BOM and leading blank lines) is the
/// `1CClientBankExchange` line, in any case.
pub(crate) fn is_header_line(bytes: &[u8]) -> bool {
    let n = HEADER.len();
    bytes.len() >= n
        && bytes[..n].eq_ignore_ascii_case(HEADER.as_bytes())
        && bytes[n..]
            .iter()
            .take_while(|&&b| b != b'\n')
            .all(|b| b.is_ascii_whitespace())
}

/// The text encoding of a 1C file, as read from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Cp1251,
    Utf8,
}

/// A document being read: its place and its `key=value` pairs (keys lower case).
struct Doc {
    number: usize,
    line: u64,
    bytes: usize,
    broken: Option<String>,
}

/// A 1C file, read line by line: the header at [`Reader::new`], then one
/// [`StatementRow`] (or [`RowError`]) per document as the iterator is advanced. Memory is
/// one line and one document, whatever the file's size.
pub struct Reader<R> {
    lines: Lines<R>,
    encoding: Option<Encoding>,
    version: Option<String>,
    our_accounts: Vec<String>,
    period: (Option<NaiveDate>, Option<NaiveDate>),
    /// The `СекцияДокумент` line that ended the header, read but not yet handled.
    pending_doc: Option<u64>,
    doc: Option<Doc>,
    fields: Vec<(String, String)>,
    documents: usize,
    end_seen: bool,
    stopped: bool,
    failed: Option<io::Error>,
}

/// What a line says.
enum Line {
    Blank,
    DocStart,
    DocEnd,
    FileEnd,
    Pair(String, String),
    /// A line that is not `key=value` nor a keyword.
    Other,
}

fn classify(text: &str) -> Line {
    let text = text.trim();
    if text.is_empty() {
        return Line::Blank;
    }
    let (key, value) = match text.split_once('=') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => (text, ""),
    };
    let key = key.to_lowercase();
    match key.as_str() {
        "секциядокумент" => Line::DocStart,
        "конецдокумента" => Line::DocEnd,
        "конецфайла" => Line::FileEnd,
        _ if text.contains('=') => Line::Pair(key, value.to_string()),
        _ => Line::Other,
    }
}

impl<R: BufRead> Reader<R> {
    /// Reads the header: the `1CClientBankExchange` line (after a UTF-8 BOM and blank
    /// lines), then `ВерсияФормата`, `Кодировка`, `ДатаНачала`, `ДатаКонца`, the
    /// `РасчСчет` values (in the header and in each `СекцияРасчСчет`), up to the first
    /// document. Refused when the first line is not the header.
    pub fn new(input: R) -> Result<Reader<R>, Error> {
        let mut reader = Reader {
            lines: Lines::new(input),
            encoding: None,
            version: None,
            our_accounts: Vec::new(),
            period: (None, None),
            pending_doc: None,
            doc: None,
            fields: Vec::new(),
            documents: 0,
            end_seen: false,
            stopped: false,
            failed: None,
        };
        // The first non-blank line.
        loop {
            let number = reader.lines.number;
            let line = reader.lines.next_line().map_err(|source| Error::Io {
                line: number,
                source,
            })?;
            let Some(line) = line else {
                return Err(Error::NotFormat {
                    format: F,
                    why: "the file is empty".into(),
                });
            };
            let bytes = if number == 0 {
                line.bytes
                    .strip_prefix(b"\xEF\xBB\xBF")
                    .unwrap_or(line.bytes)
            } else {
                line.bytes
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let start = bytes
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(0);
            if !is_header_line(&bytes[start..]) {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
                return Err(Error::NotFormat {
                    format: F,
                    why: format!("line {} is '{}', not {HEADER}", number + 1, clip(&shown)),
                });
            }
            break;
        }
        // Header keys, up to the first document.
        loop {
            let number = reader.lines.number;
            let text = match reader.lines.next_line() {
                Err(source) => {
                    return Err(Error::Io {
                        line: number,
                        source,
                    })
                }
                Ok(None) => break,
                Ok(Some(line)) => {
                    let bytes = line.bytes.to_vec();
                    match reader.decode(&bytes) {
                        Ok(t) => t,
                        // An undecodable header line names nothing we need.
                        Err(_) => continue,
                    }
                }
            };
            match classify(&text) {
                Line::DocStart => {
                    reader.pending_doc = Some(reader.lines.number);
                    break;
                }
                Line::FileEnd => {
                    reader.end_seen = true;
                    reader.stopped = true;
                    break;
                }
                Line::Pair(key, value) => reader.header_pair(&key, &value),
                Line::DocEnd | Line::Blank | Line::Other => {}
            }
        }
        Ok(reader)
    }

    fn header_pair(&mut self, key: &str, value: &str) {
        match key {
            "версияформата" => self.version = Some(value.to_string()),
            "расчсчет" => self.add_our_account(value),
            "датаначала" => self.period.0 = parse_date_time(value).map(|d| d.0),
            "датаконца" => self.period.1 = parse_date_time(value).map(|d| d.0),
            _ => {}
        }
    }

    /// Counts `account` as ours too, for deciding direction: for a file whose header
    /// names no `РасчСчет`, or names another spelling of it.
    pub fn add_our_account(&mut self, account_text: &str) {
        if let Some(a) = account(account_text) {
            if !self.our_accounts.contains(&a) {
                self.our_accounts.push(a);
            }
        }
    }

    /// `ВерсияФормата`, as the file writes it (`1.03`, `2.00`).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Our accounts: the file's `РасчСчет` values and those added, normalised (upper
    /// case, no spaces).
    pub fn our_accounts(&self) -> &[String] {
        &self.our_accounts
    }

    /// `ДатаНачала` and `ДатаКонца`: the days the statement covers.
    pub fn period(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        self.period
    }

    /// The encoding read from the bytes; `None` while every line so far was ASCII.
    pub fn encoding(&self) -> Option<Encoding> {
        self.encoding
    }

    /// After the rows: `Err` when reading failed part way ([`Error::Io`]) or the file has
    /// no `КонецФайла` ([`Error::Truncated`]: cut short, rows may be missing after the
    /// last one). The rows already read stand either way; each was a whole document.
    pub fn finish(self) -> Result<(), Error> {
        if let Some(source) = self.failed {
            return Err(Error::Io {
                line: self.lines.number,
                source,
            });
        }
        if !self.end_seen {
            return Err(Error::Truncated {
                format: F,
                line: self.lines.number,
            });
        }
        Ok(())
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<String, String> {
        if bytes.is_ascii() {
            return Ok(String::from_utf8_lossy(bytes).into_owned());
        }
        match self.encoding {
            Some(Encoding::Cp1251) => Ok(cp1251::decode(bytes)),
            Some(Encoding::Utf8) => std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
                format!(
                    "line {} is not UTF-8 like the lines before it (bad byte at {})",
                    self.lines.number,
                    e.valid_up_to() + 1
                )
            }),
            None => match std::str::from_utf8(bytes) {
                Ok(t) => {
                    self.encoding = Some(Encoding::Utf8);
                    Ok(t.to_string())
                }
                Err(_) => {
                    self.encoding = Some(Encoding::Cp1251);
                    Ok(cp1251::decode(bytes))
                }
            },
        }
    }

    fn start_doc(&mut self, line: u64) {
        self.documents += 1;
        self.fields.clear();
        self.doc = Some(Doc {
            number: self.documents,
            line,
            bytes: 0,
            broken: None,
        });
    }

    fn unterminated(&self, doc: &Doc, why: &str) -> RowError {
        RowError {
            row: doc.number,
            line: Some(doc.line),
            id: None,
            why: format!("the document has no КонецДокумента: {why}"),
        }
    }

    fn get(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| {
            self.fields
                .iter()
                .find(|(key, value)| key == k && !value.is_empty())
                .map(|(_, v)| v.as_str())
        })
    }

    fn has(&self, key: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == key)
    }

    fn is_ours(&self, acc: Option<&str>) -> bool {
        acc.and_then(account)
            .is_some_and(|a| self.our_accounts.contains(&a))
    }

    fn row(&self, doc: &Doc) -> Result<StatementRow, RowError> {
        let fail = |why: String| RowError {
            row: doc.number,
            line: Some(doc.line),
            id: None,
            why,
        };
        if let Some(why) = &doc.broken {
            return Err(fail(why.clone()));
        }
        let number = self.get(&["номер", "номердокумента"]).unwrap_or("");
        let payer_acc = self.get(&["плательщиксчет", "плательщикрасчсчет", "плательщикиик"]);
        let receiver_acc = self.get(&["получательсчет", "получательрасчсчет", "получательиик"]);
        let credited = self.get(&["датапоступило"]);
        let debited = self.get(&["датасписано"]);
        let operated = self.get(&["датаоперации"]);

        // The sum and the direction.
        let sum_of = |key: &str, name: &str| match self.get(&[key]) {
            None => Ok(Amount::from_kopecks(0)),
            Some(text) => {
                parse_sum(text, DecimalMark::Either).map_err(|e| fail(format!("{name}: {e}")))
            }
        };
        let (amount, direction) =
            if self.has("суммаприход") || self.has("суммарасход") {
                let incoming = sum_of("суммаприход", "СуммаПриход")?;
                let outgoing = sum_of("суммарасход", "СуммаРасход")?;
                match (incoming.is_zero(), outgoing.is_zero()) {
                    (false, true) => (incoming, Direction::Credit),
                    (true, false) => (outgoing, Direction::Debit),
                    (true, true) => {
                        return Err(fail(
                            "СуммаПриход and СуммаРасход are both zero or empty".into(),
                        ))
                    }
                    (false, false) => {
                        return Err(fail(format!(
                        "both СуммаПриход ({incoming}) and СуммаРасход ({outgoing}) are filled: \
                         which way did the money go?"
                    )))
                    }
                }
            } else {
                let amount = match self.get(&["сумма"]) {
                    None => return Err(fail("no Сумма".into())),
                    Some(text) => parse_sum(text, DecimalMark::Either)
                        .map_err(|e| fail(format!("Сумма: {e}")))?,
                };
                if amount.is_zero() {
                    return Err(fail("Сумма is zero".into()));
                }
                let direction = if self.is_ours(receiver_acc) {
                    Direction::Credit
                } else if self.is_ours(payer_acc) {
                    Direction::Debit
                } else if let (Some(_), None) = (credited, debited) {
                    Direction::Credit
                } else if let (None, Some(_)) = (credited, debited) {
                    Direction::Debit
                } else {
                    let ours = if self.our_accounts.is_empty() {
                        "the file names no РасчСчет".to_string()
                    } else {
                        format!("ours: {}", self.our_accounts.join(", "))
                    };
                    return Err(fail(format!(
                    "neither the payer's account ({}) nor the receiver's ({}) is ours ({ours}), \
                     and not just one of ДатаПоступило and ДатаСписано is filled: cannot tell a \
                     credit from a debit",
                    clip(payer_acc.unwrap_or("none")),
                    clip(receiver_acc.unwrap_or("none"))
                )));
                };
                (amount, direction)
            };

        // Dates.
        let doc_date_text = self.get(&["дата", "датадокумента"]);
        let doc_date =
            match doc_date_text {
                None => None,
                Some(text) => Some(parse_date_time(text).ok_or_else(|| {
                    fail(format!("Дата '{}' is not a day DD.MM.YYYY", clip(text)))
                })?),
            };
        let has_posting_keys =
            self.has("датапоступило") || self.has("датасписано") || self.has("датаоперации");
        let posting_text = match direction {
            Direction::Credit => credited.or(operated).or(debited),
            Direction::Debit => debited.or(operated).or(credited),
        };
        let posting = match posting_text {
            None => None,
            Some(text) => Some(parse_date_time(text).ok_or_else(|| {
                fail(format!(
                    "the posting date '{}' is not a day DD.MM.YYYY",
                    clip(text)
                ))
            })?),
        };
        let posted = posting.is_some() || !has_posting_keys;
        let (date, time) = match (posting, doc_date) {
            (Some(p), _) => p,
            (None, Some(d)) => d,
            (None, None) => return Err(fail("no Дата and no posting date".into())),
        };

        // The other side.
        let side = |payer: &[&str], receiver: &[&str]| match direction {
            Direction::Credit => self.get(payer),
            Direction::Debit => self.get(receiver),
        };
        let name = side(
            &["плательщик1", "плательщикнаименование", "плательщик"],
            &["получатель1", "получательнаименование", "получатель"],
        );
        let code_keys_payer = [
            "плательщикинн",
            "плательщикбин_иин",
            "плательщикбиниин",
            "плательщикокпо",
            "плательщикедрпоу",
        ];
        let code_keys_receiver = [
            "получательинн",
            "получательбин_иин",
            "получательбиниин",
            "получательокпо",
            "получательедрпоу",
        ];
        let code = side(&code_keys_payer, &code_keys_receiver);
        let (counter_acc, our_acc) = match direction {
            Direction::Credit => (payer_acc, receiver_acc),
            Direction::Debit => (receiver_acc, payer_acc),
        };

        let purpose = match self.get(&["назначениеплатежа", "назначениениеплатежа"])
        {
            Some(p) => p.to_string(),
            None => (1..=6)
                .filter_map(|i| self.get(&[format!("назначениеплатежа{i}").as_str()]))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let currency = match self.get(&["валюта", "кодвалюты"]) {
            None => None,
            Some(text) => Some(currency(text).map_err(|e| fail(format!("Валюта: {e}")))?),
        };

        let id_date = doc_date.map(|d| d.0).unwrap_or(date).to_string();
        let id = RowId::derived(
            "1c",
            &[
                &id_date,
                number,
                &amount.to_string(),
                &payer_acc.and_then(account).unwrap_or_default(),
                self.get(&code_keys_payer).unwrap_or(""),
                &purpose,
            ],
        );

        Ok(StatementRow {
            id,
            row: doc.number,
            date,
            time,
            amount,
            direction,
            currency,
            purpose,
            payer_name: name.unwrap_or("").to_string(),
            payer_code: code.and_then(payer_code),
            payer_account: counter_acc.and_then(account),
            our_account: our_acc.and_then(account),
            posted,
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<StatementRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(line) = self.pending_doc.take() {
            self.start_doc(line);
        }
        loop {
            if self.stopped {
                return None;
            }
            let number = self.lines.number + 1;
            let (bytes, too_long) = match self.lines.next_line() {
                Err(e) => {
                    self.failed = Some(e);
                    self.stopped = true;
                    return self
                        .doc
                        .take()
                        .map(|doc| Err(self.unterminated(&doc, "reading the file failed")));
                }
                Ok(None) => {
                    self.stopped = true;
                    return self
                        .doc
                        .take()
                        .map(|doc| Err(self.unterminated(&doc, "the file ends inside it")));
                }
                Ok(Some(line)) => (line.bytes.to_vec(), line.too_long),
            };
            let text = match self.decode(&bytes) {
                Ok(t) => t,
                Err(why) => {
                    if let Some(doc) = &mut self.doc {
                        doc.broken.get_or_insert(why);
                    }
                    continue;
                }
            };
            if too_long {
                if let Some(doc) = &mut self.doc {
                    doc.broken.get_or_insert(format!(
                        "line {number} is longer than {} bytes",
                        super::MAX_LINE
                    ));
                }
                continue;
            }
            match classify(&text) {
                Line::DocStart => {
                    let previous = self.doc.take();
                    self.start_doc(number);
                    if let Some(prev) = previous {
                        return Some(Err(self.unterminated(
                            &prev,
                            &format!("another СекцияДокумент starts at line {number}"),
                        )));
                    }
                }
                Line::DocEnd => {
                    if let Some(doc) = self.doc.take() {
                        let row = self.row(&doc);
                        self.fields.clear();
                        return Some(row);
                    }
                }
                Line::FileEnd => {
                    self.end_seen = true;
                    self.stopped = true;
                    return self.doc.take().map(|doc| {
                        Err(self.unterminated(&doc, &format!("КонецФайла at line {number}")))
                    });
                }
                Line::Pair(key, value) => match &mut self.doc {
                    Some(doc) => {
                        doc.bytes += key.len() + value.len();
                        if self.fields.len() >= MAX_FIELDS || doc.bytes > MAX_DOC_BYTES {
                            doc.broken.get_or_insert(format!(
                                "more than {MAX_FIELDS} keys or {MAX_DOC_BYTES} bytes: is \
                                 КонецДокумента missing?"
                            ));
                        } else {
                            self.fields.push((key, value));
                        }
                    }
                    None => self.header_pair(&key, &value),
                },
                Line::Blank | Line::Other => {}
            }
        }
    }
}

/// Writes a `rows`-document 1.03 file in Windows-1251 with CRLF, like a Ukrainian bank's
/// export of a busy month: mostly subscribers' payments with the purposes payers write,
/// every 50th a bank commission (a debit). For benchmarks and tests of large files; the
/// same `rows` always gives the same bytes.
pub fn write_synthetic<W: Write>(out: W, rows: usize) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let ours = "UA903052990000026007233566001";
    let mut put = |text: &str| -> io::Result<()> {
        let bytes = cp1251::encode(text).map_err(|c| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("'{c}' is not in cp1251"),
            )
        })?;
        out.write_all(&bytes)?;
        out.write_all(b"\r\n")
    };
    put(HEADER)?;
    put("ВерсияФормата=1.03")?;
    put("Кодировка=Windows")?;
    put("Отправитель=Приват24")?;
    put("Получатель=Бухгалтерия")?;
    put("ДатаНачала=01.12.2026")?;
    put("ДатаКонца=31.12.2026")?;
    put(&format!("РасчСчет={ours}"))?;
    put("СекцияРасчСчет")?;
    put("ДатаНачала=01.12.2026")?;
    put("ДатаКонца=31.12.2026")?;
    put(&format!("РасчСчет={ours}"))?;
    put("НачальныйОстаток=0.00")?;
    put("КонецРасчСчет")?;
    let surnames = [
        "Петренко",
        "Коваленко",
        "Бондаренко",
        "Шевчук",
        "Мельник",
        "Ткаченко",
    ];
    let names = ["Петро", "Олена", "Іван", "Марія", "Андрій", "Оксана"];
    for i in 0..rows {
        let day = 1 + i * 31 / rows.max(1);
        let date = format!("{day:02}.12.2026");
        let debit = i % 50 == 49;
        let account_no = 100_000 + (i * 7919) % 900_000;
        let payer = format!(
            "{} {}",
            surnames[i % surnames.len()],
            names[(i / surnames.len()) % names.len()]
        );
        let kopecks = 10_000 + (i * 3_517) % 90_000;
        let sum = format!("{}.{:02}", kopecks / 100, kopecks % 100);
        let payer_acc = format!("UA21305299000002620{:010}", 1_000_000 + i);
        put("СекцияДокумент=Платіжне доручення")?;
        put(&format!("Номер={}", 1 + i % 997))?;
        put(&format!("Дата={date}"))?;
        if debit {
            put("Сумма=15.75")?;
            put(&format!("ПлательщикСчет={ours}"))?;
            put("Плательщик1=ТОВ \"НЕТКОМ\"")?;
            put("ПлательщикИНН=41234567")?;
            put("ПолучательСчет=UA653052990000029024000000001")?;
            put("Получатель1=АТ КБ \"ПРИВАТБАНК\"")?;
            put("ПолучательИНН=14360570")?;
            put(&format!("ДатаСписано={date}"))?;
            put("НазначениеПлатежа=Комісія за обслуговування рахунку")?;
        } else {
            put(&format!("Сумма={sum}"))?;
            put(&format!("ПлательщикСчет={payer_acc}"))?;
            put(&format!("Плательщик1={payer}"))?;
            put(&format!("ПлательщикИНН={}", 3_000_000_000u64 + i as u64))?;
            put(&format!("ПолучательСчет={ours}"))?;
            put("Получатель1=ТОВ \"НЕТКОМ\"")?;
            put("ПолучательИНН=41234567")?;
            put(&format!("ДатаПоступило={date}"))?;
            let purpose = match i % 4 {
                0 => format!("Плата за інтернет, о/р {account_no}, {payer}"),
                1 => format!("Сплата за Особистий рахунок {account_no}"),
                2 => format!("оплата по дог. {} за грудень", account_no % 5000),
                _ => format!("Оплата за послуги інтернет ос.рах {:05}", account_no % 1000),
            };
            put(&format!("НазначениеПлатежа={purpose}"))?;
        }
        put("КонецДокумента")?;
    }
    put("КонецФайла")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::io::BufReader;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/statements/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn read_all(bytes: &[u8]) -> (Vec<Result<StatementRow, RowError>>, Result<(), Error>) {
        let mut reader = Reader::new(bytes).unwrap();
        let rows: Vec<_> = reader.by_ref().collect();
        (rows, reader.finish())
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn ukrainian_103_cp1251_crlf_every_field() {
        let bytes = fixture("onec-ua-1.03-cp1251.txt");
        assert!(
            bytes.windows(2).any(|w| w == b"\r\n"),
            "the fixture has CRLF"
        );
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "the fixture is cp1251"
        );
        let mut reader = Reader::new(&bytes[..]).unwrap();
        assert_eq!(reader.version(), Some("1.03"));
        assert_eq!(reader.our_accounts(), ["UA903052990000026007233566001"]);
        assert_eq!(
            reader.period(),
            (Some(day(2026, 12, 5)), Some(day(2026, 12, 5)))
        );
        let rows: Vec<_> = reader.by_ref().collect();
        assert_eq!(reader.encoding(), Some(Encoding::Cp1251));
        reader.finish().unwrap();
        assert_eq!(rows.len(), 7);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            *first,
            StatementRow {
                id: first.id.clone(),
                row: 1,
                date: day(2026, 12, 5),
                time: None,
                amount: Amount::from_kopecks(35000),
                direction: Direction::Credit,
                currency: None,
                purpose: "Плата за інтернет, о/р 103078, Петренко Петро Володимирович".into(),
                payer_name: "ПЕТРЕНКО ПЕТРО ВОЛОДИМИРОВИЧ".into(),
                payer_code: Some("3012345678".into()),
                payer_account: Some("UA213052990000026201234567890".into()),
                our_account: Some("UA903052990000026007233566001".into()),
                posted: true,
            }
        );
        assert!(first.id.as_str().starts_with("1c:") && first.id.as_str().len() == 35);
        // Same payer, same sum, same day, another number: another id.
        let second = rows[1].as_ref().unwrap();
        assert_eq!(second.payer_code, first.payer_code);
        assert_eq!(second.amount, first.amount);
        assert_ne!(second.id, first.id);
        assert_eq!(second.purpose, "оплата по дог. 2041 за грудень");
        // The misspelt key, and `Плательщик` when there is no `Плательщик1`.
        let third = rows[2].as_ref().unwrap();
        assert_eq!(third.purpose, "Сплата за Особистий рахунок 113766");
        assert_eq!(third.payer_name, "Коваленко Олена Іванівна");
        assert_eq!(third.amount, Amount::from_kopecks(123456));
        // The bank's commission: a debit; the other side is the receiver.
        let fee = rows[3].as_ref().unwrap();
        assert_eq!(fee.direction, Direction::Debit);
        assert_eq!(fee.amount, Amount::from_kopecks(1575));
        assert_eq!(fee.payer_code.as_deref(), Some("14360570"));
        assert_eq!(
            fee.our_account.as_deref(),
            Some("UA903052990000026007233566001")
        );
        // A broken sum is a RowError; the rows after it are read.
        let broken = rows[4].as_ref().unwrap_err();
        assert_eq!(broken.row, 5);
        assert!(broken.line.is_some());
        assert!(
            broken.why.contains("Сумма") && broken.why.contains("1.234"),
            "{broken}"
        );
        // Not yet posted: ДатаПоступило empty.
        let pending = rows[5].as_ref().unwrap();
        assert!(!pending.posted);
        // A settlement of a payment network.
        let lump = rows[6].as_ref().unwrap();
        assert!(lump
            .purpose
            .starts_with("Перерахування коштів, прийнятих від Платників"));
        assert_eq!(lump.amount, Amount::from_kopecks(2_841_050));
        assert_eq!(lump.payer_code.as_deref(), Some("38324133"));
    }

    #[test]
    fn kazakh_200_upper_case_keywords() {
        let (rows, end) = read_all(&fixture("onec-kz-2.00-cp1251.txt"));
        end.unwrap();
        assert_eq!(rows.len(), 4);
        let kaspi = rows[0].as_ref().unwrap();
        assert_eq!(
            *kaspi,
            StatementRow {
                id: kaspi.id.clone(),
                row: 1,
                date: day(2026, 12, 6),
                time: None,
                amount: Amount::from_kopecks(15_253_700),
                direction: Direction::Credit,
                currency: Some("KZT".into()),
                purpose: "Принятые платежи за 05.12.2026 ком. 1463.00 тг. (154000.00 - 0.00) \
                          Общая сумма платежей 154000.00"
                    .into(),
                payer_name: "АО \"Kaspi Bank\"".into(),
                payer_code: Some("971240001315".into()),
                payer_account: Some("KZ47722S000000012345".into()),
                our_account: Some("KZ86125KZT5004100100".into()),
                posted: true,
            }
        );
        let person = rows[1].as_ref().unwrap();
        assert_eq!(person.payer_code.as_deref(), Some("850312400123"));
        assert_eq!(person.amount, Amount::from_kopecks(550_000));
        let fee = rows[2].as_ref().unwrap();
        assert_eq!(fee.direction, Direction::Debit);
        assert_eq!(fee.amount, Amount::from_kopecks(30_000));
        // An ambiguous purpose with two numbers, not yet posted (ДатаОперации empty).
        let two = rows[3].as_ref().unwrap();
        assert!(!two.posted);
        assert_eq!(two.date, day(2026, 12, 6));
        assert!(two.purpose.contains("12044") && two.purpose.contains("12045"));
    }

    #[test]
    fn utf8_lf_gives_the_same_ids_as_cp1251_crlf() {
        let (utf8, end) = read_all(&fixture("onec-ua-1.03-utf8-lf.txt"));
        end.unwrap();
        let (cp, _) = read_all(&fixture("onec-ua-1.03-cp1251.txt"));
        assert_eq!(utf8.len(), 3);
        for (u, c) in utf8.iter().zip(&cp) {
            let (u, c) = (u.as_ref().unwrap(), c.as_ref().unwrap());
            assert_eq!(u, c, "the UTF-8 export's row is the cp1251 one");
        }
        let bytes = fixture("onec-ua-1.03-utf8-lf.txt");
        let reader = Reader::new(&bytes[..]).unwrap();
        assert_eq!(reader.encoding(), Some(Encoding::Utf8));
    }

    #[test]
    fn crlf_and_lf_and_a_bom_read_alike() {
        let text = "1CClientBankExchange\nВерсияФормата=1.03\nРасчСчет=UA11\n\
                    СекцияДокумент=Платежное поручение\nНомер=1\nДата=01.12.2026\nСумма=100\n\
                    ПлательщикСчет=UA22\nПолучательСчет=UA11\nДатаПоступило=02.12.2026\n\
                    НазначениеПлатежа=о/р 5\nКонецДокумента\nКонецФайла\n";
        let lf = read_all(text.as_bytes()).0;
        let crlf = read_all(text.replace('\n', "\r\n").as_bytes()).0;
        let bom = read_all(format!("\u{FEFF}{text}").as_bytes()).0;
        let cp = read_all(&cp1251::encode(&text.replace('\n', "\r\n")).unwrap()).0;
        assert_eq!(lf, crlf);
        assert_eq!(lf, bom);
        assert_eq!(lf, cp);
        let row = lf[0].as_ref().unwrap();
        assert_eq!(row.amount, Amount::from_kopecks(10000));
        assert_eq!(row.date, day(2026, 12, 2));
    }

    #[test]
    fn broken_documents_do_not_lose_the_next_ones() {
        let text = "1CClientBankExchange\r\nРасчСчет=UA11\r\n\
            СекцияДокумент=Платежное поручение\r\nНомер=1\r\nДата=01.12.2026\r\n\
            Сумма=-5\r\nПолучательСчет=UA11\r\nКонецДокумента\r\n\
            СекцияДокумент=Платежное поручение\r\nНомер=2\r\nДата=01.12.2026\r\nСумма=5\r\n\
            СекцияДокумент=Платежное поручение\r\nНомер=3\r\nДата=31.02.2026\r\nСумма=5\r\n\
            ПолучательСчет=UA11\r\nКонецДокумента\r\n\
            СекцияДокумент=Платежное поручение\r\nНомер=4\r\nДата=01.12.2026\r\nСумма=5\r\n\
            ПлательщикСчет=UA33\r\nПолучательСчет=UA44\r\nКонецДокумента\r\n\
            СекцияДокумент=Платежное поручение\r\nНомер=5\r\nДата=01.12.2026\r\nСумма=0,01\r\n\
            ПолучательСчет=ua 11\r\nКонецДокумента\r\n\
            СекцияДокумент=Платежное поручение\r\nНомер=6\r\n";
        let (rows, end) = read_all(text.as_bytes());
        let whys: Vec<String> = rows
            .iter()
            .map(|r| match r {
                Ok(row) => format!("ok {}", row.amount),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(whys.len(), 6, "{whys:#?}");
        assert!(
            whys[0].starts_with("row 1 (line 3)") && whys[0].contains("sign"),
            "{whys:#?}"
        );
        assert!(
            whys[1].contains("row 2")
                && whys[1].contains("another СекцияДокумент starts at line 13"),
            "{whys:#?}"
        );
        assert!(whys[2].contains("Дата '31.02.2026'"), "{whys:#?}");
        assert!(
            whys[3].contains("cannot tell a credit from a debit"),
            "{whys:#?}"
        );
        assert_eq!(whys[4], "ok 0.01");
        assert!(
            whys[5].contains("row 6") && whys[5].contains("ends inside it"),
            "{whys:#?}"
        );
        assert!(matches!(end, Err(Error::Truncated { .. })), "{end:?}");
    }

    #[test]
    fn direction_from_dates_when_no_account_is_ours() {
        let doc = |dates: &str| {
            format!(
                "СекцияДокумент=Платежное поручение\nДата=01.12.2026\nСумма=5\n\
                 ПлательщикСчет=UA22\nПолучательСчет=UA11\n{dates}КонецДокумента\n"
            )
        };
        let text = format!(
            "1CClientBankExchange\n{}{}{}КонецФайла\n",
            doc("ДатаПоступило=02.12.2026\n"),
            doc("ДатаСписано=02.12.2026\n"),
            doc("ДатаПоступило=02.12.2026\nДатаСписано=01.12.2026\n"),
        );
        let (rows, _) = read_all(text.as_bytes());
        assert_eq!(rows[0].as_ref().unwrap().direction, Direction::Credit);
        assert_eq!(rows[1].as_ref().unwrap().direction, Direction::Debit);
        assert!(rows[2].as_ref().unwrap_err().why.contains("cannot tell"));
        // With the account named by the caller, the third is a credit.
        let mut reader = Reader::new(text.as_bytes()).unwrap();
        reader.add_our_account("ua 11");
        let rows: Vec<_> = reader.collect();
        let third = rows[2].as_ref().unwrap();
        assert_eq!(third.direction, Direction::Credit);
        assert_eq!(third.date, day(2026, 12, 2));
        assert_eq!(third.our_account.as_deref(), Some("UA11"));
    }

    #[test]
    fn a_huge_document_is_an_error_not_a_memory_hog() {
        let long = "x".repeat(60_000);
        let mut text = String::from("1CClientBankExchange\nСекцияДокумент=x\n");
        for i in 0..10 {
            text.push_str(&format!("Ключ{i}={long}\n"));
        }
        text.push_str("КонецДокумента\nСекцияДокумент=x\nСумма=1\nДатаПоступило=01.12.2026\n");
        text.push_str("КонецДокумента\nКонецФайла\n");
        let (rows, end) = read_all(text.as_bytes());
        end.unwrap();
        assert!(rows[0].as_ref().unwrap_err().why.contains("bytes"));
        assert_eq!(rows[1].as_ref().unwrap().amount, Amount::from_kopecks(100));
    }

    #[test]
    fn not_a_1c_file() {
        for bytes in [&b""[..], b"\n\n", b"ID;SUM\n", b"1CClientBankExchangeX\n"] {
            let e = Reader::new(bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("not a 1CClientBankExchange file"), "{e}");
        }
        let e = Reader::new(&b"hello\n"[..]).err().unwrap().to_string();
        assert!(e.contains("line 1 is 'hello'"), "{e}");
    }

    #[test]
    fn a_synthetic_file_streams_through_a_tiny_buffer() {
        let mut file = Vec::new();
        write_synthetic(&mut file, 2_000).unwrap();
        // A 7-byte buffer: every line crosses buffer boundaries, nothing is read whole.
        let mut reader = Reader::new(BufReader::with_capacity(7, &file[..])).unwrap();
        let mut credits = 0;
        let mut debits = 0;
        let mut ids = std::collections::HashSet::new();
        for row in reader.by_ref() {
            let row = row.unwrap();
            assert!(row.amount.kopecks() > 0);
            ids.insert(row.id);
            match row.direction {
                Direction::Credit => credits += 1,
                Direction::Debit => debits += 1,
            }
        }
        reader.finish().unwrap();
        assert_eq!((credits, debits), (1960, 40));
        // Debits repeat the same commission document shape but with their own numbers;
        // credits all differ.
        assert!(ids.len() >= 1960, "{}", ids.len());
        let mut again = Vec::new();
        write_synthetic(&mut again, 2_000).unwrap();
        assert_eq!(file, again);
    }
}
