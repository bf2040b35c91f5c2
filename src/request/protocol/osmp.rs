//! OSMP (QIWI) terminal protocol, as NoDeny's `osmp.pl` and ABillS's `paysys_check.cgi`
//! speak it.
//!
//! Request: `command=check|pay|status|cancel`, `txn_id` (1–20 digits), `account`, `sum`
//! (`.`-decimal, up to 2 places), `txn_date` (pay: `YYYYMMDDHHMMSS`), `prv_txn` (cancel),
//! by GET or form POST.
//! Answer: `text/xml`, `<response>` with `osmp_txn_id`, `prv_txn`, `sum`, `result`, `comment`.
//! The two dialects differ in one answer: a successful check comments `OK` (NoDeny) or
//! `Balance: 12.50 Ив*** И***` (ABillS).
//!
//! `result` tells the terminal whether to retry: 1 and 90 mean "later", everything else is
//! final. `comment` carries NoDeny's `nodN` codes, which admins already know; the full table
//! is in INSTALL and in [`code`].

use quick_xml::escape::escape;

use crate::cgi::Request;
use crate::config::ProtocolKind;
use crate::domain::{Account, Amount, AmountError, TxnDate, TxnId};
use crate::outcome::{
    CancelOrder, Check, Command, Echo, Fault, Outcome, Pay, Refusal, StatusQuery,
};
use crate::protocol::{form_echo, Dialect, ParseContext, Protocol, Reply};

pub struct Osmp {
    dialect: Dialect,
    kind: ProtocolKind,
    /// The element that echoes `txn_id`: `osmp_txn_id`, iBox's `ibox_txn_id`, Kaspi's
    /// `txn_id`.
    txn_tag: &'static str,
    /// The element of our payment's number: `prv_txn`, Kaspi's `prv_txn_id`.
    prv_tag: &'static str,
    /// iBox: a pay's answer carries `<prv_txn_date>`, and a check without `sum` is refused
    /// (ABillS's iBox module answers 300).
    ibox: bool,
}

impl Osmp {
    pub const NODENY: Osmp = Osmp {
        dialect: Dialect::NoDeny,
        kind: ProtocolKind::Osmp,
        txn_tag: "osmp_txn_id",
        prv_tag: "prv_txn",
        ibox: false,
    };
    pub const ABILLS: Osmp = Osmp {
        dialect: Dialect::Abills,
        kind: ProtocolKind::Osmp,
        txn_tag: "osmp_txn_id",
        prv_tag: "prv_txn",
        ibox: false,
    };
    /// iBox (Ukrainian terminals): OSMP with `ibox_txn_id` and `prv_txn_date`, on
    /// `paysys_check.cgi` (`protocol = "ibox"`).
    pub const IBOX: Osmp = Osmp {
        dialect: Dialect::Abills,
        kind: ProtocolKind::Ibox,
        txn_tag: "ibox_txn_id",
        prv_tag: "prv_txn",
        ibox: true,
    };
    /// Kaspi (Kazakhstan, `protocol = "kaspi"`): OSMP's requests as ABillS's Kaspi tests
    /// send them (`command=check|pay|cancel`, cancel by `prv_txn`), answered with Kaspi's
    /// names `txn_id` and `prv_txn_id`. Kaspi publishes no spec: the names are the ones
    /// Kaspi's providers are known to answer with, unconfirmed (INSTALL says so).
    pub const KASPI: Osmp = Osmp {
        dialect: Dialect::Abills,
        kind: ProtocolKind::Kaspi,
        txn_tag: "txn_id",
        prv_tag: "prv_txn_id",
        ibox: false,
    };
}

/// Echoed values are cut to this many characters: enough for any real field.
const ECHO_MAX: usize = 64;

impl Protocol for Osmp {
    fn secrets(&self) -> &'static [&'static str] {
        // Unsigned: nothing of a terminal's request is secret.
        &[]
    }

    fn kind(&self) -> ProtocolKind {
        self.kind
    }

    fn echo(&self, request: &Request) -> Echo {
        form_echo(request)
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let form = request.form().map_err(|e| Refusal::BadRequest(e.0))?;
        let get = |key: &str| form.get(key).map_err(|e| Refusal::BadRequest(e.0));
        let command = get("command")?.unwrap_or("");
        let txn_id = || -> Result<TxnId, Refusal> {
            TxnId::parse(get("txn_id")?.unwrap_or("")).map_err(Refusal::BadTxnId)
        };
        let account = || -> Result<Account, Refusal> {
            match get("account")? {
                None | Some("") => Err(Refusal::BadAccount("account is missing".into())),
                Some(text) => Account::parse_by(text, ctx.account).map_err(Refusal::BadAccount),
            }
        };
        let sum = |text: &str| -> Result<Amount, Refusal> {
            Amount::parse(text).map_err(|e| match e {
                // Well-formed but absurdly large: the same answer as any sum above the maximum.
                AmountError::TooLarge => Refusal::SumTooLarge(format!("sum '{text}': {e}")),
                AmountError::Malformed(why) => Refusal::BadSum(format!("sum '{text}': {why}")),
            })
        };
        match command {
            "check" => {
                let txn_id = match get("txn_id")? {
                    None => None,
                    Some(_) => Some(txn_id()?),
                };
                let account = account()?;
                let sum = match get("sum")? {
                    None | Some("") if self.ibox => {
                        return Err(Refusal::BadSum(
                            "sum is missing (iBox sends it with a check)".into(),
                        ))
                    }
                    None | Some("") => None,
                    Some(text) => Some(sum(text)?),
                };
                Ok(Command::Check(Check {
                    txn_id,
                    account,
                    sum,
                }))
            }
            "pay" => {
                let txn_id = txn_id()?;
                let account = account()?;
                let amount =
                    sum(get("sum")?.ok_or_else(|| Refusal::BadSum("sum is missing".into()))?)?;
                let date_text = get("txn_date")?.unwrap_or("");
                let txn_date =
                    TxnDate::parse(date_text, ctx.now, ctx.test).map_err(Refusal::BadTxnDate)?;
                Ok(Command::Pay(Pay {
                    txn_id,
                    account,
                    sum: amount,
                    txn_date,
                }))
            }
            "status" => Ok(Command::Status(StatusQuery { txn_id: txn_id()? })),
            "cancel" => {
                let prv_txn = match get("prv_txn")? {
                    Some(text)
                        if (1..=20).contains(&text.len())
                            && text.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        text.parse::<u64>().map_err(|_| {
                            Refusal::CancelUnknown(format!("prv_txn {text}: no such payment"))
                        })?
                    }
                    Some(text) => {
                        return Err(Refusal::BadRequest(format!(
                            "prv_txn '{text}' is not a number"
                        )))
                    }
                    None => return Err(Refusal::BadRequest("cancel without prv_txn".into())),
                };
                let txn_id = match get("txn_id")? {
                    None | Some("") => None,
                    Some(_) => Some(txn_id()?),
                };
                Ok(Command::Cancel(CancelOrder {
                    prv_txn: Some(prv_txn),
                    txn_id,
                    sum: None,
                }))
            }
            other => Err(Refusal::NoCommand(other.to_string())),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let (result, code_comment) = match (self.kind, outcome) {
            // NoDeny's terminals retry a bare request (result 1); Kaspi would retry
            // forever a request we will never understand (its user-list request, `date`,
            // `page`, `rows`, which paysys does not answer): final.
            (ProtocolKind::Kaspi, Outcome::Refused(Refusal::NoCommand(_))) => (300, "nod3"),
            _ => code(outcome),
        };
        let balance_comment;
        let comment = match (self.dialect, outcome) {
            // ABillS's script answers a check with the balance and the (masked) name, which
            // terminals show the payer.
            (Dialect::Abills, Outcome::Checked { subscriber, .. }) => {
                let balance = subscriber
                    .balance
                    .map(|b| b.to_string())
                    .unwrap_or_default();
                balance_comment = clean_long(&format!("Balance: {balance} {}", subscriber.name));
                balance_comment.trim_end()
            }
            _ => code_comment,
        };
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>");
        push_element(&mut xml, self.txn_tag, &clean(&echo.txn_id));
        if let Some(prv_txn) = outcome.prv_txn() {
            push_element(&mut xml, self.prv_tag, &prv_txn.to_string());
        }
        if let (true, Outcome::Paid { .. }) = (self.ibox, outcome) {
            push_element(&mut xml, "prv_txn_date", &ibox_date(echo));
        }
        let sum = match outcome {
            Outcome::Paid { sum, .. }
            | Outcome::Found { sum, .. }
            | Outcome::Cancelled { sum, .. } => Some(sum.to_string()),
            Outcome::Checked { sum: Some(sum), .. } => Some(sum.to_string()),
            _ if !echo.sum.is_empty() => Some(clean(&echo.sum)),
            _ => None,
        };
        if let Some(sum) = sum {
            push_element(&mut xml, "sum", &sum);
        }
        push_element(&mut xml, "result", &result.to_string());
        push_element(&mut xml, "comment", comment);
        // A check names the payer for the terminal's screen: the (masked) name and the
        // balance as OSMP `<fields>`, which terminals that do not show them skip. PayPRO's
        // own-provider description (etc/paypro/MyProviders.ini) cuts them out of here.
        if let Outcome::Checked { subscriber, .. } = outcome {
            xml.push_str("<fields><field1 name=\"fio\">");
            xml.push_str(&escape(clean_long(&subscriber.name)));
            xml.push_str("</field1><field2 name=\"balance\">");
            if let Some(balance) = subscriber.balance {
                xml.push_str(&balance.to_string());
            }
            xml.push_str("</field2></fields>");
        }
        xml.push_str("</response>\n");
        Reply::xml(xml, outcome, result.to_string(), comment.to_string())
    }
}

/// iBox's `prv_txn_date` (`YYYY-MM-DD HH:MM:SS`): the pay's own `txn_date`, so that the
/// answer to a repeat is the first answer again.
fn ibox_date(echo: &Echo) -> String {
    echo.params
        .iter()
        .find(|(k, _)| k == "txn_date")
        .and_then(|(_, v)| chrono::NaiveDateTime::parse_from_str(v, "%Y%m%d%H%M%S").ok())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// OSMP `result` and NoDeny-style `comment` for every way a request can end.
///
/// `nod1`, `nod2`, `nod3`, `nod12` and `nod13` mean what they meant in NoDeny's `osmp.pl`;
/// the other numbers are ours, one per refusal, listed in INSTALL.
pub fn code(outcome: &Outcome) -> (u16, &'static str) {
    match outcome {
        Outcome::Found {
            cancelled: true, ..
        } => (7, "nod22"),
        Outcome::Checked { .. }
        | Outcome::Paid { .. }
        | Outcome::Found { .. }
        | Outcome::Cancelled { .. } => (0, "OK"),
        // OSMP asks for no listing; a protocol error if one ever came this way.
        Outcome::Listed(_)
        | Outcome::Booked { .. }
        | Outcome::Noted { .. }
        | Outcome::LookedUp { .. } => (300, "nod16"),
        Outcome::Refused(refusal) => match refusal {
            // NoDeny answers a bare request with result 1, and terminals are used to it.
            Refusal::NoCommand(_) => (1, "nod3"),
            Refusal::BadAccount(_) => (4, "nod4"),
            Refusal::NoSuchSubscriber => (5, "nod5"),
            Refusal::BadTxnId(_) => (300, "nod6"),
            Refusal::BadSum(_) => (300, "nod7"),
            Refusal::SumBelowMin { .. } => (241, "nod8"),
            Refusal::SumAboveMax { .. } | Refusal::SumTooLarge(_) => (242, "nod9"),
            Refusal::BadTxnDate(_) => (300, "nod10"),
            Refusal::Conflict { .. } => (7, "nod11"),
            Refusal::TxnDateOutOfWindow { .. } => (300, "nod12"),
            Refusal::CallerNotAllowed => (8, "nod15"),
            // OSMP has no signature; another protocol's refusal, answered as a bad request.
            Refusal::BadRequest(_) | Refusal::BadSignature(_) => (300, "nod16"),
            Refusal::UnknownTxn => (300, "nod17"),
            Refusal::AccountInactive => (79, "nod20"),
            Refusal::PaymentsDisabled => (7, "nod21"),
            Refusal::PaidThenCancelled { .. } => (7, "nod22"),
            // Another system's payment is answered as an unknown one: a caller learns
            // nothing about payments that are not its own.
            Refusal::CancelUnknown(_) => (300, "nod23"),
            Refusal::CancelNotSupported(_) => (300, "nod24"),
            Refusal::BadDomain(_) => (300, "nod25"),
            Refusal::HookRefused(_) => (7, "nod26"),
            Refusal::NoBill => (90, "nod27"),
        },
        Outcome::Failed(fault) => match fault {
            Fault::ConfigMissing(_) => (1, "nod1"),
            Fault::ConfigInvalid(_) => (1, "nod2"),
            Fault::DatabaseWrite(_) => (1, "nod13"),
            Fault::CommitUnknown(_) => (1, "nod19"),
            Fault::DatabaseRead(_) => (1, "nod14"),
            Fault::Internal(_) | Fault::Provider(_) => (1, "nod18"),
            Fault::Hook(_) => (1, "nod28"),
        },
    }
}

pub(crate) fn push_element(xml: &mut String, name: &str, text: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
    xml.push_str(&escape(text));
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

/// A longer text for an answer (a name): as [`clean`], capped at 128 characters.
pub(crate) fn clean_long(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Echoed text: control characters (CR, LF, NUL) and the noncharacters U+FFFE and U+FFFF,
/// which XML 1.0 does not allow at all, become `?`; the length is capped. Markup
/// characters are escaped later by [`push_element`].
pub(crate) fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(ECHO_MAX)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
                '?'
            } else {
                c
            }
        })
        .collect();
    if text.chars().count() > ECHO_MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountKey, AccountRule};
    use crate::protocol::testing::get as request;
    use chrono::NaiveDateTime;

    fn now() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap()
    }

    fn parse(query: &str) -> Result<Command, Refusal> {
        let rule = AccountRule::new(AccountKey::PaymentCode);
        let ctx = ParseContext {
            account: &rule,
            now: now(),
            test: false,
            sign: None,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        Osmp::NODENY.parse(&request(query), &ctx)
    }

    fn comment_of(query: &str) -> &'static str {
        match parse(query) {
            Ok(_) => "ok",
            Err(r) => code(&Outcome::Refused(r)).1,
        }
    }

    #[test]
    fn requests_parse_like_the_protocol_table() {
        let table: &[(&str, &str)] = &[
            ("command=check&txn_id=1&account=59071&sum=10.25", "ok"),
            ("command=check&account=59071", "ok"),
            ("command=pay&txn_id=666&account=59071&sum=10.25&txn_date=20261122093000", "ok"),
            ("command=status&txn_id=666", "ok"),
            ("", "nod3"),
            ("command=refund&txn_id=1", "nod3"),
            ("command=check&account=59072", "nod4"),
            ("command=check&account=", "nod4"),
            ("command=pay&txn_id=1&account=1234567890123456789012345&sum=1&txn_date=20261122093000", "nod4"),
            ("command=pay&txn_id=666%0A&account=59071&sum=1&txn_date=20261122093000", "nod6"),
            ("command=pay&account=59071&sum=1&txn_date=20261122093000", "nod6"),
            ("command=pay&txn_id=1&account=59071&sum=1e3&txn_date=20261122093000", "nod7"),
            ("command=pay&txn_id=1&account=59071&sum=-5&txn_date=20261122093000", "nod7"),
            ("command=pay&txn_id=1&account=59071&txn_date=20261122093000", "nod7"),
            ("command=pay&txn_id=1&account=59071&sum=99999999999999999999&txn_date=20261122093000", "nod9"),
            ("command=pay&txn_id=1&account=59071&sum=1&txn_date=2026112209300", "nod10"),
            ("command=pay&txn_id=1&account=59071&sum=1&txn_date=now", "nod10"),
            ("command=pay&txn_id=1&txn_id=2&account=59071&sum=1&txn_date=20261122093000", "nod16"),
        ];
        for (query, expected) in table {
            assert_eq!(comment_of(query), *expected, "{query}");
        }
    }

    #[test]
    fn pay_carries_domain_values() {
        let Ok(Command::Pay(pay)) =
            parse("command=pay&txn_id=666&account=59071&sum=10.5&txn_date=20261122093000")
        else {
            panic!("not a pay")
        };
        assert_eq!(pay.txn_id.as_str(), "666");
        assert_eq!(pay.account.subscriber_id(), Some(5907));
        assert_eq!(pay.sum.kopecks(), 1050);
        assert_eq!(pay.txn_date.sql(), "2026-11-22 09:30:00");
    }

    #[test]
    fn answers_are_well_formed_and_escaped() {
        let echo = Osmp::NODENY.echo(&request(
            "command=pay&txn_id=%3C/osmp_txn_id%3E%3Cresult%3E0%3C/result%3E&sum=1%0D%0A",
        ));
        let reply = Osmp::NODENY.render(&echo, &Outcome::Refused(Refusal::BadTxnId("x".into())));
        let body = &reply.response.body;
        assert_eq!(body.matches("<result>").count(), 1, "{body}");
        assert!(body.contains("<result>300</result>"), "{body}");
        assert!(
            body.contains("&lt;/osmp_txn_id&gt;&lt;result&gt;0"),
            "{body}"
        );
        assert!(body.contains("<sum>1??</sum>"), "{body}");
        assert_eq!(reply.response.content_type, "text/xml; charset=utf-8");
    }

    #[test]
    fn answers_hold_only_legal_xml_characters() {
        let echo = Osmp::NODENY.echo(&request("txn_id=%EF%BF%BE%EF%BF%BF%00%1B&sum=%C2%85"));
        let reply = Osmp::NODENY.render(&echo, &Outcome::Refused(Refusal::UnknownTxn));
        let body = &reply.response.body;
        assert!(body.contains("<osmp_txn_id>????</osmp_txn_id>"), "{body}");
        assert!(body.contains("<sum>?</sum>"), "{body}");
    }

    #[test]
    fn ibox_is_osmp_with_its_own_tags() {
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
        // A check without a sum: 300, as ABillS's iBox module answers.
        let refused = Osmp::IBOX.parse(&request("command=check&txn_id=1&account=7517"), &ctx);
        assert!(matches!(refused, Err(Refusal::BadSum(_))), "{refused:?}");
        assert!(Osmp::IBOX
            .parse(
                &request("command=check&txn_id=1&account=7517&sum=0.00"),
                &ctx
            )
            .is_ok());
        let q = "command=pay&txn_id=199869975&account=7517&sum=100.00&txn_date=20141211071519&pay_type=1";
        assert!(matches!(
            Osmp::IBOX.parse(&request(q), &ctx),
            Ok(Command::Pay(_))
        ));
        let echo = Osmp::IBOX.echo(&request(q));
        let paid = Osmp::IBOX.render(
            &echo,
            &Outcome::Paid {
                prv_txn: 18,
                sum: Amount::from_kopecks(10000),
                repeat: false,
            },
        );
        assert_eq!(
            paid.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><ibox_txn_id>199869975</ibox_txn_id>\
             <prv_txn>18</prv_txn><prv_txn_date>2014-12-11 07:15:19</prv_txn_date><sum>100.00</sum>\
             <result>0</result><comment>OK</comment></response>\n"
        );
        assert_eq!(Osmp::IBOX.kind(), ProtocolKind::Ibox);
    }

    #[test]
    fn kaspi_is_osmp_with_its_own_names() {
        let rule = AccountRule::new(AccountKey::Login);
        let ctx = ParseContext {
            account: &rule,
            now: now(),
            test: false,
            sign: None,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        // ABillS's Kaspi test requests.
        for (q, ok) in [
            ("command=check&txn_id=4711&sum=1&account=test1", true),
            (
                "command=pay&account=test1&txn_date=20261122095900&txn_id=4711&sum=1",
                true,
            ),
            ("command=cancel&prv_txn=18", true),
            ("command=cancel&prv_txn=", false),
            (
                "command=pay&account=test1&txn_date=20261122095900&txn_id=4711&sum=10.001",
                false,
            ),
        ] {
            assert_eq!(Osmp::KASPI.parse(&request(q), &ctx).is_ok(), ok, "{q}");
        }
        let q = "command=pay&account=test1&txn_date=20261122095900&txn_id=4711&sum=1";
        let paid = Osmp::KASPI.render(
            &Osmp::KASPI.echo(&request(q)),
            &Outcome::Paid {
                prv_txn: 18,
                sum: Amount::from_kopecks(100),
                repeat: false,
            },
        );
        assert_eq!(
            paid.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><txn_id>4711</txn_id>\
             <prv_txn_id>18</prv_txn_id><sum>1.00</sum><result>0</result><comment>OK</comment>\
             </response>\n"
        );
        // Its user-list request (date, page, rows) is not answered, finally: no retries.
        let list = request("date=202612&page=1&rows=10");
        let refused = Osmp::KASPI.parse(&list, &ctx).unwrap_err();
        let reply = Osmp::KASPI.render(&Osmp::KASPI.echo(&list), &Outcome::Refused(refused));
        assert_eq!(reply.result, "300");
        assert_eq!(Osmp::KASPI.kind(), ProtocolKind::Kaspi);
    }

    #[test]
    fn paid_answer_has_prv_txn_and_sum() {
        let echo = Osmp::NODENY.echo(&request("command=pay&txn_id=666&sum=10.5"));
        let reply = Osmp::NODENY.render(
            &echo,
            &Outcome::Paid {
                prv_txn: 18,
                sum: Amount::from_kopecks(1050),
                repeat: false,
            },
        );
        assert_eq!(
            reply.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><osmp_txn_id>666</osmp_txn_id>\
             <prv_txn>18</prv_txn><sum>10.50</sum><result>0</result><comment>OK</comment></response>\n"
        );
        assert_eq!((reply.result.as_str(), reply.comment.as_str()), ("0", "OK"));
    }

    #[test]
    fn a_bare_request_answers_like_nodeny() {
        let reply = Osmp::NODENY.render(
            &Osmp::NODENY.echo(&request("")),
            &Outcome::Refused(Refusal::NoCommand(String::new())),
        );
        assert!(reply
            .response
            .body
            .contains("<osmp_txn_id></osmp_txn_id><result>1</result><comment>nod3</comment>"));
    }
}
