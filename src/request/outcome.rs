//! The vocabulary between the stages: what was asked ([`Command`]), and every way a request
//! can end ([`Outcome`]).
//!
//! A refusal of bad input is a [`Refusal`] value, part of normal flow; an infrastructure
//! fault is a [`Fault`], which every protocol answers with its *temporary* error so that the
//! caller retries. A protocol's `render` is one `match` over [`Outcome`]: a reader sees every
//! ending in one place.

use crate::domain::{Account, Amount, TxnDate, TxnId};

/// A request, parsed: every field is a domain value.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Check(Check),
    Pay(Pay),
    Status(StatusQuery),
    Cancel(CancelOrder),
    /// The system's payments of a period (City24's reconciliation request).
    List(Period),
    /// Book an order to be paid by a later confirmation (EasyPay's Payment): nothing is
    /// credited yet.
    Book(Booking),
    /// Pay a booked order (EasyPay's Confirm). The pipeline turns it into the [`Pay`] of
    /// the order before anything else judges it.
    Confirm(OrderRef),
    /// Cancel a booked order (EasyPay's Cancel): reverse its payment if it was confirmed,
    /// else make sure it never will be.
    Unbook(OrderRef),
    /// A card provider's verified word on one of our orders (its callback, or its status
    /// API asked by the sweeper): a success becomes the [`Pay`] of the order, anything else
    /// is noted on it.
    Settle(Settlement),
    /// Which of several payers may be paid, each answered on its own (Portmone's check):
    /// one that is not found is left out, not a refusal of the others.
    Lookup(Lookup),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Pay(_) => "pay",
            Command::Status(_) => "status",
            Command::Cancel(_) => "cancel",
            Command::List(_) => "list",
            Command::Book(_) => "book",
            Command::Confirm(_) => "pay",
            Command::Unbook(_) => "cancel",
            Command::Settle(_) => "callback",
            Command::Lookup(_) => "check",
        }
    }
}

/// May this account be paid (and this sum, if given)?
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub txn_id: Option<TxnId>,
    pub account: Account,
    pub sum: Option<Amount>,
}

/// Several payers to look up at once ([`Command::Lookup`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// Each payer as sent, and its account if the text reads as one (one that does not is
    /// not found).
    pub payers: Vec<(String, Option<Account>)>,
    /// The server's day when the request came: the bills' date and period.
    pub date: chrono::NaiveDate,
}

/// A payer a [`Command::Lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer {
    /// As the request sent it.
    pub sent: String,
    pub subscriber: Subscriber,
}

/// Credit `sum` to `account`, once per (system, `txn_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct Pay {
    pub txn_id: TxnId,
    pub account: Account,
    pub sum: Amount,
    pub txn_date: TxnDate,
}

/// Was this txn_id paid, and under which `prv_txn`?
#[derive(Debug, Clone, PartialEq)]
pub struct StatusQuery {
    pub txn_id: TxnId,
}

/// Reverse a payment of this system: the one answered `prv_txn` (OSMP), or, without it,
/// the one with `txn_id` (City24 names the payment by its own id).
#[derive(Debug, Clone, PartialEq)]
pub struct CancelOrder {
    pub prv_txn: Option<u64>,
    /// The payment's txn id: with `prv_txn`, it must match; alone, it names the payment.
    pub txn_id: Option<TxnId>,
    /// The sum the caller says it reverses (Portmone's negative `PAYED_AMOUNT`): if given,
    /// it must be the payment's, or nothing is reversed.
    pub sum: Option<Amount>,
}

/// An order to book: the payment system's order id, who, how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub order_id: TxnId,
    pub account: Account,
    pub sum: Amount,
    /// When the payment system says it made the order (Payme's `time`), kept with it.
    pub at: Option<chrono::NaiveDateTime>,
}

/// A booked order, by the number we answered its booking with (EasyPay's PaymentId,
/// Click's merchant_prepare_id), and what else the request says of it: a request that
/// names the order otherwise than it was booked is refused, not applied to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    /// `None`: the request names the order by the payment system's id alone (Payme's
    /// `id`), which `order_id` then holds.
    pub payment_id: Option<u64>,
    /// The payment system's order id, where the request repeats it (Click's
    /// click_trans_id): it must be the order's.
    pub order_id: Option<TxnId>,
    /// The account as the request repeats it (Click's merchant_trans_id): the order's.
    pub account: Option<String>,
    /// The sum as the request repeats it (Click's amount): the order's, or the request is
    /// refused as a wrong amount.
    pub sum: Option<Amount>,
    /// Whether an unbooking of an order already paid reverses that payment (EasyPay's
    /// Cancel) or is refused, the payment standing (Click's Complete with an error: it
    /// abandons a payment, it never takes one back).
    pub reverses: bool,
    /// Why the payment system unbooks it (Payme's cancel `reason`), kept with the order.
    pub note: Option<String>,
}

impl OrderRef {
    /// The order `payment_id` names, nothing else said of it (EasyPay).
    pub fn ours(payment_id: u64) -> OrderRef {
        OrderRef {
            payment_id: Some(payment_id),
            order_id: None,
            account: None,
            sum: None,
            reverses: true,
            note: None,
        }
    }
}

/// Where a card payment stands, as its provider says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    /// Paid: the only state that credits.
    Paid,
    /// Not paid, finally (declined, an error).
    Failed,
    /// Not finished yet (3-D Secure, processing): nothing to do but wait.
    Pending,
    /// Paid and given back by the provider: shown to the admin, never debited by us.
    Reversed,
    /// Never paid within its validity.
    Expired,
    /// Paid at the provider, not credited here (another amount or currency, or the billing
    /// refused it): the order waits for the admin, and nothing pays it automatically.
    Held,
}

impl CardState {
    /// As `paysys_order.state` keeps it.
    pub fn name(self) -> &'static str {
        match self {
            CardState::Paid => "paid",
            CardState::Failed => "failed",
            CardState::Pending => "waiting",
            CardState::Reversed => "reversed",
            CardState::Expired => "expired",
            CardState::Held => "mismatch",
        }
    }
}

/// A provider's verified word on an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// Our order id, as we gave it to the provider.
    pub order_id: String,
    pub state: CardState,
    /// What the provider says was paid, and in what currency: must be the order's.
    pub amount: Amount,
    pub currency: String,
    /// The provider's own id of the payment (LiqPay's payment_id, Monobank's invoiceId,
    /// WayForPay's authCode), for the admin.
    pub provider_ref: String,
    /// The provider's status word, as sent.
    pub status: String,
    /// When the provider says the status changed, where it says (Monobank's
    /// modifiedDate): an older word never overwrites a newer one.
    pub at: Option<chrono::NaiveDateTime>,
}

/// From and to (both included), in the server's local time.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub from: chrono::NaiveDateTime,
    pub to: chrono::NaiveDateTime,
}

/// One committed, not cancelled payment, as a listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub txn_id: String,
    pub account: String,
    pub txn_date: chrono::NaiveDateTime,
    pub sum: Amount,
    pub prv_txn: u64,
}

/// The request is refused; retrying the same request will not help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `command`, or one this endpoint does not know (NoDeny `nod3`).
    NoCommand(String),
    /// The request cannot be read as a whole (body, repeated keys).
    BadRequest(String),
    BadTxnId(String),
    BadAccount(String),
    NoSuchSubscriber,
    /// The subscriber exists but is disabled (ABillS `users.disable`).
    AccountInactive,
    /// Payments through payment systems are off for the subscriber's group (ABillS
    /// `groups.disable_paysys`).
    PaymentsDisabled,
    /// `PATH_INFO` is not a domain id.
    BadDomain(String),
    /// The subscriber has no bill to credit (ABillS `users.bill_id` 0): the admin must give
    /// them one; answered "not finished", so the terminal keeps the payment and retries.
    NoBill,
    BadSum(String),
    SumBelowMin {
        min: Amount,
    },
    SumAboveMax {
        max: Amount,
    },
    /// Well-formed, but more digits than any sum can have: above every maximum.
    SumTooLarge(String),
    BadTxnDate(String),
    /// NoDeny `nod12`: the terminal's date is too far from ours.
    TxnDateOutOfWindow {
        hours: u32,
    },
    /// The txn_id was already paid with another account or sum; nothing was credited.
    Conflict {
        prv_txn: u64,
        account: String,
        sum: Amount,
    },
    /// `status` for a txn_id we never paid.
    UnknownTxn,
    /// A pay of a txn that was paid and then cancelled: it is not paid again.
    PaidThenCancelled {
        prv_txn: u64,
    },
    /// `cancel` of a `prv_txn` this system has no payment for (or whose txn_id differs).
    CancelUnknown(String),
    /// The billing cannot reverse a payment (`nod24`; none of today's billings: NoDeny and
    /// ABillS both reverse).
    CancelNotSupported(&'static str),
    /// The command before a payment (`[hooks] before_payment`) said no.
    HookRefused(String),
    /// `REMOTE_ADDR` is in no system's allow list.
    CallerNotAllowed,
    /// A signed protocol's signature is missing or wrong: nothing was looked up.
    BadSignature(String),
}

impl Refusal {
    /// What the admin reads in the log.
    pub fn detail(&self) -> String {
        match self {
            Refusal::NoCommand(c) if c.is_empty() => "no command".into(),
            Refusal::NoCommand(c) => format!("unknown command '{c}'"),
            Refusal::BadRequest(why)
            | Refusal::BadTxnId(why)
            | Refusal::BadAccount(why)
            | Refusal::BadSum(why)
            | Refusal::BadTxnDate(why) => why.clone(),
            Refusal::NoSuchSubscriber => "no such subscriber".into(),
            Refusal::AccountInactive => "the subscriber's account is disabled".into(),
            Refusal::NoBill => "the subscriber has no bill to credit (ABillS users.bill_id)".into(),
            Refusal::PaymentsDisabled => {
                "payment systems are disabled for the subscriber's group".into()
            }
            Refusal::BadDomain(why) | Refusal::CancelUnknown(why) | Refusal::HookRefused(why) => {
                why.clone()
            }
            Refusal::PaidThenCancelled { prv_txn } => {
                format!("txn was paid as prv_txn {prv_txn} and cancelled since: not paid again")
            }
            Refusal::CancelNotSupported(billing) => {
                format!("billing {billing} cannot cancel payments")
            }
            Refusal::SumBelowMin { min } => format!("sum below min_sum {min}"),
            Refusal::SumAboveMax { max } => format!("sum above max_sum {max}"),
            Refusal::SumTooLarge(why) => why.clone(),
            Refusal::TxnDateOutOfWindow { hours } => {
                format!("txn_date more than {hours} h from now")
            }
            Refusal::Conflict {
                prv_txn,
                account,
                sum,
            } => {
                format!("conflict: txn already paid as prv_txn {prv_txn} to account {account} sum {sum}")
            }
            Refusal::UnknownTxn => "no such transaction".into(),
            Refusal::CallerNotAllowed => "caller not in any system's allow list".into(),
            Refusal::BadSignature(why) => why.clone(),
        }
    }
}

/// Something on our side failed; the caller should retry later. Nothing was credited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// NoDeny `nod1`: the config file cannot be read (why, with its path).
    ConfigMissing(String),
    /// NoDeny `nod2`: the config is invalid (file, line, key and why).
    ConfigInvalid(String),
    /// The database could not be reached or read; nothing was written.
    DatabaseRead(String),
    /// A payment could not be committed (NoDeny `nod13`). The transaction was rolled back or
    /// never committed, so the retry either finds the committed row or pays afresh.
    DatabaseWrite(String),
    /// `COMMIT` was sent and its answer never came (the connection dropped): the payment may
    /// be committed or not. Answered as temporary like [`Fault::DatabaseWrite`] — the retry
    /// gets the first answer if it was — but logged for what it is, so that an admin
    /// reconciling from the log does not conclude that no money moved.
    CommitUnknown(String),
    /// A `[hooks]` command could not be run or did not finish in time: nobody decided
    /// against the payment, so it is retried.
    Hook(String),
    /// A card provider's API was needed and did not answer usefully (Monobank's public key
    /// could not be fetched): nothing was decided, the provider posts again later.
    Provider(String),
    /// A bug, caught before it reached the web server.
    Internal(String),
}

impl Fault {
    pub fn detail(&self) -> String {
        match self {
            Fault::ConfigMissing(e) | Fault::ConfigInvalid(e) => e.clone(),
            Fault::DatabaseRead(why) => format!("database: {why}"),
            Fault::DatabaseWrite(why) => format!("payment not written: {why}"),
            Fault::CommitUnknown(why) => format!(
                "commit outcome unknown: {why}; the payment may be committed: \
                 `paysys txn TXN --system SYSTEM` shows whether it is, and the retry gets the first answer"
            ),
            Fault::Hook(why) => format!("hook: {why}"),
            Fault::Provider(why) => format!("provider's API: {why}"),
            Fault::Internal(why) => format!("internal error: {why}"),
        }
    }
}

/// Who a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: u64,
    /// The full name, or masked (`Ив*** И***`) when the system says so.
    pub name: String,
    pub balance: Option<Amount>,
    /// The billing's group of the subscriber (ABillS `users.gid`), where it has groups:
    /// which of a card provider's merchants takes the payment.
    pub group: Option<u32>,
    /// The account as the system's first account key reads it, as the billing stores it
    /// (ABillS's login in its stored letters, whichever key the typed text matched): one
    /// subscriber, one text, for the rules that pick by account.
    pub account: Option<String>,
}

/// A name as a public terminal screen may show it (ABillS `FIO_HIDDEN`): enough for the
/// payer to recognise the account as theirs, too little for a passer-by. The first word
/// (the surname) keeps two letters and hides its length behind `***`; every further word
/// keeps its initial, one `*` per other letter: `Иванов Иван Иванович` →
/// `Ив*** И*** И*******`.
pub fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            let len = word.chars().count();
            if i == 0 {
                // A one- or two-letter surname keeps one letter: never the whole word.
                let keep = if len > 2 { 2 } else { 1 };
                word.chars().take(keep).collect::<String>() + "***"
            } else {
                word.chars().take(1).collect::<String>() + &"*".repeat(len.saturating_sub(1))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Checked {
        subscriber: Subscriber,
        sum: Option<Amount>,
        /// The system's `min_sum` and `max_sum`, which some protocols tell the terminal.
        limits: (Amount, Amount),
    },
    /// Committed. `repeat`: this txn_id was paid before and this is the first answer again.
    Paid {
        prv_txn: u64,
        sum: Amount,
        repeat: bool,
    },
    /// `status` of a committed payment; `cancelled`: reversed since.
    Found {
        prv_txn: u64,
        sum: Amount,
        cancelled: bool,
    },
    /// Reversed. `repeat`: it was reversed before, and this is the first answer again.
    Cancelled {
        prv_txn: u64,
        sum: Amount,
        repeat: bool,
    },
    /// The payments of a period ([`Command::List`]).
    Listed(Vec<Listed>),
    /// The payers of a [`Command::Lookup`] that were found, in the request's order; none
    /// is the protocol's "payer not found".
    LookedUp {
        date: chrono::NaiveDate,
        payers: Vec<Payer>,
    },
    /// An order booked ([`Command::Book`]), nothing credited; `repeat`: it was booked
    /// before with the same account and sum, and this is the first answer again.
    Booked {
        payment_id: u64,
        repeat: bool,
    },
    /// A card provider's word on an order that credits nothing (a failure, a payment in
    /// progress, a reversal), noted on the order ([`Command::Settle`]).
    Noted {
        order: u64,
        state: CardState,
    },
    Refused(Refusal),
    Failed(Fault),
}

impl Outcome {
    pub fn prv_txn(&self) -> Option<u64> {
        match self {
            Outcome::Paid { prv_txn, .. }
            | Outcome::Found { prv_txn, .. }
            | Outcome::Cancelled { prv_txn, .. } => Some(*prv_txn),
            Outcome::Refused(
                Refusal::Conflict { prv_txn, .. } | Refusal::PaidThenCancelled { prv_txn },
            ) => Some(*prv_txn),
            _ => None,
        }
    }

    /// The human reason, for the log; `None` for plain success.
    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::Refused(r) => Some(r.detail()),
            Outcome::Failed(f) => Some(f.detail()),
            Outcome::Paid { repeat: true, .. } => {
                Some("repeat: first answer returned, nothing credited".into())
            }
            Outcome::Cancelled { repeat: true, .. } => {
                Some("repeat: cancelled before, nothing reversed now".into())
            }
            Outcome::Found {
                cancelled: true, ..
            } => Some("paid, then cancelled".into()),
            _ => None,
        }
    }
}

/// The request's fields as the caller sent them, for echoing in the answer and the log even
/// when they did not parse. Raw text: escape before use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Echo {
    pub command: String,
    pub txn_id: String,
    pub account: String,
    pub sum: String,
    /// The whole request as received, for `[log] debug = true`.
    pub dump: String,
    /// The request's parameters as received, in order (ABillS keeps them with each
    /// payment, `paysys_log.info`).
    pub params: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_as_terminals_show_them() {
        let table = [
            ("Иванов Иван Иванович", "Ив*** И*** И*******"),
            ("Petrov  Petr", "Pe*** P***"),
            ("Ли", "Л***"),
            ("", ""),
            ("  ", ""),
        ];
        for (name, masked) in table {
            assert_eq!(mask_name(name), masked, "{name:?}");
        }
    }
}
