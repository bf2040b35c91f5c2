//! PayPRO terminal provider files: `providers.ini`, `providers_user.ini`, `MyProviders.ini`.
//!
//! Terminal owners running PayPRO describe each payee ("provider") in these files; to pay
//! us, they need an own-provider description (`etc/paypro/MyProviders.ini`, printed with
//! the endpoint's URL by `paysys paypro-provider`). This module reads the files as the
//! terminal does and builds, from a provider, the requests the terminal would send — pure
//! functions, no network.
//!
//! # The format (PayPRO's documentation of `providers.ini`)
//!
//! * Not a standard INI file: each provider starts with a line `<Провайдер>`, and its
//!   first parameter must be its number (`Номер=39`); the number is what tells one provider
//!   from another.
//! * `name=value` lines. Parameter names are case-insensitive (Cyrillic too: compared after
//!   full Unicode lowercasing); deprecated names are synonyms of the current ones
//!   ([`SYNONYMS`]). An indexed parameter without its index (`Формат поля ввода`) is index 1.
//! * Commands are lines without `=`: `Обнулить настройки провайдера` (forget everything the
//!   provider inherited), `Метод отправки get`, `Разделитель&`, `Не url-кодировать`.
//! * Packet templates are blocks `<начало NAME>` … `<конец NAME>` whose lines are filled
//!   with `{VARIABLES}` ([`VARIABLES`]).
//! * `providers.ini` is read first; `providers_user.ini` is layered over it provider by
//!   provider (only the parameters it names change, unless it resets the provider);
//!   `MyProviders.ini` holds own providers, which the terminal keeps under negative numbers
//!   (the sign of `Номер` there is ignored).
//! * Files are Windows-1251 or UTF-8 (with or without BOM), CRLF or LF: bytes that are
//!   valid UTF-8 are UTF-8, anything else is Windows-1251.
//! * Lines starting with `;` (or `//`) are comments. PayPRO's documentation shows none; the
//!   usual INI comment is what a terminal owner expects, and a comment line is never a
//!   valid parameter either way.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::NaiveDateTime;

use crate::domain::{Amount, TxnId};

/// The shipped own-provider description (`etc/paypro/MyProviders.ini`), UTF-8 with LF.
pub const MY_PROVIDERS_INI: &str = include_str!("../../etc/paypro/MyProviders.ini");

/// Deprecated parameter names (PayPRO marks them "устар.") and the current name each is a
/// synonym of, both in canonical form (lowercase, index 1 spelled out).
pub const SYNONYMS: &[(&str, &str)] = &[
    ("номер провайдера", "номер"),
    ("наименование провайдера", "краткое наименование"),
    ("регион", "комментарий"),
    ("наименование организации-получателя средств", "организация"),
    ("формат ввода", "формат поля ввода1"),
    ("формат", "формат поля ввода1"),
    ("наименование основного поля", "наименование поля ввода1"),
    ("приставка номера", "приставка поля ввода1"),
    ("окончание номера", "окончание поля ввода1"),
    ("минимальная длина номера", "минимальная длина поля ввода1"),
];

/// Parameters that take an index `[N]`; without one they mean index 1.
const INDEXED: &[&str] = &[
    "формат поля ввода",
    "приставка формата поля ввода",
    "окончание формата поля ввода",
    "наименование поля ввода",
    "приставка поля ввода",
    "окончание поля ввода",
    "минимальная длина поля ввода",
    "код поля ввода",
    "наименование серверной переменной",
    "начало поиска первого символа серверной переменной",
    "начало поиска последнего символа серверной переменной",
];

/// The variables a packet template may use, and what each becomes.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "{VALUE_FORMATED}",
        "the typed account through its format: Приставка формата поля ввода + the typed \
         characters in place of the format's # + Окончание формата поля ввода",
    ),
    (
        "{VALUE}",
        "the clean account: Приставка поля ввода + the typed characters + Окончание поля ввода",
    ),
    (
        "{AMOUNT}",
        "the sum to credit (сумма к зачислению), `.`-decimal with 2 places; a pre-check \
         sends Сумма к зачислению при online проверке",
    ),
    (
        "{AMOUNT_ALL}",
        "the sum paid in (внесенная сумма); a pre-check sends Внесенная сумма при online проверке",
    ),
    (
        "{PAYMENT_ID}",
        "the terminal's number of the payment (OSMP txn_id)",
    ),
    (
        "{DATE_TIME}",
        "the payment's date and time, YYYYMMDDHHMMSS (OSMP txn_date)",
    ),
    ("{CLIENT_PHONE}", "the payer's contact phone, if asked for"),
    ("{PROVIDER_FIELD_NAME[N]}", "Наименование поля ввода[N]"),
    (
        "{PROVIDER-OPTION_PS}",
        "Опция (of an own provider: the one without a system name)",
    ),
    (
        "{NOTSENDED_OPERATION}",
        "the filled payment packets (in a header, footer or body)",
    ),
    (
        "{NOTREPLY_OPERATION}",
        "the filled status packets (in a header, footer or body)",
    ),
];

/// Template blocks, by canonical (lowercase) name.
pub mod block {
    /// The payment ("unsent") packet: what is sent to Адрес оплаты.
    pub const PAY: &str = "неотправленного пакета";
    /// The status ("in flight") packet; when absent, the payment packet is used.
    pub const STATUS: &str = "действующего пакета";
    /// The pre-check packet, sent to Адрес предпроверки; when absent, the payment packet
    /// is used (PayPRO's documentation names no separate one).
    pub const CHECK: &str = "пакета предпроверки";
    /// The wrapper of the payment packets ({NOTSENDED_OPERATION}).
    pub const PAY_BODY: &str = "неотправленного тела шаблона";
    /// The wrapper of the status packets ({NOTREPLY_OPERATION}).
    pub const STATUS_BODY: &str = "действующего тела шаблона";
    pub const HEADER: &str = "общего заголовка шаблона";
    pub const FOOTER: &str = "общего подвала шаблона";
}

/// Which of the three files a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// `providers.ini`: the standard providers.
    Standard,
    /// `providers_user.ini`: changes to the standard providers.
    User,
    /// `MyProviders.ini`: own providers, kept under negative numbers.
    Own,
}

/// A file that cannot be read as a provider file: the file, the line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    /// 1-based; 0 when the error is about the whole file (it cannot be read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{} line {}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// How the bytes of a file were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Windows1251,
}

/// A file's text: valid UTF-8 (a BOM dropped) is UTF-8, anything else Windows-1251.
/// Windows-1251 maps every byte, so this never fails.
pub fn decode(bytes: &[u8]) -> (String, Encoding) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        if let Ok(text) = std::str::from_utf8(rest) {
            return (text.to_string(), Encoding::Utf8Bom);
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), Encoding::Utf8),
        Err(_) => (crate::cp1251::decode(bytes), Encoding::Windows1251),
    }
}

/// Text as Windows-1251 bytes, or the first character it cannot hold.
pub fn encode_cp1251(text: &str) -> Result<Vec<u8>, char> {
    crate::cp1251::encode(text)
}

/// A parameter's name in canonical form: trimmed, inner spaces collapsed, lowercased
/// (full Unicode), PayPRO's own misspelling "переменой" corrected, an index-less indexed
/// parameter given index 1, a deprecated name replaced by its current one.
pub fn canonical_name(name: &str) -> String {
    let mut key = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace("переменой", "переменной");
    if let Some((_, current)) = SYNONYMS.iter().find(|(old, _)| *old == key) {
        return current.to_string();
    }
    for base in INDEXED {
        if let Some(rest) = key.strip_prefix(base) {
            let rest = rest.trim_start();
            let rest = rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(rest);
            if rest.is_empty() {
                key = format!("{base}1");
            } else if rest.bytes().all(|b| b.is_ascii_digit()) {
                key = format!("{base}{}", rest.trim_start_matches('0'));
            }
            break;
        }
    }
    key
}

/// Where a value was set, for errors about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    file: String,
    line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    value: String,
    origin: Origin,
}

/// One provider's settings as the layers left them, before typing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Settings {
    params: BTreeMap<String, Setting>,
    templates: BTreeMap<String, (Vec<String>, Origin)>,
}

/// All providers read so far, by the number the terminal uses (own ones negative).
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_number: BTreeMap<i64, (Settings, Origin)>,
}

impl Providers {
    pub fn new() -> Providers {
        Providers::default()
    }

    /// Reads a terminal's files from its directory, as the terminal does at start:
    /// `providers.ini`, then `providers_user.ini` over it, then `MyProviders\MyProviders.ini`
    /// (or `MyProviders.ini`). A missing file is skipped.
    pub fn load_dir(dir: &Path) -> Result<Providers, Error> {
        let mut providers = Providers::new();
        let own = [
            dir.join("MyProviders").join("MyProviders.ini"),
            dir.join("MyProviders.ini"),
        ];
        let files = [
            (dir.join("providers.ini"), Layer::Standard),
            (dir.join("providers_user.ini"), Layer::User),
        ]
        .into_iter()
        .chain(
            own.into_iter()
                .find(|p| p.exists())
                .map(|p| (p, Layer::Own)),
        );
        for (path, layer) in files {
            if path.exists() {
                providers.read_file(&path, layer)?;
            }
        }
        Ok(providers)
    }

    /// Reads one file (Windows-1251 or UTF-8) as the given layer.
    pub fn read_file(&mut self, path: &Path, layer: Layer) -> Result<(), Error> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error {
            file: name.clone(),
            line: 0,
            message: format!("cannot be read: {e}"),
        })?;
        self.layer_bytes(&name, &bytes, layer)
    }

    /// Layers a file's bytes (Windows-1251 or UTF-8) over what was read before.
    pub fn layer_bytes(&mut self, file: &str, bytes: &[u8], layer: Layer) -> Result<(), Error> {
        self.layer(file, &decode(bytes).0, layer)
    }

    /// Layers a file's text over what was read before: each block changes only the
    /// parameters it names of the provider with its number, after forgetting everything
    /// if it says `Обнулить настройки провайдера`. The file is read whole before anything
    /// changes, so an error leaves the providers as they were.
    pub fn layer(&mut self, file: &str, text: &str, layer: Layer) -> Result<(), Error> {
        let blocks = parse_blocks(file, text, layer)?;
        for block in blocks {
            let entry = self
                .by_number
                .entry(block.number)
                .or_insert_with(|| (Settings::default(), block.origin.clone()));
            if block.reset {
                entry.0 = Settings::default();
                entry.1 = block.origin.clone();
            }
            entry.0.params.extend(block.settings.params);
            entry.0.templates.extend(block.settings.templates);
        }
        Ok(())
    }

    /// The numbers of all providers, in order (own ones, negative, first).
    pub fn numbers(&self) -> Vec<i64> {
        self.by_number.keys().copied().collect()
    }

    /// The provider the terminal knows under `number` (own providers: negative), typed.
    pub fn get(&self, number: i64) -> Option<Result<Provider, Error>> {
        self.by_number
            .get(&number)
            .map(|(settings, origin)| Provider::from_settings(number, settings, origin))
    }

    /// Every provider, typed; the first that cannot be is the error.
    pub fn all(&self) -> Result<Vec<Provider>, Error> {
        self.by_number
            .iter()
            .map(|(&n, (s, o))| Provider::from_settings(n, s, o))
            .collect()
    }
}

struct Block {
    number: i64,
    reset: bool,
    origin: Origin,
    settings: Settings,
}

const PROVIDER_TAG: &str = "<провайдер>";

fn parse_blocks(file: &str, text: &str, layer: Layer) -> Result<Vec<Block>, Error> {
    let error = |line: usize, message: String| Error {
        file: file.to_string(),
        line,
        message,
    };
    let origin = |line: usize| Origin {
        file: file.to_string(),
        line,
    };
    let mut blocks: Vec<Block> = Vec::new();
    // A `<Провайдер>` line seen, its number not yet.
    let mut opened: Option<usize> = None;
    // Inside `<начало NAME>`: its name, first line, lines so far.
    let mut template: Option<(String, usize, Vec<String>)> = None;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = raw.trim();
        let lower = line.to_lowercase();
        if let Some((name, start, lines)) = &mut template {
            let end = tag_name(&lower, "конец");
            if end.as_deref() == Some(name.as_str()) {
                let (name, start, lines) = template.take().expect("inside a template");
                let block = blocks.last_mut().expect("templates are inside a block");
                block
                    .settings
                    .templates
                    .insert(name, (lines, origin(start)));
            } else if tag_name(&lower, "начало").is_some() || lower == PROVIDER_TAG {
                return Err(error(
                    n,
                    format!("'{line}' inside the template opened on line {start}, which has no <конец {name}>"),
                ));
            } else if !line.is_empty() {
                lines.push(line.to_string());
            }
            continue;
        }
        if line.is_empty() || line.starts_with(';') || line.starts_with("//") {
            continue;
        }
        if lower == PROVIDER_TAG {
            if let Some(open) = opened {
                return Err(error(
                    open,
                    "<Провайдер> without a number: its first parameter must be Номер".into(),
                ));
            }
            opened = Some(n);
            continue;
        }
        if let Some(open) = opened {
            // The block's first parameter: its number.
            let number = line
                .split_once('=')
                .filter(|(k, _)| canonical_name(k) == "номер")
                .map(|(_, v)| v.trim());
            let Some(number) = number else {
                return Err(error(
                    n,
                    format!("the first parameter of the <Провайдер> on line {open} must be Номер, not '{line}'"),
                ));
            };
            let digits = match layer {
                Layer::Own => number.trim_start_matches('-'),
                _ => number,
            };
            let value: i64 = digits
                .parse()
                .map_err(|_| error(n, format!("Номер: '{number}' is not a number")))?;
            let value = match layer {
                Layer::Own => -value.abs(),
                _ => value,
            };
            blocks.push(Block {
                number: value,
                reset: false,
                origin: origin(open),
                settings: Settings::default(),
            });
            opened = None;
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            return Err(error(n, format!("'{line}' before the first <Провайдер>")));
        };
        if let Some(name) = tag_name(&lower, "начало") {
            template = Some((name, n, Vec::new()));
            continue;
        }
        if let Some(name) = tag_name(&lower, "конец") {
            return Err(error(
                n,
                format!("<конец {name}> without its <начало {name}>"),
            ));
        }
        let (key, value) = match line.split_once('=') {
            Some((key, _)) => {
                // The value as written (only the line ending dropped): a marker may end
                // in a space.
                let value = &raw[raw.find('=').expect("has =") + 1..];
                (canonical_name(key), value.to_string())
            }
            None => match command(&lower) {
                Some(Command::Reset) => {
                    block.reset = true;
                    block.settings = Settings::default();
                    continue;
                }
                Some(Command::Set(key, value)) => (key.to_string(), value.to_string()),
                None => {
                    return Err(error(
                        n,
                        format!("'{line}' is neither name=value nor a command (Обнулить настройки провайдера, Метод отправки get, Разделитель&, Не url-кодировать)"),
                    ))
                }
            },
        };
        if key == "номер" {
            return Err(error(
                n,
                "a second Номер in one <Провайдер>: start another <Провайдер> for another provider"
                    .into(),
            ));
        }
        block.settings.params.insert(
            key,
            Setting {
                value,
                origin: origin(n),
            },
        );
    }
    if let Some((name, start, _)) = template {
        return Err(error(
            start,
            format!("<начало {name}> without <конец {name}>"),
        ));
    }
    if let Some(open) = opened {
        return Err(error(
            open,
            "<Провайдер> without a number: its first parameter must be Номер".into(),
        ));
    }
    Ok(blocks)
}

/// `<начало Неотправленного пакета>` with `word` = "начало" → "неотправленного пакета".
fn tag_name(lower: &str, word: &str) -> Option<String> {
    let inner = lower.strip_prefix('<')?.strip_suffix('>')?.trim();
    let rest = inner.strip_prefix(word)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.split_whitespace().collect::<Vec<_>>().join(" "))
}

enum Command {
    Reset,
    Set(&'static str, &'static str),
}

fn command(lower: &str) -> Option<Command> {
    let words = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.as_str() {
        "обнулить настройки провайдера" => Some(Command::Reset),
        "метод отправки get" => Some(Command::Set("метод отправки", "get")),
        "метод отправки post" => Some(Command::Set("метод отправки", "post")),
        "разделитель&" | "разделитель &" => {
            Some(Command::Set("разделитель", "&"))
        }
        "не url-кодировать" => Some(Command::Set("не url-кодировать", "")),
        _ => None,
    }
}

/// How the terminal sends packets to an own provider's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The packet is the URL's query.
    Get,
    /// The packet is the body (PayPRO's default).
    Post,
}

/// A server variable: a piece of the pre-check's answer the terminal shows the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVariable {
    pub index: u32,
    /// Наименование серверной переменной`[N]`: the label on the screen.
    pub name: String,
    /// Начало поиска первого символа серверной переменной`[N]`: the value starts right after
    /// the first occurrence of this text (empty: at the answer's start).
    pub first: String,
    /// Начало поиска последнего символа серверной переменной`[N]`: the value ends right
    /// before the next occurrence of this text (empty: at the answer's end).
    pub last: String,
}

/// One provider, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The number the terminal uses: an own provider's is negative.
    pub number: i64,
    pub own: bool,
    /// Наименование: sent to the server with an own provider's payments.
    pub name: Option<String>,
    /// Краткое наименование, else Наименование: shown when paying, printed on the receipt.
    pub short_name: String,
    pub comment: Option<String>,
    /// Адрес предпроверки (the one without a payment system's name).
    pub check_url: Option<String>,
    /// Адрес оплаты.
    pub pay_url: Option<String>,
    /// Адрес оплаты2: the spare.
    pub pay_url2: Option<String>,
    pub method: Method,
    /// Between a packet's lines: a space, or `&` with `Разделитель&`.
    pub separator: char,
    /// Values put into templates are URL-encoded unless `Не url-кодировать`.
    pub url_encode: bool,
    pub content_type: Option<String>,
    /// HTTP логин / HTTP пароль: Basic authorization.
    pub login: Option<String>,
    pub password: Option<String>,
    /// Внесенная сумма при online проверке (default 50.0).
    pub check_sum_paid: Amount,
    /// Сумма к зачислению при online проверке (default 50.0).
    pub check_sum_credit: Amount,
    /// The pre-check packet (`<начало пакета предпроверки>`), if the file has one.
    pub check_template: Option<Vec<String>>,
    /// The payment packet (`<начало Неотправленного пакета>`).
    pub pay_template: Option<Vec<String>>,
    /// The status packet (`<начало Действующего пакета>`).
    pub status_template: Option<Vec<String>>,
    pub header: Option<Vec<String>>,
    pub footer: Option<Vec<String>>,
    pub pay_body: Option<Vec<String>>,
    pub status_body: Option<Vec<String>>,
    /// Server variables in index order.
    pub variables: Vec<ServerVariable>,
    /// Every parameter by canonical name, as written (templates apart).
    pub params: BTreeMap<String, String>,
}

impl Provider {
    fn from_settings(number: i64, s: &Settings, origin: &Origin) -> Result<Provider, Error> {
        let get = |key: &str| s.params.get(key).map(|v| v.value.trim().to_string());
        let error = |key: &str, message: String| {
            let o = s.params.get(key).map(|v| &v.origin).unwrap_or(origin);
            Error {
                file: o.file.clone(),
                line: o.line,
                message,
            }
        };
        let method = match get("метод отправки").as_deref() {
            None => Method::Post,
            Some(m) if m.eq_ignore_ascii_case("get") => Method::Get,
            Some(m) if m.eq_ignore_ascii_case("post") => Method::Post,
            Some(m) => {
                return Err(error(
                    "метод отправки",
                    format!("Метод отправки: '{m}' is neither get nor post"),
                ))
            }
        };
        let separator = match s.params.get("разделитель").map(|v| v.value.trim()) {
            None => ' ',
            Some(v) => {
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(error(
                            "разделитель",
                            format!("Разделитель: '{v}' is not one character"),
                        ))
                    }
                }
            }
        };
        let sum = |key: &str, label: &str| -> Result<Amount, Error> {
            match get(key) {
                None => Ok(Amount::from_kopecks(5000)),
                Some(text) => Amount::parse(&text.replace(',', "."))
                    .map_err(|e| error(key, format!("{label}: '{text}' is not a sum: {e}"))),
            }
        };
        let mut indices: Vec<u32> = s
            .params
            .keys()
            .filter_map(|k| {
                [
                    "наименование серверной переменной",
                    "начало поиска первого символа серверной переменной",
                    "начало поиска последнего символа серверной переменной",
                ]
                .iter()
                .find_map(|base| k.strip_prefix(base)?.parse().ok())
            })
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let raw = |key: String| {
            s.params
                .get(&key)
                .map(|v| v.value.clone())
                .unwrap_or_default()
        };
        let variables = indices
            .into_iter()
            .map(|i| ServerVariable {
                index: i,
                name: raw(format!("наименование серверной переменной{i}"))
                    .trim()
                    .to_string(),
                first: raw(format!(
                    "начало поиска первого символа серверной переменной{i}"
                )),
                last: raw(format!(
                    "начало поиска последнего символа серверной переменной{i}"
                )),
            })
            .collect();
        let template = |name: &str| s.templates.get(name).map(|(lines, _)| lines.clone());
        let name = get("наименование").filter(|n| !n.is_empty());
        Ok(Provider {
            number,
            own: number < 0,
            short_name: get("краткое наименование")
                .filter(|n| !n.is_empty())
                .or_else(|| name.clone())
                .unwrap_or_default(),
            name,
            comment: get("комментарий"),
            check_url: get("адрес предпроверки").filter(|u| !u.is_empty()),
            pay_url: get("адрес оплаты").filter(|u| !u.is_empty()),
            pay_url2: get("адрес оплаты2").filter(|u| !u.is_empty()),
            method,
            separator,
            url_encode: !s.params.contains_key("не url-кодировать"),
            content_type: get("content-type").filter(|c| !c.is_empty()),
            login: get("http логин"),
            password: s.params.get("http пароль").map(|v| v.value.clone()),
            check_sum_paid: sum(
                "внесенная сумма при online проверке",
                "Внесенная сумма при online проверке",
            )?,
            check_sum_credit: sum(
                "сумма к зачислению при online проверке",
                "Сумма к зачислению при online проверке",
            )?,
            check_template: template(block::CHECK),
            pay_template: template(block::PAY),
            status_template: template(block::STATUS),
            header: template(block::HEADER),
            footer: template(block::FOOTER),
            pay_body: template(block::PAY_BODY),
            status_body: template(block::STATUS_BODY),
            variables,
            params: s
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
        })
    }

    fn param(&self, key: &str) -> &str {
        self.params.get(key).map(String::as_str).unwrap_or("")
    }

    /// What the payer typed into field 1 through its format (`{VALUE_FORMATED}`): each `#`
    /// takes the next typed character, other characters of the format are copied while
    /// typed characters remain; the format's prefix and ending around it.
    pub fn value_formatted(&self, typed: &str) -> String {
        let format = self.param("формат поля ввода1");
        let format = if format.trim().is_empty() {
            "##########"
        } else {
            format.trim()
        };
        let mut typed_chars = typed.chars().peekable();
        let mut out = String::new();
        for f in format.chars() {
            if typed_chars.peek().is_none() {
                break;
            }
            if f == '#' {
                out.push(typed_chars.next().expect("peeked"));
            } else {
                out.push(f);
            }
        }
        out.extend(typed_chars);
        format!(
            "{}{out}{}",
            self.param("приставка формата поля ввода1"),
            self.param("окончание формата поля ввода1")
        )
    }

    /// The clean value of field 1 (`{VALUE}`): prefix + typed + ending.
    pub fn value_clean(&self, typed: &str) -> String {
        format!(
            "{}{typed}{}",
            self.param("приставка поля ввода1"),
            self.param("окончание поля ввода1")
        )
    }
}

/// One payment as the terminal holds it when it builds a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// What the payer typed (field 1).
    pub account: String,
    /// The sum to credit ({AMOUNT}).
    pub sum: Amount,
    /// The sum paid in ({AMOUNT_ALL}); without a commission, the same as `sum`.
    pub paid: Amount,
    /// The terminal's payment number ({PAYMENT_ID}).
    pub txn_id: TxnId,
    /// When the payment was made ({DATE_TIME}).
    pub date: NaiveDateTime,
    /// The payer's contact phone ({CLIENT_PHONE}).
    pub client_phone: String,
}

/// What the terminal would send: method, URL (with the query for GET), body for POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub body: Option<String>,
    pub content_type: Option<String>,
    /// HTTP-Basic login and password.
    pub basic_auth: Option<(String, String)>,
}

impl HttpRequest {
    /// The query of a GET (the packet), if any.
    pub fn query(&self) -> Option<&str> {
        self.url.split_once('?').map(|(_, q)| q)
    }
}

/// A request that cannot be built from a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The provider has no such address (`Адрес предпроверки`, `Адрес оплаты`).
    NoAddress(&'static str),
    /// The provider has no payment packet (`<начало Неотправленного пакета>`).
    NoTemplate,
    /// A template uses a variable we do not know: the terminal would send something we
    /// cannot predict.
    UnknownVariable(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoAddress(what) => write!(f, "the provider has no {what}"),
            BuildError::NoTemplate => f.write_str(
                "the provider has no payment packet (<начало Неотправленного пакета> … <конец Неотправленного пакета>)",
            ),
            BuildError::UnknownVariable(v) => write!(f, "unknown template variable {v}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The pre-check the terminal sends to `Адрес предпроверки` after "Приступить к оплате":
/// the pre-check packet (or, without one, the payment packet), with the sums the provider
/// names for an online check — the payer has put no money in yet.
pub fn check_request(provider: &Provider, payment: &Payment) -> Result<HttpRequest, BuildError> {
    let url = provider
        .check_url
        .as_deref()
        .ok_or(BuildError::NoAddress("Адрес предпроверки"))?;
    let payment = Payment {
        sum: provider.check_sum_credit,
        paid: provider.check_sum_paid,
        ..payment.clone()
    };
    let template = provider
        .check_template
        .as_ref()
        .or(provider.pay_template.as_ref())
        .ok_or(BuildError::NoTemplate)?;
    let packet = packet(provider, template, &payment)?;
    Ok(request(provider, url, packet))
}

/// The payment the terminal sends to `Адрес оплаты` after "Оплатить".
pub fn pay_request(provider: &Provider, payment: &Payment) -> Result<HttpRequest, BuildError> {
    let url = provider
        .pay_url
        .as_deref()
        .ok_or(BuildError::NoAddress("Адрес оплаты"))?;
    let template = provider
        .pay_template
        .as_ref()
        .ok_or(BuildError::NoTemplate)?;
    let packet = packet(provider, template, payment)?;
    Ok(request(provider, url, packet))
}

fn request(provider: &Provider, url: &str, packet: String) -> HttpRequest {
    let basic_auth = provider
        .login
        .as_ref()
        .filter(|l| !l.is_empty())
        .map(|l| (l.clone(), provider.password.clone().unwrap_or_default()));
    match provider.method {
        Method::Get => {
            let url = if packet.is_empty() {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&{packet}")
            } else {
                format!("{url}?{packet}")
            };
            HttpRequest {
                method: Method::Get,
                url,
                body: None,
                content_type: None,
                basic_auth,
            }
        }
        Method::Post => HttpRequest {
            method: Method::Post,
            url: url.to_string(),
            body: Some(packet),
            content_type: Some(
                provider
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
            ),
            basic_auth,
        },
    }
}

/// A whole packet for one payment: header + body(payments) + footer, PayPRO's "Пакет =
/// Заголовок + Группа неотправленных платежей + Группа действующих платежей + Подвал".
/// The payment's own text is `{NOTSENDED_OPERATION}`; it stands wrapped in the body
/// template if there is one, else where the header or footer names it, else alone.
fn packet(
    provider: &Provider,
    template: &[String],
    payment: &Payment,
) -> Result<String, BuildError> {
    let sep = provider.separator.to_string();
    let operation = fill(provider, template, payment, &[])?.join(&sep);
    let ops = [
        ("NOTSENDED_OPERATION", operation.as_str()),
        ("NOTREPLY_OPERATION", ""),
    ];
    let names_operation = |t: &Option<Vec<String>>| {
        t.iter()
            .flatten()
            .any(|l| l.to_uppercase().contains("{NOTSENDED_OPERATION}"))
    };
    let group = match &provider.pay_body {
        Some(body) => fill(provider, body, payment, &ops)?.join(&sep),
        None if names_operation(&provider.header) || names_operation(&provider.footer) => {
            String::new()
        }
        None => operation.clone(),
    };
    let mut parts = Vec::new();
    if let Some(h) = &provider.header {
        parts.extend(fill(provider, h, payment, &ops)?);
    }
    if !group.is_empty() {
        parts.push(group);
    }
    if let Some(f) = &provider.footer {
        parts.extend(fill(provider, f, payment, &ops)?);
    }
    Ok(parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(&sep))
}

/// A template's lines with their `{VARIABLES}` replaced; `extra` are already-built
/// packets ({NOTSENDED_OPERATION}), put in as they are.
fn fill(
    provider: &Provider,
    lines: &[String],
    payment: &Payment,
    extra: &[(&str, &str)],
) -> Result<Vec<String>, BuildError> {
    lines
        .iter()
        .map(|line| fill_line(provider, line, payment, extra))
        .collect()
}

fn fill_line(
    provider: &Provider,
    line: &str,
    payment: &Payment,
    extra: &[(&str, &str)],
) -> Result<String, BuildError> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let name = after[..close].trim().to_uppercase();
        if let Some((_, packet)) = extra.iter().find(|(n, _)| *n == name) {
            out.push_str(packet);
        } else {
            let value = variable(provider, &name, payment)
                .ok_or_else(|| BuildError::UnknownVariable(format!("{{{}}}", &after[..close])))?;
            if provider.url_encode {
                out.push_str(&url_encode(&value));
            } else {
                out.push_str(&value);
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn variable(provider: &Provider, name: &str, payment: &Payment) -> Option<String> {
    Some(match name {
        "VALUE_FORMATED" => provider.value_formatted(&payment.account),
        "VALUE" => provider.value_clean(&payment.account),
        "AMOUNT" => payment.sum.to_string(),
        "AMOUNT_ALL" => payment.paid.to_string(),
        "PAYMENT_ID" => payment.txn_id.to_string(),
        "DATE_TIME" => payment.date.format("%Y%m%d%H%M%S").to_string(),
        "CLIENT_PHONE" => payment.client_phone.clone(),
        "PROVIDER-OPTION_PS" => provider.param("опция").to_string(),
        "NOTSENDED_OPERATION" | "NOTREPLY_OPERATION" => String::new(),
        _ => {
            let n = name
                .strip_prefix("PROVIDER_FIELD_NAME")?
                .trim_start_matches('[')
                .trim_end_matches(']');
            let n = if n.is_empty() { "1" } else { n };
            n.parse::<u32>().ok()?;
            provider
                .param(&format!("наименование поля ввода{n}"))
                .trim()
                .to_string()
        }
    })
}

/// Percent-encoding of everything but the unreserved characters (RFC 3986), UTF-8.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text between `first` and the next `last` in `answer`: empty `first` starts at the
/// beginning, empty `last` runs to the end; `None` when a marker is not there.
pub fn cut<'a>(answer: &'a str, first: &str, last: &str) -> Option<&'a str> {
    let start = if first.is_empty() {
        0
    } else {
        answer.find(first)? + first.len()
    };
    let tail = &answer[start..];
    let end = if last.is_empty() {
        tail.len()
    } else {
        tail.find(last)?
    };
    Some(&tail[..end])
}

/// The server variables the terminal cuts from a pre-check's answer, to show the payer:
/// each variable's label and value (`None`: not in this answer).
pub fn server_variables<'a>(
    provider: &'a Provider,
    answer: &'a str,
) -> Vec<(&'a ServerVariable, Option<&'a str>)> {
    provider
        .variables
        .iter()
        .map(|v| (v, cut(answer, &v.first, &v.last)))
        .collect()
}

/// The shipped own-provider description with the endpoint's URL (and optionally the
/// provider's number and name) filled in: `Адрес предпроверки` becomes `URL?command=check`,
/// `Адрес оплаты` `URL?command=pay`. Comments and layout stay as shipped.
pub fn own_provider(url: &str, number: Option<u32>, name: Option<&str>) -> Result<String, String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() < 10 {
        return Err(format!("'{url}' is not an http:// or https:// URL"));
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return Err(format!("'{url}' has a space, a control character or a '#'"));
    }
    if let Some(n) = name {
        if n.trim().is_empty() || n.chars().any(char::is_control) {
            return Err("the name must be one line of text".into());
        }
    }
    if number == Some(0) {
        return Err("the provider number must be 1 or more".into());
    }
    let join = if url.contains('?') { '&' } else { '?' };
    let mut out = String::with_capacity(MY_PROVIDERS_INI.len() + 128);
    for line in MY_PROVIDERS_INI.lines() {
        let trimmed = line.trim_start();
        let key = match trimmed.split_once('=') {
            Some((k, _)) if !trimmed.starts_with(';') && !trimmed.starts_with('<') => Some((
                canonical_name(k),
                &line[..line.find('=').expect("has =") + 1],
            )),
            _ => None,
        };
        let replaced = key.and_then(|(key, head)| match key.as_str() {
            "адрес предпроверки" => {
                Some(format!("{head}{url}{join}command=check"))
            }
            "адрес оплаты" => Some(format!("{head}{url}{join}command=pay")),
            "номер" => number.map(|n| format!("{head}{n}")),
            "наименование" | "краткое наименование" => {
                name.map(|n| format!("{head}{}", n.trim()))
            }
            _ => None,
        });
        out.push_str(replaced.as_deref().unwrap_or(line));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(layers: &[(&str, Layer)]) -> Providers {
        let mut p = Providers::new();
        for (i, (text, layer)) in layers.iter().enumerate() {
            p.layer(&format!("file{i}.ini"), text, *layer).unwrap();
        }
        p
    }

    fn provider(p: &Providers, n: i64) -> Provider {
        p.get(n).expect("provider present").expect("provider valid")
    }

    fn payment(account: &str, sum: &str) -> Payment {
        Payment {
            account: account.into(),
            sum: Amount::parse(sum).unwrap(),
            paid: Amount::parse(sum).unwrap(),
            txn_id: TxnId::parse("1234567").unwrap(),
            date: NaiveDateTime::parse_from_str("20261122100001", "%Y%m%d%H%M%S").unwrap(),
            client_phone: String::new(),
        }
    }

    // The shape of PayPRO's own example: providers.ini, then providers_user.ini over it.
    const STANDARD: &str = "<Провайдер>\r\n\
        Номер провайдера=39\r\n\
        Наименование провайдера=НТК\r\n\
        Наименование организации-получателя средств=ОАО \"Новая Телефонная Компания\"\r\n\
        Тип=1\r\n\
        ИНН=2540040971\r\n\
        Код OSMP=127\r\n\
        Код Qiwi=127\r\n\
        Формат поля ввода=8-###-###-##-##\r\n\
        \r\n\
        <Провайдер>\r\n\
        Номер провайдера=64\r\n\
        Наименование провайдера=СкайЛинк\r\n\
        Альтернативное наименование провайдера=СкайЛинк Омск\r\n\
        Код DeltaPay=225\r\n\
        Адрес предпроверки CyberPlat=https://service.cyberplat.ru/cgi-bin/ge/ge_pay_check.cgi/384\r\n\
        Формат поля ввода=8-###-###-##-##\r\n";

    const USER: &str = "<Провайдер>\n\
        Номер провайдера=39\n\
        Наименование провайдера=Новая телефонная компания\n\
        Код Qiwi=721\n\
        \n\
        <Провайдер>\n\
        Номер провайдера=64\n\
        Обнулить настройки провайдера\n\
        Наименование провайдера=Красноярскэнергосбыт\n\
        Код OSMP=929\n\
        Формат поля ввода=##############\n\
        Минимальная длина номера=5\n";

    #[test]
    fn user_file_changes_only_what_it_names() {
        let p = read(&[(STANDARD, Layer::Standard), (USER, Layer::User)]);
        let ntk = provider(&p, 39);
        assert_eq!(ntk.short_name, "Новая телефонная компания");
        assert_eq!(ntk.params["код qiwi"], "721");
        assert_eq!(
            ntk.params["код osmp"], "127",
            "inherited from providers.ini"
        );
        assert_eq!(
            ntk.params["организация"],
            "ОАО \"Новая Телефонная Компания\""
        );
        assert_eq!(ntk.params["формат поля ввода1"], "8-###-###-##-##");
    }

    #[test]
    fn reset_forgets_everything_inherited() {
        let p = read(&[(STANDARD, Layer::Standard), (USER, Layer::User)]);
        let kes = provider(&p, 64);
        assert_eq!(kes.short_name, "Красноярскэнергосбыт");
        assert_eq!(kes.params["код osmp"], "929");
        assert_eq!(kes.params["минимальная длина поля ввода1"], "5");
        assert_eq!(kes.params["формат поля ввода1"], "##############");
        for gone in [
            "альтернативное наименование провайдера",
            "код deltapay",
            "адрес предпроверки cyberplat",
        ] {
            assert!(!kes.params.contains_key(gone), "{gone} survived the reset");
        }
        // Without the reset, the same file would have inherited them.
        let p = read(&[
            (STANDARD, Layer::Standard),
            (
                &USER.replace("Обнулить настройки провайдера\n", ""),
                Layer::User,
            ),
        ]);
        assert_eq!(provider(&p, 64).params["код deltapay"], "225");
    }

    #[test]
    fn own_providers_are_negative_and_apart_from_standard_ones() {
        let own = "<Провайдер>\nНомер=39\nНаименование=Свой\n<Провайдер>\nномер=-7\nнаименование=Другой\n";
        let p = read(&[
            (STANDARD, Layer::Standard),
            (USER, Layer::User),
            (own, Layer::Own),
        ]);
        assert_eq!(p.numbers(), vec![-39, -7, 39, 64]);
        let mine = provider(&p, -39);
        assert!(mine.own);
        assert_eq!(
            mine.short_name, "Свой",
            "Наименование stands in for Краткое наименование"
        );
        assert_eq!(provider(&p, -7).short_name, "Другой");
        assert_eq!(provider(&p, 39).short_name, "Новая телефонная компания");
    }

    #[test]
    fn names_are_case_insensitive_including_cyrillic() {
        // (as written, canonical)
        let table = [
            ("Код E-Port", "код e-port"),
            ("КОД E-PORT", "код e-port"),
            ("  Код   E-Port  ", "код e-port"),
            // A Cyrillic "Е" is another letter: another parameter, as for the terminal.
            ("кОд Е-pOrT", "код е-port"),
            ("АДРЕС ПРЕДПРОВЕРКИ", "адрес предпроверки"),
            ("HTTP Логин", "http логин"),
        ];
        for (key, canonical) in table {
            let text = format!("<провайдер>\nНОМЕР=1\n{key}=6007\n");
            let p = read(&[(&text, Layer::Standard)]);
            assert_eq!(provider(&p, 1).params[canonical], "6007", "{key}");
        }
        // Commands too.
        let p = read(&[(
            "<ПРОВАЙДЕР>\nномер=1\nКод=1\nОБНУЛИТЬ настройки ПРОВАЙДЕРА\nМЕТОД ОТПРАВКИ GET\n",
            Layer::User,
        )]);
        let pr = provider(&p, 1);
        assert_eq!(pr.method, Method::Get);
        assert!(!pr.params.contains_key("код"));
    }

    #[test]
    fn deprecated_names_are_synonyms() {
        let table = [
            ("Номер провайдера", "номер"),
            ("Наименование провайдера", "краткое наименование"),
            ("Регион", "комментарий"),
            ("Наименование организации-получателя средств", "организация"),
            ("Формат ввода", "формат поля ввода1"),
            ("Формат", "формат поля ввода1"),
            ("Наименование основного поля", "наименование поля ввода1"),
            ("Приставка номера", "приставка поля ввода1"),
            ("Окончание номера", "окончание поля ввода1"),
            ("Минимальная длина номера", "минимальная длина поля ввода1"),
            // Index 1 is the field without an index.
            ("Формат поля ввода", "формат поля ввода1"),
            ("Формат поля ввода2", "формат поля ввода2"),
            (
                "Наименование серверной переменой",
                "наименование серверной переменной1",
            ),
            (
                "Наименование серверной переменной[3]",
                "наименование серверной переменной3",
            ),
            // Deprecated without a successor: kept under its own name.
            (
                "Альтернативное наименование провайдера",
                "альтернативное наименование провайдера",
            ),
        ];
        for (old, new) in table {
            assert_eq!(canonical_name(old), new, "{old}");
        }
        // The later of a synonym and its current name wins, as any repeated parameter.
        let p = read(&[(
            "<Провайдер>\nНомер=5\nКраткое наименование=Новое\nНаименование провайдера=Старое\n\
             Формат поля ввода=###\nФормат ввода=#####\n",
            Layer::Standard,
        )]);
        let pr = provider(&p, 5);
        assert_eq!(pr.short_name, "Старое");
        assert_eq!(pr.params["формат поля ввода1"], "#####");
    }

    #[test]
    fn windows_1251_and_utf8_with_bom_read_alike() {
        let text = "<Провайдер>\r\nНомер=1\r\nНаименование=Интернет «Ёжик» №1\r\nКомментарий=Введите счёт\r\n";
        let cp1251 = encode_cp1251(text).unwrap();
        assert!(std::str::from_utf8(&cp1251).is_err(), "really Windows-1251");
        // Spot checks against the Windows-1251 table.
        assert_eq!(
            encode_cp1251("АЯаяЁё№«»").unwrap(),
            b"\xC0\xDF\xE0\xFF\xA8\xB8\xB9\xAB\xBB"
        );
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        for (bytes, encoding) in [
            (cp1251, Encoding::Windows1251),
            (bom, Encoding::Utf8Bom),
            (text.replace("\r\n", "\n").into_bytes(), Encoding::Utf8),
        ] {
            assert_eq!(decode(&bytes).1, encoding);
            let mut p = Providers::new();
            p.layer_bytes("MyProviders.ini", &bytes, Layer::Own)
                .unwrap();
            let pr = provider(&p, -1);
            assert_eq!(
                pr.name.as_deref(),
                Some("Интернет «Ёжик» №1"),
                "{encoding:?}"
            );
            assert_eq!(pr.comment.as_deref(), Some("Введите счёт"));
        }
    }

    #[test]
    fn every_windows_1251_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let (text, _) = decode(&all);
        assert_eq!(text.chars().count(), 256);
        assert_eq!(encode_cp1251(&text).unwrap(), all);
        assert_eq!(encode_cp1251("😀"), Err('😀'));
    }

    #[test]
    fn errors_name_file_and_line() {
        let table: &[(&str, usize, &str)] = &[
            ("Номер=1\n", 1, "before the first <Провайдер>"),
            ("<Провайдер>\nНаименование=X\n", 2, "must be Номер"),
            ("<Провайдер>\nНомер=abc\n", 2, "'abc' is not a number"),
            (
                "<Провайдер>\nНомер=1\nКакая-то команда\n",
                3,
                "neither name=value nor a command",
            ),
            (
                "<Провайдер>\nНомер=1\n<начало Неотправленного пакета>\na=b\n",
                3,
                "without <конец",
            ),
            (
                "<Провайдер>\nНомер=1\n<конец Неотправленного пакета>\n",
                3,
                "without its <начало",
            ),
            (
                "<Провайдер>\nНомер=1\nНомер провайдера=2\n",
                3,
                "a second Номер",
            ),
            ("; header\n<Провайдер>\n\n", 2, "without a number"),
        ];
        for (text, line, message) in table {
            let err = Providers::new()
                .layer("providers_user.ini", text, Layer::User)
                .unwrap_err();
            assert_eq!(
                (err.file.as_str(), err.line),
                ("providers_user.ini", *line),
                "{text:?}: {err}"
            );
            assert!(err.message.contains(message), "{text:?}: {err}");
        }
        // Typing errors point at the line of the bad value, in the file that set it.
        let p = read(&[("<Провайдер>\nНомер=1\n", Layer::Standard)]);
        let mut p2 = p.clone();
        p2.layer(
            "user.ini",
            "<Провайдер>\nНомер=1\n\nМетод отправки=put\n",
            Layer::User,
        )
        .unwrap();
        let err = p2.get(1).unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "user.ini line 4: Метод отправки: 'put' is neither get nor post"
        );
    }

    #[test]
    fn commands_and_their_name_value_forms() {
        let table = [
            ("Метод отправки get", Method::Get, ' ', true),
            ("Метод отправки=GET", Method::Get, ' ', true),
            ("МЕТОД ОТПРАВКИ POST", Method::Post, ' ', true),
            ("Разделитель&", Method::Post, '&', true),
            ("Разделитель=&", Method::Post, '&', true),
            ("Не url-кодировать", Method::Post, ' ', false),
            ("", Method::Post, ' ', true),
        ];
        for (line, method, separator, encode) in table {
            let p = read(&[(&format!("<Провайдер>\nНомер=1\n{line}\n"), Layer::Own)]);
            let pr = provider(&p, -1);
            assert_eq!(
                (pr.method, pr.separator, pr.url_encode),
                (method, separator, encode),
                "{line}"
            );
        }
    }

    #[test]
    fn post_packet_lines_joined_by_space_or_ampersand() {
        let base = "<Провайдер>\nНомер=2\nАдрес оплаты=https://pay.example/p\nHTTP логин=trm\nHTTP пароль=s3 cret\n\
                    <начало Неотправленного пакета>\n  id={PAYMENT_ID}\n\n  acc={VALUE}\n<конец Неотправленного пакета>\n";
        let p = read(&[(base, Layer::Own)]);
        let r = pay_request(&provider(&p, -2), &payment("777", "5")).unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.url, "https://pay.example/p");
        assert_eq!(r.body.as_deref(), Some("id=1234567 acc=777"));
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.basic_auth, Some(("trm".into(), "s3 cret".into())));
        let p = read(&[(
            &base.replace("HTTP логин=trm\n", "Разделитель&\n"),
            Layer::Own,
        )]);
        let r = pay_request(&provider(&p, -2), &payment("777", "5")).unwrap();
        assert_eq!(r.body.as_deref(), Some("id=1234567&acc=777"));
        assert_eq!(r.basic_auth, None);
    }

    #[test]
    fn template_variables() {
        let head = "<Провайдер>\nНомер=3\nАдрес оплаты=http://x/p\nМетод отправки get\nРазделитель&\n\
                    Формат поля ввода=8-###-###-##-##\nПриставка формата поля ввода=(\nОкончание формата поля ввода=)\n\
                    Приставка поля ввода=41001\nОкончание поля ввода=@rol.ru\nНаименование поля ввода=Телефон\nОпция=opt\n";
        // (template line, account typed, url-encode?, expected text after the '?')
        let table: &[(&str, &str, bool, &str)] = &[
            (
                "a={VALUE}",
                "9131234567",
                true,
                "a=410019131234567%40rol.ru",
            ),
            ("a={VALUE}", "9131234567", false, "a=410019131234567@rol.ru"),
            (
                "a={VALUE_FORMATED}",
                "9131234567",
                false,
                "a=(8-913-123-45-67)",
            ),
            ("a={VALUE_FORMATED}", "913", false, "a=(8-913)"),
            ("a={value_formated}", "913", true, "a=%288-913%29"),
            (
                "s={AMOUNT}&all={AMOUNT_ALL}",
                "1",
                true,
                "s=10.50&all=10.50",
            ),
            (
                "id={PAYMENT_ID}&d={DATE_TIME}",
                "1",
                true,
                "id=1234567&d=20261122100001",
            ),
            (
                "f={PROVIDER_FIELD_NAME[1]}&o={PROVIDER-OPTION_PS}",
                "1",
                false,
                "f=Телефон&o=opt",
            ),
            (
                "f={PROVIDER_FIELD_NAME1}",
                "1",
                true,
                "f=%D0%A2%D0%B5%D0%BB%D0%B5%D1%84%D0%BE%D0%BD",
            ),
            ("p={CLIENT_PHONE}&open={", "1", true, "p=&open={"),
        ];
        for (line, account, encode, expected) in table {
            let flag = if *encode {
                ""
            } else {
                "Не url-кодировать\n"
            };
            let text = format!("{head}{flag}<начало Неотправленного пакета>\n{line}\n<конец Неотправленного пакета>\n");
            let p = read(&[(&text, Layer::Own)]);
            let r = pay_request(&provider(&p, -3), &payment(account, "10.5")).unwrap();
            assert_eq!(r.query(), Some(*expected), "{line}");
        }
        let text = format!(
            "{head}<начало Неотправленного пакета>\nx={{SUMMA}}\n<конец Неотправленного пакета>\n"
        );
        let p = read(&[(&text, Layer::Own)]);
        assert_eq!(
            pay_request(&provider(&p, -3), &payment("1", "1")),
            Err(BuildError::UnknownVariable("{SUMMA}".into()))
        );
    }

    #[test]
    fn header_body_and_footer_wrap_the_payment() {
        let provider_with = |extra: &str| {
            let text = format!(
                "<Провайдер>\nНомер=4\nАдрес оплаты=http://x/\n{extra}\
                 <начало Неотправленного пакета>\n<op id=\"{{PAYMENT_ID}}\"/>\n<конец Неотправленного пакета>\n"
            );
            provider(&read(&[(&text, Layer::Own)]), -4)
        };
        let body = |p: &Provider| pay_request(p, &payment("1", "1")).unwrap().body.unwrap();
        // Alone.
        assert_eq!(body(&provider_with("")), "<op id=\"1234567\"/>");
        // Header + body(operation) + footer.
        let p = provider_with(
            "<начало Общего заголовка шаблона>\n<req>\n<конец Общего заголовка шаблона>\n\
             <начало Неотправленного тела шаблона>\n<pay>{NOTSENDED_OPERATION}</pay>\n<конец Неотправленного тела шаблона>\n\
             <начало Общего подвала шаблона>\n</req>\n<конец Общего подвала шаблона>\n",
        );
        assert_eq!(body(&p), "<req> <pay><op id=\"1234567\"/></pay> </req>");
        // Named in the header itself: not repeated as a group.
        let p = provider_with(
            "<начало Общего заголовка шаблона>\n<req>{NOTSENDED_OPERATION}{NOTREPLY_OPERATION}</req>\n<конец Общего заголовка шаблона>\n",
        );
        assert_eq!(body(&p), "<req><op id=\"1234567\"/></req>");
    }

    #[test]
    fn check_uses_its_own_packet_address_and_online_sums() {
        let text = "<Провайдер>\nНомер=5\nАдрес предпроверки=http://x/c?command=check\nАдрес оплаты=http://x/p\n\
                    Метод отправки get\nРазделитель&\n\
                    <начало Неотправленного пакета>\ns={AMOUNT}&all={AMOUNT_ALL}\n<конец Неотправленного пакета>\n";
        let p = provider(&read(&[(text, Layer::Own)]), -5);
        // Without a pre-check packet: the payment packet, with PayPRO's default 50.0.
        let r = check_request(&p, &payment("1", "10")).unwrap();
        assert_eq!(r.url, "http://x/c?command=check&s=50.00&all=50.00");
        let text = text.replace(
            "Разделитель&\n",
            "Разделитель&\nВнесенная сумма при online проверке=100,5\nСумма к зачислению при online проверке=95\n\
             <начало пакета предпроверки>\nc={AMOUNT}\n<конец пакета предпроверки>\n",
        );
        let p = provider(&read(&[(&text, Layer::Own)]), -5);
        assert_eq!(p.check_sum_paid, Amount::from_kopecks(10050));
        let r = check_request(&p, &payment("1", "10")).unwrap();
        assert_eq!(r.url, "http://x/c?command=check&c=95.00");
        let r = pay_request(&p, &payment("1", "10")).unwrap();
        assert_eq!(r.url, "http://x/p?s=10.00&all=10.00");
        let mut none = p.clone();
        none.check_url = None;
        assert_eq!(
            check_request(&none, &payment("1", "1")),
            Err(BuildError::NoAddress("Адрес предпроверки"))
        );
    }

    #[test]
    fn server_variables_are_cut_between_markers() {
        let abills =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><osmp_txn_id>1</osmp_txn_id>\
                      <result>0</result><comment>Balance: 12.50 Ив*** И***</comment></response>\n";
        let nodeny =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><osmp_txn_id>1</osmp_txn_id>\
                      <result>0</result><comment>OK</comment></response>\n";
        // (answer, first, last, expected)
        let table: &[(&str, &str, &str, Option<&str>)] = &[
            (
                abills,
                "<comment>Balance:",
                "</comment>",
                Some(" 12.50 Ив*** И***"),
            ),
            (abills, "<comment>Balance: ", " ", Some("12.50")),
            (abills, "<result>", "</result>", Some("0")),
            (abills, "<fio>", "</fio>", None),
            (abills, "<comment>", "</nothing>", None),
            (abills, "", "<?xml", Some("")),
            (abills, "</response>", "", Some("\n")),
            (nodeny, "<comment>Balance:", "</comment>", None),
            // The last marker is searched after the first one, not from the start.
            ("<a>x</a><b>y</b>", "<b>", "</", Some("y")),
        ];
        for (answer, first, last, expected) in table {
            assert_eq!(cut(answer, first, last), *expected, "{first:?}..{last:?}");
        }
        let text = "<Провайдер>\nНомер=1\nНаименование серверной переменой2=Долг\n\
                    Начало поиска первого символа серверной переменной2=<debt>\n\
                    Начало поиска последнего символа серверной переменной2=</debt>\n\
                    Наименование серверной переменной=ФИО\n\
                    Начало поиска первого символа серверной переменной=<fio>\n\
                    Начало поиска последнего символа серверной переменной=</fio>\n";
        let p = provider(&read(&[(text, Layer::Own)]), -1);
        let got: Vec<(u32, &str, Option<&str>)> = server_variables(&p, "<fio>Ив*** И***</fio>")
            .into_iter()
            .map(|(v, value)| (v.index, v.name.as_str(), value))
            .collect();
        assert_eq!(got, vec![(1, "ФИО", Some("Ив*** И***")), (2, "Долг", None)]);
    }

    #[test]
    fn shipped_file_builds_exactly_the_osmp_requests() {
        let mut p = Providers::new();
        p.layer("MyProviders.ini", MY_PROVIDERS_INI, Layer::Own)
            .unwrap();
        assert_eq!(p.numbers(), vec![-1]);
        let pr = provider(&p, -1);
        assert_eq!(
            (pr.method, pr.separator, pr.url_encode),
            (Method::Get, '&', true)
        );
        let pay = payment("59071", "10.25");
        let check = check_request(&pr, &pay).unwrap();
        assert_eq!(check.method, Method::Get);
        assert_eq!(
            check.url,
            "https://billing.example.net/cgi-bin/osmp.cgi?command=check&txn_id=1234567&account=59071&sum=0.00"
        );
        let paid = pay_request(&pr, &pay).unwrap();
        assert_eq!(
            paid.url,
            "https://billing.example.net/cgi-bin/osmp.cgi?command=pay&txn_id=1234567&account=59071&sum=10.25&txn_date=20261122100001"
        );
        assert_eq!((check.body, check.basic_auth), (None, None));
        // An ABillS login typed with letters goes as typed.
        assert!(pay_request(&pr, &payment("ivanov.i", "1"))
            .unwrap()
            .url
            .contains("&account=ivanov.i&"));
        // What the payer sees after the pre-check.
        let answer = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><osmp_txn_id>1234567</osmp_txn_id>\
                      <result>0</result><comment>OK</comment><fields><field1 name=\"fio\">Ив*** И***</field1>\
                      <field2 name=\"balance\">12.50</field2></fields></response>\n";
        let vars: Vec<(&str, Option<&str>)> = server_variables(&pr, answer)
            .into_iter()
            .map(|(v, value)| (v.name.as_str(), value))
            .collect();
        assert_eq!(
            vars,
            vec![("Абонент", Some("Ив*** И***")), ("Баланс", Some("12.50"))]
        );
    }

    #[test]
    fn own_provider_fills_url_number_and_name() {
        let text = own_provider(
            "https://isp.example/cgi-bin/paysys_check.cgi/3",
            Some(12),
            Some("Мой ISP"),
        )
        .unwrap();
        let mut p = Providers::new();
        p.layer("MyProviders.ini", &text, Layer::Own).unwrap();
        let pr = provider(&p, -12);
        assert_eq!(pr.name.as_deref(), Some("Мой ISP"));
        assert_eq!(pr.short_name, "Мой ISP");
        assert_eq!(
            pr.check_url.as_deref(),
            Some("https://isp.example/cgi-bin/paysys_check.cgi/3?command=check")
        );
        assert_eq!(
            pr.pay_url.as_deref(),
            Some("https://isp.example/cgi-bin/paysys_check.cgi/3?command=pay")
        );
        // Comments stay; only the values changed.
        assert_eq!(text.lines().count(), MY_PROVIDERS_INI.lines().count());
        let q = own_provider("http://10.0.0.1/osmp.cgi?key=1", None, None).unwrap();
        assert!(
            q.contains("Адрес оплаты=http://10.0.0.1/osmp.cgi?key=1&command=pay\n"),
            "{q}"
        );
        assert!(q.contains("\nНомер=1\n"));
        for bad in [
            "ftp://x/y",
            "billing.example.net/osmp.cgi",
            "http://x/a b",
            "http://x/#f",
        ] {
            assert!(own_provider(bad, None, None).is_err(), "{bad}");
        }
        assert!(own_provider("http://x/osmp.cgi", Some(0), None).is_err());
        assert!(own_provider("http://x/osmp.cgi", None, Some("a\nb")).is_err());
    }
}
