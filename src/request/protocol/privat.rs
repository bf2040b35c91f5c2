//! PrivatBank's "Debt" interface (also A-Bank and Monobank, which send it without the
//! namespace), as ABillS's Privat_terminal module speaks it (`../shared/PROTOCOLS.md`,
//! section 1).
//!
//! Request: a POSTed XML `<Transfer interface="Debt" action="…">` holding one `<Data>`:
//!
//! * `Presearch` and `Search` (`xsi:type="Payer"`): find the payer by
//!   `<Unit name="bill_identifier" value="ACC"/>` (also `billIdentifier` and `ls`) or
//!   `Data@presearchId`. Search is answered with a `DebtPack`: the masked name and the
//!   balance; Presearch with a one-row `PayersTable`.
//! * `Check` (`xsi:type="Payment"`): may `PayerInfo@billIdentifier` be paid `TotalSum`?
//!   Answered `<Data xsi:type="Gateway" reference="…"/>` (the subscriber's number, as ABillS
//!   answers; it books nothing).
//! * `Pay`: credit `TotalSum` once per bank payment id, `Data@id`; the `Gateway` reference is
//!   our payment's number (`prv_txn`), the same for a repeat.
//! * `Cancel`: reverse the payment with bank id `Data@id`.
//!
//! Errors are `<Data xsi:type="ErrorInfo" code="N"><Message>…</Message></Data>`: 1 unknown
//! request, 2 payer not found, 3 bad sum, 4 bad date, 5 address not allowed, 7 duplicate
//! payment, 98 payment not found, 99 anything else — our temporary faults too: the protocol
//! has no "later", and the bank asks again after 99 as after any failure. No signature: the
//! bank's addresses in the allow list are the credential.

use chrono::{DateTime, Local};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::cgi::Request;
use crate::config::ProtocolKind;
use crate::domain::{Account, Amount, AmountError, TxnDate, TxnId};
use crate::outcome::{CancelOrder, Check, Command, Echo, Outcome, Pay, Refusal};
use crate::protocol::osmp::{clean, clean_long};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Privat;

/// `ErrorInfo@code` and the message, for every refusal and fault.
pub fn error(outcome: &Outcome) -> Option<(u16, &'static str)> {
    Some(match outcome {
        Outcome::Checked { .. }
        | Outcome::Paid { .. }
        | Outcome::Found { .. }
        | Outcome::Cancelled { .. }
        | Outcome::Listed(_) => return None,
        Outcome::Refused(refusal) => match refusal {
            Refusal::NoCommand(_) => (1, "Невідомий тип запиту"),
            Refusal::NoSuchSubscriber | Refusal::BadAccount(_) => (2, "Абонента не знайдено"),
            Refusal::BadSum(_)
            | Refusal::SumBelowMin { .. }
            | Refusal::SumAboveMax { .. }
            | Refusal::SumTooLarge(_) => (3, "Невірний формат суми"),
            Refusal::BadTxnDate(_) | Refusal::TxnDateOutOfWindow { .. } => {
                (4, "Невірний формат дати")
            }
            Refusal::CallerNotAllowed => (5, "Доступ з цієї адреси заборонено"),
            Refusal::Conflict { .. } | Refusal::PaidThenCancelled { .. } => {
                (7, "Дублювання оплати")
            }
            Refusal::UnknownTxn | Refusal::CancelUnknown(_) => (98, "Платіж не знайдено"),
            Refusal::AccountInactive
            | Refusal::PaymentsDisabled
            | Refusal::HookRefused(_)
            | Refusal::NoBill
            | Refusal::CancelNotSupported(_)
            | Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadDomain(_)
            | Refusal::BadSignature(_) => (99, "Платіж неможливий"),
        },
        Outcome::Booked { .. } | Outcome::Noted { .. } | Outcome::LookedUp { .. } => {
            (99, "Платіж неможливий")
        }
        Outcome::Failed(_) => (99, "Тимчасова помилка, повторіть пізніше"),
    })
}

/// What a request says, read from its XML.
#[derive(Debug, Default, Clone)]
struct Transfer {
    action: String,
    data_type: String,
    /// `Data@id`: the bank's payment id.
    id: String,
    presearch_id: String,
    units: Vec<(String, String)>,
    bill_identifier: String,
    total_sum: String,
    create_time: String,
    confirm_time: String,
    check_reference: String,
}

impl Transfer {
    /// The payer's account: `PayerInfo@billIdentifier`, a bill identifier unit, `ls`, or
    /// the presearch id.
    fn account(&self) -> &str {
        let unit = |name: &str| {
            self.units
                .iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        [
            Some(self.bill_identifier.as_str()).filter(|s| !s.is_empty()),
            unit("bill_identifier"),
            unit("billIdentifier"),
            unit("ls"),
            Some(self.presearch_id.as_str()).filter(|s| !s.is_empty()),
        ]
        .into_iter()
        .flatten()
        .next()
        .unwrap_or("")
    }

    /// For the journal and ABillS's `paysys_log.info`.
    fn params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = [
            ("action", &self.action),
            ("id", &self.id),
            ("billIdentifier", &self.bill_identifier),
            ("presearchId", &self.presearch_id),
            ("TotalSum", &self.total_sum),
            ("CreateTime", &self.create_time),
            ("ConfirmTime", &self.confirm_time),
            ("CheckReference", &self.check_reference),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        out.extend(
            self.units
                .iter()
                .map(|(n, v)| (format!("Unit:{n}"), v.clone())),
        );
        out
    }
}

fn attribute(e: &BytesStart, name: &[u8]) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
        .unwrap_or_default()
}

/// The request's XML, read: the root `Transfer` (any namespace), its `Data`, and the few
/// elements a payment needs, wherever they nest.
fn read(request: &Request) -> Result<Transfer, Refusal> {
    let body = request
        .body
        .as_ref()
        .map_err(|e| Refusal::BadRequest(e.0.clone()))?;
    if body.is_empty() {
        return Err(Refusal::NoCommand(String::new()));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Refusal::BadRequest("the XML body is not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut t = Transfer::default();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut value = String::new();
    let bad = |e: quick_xml::Error| Refusal::BadRequest(format!("XML body: {e}"));
    loop {
        let event = reader.read_event().map_err(bad)?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.local_name().as_ref().to_vec();
            match (path.len(), name.as_slice()) {
                (0, b"Transfer") => t.action = attribute(&e, b"action"),
                (0, _) => {
                    return Err(Refusal::BadRequest(
                        "the XML body is not a <Transfer>".into(),
                    ))
                }
                (1, b"Data") => {
                    t.data_type = attribute(&e, b"type");
                    t.id = attribute(&e, b"id");
                    t.presearch_id = attribute(&e, b"presearchId");
                }
                (_, b"Unit") => t
                    .units
                    .push((attribute(&e, b"name"), attribute(&e, b"value"))),
                (_, b"PayerInfo") if t.bill_identifier.is_empty() => {
                    t.bill_identifier = attribute(&e, b"billIdentifier");
                }
                _ => {}
            }
            if path.len() > 16 || t.units.len() > 64 {
                return Err(Refusal::BadRequest(
                    "the XML body nests or repeats too much".into(),
                ));
            }
            if !empty {
                path.push(name);
                value.clear();
            }
            continue;
        }
        match event {
            Event::Text(x) => value.push_str(&x.unescape().map_err(bad)?),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let v = std::mem::take(&mut value).trim().to_string();
                match name.as_slice() {
                    b"TotalSum" if t.total_sum.is_empty() => t.total_sum = v,
                    b"CreateTime" if t.create_time.is_empty() => t.create_time = v,
                    b"ConfirmTime" if t.confirm_time.is_empty() => t.confirm_time = v,
                    b"CheckReference" if t.check_reference.is_empty() => t.check_reference = v,
                    _ => {}
                }
            }
            // No entities of its own: a DOCTYPE is how an XML bomb starts.
            Event::DocType(_) => {
                return Err(Refusal::BadRequest("a DOCTYPE in the XML body".into()))
            }
            Event::Eof if path.is_empty() && !t.action.is_empty() => break,
            Event::Eof => return Err(Refusal::BadRequest("the XML body ends early".into())),
            _ => {}
        }
    }
    Ok(t)
}

impl Protocol for Privat {
    fn secrets(&self) -> &'static [&'static str] {
        // Unsigned.
        &[]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Privat
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        if let Ok(t) = read(request) {
            echo.command = match t.action.as_str() {
                "Presearch" | "Search" | "Check" => "check".into(),
                "Pay" => "pay".into(),
                "Cancel" => "cancel".into(),
                other => other.to_string(),
            };
            echo.txn_id = t.id.clone();
            echo.account = t.account().to_string();
            echo.sum = t.total_sum.clone();
            echo.params = t.params();
            // The action as sent, for the answer's root.
            echo.params.insert(0, ("_action".into(), t.action.clone()));
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let t = read(request)?;
        let account = || -> Result<Account, Refusal> {
            match t.account() {
                "" => Err(Refusal::BadAccount(
                    "no billIdentifier in the request".into(),
                )),
                text => Account::parse_by(text, ctx.account).map_err(Refusal::BadAccount),
            }
        };
        // Some banks write the decimal comma.
        let sum = || -> Result<Amount, Refusal> {
            let text = t.total_sum.replace(',', ".");
            if text.is_empty() {
                return Err(Refusal::BadSum("TotalSum is missing".into()));
            }
            Amount::parse(&text).map_err(|e| match e {
                AmountError::TooLarge => Refusal::SumTooLarge(format!("TotalSum '{text}': {e}")),
                AmountError::Malformed(why) => Refusal::BadSum(format!("TotalSum '{text}': {why}")),
            })
        };
        let bank_id = || -> Result<TxnId, Refusal> {
            TxnId::parse_token(&t.id).map_err(|e| Refusal::BadTxnId(format!("Data@id: {e}")))
        };
        match t.action.as_str() {
            "Presearch" | "Search" => Ok(Command::Check(Check {
                txn_id: None,
                account: account()?,
                sum: None,
            })),
            "Check" => Ok(Command::Check(Check {
                txn_id: None,
                account: account()?,
                sum: if t.total_sum.is_empty() {
                    None
                } else {
                    Some(sum()?)
                },
            })),
            "Pay" => {
                let txn_id = bank_id()?;
                let account = account()?;
                let sum = sum()?;
                // The bank's time of the payment, in our zone; ours if it sends none.
                let stamp = [&t.confirm_time, &t.create_time]
                    .into_iter()
                    .find(|s| !s.is_empty());
                let txn_date = match stamp {
                    None => TxnDate::received(ctx.now),
                    Some(s) => DateTime::parse_from_rfc3339(s)
                        .map(|d| TxnDate::received(d.with_timezone(&Local).naive_local()))
                        .map_err(|e| Refusal::BadTxnDate(format!("'{s}': {e}")))?,
                };
                Ok(Command::Pay(Pay {
                    txn_id,
                    account,
                    sum,
                    txn_date,
                }))
            }
            "Cancel" => Ok(Command::Cancel(CancelOrder {
                prv_txn: None,
                txn_id: Some(bank_id()?),
                sum: None,
            })),
            other => Err(Refusal::NoCommand(other.to_string())),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let action = echo
            .params
            .iter()
            .find(|(k, _)| k == "_action")
            .map(|(_, v)| clean(v))
            .unwrap_or_default();
        let mut xml = String::with_capacity(512);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str(
            "<Transfer xmlns=\"http://debt.privatbank.ua/Transfer\" interface=\"Debt\" action=\"",
        );
        xml.push_str(&attr(&action));
        xml.push_str("\"><Data xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ");
        let (result, comment) = match (error(outcome), outcome) {
            (Some((code, message)), _) => {
                xml.push_str(&format!("xsi:type=\"ErrorInfo\" code=\"{code}\"><Message>"));
                xml.push_str(&attr(message));
                xml.push_str("</Message></Data>");
                (code.to_string(), message)
            }
            (None, Outcome::Checked { subscriber, .. }) if action == "Presearch" => {
                xml.push_str("xsi:type=\"PayersTable\"><Headers><Header name=\"fio\"/><Header name=\"ls\"/></Headers><Columns><Column><Element>");
                xml.push_str(&attr(&clean_long(&subscriber.name)));
                xml.push_str("</Element></Column><Column><Element>");
                xml.push_str(&attr(&clean(&echo.account)));
                xml.push_str("</Element></Column></Columns></Data>");
                ("0".to_string(), "OK")
            }
            (None, Outcome::Checked { subscriber, .. }) if action == "Search" => {
                let account = attr(&clean(&echo.account));
                let balance = subscriber.balance.unwrap_or(Amount::from_kopecks(0));
                // ABillS's convention: what to pay is the debt, negative when in credit.
                let to_pay = Amount::from_kopecks(-balance.kopecks());
                xml.push_str(&format!(
                    "xsi:type=\"DebtPack\" billPeriod=\"{}\"><PayerInfo billIdentifier=\"{account}\" ls=\"{account}\"><Fio>",
                    Local::now().format("%Y%m")
                ));
                xml.push_str(&attr(&clean_long(&subscriber.name)));
                xml.push_str(&format!(
                    "</Fio></PayerInfo><ServiceGroup><DebtService serviceCode=\"1\"><CompanyInfo><CompanyCode>1</CompanyCode></CompanyInfo>\
                     <DebtInfo amountToPay=\"{to_pay}\" debt=\"{to_pay}\"><Balance>{balance}</Balance></DebtInfo>\
                     <PayerInfo billIdentifier=\"{account}\" ls=\"{account}\"/></DebtService></ServiceGroup></Data>"
                ));
                ("0".to_string(), "OK")
            }
            (None, _) => {
                let reference = match outcome {
                    Outcome::Checked { subscriber, .. } => subscriber.id,
                    other => other.prv_txn().unwrap_or(0),
                };
                xml.push_str(&format!("xsi:type=\"Gateway\" reference=\"{reference}\"/>"));
                ("0".to_string(), "OK")
            }
        };
        xml.push_str("</Transfer>\n");
        // The log keeps the code and the message as answered.
        let comment = if result == "0" {
            "OK".to_string()
        } else {
            comment.to_string()
        };
        Reply::xml(xml, outcome, result, comment)
    }
}

/// Text for an attribute or element: `&`, `<`, `>` and quotes escaped.
fn attr(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> Request {
        crate::protocol::testing::post("text/xml", body)
    }
    use crate::domain::{AccountKey, AccountRule};
    use crate::outcome::Subscriber;
    use chrono::NaiveDateTime;

    fn parse(body: &str) -> Result<Command, Refusal> {
        let rule = AccountRule::new(AccountKey::Id);
        let now = NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap();
        let ctx = ParseContext {
            account: &rule,
            now,
            test: false,
            sign: None,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        Privat.parse(&post(body), &ctx)
    }

    const NS: &str = "xmlns=\"http://debt.privatbank.ua/Transfer\"";
    const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";

    fn search(ns: &str) -> String {
        format!(
            "<Transfer action=\"Search\" interface=\"Debt\" {ns}><Data {XSI} xsi:type=\"Payer\">\
             <Unit name=\"billIdentifier\" value=\"5907\"/></Data></Transfer>"
        )
    }

    fn pay(id: &str, sum: &str) -> String {
        format!(
            "<Transfer interface=\"Debt\" action=\"Pay\" {NS}><Data {XSI} xsi:type=\"Payment\" id=\"{id}\" number=\"12432\">\
             <CompanyInfo><CheckReference>987456321</CheckReference></CompanyInfo>\
             <PayerInfo billIdentifier=\"5907\"><Fio>Ivanov</Fio></PayerInfo><TotalSum>{sum}</TotalSum>\
             <CreateTime>2026-11-22T09:00:00.001+02:00</CreateTime><ConfirmTime>2026-11-22T09:30:04.120+02:00</ConfirmTime>\
             </Data></Transfer>"
        )
    }

    #[test]
    fn requests_parse_with_or_without_the_namespace() {
        for ns in [NS, ""] {
            let Ok(Command::Check(c)) = parse(&search(ns)) else {
                panic!("{ns}")
            };
            assert_eq!(c.account.as_str(), "5907");
        }
        let presearch = format!(
            "<Transfer action=\"Search\" interface=\"Debt\"><Data {XSI} xsi:type=\"Payer\" presearchId=\"5907\"/></Transfer>"
        );
        assert!(matches!(parse(&presearch), Ok(Command::Check(_))));
        let Ok(Command::Pay(p)) = parse(&pay("P-77", "10,50")) else {
            panic!()
        };
        assert_eq!(
            (p.txn_id.as_str(), p.sum),
            ("P-77", Amount::from_kopecks(1050))
        );
        let cancel = format!(
            "<Transfer interface=\"Debt\" action=\"Cancel\"><Data {XSI} xsi:type=\"Payment\" id=\"P-77\"><TotalSum>10.50</TotalSum></Data></Transfer>"
        );
        let Ok(Command::Cancel(c)) = parse(&cancel) else {
            panic!()
        };
        assert_eq!(c.txn_id.unwrap().as_str(), "P-77");
    }

    #[test]
    fn bad_requests_get_error_codes() {
        let table: &[(&str, u16)] = &[
            ("", 1),
            (
                "<Transfer interface=\"Debt\" action=\"Upload\"><Data/></Transfer>",
                1,
            ),
            ("<Other/>", 99),
            (
                "<!DOCTYPE x [<!ENTITY a \"b\">]><Transfer action=\"Search\"><Data/></Transfer>",
                99,
            ),
            ("<Transfer action=\"Search\"><Data>", 99),
            (
                "<Transfer action=\"Search\" interface=\"Debt\"><Data/></Transfer>",
                2,
            ),
        ];
        for (body, want) in table {
            let r = parse(body).unwrap_err();
            assert_eq!(
                error(&Outcome::Refused(r.clone())).unwrap().0,
                *want,
                "{body}: {r:?}"
            );
        }
        assert_eq!(
            error(&Outcome::Refused(parse(&pay("P-1", "abc")).unwrap_err()))
                .unwrap()
                .0,
            3
        );
        assert_eq!(
            error(&Outcome::Refused(parse(&pay("", "1")).unwrap_err()))
                .unwrap()
                .0,
            99
        );
        let bad_time = pay("P-1", "1").replace("2026-11-22T09:30:04.120+02:00", "yesterday");
        assert_eq!(
            error(&Outcome::Refused(parse(&bad_time).unwrap_err()))
                .unwrap()
                .0,
            4
        );
    }

    #[test]
    fn answers_are_transfers() {
        let echo = Privat.echo(&post(&search(NS)));
        let found = Privat.render(
            &echo,
            &Outcome::Checked {
                subscriber: Subscriber {
                    id: 5907,
                    name: "Ив*** И***".into(),
                    balance: Some(Amount::from_kopecks(-691000)),
                    group: None,
                    account: None,
                },
                sum: None,
                limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
            },
        );
        let body = &found.response.body;
        for part in [
            "action=\"Search\"",
            "xsi:type=\"DebtPack\"",
            "<PayerInfo billIdentifier=\"5907\" ls=\"5907\"><Fio>Ив*** И***</Fio></PayerInfo>",
            "<DebtInfo amountToPay=\"6910.00\" debt=\"6910.00\"><Balance>-6910.00</Balance></DebtInfo>",
        ] {
            assert!(body.contains(part), "{part} in {body}");
        }
        let echo = Privat.echo(&post(&pay("P-77", "10.50")));
        let paid = Privat.render(
            &echo,
            &Outcome::Paid {
                prv_txn: 42,
                sum: Amount::from_kopecks(1050),
                repeat: true,
            },
        );
        assert!(paid.response.body.contains(
            "action=\"Pay\"><Data xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Gateway\" reference=\"42\"/></Transfer>"
        ), "{}", paid.response.body);
        let refused = Privat.render(&echo, &Outcome::Refused(Refusal::NoSuchSubscriber));
        assert!(refused
            .response
            .body
            .contains("xsi:type=\"ErrorInfo\" code=\"2\"><Message>"));
        assert_eq!(refused.result, "2");
    }
}
