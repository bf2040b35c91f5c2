//! City24 / City-Pay terminals, the GET `QueryType` protocol, as ABillS's USMP module
//! speaks it (`../shared/PROTOCOLS.md`, section 4).
//!
//! Request (GET or form POST): `QueryType=check|pay|cancel`, `TransactionId` (the
//! terminal's payment id), `Account`, `Amount` (pay, cancel), `TransactionDate`
//! (pay, `yyyyMMddHHmmss`), `RevertId` (cancel: the `TransactionId` of the pay to
//! reverse). Without `QueryType`, `CheckDateBegin` and `CheckDateEnd` (`yyyyMMddHHmmss`)
//! ask for the reconciliation listing: our payments of that period.
//!
//! Answer: `<Response>` with `TransactionId`, `TransactionExt` (our payment's number, the
//! `prv_txn`; a repeat gets the same one), `Amount`, `ResultCode` and `Comment`; a check adds
//! `<Fields>` with the payer's masked name and balance, a cancel `RevertId`, a listing one
//! `<Payment>` per payment. `ResultCode` 1 and 100 mean "later"; everything else is final.
//! No signature: the caller's address is the only credential, as with the terminal itself.

use quick_xml::escape::escape;

use crate::cgi::Request;
use crate::config::ProtocolKind;
use crate::domain::{Account, Amount, AmountError, TxnDate, TxnId};
use crate::outcome::{CancelOrder, Check, Command, Echo, Outcome, Pay, Period, Refusal};
use crate::protocol::osmp::{clean, clean_long, push_element};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct City24;

/// `ResultCode` and the words the log gets, for every ending.
pub fn code(outcome: &Outcome) -> (u16, &'static str) {
    match outcome {
        Outcome::Checked { .. }
        | Outcome::Paid { .. }
        | Outcome::Found { .. }
        | Outcome::Cancelled { .. }
        | Outcome::Listed(_) => (0, "OK"),
        Outcome::Refused(refusal) => match refusal {
            Refusal::BadAccount(_) => (3, "wrong account format"),
            Refusal::NoSuchSubscriber => (21, "account not found"),
            Refusal::AccountInactive => (24, "account inactive"),
            Refusal::PaymentsDisabled
            | Refusal::HookRefused(_)
            | Refusal::PaidThenCancelled { .. }
            | Refusal::Conflict { .. } => (22, "payment forbidden"),
            // ABillS's USMP answers 22 to a cancel it cannot make.
            Refusal::CancelUnknown(_) | Refusal::CancelNotSupported(_) => (22, "cannot cancel"),
            Refusal::SumBelowMin { .. } => (241, "amount too small"),
            Refusal::SumAboveMax { .. } | Refusal::SumTooLarge(_) => (242, "amount too large"),
            Refusal::NoBill => (100, "payment not finished"),
            Refusal::CallerNotAllowed => (23, "forbidden for technical reasons"),
            Refusal::NoCommand(_)
            | Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadSum(_)
            | Refusal::BadTxnDate(_)
            | Refusal::TxnDateOutOfWindow { .. }
            | Refusal::UnknownTxn
            | Refusal::BadDomain(_)
            | Refusal::BadSignature(_) => (299, "other error"),
        },
        Outcome::Booked { .. } | Outcome::Noted { .. } | Outcome::LookedUp { .. } => {
            (299, "booking unsupported")
        }
        Outcome::Failed(_) => (1, "temporary error"),
    }
}

impl Protocol for City24 {
    fn secrets(&self) -> &'static [&'static str] {
        // No signature; the caller's address is the credential.
        &[]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::City24
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        if let Ok(form) = request.form() {
            let field = |k: &str| form.get(k).ok().flatten().unwrap_or("").to_string();
            let query = field("QueryType");
            echo.command = if query.is_empty() && !field("CheckDateBegin").is_empty() {
                "list".into()
            } else {
                query.to_ascii_lowercase()
            };
            echo.txn_id = field("TransactionId");
            echo.account = field("Account");
            echo.sum = field("Amount");
            echo.params = form.pairs().to_vec();
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let form = request.form().map_err(|e| Refusal::BadRequest(e.0))?;
        let get = |key: &str| -> Result<&str, Refusal> {
            Ok(form
                .get(key)
                .map_err(|e| Refusal::BadRequest(e.0))?
                .unwrap_or(""))
        };
        let query = get("QueryType")?;
        if query.is_empty() {
            let (begin, end) = (get("CheckDateBegin")?, get("CheckDateEnd")?);
            if begin.is_empty() && end.is_empty() {
                return Err(Refusal::NoCommand(String::new()));
            }
            return Ok(Command::List(Period {
                from: moment("CheckDateBegin", begin, ctx)?,
                to: moment("CheckDateEnd", end, ctx)?,
            }));
        }
        let txn_id = |key: &str| -> Result<TxnId, Refusal> {
            TxnId::parse_token(get(key)?).map_err(|e| Refusal::BadTxnId(format!("{key}: {e}")))
        };
        let account = || -> Result<Account, Refusal> {
            match get("Account")? {
                "" => Err(Refusal::BadAccount("Account is missing".into())),
                text => Account::parse_by(text, ctx.account).map_err(Refusal::BadAccount),
            }
        };
        let amount = || -> Result<Amount, Refusal> {
            let text = get("Amount")?;
            if text.is_empty() {
                return Err(Refusal::BadSum("Amount is missing".into()));
            }
            Amount::parse(text).map_err(|e| match e {
                AmountError::TooLarge => Refusal::SumTooLarge(format!("Amount '{text}': {e}")),
                AmountError::Malformed(why) => Refusal::BadSum(format!("Amount '{text}': {why}")),
            })
        };
        match query {
            "check" => Ok(Command::Check(Check {
                txn_id: Some(txn_id("TransactionId")?),
                account: account()?,
                sum: None,
            })),
            "pay" => {
                let txn_id = txn_id("TransactionId")?;
                let account = account()?;
                let sum = amount()?;
                let txn_date = TxnDate::parse(get("TransactionDate")?, ctx.now, ctx.test)
                    .map_err(|e| Refusal::BadTxnDate(format!("TransactionDate: {e}")))?;
                Ok(Command::Pay(Pay {
                    txn_id,
                    account,
                    sum,
                    txn_date,
                }))
            }
            // The payment is named by its own id (RevertId), not by our number.
            "cancel" => Ok(Command::Cancel(CancelOrder {
                prv_txn: None,
                txn_id: Some(txn_id("RevertId")?),
                sum: None,
            })),
            other => Err(Refusal::NoCommand(other.to_string())),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let (result, comment) = code(outcome);
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
        if let Outcome::Listed(payments) = outcome {
            for p in payments {
                xml.push_str("<Payment>");
                push_element(&mut xml, "TransactionId", &clean(&p.txn_id));
                push_element(&mut xml, "Account", &clean(&p.account));
                push_element(
                    &mut xml,
                    "TransactionDate",
                    &p.txn_date.format("%Y-%m-%d %H:%M:%S").to_string(),
                );
                push_element(&mut xml, "Amount", &p.sum.to_string());
                push_element(&mut xml, "TransactionExt", &p.prv_txn.to_string());
                xml.push_str("</Payment>");
            }
            xml.push_str("</Response>\n");
            return reply(xml, outcome, result, comment);
        }
        push_element(&mut xml, "TransactionId", &clean(&echo.txn_id));
        if echo.command == "cancel" {
            let revert = echo
                .params
                .iter()
                .find(|(k, _)| k == "RevertId")
                .map(|(_, v)| clean(v))
                .unwrap_or_default();
            push_element(&mut xml, "RevertId", &revert);
        }
        if let Some(prv_txn) = outcome.prv_txn() {
            push_element(&mut xml, "TransactionExt", &prv_txn.to_string());
        }
        let sum = match outcome {
            Outcome::Paid { sum, .. } | Outcome::Cancelled { sum, .. } => Some(sum.to_string()),
            _ if echo.command == "pay" || echo.command == "cancel" => Some(clean(&echo.sum)),
            _ => None,
        };
        if let Some(sum) = sum {
            push_element(&mut xml, "Amount", &sum);
        }
        push_element(&mut xml, "ResultCode", &result.to_string());
        if let Outcome::Checked { subscriber, .. } = outcome {
            // As ABillS's USMP module: the payer's details under <Fields>.
            xml.push_str("<Fields><field1 name=\"fio\">");
            xml.push_str(&escape(clean_long(&subscriber.name)));
            xml.push_str("</field1><field2 name=\"balance\">");
            if let Some(balance) = subscriber.balance {
                xml.push_str(&balance.to_string());
            }
            xml.push_str("</field2></Fields>");
        }
        push_element(&mut xml, "Comment", comment);
        xml.push_str("</Response>\n");
        reply(xml, outcome, result, comment)
    }
}

fn reply(xml: String, outcome: &Outcome, result: u16, comment: &str) -> Reply {
    Reply::xml(xml, outcome, result.to_string(), comment.to_string())
}

/// A listing's end: `yyyyMMddHHmmss`.
fn moment(key: &str, text: &str, ctx: &ParseContext) -> Result<chrono::NaiveDateTime, Refusal> {
    TxnDate::parse(text, ctx.now, false)
        .map(TxnDate::naive)
        .map_err(|e| Refusal::BadRequest(format!("{key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountKey, AccountRule};
    use crate::outcome::{Listed, Subscriber};
    use crate::protocol::testing::get as request;
    use chrono::NaiveDateTime;

    fn now() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap()
    }

    fn parse(query: &str) -> Result<Command, Refusal> {
        let rule = AccountRule::new(AccountKey::Id);
        let ctx = ParseContext {
            account: &rule,
            now: now(),
            test: false,
            sign: None,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        City24.parse(&request(query), &ctx)
    }

    #[test]
    fn requests_parse_like_the_protocol_table() {
        assert!(matches!(
            parse("QueryType=check&TransactionId=1&Account=5907"),
            Ok(Command::Check(_))
        ));
        let Ok(Command::Pay(pay)) = parse(
            "QueryType=pay&TransactionId=77&Account=5907&Amount=100.50&TransactionDate=20261122095900",
        ) else {
            panic!()
        };
        assert_eq!(pay.sum, Amount::from_kopecks(10050));
        assert_eq!(pay.txn_date.sql(), "2026-11-22 09:59:00");
        let Ok(Command::Cancel(c)) = parse(
            "QueryType=cancel&TransactionId=78&RevertId=77&RevertDate=20261122100000&Amount=100.50&Account=5907",
        ) else {
            panic!()
        };
        assert_eq!(
            (c.prv_txn, c.txn_id.unwrap().as_str().to_string()),
            (None, "77".to_string())
        );
        let Ok(Command::List(p)) =
            parse("CheckDateBegin=20261121000000&CheckDateEnd=20261121235959")
        else {
            panic!()
        };
        assert_eq!(p.to.to_string(), "2026-11-21 23:59:59");
        let table: &[(&str, u16)] = &[
            ("", 299),
            ("QueryType=refund&TransactionId=1&Account=5907", 299),
            ("QueryType=check&Account=5907", 299),
            ("QueryType=check&TransactionId=1", 3),
            ("QueryType=check&TransactionId=1&Account=x", 3),
            (
                "QueryType=pay&TransactionId=1&Account=5907&TransactionDate=20261122095900",
                299,
            ),
            (
                "QueryType=pay&TransactionId=1&Account=5907&Amount=1&TransactionDate=2026",
                299,
            ),
            ("QueryType=cancel&TransactionId=1", 299),
            ("CheckDateBegin=2026&CheckDateEnd=20261121235959", 299),
        ];
        for (q, want) in table {
            let r = parse(q).unwrap_err();
            assert_eq!(code(&Outcome::Refused(r.clone())).0, *want, "{q}: {r:?}");
        }
    }

    #[test]
    fn answers_are_responses() {
        let echo = City24.echo(&request(
            "QueryType=pay&TransactionId=T%3C1&Account=5907&Amount=100",
        ));
        let paid = City24.render(
            &echo,
            &Outcome::Paid {
                prv_txn: 42,
                sum: Amount::from_kopecks(10000),
                repeat: true,
            },
        );
        assert_eq!(
            paid.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><TransactionId>T&lt;1</TransactionId>\
             <TransactionExt>42</TransactionExt><Amount>100.00</Amount><ResultCode>0</ResultCode>\
             <Comment>OK</Comment></Response>\n"
        );
        let unknown = City24.render(&echo, &Outcome::Refused(Refusal::NoSuchSubscriber));
        assert!(unknown
            .response
            .body
            .contains("<Amount>100</Amount><ResultCode>21</ResultCode>"));
        let checked = City24.render(
            &City24.echo(&request("QueryType=check&TransactionId=1&Account=5907")),
            &Outcome::Checked {
                subscriber: Subscriber {
                    id: 5907,
                    name: "Ив*** И***".into(),
                    balance: Some(Amount::from_kopecks(1250)),
                    group: None,
                    account: None,
                },
                sum: None,
                limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
            },
        );
        assert!(checked.response.body.contains(
            "<ResultCode>0</ResultCode><Fields><field1 name=\"fio\">Ив*** И***</field1><field2 name=\"balance\">12.50</field2></Fields>"
        ), "{}", checked.response.body);
        let listed = City24.render(
            &City24.echo(&request(
                "CheckDateBegin=20261121000000&CheckDateEnd=20261121235959",
            )),
            &Outcome::Listed(vec![Listed {
                txn_id: "77".into(),
                account: "5907".into(),
                txn_date: now(),
                sum: Amount::from_kopecks(10050),
                prv_txn: 42,
            }]),
        );
        assert_eq!(
            listed.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Payment><TransactionId>77</TransactionId>\
             <Account>5907</Account><TransactionDate>2026-11-22 10:00:00</TransactionDate>\
             <Amount>100.50</Amount><TransactionExt>42</TransactionExt></Payment></Response>\n"
        );
        let failed = City24.render(
            &echo,
            &Outcome::Failed(crate::outcome::Fault::DatabaseWrite("x".into())),
        );
        assert!(failed.response.body.contains("<ResultCode>1</ResultCode>"));
    }
}
