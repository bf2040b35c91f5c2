//! The card providers' keys: LiqPay's `public_key` and `private_key`, Monobank's `token` and
//! `pubkey`, WayForPay's `merchant_account`, `secret_key` and `merchant_domain`, and what
//! every card system may set: `api_url`, `checkout_url`, `currency`, `sandbox`,
//! `validity_hours`, `commission_percent`, and `groups` / `accounts`, which pick the
//! merchant for a subscriber when one provider has several.

use toml::Value;

use super::{boolean, string, Key, Keys, ProtocolSettings};
use crate::config::{ConfigError, ProtocolKind};
use crate::domain::Amount;

pub(super) const PUBLIC_KEY: Key = Key::new("public_key", |v| text(v).map(drop));
pub(super) const TOKEN: Key = Key::new("token", |v| text(v).map(drop));
pub(super) const PUBKEY: Key = Key::new("pubkey", |v| text(v).map(drop));
pub(super) const MERCHANT_ACCOUNT: Key = Key::new("merchant_account", |v| text(v).map(drop));
pub(super) const SECRET_KEY: Key = Key::new("secret_key", |v| text(v).map(drop));
pub(super) const MERCHANT_DOMAIN: Key = Key::new("merchant_domain", |v| text(v).map(drop));
pub(super) const API_URL: Key = Key::new("api_url", |v| url(v).map(drop));
pub(super) const CHECKOUT_URL: Key = Key::new("checkout_url", |v| url(v).map(drop));
pub(super) const CURRENCY: Key = Key::new("currency", |v| currency(v).map(drop));
pub(super) const SANDBOX: Key = Key::new("sandbox", |v| boolean(v).map(drop));
pub(super) const VALIDITY_HOURS: Key = Key::new("validity_hours", |v| hours(v).map(drop));
pub(super) const COMMISSION_PERCENT: Key = Key::new("commission_percent", |v| percent(v).map(drop));
pub(super) const GROUPS: Key = Key::new("groups", |v| groups(v).map(drop));
pub(super) const ACCOUNTS: Key = Key::new("accounts", |v| accounts(v).map(drop));

/// What every card system may set.
const COMMON: &[Key] = &[
    API_URL,
    CHECKOUT_URL,
    CURRENCY,
    SANDBOX,
    VALIDITY_HOURS,
    COMMISSION_PERCENT,
    GROUPS,
    ACCOUNTS,
];

/// How long an order waits for its payment unless `validity_hours` says otherwise: the
/// sweeper asks about it until then, and gives it up after.
pub const DEFAULT_VALIDITY_HOURS: u32 = 24;

/// A card provider's keys, as its merchant cabinet shows them.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Liqpay {
        public_key: String,
        private_key: String,
    },
    /// `pubkey`: the key Monobank signs webhooks with (base64 of its PEM, as
    /// `/api/merchant/pubkey` gives it); fetched from the API when absent.
    Monobank {
        token: String,
        pubkey: Option<String>,
    },
    Wayforpay {
        merchant_account: String,
        secret_key: String,
        merchant_domain: String,
    },
}

impl std::fmt::Debug for Credentials {
    // Keys and tokens stay out of every debug print; the public parts may show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Liqpay { public_key, .. } => f
                .debug_struct("Liqpay")
                .field("public_key", public_key)
                .field("private_key", &"***")
                .finish(),
            Credentials::Monobank { pubkey, .. } => f
                .debug_struct("Monobank")
                .field("token", &"***")
                .field("pubkey", &pubkey.is_some())
                .finish(),
            Credentials::Wayforpay {
                merchant_account,
                merchant_domain,
                ..
            } => f
                .debug_struct("Wayforpay")
                .field("merchant_account", merchant_account)
                .field("secret_key", &"***")
                .field("merchant_domain", merchant_domain)
                .finish(),
        }
    }
}

/// A card system's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSettings {
    pub credentials: Credentials,
    /// The provider's API (status requests; Monobank's invoices too).
    pub api_url: String,
    /// Where the subscriber's browser is sent to pay (LiqPay, WayForPay; Monobank's page
    /// comes with each invoice).
    pub checkout_url: String,
    /// ISO 4217 letters; what every order of this system is in, and every callback must be.
    pub currency: String,
    pub sandbox: bool,
    pub validity_hours: u32,
    /// Added on top of the sum the subscriber is credited, in hundredths of a percent
    /// (`commission_percent = "2.5"` is 250).
    pub commission_basis_points: u32,
    /// Which subscribers this merchant takes (an ISP with several legal entities has a
    /// merchant each): see [`Merchant`].
    pub merchant: Merchant,
}

/// Whom a card system takes payments for, when one provider has several merchants: ABillS
/// group ids (`groups = [1, 2]`), and/or a regular expression the account must match
/// (`accounts = "^2\\d{5}$"`) — the account as the billing stores it for the system's first
/// account key, so that one subscriber is one merchant's however they type it. Both set: both must hold. Neither: everybody — the merchant
/// for whoever no other takes.
#[derive(Debug, Clone, Default)]
pub struct Merchant {
    pub groups: Vec<u32>,
    pub accounts: Option<crate::domain::Pattern>,
}

impl PartialEq for Merchant {
    fn eq(&self, other: &Self) -> bool {
        self.groups == other.groups
            && self.accounts.as_ref().map(crate::domain::Pattern::as_str)
                == other.accounts.as_ref().map(crate::domain::Pattern::as_str)
    }
}

impl Eq for Merchant {}

impl Merchant {
    /// Whether the merchant picks its subscribers (`groups` or `accounts` set).
    pub fn selective(&self) -> bool {
        !self.groups.is_empty() || self.accounts.is_some()
    }

    /// Whether it takes the subscriber in `group` (`None`: the billing has no groups) whose
    /// account reads `account`.
    pub fn takes(&self, group: Option<u32>, account: &str) -> bool {
        let group_ok = self.groups.is_empty() || group.is_some_and(|g| self.groups.contains(&g));
        let account_ok = self.accounts.as_ref().is_none_or(|r| r.is_match(account));
        group_ok && account_ok
    }
}

/// The provider's own addresses, unless `api_url` / `checkout_url` say otherwise (a
/// sandbox, a test's stand-in).
fn defaults(protocol: ProtocolKind) -> (&'static str, &'static str) {
    match protocol {
        ProtocolKind::Liqpay => (
            "https://www.liqpay.ua/api/request",
            "https://www.liqpay.ua/api/3/checkout",
        ),
        ProtocolKind::Monobank => ("https://api.monobank.ua", ""),
        _ => (
            "https://api.wayforpay.com/api",
            "https://secure.wayforpay.com/pay",
        ),
    }
}

/// A card system's [`CardSettings`]; every key its provider needs must be set.
pub(super) fn settings(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    let own: &[Key] = match keys.protocol {
        ProtocolKind::Liqpay => &[PUBLIC_KEY, super::easypay::PRIVATE_KEY],
        ProtocolKind::Monobank => &[TOKEN, PUBKEY],
        _ => &[MERCHANT_ACCOUNT, SECRET_KEY, MERCHANT_DOMAIN],
    };
    let owned: Vec<Key> = own.iter().chain(COMMON).copied().collect();
    keys.only(&owned)?;
    let needed = |name: &str, what: &str| -> Result<String, ConfigError> {
        match keys.read(name, text)? {
            Some(set) => Ok(set.value),
            None => Err(keys.missing(&format!("{name} = \"…\" ({what})"))),
        }
    };
    let credentials = match keys.protocol {
        ProtocolKind::Liqpay => Credentials::Liqpay {
            public_key: needed("public_key", "LiqPay's public key, from its cabinet")?,
            private_key: needed("private_key", "LiqPay's private key, from its cabinet")?,
        },
        ProtocolKind::Monobank => Credentials::Monobank {
            token: needed("token", "the X-Token of Monobank's acquiring cabinet")?,
            pubkey: keys.read("pubkey", text)?.map(|s| s.value),
        },
        _ => Credentials::Wayforpay {
            merchant_account: needed("merchant_account", "WayForPay's merchant login")?,
            secret_key: needed("secret_key", "WayForPay's SecretKey")?,
            merchant_domain: needed("merchant_domain", "the domain WayForPay knows the shop by")?,
        },
    };
    let (api, checkout) = defaults(keys.protocol);
    Ok(ProtocolSettings::Card(CardSettings {
        credentials,
        api_url: keys
            .read("api_url", url)?
            .map_or_else(|| api.to_string(), |s| s.value),
        checkout_url: keys
            .read("checkout_url", url)?
            .map_or_else(|| checkout.to_string(), |s| s.value),
        currency: keys
            .read("currency", currency)?
            .map_or_else(|| "UAH".to_string(), |s| s.value),
        sandbox: keys.read("sandbox", boolean)?.is_some_and(|s| s.value),
        validity_hours: keys
            .read("validity_hours", hours)?
            .map_or(DEFAULT_VALIDITY_HOURS, |s| s.value),
        commission_basis_points: keys
            .read("commission_percent", percent)?
            .map_or(0, |s| s.value),
        merchant: Merchant {
            groups: keys
                .read("groups", groups)?
                .map_or_else(Vec::new, |s| s.value),
            accounts: keys.read("accounts", accounts)?.map(|s| s.value),
        },
    }))
}

/// A key's text: not empty, nothing a header or a form could not carry.
pub(super) fn text(v: &Value) -> Result<String, String> {
    let t = string(v)?;
    if t.trim().is_empty() || t.chars().any(char::is_control) {
        return Err("not empty, without control characters".into());
    }
    Ok(t)
}

/// An `http://` or `https://` URL.
pub(super) fn url(v: &Value) -> Result<String, String> {
    let t = text(v)?;
    if !(t.starts_with("https://") || t.starts_with("http://")) || t.contains(' ') {
        return Err(format!("'{t}' is not an http:// or https:// URL"));
    }
    Ok(t.trim_end_matches('/').to_string())
}

/// Three capital letters (ISO 4217).
pub(super) fn currency(v: &Value) -> Result<String, String> {
    let t = string(v)?;
    if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("'{t}' is not a currency such as \"UAH\""));
    }
    Ok(t)
}

/// 1 to 720 hours (a month; providers keep an unpaid order far less).
fn hours(v: &Value) -> Result<u32, String> {
    match v {
        Value::Integer(n) if (1..=720).contains(n) => Ok(*n as u32),
        Value::Integer(n) => Err(format!("{n} is outside 1..=720")),
        other => Err(format!(
            "expected a whole number of hours, found {}",
            other.type_str()
        )),
    }
}

/// ABillS group ids: `[1, 2]`, at least one, each 0..=65535 (`groups.gid`).
fn groups(v: &Value) -> Result<Vec<u32>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "expected a list of ABillS group ids such as [1, 2], found {}",
            v.type_str()
        ));
    };
    if items.is_empty() {
        return Err("an empty list takes nobody; leave groups out to take everybody".into());
    }
    items
        .iter()
        .map(|item| match item {
            Value::Integer(n) if (0..=65_535).contains(n) => Ok(*n as u32),
            other => Err(format!(
                "{other:?} is not an ABillS group id (a whole number 0..=65535)"
            )),
        })
        .collect()
}

/// A regular expression over the account as the system's `account` rule reads it.
fn accounts(v: &Value) -> Result<crate::domain::Pattern, String> {
    crate::domain::Pattern::new(&text(v)?)
}

/// A percentage written as a string with at most two decimals, 0 to 50: basis points.
fn percent(v: &Value) -> Result<u32, String> {
    let t = match v {
        Value::String(s) => s.clone(),
        Value::Integer(n) => n.to_string(),
        other => {
            return Err(format!(
                "expected a percentage such as \"2.5\", found {}",
                other.type_str()
            ))
        }
    };
    let points = Amount::parse(&t)
        .map_err(|e| format!("'{t}' is not a percentage: {e}"))?
        .kopecks();
    u32::try_from(points)
        .ok()
        .filter(|p| *p <= 5_000)
        .ok_or_else(|| format!("'{t}': a commission between 0 and 50 percent"))
}
