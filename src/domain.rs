//! Domain values, parsed once at the edge.
//!
//! Every type here can only be built from text by its `parse` constructor, which says what
//! was wrong when it refuses. Downstream code (billing, ledger) takes these types, so an
//! unchecked sum or a txn id with a trailing newline cannot reach the database.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, Local, NaiveDateTime, Offset, TimeZone, Timelike};

/// Largest integer part we accept in a sum: 13 digits keeps kopecks well inside `i64` and
/// inside `DECIMAL(16,2)`, far beyond any configured maximum.
const MAX_INTEGER_DIGITS: usize = 13;

/// Why a sum was refused. `TooLarge` is kept apart because a well-formed but huge number is
/// "above the maximum" (OSMP 242), not "malformed" (OSMP 300).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    Malformed(String),
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Malformed(why) => f.write_str(why),
            AmountError::TooLarge => write!(f, "more than {MAX_INTEGER_DIGITS} integer digits"),
        }
    }
}

/// A sum of money in integer minor units (kopecks). Never a float.
///
/// Parsed from the exact decimal text the caller sent: digits, optionally a `.` and one or
/// two more digits. `10`, `10.5`, `10.50`, `00010.00` are ten-ish roubles; `1e3`, `-5`, `NaN`,
/// `10.001`, ` 10`, `10,5` and the empty string are not sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    pub fn parse(text: &str) -> Result<Amount, AmountError> {
        let malformed = |why: &str| Err(AmountError::Malformed(why.to_string()));
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if int_part.is_empty() {
            return malformed("no digits before the decimal point");
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return malformed("only digits and one '.' are allowed");
        }
        let frac = match frac_part {
            None => "",
            Some("") => return malformed("no digits after the decimal point"),
            Some(f) if !f.bytes().all(|b| b.is_ascii_digit()) => {
                return malformed("only digits and one '.' are allowed")
            }
            Some(f) if f.len() > 2 => return malformed("more than 2 digits after the point"),
            Some(f) => f,
        };
        let significant = int_part.trim_start_matches('0');
        if significant.len() > MAX_INTEGER_DIGITS {
            return Err(AmountError::TooLarge);
        }
        // Both parts are short ASCII digit strings now, so the arithmetic cannot overflow.
        let whole: i64 = significant
            .bytes()
            .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
        let mut cents: i64 = frac
            .bytes()
            .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
        if frac.len() == 1 {
            cents *= 10;
        }
        Ok(Amount(whole * 100 + cents))
    }

    pub const fn from_kopecks(kopecks: i64) -> Amount {
        Amount(kopecks)
    }

    /// A sum a provider sent as a whole number of minor units (Monobank's kopecks, Payme's
    /// tiyin), held to the same bound as [`Amount::parse`]: a number with more than
    /// `MAX_INTEGER_DIGITS` digits before the point is `TooLarge` either way, so every sum
    /// that reaches the ledger prints as text `parse` takes back.
    pub fn from_minor_units(minor: i64) -> Result<Amount, AmountError> {
        const LIMIT: u64 = 10u64.pow(MAX_INTEGER_DIGITS as u32 + 2);
        if minor.unsigned_abs() >= LIMIT {
            return Err(AmountError::TooLarge);
        }
        Ok(Amount(minor))
    }

    pub fn kopecks(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Always two decimals: `10.25`, `-3.00`. This is also the text handed to SQL, where
/// `CAST(? AS DECIMAL(16,2))` keeps the arithmetic exact.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// A signed balance as the billing stores it (`DECIMAL` or, on old NoDeny, `FLOAT(10,2)`),
/// read through `CAST(... AS DECIMAL(16,2))` so that it arrives as exact decimal text.
pub fn parse_balance(text: &str) -> Option<Amount> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let amount = Amount::parse(digits).ok()?;
    Some(if negative { Amount(-amount.0) } else { amount })
}

/// The payment system's own transaction id: OSMP's 1 to 20 ASCII digits ([`TxnId::parse`]),
/// or another protocol's id of up to [`TxnId::MAX_LEN`] letters, digits and `-_.:{}`
/// ([`TxnId::parse_token`]: 24NonStop's GUID-like `PAY_ID`, a bank's payment id).
///
/// Kept as text: 20 digits do not fit a `u64`, and `0666` and `666` are different ids as far
/// as we know. The database column is `VARCHAR(64)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnId(String);

impl TxnId {
    /// The longest id: `paysys_txn.txn_id` is `VARCHAR(64)`.
    pub const MAX_LEN: usize = 64;

    /// A protocol's payment id that is not OSMP's: 1 to 64 characters, each an ASCII letter
    /// or digit or one of `-_.:{}` (a GUID, with or without braces; a dotted bank number).
    /// Nothing that needs quoting in a log line, an XML answer or a URL.
    pub fn parse_token(text: &str) -> Result<TxnId, String> {
        if text.is_empty() {
            return Err("the payment id is empty".into());
        }
        if text.len() > Self::MAX_LEN {
            return Err(format!(
                "the payment id has {} characters, at most {}",
                text.len(),
                Self::MAX_LEN
            ));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:{}".contains(&b))
        {
            return Err("the payment id may hold letters, digits and -_.:{} only".into());
        }
        Ok(TxnId(text.to_string()))
    }

    /// OSMP's `txn_id`: 1 to 20 ASCII digits, nothing else.
    pub fn parse(text: &str) -> Result<TxnId, String> {
        if text.is_empty() {
            return Err("txn_id is empty".into());
        }
        if text.len() > 20 {
            return Err(format!(
                "txn_id has {} characters, at most 20 digits",
                text.len()
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("txn_id must be digits only".into());
        }
        Ok(TxnId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Digits of a subscriber id: non-empty, ASCII digits, fits a `u64`, not zero.
fn parse_id(digits: &str) -> Result<u64, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be digits only".into());
    }
    match digits.parse::<u64>() {
        Ok(0) => Err("subscriber id 0 does not exist".into()),
        Ok(id) => Ok(id),
        Err(_) => Err("too many digits".into()),
    }
}

/// NoDeny's personal payment code: the subscriber id followed by one check digit, the last
/// digit of the sum of the id's digits ("mod 10"). id 5907 → 5+9+0+7 = 21 → 59071.
///
/// The check digit catches most typos and the common mistake of typing the sum instead of
/// the code; it is not a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCode {
    id: u64,
}

impl PaymentCode {
    pub fn parse(text: &str) -> Result<PaymentCode, String> {
        if text.len() < 2 {
            return Err("a payment code has at least 2 digits (id and check digit)".into());
        }
        if text.len() > 20 {
            return Err(format!(
                "payment code has {} characters, too long",
                text.len()
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("payment code must be digits only".into());
        }
        let (id_digits, check) = text.split_at(text.len() - 1);
        let id = parse_id(id_digits)?;
        let expected = Self::check_digit(id);
        if check.as_bytes()[0] - b'0' != expected {
            return Err(format!("wrong check digit: expected {expected}"));
        }
        Ok(PaymentCode { id })
    }

    pub fn check_digit(id: u64) -> u8 {
        let mut sum = 0u64;
        let mut rest = id;
        while rest > 0 {
            sum += rest % 10;
            rest /= 10;
        }
        (sum % 10) as u8
    }

    pub fn for_id(id: u64) -> PaymentCode {
        PaymentCode { id }
    }

    pub fn id(self) -> u64 {
        self.id
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.id, Self::check_digit(self.id))
    }
}

/// How a system's accounts name a subscriber (`account = ...` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKey {
    /// NoDeny personal payment code: id + mod-10 check digit.
    PaymentCode,
    /// The bare subscriber id (NoDeny `users.id`).
    Id,
    /// ABillS `users.uid`.
    Uid,
    /// ABillS `users.id`, the login: text, unique per domain.
    Login,
    /// ABillS `users_pi.contract_id`.
    ContractId,
}

impl AccountKey {
    pub fn parse(text: &str) -> Result<AccountKey, String> {
        match text {
            "payment_code" => Ok(AccountKey::PaymentCode),
            "id" => Ok(AccountKey::Id),
            "uid" => Ok(AccountKey::Uid),
            "login" => Ok(AccountKey::Login),
            "contract_id" => Ok(AccountKey::ContractId),
            other => Err(format!(
                "'{other}' is not an account key (NoDeny: payment_code | id; ABillS: uid | login | contract_id)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AccountKey::PaymentCode => "payment_code",
            AccountKey::Id => "id",
            AccountKey::Uid => "uid",
            AccountKey::Login => "login",
            AccountKey::ContractId => "contract_id",
        }
    }
}

/// ABillS's `PAYSYS_ACCOUNT_EXPR`: `PATTERN/REPLACEMENT`, applied to the typed account
/// before it is looked up, as Perl's `s/PATTERN/REPLACEMENT/` would (first match; no match
/// leaves the account as typed). `\d+(\d{8})$/$1` keeps the last eight digits.
#[derive(Debug, Clone)]
pub struct AccountExpr {
    pattern: Pattern,
    replacement: String,
    text: String,
}

impl PartialEq for AccountExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl AccountExpr {
    pub fn parse(text: &str) -> Result<AccountExpr, String> {
        let Some((pattern, replacement)) = text.rsplit_once('/') else {
            return Err(format!(
                "'{text}' is not PATTERN/REPLACEMENT (e.g. \\d+(\\d{{8}})$/$1)"
            ));
        };
        let pattern = Pattern::new(pattern)?;
        // Perl's $1 is regex's ${1}: braces, so that "$1x" does not read as group "1x".
        let mut rust_replacement = String::with_capacity(replacement.len() + 4);
        let mut chars = replacement.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                rust_replacement.push_str("${");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    rust_replacement.push(d);
                }
                rust_replacement.push('}');
            } else if c == '$' {
                rust_replacement.push_str("$$");
            } else {
                rust_replacement.push(c);
            }
        }
        Ok(AccountExpr {
            pattern,
            replacement: rust_replacement,
            text: text.to_string(),
        })
    }

    pub fn apply(&self, account: &str) -> String {
        match self.pattern.regex() {
            Some(r) => r.replace(account, self.replacement.as_str()).into_owned(),
            // Too large to compile: matches nothing, so the account stays as typed.
            None => account.to_string(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The expression's pattern, for `paysys check-config` to compile.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }
}

/// A regular expression the admin wrote (an account rewrite, a merchant's accounts, a
/// statement rule's purpose): its syntax checked when the config is read, compiled the
/// first time it is used. Compiling one costs a million instructions and more where it
/// has Unicode classes (`\d`, `\s`, `(?i)` over Cyrillic), and a CGI reads the whole config
/// for every request: compiled as read, every system's pattern and every statement rule's
/// was paid by every request, which uses one system's at most and no statement rule.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    /// Its named groups, in order.
    names: Vec<String>,
    compiled: std::sync::OnceLock<Option<regex::Regex>>,
}

impl Pattern {
    /// Checks `text` as the regex crate reads it (all but the compiled program's size, which
    /// only compiling tells: [`Pattern::compile`]).
    pub fn new(text: &str) -> Result<Pattern, String> {
        let hir = regex_syntax::Parser::new()
            .parse(text)
            .map_err(|e| format!("'{text}' is not a regular expression: {e}"))?;
        let mut names = Vec::new();
        group_names(&hir, &mut names);
        Ok(Pattern {
            text: text.to_string(),
            names,
            compiled: std::sync::OnceLock::new(),
        })
    }

    /// Whether it has a group named `name` (`(?P<account>…)`).
    pub fn has_group(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The compiled expression; `None` for one too large to compile, which then matches
    /// nothing (`paysys check-config` names it).
    pub fn regex(&self) -> Option<&regex::Regex> {
        self.compiled
            .get_or_init(|| regex::Regex::new(&self.text).ok())
            .as_ref()
    }

    /// Compiles it now, saying why it cannot be.
    pub fn compile(&self) -> Result<&regex::Regex, String> {
        self.regex()
            .ok_or_else(|| match regex::Regex::new(&self.text) {
                Err(e) => format!("'{}' cannot be compiled: {e}", self.text),
                Ok(_) => format!("'{}' cannot be compiled", self.text),
            })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex().is_some_and(|r| r.is_match(text))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The named groups of `hir`, depth first.
fn group_names(hir: &regex_syntax::hir::Hir, names: &mut Vec<String>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            if let Some(name) = &c.name {
                names.push(name.to_string());
            }
            group_names(&c.sub, names);
        }
        HirKind::Repetition(r) => group_names(&r.sub, names),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            for sub in subs {
                group_names(sub, names);
            }
        }
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {}
    }
}

/// How a system reads its accounts: the keys tried in order, and an optional rewrite.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRule {
    pub keys: Vec<AccountKey>,
    pub expr: Option<AccountExpr>,
}

impl AccountRule {
    pub fn new(key: AccountKey) -> AccountRule {
        AccountRule {
            keys: vec![key],
            expr: None,
        }
    }
}

/// One way an account may name a subscriber, checked against its key's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRef {
    /// A numeric id (NoDeny `users.id` from a payment code or a bare id; ABillS `uid`).
    Id(u64),
    /// ABillS login, a literal value (never a search pattern).
    Login(String),
    /// ABillS contract number, a literal value.
    ContractId(String),
}

/// Longest account text we look up: ABillS logins and contract numbers are far shorter.
const ACCOUNT_MAX: usize = 64;

/// The account as the caller typed it, already checked against the system's
/// [`AccountRule`]: `text` is what the caller sent less the blanks around it (for our
/// transaction row and the hooks; the log line shows the request's own bytes), `refs` the
/// lookups it allows, in the order the rule tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    text: String,
    refs: Vec<AccountRef>,
}

impl Account {
    /// Parses `text` by `rule`: the blanks around it dropped, rewritten by the rule's
    /// expression, then read by each key; keys the text does not fit are skipped. Refused
    /// when no key fits.
    ///
    /// Every protocol reads its account here, so every one drops the blanks: a subscriber
    /// types `ivanov ` on a terminal's keyboard (or a bank's form pads the field), and
    /// ABillS's script paid such an account to `ivanov`. Blanks inside stay, and a login
    /// that still begins or ends with one after the rewrite is refused ([`literal`]).
    pub fn parse_by(text: &str, rule: &AccountRule) -> Result<Account, String> {
        // Counted before trimming: a request padded past any real account is not one.
        if text.chars().count() > ACCOUNT_MAX {
            return Err(format!("account has {} characters, too long", text.len()));
        }
        let text = text.trim();
        let value = match &rule.expr {
            Some(expr) => expr.apply(text),
            None => text.to_string(),
        };
        let mut refs = Vec::with_capacity(rule.keys.len());
        let mut first_error = None;
        for key in &rule.keys {
            match account_ref(&value, *key) {
                Ok(r) if !refs.contains(&r) => refs.push(r),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if refs.is_empty() {
            return Err(first_error.unwrap_or_else(|| "no account key configured".into()));
        }
        Ok(Account {
            text: text.to_string(),
            refs,
        })
    }

    /// [`Account::parse_by`] with a single key and no rewrite.
    pub fn parse(text: &str, key: AccountKey) -> Result<Account, String> {
        Account::parse_by(text, &AccountRule::new(key))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn refs(&self) -> &[AccountRef] {
        &self.refs
    }

    /// The subscriber id, when the account names one by number alone (NoDeny's keys, ABillS
    /// `uid`): the first numeric lookup.
    pub fn subscriber_id(&self) -> Option<u64> {
        self.refs.iter().find_map(|r| match r {
            AccountRef::Id(id) => Some(*id),
            _ => None,
        })
    }
}

fn account_ref(value: &str, key: AccountKey) -> Result<AccountRef, String> {
    match key {
        AccountKey::PaymentCode => Ok(AccountRef::Id(PaymentCode::parse(value)?.id())),
        AccountKey::Id | AccountKey::Uid => {
            if value.len() > 20 {
                return Err(format!("account has {} characters, too long", value.len()));
            }
            Ok(AccountRef::Id(
                parse_id(value).map_err(|e| format!("account {e}"))?,
            ))
        }
        AccountKey::Login => literal(value, "login").map(AccountRef::Login),
        AccountKey::ContractId => literal(value, "contract number").map(AccountRef::ContractId),
    }
}

/// A login or contract number as typed: compared with `=` in SQL, so `%`, `*` or `>0` are
/// just characters. What no such value has is refused here: nothing, blanks at either end
/// (MySQL's `=` ignores trailing blanks, which would make `test1 ` find `test1`), control
/// characters.
fn literal(value: &str, what: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.trim() != value {
        return Err(format!("{what} begins or ends with blanks"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} has control characters"));
    }
    Ok(value.to_string())
}

/// An ABillS domain (Multidoms): the last part of `/cgi-bin/paysys_check.cgi/3`
/// (`PATH_INFO`). Accounts are looked up in the domain the URL names; no `PATH_INFO` is
/// domain 0, the only one of an ABillS without Multidoms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(u32);

impl Domain {
    /// `""` or `"/"` → 0; `"/3"` → 3; anything else is refused, so that a mistyped URL
    /// cannot pay into the wrong domain.
    pub fn from_path_info(path_info: &str) -> Result<Domain, String> {
        let digits = path_info.strip_prefix('/').unwrap_or(path_info);
        let digits = digits.strip_suffix('/').unwrap_or(digits);
        if digits.is_empty() {
            return Ok(Domain(0));
        }
        if digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "PATH_INFO '{path_info}' is not a domain id (/paysys_check.cgi/3)"
            ));
        }
        digits
            .parse::<u32>()
            .map(Domain)
            .map_err(|_| format!("PATH_INFO '{path_info}' is not a domain id"))
    }

    pub fn id(self) -> u32 {
        self.0
    }

    /// The domain with this id, as a row of ours recorded it.
    pub fn new(id: u32) -> Domain {
        Domain(id)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// When the payer paid at the terminal (OSMP `txn_date`, `YYYYMMDDHHMMSS` in the terminal's
/// local time, which we take as ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDate(NaiveDateTime);

impl TxnDate {
    /// Exactly 14 digits that name a real date and time. `now` is accepted only when `test`
    /// is set (NoDeny's shortcut for trying a deployment by hand from a browser).
    pub fn parse(text: &str, now: NaiveDateTime, test: bool) -> Result<TxnDate, String> {
        if text == "now" {
            return if test {
                Ok(TxnDate(now))
            } else {
                Err("txn_date=now is accepted only by a system with test = true".into())
            };
        }
        if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err("txn_date must be exactly 14 digits YYYYMMDDHHMMSS".into());
        }
        match NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S") {
            // chrono reads second 60 as a leap second; MySQL's DATETIME has none. Nor has
            // it years before 1000: such a date is the caller's error, not a write that
            // fails in the database (a system may have no txn_date window to refuse it).
            Ok(t) if t.and_utc().timestamp_subsec_nanos() == 0 && t.year() >= 1000 => {
                Ok(TxnDate(t))
            }
            _ => Err(format!("txn_date {text} is not a real date and time")),
        }
    }

    /// For a protocol whose pay carries no payment time (24NonStop): the time it reached
    /// us, which is within any window.
    pub fn received(now: NaiveDateTime) -> TxnDate {
        TxnDate(now.with_nanosecond(0).unwrap_or(now))
    }

    /// NoDeny's safety net (`nod12`): a terminal whose clock or software is wrong must not
    /// post payments days in the past or the future. Measured between instants (see
    /// [`TxnDate::instant_in`]), so a clock change inside the window does not stretch it.
    pub fn within<Tz: TimeZone>(self, now: &DateTime<Tz>, window_hours: u32) -> bool {
        let at = self.instant_in(&now.timezone());
        let distance = (at.timestamp() - now.timestamp()).unsigned_abs();
        distance <= u64::from(window_hours) * 3600
    }

    pub fn naive(self) -> NaiveDateTime {
        self.0
    }

    /// The instant this wall-clock time names in `tz` (the server's zone, in which terminals
    /// are taken to run).
    ///
    /// A clock change makes some local times name no instant (spring: 03:30 in a 03:00 →
    /// 04:00 jump) and others name two (autumn: 03:30 happens twice). One rule covers
    /// both: **such a time is read with the UTC offset in force before the change**, as if
    /// the terminal's clock had not been moved yet. A skipped 03:30 EET becomes 01:30 UTC
    /// (shown as 04:30 summer time); a doubled 03:30 is its first occurrence, 03:30 summer
    /// time, the earlier of the two instants. Either way the payment lands at most an hour
    /// away from what the terminal meant, and always in the order the terminal paid.
    pub fn instant_in<Tz: TimeZone>(self, tz: &Tz) -> DateTime<Tz> {
        match tz.from_local_datetime(&self.0) {
            chrono::LocalResult::Single(t) => t,
            // The two readings differ only in their offset; the larger offset (the one
            // before an autumn change) gives the earlier instant.
            chrono::LocalResult::Ambiguous(a, b) => {
                if a.timestamp() <= b.timestamp() {
                    a
                } else {
                    b
                }
            }
            chrono::LocalResult::None => {
                // A day earlier is safely before the change (zones change their clocks at
                // most twice a year); its offset is the one in force before the gap.
                let before = tz
                    .offset_from_utc_datetime(&(self.0 - Duration::hours(24)))
                    .fix();
                tz.from_utc_datetime(
                    &(self.0 - Duration::seconds(i64::from(before.local_minus_utc()))),
                )
            }
        }
    }

    /// Seconds since the epoch, reading the date in the server's time zone (NoDeny's
    /// `pays.time` is a Unix time), by the rule of [`TxnDate::instant_in`].
    pub fn unix_time(self) -> i64 {
        self.instant_in(&Local).timestamp()
    }

    /// `YYYY-MM-DD HH:MM:SS`, the form MySQL takes for `DATETIME`.
    pub fn sql(self) -> String {
        self.0.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_checked_when_read_and_compiled_when_used() {
        let p = Pattern::new(r"(?i)ос\.?\s*рах\.?\s*(?P<account>\d{3,8})").expect("a pattern");
        assert!(p.has_group("account") && !p.has_group("other"));
        assert!(p.compiled.get().is_none(), "not compiled before it is used");
        assert!(p.is_match("Ос. рах. 10052"));
        assert!(p.compiled.get().is_some());
        let err = Pattern::new("(unclosed").expect_err("a syntax error");
        assert!(err.contains("is not a regular expression"), "{err}");
        let err = Pattern::new(r"\p{Cyrilic}").expect_err("no such class");
        assert!(err.contains("is not a regular expression"), "{err}");
        // Valid syntax, too large a program: matches nothing, and says so when compiled.
        let huge = Pattern::new(r"(?:\w{100}){100}").expect("its syntax is fine");
        assert!(!huge.is_match("a"));
        let err = huge.compile().expect_err("too large");
        assert!(err.contains("cannot be compiled"), "{err}");
    }

    fn now() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap()
    }

    #[test]
    fn minor_units_hold_the_same_bound_as_text() {
        let top = Amount::from_minor_units(999_999_999_999_999).unwrap();
        assert_eq!(Amount::parse(&top.to_string()), Ok(top));
        assert_eq!(
            Amount::from_minor_units(1_000_000_000_000_000),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::from_minor_units(i64::MIN),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Amount::from_minor_units(-5), Ok(Amount::from_kopecks(-5)));
    }

    #[test]
    fn amounts_parse_exactly() {
        let table: &[(&str, Option<i64>)] = &[
            ("10", Some(1000)),
            ("10.5", Some(1050)),
            ("10.50", Some(1050)),
            ("10.25", Some(1025)),
            ("0.01", Some(1)),
            ("0", Some(0)),
            ("00010.00", Some(1000)),
            ("9999999999999.99", Some(999_999_999_999_999)),
            ("1e3", None),
            ("-5", None),
            ("+5", None),
            ("NaN", None),
            ("inf", None),
            ("10.001", None),
            (" 10", None),
            ("10 ", None),
            ("10,5", None),
            ("", None),
            (".5", None),
            ("5.", None),
            ("1.2.3", None),
            ("١٠", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                Amount::parse(text).ok().map(Amount::kopecks),
                *expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn huge_amounts_are_too_large_not_malformed() {
        assert_eq!(
            Amount::parse("99999999999999999999"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::parse("99999999999999999999.99"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn amounts_print_with_two_decimals() {
        assert_eq!(Amount::from_kopecks(1025).to_string(), "10.25");
        assert_eq!(Amount::from_kopecks(5).to_string(), "0.05");
        assert_eq!(Amount::from_kopecks(-300).to_string(), "-3.00");
        assert_eq!(parse_balance("-12.30"), Some(Amount::from_kopecks(-1230)));
        assert_eq!(parse_balance("7"), Some(Amount::from_kopecks(700)));
        assert_eq!(parse_balance("x"), None);
    }

    #[test]
    fn txn_ids_are_1_to_20_digits() {
        let table: &[(&str, bool)] = &[
            ("666", true),
            ("0", true),
            ("12345678901234567890", true),
            ("123456789012345678901", false),
            ("", false),
            ("666\n", false),
            ("66 6", false),
            ("-1", false),
            ("1' OR '1'='1", false),
            ("<result>0</result>", false),
        ];
        for (text, ok) in table {
            assert_eq!(TxnId::parse(text).is_ok(), *ok, "{text:?}");
        }
    }

    #[test]
    fn other_protocols_ids_are_tokens_of_up_to_64() {
        let table: &[(&str, bool)] = &[
            ("12345", true),
            ("6F9619FF-8B86-D011-B42D-00C04FC964FF", true),
            ("{6F9619FF-8B86-D011-B42D-00C04FC964FF}", true),
            ("0.0.345032104.1", true),
            ("a_b:c", true),
            (&"9".repeat(64), true),
            (&"9".repeat(65), false),
            ("", false),
            ("12 34", false),
            ("12'34", false),
            ("12<34", false),
            ("12%34", false),
            ("ид", false),
        ];
        for (text, ok) in table {
            assert_eq!(TxnId::parse_token(text).is_ok(), *ok, "{text:?}");
        }
    }

    #[test]
    fn payment_codes_carry_a_mod10_check_digit() {
        let table: &[(&str, Option<u64>)] = &[
            ("59071", Some(5907)),
            ("33", Some(3)),
            ("11", Some(1)),
            ("1236", Some(123)),
            ("58071", None), // typo in one digit
            ("59072", None), // wrong check digit
            ("100", None),   // a sum typed instead of a code
            ("5", None),     // too short
            ("00", None),    // id 0
            ("5907a", None),
            ("", None),
            ("1234567890123456789012345", None), // 25 digits
            ("99999999999999999999", None),      // id does not fit u64
        ];
        for (text, expected) in table {
            assert_eq!(
                PaymentCode::parse(text).ok().map(PaymentCode::id),
                *expected,
                "{text:?}"
            );
        }
        assert_eq!(PaymentCode::for_id(5907).to_string(), "59071");
        assert_eq!(PaymentCode::parse("550").map(PaymentCode::id), Ok(55));
    }

    #[test]
    fn accounts_follow_the_systems_key() {
        let by_code = Account::parse("59071", AccountKey::PaymentCode).unwrap();
        assert_eq!(by_code.subscriber_id(), Some(5907));
        assert_eq!(by_code.as_str(), "59071");
        assert_eq!(
            Account::parse("5907", AccountKey::Id)
                .unwrap()
                .subscriber_id(),
            Some(5907)
        );
        assert!(Account::parse("5907", AccountKey::PaymentCode).is_err());
        assert!(Account::parse("0", AccountKey::Id).is_err());
        assert!(Account::parse("12a", AccountKey::Id).is_err());
        assert!(AccountKey::parse("uid_or_login").is_err());
    }

    #[test]
    fn txn_dates_are_14_digit_real_times() {
        let table: &[(&str, bool)] = &[
            ("20261122093000", true),
            ("2026112209300", false),   // 13 digits
            ("202611220930000", false), // 15 digits
            ("20261399999999", false),  // month 13
            ("20260230120000", false),  // 30 February
            ("20261122095960", false),  // second 60 (chrono: a leap second)
            ("20261231235960", false),
            ("20261122246000", false),
            ("00000101000000", false), // year 0: no DATETIME holds it
            ("09991231235959", false),
            ("10000101000000", true),
            ("2026-11-22 09:3", false),
            ("now", false), // not a test system
            ("", false),
        ];
        for (text, ok) in table {
            assert_eq!(TxnDate::parse(text, now(), false).is_ok(), *ok, "{text:?}");
        }
        assert_eq!(
            TxnDate::parse("now", now(), true).map(TxnDate::naive),
            Ok(now())
        );
    }

    #[test]
    fn txn_date_window_is_symmetric_and_inclusive() {
        let at = |s: &str| TxnDate::parse(s, now(), false).unwrap();
        let now = chrono::Utc.from_utc_datetime(&now());
        assert!(at("20261121100000").within(&now, 24));
        assert!(at("20261123100000").within(&now, 24));
        assert!(!at("20261121095959").within(&now, 24));
        assert!(!at("20261123100001").within(&now, 24));
        assert!(!at("20251122100000").within(&now, 24));
        assert_eq!(at("20261122093000").sql(), "2026-11-22 09:30:00");
    }

    /// Europe/Kyiv in 2026, by hand: EET (+02:00), and EEST (+03:00) from 29 March 01:00 UTC
    /// (local 03:00 → 04:00) to 25 October 01:00 UTC (local 04:00 → 03:00).
    #[derive(Debug, Clone, Copy)]
    struct Kyiv2026;

    impl Kyiv2026 {
        fn at(h: u32, date: &str) -> NaiveDateTime {
            NaiveDateTime::parse_from_str(&format!("{date}{h:02}0000"), "%Y%m%d%H%M%S").unwrap()
        }
        fn eet() -> chrono::FixedOffset {
            chrono::FixedOffset::east_opt(2 * 3600).unwrap()
        }
        fn eest() -> chrono::FixedOffset {
            chrono::FixedOffset::east_opt(3 * 3600).unwrap()
        }
    }

    impl TimeZone for Kyiv2026 {
        type Offset = chrono::FixedOffset;
        fn from_offset(_: &chrono::FixedOffset) -> Self {
            Kyiv2026
        }
        fn offset_from_local_date(
            &self,
            _: &chrono::NaiveDate,
        ) -> chrono::LocalResult<chrono::FixedOffset> {
            unimplemented!("not used")
        }
        fn offset_from_local_datetime(
            &self,
            local: &NaiveDateTime,
        ) -> chrono::LocalResult<chrono::FixedOffset> {
            let (spring, autumn) = (Self::at(3, "20260329"), Self::at(3, "20261025"));
            let hour = Duration::hours(1);
            if *local >= spring && *local < spring + hour {
                chrono::LocalResult::None
            } else if *local >= autumn && *local < autumn + hour {
                // In the order chrono's own zones may give them: later reading first.
                chrono::LocalResult::Ambiguous(Self::eet(), Self::eest())
            } else if *local >= spring + hour && *local < autumn {
                chrono::LocalResult::Single(Self::eest())
            } else {
                chrono::LocalResult::Single(Self::eet())
            }
        }
        fn offset_from_utc_date(&self, _: &chrono::NaiveDate) -> chrono::FixedOffset {
            unimplemented!("not used")
        }
        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> chrono::FixedOffset {
            if *utc >= Self::at(1, "20260329") && *utc < Self::at(1, "20261025") {
                Self::eest()
            } else {
                Self::eet()
            }
        }
    }

    #[test]
    fn clock_changes_read_with_the_offset_before_the_change() {
        let utc = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
                .unwrap()
                .and_utc()
                .timestamp()
        };
        let table: &[(&str, &str, &str)] = &[
            ("20260329023000", "20260329003000", "ordinary winter time"),
            (
                "20260329033000",
                "20260329013000",
                "skipped: read as EET, before the jump",
            ),
            ("20260329035959", "20260329015959", "skipped, last second"),
            ("20260329040000", "20260329010000", "first summer second"),
            ("20261025023000", "20261024233000", "ordinary summer time"),
            (
                "20261025033000",
                "20261025003000",
                "doubled: the first (EEST) reading",
            ),
            (
                "20261025040000",
                "20261025020000",
                "ordinary winter time again",
            ),
        ];
        for (local, expected_utc, why) in table {
            let date = TxnDate::parse(local, now(), false).unwrap();
            assert_eq!(
                date.instant_in(&Kyiv2026).timestamp(),
                utc(expected_utc),
                "{local}: {why}"
            );
        }
    }

    #[test]
    fn abills_accounts_are_literal_values() {
        let rule = AccountRule {
            keys: vec![AccountKey::Uid, AccountKey::Login, AccountKey::ContractId],
            expr: None,
        };
        let login = |t: &str| AccountRef::Login(t.into());
        let contract = |t: &str| AccountRef::ContractId(t.into());
        let table: &[(&str, Option<Vec<AccountRef>>)] = &[
            (
                "17",
                Some(vec![AccountRef::Id(17), login("17"), contract("17")]),
            ),
            ("test1", Some(vec![login("test1"), contract("test1")])),
            // Search patterns are characters like any other: looked up literally.
            ("*", Some(vec![login("*"), contract("*")])),
            (">0", Some(vec![login(">0"), contract(">0")])),
            ("a%b", Some(vec![login("a%b"), contract("a%b")])),
            // Typed with blanks around it: the same account.
            ("test1 ", Some(vec![login("test1"), contract("test1")])),
            (" test1", Some(vec![login("test1"), contract("test1")])),
            (
                "\ttest1 \u{a0}",
                Some(vec![login("test1"), contract("test1")]),
            ),
            (
                " 17 ",
                Some(vec![AccountRef::Id(17), login("17"), contract("17")]),
            ),
            ("te st1", Some(vec![login("te st1"), contract("te st1")])),
            ("a\nb", None),
            ("", None),
            ("   ", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                Account::parse_by(text, &rule)
                    .ok()
                    .map(|a| a.refs().to_vec()),
                *expected,
                "{text:?}"
            );
        }
        let uid_only = AccountRule::new(AccountKey::Uid);
        assert!(Account::parse_by("test1", &uid_only).is_err());
        assert_eq!(
            Account::parse_by("0017", &uid_only)
                .unwrap()
                .subscriber_id(),
            Some(17)
        );
    }

    #[test]
    fn blanks_around_an_account_are_dropped_for_every_key() {
        let code = Account::parse(" 59071 ", AccountKey::PaymentCode).unwrap();
        assert_eq!((code.as_str(), code.subscriber_id()), ("59071", Some(5907)));
        let id = Account::parse("5907\t", AccountKey::Id).unwrap();
        assert_eq!(id.subscriber_id(), Some(5907));
        let login = Account::parse("ivanov ", AccountKey::Login).unwrap();
        assert_eq!(login.as_str(), "ivanov");
        assert_eq!(login.refs(), [AccountRef::Login("ivanov".into())]);
        // The rewrite sees the account without them: "$" anchors at the last digit.
        let rule = AccountRule {
            keys: vec![AccountKey::Uid],
            expr: Some(AccountExpr::parse(r"\d+(\d{3})$/$1").unwrap()),
        };
        assert_eq!(
            Account::parse_by(" 9990017 ", &rule)
                .unwrap()
                .subscriber_id(),
            Some(17)
        );
        // A rewrite that makes blanks of its own still meets the literal check.
        let rule = AccountRule {
            keys: vec![AccountKey::Login],
            expr: Some(AccountExpr::parse("^x/ ").unwrap()),
        };
        assert!(Account::parse_by("xivanov", &rule).is_err());
        // Padding does not stretch the length limit.
        let padded = format!("{}ivanov", " ".repeat(ACCOUNT_MAX));
        assert!(Account::parse(&padded, AccountKey::Login).is_err());
    }

    #[test]
    fn account_expr_rewrites_as_perl_would() {
        let expr = AccountExpr::parse(r"\d+(\d{8})$/$1").unwrap();
        assert_eq!(expr.apply("38044123456789"), "23456789");
        assert_eq!(expr.apply("1234"), "1234", "no match: as typed");
        let expr = AccountExpr::parse("^0+/").unwrap();
        assert_eq!(expr.apply("000123"), "123");
        let expr = AccountExpr::parse(r"^(\d+)-(\d+)$/$2$1x").unwrap();
        assert_eq!(expr.apply("12-34"), "3412x");
        assert!(AccountExpr::parse("no slash").is_err());
        assert!(AccountExpr::parse("(/x").is_err());
        let rule = AccountRule {
            keys: vec![AccountKey::Uid],
            expr: Some(AccountExpr::parse(r"\d+(\d{3})$/$1").unwrap()),
        };
        let account = Account::parse_by("9990017", &rule).unwrap();
        assert_eq!(account.as_str(), "9990017", "the log keeps what was typed");
        assert_eq!(account.subscriber_id(), Some(17));
    }

    #[test]
    fn domains_come_from_path_info() {
        let table: &[(&str, Option<u32>)] = &[
            ("", Some(0)),
            ("/", Some(0)),
            ("/3", Some(3)),
            ("/3/", Some(3)),
            ("/0", Some(0)),
            ("/abc", None),
            ("/3/extra", None),
            ("/-1", None),
            ("/99999999999", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                Domain::from_path_info(text).ok().map(Domain::id),
                *expected,
                "{text:?}"
            );
        }
    }
}
