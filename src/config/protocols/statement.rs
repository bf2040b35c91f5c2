//! A bank account's keys (`[[statement.bank]]`): which bank (`privat`, `monobank`, or
//! `file` for one whose statements the admin imports by hand), our account there (`iban`),
//! the API's `token` (and PrivatBank's `id`), `account_id` (Monobank's id of the account
//! in its statement URL), `api_url`, and the account's `currency`.

use toml::Value;

use super::{string, Key, Keys, ProtocolSettings};
use crate::config::ConfigError;

pub(super) const BANK: Key = Key::new("bank", |v| bank(v).map(drop));
pub(super) const IBAN: Key = Key::new("iban", |v| iban(v).map(drop));
pub(super) const CLIENT_ID: Key = Key::new("id", |v| super::card::text(v).map(drop));
pub(super) const ACCOUNT_ID: Key = Key::new("account_id", |v| super::card::text(v).map(drop));

/// Which bank's API a statement comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankKind {
    /// PrivatBank's Autoclient API (`/api/statements/transactions`).
    Privat,
    /// Monobank's personal/FOP statement (`/personal/statement/…`).
    Monobank,
    /// No API: the admin imports the bank's files (1C, CSV, JSON).
    File,
}

impl BankKind {
    pub fn name(self) -> &'static str {
        match self {
            BankKind::Privat => "privat",
            BankKind::Monobank => "monobank",
            BankKind::File => "file",
        }
    }

    /// The bank's own API, unless `api_url` says otherwise (a test's stand-in).
    pub fn default_api_url(self) -> &'static str {
        match self {
            BankKind::Privat => "https://acp.privatbank.ua",
            BankKind::Monobank => "https://api.monobank.ua",
            BankKind::File => "",
        }
    }
}

/// A bank account's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct StatementBank {
    pub bank: BankKind,
    /// Our account at the bank, upper case, no spaces: rows on another account of the same
    /// statement are skipped. `None`: every row of the files given is taken as ours
    /// (a `file` bank only).
    pub iban: Option<String>,
    /// The API's token (PrivatBank's `token` header, Monobank's `X-Token`).
    pub token: Option<String>,
    /// PrivatBank's client `id` header, where the Autoclient setup gives one.
    pub client_id: Option<String>,
    /// Monobank's id of the account in its statement URL (`0`: the default account).
    pub account_id: String,
    pub api_url: String,
    /// ISO 4217 letters: rows in another currency are skipped.
    pub currency: String,
}

impl std::fmt::Debug for StatementBank {
    // The token stays out of every debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementBank")
            .field("bank", &self.bank)
            .field("iban", &self.iban)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("client_id", &self.client_id)
            .field("account_id", &self.account_id)
            .field("api_url", &self.api_url)
            .field("currency", &self.currency)
            .finish()
    }
}

/// A bank account's [`StatementBank`]; an API bank needs its `iban` and `token`.
pub(super) fn settings(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    keys.only(&[
        BANK,
        IBAN,
        super::card::TOKEN,
        CLIENT_ID,
        ACCOUNT_ID,
        super::card::API_URL,
        super::card::CURRENCY,
    ])?;
    let bank = match keys.read("bank", bank)? {
        Some(set) => set.value,
        None => {
            return Err(keys
                .missing("bank = \"privat\", \"monobank\" or \"file\" (whose files you import)"))
        }
    };
    let iban = keys.read("iban", iban)?.map(|s| s.value);
    let token = keys.read("token", super::card::text)?.map(|s| s.value);
    if bank != BankKind::File {
        if iban.is_none() {
            return Err(keys.missing("iban = \"UA…\" (the account whose statement is pulled)"));
        }
        if token.is_none() {
            return Err(keys.missing(&format!("token = \"…\" ({}'s API token)", bank.name())));
        }
    }
    Ok(ProtocolSettings::Statement(StatementBank {
        bank,
        iban,
        token,
        client_id: keys.read("id", super::card::text)?.map(|s| s.value),
        account_id: keys
            .read("account_id", super::card::text)?
            .map_or_else(|| "0".to_string(), |s| s.value),
        api_url: keys
            .read("api_url", super::card::url)?
            .map_or_else(|| bank.default_api_url().to_string(), |s| s.value),
        currency: keys
            .read("currency", super::card::currency)?
            .map_or_else(|| "UAH".to_string(), |s| s.value),
    }))
}

fn bank(v: &Value) -> Result<BankKind, String> {
    match string(v)?.as_str() {
        "privat" => Ok(BankKind::Privat),
        "monobank" => Ok(BankKind::Monobank),
        "file" => Ok(BankKind::File),
        other => Err(format!(
            "'{other}' is not privat, monobank or file (a bank whose files you import)"
        )),
    }
}

/// An account number as banks print it (IBAN, ИИК, a Russian 20-digit account): letters
/// and digits, spaces dropped, upper case.
pub fn iban(v: &Value) -> Result<String, String> {
    let text: String = string(v)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if text.len() < 5 || text.len() > 34 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("'{text}' is not an account number (IBAN, ИИК)"));
    }
    Ok(text)
}
