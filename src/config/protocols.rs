//! The keys of a `[[system]]` that belong to its protocol, one file per protocol.
//!
//! The config reads the keys every system has (`name`, `protocol`, `allow`, the account,
//! the limits, ABillS's) and hands the rest to this module. Each protocol's file says which
//! keys it owns ([`Key`]: a name and how one value of it is read), and turns them, once the
//! system's protocol is known, into its typed settings ([`ProtocolSettings`]); a key the
//! system's protocol does not own is refused, naming the file and line that set it.
//!
//! These files live with the config, not with the protocols' code in `crate::protocol`
//! (or, for card payments, their own folder), so that the config stays a leaf: reading
//! `paysys.toml` never builds the request path, and `paysys check-config` checks a
//! protocol's keys without it. The protocols' code reads the settings it is given.
//!
//! Adding a protocol's keys is a file here with its [`Key`]s and its settings, its keys in
//! [`KEYS`], a variant of [`ProtocolSettings`] and an arm in `settings`.
//!
//! A key is read in every layer that sets it, whatever the protocol (a bad value is refused
//! in the file that wrote it, even if a later overlay changes it or the protocol), and a
//! later layer replaces it, as every key of a system; `reset = true` drops it.

use std::path::{Path, PathBuf};

use toml::Value;

use super::{ConfigError, ProtocolKind, Set};

pub mod card;
pub mod click;
pub mod easypay;
pub mod nonstop24;
pub mod payme;
pub mod statement;

pub use card::{CardSettings, Credentials, Merchant};
pub use easypay::RsaRule;
pub use nonstop24::{ServiceSlot, SignRule};
pub use statement::{BankKind, StatementBank};

/// A key a protocol owns: its name, and how one value of it is read. `read` says what is
/// wrong with a value (the config adds the file, line and key); [`Keys`] reads it again,
/// typed, when the protocol builds its settings.
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub check: fn(&Value) -> Result<(), String>,
}

impl Key {
    const fn new(name: &'static str, check: fn(&Value) -> Result<(), String>) -> Key {
        Key { name, check }
    }
}

/// Every protocol's keys, in the order the config reads them and names them in an "unknown
/// field" error. A key that several protocols share (`sign`, `service_id`) is read one way.
pub const KEYS: &[Key] = &[
    nonstop24::SECRET,
    SIGN,
    nonstop24::SIGN_AMOUNT,
    SERVICE_ID,
    nonstop24::SIGN_SERVICE_ID,
    easypay::CERTIFICATE,
    easypay::PRIVATE_KEY,
    card::PUBLIC_KEY,
    card::TOKEN,
    card::PUBKEY,
    card::MERCHANT_ACCOUNT,
    card::SECRET_KEY,
    card::MERCHANT_DOMAIN,
    card::API_URL,
    card::CHECKOUT_URL,
    card::CURRENCY,
    card::SANDBOX,
    card::VALIDITY_HOURS,
    card::COMMISSION_PERCENT,
    card::GROUPS,
    card::ACCOUNTS,
    statement::BANK,
    statement::IBAN,
    statement::CLIENT_ID,
    statement::ACCOUNT_ID,
    payme::KEY,
];

/// `sign`: the hash of a signed protocol, or `"none"` to accept unsigned requests.
const SIGN: Key = Key::new("sign", |v| sign(v).map(drop));

/// `service_id`: the service a signed protocol's requests must be meant for.
const SERVICE_ID: Key = Key::new("service_id", |v| service_id(v).map(drop));

/// What a system's protocol took from its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProtocolSettings {
    /// A protocol without keys of its own, or a signed one whose check the admin turned off
    /// (`sign = "none"`, which check-config warns about).
    #[default]
    None,
    /// 24NonStop's shared secret.
    Nonstop24(SignRule),
    /// EasyPay's keys.
    Easypay(RsaRule),
    /// A card provider's keys and addresses.
    Card(CardSettings),
    /// A bank account whose statements are imported.
    Statement(StatementBank),
    /// Click's `secret_key` and `service_id`, as the rule its `sign_string` is checked by.
    Click(SignRule),
    /// Payme's merchant `key`, as `secret` (the rest of the rule is unused).
    Payme(SignRule),
}

impl ProtocolSettings {
    /// How the protocol's requests are signed with a shared secret, if they are.
    pub fn sign(&self) -> Option<&SignRule> {
        match self {
            ProtocolSettings::Nonstop24(rule)
            | ProtocolSettings::Click(rule)
            | ProtocolSettings::Payme(rule) => Some(rule),
            _ => None,
        }
    }

    /// An RSA-signed protocol's keys, if the system has them.
    pub fn rsa(&self) -> Option<&RsaRule> {
        match self {
            ProtocolSettings::Easypay(rule) => Some(rule),
            _ => None,
        }
    }

    /// A card provider's keys and addresses, if the system is one.
    pub fn card(&self) -> Option<&CardSettings> {
        match self {
            ProtocolSettings::Card(card) => Some(card),
            _ => None,
        }
    }

    /// A bank account's keys, if the system is one.
    pub fn statement(&self) -> Option<&StatementBank> {
        match self {
            ProtocolSettings::Statement(bank) => Some(bank),
            _ => None,
        }
    }
}

/// The hash of a signed protocol (24NonStop: MD5 by default, SHA-1 for some versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignHash {
    Md5,
    Sha1,
    /// EasyPay only.
    Sha256,
}

/// A system's protocol keys, merged over the layers, as its protocol reads them.
pub struct Keys<'a> {
    pub(super) system: &'a str,
    pub(super) protocol: ProtocolKind,
    /// Where the system was first named: a missing key is reported there.
    pub(super) path: &'a Path,
    pub(super) line: usize,
    /// The install base: relative file paths hang off it.
    pub(super) base: &'a Path,
    pub(super) set: &'a [(&'static str, Set<Value>)],
}

impl Keys<'_> {
    fn get(&self, name: &str) -> Option<&Set<Value>> {
        self.set.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The value of `name` read by `read`, with where it was set. The value passed `read`
    /// when its layer was applied; an error here would name its place all the same.
    fn read<T>(
        &self,
        name: &str,
        read: fn(&Value) -> Result<T, String>,
    ) -> Result<Option<Set<T>>, ConfigError> {
        let Some(set) = self.get(name) else {
            return Ok(None);
        };
        let value = read(&set.value).map_err(|why| self.error_at(set, name, why))?;
        Ok(Some(Set {
            value,
            path: set.path.clone(),
            line: set.line,
        }))
    }

    fn error_at<T>(&self, set: &Set<T>, key: &str, why: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            path: set.path.clone(),
            line: Some(set.line),
            why: format!("system '{}': {key}: {why}", self.system),
        }
    }

    /// A file's path, relative to the install base unless absolute.
    fn file(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    /// A signed protocol's first checks: no key it does not own, and not the hash of
    /// another protocol (`foreign`; `hint` says what to set instead). Then `sign` as set:
    /// `None` when it is not, `Some(None)` for `sign = "none"`.
    fn signed(
        &self,
        owned: &[Key],
        foreign: SignHash,
        hint: &str,
    ) -> Result<Option<Option<SignHash>>, ConfigError> {
        self.only(owned)?;
        let sign = self.read("sign", sign)?.map(|s| s.value);
        if sign == Some(Some(foreign)) {
            return Err(self.unsigned(hint));
        }
        Ok(sign)
    }

    /// A key the protocol cannot do without is not set: reported where the system was
    /// first named.
    fn missing(&self, what: &str) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: Some(self.line),
            why: format!(
                "system '{}': protocol {} needs {what}",
                self.system,
                self.protocol.name()
            ),
        }
    }

    /// A signed protocol's error for a system that cannot check its requests.
    fn unsigned(&self, what: &str) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: Some(self.line),
            why: format!(
                "system '{}': protocol {} signs its requests: set {what}, or sign = \"none\" \
                 to accept unsigned ones (anyone who can reach the URL from an allowed \
                 address could pay)",
                self.system,
                self.protocol.name()
            ),
        }
    }

    /// Refuses the first key set (in [`KEYS`] order) that the protocol, owning `owned`,
    /// does not use.
    fn only(&self, owned: &[Key]) -> Result<(), ConfigError> {
        for name in KEYS.iter().map(|k| k.name) {
            if owned.iter().any(|k| k.name == name) {
                continue;
            }
            if let Some(set) = self.get(name) {
                return Err(ConfigError::Invalid {
                    path: set.path.clone(),
                    line: Some(set.line),
                    why: format!(
                        "system '{}': {name}: protocol {} does not use it",
                        self.system,
                        self.protocol.name()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The settings of a system's protocol from its keys.
pub(super) fn settings(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    match keys.protocol {
        ProtocolKind::Nonstop24 => nonstop24::settings(keys),
        ProtocolKind::Easypay => easypay::settings(keys),
        ProtocolKind::Liqpay | ProtocolKind::Monobank | ProtocolKind::Wayforpay => {
            card::settings(keys)
        }
        ProtocolKind::Statement => statement::settings(keys),
        ProtocolKind::Click => click::click(keys),
        ProtocolKind::Payme => payme::settings(keys),
        ProtocolKind::Osmp
        | ProtocolKind::Ibox
        | ProtocolKind::City24
        | ProtocolKind::Privat
        | ProtocolKind::Kaspi
        | ProtocolKind::Portmone => {
            keys.only(&[])?;
            Ok(ProtocolSettings::None)
        }
    }
}

// ----- reading one value ----------------------------------------------------------------------

pub(super) fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("expected a string, found {}", other.type_str())),
    }
}

pub(super) fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(*b),
        other => Err(format!(
            "expected true or false, found {}",
            other.type_str()
        )),
    }
}

/// `sign`: the hash, or `None` for `sign = "none"`.
fn sign(v: &Value) -> Result<Option<SignHash>, String> {
    let text = string(v)?;
    match text.as_str() {
        "md5" => Ok(Some(SignHash::Md5)),
        "sha1" => Ok(Some(SignHash::Sha1)),
        "sha256" => Ok(Some(SignHash::Sha256)),
        "none" => Ok(None),
        _ => Err(format!("'{text}' is not md5, sha1, sha256 or none")),
    }
}

/// `service_id`: the service id the payment system gave.
fn service_id(v: &Value) -> Result<String, String> {
    let id = string(v)?;
    // The value fills a slot of a text whose fields '_' separates: one holding '_'
    // would let a SIGN move text between fields (protocol::sign).
    if id.is_empty() || id.contains('_') || id.chars().any(char::is_control) {
        return Err(format!(
            "'{id}': the service id the payment system gave you (24NonStop's \
             SERVICE_ID, EasyPay's ServiceId), not empty and without '_' (it \
             separates 24NonStop's signed fields)"
        ));
    }
    Ok(id)
}
