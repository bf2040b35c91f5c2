//! Which subscriber a statement's credit row is for, by the admin's `[[statement.rule]]`s,
//! tried in order: pure, over the row and the rules. The first rule that says anything
//! decides — a settlement, or the accounts it reads; the importer then looks those up in
//! the billing and credits the row only when exactly one subscriber is found.

use crate::config::{RuleKind, StatementRule};
use crate::statement::StatementRow;

/// What the rules say of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'r> {
    /// A payment network's lump sum: listed, never credited.
    Settlement { rule: &'r StatementRule },
    /// The accounts the rule read (as written in the purpose, or mapped from the payer's
    /// code), every distinct one: the importer looks each up. Several is not yet
    /// ambiguous: two texts may name one subscriber.
    Accounts {
        rule: &'r StatementRule,
        accounts: Vec<String>,
        /// The rule wants the payer's name to match the subscriber's.
        payer_name: bool,
    },
    /// The payer's code is to be looked up in the billing's own fields.
    PayerCodeInBilling {
        rule: &'r StatementRule,
        code: String,
    },
    /// No rule says anything of the row.
    NoRule,
}

/// The first of `rules` (those for `bank`, or for every bank) that says something of `row`.
pub fn decide<'r>(rules: &'r [StatementRule], bank: &str, row: &StatementRow) -> Verdict<'r> {
    decide_after(rules, bank, row, None)
}

/// [`decide`], by the rules after `after` only: a payer code the billing does not know
/// says nothing of the row, and the rules below it are asked.
pub fn decide_after<'r>(
    rules: &'r [StatementRule],
    bank: &str,
    row: &StatementRow,
    after: Option<&StatementRule>,
) -> Verdict<'r> {
    let start = after
        .and_then(|a| rules.iter().position(|r| r == a))
        .map_or(0, |i| i + 1);
    for rule in rules[start..]
        .iter()
        .filter(|r| r.bank.as_deref().is_none_or(|b| b == bank))
    {
        match &rule.kind {
            RuleKind::Settlement { pattern } => {
                if pattern.is_match(&row.purpose) {
                    return Verdict::Settlement { rule };
                }
            }
            RuleKind::Purpose {
                pattern,
                payer_name,
            } => {
                let mut accounts: Vec<String> = Vec::new();
                let Some(pattern) = pattern.regex() else {
                    continue;
                };
                for caps in pattern.captures_iter(&row.purpose) {
                    if let Some(m) = caps.name("account") {
                        let text = m.as_str().trim().to_string();
                        if !text.is_empty() && !accounts.contains(&text) {
                            accounts.push(text);
                        }
                    }
                }
                if !accounts.is_empty() {
                    return Verdict::Accounts {
                        rule,
                        accounts,
                        payer_name: *payer_name,
                    };
                }
            }
            RuleKind::PayerCode { code, account } => {
                if row.payer_code.as_deref() == Some(code.as_str()) {
                    return Verdict::Accounts {
                        rule,
                        accounts: vec![account.clone()],
                        payer_name: false,
                    };
                }
            }
            RuleKind::PayerCodeInBilling => {
                if let Some(code) = &row.payer_code {
                    return Verdict::PayerCodeInBilling {
                        rule,
                        code: code.clone(),
                    };
                }
            }
        }
    }
    Verdict::NoRule
}

/// Whether the payer's name names the subscriber `name` (their full name as the billing
/// keeps it): the surname (the first word) is one of the payer's words, letter case aside.
/// Banks print a payer as "ПЕТРЕНКО ПЕТРО ВОЛОДИМИРОВИЧ", "Петренко П.В." or
/// "ФОП Петренко Петро"; the surname is in all of them. A Ukrainian bank spells it in
/// Ukrainian where the billing may keep it in Russian (Іванов, Иванов): the letters the two
/// spell differently are compared as one (і ї и ы, е є ё, г ґ).
pub fn payer_is(payer_name: &str, name: &str) -> bool {
    let fold = |c: char| match c {
        'і' | 'ї' | 'ы' => 'и',
        'є' | 'ё' => 'е',
        'ґ' => 'г',
        '’' | 'ʼ' => '\'',
        other => other,
    };
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric() && !matches!(c, '\'' | '’' | 'ʼ' | '-'))
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase().chars().map(fold).collect())
            .collect()
    };
    let Some(surname) = words(name).into_iter().next() else {
        return false;
    };
    surname.chars().count() >= 2 && words(payer_name).contains(&surname)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::Amount;
    use crate::statement::{Direction, RowId};
    use chrono::NaiveDate;

    fn rules(text: &str) -> Vec<StatementRule> {
        let dir = std::env::temp_dir().join(format!(
            "paysys-matching-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let path = dir.join("etc/paysys.toml");
        std::fs::write(
            &path,
            format!("[database]\nurl = \"mysql://u@127.0.0.1/db\"\nbilling = \"nodeny\"\n{text}"),
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        c.statement.rules
    }

    fn row(purpose: &str, payer_code: Option<&str>) -> StatementRow {
        StatementRow {
            id: RowId::from_bank("1").unwrap(),
            row: 1,
            date: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            time: None,
            amount: Amount::parse("100.00").unwrap(),
            direction: Direction::Credit,
            currency: Some("UAH".into()),
            purpose: purpose.into(),
            payer_name: "ПЕТРЕНКО ПЕТРО ВОЛОДИМИРОВИЧ".into(),
            payer_code: payer_code.map(str::to_string),
            payer_account: None,
            our_account: None,
            posted: true,
        }
    }

    const RULES: &str = r#"
[[statement.rule]]
settlement = true
purpose = '(?i)перерахування коштів, прийнятих|принятые платежи'

[[statement.rule]]
payer_code = "12345678"
account = "2041"

[[statement.rule]]
purpose = '(?i)(?:о/р|ос\.?\s*рах\.?|особистий рахунок|дог\.)\s*№?\s*(?P<account>\d{3,8})'
payer_name = true
"#;

    #[test]
    fn the_first_rule_that_says_something_decides() {
        let rules = rules(RULES);
        let verdict =
            |purpose: &str, code: Option<&str>| decide(&rules, "privat", &row(purpose, code));
        assert!(matches!(
            verdict(
                "Перерахування коштів, прийнятих від Платників за дог. № 15/3 згідно реєстру",
                None
            ),
            Verdict::Settlement { .. }
        ));
        assert_eq!(
            verdict(
                "Плата за інтернет, о/р 103078, Петренко Петро Володимирович",
                None
            ),
            Verdict::Accounts {
                rule: &rules[2],
                accounts: vec!["103078".into()],
                payer_name: true
            }
        );
        assert_eq!(
            verdict("Сплата за Особистий рахунок 113766", None),
            Verdict::Accounts {
                rule: &rules[2],
                accounts: vec!["113766".into()],
                payer_name: true
            }
        );
        // The company's code comes first: its invoice number in the purpose is no account.
        assert_eq!(
            verdict("Оплата за рахунком 77 від 01.12.2026", Some("12345678")),
            Verdict::Accounts {
                rule: &rules[1],
                accounts: vec!["2041".into()],
                payer_name: false
            }
        );
        // Two accounts named: both read, the importer decides.
        assert_eq!(
            verdict("о/р 1001 та о/р 1002", None),
            Verdict::Accounts {
                rule: &rules[2],
                accounts: vec!["1001".into(), "1002".into()],
                payer_name: true
            }
        );
        assert_eq!(verdict("Поповнення рахунку", None), Verdict::NoRule);
    }

    #[test]
    fn rules_for_another_bank_are_skipped() {
        let rules = rules(
            r#"
[[statement.bank]]
name = "mono"
bank = "file"

[[statement.rule]]
bank = "mono"
purpose = '(?P<account>\d+)'
"#,
        );
        assert_eq!(
            decide(&rules, "privat", &row("103078", None)),
            Verdict::NoRule
        );
        assert!(matches!(
            decide(&rules, "mono", &row("103078", None)),
            Verdict::Accounts { .. }
        ));
    }

    #[test]
    fn payer_names() {
        assert!(payer_is(
            "ПЕТРЕНКО ПЕТРО ВОЛОДИМИРОВИЧ",
            "Петренко Петро Володимирович"
        ));
        assert!(payer_is("ФОП Петренко П.В.", "Петренко Петро"));
        assert!(payer_is("Д'Артаньян Ш.", "Д’Артаньян Шарль"));
        assert!(payer_is("ІВАНОВ ІВАН", "Иванов Иван Иванович"));
        assert!(payer_is("ЄРМАК ҐАНДЗЯ", "Ермак Гандзя"));
        assert!(!payer_is("Петренко-Сидоренко Петро", "Петренко Петро"));
        assert!(!payer_is("ТОВ Ромашка", "Петренко Петро"));
        assert!(!payer_is("", "Петренко"));
        assert!(!payer_is("Петренко", ""));
    }
}
