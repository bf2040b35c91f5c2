//! PrivatBank's Autoclient API ("Автоклієнт", Privat24 for business): one page of
//! `GET /api/statements/transactions` (or `…/transactions/interim`, today's operations
//! before the day is closed). `../shared/PROTOCOLS.md` §9 has the request.
//!
//! An answer is one page:
//!
//! ```json
//! {"status":"SUCCESS","type":"transactions","exist_next_page":true,"next_page_id":"…",
//!  "transactions":[{"REF":"…","REFN":"1","SUM":"100.00","CCY":"UAH","TRANTYPE":"C", …}]}
//! ```
//!
//! and the next one is asked for with `followId=<next_page_id>` while `exist_next_page` is
//! true. Every value in a transaction is a string (`"SUM":"100.00"`); a number is read the
//! same way, from its exact text, never through a float. The API is documented as UTF-8;
//! clients report Windows-1251 bodies too, so a body that is not UTF-8 is read as
//! Windows-1251 (the JSON syntax is ASCII in both).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    account, clip, currency, parse_date_time, parse_sum, parse_time, payer_code, DecimalMark,
    Direction, Error, Format, RowError, RowId, StatementRow,
};
use crate::card::scalar_text;
use crate::cp1251;

const F: Format = Format::Privat;

/// The largest page we read. A page of 500 rows (the API's largest `limit`) is well under
/// a megabyte.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One page of the answer: its rows, and whether and how to ask for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// In the bank's order; a row that cannot be read is a [`RowError`] in its place.
    pub rows: Vec<Result<StatementRow, RowError>>,
    /// `exist_next_page`: there is another page to fetch.
    pub exist_next_page: bool,
    /// `next_page_id`: pass it as `followId` to get the next page. Always `Some` when
    /// `exist_next_page` is true (a page that says there is more but not how to get it is
    /// refused, or the importer would stop half way thinking it had everything).
    pub next_page_id: Option<String>,
}

#[derive(Deserialize)]
struct PageWire {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    exist_next_page: Option<Box<RawValue>>,
    next_page_id: Option<Box<RawValue>>,
    transactions: Option<Vec<Box<RawValue>>>,
    message: Option<Box<RawValue>>,
    code: Option<Box<RawValue>>,
}

/// One transaction. Unknown keys (`SUM_E`, `FL_DC`, `AUT_CNTR_MFO`, …) are ignored.
#[derive(Deserialize)]
#[allow(non_snake_case)]
struct TxWire {
    ID: Option<Box<RawValue>>,
    REF: Option<Box<RawValue>>,
    REFN: Option<Box<RawValue>>,
    SUM: Option<Box<RawValue>>,
    CCY: Option<Box<RawValue>>,
    TRANTYPE: Option<Box<RawValue>>,
    OSND: Option<Box<RawValue>>,
    DAT_OD: Option<Box<RawValue>>,
    TIM_P: Option<Box<RawValue>>,
    DATE_TIME_DAT_OD_TIM_P: Option<Box<RawValue>>,
    PR_PR: Option<Box<RawValue>>,
    AUT_CNTR_NAM: Option<Box<RawValue>>,
    AUT_CNTR_CRF: Option<Box<RawValue>>,
    AUT_CNTR_ACC: Option<Box<RawValue>>,
    AUT_MY_ACC: Option<Box<RawValue>>,
}

/// A value's text: a string's contents, a number's digits, `""` for absent or `null`.
fn text(raw: &Option<Box<RawValue>>, key: &str) -> Result<String, String> {
    match raw {
        None => Ok(String::new()),
        Some(raw) => scalar_text(raw)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("{key}: {e}")),
    }
}

/// Reads one page. Refused: a body that is not a JSON object, an answer whose `status` is
/// not `SUCCESS` (with the bank's `message`, e.g. a wrong token or a date range it does
/// not serve), an answer of another `type`, a page without `transactions`.
pub fn parse_page(body: &[u8]) -> Result<Page, Error> {
    if body.len() > MAX_BODY {
        return Err(not_format(format!(
            "the answer is {} bytes, more than the {MAX_BODY} a page of 500 rows needs",
            body.len()
        )));
    }
    let decoded;
    let body = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => {
            decoded = cp1251::decode(body);
            &decoded
        }
    };
    let trimmed = body.trim_start_matches('\u{FEFF}').trim_start();
    if !trimmed.starts_with('{') {
        return Err(not_format(format!(
            "the answer is not a JSON object: '{}'",
            clip(trimmed)
        )));
    }
    let page: PageWire =
        serde_json::from_str(trimmed).map_err(|e| not_format(format!("the answer: {e}")))?;
    match page.status.as_deref() {
        Some("SUCCESS") => {}
        status => {
            let message = text(&page.message, "message").unwrap_or_default();
            let code = text(&page.code, "code").unwrap_or_default();
            let mut said = format!("status '{}'", clip(status.unwrap_or("")));
            if !code.is_empty() {
                said.push_str(&format!(", code {}", clip(&code)));
            }
            if !message.is_empty() {
                said.push_str(&format!(": {}", clip(&message)));
            }
            return Err(Error::Refused {
                format: F,
                message: said,
            });
        }
    }
    if let Some(kind) = page.kind.as_deref() {
        if kind != "transactions" {
            return Err(not_format(format!(
                "an answer of type '{}', not 'transactions': was it asked at \
                 /api/statements/transactions?",
                clip(kind)
            )));
        }
    }
    let exist_next_page = match &page.exist_next_page {
        None => false,
        Some(raw) => match raw.get() {
            "true" | "\"true\"" | "\"Y\"" => true,
            "false" | "\"false\"" | "\"N\"" | "null" => false,
            other => {
                return Err(not_format(format!(
                    "exist_next_page is '{}', not true or false",
                    clip(other)
                )))
            }
        },
    };
    let next_page_id = text(&page.next_page_id, "next_page_id")
        .map_err(not_format)?
        .trim()
        .to_string();
    let next_page_id = Some(next_page_id).filter(|id| !id.is_empty());
    if exist_next_page && next_page_id.is_none() {
        return Err(not_format(
            "exist_next_page is true but next_page_id is empty: the next page cannot be \
             asked for"
                .to_string(),
        ));
    }
    let transactions = page
        .transactions
        .ok_or_else(|| not_format("a SUCCESS answer without 'transactions'".to_string()))?;
    let rows = transactions
        .iter()
        .enumerate()
        .map(|(i, raw)| row(i + 1, raw))
        .collect();
    Ok(Page {
        rows,
        exist_next_page,
        next_page_id,
    })
}

fn not_format(why: String) -> Error {
    Error::NotFormat { format: F, why }
}

fn row(number: usize, raw: &RawValue) -> Result<StatementRow, RowError> {
    let fail = |id: Option<RowId>, why: String| RowError {
        row: number,
        line: None,
        id,
        why,
    };
    if !raw.get().starts_with('{') {
        return Err(fail(
            None,
            format!("not a JSON object: '{}'", clip(raw.get())),
        ));
    }
    let tx: TxWire = serde_json::from_str(raw.get()).map_err(|e| fail(None, e.to_string()))?;
    let t = |raw: &Option<Box<RawValue>>, key: &str| text(raw, key);

    let reference = t(&tx.REF, "REF").map_err(|e| fail(None, e))?;
    let refn = t(&tx.REFN, "REFN").map_err(|e| fail(None, e))?;
    let bank_id = if !reference.is_empty() {
        if refn.is_empty() {
            reference
        } else {
            format!("{reference}.{refn}")
        }
    } else {
        t(&tx.ID, "ID").map_err(|e| fail(None, e))?
    };
    let id = RowId::from_bank(&bank_id).map_err(|_| fail(None, "no REF and no ID".into()))?;
    let fail = |why: String| fail(Some(id.clone()), why);
    let t = |raw: &Option<Box<RawValue>>, key: &str| text(raw, key).map_err(&fail);

    let sum = t(&tx.SUM, "SUM")?;
    let amount = parse_sum(&sum, DecimalMark::Point).map_err(|e| fail(format!("SUM: {e}")))?;
    if amount.is_zero() {
        return Err(fail("SUM is zero".into()));
    }
    let direction = match t(&tx.TRANTYPE, "TRANTYPE")?.as_str() {
        "C" | "c" => Direction::Credit,
        "D" | "d" => Direction::Debit,
        other => {
            return Err(fail(format!(
                "TRANTYPE '{}' is neither C (credit) nor D (debit)",
                clip(other)
            )))
        }
    };
    let ccy = t(&tx.CCY, "CCY")?;
    let currency = currency(&ccy).map_err(|e| fail(format!("CCY: {e}")))?;

    let day = t(&tx.DAT_OD, "DAT_OD")?;
    let (date, mut time) = if day.is_empty() {
        let both = t(&tx.DATE_TIME_DAT_OD_TIM_P, "DATE_TIME_DAT_OD_TIM_P")?;
        parse_date_time(&both).ok_or_else(|| {
            fail(format!(
                "no DAT_OD, and DATE_TIME_DAT_OD_TIM_P '{}' is not DD.MM.YYYY HH:MM:SS",
                clip(&both)
            ))
        })?
    } else {
        match parse_date_time(&day) {
            Some((date, None)) => (date, None),
            _ => {
                return Err(fail(format!(
                    "DAT_OD '{}' is not a day DD.MM.YYYY",
                    clip(&day)
                )))
            }
        }
    };
    let tim = t(&tx.TIM_P, "TIM_P")?;
    if !tim.is_empty() {
        time = Some(
            parse_time(&tim).ok_or_else(|| fail(format!("TIM_P '{}' is not HH:MM", clip(&tim))))?,
        );
    }

    Ok(StatementRow {
        id: id.clone(),
        row: number,
        date,
        time,
        amount,
        direction,
        currency: Some(currency),
        purpose: t(&tx.OSND, "OSND")?,
        payer_name: t(&tx.AUT_CNTR_NAM, "AUT_CNTR_NAM")?,
        payer_code: payer_code(&t(&tx.AUT_CNTR_CRF, "AUT_CNTR_CRF")?),
        payer_account: account(&t(&tx.AUT_CNTR_ACC, "AUT_CNTR_ACC")?),
        our_account: account(&t(&tx.AUT_MY_ACC, "AUT_MY_ACC")?),
        // `r` (реальна): booked. Anything else, or nothing, is not yet: the importer waits
        // for the row to come back with `r` rather than credit money the bank may still
        // turn back.
        posted: t(&tx.PR_PR, "PR_PR")? == "r",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Amount;
    use chrono::{NaiveDate, NaiveTime};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/statements/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ok(rows: &[Result<StatementRow, RowError>]) -> Vec<&StatementRow> {
        rows.iter().filter_map(|r| r.as_ref().ok()).collect()
    }

    #[test]
    fn page_one_every_field() {
        let page = parse_page(&fixture("privat-page1.json")).unwrap();
        assert!(page.exist_next_page);
        assert_eq!(page.next_page_id.as_deref(), Some("2026120512000001_00004"));
        assert_eq!(page.rows.len(), 4);
        let first = page.rows[0].as_ref().unwrap();
        assert_eq!(
            *first,
            StatementRow {
                id: RowId::from_bank("DNH1K0I2RT1ZZ6R2.1").unwrap(),
                row: 1,
                date: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
                time: NaiveTime::from_hms_opt(9, 14, 0),
                amount: Amount::from_kopecks(35000),
                direction: Direction::Credit,
                currency: Some("UAH".into()),
                purpose: "Плата за інтернет, о/р 103078, Петренко Петро Володимирович".into(),
                payer_name: "ПЕТРЕНКО ПЕТРО ВОЛОДИМИРОВИЧ".into(),
                payer_code: Some("3012345678".into()),
                payer_account: Some("UA213052990000026201234567890".into()),
                our_account: Some("UA903052990000026007233566001".into()),
                posted: true,
            }
        );
        let rows = ok(&page.rows);
        // A company: its ЄДРПОУ and an invoice number in the purpose.
        assert_eq!(rows[1].payer_code.as_deref(), Some("41234567"));
        assert_eq!(rows[1].amount, Amount::from_kopecks(1_250_000));
        assert!(rows[1].purpose.contains("рах. № СФ-1207"));
        // The bank's commission: a debit, REF shared with no other row.
        assert_eq!(rows[2].direction, Direction::Debit);
        assert_eq!(rows[2].amount, Amount::from_kopecks(1575));
        assert_eq!(rows[2].id.as_str(), "DNH1K0I2RT1ZZ6R2.2");
        // A row with no REF falls back to ID.
        assert_eq!(rows[3].id.as_str(), "1128976541");
        assert_eq!(rows[3].currency.as_deref(), Some("USD"));
    }

    #[test]
    fn page_two_is_last_and_a_broken_row_does_not_lose_the_next() {
        let page = parse_page(&fixture("privat-page2.json")).unwrap();
        assert!(!page.exist_next_page);
        assert_eq!(page.next_page_id, None);
        assert_eq!(page.rows.len(), 4);
        let pending = page.rows[0].as_ref().unwrap();
        assert!(!pending.posted, "PR_PR 'p' is not posted");
        let err = page.rows[1].as_ref().unwrap_err();
        assert_eq!(err.row, 2);
        assert_eq!(
            err.id.as_ref().map(RowId::as_str),
            Some("DNH1K0I4AB7QQ1C3.1")
        );
        assert!(
            err.why.contains("SUM") && err.why.contains("1.234"),
            "{err}"
        );
        let settlement = page.rows[2].as_ref().unwrap();
        assert!(settlement.purpose.starts_with("Перерахування коштів"));
        assert_eq!(settlement.amount, Amount::from_kopecks(2_841_050));
        let ambiguous = page.rows[3].as_ref().unwrap();
        assert_eq!(ambiguous.payer_code, None, "'0000000000' is no code");
    }

    #[test]
    fn refusals_carry_the_banks_words() {
        let e =
            parse_page(br#"{"status":"ERROR","code":"401","message":"bad token"}"#).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Refused { .. }));
        assert!(text.contains("401") && text.contains("bad token"), "{text}");
        for (body, want) in [
            (&b"<html>502</html>"[..], "not a JSON object"),
            (
                br#"{"status":"SUCCESS","type":"balances","balances":[]}"#,
                "balances",
            ),
            (
                br#"{"status":"SUCCESS","type":"transactions"}"#,
                "without 'transactions'",
            ),
            (
                br#"{"status":"SUCCESS","exist_next_page":true,"transactions":[]}"#,
                "next_page_id",
            ),
            (br#"{"status":"SUCCESS","status":"SUCCESS"}"#, "duplicate"),
        ] {
            let e = parse_page(body).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn rows_are_read_exactly_or_refused_with_the_key() {
        let page = |tx: &str| {
            let body = format!(r#"{{"status":"SUCCESS","transactions":[{tx}]}}"#);
            parse_page(body.as_bytes()).unwrap().rows.remove(0)
        };
        let base =
            r#""REF":"R1","REFN":"1","CCY":"UAH","TRANTYPE":"C","DAT_OD":"05.12.2026","PR_PR":"r""#;
        let sum = |s: &str| page(&format!(r#"{{{base},"SUM":{s}}}"#));
        assert_eq!(sum(r#""0.01""#).unwrap().amount, Amount::from_kopecks(1));
        assert_eq!(sum("100").unwrap().amount, Amount::from_kopecks(10000));
        assert_eq!(sum("100.50").unwrap().amount, Amount::from_kopecks(10050));
        for bad in [
            r#""-5.00""#,
            r#""1.234""#,
            "1e3",
            r#""0.00""#,
            "true",
            r#""""#,
        ] {
            let e = sum(bad).unwrap_err();
            assert!(e.why.contains("SUM"), "{bad}: {e}");
        }
        let e =
            page(r#"{"REF":"R1","SUM":"1.00","CCY":"UAH","TRANTYPE":"X","DAT_OD":"05.12.2026"}"#)
                .unwrap_err();
        assert!(e.why.contains("TRANTYPE"), "{e}");
        let e = page(r#"{"SUM":"1.00"}"#).unwrap_err();
        assert!(e.why.contains("no REF and no ID"), "{e}");
        let e = page("[1]").unwrap_err();
        assert!(e.why.contains("not a JSON object"), "{e}");
        // A cp1251 body is read too.
        let body = cp1251::encode(&format!(
            r#"{{"status":"SUCCESS","transactions":[{{{base},"SUM":"1.00","OSND":"Оплата ос.рах 00117"}}]}}"#
        ))
        .unwrap();
        let rows = parse_page(&body).unwrap().rows;
        assert_eq!(rows[0].as_ref().unwrap().purpose, "Оплата ос.рах 00117");
    }
}
