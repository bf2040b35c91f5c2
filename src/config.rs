//! `etc/paysys.toml`, layered with `etc/paysys.d/*.toml`.
//!
//! The main file holds the shipped settings; files in `paysys.d/` are read in name order and
//! each changes only the keys it names, so local changes survive an upgrade that replaces
//! the main file. A `[[system]]` in an overlay is matched to an earlier one by `name`;
//! `reset = true` in it drops everything that system inherited first.
//!
//! This file reads the keys every system has; the keys of one protocol (24NonStop's
//! `secret`, EasyPay's `certificate`, …) are that protocol's, in [`protocols`], which turns
//! them into the system's [`ProtocolSettings`].
//!
//! Every key is read through [`Spanned`] so that an error can name the file, the line and
//! the key: "etc/paysys.toml line 14: system 'osmp': allow: '10.0.0.300/8' is not an IP
//! address or network".

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::allow::AllowList;
use crate::domain::{AccountExpr, AccountKey, AccountRule, Amount};
use crate::hooks::{HookCommand, Hooks};

pub mod protocols;
pub mod statement;

pub use protocols::{
    BankKind, CardSettings, Credentials, Merchant, ProtocolSettings, RsaRule, ServiceSlot,
    SignHash, SignRule, StatementBank,
};
pub use statement::{CsvSection, RuleKind, StatementConfig, StatementRule};

/// Why no usable configuration could be had. `Missing` and `Invalid` are told apart because
/// NoDeny's terminals and admins know them as `nod1` and `nod2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing {
        path: PathBuf,
        why: String,
    },
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        why: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { path, why } => {
                write!(f, "config {} cannot be read: {why}", path.display())
            }
            ConfigError::Invalid {
                path,
                line: Some(line),
                why,
            } => {
                write!(f, "config {} line {line}: {why}", path.display())
            }
            ConfigError::Invalid {
                path,
                line: None,
                why,
            } => {
                write!(f, "config {}: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole, checked configuration. Every value is already typed: the request path never
/// parses config text.
#[derive(Debug, Clone)]
pub struct Config {
    /// The install base (`/usr/abills`, `/usr/local/paysys`): relative paths hang off it.
    pub base: PathBuf,
    /// The files that were read, main file first.
    pub files: Vec<PathBuf>,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub systems: Vec<System>,
    /// Commands run around payments (`[hooks]`).
    pub hooks: Hooks,
    /// The subscriber's page (`[page]`).
    pub page: PageConfig,
    /// Bank statements' rules and CSV presets (`[statement]`); the bank accounts are
    /// systems (protocol `statement`).
    pub statement: StatementConfig,
}

/// `[page]`: the subscriber's top-up page at `paysys_check.cgi/pay`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageConfig {
    /// How the world reaches `paysys_check.cgi` (`https://isp.example/cgi-bin/paysys_check.cgi`),
    /// without a trailing `/`: every URL given to providers and browsers starts here. `None`:
    /// built from the request (`HTTPS`, `HTTP_HOST`, `SCRIPT_NAME`), which check-config warns
    /// about.
    pub public_url: Option<String>,
    /// The ISP's name at the top of the page; empty: none.
    pub title: String,
    /// An image file shown above the title (PNG, JPEG, GIF, WebP or SVG; inlined into the
    /// page, so that the page loads nothing from anywhere).
    pub logo: Option<PathBuf>,
    /// Where the admin's `page.html` and `texts.toml` are; `None`: the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// The language when neither `?lang=` nor the browser names one we have: `uk`, `ru`,
    /// `en`.
    pub language: String,
    /// New orders one caller address (an IPv6 caller's /64) may make in an hour; more are
    /// answered 429 and store nothing. `0`: no limit.
    pub orders_per_address: u32,
    /// New orders made for one account (in one domain) in an hour, from anywhere; more are
    /// answered 429 and store nothing. `0`: no limit.
    pub orders_per_account: u32,
    /// Accounts one caller address (an IPv6 caller's /64) may try in an hour that name
    /// nobody; more are answered 429 without a lookup, so that the page cannot be used to
    /// learn which accounts exist. `0`: no limit.
    pub misses_per_address: u32,
    /// A request for the same system, account, sum and domain as an order still waiting,
    /// made less than this many minutes ago, is sent to that order again instead of making
    /// a new one. `0`: never.
    pub reuse_minutes: u32,
}

/// `[page] orders_per_address` when the config does not say.
pub const DEFAULT_ORDERS_PER_ADDRESS: u32 = 20;
/// `[page] orders_per_account` when the config does not say.
pub const DEFAULT_ORDERS_PER_ACCOUNT: u32 = 10;
/// `[page] misses_per_address` when the config does not say.
pub const DEFAULT_MISSES_PER_ADDRESS: u32 = 10;
/// `[page] reuse_minutes` when the config does not say.
pub const DEFAULT_REUSE_MINUTES: u32 = 30;

/// The languages the page speaks.
pub const PAGE_LANGUAGES: &[&str] = &["uk", "ru", "en"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `mysql://user:pass@host:port/db`, optionally `?socket=/run/mysqld/mysqld.sock`; one
    /// or more. Several are the nodes of a Galera cluster, tried in order ([`crate::db`]).
    pub urls: Vec<String>,
    /// The billing schema, resolved by [`crate::billing::of`].
    pub billing: BillingKind,
    /// Seconds to wait for a connection before answering "temporary error".
    pub connect_timeout: u32,
    /// Seconds a statement may wait for a row lock (`innodb_lock_wait_timeout`). Terminals
    /// give up after about 60 s; answering a temporary error well before that lets them retry.
    pub lock_timeout: u32,
    /// `procedure = true` (ABillS only): a terminal's plain new pay is made by one CALL of
    /// the stored procedure `sql/abills-pay.sql` installs, instead of statement by statement
    /// ([`crate::billing::Billing::pay_in_one_call`]).
    pub procedure: bool,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Where the log line goes (and where `paysys txn` reads it), even with `to_file` off.
    pub file: PathBuf,
    /// `file = false` (ABillS's `PAYSYS_LOG = 2`): no log file. A request the database
    /// got a row for leaves no line; one it did not (an unknown caller, a row that could
    /// not be written) has its line written to stderr, the web server's error log.
    pub to_file: bool,
    pub debug: bool,
    /// `database = true` (ABillS's `PAYSYS_LOG`): one row per request of a known system in
    /// the request history ([`crate::history`]).
    pub database: bool,
    /// `keep_days`: rows of the request history older than this many days are deleted by
    /// `paysys requests --purge` (the shipped timer); 0 keeps them.
    pub keep_days: u32,
}

/// `keep_days` when the config does not say: a quarter.
pub const DEFAULT_KEEP_DAYS: u32 = 92;

/// Largest `txn_window_hours`: a year and a day.
pub const MAX_WINDOW_HOURS: u32 = 24 * 366;

/// `txn_window_hours` when the config does not say: NoDeny's one day.
pub const DEFAULT_WINDOW_HOURS: u32 = 24;

/// `max_sum` when the config does not say: NoDeny's 15000.00. `paysys import-abills` writes
/// `max_sum = "none"` instead, as ABillS had no such limit.
pub const DEFAULT_MAX_SUM: Amount = Amount::from_kopecks(1_500_000);

/// `min_sum` when the config does not say, and the least it may be: a zero payment moves
/// nothing and would still write rows.
pub const LEAST_SUM: Amount = Amount::from_kopecks(1);

/// Where a key was set: a file and a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.path.display(), self.line)
    }
}

/// Where a system's limits come from, so that `check-config` can say why a sum or a late
/// payment is refused and `import-abills` can leave an admin's own limits alone. Each list
/// holds every file and line that set the key for this system, in reading order (a
/// `reset = true` forgets the earlier ones); empty means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSources {
    pub min_sum: Vec<Place>,
    pub max_sum: Vec<Place>,
    /// `max_sum = "none"`: no limit of the system's own; [`System::max_sum`] is then the
    /// largest sum the billing's payment row holds ([`BillingKind::largest_payment`]).
    pub max_sum_none: bool,
    pub txn_window_hours: Vec<Place>,
}

/// One payment system: who may call as it, what it speaks, and its limits.
#[derive(Debug, Clone)]
pub struct System {
    pub name: String,
    pub protocol: ProtocolKind,
    pub allow: AllowList,
    /// Addresses that may call as this system in test mode (`txn_date=now` accepted, the
    /// log line says `test=1`): an admin's desk, like ABillS's `PAYSYS_TEST_SYSTEM`.
    pub test_allow: AllowList,
    /// How the typed account names a subscriber: keys tried in order, optional rewrite.
    pub account: AccountRule,
    /// Show the payer's name masked (`Ив*** И***`) in check answers, as ABillS's
    /// `FIO_HIDDEN`. Default true: a terminal's screen is public.
    pub mask_name: bool,
    pub min_sum: Amount,
    /// The largest sum accepted: `max_sum`, or with `max_sum = "none"` the largest the
    /// billing's payment row holds (a larger one could only fail in the database, and a
    /// failure there is a temporary error the terminal would retry for a day).
    pub max_sum: Amount,
    pub txn_window_hours: u32,
    /// Where the three above come from.
    pub limits: LimitSources,
    pub test: bool,
    /// How ABillS records this system's payments (ignored by other billings).
    pub abills: AbillsSystem,
    /// What the protocol took from its own keys ([`protocols`]).
    pub settings: ProtocolSettings,
}

impl System {
    /// How the protocol's requests are signed with a shared secret (24NonStop); `None` for
    /// a protocol without, or one whose check the admin turned off (`sign = "none"`, which
    /// check-config warns about).
    pub fn sign(&self) -> Option<&SignRule> {
        self.settings.sign()
    }

    /// EasyPay's keys; `None` for other protocols, or with `sign = "none"`.
    pub fn rsa(&self) -> Option<&RsaRule> {
        self.settings.rsa()
    }

    /// A card provider's keys and addresses, if the system is one.
    pub fn card(&self) -> Option<&CardSettings> {
        self.settings.card()
    }

    /// A bank account's keys, if the system is one (`[[statement.bank]]`).
    pub fn statement(&self) -> Option<&StatementBank> {
        self.settings.statement()
    }
}

/// A system's identity in ABillS's own tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbillsSystem {
    /// `paysys_log.system_id`: the system's id in ABillS (`paysys_connect.paysys_id`).
    pub id: u8,
    /// `payments.method`: the payment type ABillS files these payments under.
    pub payment_method: u32,
    /// `payments.aid`: the ABillS admin the payments are made as.
    pub admin_id: u32,
    /// `payments.dsc`.
    pub description: String,
    /// `"<prefix>:<txn_id>"` is `payments.ext_id` and `paysys_log.transaction_id`.
    pub txn_prefix: String,
    /// Which subscribers' states (`users.disable`) refuse a payment, as "account inactive".
    pub refuse_disabled: RefuseDisabled,
}

/// Which values of ABillS's `users.disable` (0 active, 1 disabled, 2 not active, others as
/// an install defines them) refuse a check and a pay. ABillS's own script refuses none: a
/// subscriber switched off for debt pays at the terminal to be switched back on. Key
/// `refuse_disabled`: `false` (the default, as ABillS), `true` (every state but 0), or a
/// list of states, e.g. `[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RefuseDisabled {
    #[default]
    None,
    All,
    States(Vec<u8>),
}

impl RefuseDisabled {
    /// Whether a subscriber in `state` is refused.
    pub fn refuses(&self, state: u8) -> bool {
        match self {
            _ if state == 0 => false,
            RefuseDisabled::None => false,
            RefuseDisabled::All => true,
            RefuseDisabled::States(states) => states.contains(&state),
        }
    }

    /// As the config writes it.
    pub fn describe(&self) -> String {
        match self {
            RefuseDisabled::None => "false".into(),
            RefuseDisabled::All => "true".into(),
            RefuseDisabled::States(states) => format!("{states:?}"),
        }
    }
}

/// The billing schemas a config may name. The config only names them; [`crate::billing`]
/// holds their code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingKind {
    NoDeny,
    Abills,
}

impl BillingKind {
    pub const ALL: &'static [BillingKind] = &[BillingKind::NoDeny, BillingKind::Abills];

    pub fn name(self) -> &'static str {
        match self {
            BillingKind::NoDeny => "nodeny",
            BillingKind::Abills => "abills",
        }
    }

    fn parse(text: &str) -> Option<BillingKind> {
        Self::ALL.iter().copied().find(|b| b.name() == text)
    }

    /// The largest payment the billing's payment row holds, and that column, for
    /// `max_sum = "none"`.
    pub fn largest_payment(self) -> (Amount, &'static str) {
        match self {
            // pays.cash DECIMAL(12,2).
            BillingKind::NoDeny => (Amount::from_kopecks(999_999_999_999), "pays.cash"),
            // payments.sum DOUBLE(10,2): ABillS's own script could write no more either.
            BillingKind::Abills => (Amount::from_kopecks(9_999_999_999), "payments.sum"),
        }
    }

    /// The account keys this billing can look up; the first is the default.
    pub fn account_keys(self) -> &'static [AccountKey] {
        match self {
            BillingKind::NoDeny => &[AccountKey::PaymentCode, AccountKey::Id],
            BillingKind::Abills => &[AccountKey::Uid, AccountKey::Login, AccountKey::ContractId],
        }
    }
}

/// The wire protocols a config may name; [`crate::protocol`] holds their code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolKind {
    Osmp,
    /// 24NonStop terminals (`ACT=1|4|7`, `SIGN`), also 2click.
    Nonstop24,
    /// iBox terminals: OSMP with `ibox_txn_id` and `prv_txn_date`.
    Ibox,
    /// City24 / City-Pay terminals (`QueryType=check|pay|cancel`, listings).
    City24,
    /// PrivatBank's "Debt" XML interface (also A-Bank, Monobank).
    Privat,
    /// EasyPay's provider protocol 3.1: book (Payment), then Confirm; RSA signatures.
    Easypay,
    /// LiqPay card payments (PrivatBank): the callback of an order the subscriber paid.
    Liqpay,
    /// Monobank acquiring: the webhook of an invoice the subscriber paid.
    Monobank,
    /// WayForPay card payments: the serviceUrl callback of an order.
    Wayforpay,
    /// A bank account whose statement is imported or pulled (`[[statement.bank]]`): its
    /// rows are credited by `paysys statement`, never by a request — no caller is ever
    /// taken for it.
    Statement,
    /// Kaspi (Kazakhstan): OSMP with `txn_id` and `prv_txn_id` in its answers.
    Kaspi,
    /// Portmone's "bills" protocol (Ukrainian bank apps): XML in the form field `data`;
    /// no signature, so its allow list may not be empty.
    Portmone,
    /// Click's SHOP API (Uzbekistan): Prepare books, Complete pays; MD5 `sign_string`.
    Click,
    /// Payme's Merchant API (Uzbekistan): JSON-RPC, the `Authorization` header's key.
    Payme,
}

/// How a protocol's requests prove where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Not at all: the allow list is the credential.
    None,
    /// A hash over the fields and a shared `secret` (24NonStop).
    Shared,
    /// An RSA signature checked with the system's `certificate` (EasyPay).
    Rsa,
    /// A card provider's own scheme, with the keys of its merchant cabinet (LiqPay,
    /// Monobank, WayForPay): never optional.
    Provider,
}

impl ProtocolKind {
    pub const ALL: &'static [ProtocolKind] = &[
        ProtocolKind::Osmp,
        ProtocolKind::Nonstop24,
        ProtocolKind::Ibox,
        ProtocolKind::City24,
        ProtocolKind::Privat,
        ProtocolKind::Easypay,
        ProtocolKind::Liqpay,
        ProtocolKind::Monobank,
        ProtocolKind::Wayforpay,
        ProtocolKind::Statement,
        ProtocolKind::Kaspi,
        ProtocolKind::Portmone,
        ProtocolKind::Click,
        ProtocolKind::Payme,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Osmp => "osmp",
            ProtocolKind::Nonstop24 => "24nonstop",
            ProtocolKind::Ibox => "ibox",
            ProtocolKind::City24 => "city24",
            ProtocolKind::Privat => "privat",
            ProtocolKind::Easypay => "easypay",
            ProtocolKind::Liqpay => "liqpay",
            ProtocolKind::Monobank => "monobank",
            ProtocolKind::Wayforpay => "wayforpay",
            ProtocolKind::Statement => "statement",
            ProtocolKind::Kaspi => "kaspi",
            ProtocolKind::Portmone => "portmone",
            ProtocolKind::Click => "click",
            ProtocolKind::Payme => "payme",
        }
    }

    /// Whether requests may speak the protocol: every one but a bank statement's, whose
    /// rows come from `paysys statement`.
    pub fn called(self) -> bool {
        self != ProtocolKind::Statement
    }

    /// Whether the protocol is a card provider's: its orders start on our page and end in
    /// its callback (or the sweeper's status request), never in a terminal's request.
    pub fn card(self) -> bool {
        self.signature() == Signature::Provider
    }

    /// The name of ABillS's Paysys module for the protocol (`systems/…/<name>.pm`), lower
    /// case, as `paysys_connect.module` names it.
    pub fn abills_module(self) -> &'static str {
        match self {
            ProtocolKind::Osmp => "osmp",
            ProtocolKind::Nonstop24 => "24_non_stop",
            ProtocolKind::Ibox => "ibox",
            ProtocolKind::City24 => "usmp",
            ProtocolKind::Privat => "privat_terminal",
            ProtocolKind::Easypay => "easypay",
            ProtocolKind::Liqpay => "liqpay",
            ProtocolKind::Monobank => "monobank",
            ProtocolKind::Wayforpay => "wayforpay",
            // ABillS imports statements in its web interface, with no module of its own.
            ProtocolKind::Statement => "statement",
            ProtocolKind::Kaspi => "kaspi",
            ProtocolKind::Portmone => "portmone",
            ProtocolKind::Click => "click",
            ProtocolKind::Payme => "payme",
        }
    }

    /// How the protocol's requests are signed: a system speaking a signed one needs its
    /// `secret` or `certificate` (or an explicit `sign = "none"`).
    pub fn signature(self) -> Signature {
        match self {
            // Click signs with its secret_key, Payme sends its key: a key shared with the
            // system, never optional.
            ProtocolKind::Nonstop24 | ProtocolKind::Click | ProtocolKind::Payme => {
                Signature::Shared
            }
            ProtocolKind::Easypay => Signature::Rsa,
            ProtocolKind::Liqpay | ProtocolKind::Monobank | ProtocolKind::Wayforpay => {
                Signature::Provider
            }
            ProtocolKind::Osmp
            | ProtocolKind::Ibox
            | ProtocolKind::City24
            | ProtocolKind::Privat
            | ProtocolKind::Statement
            | ProtocolKind::Kaspi
            | ProtocolKind::Portmone => Signature::None,
        }
    }

    /// Whether the protocol signs its requests at all.
    pub fn signed(self) -> bool {
        self.signature() != Signature::None
    }

    /// Whether a system speaking it must name its callers: the protocol proves nothing
    /// else about who sends a payment (Portmone: no signature, no key), so an empty allow
    /// list is refused rather than read as "nobody" and forgotten.
    pub fn needs_allow(self) -> bool {
        self == ProtocolKind::Portmone
    }

    fn parse(text: &str) -> Option<ProtocolKind> {
        Self::ALL.iter().copied().find(|p| p.name() == text)
    }

    /// The system's id in ABillS (`paysys_connect.paysys_id`, `paysys_log.system_id`) that
    /// ABillS gives this protocol's module.
    pub fn abills_id(self) -> u8 {
        match self {
            ProtocolKind::Osmp => 44,
            ProtocolKind::Nonstop24 => 52,
            ProtocolKind::Ibox => 60,
            ProtocolKind::City24 => 47,
            ProtocolKind::Privat => 65,
            ProtocolKind::Easypay => 57,
            // No public source gives ABillS's ids of its card modules: import-abills takes
            // them from paysys_connect, and check-config asks for abills_id on ABillS.
            ProtocolKind::Liqpay | ProtocolKind::Monobank | ProtocolKind::Wayforpay => 0,
            ProtocolKind::Statement => 0,
            // The modules are not public (ABillS's tests only): the id comes from
            // paysys_connect as for the card modules, and check-config asks for abills_id
            // on ABillS.
            ProtocolKind::Kaspi
            | ProtocolKind::Portmone
            | ProtocolKind::Click
            | ProtocolKind::Payme => 0,
        }
    }
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> String {
    all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(" | ")
}

/// Where the config lives: `PAYSYS_CONFIG` if the web server set it, else
/// `<dir of the executable>/../etc/paysys.toml`, so `/usr/abills/cgi-bin/osmp.cgi` reads
/// `/usr/abills/etc/paysys.toml`.
pub fn locate(env_config: Option<&Path>, exe: Option<&Path>) -> PathBuf {
    if let Some(path) = env_config {
        return path.to_path_buf();
    }
    let cgi_dir = exe.and_then(Path::parent).unwrap_or(Path::new("."));
    cgi_dir.join("..").join("etc").join("paysys.toml")
}

/// The install base for a config path: the parent of the directory holding it
/// (`/usr/abills/etc/paysys.toml` → `/usr/abills`).
pub fn base_of(config_path: &Path) -> PathBuf {
    let etc = config_path.parent().unwrap_or(Path::new("."));
    match etc.parent() {
        Some(base) if !base.as_os_str().is_empty() => base.to_path_buf(),
        _ => etc.join(".."),
    }
}

/// The log file a request should use when the config itself could not be read.
pub fn default_log_file(base: &Path) -> PathBuf {
    base.join("var/log/paysys_check.log")
}

impl Config {
    /// Reads the main file and its `paysys.d/` overlays.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Missing {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        let mut sources = vec![(path.to_path_buf(), text)];
        let overlay_dir = path.with_extension("d");
        if let Ok(entries) = std::fs::read_dir(&overlay_dir) {
            let mut overlays: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            overlays.sort();
            for overlay in overlays {
                let text = std::fs::read_to_string(&overlay).map_err(|e| ConfigError::Invalid {
                    path: overlay.clone(),
                    line: None,
                    why: format!("cannot be read: {e}"),
                })?;
                sources.push((overlay, text));
            }
        }
        Config::from_sources(base_of(path), &sources)
    }

    /// Builds a config from (path, text) layers, first one the main file.
    pub fn from_sources(
        base: PathBuf,
        sources: &[(PathBuf, String)],
    ) -> Result<Config, ConfigError> {
        let mut merged = Merged::default();
        for (path, text) in sources {
            let layer: Layer = toml::from_str(text).map_err(|e| ConfigError::Invalid {
                path: path.clone(),
                line: e.span().map(|s| line_of(text, s.start)),
                why: e.message().trim_end().to_string(),
            })?;
            let at = Source { path, text };
            merged.apply(&at, layer)?;
        }
        let main = sources.first().map(|(p, _)| p.clone()).unwrap_or_default();
        merged.finish(base, main, sources.iter().map(|(p, _)| p.clone()).collect())
    }

    /// The system named `name`, if configured.
    pub fn system(&self, name: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.name == name)
    }
}

/// ABillS's prefix for a system's transactions when the config does not say: the first
/// three letters of its name in capitals (`osmp` → `OSM`, as ABillS writes `OSM:666`).
/// Whether a card system picks its subscribers (`groups` or `accounts`).
fn selective(system: &System) -> bool {
    system.card().is_some_and(|c| c.merchant.selective())
}

fn default_prefix(name: &str) -> String {
    let letters: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    if letters.is_empty() {
        "PAY".into()
    } else {
        letters
    }
}

/// Pairs of systems whose allow lists share addresses: config order decides which of the
/// two such a caller is, which `paysys check-config` points out.
pub fn overlapping_systems(systems: &[System]) -> Vec<(&str, &str)> {
    let mut pairs = Vec::new();
    for (i, a) in systems.iter().enumerate() {
        for b in &systems[i + 1..] {
            if a.allow.overlaps(&b.allow) {
                pairs.push((a.name.as_str(), b.name.as_str()));
            }
        }
    }
    pairs
}

// ----- the raw layer, as one file says it ---------------------------------------------------

type Field = Option<Spanned<Value>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Layer {
    database: Option<DatabaseLayer>,
    log: Option<LogLayer>,
    hooks: Option<HooksLayer>,
    page: Option<PageLayer>,
    #[serde(default)]
    system: Vec<SystemLayer>,
    statement: Option<StatementLayer>,
}

/// `[statement]`: `[[statement.bank]]` (systems of protocol `statement`),
/// `[[statement.rule]]` and `[[statement.csv]]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StatementLayer {
    #[serde(default)]
    bank: Vec<SystemLayer>,
    #[serde(default)]
    rule: Vec<Spanned<Value>>,
    #[serde(default)]
    csv: Vec<Spanned<Value>>,
}

/// The keys of a `[[system]]` a `[[statement.bank]]` has no use for: nobody calls it, and
/// a bank's rows are money already in the account (no limits to judge them by).
const NOT_FOR_BANKS: &[&str] = &[
    "protocol",
    "allow",
    "test_allow",
    "mask_name",
    "min_sum",
    "max_sum",
    "txn_window_hours",
    "test",
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageLayer {
    public_url: Field,
    title: Field,
    logo: Field,
    template_dir: Field,
    language: Field,
    orders_per_address: Field,
    orders_per_account: Field,
    misses_per_address: Field,
    reuse_minutes: Field,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DatabaseLayer {
    url: Field,
    billing: Field,
    connect_timeout: Field,
    lock_timeout: Field,
    procedure: Field,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HooksLayer {
    before_payment: Field,
    after_payment: Field,
    notify: Field,
    timeout: Field,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogLayer {
    file: Field,
    debug: Field,
    database: Field,
    keep_days: Field,
}

/// A `[[system]]` of one file: the keys every system has, and those its protocol owns
/// ([`protocols::KEYS`]), which the protocol reads once the config knows it. Any other key
/// is an error naming it, as serde's `deny_unknown_fields` words it.
#[derive(Default)]
struct SystemLayer {
    name: Field,
    reset: Field,
    protocol: Field,
    allow: Field,
    test_allow: Field,
    account: Field,
    account_expr: Field,
    mask_name: Field,
    abills_id: Field,
    payment_method: Field,
    admin_id: Field,
    description: Field,
    txn_prefix: Field,
    refuse_disabled: Field,
    min_sum: Field,
    max_sum: Field,
    txn_window_hours: Field,
    test: Field,
    /// The protocol's keys, in the order the file writes them.
    protocol_keys: Vec<(&'static str, Spanned<Value>)>,
}

/// The keys every system has, in the order an "unknown field" error names them.
const SYSTEM_KEYS: &[&str] = &[
    "name",
    "reset",
    "protocol",
    "allow",
    "test_allow",
    "account",
    "account_expr",
    "mask_name",
    "abills_id",
    "payment_method",
    "admin_id",
    "description",
    "txn_prefix",
    "refuse_disabled",
    "min_sum",
    "max_sum",
    "txn_window_hours",
    "test",
];

impl SystemLayer {
    /// Where the common key `name` goes; `None` for a protocol's key.
    fn slot(&mut self, name: &str) -> Option<&mut Field> {
        Some(match name {
            "name" => &mut self.name,
            "reset" => &mut self.reset,
            "protocol" => &mut self.protocol,
            "allow" => &mut self.allow,
            "test_allow" => &mut self.test_allow,
            "account" => &mut self.account,
            "account_expr" => &mut self.account_expr,
            "mask_name" => &mut self.mask_name,
            "abills_id" => &mut self.abills_id,
            "payment_method" => &mut self.payment_method,
            "admin_id" => &mut self.admin_id,
            "description" => &mut self.description,
            "txn_prefix" => &mut self.txn_prefix,
            "refuse_disabled" => &mut self.refuse_disabled,
            "min_sum" => &mut self.min_sum,
            "max_sum" => &mut self.max_sum,
            "txn_window_hours" => &mut self.txn_window_hours,
            "test" => &mut self.test,
            _ => return None,
        })
    }

    /// Every key a `[[system]]` may hold: its own, then its protocols'.
    fn keys() -> &'static [&'static str] {
        static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let protocol_keys = protocols::KEYS.iter().map(|k| k.name);
            SYSTEM_KEYS.iter().copied().chain(protocol_keys).collect()
        })
    }
}

impl<'de> Deserialize<'de> for SystemLayer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

        /// A key, refused while it is read (so that the error points at it) unless a
        /// system or a protocol has it.
        struct KeyName;
        impl<'de> DeserializeSeed<'de> for KeyName {
            type Value = &'static str;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_identifier(self)
            }
        }
        impl Visitor<'_> for KeyName {
            type Value = &'static str;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
                let keys = SystemLayer::keys();
                match keys.iter().find(|k| **k == key) {
                    Some(k) => Ok(k),
                    None => Err(E::unknown_field(key, keys)),
                }
            }
        }

        struct Layer;
        impl<'de> Visitor<'de> for Layer {
            type Value = SystemLayer;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct SystemLayer")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SystemLayer, A::Error> {
                let mut layer = SystemLayer::default();
                while let Some(key) = map.next_key_seed(KeyName)? {
                    let value: Spanned<Value> = map.next_value()?;
                    match layer.slot(key) {
                        Some(slot) => *slot = Some(value),
                        None => layer.protocol_keys.push((key, value)),
                    }
                }
                Ok(layer)
            }
        }

        d.deserialize_struct("SystemLayer", SystemLayer::keys(), Layer)
    }
}

/// A file being read, for error messages.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, at: &Spanned<Value>, key: &str, why: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: Some(line_of(self.text, at.span().start)),
            why: format!("{key}: {why}"),
        }
    }

    fn string(&self, v: &Spanned<Value>, key: &str) -> Result<String, ConfigError> {
        protocols::string(v.get_ref()).map_err(|why| self.error(v, key, why))
    }

    fn boolean(&self, v: &Spanned<Value>, key: &str) -> Result<bool, ConfigError> {
        protocols::boolean(v.get_ref()).map_err(|why| self.error(v, key, why))
    }

    fn count(&self, v: &Spanned<Value>, key: &str, max: u32) -> Result<u32, ConfigError> {
        match v.get_ref() {
            Value::Integer(n) if (0..=i64::from(max)).contains(n) => Ok(*n as u32),
            Value::Integer(n) => Err(self.error(v, key, format!("{n} is outside 0..={max}"))),
            other => Err(self.error(
                v,
                key,
                format!("expected a whole number, found {}", other.type_str()),
            )),
        }
    }

    /// Sums are written as strings (`"15000.00"`) so that TOML never turns them into floats;
    /// a bare integer is accepted too.
    fn amount(&self, v: &Spanned<Value>, key: &str) -> Result<Amount, ConfigError> {
        let text = match v.get_ref() {
            Value::String(s) => s.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Float(f) => {
                return Err(self.error(v, key, format!("write sums as strings, e.g. \"{f:.2}\"")))
            }
            other => {
                return Err(self.error(
                    v,
                    key,
                    format!(
                        "expected a sum such as \"100.00\", found {}",
                        other.type_str()
                    ),
                ))
            }
        };
        Amount::parse(&text).map_err(|e| self.error(v, key, format!("'{text}' is not a sum: {e}")))
    }

    fn strings(&self, v: &Spanned<Value>, key: &str) -> Result<Vec<String>, ConfigError> {
        match v.get_ref() {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.error(
                        v,
                        key,
                        format!("expected strings, found {}", other.type_str()),
                    )),
                })
                .collect(),
            other => Err(self.error(
                v,
                key,
                format!("expected a list of strings, found {}", other.type_str()),
            )),
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

// ----- merging ------------------------------------------------------------------------------

/// A value together with where it was set, so that a missing-key error can point somewhere.
#[derive(Clone)]
struct Set<T> {
    value: T,
    path: PathBuf,
    line: usize,
}

impl<T> Set<T> {
    fn new(value: T, at: &Source, v: &Spanned<Value>) -> Set<T> {
        Set {
            value,
            path: at.path.to_path_buf(),
            line: line_of(at.text, v.span().start),
        }
    }
}

#[derive(Default)]
struct Merged {
    url: Option<Vec<String>>,
    billing: Option<BillingKind>,
    connect_timeout: Option<u32>,
    lock_timeout: Option<u32>,
    procedure: Option<bool>,
    log_file: Option<String>,
    /// `file = false`.
    log_to_file: Option<bool>,
    debug: Option<bool>,
    log_database: Option<bool>,
    keep_days: Option<u32>,
    before_payment: Option<Option<Vec<String>>>,
    after_payment: Option<Option<Vec<String>>>,
    notify: Option<Option<Vec<String>>>,
    hook_timeout: Option<u32>,
    /// `Some("")`: `public_url = ""`, back to building URLs from the request.
    page_public_url: Option<String>,
    page_title: Option<String>,
    page_logo: Option<String>,
    page_template_dir: Option<String>,
    page_language: Option<String>,
    page_orders_per_address: Option<u32>,
    page_orders_per_account: Option<u32>,
    page_misses_per_address: Option<u32>,
    page_reuse_minutes: Option<u32>,
    systems: Vec<MergedSystem>,
    statement: StatementConfig,
}

#[derive(Default, Clone)]
struct MergedSystem {
    name: String,
    first_seen: Option<(PathBuf, usize)>,
    protocol: Option<Set<ProtocolKind>>,
    allow: Option<Set<AllowList>>,
    test_allow: Option<AllowList>,
    account: Option<Set<Vec<AccountKey>>>,
    account_expr: Option<AccountExpr>,
    mask_name: Option<bool>,
    abills_id: Option<u8>,
    payment_method: Option<u32>,
    admin_id: Option<u32>,
    description: Option<String>,
    txn_prefix: Option<Set<String>>,
    refuse_disabled: Option<RefuseDisabled>,
    min_sum: Option<Set<Amount>>,
    /// `Some(None)`: `max_sum = "none"`.
    max_sum: Option<Set<Option<Amount>>>,
    txn_window_hours: Option<u32>,
    limits: LimitSources,
    test: Option<bool>,
    /// The protocol's keys as last set ([`protocols`] reads them).
    protocol_keys: Vec<(&'static str, Set<Value>)>,
}

impl Merged {
    fn apply(&mut self, at: &Source, layer: Layer) -> Result<(), ConfigError> {
        if let Some(db) = layer.database {
            if let Some(v) = &db.url {
                // One URL, or a list: the nodes of a cluster, tried in order.
                let urls = match v.get_ref() {
                    Value::Array(_) => at.strings(v, "database.url")?,
                    _ => vec![at.string(v, "database.url")?],
                };
                if urls.is_empty() || urls.iter().any(|u| u.trim().is_empty()) {
                    return Err(at.error(
                        v,
                        "database.url",
                        "expected a URL (mysql://user:password@host:port/database) or a \
                         non-empty list of them, one per cluster node"
                            .to_string(),
                    ));
                }
                self.url = Some(urls);
            }
            if let Some(v) = &db.billing {
                let name = at.string(v, "database.billing")?;
                let Some(billing) = BillingKind::parse(&name) else {
                    let known = names(BillingKind::ALL, BillingKind::name);
                    return Err(at.error(
                        v,
                        "database.billing",
                        format!("'{name}' is not a known billing ({known})"),
                    ));
                };
                self.billing = Some(billing);
            }
            if let Some(v) = &db.connect_timeout {
                self.connect_timeout = Some(at.count(v, "database.connect_timeout", 300)?);
            }
            if let Some(v) = &db.lock_timeout {
                self.lock_timeout = Some(at.count(v, "database.lock_timeout", 300)?.max(1));
            }
            if let Some(v) = &db.procedure {
                self.procedure = Some(at.boolean(v, "database.procedure")?);
            }
        }
        if let Some(log) = layer.log {
            if let Some(v) = &log.file {
                // A path, or false (no file: ABillS's PAYSYS_LOG = 2), or true (the default
                // path again, undoing an inherited false).
                match v.get_ref() {
                    Value::Boolean(on) => self.log_to_file = Some(*on),
                    _ => {
                        self.log_file = Some(at.string(v, "log.file")?);
                        self.log_to_file = Some(true);
                    }
                }
            }
            if let Some(v) = &log.debug {
                self.debug = Some(at.boolean(v, "log.debug")?);
            }
            if let Some(v) = &log.database {
                self.log_database = Some(at.boolean(v, "log.database")?);
            }
            if let Some(v) = &log.keep_days {
                self.keep_days = Some(at.count(v, "log.keep_days", 36_600)?);
            }
        }
        if let Some(hooks) = layer.hooks {
            // A command is a program and its arguments, never a shell line: a string is the
            // program alone, a list is the program and its arguments. "" or [] turns an
            // inherited hook off.
            let command =
                |v: &Spanned<Value>, key: &str| -> Result<Option<Vec<String>>, ConfigError> {
                    let (words, one_string) = match v.get_ref() {
                        Value::String(s) if s.is_empty() => return Ok(None),
                        Value::String(s) => (vec![s.clone()], true),
                        Value::Array(a) if a.is_empty() => return Ok(None),
                        _ => (at.strings(v, key)?, false),
                    };
                    if words[0].trim().is_empty()
                        || (one_string && words[0].contains(char::is_whitespace))
                    {
                        return Err(at.error(
                            v,
                            key,
                            format!(
                                "'{}' is not a program: give the program and its arguments as a \
                             list, e.g. [\"/usr/sbin/sendmail\", \"-t\"] (no shell is involved)",
                                words[0]
                            ),
                        ));
                    }
                    Ok(Some(words))
                };
            if let Some(v) = &hooks.before_payment {
                self.before_payment = Some(command(v, "hooks.before_payment")?);
            }
            if let Some(v) = &hooks.after_payment {
                self.after_payment = Some(command(v, "hooks.after_payment")?);
            }
            if let Some(v) = &hooks.notify {
                self.notify = Some(command(v, "hooks.notify")?);
            }
            if let Some(v) = &hooks.timeout {
                let secs = at.count(v, "hooks.timeout", 55)?;
                if secs == 0 {
                    return Err(at.error(v, "hooks.timeout", "at least 1 second"));
                }
                self.hook_timeout = Some(secs);
            }
        }
        if let Some(page) = layer.page {
            if let Some(v) = &page.public_url {
                let url = at.string(v, "page.public_url")?;
                let url = url.trim_end_matches('/').to_string();
                let ok = url.is_empty()
                    || ((url.starts_with("https://") || url.starts_with("http://"))
                        && !url.contains(|c: char| c.is_whitespace() || c.is_control())
                        && !url.contains(['?', '#', '"', '<', '>']));
                if !ok {
                    return Err(at.error(
                        v,
                        "page.public_url",
                        format!(
                            "'{url}' is not the address of paysys_check.cgi, such as \
                             \"https://isp.example/cgi-bin/paysys_check.cgi\""
                        ),
                    ));
                }
                self.page_public_url = Some(url);
            }
            if let Some(v) = &page.title {
                self.page_title = Some(at.string(v, "page.title")?);
            }
            if let Some(v) = &page.logo {
                self.page_logo = Some(at.string(v, "page.logo")?);
            }
            if let Some(v) = &page.template_dir {
                self.page_template_dir = Some(at.string(v, "page.template_dir")?);
            }
            if let Some(v) = &page.language {
                let language = at.string(v, "page.language")?;
                if !PAGE_LANGUAGES.contains(&language.as_str()) {
                    return Err(at.error(
                        v,
                        "page.language",
                        format!("'{language}' is not one of {}", PAGE_LANGUAGES.join(", ")),
                    ));
                }
                self.page_language = Some(language);
            }
            if let Some(v) = &page.orders_per_address {
                self.page_orders_per_address =
                    Some(at.count(v, "page.orders_per_address", 1_000_000)?);
            }
            if let Some(v) = &page.orders_per_account {
                self.page_orders_per_account =
                    Some(at.count(v, "page.orders_per_account", 1_000_000)?);
            }
            if let Some(v) = &page.misses_per_address {
                self.page_misses_per_address =
                    Some(at.count(v, "page.misses_per_address", 1_000_000)?);
            }
            if let Some(v) = &page.reuse_minutes {
                self.page_reuse_minutes = Some(at.count(v, "page.reuse_minutes", 1440)?);
            }
        }
        for sys in layer.system {
            self.apply_system(at, sys)?;
        }
        if let Some(st) = layer.statement {
            for mut bank in st.bank {
                let Some(name) = bank.name.clone() else {
                    return Err(ConfigError::Invalid {
                        path: at.path.to_path_buf(),
                        line: None,
                        why: "a [[statement.bank]] has no name".into(),
                    });
                };
                for key in NOT_FOR_BANKS {
                    if let Some(v) = bank.slot(key).and_then(|slot| slot.as_ref()) {
                        return Err(at.error(
                            v,
                            &format!("statement.bank.{key}"),
                            "a bank account has no such key: nobody calls it, and its rows are \
                             money already in the account, judged by no limits",
                        ));
                    }
                }
                bank.protocol = Some(Spanned::new(
                    name.span(),
                    Value::String(ProtocolKind::Statement.name().into()),
                ));
                self.apply_system(at, bank)?;
            }
            for rule in st.rule {
                let line = line_of(at.text, rule.span().start);
                let Value::Table(table) = rule.get_ref() else {
                    return Err(at.error(&rule, "statement.rule", "expected a table"));
                };
                self.statement
                    .rules
                    .push(statement::rule(at.path, line, table)?);
            }
            for csv in st.csv {
                let line = line_of(at.text, csv.span().start);
                let Value::Table(table) = csv.get_ref() else {
                    return Err(at.error(&csv, "statement.csv", "expected a table"));
                };
                let Some(Value::String(name)) = table.get("name") else {
                    return Err(at.error(
                        &csv,
                        "statement.csv",
                        "a preset needs name = \"…\" (what --format csv:<name> calls it)",
                    ));
                };
                let section = CsvSection {
                    name: name.clone(),
                    table: table.clone(),
                    path: at.path.to_path_buf(),
                    line,
                };
                match self.statement.csv.iter_mut().find(|c| c.name == *name) {
                    Some(earlier) => *earlier = section,
                    None => self.statement.csv.push(section),
                }
            }
        }
        Ok(())
    }

    fn apply_system(&mut self, at: &Source, sys: SystemLayer) -> Result<(), ConfigError> {
        let Some(name_v) = &sys.name else {
            return Err(ConfigError::Invalid {
                path: at.path.to_path_buf(),
                line: None,
                why: "a [[system]] has no name".into(),
            });
        };
        let name = at.string(name_v, "system.name")?;
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(at.error(
                name_v,
                "system.name",
                format!("'{name}' must be 1-32 letters, digits, '_' or '-'"),
            ));
        }
        let key = |k: &str| format!("system '{name}': {k}");
        let index = match self.systems.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.systems.push(MergedSystem {
                    name: name.clone(),
                    ..Default::default()
                });
                self.systems.len() - 1
            }
        };
        if let Some(v) = &sys.reset {
            if at.boolean(v, &key("reset"))? {
                self.systems[index] = MergedSystem {
                    name: name.clone(),
                    ..Default::default()
                };
            }
        }
        let s = &mut self.systems[index];
        if s.first_seen.is_none() {
            s.first_seen = Some((at.path.to_path_buf(), line_of(at.text, name_v.span().start)));
        }
        if let Some(v) = &sys.protocol {
            let text = at.string(v, &key("protocol"))?;
            let Some(protocol) = ProtocolKind::parse(&text) else {
                let known = names(ProtocolKind::ALL, ProtocolKind::name);
                return Err(at.error(
                    v,
                    &key("protocol"),
                    format!("'{text}' is not a known protocol ({known})"),
                ));
            };
            s.protocol = Some(Set::new(protocol, at, v));
        }
        if let Some(v) = &sys.allow {
            let entries = at.strings(v, &key("allow"))?;
            let list = AllowList::parse(&entries).map_err(|e| at.error(v, &key("allow"), e))?;
            s.allow = Some(Set::new(list, at, v));
        }
        if let Some(v) = &sys.test_allow {
            let entries = at.strings(v, &key("test_allow"))?;
            s.test_allow =
                Some(AllowList::parse(&entries).map_err(|e| at.error(v, &key("test_allow"), e))?);
        }
        if let Some(v) = &sys.account {
            // One key, or a list tried in order (ABillS: a payment recognised by more than
            // one parameter).
            let texts = match v.get_ref() {
                Value::Array(_) => at.strings(v, &key("account"))?,
                _ => vec![at.string(v, &key("account"))?],
            };
            if texts.is_empty() {
                return Err(at.error(v, &key("account"), "the list is empty"));
            }
            let keys = texts
                .iter()
                .map(|t| AccountKey::parse(t).map_err(|e| at.error(v, &key("account"), e)))
                .collect::<Result<Vec<_>, _>>()?;
            s.account = Some(Set::new(keys, at, v));
        }
        if let Some(v) = &sys.account_expr {
            let text = at.string(v, &key("account_expr"))?;
            s.account_expr = if text.is_empty() {
                None
            } else {
                Some(AccountExpr::parse(&text).map_err(|e| at.error(v, &key("account_expr"), e))?)
            };
        }
        if let Some(v) = &sys.mask_name {
            s.mask_name = Some(at.boolean(v, &key("mask_name"))?);
        }
        if let Some(v) = &sys.abills_id {
            let id = at.count(v, &key("abills_id"), u32::from(u8::MAX))?;
            s.abills_id = u8::try_from(id).ok();
        }
        if let Some(v) = &sys.payment_method {
            // payments.method is TINYINT UNSIGNED, payments.aid SMALLINT UNSIGNED.
            s.payment_method = Some(at.count(v, &key("payment_method"), 255)?);
        }
        if let Some(v) = &sys.admin_id {
            s.admin_id = Some(at.count(v, &key("admin_id"), 65535)?);
        }
        if let Some(v) = &sys.refuse_disabled {
            s.refuse_disabled = Some(match v.get_ref() {
                Value::Boolean(false) => RefuseDisabled::None,
                Value::Boolean(true) => RefuseDisabled::All,
                Value::Array(items) => {
                    let mut states = Vec::new();
                    for item in items {
                        match item {
                            // users.disable is TINYINT UNSIGNED; 0 is "active".
                            Value::Integer(n) if (1..=255).contains(n) => states.push(*n as u8),
                            other => {
                                return Err(at.error(
                                    v,
                                    &key("refuse_disabled"),
                                    match other {
                                        Value::Integer(n) => format!(
                                            "{n} is not a disabled state: users.disable \
                                             states are 1..=255 (0 is active)"
                                        ),
                                        o => format!(
                                            "expected a list of users.disable states, found \
                                             {}",
                                            o.type_str()
                                        ),
                                    },
                                ))
                            }
                        }
                    }
                    RefuseDisabled::States(states)
                }
                other => {
                    return Err(at.error(
                        v,
                        &key("refuse_disabled"),
                        format!(
                            "expected true, false or a list of users.disable states such as \
                             [1, 2], found {}",
                            other.type_str()
                        ),
                    ))
                }
            });
        }
        if let Some(v) = &sys.description {
            let text = at.string(v, &key("description"))?;
            // payments.dsc is VARCHAR(80) in utf8: longer, a strict server refuses the payment.
            if text.chars().count() > 80
                || text.chars().any(|c| c as u32 > 0xFFFF || c.is_control())
            {
                return Err(at.error(
                    v,
                    &key("description"),
                    "at most 80 characters, no control characters or emoji (payments.dsc)",
                ));
            }
            s.description = Some(text);
        }
        if let Some(v) = &sys.txn_prefix {
            let prefix = at.string(v, &key("txn_prefix"))?;
            // "<prefix>:<txn_id>" is paysys_log.transaction_id, VARCHAR(24): an id that
            // does not fit after the prefix is written hashed (billing::abills::ext_id), so
            // the prefix must leave room for enough of the hash, and with 1-3 characters
            // OSMP's 20 digits fit whole, as ABillS's own "OSM:" does.
            if prefix.is_empty()
                || prefix.len() > 8
                || !prefix.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(at.error(
                    v,
                    &key("txn_prefix"),
                    format!(
                        "'{prefix}' must be 1-8 letters or digits (1-3 keep a 20-digit txn_id \
                         whole in ABillS's 24-character transaction_id)"
                    ),
                ));
            }
            s.txn_prefix = Some(Set::new(prefix, at, v));
        }
        let place = |v: &Spanned<Value>| Place {
            path: at.path.to_path_buf(),
            line: line_of(at.text, v.span().start),
        };
        if let Some(v) = &sys.min_sum {
            s.min_sum = Some(Set::new(at.amount(v, &key("min_sum"))?, at, v));
            s.limits.min_sum.push(place(v));
        }
        if let Some(v) = &sys.max_sum {
            // "none": no upper limit of the system's own (ABillS had none). A word rather
            // than a large number, so that the config says what it means.
            let max = match v.get_ref() {
                Value::String(text) if text == "none" => None,
                _ => Some(at.amount(v, &key("max_sum")).map_err(|e| match e {
                    ConfigError::Invalid { path, line, why } => ConfigError::Invalid {
                        path,
                        line,
                        why: format!("{why} (or \"none\" for no upper limit)"),
                    },
                    other => other,
                })?),
            };
            s.max_sum = Some(Set::new(max, at, v));
            s.limits.max_sum.push(place(v));
            s.limits.max_sum_none = max.is_none();
        }
        if let Some(v) = &sys.txn_window_hours {
            let hours = at.count(v, &key("txn_window_hours"), MAX_WINDOW_HOURS)?;
            if hours == 0 {
                // A txn_date is the terminal's clock at payment time, never exactly ours:
                // a zero window would refuse every payment, finally (nod12).
                return Err(at.error(
                    v,
                    &key("txn_window_hours"),
                    format!(
                        "0 would refuse every payment; it is how many hours a txn_date may be \
                         from the server's clock: 1 to {MAX_WINDOW_HOURS} (default \
                         {DEFAULT_WINDOW_HOURS})"
                    ),
                ));
            }
            s.txn_window_hours = Some(hours);
            s.limits.txn_window_hours.push(place(v));
        }
        if let Some(v) = &sys.test {
            s.test = Some(at.boolean(v, &key("test"))?);
        }
        // The protocol's keys, each read as its protocol reads it, in the order of
        // protocols::KEYS; the protocol itself is known only once every layer is read.
        for k in protocols::KEYS {
            for (name, v) in sys.protocol_keys.iter().filter(|(name, _)| *name == k.name) {
                (k.check)(v.get_ref()).map_err(|why| at.error(v, &key(name), why))?;
                let set = Set::new(v.get_ref().clone(), at, v);
                match s.protocol_keys.iter_mut().find(|(n, _)| n == name) {
                    Some((_, old)) => *old = set,
                    None => s.protocol_keys.push((name, set)),
                }
            }
        }
        Ok(())
    }

    fn finish(
        self,
        base: PathBuf,
        main: PathBuf,
        files: Vec<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let missing = |why: &str| ConfigError::Invalid {
            path: main.clone(),
            line: None,
            why: why.to_string(),
        };
        let urls = self.url.ok_or_else(|| missing("database.url is not set"))?;
        let billing = self
            .billing
            .ok_or_else(|| missing("database.billing is not set (nodeny | abills)"))?;
        if self.procedure == Some(true) && billing != BillingKind::Abills {
            return Err(missing(
                "database.procedure = true is for billing = \"abills\" only (its stored \
                 procedure, sql/abills-pay.sql, writes ABillS's tables); remove it",
            ));
        }
        let log_file = PathBuf::from(
            self.log_file
                .unwrap_or_else(|| "var/log/paysys_check.log".into()),
        );
        let log_file = if log_file.is_absolute() {
            log_file
        } else {
            base.join(log_file)
        };
        let mut systems: Vec<System> = Vec::with_capacity(self.systems.len());
        for s in self.systems {
            let (path, line) = s.first_seen.clone().unwrap_or((main.clone(), 0));
            let invalid = |line: usize, why: String| ConfigError::Invalid {
                path: path.clone(),
                line: Some(line),
                why,
            };
            // A system's name is its identity in paysys_txn (UNIQUE (system_name, txn_id)).
            // Names are compared exactly there, but an older table compares them ignoring
            // case, and a human reading the log would too: `qiwi` and `QIWI` must not be two
            // systems whose txn ids could be taken for each other's.
            if let Some(other) = systems
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(&s.name))
            {
                return Err(invalid(
                    line,
                    format!(
                        "system '{}': the name differs from system '{}' only in letter case; \
                         system names must differ in more than case (rename one, or use the \
                         same spelling to change the same system)",
                        s.name, other.name
                    ),
                ));
            }
            let protocol = s.protocol.ok_or_else(|| {
                invalid(
                    line,
                    format!("system '{}': protocol is not set (osmp)", s.name),
                )
            })?;
            let min_sum = s.min_sum.map(|m| m.value).unwrap_or(LEAST_SUM);
            let max_sum = match s.max_sum {
                Some(m) => {
                    let (max, what) = match m.value {
                        Some(max) => (max, format!("max_sum {max}")),
                        None => {
                            let (max, column) = billing.largest_payment();
                            (
                                max,
                                format!("max_sum \"none\" ({max}, the most {column} holds)"),
                            )
                        }
                    };
                    if max < min_sum {
                        return Err(ConfigError::Invalid {
                            path: m.path,
                            line: Some(m.line),
                            why: format!("system '{}': {what} is below min_sum {min_sum}", s.name),
                        });
                    }
                    max
                }
                None => DEFAULT_MAX_SUM,
            };
            let keys = match s.account {
                Some(set) => {
                    if let Some(k) = set
                        .value
                        .iter()
                        .find(|k| !billing.account_keys().contains(k))
                    {
                        return Err(ConfigError::Invalid {
                            path: set.path,
                            line: Some(set.line),
                            why: format!(
                                "system '{}': account: '{}' is not a key of billing '{}' ({})",
                                s.name,
                                k.name(),
                                billing.name(),
                                names(billing.account_keys(), AccountKey::name)
                            ),
                        });
                    }
                    set.value
                }
                None => vec![billing.account_keys()[0]],
            };
            // ABillS's ids of its card modules (and of Kaspi's and Portmone's) are not
            // public: its reports would file these payments under no system. The admin's
            // paysys_connect says which.
            if billing == BillingKind::Abills
                && protocol.value.abills_id() == 0
                && s.abills_id.is_none()
            {
                return Err(invalid(
                    line,
                    format!(
                        "system '{}': set abills_id to this system's paysys_connect.paysys_id \
                         in ABillS (protocol {} has no id of its own there)",
                        s.name,
                        protocol.value.name()
                    ),
                ));
            }
            let abills = AbillsSystem {
                id: s.abills_id.unwrap_or(protocol.value.abills_id()),
                // ABillS's own defaults: payment type 2 ("External payments"), and the
                // system admin (SYSTEM_ADMIN_ID, 2).
                payment_method: s.payment_method.unwrap_or(2),
                admin_id: s.admin_id.unwrap_or(2),
                description: s
                    .description
                    .unwrap_or_else(|| format!("{} Payments", s.name.to_uppercase())),
                txn_prefix: match &s.txn_prefix {
                    Some(p) => p.value.clone(),
                    None => default_prefix(&s.name),
                },
                // ABillS's script pays subscribers in any state.
                refuse_disabled: s.refuse_disabled.clone().unwrap_or_default(),
            };
            // ABillS finds a payment by "<prefix>:<txn_id>" alone: two systems sharing a
            // prefix would take each other's payments for repeats.
            if billing == BillingKind::Abills {
                if let Some(other) = systems
                    .iter()
                    .find(|o| o.abills.txn_prefix == abills.txn_prefix)
                {
                    let (path, line) = match &s.txn_prefix {
                        Some(p) => (p.path.clone(), p.line),
                        None => (path.clone(), line),
                    };
                    return Err(ConfigError::Invalid {
                        path,
                        line: Some(line),
                        why: format!(
                            "system '{}': txn_prefix '{}' is also system '{}''s; ABillS tells \
                             payments apart by \"<prefix>:<txn_id>\", so set txn_prefix to \
                             other letters",
                            s.name, abills.txn_prefix, other.name
                        ),
                    });
                }
            }
            if protocol.value.needs_allow() && s.allow.as_ref().is_none_or(|a| a.value.is_empty()) {
                let (path, line) = match &s.allow {
                    Some(a) => (a.path.clone(), a.line),
                    None => (path.clone(), line),
                };
                return Err(ConfigError::Invalid {
                    path,
                    line: Some(line),
                    why: format!(
                        "system '{}': allow: protocol {} has no signature, so its callers' \
                         addresses are the only credential: list them (the addresses {} \
                         gave you); an empty list is refused",
                        s.name,
                        protocol.value.name(),
                        protocol.value.name()
                    ),
                });
            }
            let settings = protocols::settings(&protocols::Keys {
                system: &s.name,
                protocol: protocol.value,
                path: &path,
                line,
                base: &base,
                set: &s.protocol_keys,
            })?;
            if billing != BillingKind::Abills
                && settings
                    .card()
                    .is_some_and(|c| !c.merchant.groups.is_empty())
            {
                return Err(invalid(
                    line,
                    format!(
                        "system '{}': groups are ABillS group ids, and billing {} has none \
                         paysys reads; pick the merchant by accounts = \"regular expression\"",
                        s.name,
                        billing.name()
                    ),
                ));
            }
            systems.push(System {
                settings,
                name: s.name,
                protocol: protocol.value,
                // No allow list means nobody may call: the safe default.
                allow: s.allow.map(|a| a.value).unwrap_or_default(),
                test_allow: s.test_allow.unwrap_or_default(),
                account: AccountRule {
                    keys,
                    expr: s.account_expr,
                },
                mask_name: s.mask_name.unwrap_or(true),
                // A zero payment moves nothing and would still write rows: never allowed.
                min_sum: if min_sum.is_zero() {
                    LEAST_SUM
                } else {
                    min_sum
                },
                max_sum,
                txn_window_hours: s.txn_window_hours.unwrap_or(DEFAULT_WINDOW_HOURS),
                limits: s.limits,
                test: s.test.unwrap_or(false),
                abills,
            });
        }
        // One page form serves all of a provider's merchants: the account typed is read
        // by one rule before the merchant is known, so they must all read it alike.
        for (i, s) in systems.iter().enumerate() {
            let Some(other) = systems[..i].iter().find(|o| {
                o.protocol == s.protocol
                    && o.card().is_some()
                    && (selective(o) || selective(s))
                    && o.account != s.account
            }) else {
                continue;
            };
            return Err(missing(&format!(
                "systems '{}' and '{}' are merchants of one provider picked by groups or \
                 accounts, so the page reads one account for both: give them the same \
                 account and account_expr",
                other.name, s.name
            )));
        }
        // A hook's program, relative to the install base unless absolute.
        let hook = |words: Option<Option<Vec<String>>>| {
            words.flatten().map(|mut words| {
                let program = PathBuf::from(words.remove(0));
                HookCommand {
                    program: if program.is_absolute() {
                        program
                    } else {
                        base.join(program)
                    },
                    args: words,
                }
            })
        };
        let hooks = Hooks {
            before_payment: hook(self.before_payment),
            after_payment: hook(self.after_payment),
            notify: hook(self.notify),
            timeout: std::time::Duration::from_secs(
                self.hook_timeout
                    .map(u64::from)
                    .unwrap_or(crate::hooks::DEFAULT_TIMEOUT_SECS),
            ),
        };
        // A file of the page, relative to the install base unless absolute; "" is none.
        let page_path = |text: Option<String>| {
            text.filter(|t| !t.is_empty()).map(|t| {
                let path = PathBuf::from(t);
                if path.is_absolute() {
                    path
                } else {
                    base.join(path)
                }
            })
        };
        let page = PageConfig {
            public_url: self.page_public_url.filter(|u| !u.is_empty()),
            title: self.page_title.unwrap_or_default(),
            logo: page_path(self.page_logo),
            template_dir: page_path(self.page_template_dir),
            language: self.page_language.unwrap_or_else(|| "uk".into()),
            orders_per_address: self
                .page_orders_per_address
                .unwrap_or(DEFAULT_ORDERS_PER_ADDRESS),
            misses_per_address: self
                .page_misses_per_address
                .unwrap_or(DEFAULT_MISSES_PER_ADDRESS),
            orders_per_account: self
                .page_orders_per_account
                .unwrap_or(DEFAULT_ORDERS_PER_ACCOUNT),
            reuse_minutes: self.page_reuse_minutes.unwrap_or(DEFAULT_REUSE_MINUTES),
        };
        // A rule for a bank names one.
        for rule in &self.statement.rules {
            if let Some(bank) = &rule.bank {
                if !systems
                    .iter()
                    .any(|s| s.name == *bank && s.protocol == ProtocolKind::Statement)
                {
                    return Err(ConfigError::Invalid {
                        path: rule.path.clone(),
                        line: Some(rule.line),
                        why: format!("statement.rule: bank '{bank}' is no [[statement.bank]]"),
                    });
                }
            }
        }
        Ok(Config {
            statement: self.statement,
            hooks,
            page,
            base,
            files,
            database: DatabaseConfig {
                urls,
                billing,
                connect_timeout: self.connect_timeout.unwrap_or(5),
                lock_timeout: self.lock_timeout.unwrap_or(10),
                procedure: self.procedure.unwrap_or(false),
            },
            log: LogConfig {
                file: log_file,
                to_file: self.log_to_file.unwrap_or(true),
                debug: self.debug.unwrap_or(false),
                database: self.log_database.unwrap_or(false),
                keep_days: self.keep_days.unwrap_or(DEFAULT_KEEP_DAYS),
            },
            systems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = r#"
[database]
url = "mysql://paysys:secret@127.0.0.1:3306/nodeny"
billing = "nodeny"

[log]
file = "var/log/paysys_check.log"
debug = false

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["127.0.0.1", "::1", "10.0.0.0/8", "!10.0.0.13"]
account = "payment_code"
min_sum = "1.00"
max_sum = "15000.00"
txn_window_hours = 24
test = false
"#;

    fn load(layers: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let sources: Vec<(PathBuf, String)> = layers
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        Config::from_sources(PathBuf::from("/usr/abills"), &sources)
    }

    #[test]
    fn the_design_example_loads() {
        let c = load(&[("etc/paysys.toml", MAIN)]).unwrap();
        assert_eq!(c.database.billing, BillingKind::NoDeny);
        assert_eq!(
            c.log.file,
            PathBuf::from("/usr/abills/var/log/paysys_check.log")
        );
        let s = c.system("osmp").unwrap();
        assert_eq!(s.min_sum, Amount::from_kopecks(100));
        assert_eq!(s.max_sum, Amount::from_kopecks(1_500_000));
        assert_eq!(s.txn_window_hours, 24);
        assert!(s.allow.allows("10.1.2.3".parse().unwrap()));
        assert!(!s.allow.allows("10.0.0.13".parse().unwrap()));
        assert_eq!(c.database.lock_timeout, 10);
    }

    #[test]
    fn defaults_are_safe() {
        let c = load(&[(
            "p.toml",
            "[database]\nurl='mysql://x@h/db'\nbilling='nodeny'\n[[system]]\nname='osmp'\nprotocol='osmp'\n",
        )])
        .unwrap();
        let s = &c.systems[0];
        assert!(
            !s.allow.allows("127.0.0.1".parse().unwrap()),
            "no allow list = nobody"
        );
        assert!(!s.test);
        assert_eq!(s.txn_window_hours, 24);
        assert_eq!(s.account, AccountRule::new(AccountKey::PaymentCode));
    }

    #[test]
    fn database_url_takes_a_list_of_cluster_nodes() {
        let list = "[database]\nurl = ['mysql://p@10.0.0.1/db', 'mysql://p@10.0.0.2/db']\n";
        let c = load(&[
            ("etc/paysys.toml", MAIN),
            ("etc/paysys.d/10-cluster.toml", list),
        ])
        .unwrap();
        assert_eq!(
            c.database.urls,
            ["mysql://p@10.0.0.1/db", "mysql://p@10.0.0.2/db"]
        );
        let c = load(&[("etc/paysys.toml", MAIN)]).unwrap();
        assert_eq!(
            c.database.urls,
            ["mysql://paysys:secret@127.0.0.1:3306/nodeny"]
        );
        for bad in [
            "url = []",
            "url = ['mysql://p@h/db', '']",
            "url = [1]",
            "url = 3",
        ] {
            let e = load(&[
                ("etc/paysys.toml", MAIN),
                ("etc/paysys.d/10-x.toml", &format!("[database]\n{bad}\n")),
            ])
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("10-x.toml line 2") && e.contains("database.url"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn log_keys_for_the_request_history() {
        let c = load(&[("etc/paysys.toml", MAIN)]).unwrap();
        assert!(c.log.to_file && !c.log.database);
        assert_eq!(c.log.keep_days, DEFAULT_KEEP_DAYS);
        let overlay = "[log]\nfile = false\ndatabase = true\nkeep_days = 30\n";
        let c = load(&[
            ("etc/paysys.toml", MAIN),
            ("etc/paysys.d/10-db.toml", overlay),
        ])
        .unwrap();
        assert!(!c.log.to_file && c.log.database);
        assert_eq!(c.log.keep_days, 30);
        assert!(
            c.log.file.ends_with("var/log/paysys_check.log"),
            "still read by paysys txn"
        );
        let again = "[log]\nfile = true\n";
        let c = load(&[
            ("etc/paysys.toml", MAIN),
            ("etc/paysys.d/10-db.toml", overlay),
            ("etc/paysys.d/20-file.toml", again),
        ])
        .unwrap();
        assert!(c.log.to_file && c.log.database);
        for bad in [
            "database = 1",
            "keep_days = -1",
            "keep_days = \"30\"",
            "file = 3",
        ] {
            let e = load(&[
                ("etc/paysys.toml", MAIN),
                ("etc/paysys.d/10-x.toml", &format!("[log]\n{bad}\n")),
            ])
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("10-x.toml line 2") && e.contains("log."),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn overlays_change_only_what_they_name() {
        let overlay = "[[system]]\nname = \"osmp\"\nmax_sum = \"500\"\n\n[log]\ndebug = true\n";
        let c = load(&[
            ("etc/paysys.toml", MAIN),
            ("etc/paysys.d/10-local.toml", overlay),
        ])
        .unwrap();
        let s = c.system("osmp").unwrap();
        assert_eq!(s.max_sum, Amount::from_kopecks(50_000));
        assert_eq!(s.min_sum, Amount::from_kopecks(100), "inherited");
        assert!(s.allow.allows("10.1.2.3".parse().unwrap()), "inherited");
        assert!(c.log.debug);
    }

    #[test]
    fn reset_drops_what_a_system_inherited() {
        let overlay = "[[system]]\nname = \"osmp\"\nreset = true\nprotocol = \"osmp\"\nallow = [\"192.0.2.1\"]\n";
        let c = load(&[
            ("etc/paysys.toml", MAIN),
            ("etc/paysys.d/10-local.toml", overlay),
        ])
        .unwrap();
        let s = c.system("osmp").unwrap();
        assert!(!s.allow.allows("10.1.2.3".parse().unwrap()));
        assert!(s.allow.allows("192.0.2.1".parse().unwrap()));
        assert_eq!(s.min_sum, Amount::from_kopecks(1), "back to the default");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = MAIN.replace("\"10.0.0.0/8\"", "\"10.0.0.300/8\"");
        let e = load(&[("etc/paysys.toml", &bad)]).unwrap_err().to_string();
        assert!(
            e.starts_with("config etc/paysys.toml line 13: system 'osmp': allow:"),
            "{e}"
        );
        assert!(e.contains("10.0.0.300/8"), "{e}");

        let e = load(&[
            ("etc/paysys.toml", MAIN),
            (
                "etc/paysys.d/x.toml",
                "[[system]]\nname='osmp'\nmax_sum = 1.5\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("etc/paysys.d/x.toml line 3") && e.contains("max_sum"),
            "{e}"
        );

        let e = load(&[("p.toml", "[database]\nurl = 'x'\nbiling = 'nodeny'\n")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("biling"), "{e}");

        let e = load(&[("p.toml", "[database\n")]).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");

        let e = load(&[("p.toml", &MAIN.replace("\"nodeny\"\n", "\"oracle\"\n"))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("database.billing") && e.contains("oracle"),
            "{e}"
        );

        let e = load(&[(
            "p.toml",
            &MAIN.replace("max_sum = \"15000.00\"", "max_sum = \"0.50\""),
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("below min_sum"), "{e}");
    }

    #[test]
    fn max_sum_none_is_the_most_the_billing_holds_and_limits_say_where_they_come_from() {
        let c = load(&[("etc/paysys.toml", MAIN)]).unwrap();
        let s = c.system("osmp").unwrap();
        let at = |line: usize| Place {
            path: PathBuf::from("etc/paysys.toml"),
            line,
        };
        assert_eq!(s.limits.min_sum, [at(15)]);
        assert_eq!(s.limits.max_sum, [at(16)]);
        assert_eq!(s.limits.txn_window_hours, [at(17)]);
        assert!(!s.limits.max_sum_none);

        let overlay = "[[system]]\nname = \"osmp\"\nmax_sum = \"none\"\n";
        let layers = [
            ("etc/paysys.toml", MAIN),
            ("etc/paysys.d/50-abills.toml", overlay),
        ];
        let c = load(&layers).unwrap();
        let s = c.system("osmp").unwrap();
        // NoDeny's pays.cash is DECIMAL(12,2).
        assert_eq!(s.max_sum, Amount::from_kopecks(999_999_999_999));
        assert!(s.limits.max_sum_none);
        assert_eq!(s.limits.max_sum.len(), 2, "{:?}", s.limits);
        assert_eq!(
            s.limits.max_sum[1].to_string(),
            "etc/paysys.d/50-abills.toml line 3"
        );
        let abills = MAIN
            .replace("billing = \"nodeny\"", "billing = \"abills\"")
            .replace("account = \"payment_code\"", "account = \"uid\"");
        let c = load(&[("etc/paysys.toml", &abills), layers[1]]).unwrap();
        // ABillS's payments.sum is DOUBLE(10,2).
        assert_eq!(c.systems[0].max_sum, Amount::from_kopecks(9_999_999_999));
        // A later layer with a sum sets a limit again.
        let again = "[[system]]\nname = \"osmp\"\nmax_sum = \"100\"\n";
        let c = load(&[layers[0], layers[1], ("etc/paysys.d/90-local.toml", again)]).unwrap();
        let s = &c.systems[0];
        assert_eq!(
            (s.max_sum, s.limits.max_sum_none),
            (Amount::from_kopecks(10_000), false)
        );
        // Written by hand without limits: the defaults, from nowhere.
        let bare = "[database]\nurl='mysql://x@h/db'\nbilling='nodeny'\n[[system]]\nname='osmp'\nprotocol='osmp'\n";
        let c = load(&[("p.toml", bare)]).unwrap();
        let s = &c.systems[0];
        assert_eq!(
            (s.min_sum, s.max_sum, s.txn_window_hours),
            (LEAST_SUM, DEFAULT_MAX_SUM, DEFAULT_WINDOW_HOURS)
        );
        assert_eq!(s.limits, LimitSources::default());

        let e = load(&[
            layers[0],
            (
                "etc/paysys.d/x.toml",
                "[[system]]\nname = \"osmp\"\nmax_sum = \"unlimited\"\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.toml line 3") && e.contains("max_sum") && e.contains("\"none\""),
            "{e}"
        );
        let e = load(&[
            layers[0],
            (
                "etc/paysys.d/x.toml",
                "[[system]]\nname = \"osmp\"\nmin_sum = \"none\"\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("min_sum"), "{e}");
    }

    #[test]
    fn click_needs_both_its_keys_and_no_others() {
        let with = |keys: &str| {
            load(&[(
                "p.toml",
                &format!("{MAIN}\n[[system]]\nname = \"click\"\nprotocol = \"click\"\n{keys}\n"),
            )])
        };
        let c = with("service_id = \"17449\"\nsecret_key = \"k\"").unwrap();
        let rule = c.system("click").unwrap().sign().cloned().unwrap();
        assert_eq!(
            (rule.secret.as_str(), rule.service),
            ("k", ServiceSlot::Fixed("17449".into()))
        );
        for (keys, words) in [
            ("service_id = \"17449\"", "protocol click needs secret_key"),
            ("secret_key = \"k\"", "protocol click needs service_id"),
            (
                "service_id = \"1\"\nsecret_key = \" k\"",
                "no spaces around it",
            ),
            (
                "service_id = \"1\"\nsecret_key = \"k\"\nsign = \"none\"",
                "sign: protocol click does not use it",
            ),
            (
                "service_id = \"1\"\nsecret_key = \"k\"\nsecret = \"k\"",
                "secret: protocol click does not use it",
            ),
        ] {
            let e = with(keys).unwrap_err().to_string();
            assert!(e.contains(words), "{keys}: {e}");
        }
    }

    #[test]
    fn payme_needs_its_key() {
        let with = |keys: &str| {
            load(&[(
                "p.toml",
                &format!("{MAIN}\n[[system]]\nname = \"payme\"\nprotocol = \"payme\"\n{keys}\n"),
            )])
        };
        let c = with("key = \"k&1\"").unwrap();
        assert_eq!(c.system("payme").unwrap().sign().unwrap().secret, "k&1");
        for (keys, words) in [
            ("", "protocol payme needs key"),
            ("key = \"\"", "not empty"),
            (
                "key = \"k\"\nsign = \"none\"",
                "sign: protocol payme does not use it",
            ),
            (
                "key = \"k\"\nsecret_key = \"k\"",
                "secret_key: protocol payme does not use it",
            ),
        ] {
            let e = with(keys).unwrap_err().to_string();
            assert!(e.contains(words), "{keys}: {e}");
        }
    }

    #[test]
    fn the_24nonstop_service_slot_is_fixed_by_the_config() {
        let with = |extra: &str| {
            load(&[(
                "p.toml",
                &format!(
                    "{MAIN}\n[[system]]\nname = \"24ns\"\nprotocol = \"24nonstop\"\n\
                     secret = \"k\"\n{extra}\n"
                ),
            )])
        };
        let slot = |extra: &str| with(extra).unwrap().system("24ns").unwrap().sign().cloned();
        assert_eq!(slot("").unwrap().service, ServiceSlot::Sent);
        assert_eq!(
            slot("service_id = \"Internet\"").unwrap().service,
            ServiceSlot::Fixed("Internet".into())
        );
        assert_eq!(
            slot("sign_service_id = false").unwrap().service,
            ServiceSlot::Absent
        );
        assert_eq!(
            slot("sign_service_id = true").unwrap().service,
            ServiceSlot::Sent
        );
        for (extra, words) in [
            ("service_id = \"Inter_net\"", "without '_'"),
            ("service_id = \"\"", "not empty"),
            (
                "service_id = \"Internet\"\nsign_service_id = false",
                "keep one of the two",
            ),
        ] {
            let e = with(extra).unwrap_err().to_string();
            assert!(e.contains(words), "{extra}: {e}");
        }
        // Only 24NonStop has the slot; EasyPay names its ServiceId, OSMP none.
        let e = load(&[("p.toml", &format!("{MAIN}service_id = \"Internet\"\n"))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("service_id: protocol osmp does not use it"),
            "{e}"
        );
        let easypay = |extra: &str| {
            load(&[(
                "p.toml",
                &format!(
                    "{MAIN}\n[[system]]\nname = \"ep\"\nprotocol = \"easypay\"\n\
                     certificate = \"etc/e.cer\"\n{extra}\n"
                ),
            )])
        };
        let rsa = easypay("service_id = \"1220\"")
            .unwrap()
            .system("ep")
            .unwrap()
            .rsa()
            .cloned();
        assert_eq!(rsa.unwrap().service_id.as_deref(), Some("1220"));
        let e = easypay("sign_service_id = false").unwrap_err().to_string();
        assert!(
            e.contains("sign_service_id: protocol easypay does not use it"),
            "{e}"
        );
    }

    #[test]
    fn a_zero_window_is_refused_not_taken_as_refuse_everything() {
        let e = load(&[(
            "p.toml",
            &MAIN.replace("txn_window_hours = 24", "txn_window_hours = 0"),
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("txn_window_hours") && e.contains("would refuse every payment"),
            "{e}"
        );
        let one = load(&[(
            "p.toml",
            &MAIN.replace("txn_window_hours = 24", "txn_window_hours = 1"),
        )])
        .unwrap();
        assert_eq!(one.systems[0].txn_window_hours, 1);
    }

    #[test]
    fn system_names_differing_only_in_case_are_refused() {
        let second =
            "\n[[system]]\nname = \"OSMP\"\nprotocol = \"osmp\"\nallow = [\"192.0.2.1\"]\n";
        let e = load(&[("etc/paysys.toml", &format!("{MAIN}{second}"))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("system 'OSMP'")
                && e.contains("only in letter case")
                && e.contains("'osmp'"),
            "{e}"
        );
        // In an overlay too, where it would otherwise be taken for a new system.
        let e = load(&[("etc/paysys.toml", MAIN), ("etc/paysys.d/x.toml", second)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("etc/paysys.d/x.toml line 3"), "{e}");
        // Names that differ in more than case are two systems.
        let other = second.replace("OSMP", "osmp2");
        assert_eq!(
            load(&[("etc/paysys.toml", &format!("{MAIN}{other}"))])
                .unwrap()
                .systems
                .len(),
            2
        );
    }

    #[test]
    fn every_system_key_has_its_place_and_protocol_keys_go_to_the_protocol() {
        let mut layer = SystemLayer::default();
        for key in SYSTEM_KEYS {
            assert!(layer.slot(key).is_some(), "{key}");
        }
        for key in protocols::KEYS {
            assert!(layer.slot(key.name).is_none(), "{}", key.name);
        }
    }

    #[test]
    fn kaspi_on_abills_needs_its_abills_id() {
        let abills = MAIN
            .replace("billing = \"nodeny\"", "billing = \"abills\"")
            .replace("protocol = \"osmp\"", "protocol = \"kaspi\"")
            .replace("account = \"payment_code\"", "account = \"login\"");
        let e = load(&[("etc/paysys.toml", &abills)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("system 'osmp': set abills_id"), "{e}");
        let with_id = abills.replace("test = false", "test = false\nabills_id = 130");
        let c = load(&[("etc/paysys.toml", &with_id)]).unwrap();
        let s = c.system("osmp").unwrap();
        assert_eq!((s.protocol, s.abills.id), (ProtocolKind::Kaspi, 130));
    }

    #[test]
    fn missing_file_is_missing_not_invalid() {
        let e = Config::load(Path::new("/nonexistent/etc/paysys.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Missing { .. }));
    }

    #[test]
    fn location_follows_the_executable() {
        let p = locate(None, Some(Path::new("/usr/abills/cgi-bin/osmp.cgi")));
        assert_eq!(p, PathBuf::from("/usr/abills/cgi-bin/../etc/paysys.toml"));
        assert_eq!(
            base_of(Path::new("/usr/abills/etc/paysys.toml")),
            PathBuf::from("/usr/abills")
        );
        let p = locate(
            Some(Path::new("/etc/paysys/paysys.toml")),
            Some(Path::new("/x/osmp.cgi")),
        );
        assert_eq!(p, PathBuf::from("/etc/paysys/paysys.toml"));
    }
}
