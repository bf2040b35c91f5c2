//! Wire protocols: one file each, one shape for all.
//!
//! A protocol turns a [`Request`] into a typed [`Command`] and an [`Outcome`] into the bytes
//! its callers expect. It knows nothing about databases or billing; the pipeline in
//! [`crate::endpoint`] never matches on a protocol's name. Adding a protocol is adding a file
//! and a line in [`by_name`].

use chrono::NaiveDateTime;

use crate::cgi::{Request, Response};
use crate::domain::AccountKey;
use crate::outcome::{Command, Echo, Outcome, Refusal};

pub mod osmp;

/// What a protocol needs from the system's config to parse a request.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    pub account_key: AccountKey,
    /// The server's local time, for `txn_date=now` on test systems.
    pub now: NaiveDateTime,
    pub test: bool,
}

/// An answer, plus how the journal should name its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub response: Response,
    /// The protocol's result code as it went out (`0`, `300`).
    pub result: String,
    /// The protocol's comment as it went out (`OK`, `nod12`).
    pub comment: String,
}

pub trait Protocol: Sync {
    /// The name used in `[[system]] protocol = "…"`.
    fn name(&self) -> &'static str;

    /// The request's fields as sent, for the answer and the log; never fails.
    fn echo(&self, request: &Request) -> Echo;

    /// The request as a command with domain values, or why it cannot be one.
    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal>;

    /// The answer for `outcome`. Every value taken from `echo` must be escaped.
    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply;
}

/// Every protocol a config may name.
pub const NAMES: &[&str] = &["osmp"];

pub fn by_name(name: &str) -> Option<&'static dyn Protocol> {
    match name {
        "osmp" => Some(&osmp::Osmp),
        _ => None,
    }
}
