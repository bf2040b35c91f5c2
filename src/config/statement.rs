//! The `[statement]` section: how a bank statement's rows are matched to subscribers
//! (`[[statement.rule]]`, tried in order) and how banks' CSV exports are read
//! (`[[statement.csv]]`). The bank accounts themselves are `[[statement.bank]]`, read as
//! systems (their keys: [`super::protocols::statement`]).

use std::path::{Path, PathBuf};

use crate::domain::Pattern;
use toml::Value;

use super::ConfigError;

/// What a rule does with a row it matches.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// The purpose text names the account: `purpose` is a regular expression with a named
    /// group `account`, read by the bank's `account` rule. `payer_name`: the payer's name
    /// must also match the subscriber's (surname, or a company's name).
    Purpose { pattern: Pattern, payer_name: bool },
    /// A payer code (ЄДРПОУ, РНОКПП, БИН/ИИН) that always pays for one account.
    PayerCode { code: String, account: String },
    /// A payer code looked up in the billing's own fields (ABillS: the company's `edrpou`
    /// or `tax_number`, the subscriber's `tax_number`).
    PayerCodeInBilling,
    /// A payment network's lump sum (`purpose` matches): settles payments already credited
    /// one by one, so it is listed for `paysys reconcile` and never credited.
    Settlement { pattern: Pattern },
}

/// One `[[statement.rule]]`.
#[derive(Debug, Clone)]
pub struct StatementRule {
    pub kind: RuleKind,
    /// Only rows of this `[[statement.bank]]`; `None`: every bank's.
    pub bank: Option<String>,
    /// Where the rule is written, for the admin ("rule at paysys.toml:42").
    pub path: PathBuf,
    pub line: usize,
}

/// A rule is where it is written.
impl PartialEq for StatementRule {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.line == other.line
    }
}

impl Eq for StatementRule {}

impl StatementRule {
    /// `paysys.toml:42`, to say which rule matched.
    pub fn place(&self) -> String {
        let file = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        format!("{file}:{}", self.line)
    }
}

/// One `[[statement.csv]]` preset, as written: the statement reader checks it
/// ([`crate::statement::csv::CsvPreset`]).
#[derive(Debug, Clone)]
pub struct CsvSection {
    pub name: String,
    pub table: toml::Table,
    pub path: PathBuf,
    pub line: usize,
}

/// The `[statement]` section, merged over the layers: rules in the order the files give
/// them, presets by name (a later one replaces an earlier one of the same name).
#[derive(Debug, Clone, Default)]
pub struct StatementConfig {
    pub rules: Vec<StatementRule>,
    pub csv: Vec<CsvSection>,
}

impl StatementConfig {
    pub fn csv_preset(&self, name: &str) -> Option<&CsvSection> {
        self.csv.iter().find(|c| c.name == name)
    }
}

const RULE_KEYS: &[&str] = &[
    "purpose",
    "payer_name",
    "payer_code",
    "account",
    "settlement",
    "bank",
];

/// A `[[statement.rule]]` table written at `path:line`.
pub(super) fn rule(
    path: &Path,
    line: usize,
    table: &toml::Table,
) -> Result<StatementRule, ConfigError> {
    let invalid = |why: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: Some(line),
        why: format!("statement.rule: {why}"),
    };
    if let Some(k) = table.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown key '{k}' (a rule has {})",
            RULE_KEYS.join(", ")
        )));
    }
    let text = |key: &str| -> Result<Option<String>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "{key}: expected a non-empty string, found {}",
                other.type_str()
            ))),
        }
    };
    let flag = |key: &str| -> Result<bool, ConfigError> {
        match table.get(key) {
            None => Ok(false),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(invalid(format!(
                "{key}: expected true or false, found {}",
                other.type_str()
            ))),
        }
    };
    let regex = |text: &str| Pattern::new(text).map_err(|e| invalid(format!("purpose {e}")));
    let bank = text("bank")?;
    let purpose = text("purpose")?;
    let payer_code = text("payer_code")?;
    let account = text("account")?;
    let settlement = flag("settlement")?;
    let payer_name = flag("payer_name")?;
    let kind = match (settlement, purpose, payer_code) {
        (true, Some(p), None) => {
            if account.is_some() || payer_name {
                return Err(invalid(
                    "a settlement rule credits nobody: no account or payer_name".into(),
                ));
            }
            RuleKind::Settlement {
                pattern: regex(&p)?,
            }
        }
        (true, _, _) => {
            return Err(invalid(
                "settlement = true needs purpose = \"regular expression\" (and no payer_code)"
                    .into(),
            ))
        }
        (false, Some(p), None) => {
            if account.is_some() {
                return Err(invalid(
                    "account: a purpose rule reads the account from the purpose's group (?P<account>…)".into(),
                ));
            }
            let pattern = regex(&p)?;
            if !pattern.has_group("account") {
                return Err(invalid(format!(
                    "purpose '{p}' has no group named account: write (?P<account>\\d+) where the account is"
                )));
            }
            RuleKind::Purpose {
                pattern,
                payer_name,
            }
        }
        (false, None, Some(code)) if code == "billing" => {
            if account.is_some() {
                return Err(invalid(
                    "payer_code = \"billing\" finds the account in the billing: no account".into(),
                ));
            }
            RuleKind::PayerCodeInBilling
        }
        (false, None, Some(code)) => {
            let digits = code.trim();
            if !matches!(digits.len(), 8 | 10 | 12) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!(
                    "payer_code '{code}' is not an ЄДРПОУ (8 digits), РНОКПП/ИНН (10) or БИН/ИИН (12), \
                     nor \"billing\""
                )));
            }
            let Some(account) = account else {
                return Err(invalid(format!(
                    "payer_code '{code}' needs account = \"…\" (whom it pays for)"
                )));
            };
            RuleKind::PayerCode {
                code: digits.to_string(),
                account,
            }
        }
        (false, Some(_), Some(_)) => {
            return Err(invalid(
                "one rule matches by purpose or by payer_code, not both".into(),
            ))
        }
        (false, None, None) => {
            return Err(invalid(
                "a rule needs purpose = \"…(?P<account>…)…\", payer_code = \"…\" with account, \
                 or settlement = true with purpose"
                    .into(),
            ))
        }
    };
    Ok(StatementRule {
        kind,
        bank,
        path: path.to_path_buf(),
        line,
    })
}
