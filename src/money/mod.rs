//! Money: the only code that changes a subscriber's balance.
//!
//! [`ledger`] owns the database transaction and makes each payment count exactly once;
//! [`billing`] holds one adapter per billing schema, which finds the subscriber and writes
//! the billing's own rows inside the ledger's transaction. Every way money reaches an ISP —
//! a terminal's pay, a card payment's callback, a bank statement's row — ends here.

pub mod billing;
pub mod ledger;
