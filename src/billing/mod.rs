//! Billing schemas: one file each, one trait for all.
//!
//! A billing adapter knows one billing's tables: how to find the subscriber an account
//! names, and how to credit a payment *inside a transaction the ledger owns*. It never
//! begins, commits or rolls back: that is [`crate::ledger`]'s job, which is what lets the
//! ledger's exactly-once row and the billing's rows commit together or not at all.

use std::net::IpAddr;

use mysql::{Conn, Transaction};

use crate::domain::{Account, Amount, TxnDate, TxnId};
use crate::outcome::Subscriber;

pub mod nodeny;

/// One payment, as the billing should record it.
#[derive(Debug, Clone)]
pub struct Credit<'a> {
    pub system: &'a str,
    pub txn_id: &'a TxnId,
    pub account: &'a Account,
    pub amount: Amount,
    pub txn_date: TxnDate,
    pub caller: Option<IpAddr>,
    /// Our transaction number, for the billing's comment.
    pub prv_txn: u64,
}

/// What crediting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    /// Rows written; `payment_ref` is the billing's own payment row id.
    Done { payment_ref: u64 },
    /// The subscriber does not exist (any more): the ledger rolls back.
    NoSubscriber,
}

pub trait Billing: Sync {
    /// The name used in `[database] billing = "…"`.
    fn name(&self) -> &'static str;

    /// The billing's tables that a payment writes or reads; `paysys check-db` makes sure
    /// they exist and are transactional.
    fn tables(&self) -> &'static [&'static str];

    /// The subscriber `account` names, with what a check may show.
    fn find(&self, conn: &mut Conn, account: &Account) -> Result<Option<Subscriber>, mysql::Error>;

    /// Writes the payment and raises the balance, within `tx`.
    fn credit(
        &self,
        tx: &mut Transaction<'_>,
        credit: &Credit<'_>,
    ) -> Result<Credited, mysql::Error>;
}

/// Every billing a config may name.
pub const NAMES: &[&str] = &["nodeny"];

pub fn by_name(name: &str) -> Option<&'static dyn Billing> {
    match name {
        "nodeny" => Some(&nodeny::NoDeny),
        _ => None,
    }
}
