//! What every statement row must be, whatever format it came from.
#![allow(dead_code)]

use paysys::domain::Amount;
use paysys::statement::{RowId, StatementRow};

pub fn check_row(row: &StatementRow) {
    assert!(row.amount.kopecks() > 0, "{row:?}");
    assert_eq!(Amount::parse(&row.amount.to_string()), Ok(row.amount));
    check_id(&row.id);
    assert!(row.row >= 1);
    if let Some(c) = &row.currency {
        assert!(
            c.len() == 3
                && c.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{c}"
        );
    }
    if let Some(code) = &row.payer_code {
        assert!(matches!(code.len(), 8 | 10 | 12) && code.bytes().all(|b| b.is_ascii_digit()));
    }
    for acc in [&row.payer_account, &row.our_account].into_iter().flatten() {
        assert!(
            !acc.is_empty() && !acc.chars().any(char::is_whitespace),
            "{acc:?}"
        );
    }
}

pub fn check_id(id: &RowId) {
    let id = id.as_str();
    assert!(!id.is_empty() && id.len() <= RowId::MAX_LEN, "{id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_graphic()), "{id:?}");
}
