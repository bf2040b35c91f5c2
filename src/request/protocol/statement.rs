//! A bank account's statement (`[[statement.bank]]`): no wire protocol at all. Its rows
//! are read from the bank's files or API by `paysys statement` and credited through the
//! same ledger as every payment; no request ever speaks for it (the endpoints never offer
//! it, and the config gives it no allow list). What is here names its outcomes on the log
//! line, as a callback's are named.

use crate::cgi::{Request, Response};
use crate::config::ProtocolKind;
use crate::outcome::{Command, Echo, Outcome, Refusal};
use crate::protocol::{form_echo, ParseContext, Protocol, Reply};

/// The protocol of a statement's rows.
pub struct Statement;

impl Protocol for Statement {
    fn secrets(&self) -> &'static [&'static str] {
        &[]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Statement
    }

    fn echo(&self, request: &Request) -> Echo {
        form_echo(request)
    }

    /// Never a request: a statement's rows come from the bank.
    fn parse(&self, _request: &Request, _ctx: &ParseContext) -> Result<Command, Refusal> {
        Err(Refusal::CallerNotAllowed)
    }

    fn render(&self, _echo: &Echo, outcome: &Outcome) -> Reply {
        let (result, comment) = match outcome {
            Outcome::Paid { repeat: false, .. } => ("0", "credited"),
            Outcome::Paid { repeat: true, .. } => ("0", "credited before"),
            Outcome::Refused(Refusal::PaidThenCancelled { .. }) => ("7", "cancelled before"),
            Outcome::Refused(Refusal::Conflict { .. }) => {
                ("7", "the same row was credited with another account or sum")
            }
            Outcome::Refused(_) => ("5", "not credited"),
            Outcome::Failed(_) => ("1", "temporary error"),
            _ => ("5", "unexpected"),
        };
        Reply {
            response: Response {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                body: format!("{comment}\n"),
                headers: Default::default(),
            },
            result: result.into(),
            comment: comment.into(),
        }
    }
}
