//! PrivatBank Autoclient: any bytes as one page of `/api/statements/transactions`.
//! Checks: nothing panics; a page that says there is a next one says how to ask for it;
//! rows count up from 1 whether read or not; every row has a positive amount that prints
//! and parses back, an id of printable ASCII up to 64 characters, a currency.
#![no_main]

mod shared_statement;

use libfuzzer_sys::fuzz_target;
use paysys::statement::privat::parse_page;
use shared_statement::{check_id, check_row};

fuzz_target!(|input: &[u8]| {
    let Ok(page) = parse_page(input) else {
        return;
    };
    if page.exist_next_page {
        assert!(page
            .next_page_id
            .as_deref()
            .is_some_and(|id| !id.is_empty()));
    }
    for (i, row) in page.rows.iter().enumerate() {
        match row {
            Ok(row) => {
                check_row(row);
                assert_eq!(row.row, i + 1);
                assert!(row.currency.is_some());
            }
            Err(e) => {
                assert_eq!(e.row, i + 1);
                assert!(!e.why.is_empty());
                if let Some(id) = &e.id {
                    check_id(id);
                }
            }
        }
    }
});
