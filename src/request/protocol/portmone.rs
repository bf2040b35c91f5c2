//! Portmone's "bills" protocol, as Ukrainian bank apps speak it through Portmone
//! (`../shared/PROTOCOLS.md`, section 10; ABillS's `t/Portmone.t`).
//!
//! Every request is a form POST whose field `data` holds an XML document:
//!
//! * `<REQUESTS><PAYEE>…</PAYEE><PAYER><CONTRACT_NUMBER>…</CONTRACT_NUMBER></PAYER>…`: which
//!   of these payers (several at once) may be paid. Answered `<RESPONSE><BILLS>` with the
//!   `PAYEE` echoed, `BILL_PERIOD` (`MMYY`) and one `<BILL>` per payer found — its
//!   `CONTRACT_NUMBER` as sent, `BILL_DATE`, `BILL_NUMBER`, `AMOUNT` (what is due) and
//!   `DEBT` (the balance with the sign turned: negative is money ahead). A payer not found
//!   is left out; none found is `ERROR_CODE` 15.
//! * `<BILLS><BILL>` with `STATUS` `PAYED`: the notice of a payment. `BILL_ID` (Portmone's
//!   id of the payment) is the transaction id, credited once; `PAYED_AMOUNT` is credited to
//!   `PAYER/CONTRACT_NUMBER`. A negative `PAYED_AMOUNT` (ABillS's test) reverses the
//!   payment with that `BILL_ID`.
//!
//! `<PAY_ORDERS>`, the listing of the bills one settlement transfer carries, credits
//! nothing and is answered 2 here; saved as a file, [`pay_orders`] reads it as the registry
//! of `paysys reconcile`.
//!
//! Notices and refusals are answered `<RESULT><ERROR_CODE>…</ERROR_CODE><REASON>…</REASON>
//! </RESULT>`: 0 done (a repeat too), 15 payer not found, the others ours ([`code`]). Our
//! temporary faults answer `ERROR_CODE` 1 with HTTP 503, so that Portmone sends the notice
//! again. No signature: Portmone's addresses are the only credential, which is why the
//! config refuses a Portmone system without an allow list.

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::cgi::Request;
use crate::config::ProtocolKind;
use crate::domain::{Account, Amount, AmountError, TxnDate, TxnId};
use crate::outcome::{CancelOrder, Command, Echo, Lookup, Outcome, Pay, Refusal};
use crate::protocol::osmp::{clean, push_element};
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Portmone;

/// The most payers one check may ask about, and bills one document may hold.
pub const MAX_PAYERS: usize = 50;

/// `ERROR_CODE` and `REASON` for every way a request can end (a check that found payers
/// has no code: it is answered with their bills).
pub fn code(outcome: &Outcome) -> (u16, &'static str) {
    match outcome {
        Outcome::Paid { .. } | Outcome::Cancelled { .. } => (0, "OK"),
        Outcome::LookedUp { payers, .. } if !payers.is_empty() => (0, "OK"),
        Outcome::LookedUp { .. } => (15, "Платника не знайдено"),
        Outcome::Refused(refusal) => match refusal {
            Refusal::NoSuchSubscriber | Refusal::BadAccount(_) => (15, "Платника не знайдено"),
            Refusal::NoCommand(_)
            | Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadTxnDate(_)
            | Refusal::TxnDateOutOfWindow { .. }
            | Refusal::BadDomain(_)
            | Refusal::BadSignature(_) => (2, "Невірний запит"),
            Refusal::BadSum(_)
            | Refusal::SumTooLarge(_)
            | Refusal::SumBelowMin { .. }
            | Refusal::SumAboveMax { .. } => (3, "Невірна сума"),
            Refusal::AccountInactive | Refusal::PaymentsDisabled | Refusal::HookRefused(_) => {
                (16, "Оплата для платника неможлива")
            }
            Refusal::Conflict { .. } | Refusal::PaidThenCancelled { .. } => {
                (17, "BILL_ID вже оплачено з іншими даними")
            }
            Refusal::UnknownTxn | Refusal::CancelUnknown(_) | Refusal::CancelNotSupported(_) => {
                (18, "Платіж не знайдено")
            }
            Refusal::CallerNotAllowed => (20, "Доступ з цієї адреси заборонено"),
            // No bill to credit (ABillS): the admin gives the subscriber one, and the notice
            // sent again is credited.
            Refusal::NoBill => (1, "Тимчасова помилка, повторіть пізніше"),
        },
        Outcome::Checked { .. }
        | Outcome::Found { .. }
        | Outcome::Listed(_)
        | Outcome::Booked { .. }
        | Outcome::Noted { .. } => (2, "Невірний запит"),
        Outcome::Failed(_) => (1, "Тимчасова помилка, повторіть пізніше"),
    }
}

/// One `<BILL>` of a notice, its texts as sent (trimmed).
#[derive(Debug, Default, Clone)]
struct Bill {
    bill_id: String,
    bill_number: String,
    pay_date: String,
    pay_time: String,
    amount: String,
    commission: String,
    auth_code: String,
    contract: String,
    status: String,
}

/// What a request's `data` says.
#[derive(Debug, Default, Clone)]
struct Doc {
    /// The root element's name: `REQUESTS`, `BILLS`, …
    root: String,
    payee: String,
    /// `REQUESTS/PAYER/CONTRACT_NUMBER`, in order.
    payers: Vec<String>,
    bills: Vec<Bill>,
}

impl Doc {
    fn command(&self) -> &'static str {
        match self.root.as_str() {
            "REQUESTS" => "check",
            "BILLS"
                if self
                    .bills
                    .first()
                    .is_some_and(|b| b.amount.starts_with('-')) =>
            {
                "cancel"
            }
            "BILLS" => "pay",
            _ => "",
        }
    }

    /// For the journal and ABillS's `paysys_log.info`.
    fn params(&self) -> Vec<(String, String)> {
        let mut out = vec![("_root".to_string(), self.root.clone())];
        if !self.payee.is_empty() {
            out.push(("PAYEE".into(), self.payee.clone()));
        }
        out.extend(
            self.payers
                .iter()
                .map(|p| ("CONTRACT_NUMBER".to_string(), p.clone())),
        );
        for b in &self.bills {
            out.extend(
                [
                    ("BILL_ID", &b.bill_id),
                    ("BILL_NUMBER", &b.bill_number),
                    ("PAY_DATE", &b.pay_date),
                    ("PAY_TIME", &b.pay_time),
                    ("PAYED_AMOUNT", &b.amount),
                    ("PAYED_COMMISSION", &b.commission),
                    ("AUTH_CODE", &b.auth_code),
                    ("CONTRACT_NUMBER", &b.contract),
                    ("STATUS", &b.status),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.clone())),
            );
        }
        out
    }
}

/// The `data` field's XML, read: the root, and the few elements a check or a notice
/// needs, where the protocol puts them.
fn read(request: &Request) -> Result<Doc, Refusal> {
    let form = request.form().map_err(|e| Refusal::BadRequest(e.0))?;
    let text = match form.get("data").map_err(|e| Refusal::BadRequest(e.0))? {
        None | Some("") => return Err(Refusal::NoCommand(String::new())),
        Some(text) => text,
    };
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut doc = Doc::default();
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let bad = |e: quick_xml::Error| Refusal::BadRequest(format!("data: {e}"));
    let too_many = || {
        Refusal::BadRequest(format!(
            "data: more than {MAX_PAYERS} payers or bills, or nested too deep"
        ))
    };
    loop {
        match reader.read_event().map_err(bad)? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if !doc.root.is_empty() {
                        return Err(Refusal::BadRequest("data: more than one root".into()));
                    }
                    doc.root = name.clone();
                }
                if path.len() == 1 && doc.root == "BILLS" && name == "BILL" {
                    doc.bills.push(Bill::default());
                }
                path.push(name);
                value.clear();
                if path.len() > 16 || doc.bills.len() > MAX_PAYERS {
                    return Err(too_many());
                }
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if !doc.root.is_empty() {
                        return Err(Refusal::BadRequest("data: more than one root".into()));
                    }
                    doc.root = name;
                } else if path.len() == 1 && doc.root == "BILLS" && name == "BILL" {
                    // An empty bill is a bill all the same: a notice of two is refused.
                    doc.bills.push(Bill::default());
                    if doc.bills.len() > MAX_PAYERS {
                        return Err(too_many());
                    }
                }
            }
            Event::Text(t) => value.push_str(&t.unescape().map_err(bad)?),
            Event::CData(t) => value.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let v = std::mem::take(&mut value).trim().to_string();
                let parents: Vec<&str> = path.iter().map(String::as_str).collect();
                match parents.as_slice() {
                    ["REQUESTS", "PAYEE"] => doc.payee = v,
                    ["REQUESTS", "PAYER", "CONTRACT_NUMBER"] => {
                        doc.payers.push(v);
                        if doc.payers.len() > MAX_PAYERS {
                            return Err(too_many());
                        }
                    }
                    ["BILLS", "BILL", field] => {
                        if let Some(b) = doc.bills.last_mut() {
                            let slot = match *field {
                                "BILL_ID" => Some(&mut b.bill_id),
                                "BILL_NUMBER" => Some(&mut b.bill_number),
                                "PAY_DATE" => Some(&mut b.pay_date),
                                "PAY_TIME" => Some(&mut b.pay_time),
                                "PAYED_AMOUNT" => Some(&mut b.amount),
                                "PAYED_COMMISSION" => Some(&mut b.commission),
                                "AUTH_CODE" => Some(&mut b.auth_code),
                                "STATUS" => Some(&mut b.status),
                                _ => None,
                            };
                            if let Some(slot) = slot {
                                *slot = v;
                            }
                        }
                    }
                    ["BILLS", "BILL", "PAYER", "CONTRACT_NUMBER"] => {
                        if let Some(b) = doc.bills.last_mut() {
                            b.contract = v;
                        }
                    }
                    _ => {}
                }
                value.clear();
                path.pop();
            }
            // No entities of its own: a DOCTYPE is how an XML bomb starts.
            Event::DocType(_) => return Err(Refusal::BadRequest("data: a DOCTYPE".into())),
            Event::Eof if path.is_empty() && !doc.root.is_empty() => break,
            Event::Eof => return Err(Refusal::BadRequest("data: the XML ends early".into())),
            _ => {}
        }
    }
    Ok(doc)
}

/// One bill of a `<PAY_ORDERS>` settlement listing, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The document's line the `<BILL>` starts on.
    pub line: u64,
    /// `PAY_ORDER_ID` of the transfer that settled it.
    pub order: String,
    pub bill_id: String,
    pub amount: String,
    pub pay_date: String,
    pub contract: String,
}

/// The bills of a `<PAY_ORDERS>` document — Portmone's listing of the payments one
/// settlement transfer carries — for `paysys reconcile`. The text may also be the form it
/// was posted as (`data=…`). Nothing here moves money.
pub fn pay_orders(text: &str) -> Result<Vec<Settled>, String> {
    let decoded;
    let text = match text.trim_start_matches('\u{feff}').trim_start() {
        t if t.starts_with("data=") => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(t.trim_end())
                .map_err(|e| format!("the data= form cannot be read: {e}"))?;
            decoded = pairs
                .into_iter()
                .find(|(k, _)| k == "data")
                .map(|(_, v)| v)
                .unwrap_or_default();
            decoded.as_str()
        }
        t => t,
    };
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut order = String::new();
    let mut bills: Vec<Settled> = Vec::new();
    let mut rooted = false;
    let line_at = |pos: u64| -> u64 {
        let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
        1 + text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
    };
    loop {
        let at = reader.buffer_position();
        match reader
            .read_event()
            .map_err(|e| format!("line {}: {e}", line_at(at)))?
        {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != "PAY_ORDERS" || rooted {
                        return Err(format!("<{name}> is not a <PAY_ORDERS> document"));
                    }
                    rooted = true;
                }
                if path.len() == 1 && name == "PAY_ORDER" {
                    order.clear();
                }
                path.push(name);
                if path.len() == 4 && path[3] == "BILL" {
                    bills.push(Settled {
                        line: line_at(at),
                        order: order.clone(),
                        bill_id: String::new(),
                        amount: String::new(),
                        pay_date: String::new(),
                        contract: String::new(),
                    });
                }
                if path.len() > 16 {
                    return Err(format!("line {}: nested too deep", line_at(at)));
                }
                value.clear();
            }
            Event::Text(t) => value.push_str(&t.unescape().map_err(|e| e.to_string())?),
            Event::CData(t) => value.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let v = std::mem::take(&mut value).trim().to_string();
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match names.as_slice() {
                    ["PAY_ORDERS", "PAY_ORDER", "PAY_ORDER_ID"] => order = v,
                    ["PAY_ORDERS", "PAY_ORDER", "BILLS", "BILL", field] => {
                        if let Some(b) = bills.last_mut() {
                            match *field {
                                "BILL_ID" => b.bill_id = v,
                                "PAYED_AMOUNT" => b.amount = v,
                                "PAY_DATE" => b.pay_date = v,
                                _ => {}
                            }
                        }
                    }
                    ["PAY_ORDERS", "PAY_ORDER", "BILLS", "BILL", "PAYER", "CONTRACT_NUMBER"] => {
                        if let Some(b) = bills.last_mut() {
                            b.contract = v;
                        }
                    }
                    _ => {}
                }
                path.pop();
            }
            Event::Empty(e) if path.is_empty() => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name != "PAY_ORDERS" {
                    return Err(format!("<{name}/> is not a <PAY_ORDERS> document"));
                }
                rooted = true;
            }
            Event::DocType(_) => return Err("a DOCTYPE: not Portmone's listing".into()),
            Event::Eof if path.is_empty() && rooted => break,
            Event::Eof if path.is_empty() => return Err("no <PAY_ORDERS> in it".into()),
            Event::Eof => return Err("the document ends early".into()),
            _ => {}
        }
    }
    Ok(bills)
}

fn amount(text: &str) -> Result<Amount, Refusal> {
    if text.is_empty() {
        return Err(Refusal::BadSum("PAYED_AMOUNT is missing".into()));
    }
    Amount::parse(text).map_err(|e| match e {
        AmountError::TooLarge => Refusal::SumTooLarge(format!("PAYED_AMOUNT '{text}': {e}")),
        AmountError::Malformed(why) => Refusal::BadSum(format!("PAYED_AMOUNT '{text}': {why}")),
    })
}

impl Protocol for Portmone {
    fn secrets(&self) -> &'static [&'static str] {
        // No signature; the notice's masked card number stays out of the history all the
        // same.
        &["CARD_MASK"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Portmone
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        if let Ok(doc) = read(request) {
            echo.command = doc.command().to_string();
            if let Some(b) = doc.bills.first() {
                echo.txn_id = b.bill_id.clone();
                echo.account = b.contract.clone();
                echo.sum = b.amount.clone();
            } else if let Some(p) = doc.payers.first() {
                echo.account = p.clone();
            }
            echo.params = doc.params();
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        let doc = read(request)?;
        match doc.root.as_str() {
            "REQUESTS" => {
                if doc.payers.is_empty() {
                    return Err(Refusal::BadAccount(
                        "no PAYER/CONTRACT_NUMBER in the request".into(),
                    ));
                }
                Ok(Command::Lookup(Lookup {
                    payers: doc
                        .payers
                        .iter()
                        .map(|p| (p.clone(), Account::parse_by(p, ctx.account).ok()))
                        .collect(),
                    date: ctx.now.date(),
                }))
            }
            "BILLS" => {
                let [bill] = doc.bills.as_slice() else {
                    return Err(Refusal::BadRequest(format!(
                        "a notice of {} bills: one BILL per notice",
                        doc.bills.len()
                    )));
                };
                if bill.status != "PAYED" {
                    return Err(Refusal::BadRequest(format!(
                        "STATUS '{}': only a PAYED bill is credited",
                        bill.status
                    )));
                }
                let txn_id = TxnId::parse_token(&bill.bill_id)
                    .map_err(|e| Refusal::BadTxnId(format!("BILL_ID: {e}")))?;
                if let Some(reversed) = bill.amount.strip_prefix('-') {
                    // ABillS's test cancels with the payment's own notice, its sum negative.
                    return Ok(Command::Cancel(CancelOrder {
                        prv_txn: None,
                        txn_id: Some(txn_id),
                        sum: Some(amount(reversed)?),
                    }));
                }
                let account = match bill.contract.as_str() {
                    "" => {
                        return Err(Refusal::BadAccount(
                            "no PAYER/CONTRACT_NUMBER in the BILL".into(),
                        ))
                    }
                    text => Account::parse_by(text, ctx.account).map_err(Refusal::BadAccount)?,
                };
                Ok(Command::Pay(Pay {
                    txn_id,
                    account,
                    sum: amount(&bill.amount)?,
                    // PAY_DATE is a day (PAY_TIME not always sent): the notice is dated when
                    // it reached us, and the window does not apply.
                    txn_date: TxnDate::received(ctx.now),
                }))
            }
            other => Err(Refusal::NoCommand(other.to_string())),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        let (result, reason) = code(outcome);
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        match outcome {
            Outcome::LookedUp { date, payers } if !payers.is_empty() => {
                let period = date.format("%m%y").to_string();
                let payee = echo
                    .params
                    .iter()
                    .find(|(k, _)| k == "PAYEE")
                    .map(|(_, v)| clean(v))
                    .unwrap_or_default();
                xml.push_str("<RESPONSE><BILLS>");
                push_element(&mut xml, "PAYEE", &payee);
                push_element(&mut xml, "BILL_PERIOD", &period);
                for p in payers {
                    let debt = p
                        .subscriber
                        .balance
                        .map(|b| Amount::from_kopecks(b.kopecks().saturating_neg()))
                        .unwrap_or(Amount::from_kopecks(0));
                    let due = Amount::from_kopecks(debt.kopecks().max(0));
                    xml.push_str("<BILL><PAYER>");
                    push_element(&mut xml, "CONTRACT_NUMBER", &clean(&p.sent));
                    xml.push_str("</PAYER>");
                    push_element(&mut xml, "BILL_DATE", &date.format("%Y-%m-%d").to_string());
                    push_element(
                        &mut xml,
                        "BILL_NUMBER",
                        &format!("{}-{period}", p.subscriber.id),
                    );
                    push_element(&mut xml, "AMOUNT", &due.to_string());
                    push_element(&mut xml, "DEBT", &debt.to_string());
                    xml.push_str("</BILL>");
                }
                xml.push_str("</BILLS></RESPONSE>\n");
            }
            _ => {
                xml.push_str("<RESULT>");
                push_element(&mut xml, "ERROR_CODE", &result.to_string());
                xml.push_str("<REASON>");
                xml.push_str(&escape(reason));
                xml.push_str("</REASON></RESULT>\n");
            }
        }
        let mut reply = Reply::xml(xml, outcome, result.to_string(), reason.to_string());
        // Portmone's retry is ours to ask for: a fault is not an answer to its notice.
        if result == 1 {
            reply.response.status = 503;
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountKey, AccountRule};
    use crate::outcome::{Fault, Payer, Subscriber};
    use crate::protocol::testing::post;
    use chrono::NaiveDateTime;

    fn now() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap()
    }

    fn request(xml: &str) -> Request {
        let body = serde_urlencoded::to_string([("data", xml)]).unwrap();
        post("application/x-www-form-urlencoded", &body)
    }

    fn parse(xml: &str) -> Result<Command, Refusal> {
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
        Portmone.parse(&request(xml), &ctx)
    }

    fn bill(id: &str, amount: &str, contract: &str, status: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BILLS><BILL><BANK><NAME>Ощадбанк</NAME>\
             <CODE>399999</CODE></BANK><BILL_ID>{id}</BILL_ID><BILL_NUMBER>42</BILL_NUMBER>\
             <PAY_DATE>2026-11-22</PAY_DATE><PAYED_AMOUNT>{amount}</PAYED_AMOUNT>\
             <PAYED_COMMISSION>0.00</PAYED_COMMISSION><AUTH_CODE>TESTPM</AUTH_CODE><PAYER>\
             <CONTRACT_NUMBER>{contract}</CONTRACT_NUMBER></PAYER><PAYEE><NAME>ISP</NAME>\
             <CODE>30098</CODE></PAYEE><STATUS>{status}</STATUS></BILL></BILLS>"
        )
    }

    #[test]
    fn requests_parse_like_abills_tests() {
        let Ok(Command::Lookup(l)) = parse(
            "<REQUESTS><PAYEE>7</PAYEE><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER>\
             </PAYER><PAYER><CONTRACT_NUMBER>test2</CONTRACT_NUMBER></PAYER><PAYER>\
             <CONTRACT_NUMBER></CONTRACT_NUMBER></PAYER></REQUESTS>",
        ) else {
            panic!()
        };
        assert_eq!(l.payers.len(), 3);
        assert!(l.payers[0].1.is_some() && l.payers[2].1.is_none());
        assert_eq!(l.date.to_string(), "2026-11-22");
        let Ok(Command::Pay(p)) = parse(&bill("966666666", "10.50", "test1", "PAYED")) else {
            panic!()
        };
        assert_eq!(
            (p.txn_id.as_str(), p.sum.kopecks(), p.account.as_str()),
            ("966666666", 1050, "test1")
        );
        let Ok(Command::Cancel(c)) = parse(&bill("966666666", "-10.50", "test1", "PAYED")) else {
            panic!()
        };
        assert_eq!(c.txn_id.unwrap().as_str(), "966666666");
        let table: &[(&str, u16)] = &[
            ("", 2),
            ("<PAY_ORDERS/>", 2),
            ("<REQUESTS><PAYEE>7</PAYEE></REQUESTS>", 15),
            ("<BILLS></BILLS>", 2),
            ("<REQUESTS><PAYER>", 2),
            ("<!DOCTYPE x [<!ENTITY a \"a\">]><REQUESTS/>", 2),
        ];
        for (xml, want) in table {
            let r = parse(xml).unwrap_err();
            assert_eq!(code(&Outcome::Refused(r.clone())).0, *want, "{xml}: {r:?}");
        }
        for (amount, status, want) in [
            ("1e3", "PAYED", 3),
            ("10.001", "PAYED", 3),
            ("-5x", "PAYED", 3),
            ("", "PAYED", 3),
            ("99999999999999999999", "PAYED", 3),
            ("10", "CANCELED", 2),
        ] {
            let r = parse(&bill("1", amount, "test1", status)).unwrap_err();
            assert_eq!(code(&Outcome::Refused(r)).0, want, "{amount} {status}");
        }
        let r = parse(&bill("a b", "1", "test1", "PAYED")).unwrap_err();
        assert!(matches!(r, Refusal::BadTxnId(_)), "{r:?}");
        let two = bill("1", "1", "test1", "PAYED").replace("</BILLS>", "<BILL/></BILLS>");
        assert!(matches!(parse(&two), Err(Refusal::BadRequest(_))));
        let many = format!(
            "<REQUESTS>{}</REQUESTS>",
            "<PAYER><CONTRACT_NUMBER>1</CONTRACT_NUMBER></PAYER>".repeat(MAX_PAYERS + 1)
        );
        assert!(matches!(parse(&many), Err(Refusal::BadRequest(_))));
    }

    #[test]
    fn pay_orders_list_their_bills() {
        let doc = "<?xml version=\"1.0\"?>\n<PAY_ORDERS>\n<PAY_ORDER><PAY_ORDER_ID>12345</PAY_ORDER_ID>\
                   <PAY_ORDER_AMOUNT>5</PAY_ORDER_AMOUNT><BILLS>\n<BILL><BILL_ID>1</BILL_ID>\
                   <PAY_DATE>2024-08-09</PAY_DATE><PAYED_AMOUNT>3</PAYED_AMOUNT><PAYER>\
                   <CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER></BILL>\n<BILL><BILL_ID>2\
                   </BILL_ID><PAYED_AMOUNT>2</PAYED_AMOUNT></BILL></BILLS></PAY_ORDER>\n</PAY_ORDERS>";
        let bills = pay_orders(doc).unwrap();
        assert_eq!(bills.len(), 2);
        assert_eq!(
            (
                bills[0].line,
                bills[0].order.as_str(),
                bills[0].bill_id.as_str(),
                bills[0].amount.as_str(),
                bills[0].pay_date.as_str(),
                bills[0].contract.as_str()
            ),
            (4, "12345", "1", "3", "2024-08-09", "test1")
        );
        assert_eq!((bills[1].line, bills[1].bill_id.as_str()), (5, "2"));
        let form = serde_urlencoded::to_string([("data", doc)]).unwrap();
        assert_eq!(pay_orders(&form).unwrap(), bills);
        assert!(pay_orders("<BILLS/>").is_err());
        assert!(pay_orders("<PAY_ORDERS><PAY_ORDER>").is_err());
    }

    #[test]
    fn answers_are_bills_or_results() {
        let echo = Portmone.echo(&request(
            "<REQUESTS><PAYEE>a&amp;b</PAYEE><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER>\
             </PAYER></REQUESTS>",
        ));
        assert_eq!(echo.command, "check");
        let found = Portmone.render(
            &echo,
            &Outcome::LookedUp {
                date: now().date(),
                payers: vec![Payer {
                    sent: "test1".into(),
                    subscriber: Subscriber {
                        id: 7,
                        name: "x".into(),
                        balance: Some(Amount::from_kopecks(-1250)),
                        group: None,
                        account: None,
                    },
                }],
            },
        );
        assert_eq!(
            found.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RESPONSE><BILLS><PAYEE>a&amp;b</PAYEE>\
             <BILL_PERIOD>1126</BILL_PERIOD><BILL><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER>\
             </PAYER><BILL_DATE>2026-11-22</BILL_DATE><BILL_NUMBER>7-1126</BILL_NUMBER>\
             <AMOUNT>12.50</AMOUNT><DEBT>12.50</DEBT></BILL></BILLS></RESPONSE>\n"
        );
        let none = Portmone.render(
            &echo,
            &Outcome::LookedUp {
                date: now().date(),
                payers: vec![],
            },
        );
        assert!(none
            .response
            .body
            .contains("<RESULT><ERROR_CODE>15</ERROR_CODE>"));
        let pay = Portmone.echo(&request(&bill("9", "10.50", "test1", "PAYED")));
        assert_eq!(
            (pay.command.as_str(), pay.txn_id.as_str(), pay.sum.as_str()),
            ("pay", "9", "10.50")
        );
        let paid = Portmone.render(
            &pay,
            &Outcome::Paid {
                prv_txn: 3,
                sum: Amount::from_kopecks(1050),
                repeat: true,
            },
        );
        assert_eq!(
            paid.response.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RESULT><ERROR_CODE>0</ERROR_CODE>\
             <REASON>OK</REASON></RESULT>\n"
        );
        let failed = Portmone.render(&pay, &Outcome::Failed(Fault::DatabaseWrite("x".into())));
        assert_eq!(failed.response.status, 503);
        assert!(failed.response.body.contains("<ERROR_CODE>1</ERROR_CODE>"));
    }
}
