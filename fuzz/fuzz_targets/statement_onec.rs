//! 1CClientBankExchange: any bytes as a file. Checks: nothing panics; the file read
//! through a 3-byte buffer gives exactly the rows (and the same end) as read whole, so the
//! line-by-line reader never depends on where a read stops; every row has a positive
//! amount that prints and parses back, a `1c:` id of 32 hex digits, numbers that count up
//! from 1; every RowError says why and names a line.
#![no_main]

mod shared_statement;

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use paysys::statement::onec::Reader;
use shared_statement::check_row;

fuzz_target!(|input: &[u8]| {
    let whole = Reader::new(input);
    let tiny = Reader::new(BufReader::with_capacity(3, input));
    let (mut whole, mut tiny) = match (whole, tiny) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            return;
        }
        (a, b) => panic!("whole {:?} but streamed {:?}", a.err(), b.err()),
    };
    assert_eq!(whole.our_accounts(), tiny.our_accounts());
    let mut expected = 1;
    for (a, b) in whole.by_ref().zip(tiny.by_ref()) {
        assert_eq!(a, b);
        match &a {
            Ok(row) => {
                check_row(row);
                assert_eq!(row.row, expected);
                let id = row.id.as_str();
                assert!(id.starts_with("1c:") && id.len() == 35, "{id}");
                assert!(id[3..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            }
            Err(e) => {
                assert_eq!(e.row, expected);
                assert!(e.line.is_some() && !e.why.is_empty());
            }
        }
        expected += 1;
    }
    assert!(whole.next().is_none() && tiny.next().is_none());
    assert_eq!(
        whole.finish().map_err(|e| e.to_string()),
        tiny.finish().map_err(|e| e.to_string())
    );
});
