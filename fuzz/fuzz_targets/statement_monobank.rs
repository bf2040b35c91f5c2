//! Monobank: any bytes as the answer of `/personal/statement`. Checks: nothing panics;
//! rows count up from 1; every row has a positive amount that prints and parses back, an
//! id of printable ASCII up to 64 characters, a currency, a time.
#![no_main]

mod shared_statement;

use libfuzzer_sys::fuzz_target;
use paysys::statement::monobank::parse;
use shared_statement::check_row;

fuzz_target!(|input: &[u8]| {
    let Ok(rows) = parse(input) else {
        return;
    };
    for (i, row) in rows.iter().enumerate() {
        match row {
            Ok(row) => {
                check_row(row);
                assert_eq!(row.row, i + 1);
                assert!(row.currency.is_some() && row.time.is_some());
                assert!(row.our_account.is_none());
            }
            Err(e) => {
                assert_eq!(e.row, i + 1);
                assert!(!e.why.is_empty());
            }
        }
    }
});
