//! A system's own limits, the same whatever protocol it speaks: the sum range and the
//! `txn_date` window.
//!
//! They are today's limits, and they judge only payments not made yet: a pay whose txn was
//! committed under earlier limits (or earlier in its window) gets its first answer whatever
//! they say now, which [`crate::endpoint`] makes sure of by asking the ledger before it
//! answers a pay with one of these refusals.

use chrono::{DateTime, TimeZone};

use crate::config::System;
use crate::domain::Amount;
use crate::outcome::{Command, Refusal};

/// Refuses a command that is well-formed but outside what `system` accepts.
pub fn check<Tz: TimeZone>(
    system: &System,
    command: &Command,
    now: &DateTime<Tz>,
) -> Result<(), Refusal> {
    let sum = match command {
        // A check is about the account: terminals pre-check with `sum=0.00` or no sum at
        // all, and must get the account's answer, not a sum refusal.
        Command::Check(c) => c.sum.filter(|s| !s.is_zero()),
        Command::Pay(p) => Some(p.sum),
        Command::Book(b) => Some(b.sum),
        Command::Status(_)
        | Command::Cancel(_)
        | Command::List(_)
        | Command::Confirm(_)
        | Command::Unbook(_)
        | Command::Settle(_)
        | Command::Lookup(_) => None,
    };
    if let Some(sum) = sum {
        check_sum(system, sum)?;
    }
    if let Command::Pay(pay) = command {
        // NoDeny's nod12: a payment dated more than a day (by default) from now is refused,
        // so that a terminal with a wrong clock cannot post into the past or the future.
        if !pay.txn_date.within(now, system.txn_window_hours) {
            return Err(Refusal::TxnDateOutOfWindow {
                hours: system.txn_window_hours,
            });
        }
    }
    Ok(())
}

fn check_sum(system: &System, sum: Amount) -> Result<(), Refusal> {
    if sum < system.min_sum {
        return Err(Refusal::SumBelowMin {
            min: system.min_sum,
        });
    }
    if sum > system.max_sum {
        return Err(Refusal::SumAboveMax {
            max: system.max_sum,
        });
    }
    Ok(())
}
