//! Billing schemas: one file each, one trait for all.
//!
//! A billing adapter knows one billing's tables: how to find the subscriber an account
//! names, how to credit a payment and how to reverse one, each *inside a transaction the
//! ledger owns*. It never begins, commits or rolls back: that is [`crate::ledger`]'s job,
//! which is what lets the ledger's exactly-once row and the billing's rows commit together
//! or not at all.
//!
//! One exception, asked for by the config (`[database] procedure = true`): a billing with a
//! stored procedure for a plain new pay ([`Billing::pay_in_one_call`]) has the server run
//! the same statements, our row's among them, in one transaction of the procedure's own,
//! begun and committed inside one CALL. The ledger still decides what the answer is, and
//! the CALL answers "paid" only after that COMMIT.
//!
//! An account is resolved inside the payment's transaction, by the billing: an ABillS login
//! is not a number, and the subscriber found is the one whose rows are locked and written.

use std::net::IpAddr;

use mysql::{Conn, Transaction};

use crate::config::{BillingKind, System};
use crate::domain::{Account, Amount, Domain, TxnDate, TxnId};
use crate::outcome::{CardState, Refusal, Subscriber};

pub mod abills;
pub mod audit;
pub mod nodeny;

/// One payment, as the billing should record it.
#[derive(Debug, Clone)]
pub struct Credit<'a> {
    pub system: &'a System,
    pub txn_id: &'a TxnId,
    pub account: &'a Account,
    pub amount: Amount,
    pub txn_date: TxnDate,
    pub caller: Option<IpAddr>,
    pub domain: Domain,
    /// The request's parameters as received (ABillS keeps them, `paysys_log.info`).
    pub params: &'a [(String, String)],
    /// Our transaction number (`paysys_txn.id`).
    pub txn_row: u64,
    /// The pay of a card order made on our page, for which the billing may have opened a
    /// row of its own ([`Billing::open_order`]) that the payment completes.
    pub order_opened: bool,
    /// The ledger completes our row only where [`Credited::Done`]'s `guard` holds, in the
    /// statement that completes it, and pays again without this when it does not: a
    /// billing may then look for rows of the txn written beside us (ABillS's own script)
    /// last, under that statement's locks, instead of first under a lock of its own.
    pub look_last: bool,
}

/// A condition on rows other writers may add, which the statement completing our row of a
/// payment checks (`WHERE id = ? AND <sql>`), under the shared locks InnoDB takes on rows a
/// data-changing statement reads in REPEATABLE READ: a row committed meanwhile is seen, one
/// being written waits for its writer's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub sql: String,
    pub params: Vec<GuardParam>,
}

/// One of a [`Guard`]'s parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardParam {
    Text(String),
    Number(u64),
}

impl From<&GuardParam> for mysql::Value {
    fn from(p: &GuardParam) -> Self {
        match p {
            GuardParam::Text(t) => t.as_str().into(),
            GuardParam::Number(n) => (*n).into(),
        }
    }
}

/// What crediting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credited {
    /// Rows written. `payment_ref`: the billing's payment row; `prv_txn`: the number the
    /// caller is answered with, when the billing has its own (ABillS: `paysys_log.id`;
    /// `None`: ours).
    /// `guard`: with [`Credit::look_last`], what must hold for our row to be completed
    /// (none: nothing was left to check).
    Done {
        subscriber_id: u64,
        payment_ref: u64,
        prv_txn: Option<u64>,
        guard: Option<Guard>,
    },
    /// Refused (no such subscriber, disabled, payments off): nothing written, the ledger
    /// rolls back.
    Refused(Refusal),
    /// A credit made with [`Credit::look_last`] met something it leaves to a look first
    /// (a refusal after its rows were written, a row of the txn in the way): the ledger
    /// rolls back and pays again without `look_last`.
    LookFirst,
    /// The billing recorded this txn itself before paysys took over (ABillS's own script
    /// wrote its `paysys_log` row): nothing written now. `same`: the record has this
    /// payment's subscriber and sum, so this is a repeat; otherwise a conflict.
    Recorded {
        prv_txn: u64,
        subscriber_id: u64,
        amount: Amount,
        same: bool,
    },
}

/// What a pay made in one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneCalled {
    /// Paid and committed; `prv_txn`: the number answered.
    Paid { prv_txn: u64 },
    /// Our row of the txn exists (a repeat, or a pay of it beside us): nothing written.
    Stored,
    /// Not a pay this way makes (not the plain case, or no procedure to call): nothing
    /// written; the ledger makes it its usual way.
    Usual,
}

/// A payment the billing recorded itself, before paysys took over (ABillS's own script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// What its caller was answered (ABillS: the `paysys_log.id`).
    pub prv_txn: u64,
    pub subscriber_id: u64,
    pub amount: Amount,
    /// Reversed since.
    pub cancelled: bool,
}

/// Whether a payment recorded for subscriber `recorded_uid` with `recorded` is the one a
/// retry for `uid` (`None`: the account no longer names anybody) with `amount` asks about.
/// The txn id already matched; an account that names nobody now (deleted since) cannot
/// contradict it, so the sum decides.
pub fn same_payment(uid: Option<u64>, recorded_uid: u64, recorded: Amount, amount: Amount) -> bool {
    recorded == amount && uid.is_none_or(|u| u == recorded_uid)
}

/// One of the billing's rows of a payment, for the admin (`paysys txn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRow {
    pub table: &'static str,
    pub fields: Vec<(String, String)>,
}

/// A committed payment to reverse, as the ledger holds it.
#[derive(Debug, Clone)]
pub struct Uncredit<'a> {
    pub system: &'a System,
    pub txn_id: &'a str,
    pub subscriber_id: u64,
    pub amount: Amount,
    pub payment_ref: u64,
    pub prv_txn: u64,
    /// The domain the cancel came for (`PATH_INFO`).
    pub domain: Domain,
    /// Who asked for the cancel (NoDeny records it on its event of the deletion).
    pub caller: Option<IpAddr>,
}

/// What reversing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncredited {
    Done,
    /// The billing's rows of the payment are gone or no longer what the credit wrote
    /// (removed or edited by hand): nothing reversed, and why.
    Gone(String),
    /// This billing does not reverse payments (none of today's: NoDeny and ABillS both do).
    NotSupported,
}

/// What reversing a payment the billing recorded itself (before paysys) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UncreditedRecorded {
    /// Reversed now; `prv_txn` is what its pay was answered with, `payment_ref` the
    /// billing's payment row it removed. `txn_id`: the payment's whole id, when it is known
    /// for certain (the ledger then records the cancel under it, so that no later pay of it
    /// is credited).
    Done {
        prv_txn: u64,
        sum: Amount,
        subscriber_id: u64,
        payment_ref: u64,
        txn_id: Option<String>,
    },
    /// Reversed before: nothing done now.
    Repeat {
        prv_txn: u64,
        sum: Amount,
        subscriber_id: u64,
        txn_id: Option<String>,
    },
    /// Found, and not to be reversed by this cancel (another system's, another domain's).
    Refused(String),
}

pub trait Billing: Sync {
    fn kind(&self) -> BillingKind;

    /// What `paysys audit` asks of this billing's rows ([`audit`]).
    fn audit(&self) -> &'static dyn audit::Audit;

    /// The billing's tables that a payment writes or reads; `paysys check-db` makes sure
    /// they exist and are transactional.
    fn tables(&self) -> &'static [&'static str];

    /// Whether accounts live in domains (`PATH_INFO` names one); otherwise `PATH_INFO` is
    /// ignored.
    fn has_domains(&self) -> bool {
        false
    }

    /// The subscriber `account` names in `domain`, with what a check may show, or why it
    /// may not be paid.
    fn find(
        &self,
        conn: &mut Conn,
        system: &System,
        account: &Account,
        domain: Domain,
    ) -> Result<Result<Subscriber, Refusal>, mysql::Error>;

    /// Writes the payment and raises the balance, within `tx`.
    fn credit(
        &self,
        tx: &mut Transaction<'_>,
        credit: &Credit<'_>,
    ) -> Result<Credited, mysql::Error>;

    /// A terminal's new pay in one round trip, by the billing's stored procedure, which
    /// writes our row and the billing's and commits them, or writes nothing and says why.
    /// The default, for a billing without one: [`OneCalled::Usual`], nothing sent.
    /// `credit.txn_row` is 0: the procedure writes our row itself.
    fn pay_in_one_call(
        &self,
        _conn: &mut Conn,
        _credit: &Credit<'_>,
    ) -> Result<OneCalled, mysql::Error> {
        Ok(OneCalled::Usual)
    }

    /// What the stored procedure [`Billing::pay_in_one_call`] calls lacks on this
    /// database, one sentence each, for `paysys check-db` with `[database] procedure`.
    fn procedure_problems(&self, _conn: &mut Conn) -> Result<Vec<String>, mysql::Error> {
        Ok(vec![format!(
            "database.procedure: {} has no stored procedure for pays; remove the setting",
            self.kind().name()
        )])
    }

    /// The subscriber `account` names, whether or not it may be paid now (disabled,
    /// barred): for telling a retry of a recorded payment from a conflict.
    fn subscriber_of(
        &self,
        conn: &mut Conn,
        system: &System,
        account: &Account,
        domain: Domain,
    ) -> Result<Option<u64>, mysql::Error> {
        Ok(self.find(conn, system, account, domain)?.ok().map(|s| s.id))
    }

    /// The payment of `txn_id` the billing recorded before paysys, if any: the first answer
    /// to a retry that arrives after the switch-over. Only billings that had their own
    /// script before (ABillS) have such records.
    fn recorded(
        &self,
        _conn: &mut Conn,
        _system: &System,
        _txn_id: &TxnId,
        _domain: Domain,
    ) -> Result<Option<Recorded>, mysql::Error> {
        Ok(None)
    }

    /// The billing's own rows of a payment our ledger holds (`payment_ref`: the billing's
    /// payment row; `prv_txn`: what the caller was answered), for the admin.
    fn payment_rows(
        &self,
        conn: &mut Conn,
        system: &System,
        txn_id: &str,
        payment_ref: u64,
        prv_txn: u64,
    ) -> Result<Vec<BillingRow>, mysql::Error>;

    /// What the database user may not do that a payment or a cancel needs, one sentence
    /// each, for `paysys check-db` (asked once the tables are in place). Empty: everything
    /// is granted, or the billing does not check (the default).
    fn grant_problems(&self, _conn: &mut Conn) -> Result<Vec<String>, mysql::Error> {
        Ok(Vec::new())
    }

    /// Reverses a committed payment, within `tx`.
    fn cancel(
        &self,
        tx: &mut Transaction<'_>,
        payment: &Uncredit<'_>,
    ) -> Result<Uncredited, mysql::Error>;

    /// Records, where the billing keeps such records, a card order about to be paid (ABillS:
    /// a `paysys_log` row "in progress", which the order's payment completes). `uid`: the
    /// subscriber the order's account names.
    fn open_order(
        &self,
        _conn: &mut Conn,
        _system: &System,
        _order_id: &str,
        _uid: u64,
        _amount: Amount,
        _domain: Domain,
    ) -> Result<(), mysql::Error> {
        Ok(())
    }

    /// The accounts (as `system`'s first account key reads them) of the subscribers whose
    /// own fields hold the payer code `code` (ЄДРПОУ, РНОКПП, БИН/ИИН), for a bank
    /// statement's row: ABillS's company `edrpou` / `tax_number` (one account per company:
    /// its payments go to the company's bill) and subscriber `tax_number`. Empty where the
    /// billing keeps no such fields.
    fn payer_code_accounts(
        &self,
        _conn: &mut Conn,
        _system: &System,
        _code: &str,
    ) -> Result<Vec<String>, mysql::Error> {
        Ok(Vec::new())
    }

    /// Records, where the billing keeps such records, that a card order opened with
    /// [`Billing::open_order`] failed or expired (ABillS: its `paysys_log` row's status; a
    /// later payment of the order still completes it). Other states change nothing.
    fn close_order(
        &self,
        _conn: &mut Conn,
        _system: &System,
        _order_id: &str,
        _state: CardState,
    ) -> Result<(), mysql::Error> {
        Ok(())
    }

    /// Reverses, within `tx`, a payment of `system` that the billing recorded before paysys
    /// took over (ABillS's own script), named by what its pay was answered with (`prv_txn`)
    /// and/or its txn id: the same payment [`Billing::recorded`] finds for a status or a
    /// retry. `None`: the billing holds no such payment (only billings that had their own
    /// script before have any).
    fn cancel_recorded(
        &self,
        _tx: &mut Transaction<'_>,
        _system: &System,
        _domain: Domain,
        _prv_txn: Option<u64>,
        _txn_id: Option<&TxnId>,
    ) -> Result<Option<UncreditedRecorded>, mysql::Error> {
        Ok(None)
    }
}

/// The code of a billing the config names.
pub fn of(kind: BillingKind) -> &'static dyn Billing {
    match kind {
        BillingKind::NoDeny => &nodeny::NoDeny,
        BillingKind::Abills => &abills::Abills,
    }
}
