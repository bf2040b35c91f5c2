//! Monobank's personal and FOP statement: the answer to
//! `GET https://api.monobank.ua/personal/statement/{account}/{from}/{to}` (unix seconds,
//! header `X-Token`; at most 31 days and 1 hour per call, one call per 60 s). See
//! `../shared/PROTOCOLS.md` §9.
//!
//! The answer is a JSON array, newest first, of
//!
//! ```json
//! {"id":"ZuHWzqkKGVo=","time":1764925200,"description":"…","comment":"…","amount":35000,
//!  "operationAmount":35000,"currencyCode":980,"balance":…,"hold":false,
//!  "counterEdrpou":"…","counterIban":"UA…","counterName":"…"}
//! ```
//!
//! `amount` is signed kopecks in the account's currency: more than zero is money in.
//! `currencyCode` is ISO 4217 numeric (980 → `UAH`). `hold: true` is an operation the bank
//! has not booked yet. `counter*` are present for FOP accounts only. The statement is for
//! one account, the one in the URL; the items do not name it, so
//! [`StatementRow::our_account`] is `None` and the caller knows it.
//!
//! Times are in Kyiv: `time` (UTC) is turned into Kyiv's local day and time by
//! [`super::kyiv_time`] (the EU summer-time rule, which Ukraine keeps), so a payment at
//! 23:30 UTC on 31 December is on 1 January, as the bank's own app shows it.

use chrono::DateTime;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    account, clip, currency, kyiv_time, payer_code, Direction, Error, Format, RowError, RowId,
    StatementRow,
};
use crate::card::scalar_text;
use crate::domain::Amount;

const F: Format = Format::Monobank;

/// The largest answer we read; Monobank sends at most 500 items per call.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemWire {
    id: Option<Box<RawValue>>,
    time: Option<Box<RawValue>>,
    description: Option<Box<RawValue>>,
    comment: Option<Box<RawValue>>,
    amount: Option<Box<RawValue>>,
    currency_code: Option<Box<RawValue>>,
    hold: Option<Box<RawValue>>,
    counter_edrpou: Option<Box<RawValue>>,
    counter_iban: Option<Box<RawValue>>,
    counter_name: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorWire {
    error_description: Option<String>,
}

/// Reads one answer into its rows, in the bank's order. Refused: not a JSON array, or
/// Monobank's error object (`{"errorDescription": "…"}`: a wrong token, too many
/// requests, a range past 31 days), with its words.
pub fn parse(body: &[u8]) -> Result<Vec<Result<StatementRow, RowError>>, Error> {
    if body.len() > MAX_BODY {
        return Err(not_format(format!(
            "the answer is {} bytes, more than the {MAX_BODY} 500 items need",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        not_format(format!(
            "the answer is not UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let text = text.trim_start_matches('\u{FEFF}').trim_start();
    if text.starts_with('{') {
        let said = serde_json::from_str::<ErrorWire>(text)
            .ok()
            .and_then(|e| e.error_description)
            .unwrap_or_else(|| clip(text));
        return Err(Error::Refused {
            format: F,
            message: clip(&said),
        });
    }
    if !text.starts_with('[') {
        return Err(not_format(format!(
            "the answer is not a JSON array: '{}'",
            clip(text)
        )));
    }
    let items: Vec<Box<RawValue>> =
        serde_json::from_str(text).map_err(|e| not_format(format!("the answer: {e}")))?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, raw)| row(i + 1, raw))
        .collect())
}

fn not_format(why: String) -> Error {
    Error::NotFormat { format: F, why }
}

/// A JSON integer's value (`-15000`); a fraction, an exponent, a string or more than 18
/// digits is refused.
fn integer(raw: &RawValue, key: &str) -> Result<i64, String> {
    let text = raw.get();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{key} '{}' is not a whole number", clip(text)));
    }
    // Up to 18 ASCII digits always fit an i64.
    let value = digits
        .bytes()
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    Ok(if digits.len() < text.len() {
        -value
    } else {
        value
    })
}

fn text(raw: &Option<Box<RawValue>>, key: &str) -> Result<String, String> {
    match raw {
        None => Ok(String::new()),
        Some(raw) => scalar_text(raw)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("{key}: {e}")),
    }
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
    let item: ItemWire = serde_json::from_str(raw.get()).map_err(|e| fail(None, e.to_string()))?;
    let id_text = text(&item.id, "id").map_err(|e| fail(None, e))?;
    let id = RowId::from_bank(&id_text).map_err(|_| fail(None, "no id".into()))?;
    let fail = |why: String| fail(Some(id.clone()), why);

    let signed = match &item.amount {
        None => return Err(fail("no amount".into())),
        Some(raw) => integer(raw, "amount").map_err(&fail)?,
    };
    let direction = match signed {
        0 => return Err(fail("amount is zero".into())),
        a if a > 0 => Direction::Credit,
        _ => Direction::Debit,
    };
    let amount = Amount::from_minor_units(signed.saturating_abs())
        .map_err(|e| fail(format!("amount {signed} kopecks: {e}")))?;

    let seconds = match &item.time {
        None => return Err(fail("no time".into())),
        Some(raw) => integer(raw, "time").map_err(&fail)?,
    };
    let utc = DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| fail(format!("time {seconds} is not a date")))?
        .naive_utc();
    let local = kyiv_time(utc).ok_or_else(|| fail(format!("time {seconds} is not a date")))?;

    let currency = match &item.currency_code {
        None => return Err(fail("no currencyCode".into())),
        Some(raw) => {
            let code = text(&Some(raw.clone()), "currencyCode").map_err(&fail)?;
            currency(&code).map_err(|e| fail(format!("currencyCode: {e}")))?
        }
    };
    let posted = match item.hold.as_deref().map(RawValue::get) {
        None | Some("false") | Some("null") => true,
        Some("true") => false,
        Some(other) => return Err(fail(format!("hold '{}' is not true or false", clip(other)))),
    };

    // The purpose: `description` is what the bank shows (a FOP account's incoming
    // transfer: the payer's purpose; a card transfer: "Від: …"), `comment` what the sender
    // typed for a card transfer. A subscriber's number may be in either.
    let description = text(&item.description, "description").map_err(&fail)?;
    let comment = text(&item.comment, "comment").map_err(&fail)?;
    let purpose = match (description.is_empty(), comment.is_empty()) {
        (_, true) => description,
        (true, false) => comment,
        (false, false) if description == comment => description,
        (false, false) => format!("{description} / {comment}"),
    };

    Ok(StatementRow {
        id: id.clone(),
        row: number,
        date: local.date(),
        time: Some(local.time()),
        amount,
        direction,
        currency: Some(currency),
        purpose,
        payer_name: text(&item.counter_name, "counterName").map_err(&fail)?,
        payer_code: payer_code(&text(&item.counter_edrpou, "counterEdrpou").map_err(&fail)?),
        payer_account: account(&text(&item.counter_iban, "counterIban").map_err(&fail)?),
        our_account: None,
        posted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/statements/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn fixture_every_field() {
        let rows = parse(&fixture("monobank.json")).unwrap();
        assert_eq!(rows.len(), 6);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            *first,
            StatementRow {
                id: RowId::from_bank("ZuHWzqkKGVo=").unwrap(),
                row: 1,
                // 1796511600 = 2026-12-05 23:00:00 UTC: 01:00 on the 6th in Kyiv (winter).
                date: NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
                time: NaiveTime::from_hms_opt(1, 0, 0),
                amount: Amount::from_kopecks(35000),
                direction: Direction::Credit,
                currency: Some("UAH".into()),
                purpose: "Оплата за послуги інтернет ос.рах 00117".into(),
                payer_name: "СИДОРЕНКО ОЛЕНА ІГОРІВНА".into(),
                payer_code: Some("3198765432".into()),
                payer_account: Some("UA583220010000026209301234567".into()),
                our_account: None,
                posted: true,
            }
        );
        let card = rows[1].as_ref().unwrap();
        assert_eq!(
            card.purpose,
            "Від: Іван К. / Сплата за Особистий рахунок 113766"
        );
        assert_eq!(card.payer_code, None);
        assert_eq!(card.payer_account, None);
        let hold = rows[2].as_ref().unwrap();
        assert!(!hold.posted);
        let fee = rows[3].as_ref().unwrap();
        assert_eq!(fee.direction, Direction::Debit);
        assert_eq!(fee.amount, Amount::from_kopecks(525));
        let broken = rows[4].as_ref().unwrap_err();
        assert_eq!(broken.row, 5);
        assert!(
            broken.why.contains("amount") && broken.why.contains("350.00"),
            "{broken}"
        );
        // A row after the broken one is still read; summer time is +3.
        let summer = rows[5].as_ref().unwrap();
        assert_eq!(summer.date, NaiveDate::from_ymd_opt(2026, 7, 2).unwrap());
        assert_eq!(summer.time, NaiveTime::from_hms_opt(0, 30, 0));
        assert_eq!(summer.currency.as_deref(), Some("USD"));
    }

    #[test]
    fn errors_and_odd_items() {
        let e = parse(br#"{"errorDescription":"Too many requests"}"#).unwrap_err();
        assert!(matches!(e, Error::Refused { .. }));
        assert!(e.to_string().contains("Too many requests"));
        assert!(parse(b"[]").unwrap().is_empty());
        assert!(parse(b"\xff[").is_err());
        assert!(parse(b"[1,").is_err());
        let item = |json: &str| parse(format!("[{json}]").as_bytes()).unwrap().remove(0);
        let base = r#""id":"a","time":1764975600,"currencyCode":980"#;
        for (amount, want) in [
            ("-1", Some((1, Direction::Debit))),
            ("9223372036854775807", None),
            // A sum no bank account holds: refused as too large, not passed on as a sum that
            // would print as text `Amount::parse` refuses.
            ("27777777777770000", None),
            (
                "-999999999999999",
                Some((999_999_999_999_999, Direction::Debit)),
            ),
            ("1.5", None),
            (r#""100""#, None),
            ("0", None),
        ] {
            let got = item(&format!("{{{base},\"amount\":{amount}}}"))
                .ok()
                .map(|r| (r.amount.kopecks(), r.direction));
            assert_eq!(got, want, "{amount}");
        }
        let e = item(r#"{"id":"a","time":99999999999999999,"amount":1,"currencyCode":980}"#)
            .unwrap_err();
        assert!(e.why.contains("time"), "{e}");
        // At the end of chrono's calendar: an error, not an overflow.
        let last = chrono::NaiveDateTime::MAX.and_utc().timestamp();
        let e = item(&format!(
            r#"{{"id":"a","time":{last},"amount":1,"currencyCode":980}}"#
        ))
        .unwrap_err();
        assert!(e.why.contains("time"), "{e}");
        let e = item(r#"{"time":1,"amount":1,"currencyCode":980}"#).unwrap_err();
        assert!(e.why.contains("no id"), "{e}");
        let e = item(r#"{"id":"a","time":1,"amount":1,"currencyCode":1000}"#).unwrap_err();
        assert!(e.why.contains("currencyCode"), "{e}");
    }
}
