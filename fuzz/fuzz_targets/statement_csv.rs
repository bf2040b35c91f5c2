//! Bank CSV through a preset: the first input byte picks one of four presets (the two of
//! `src/statement/csv.rs`'s docs, and variants with a tab or `,` delimiter, decimal point,
//! a derived id), the rest is the file. Checks: nothing panics; the file read through a
//! 3-byte buffer gives exactly the rows read whole; rows count up from 1; every row has a
//! positive amount that prints and parses back and an id (the bank's, or `csv:` and 32
//! hex digits); every RowError names a line.
#![no_main]

mod shared_statement;

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use paysys::statement::csv::{CsvPreset, Reader};
use shared_statement::check_row;

fn preset(pick: u8) -> CsvPreset {
    let ua = CsvPreset {
        name: "ua-bank".into(),
        delimiter: ';',
        encoding: "cp1251".into(),
        skip_rows: 0,
        decimal_comma: true,
        date: "ДАТА".into(),
        time: Some("ЧАС".into()),
        sum: None,
        credit: Some("СУМА КРЕДИТ".into()),
        debit: Some("СУМА ДЕБЕТ".into()),
        purpose: "ПРИЗНАЧЕННЯ".into(),
        payer_code: Some("КОД ІДЕНТ.".into()),
        payer_name: Some("КОНТРАГЕНТ".into()),
        payer_account: Some("РАХУНОК КОНТРАГЕНТА".into()),
        id: None,
        number: Some("НОМЕР".into()),
        currency: None,
        date_format: None,
    };
    let online = CsvPreset {
        name: "online-bank".into(),
        delimiter: ',',
        encoding: "utf-8".into(),
        skip_rows: 2,
        decimal_comma: false,
        date: "Date".into(),
        time: Some("Time".into()),
        sum: Some("Amount".into()),
        credit: None,
        debit: None,
        purpose: "Description".into(),
        payer_code: Some("Counterparty Tax ID".into()),
        payer_name: Some("Counterparty".into()),
        payer_account: Some("Counterparty IBAN".into()),
        id: Some("Reference".into()),
        number: None,
        currency: Some("Currency".into()),
        date_format: Some("%Y-%m-%d".into()),
    };
    match pick % 4 {
        0 => ua,
        1 => online,
        2 => CsvPreset {
            delimiter: '\t',
            encoding: "utf-8".into(),
            decimal_comma: false,
            ..ua
        },
        _ => CsvPreset {
            skip_rows: 0,
            id: None,
            date_format: None,
            decimal_comma: true,
            delimiter: ';',
            ..online
        },
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, file)) = input.split_first() else {
        return;
    };
    let preset = preset(pick);
    let whole = Reader::new(file, &preset);
    let tiny = Reader::new(BufReader::with_capacity(3, file), &preset);
    let (mut whole, mut tiny) = match (whole, tiny) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            return;
        }
        (a, b) => panic!("whole {:?} but streamed {:?}", a.err(), b.err()),
    };
    let mut expected = 1;
    for (a, b) in whole.by_ref().zip(tiny.by_ref()) {
        assert_eq!(a, b);
        match &a {
            Ok(row) => {
                check_row(row);
                assert_eq!(row.row, expected);
                let id = row.id.as_str();
                if preset.id.is_none() {
                    assert!(id.starts_with("csv:") && id.len() == 36, "{id}");
                }
            }
            Err(e) => {
                assert_eq!(e.row, expected);
                assert!(e.line.is_some() && !e.why.is_empty());
            }
        }
        expected += 1;
    }
    assert!(whole.next().is_none() && tiny.next().is_none());
    assert!(whole.finish().is_ok() && tiny.finish().is_ok());
});
