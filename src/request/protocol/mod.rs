//! Wire protocols: one file each, one shape for all.
//!
//! A protocol turns a [`Request`] into a typed [`Command`] and an [`Outcome`] into the bytes
//! its callers expect. It knows nothing about databases or billing; the pipeline in
//! [`crate::pipeline`] never matches on a protocol's name. Adding a protocol is adding a
//! file, a [`ProtocolKind`] and a line in [`of`]; its config keys, if it has any, are a file
//! in [`crate::config::protocols`].
//!
//! The same protocol may answer a little differently depending on the executable that
//! serves it: [`Dialect`] says whose answers to give (OSMP on `osmp.cgi` answers as NoDeny's
//! `osmp.pl`, on `paysys_check.cgi` as ABillS's script).

use chrono::NaiveDateTime;

use crate::cgi::{Request, Response};
use crate::config::{CardSettings, ProtocolKind, RsaRule, SignRule, System};
use crate::domain::AccountRule;
use crate::ledger::OrderView;
use crate::outcome::{Command, Echo, Outcome, Refusal};

pub mod city24;
pub mod click;
pub mod easypay;
pub mod nonstop24;
pub mod osmp;
pub mod payme;
pub mod portmone;
pub mod privat;
pub mod sign;
pub mod statement;

/// What a protocol needs from the system's config to parse a request.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    pub account: &'a AccountRule,
    /// The server's local time, for `txn_date=now` on test systems.
    pub now: NaiveDateTime,
    pub test: bool,
    /// A signed protocol's rule (`None`: unsigned, or the check turned off).
    pub sign: Option<&'a SignRule>,
    /// An RSA-signed protocol's keys (EasyPay; `None` as for `sign`).
    pub rsa: Option<&'a RsaRule>,
    /// A card provider's keys (LiqPay, Monobank, WayForPay).
    pub card: Option<&'a CardSettings>,
    /// Monobank's webhook key when the config sets no `pubkey`: the cached or freshly
    /// fetched one, which the pipeline resolved before parsing
    /// ([`crate::card::pubkey::for_webhook`]), so that parsing itself does no I/O. `None`
    /// for every other system, and when nothing could be resolved.
    pub monobank_key: Option<&'a crate::card::monobank::PublicKey>,
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
    /// What `[[system]] protocol = "…"` names it.
    fn kind(&self) -> ProtocolKind;

    /// The request's fields as sent, for the answer and the log; never fails.
    fn echo(&self, request: &Request) -> Echo;

    /// The request as a command with domain values, or why it cannot be one.
    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal>;

    /// The answer for `outcome`. Every value taken from `echo` must be escaped.
    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply;

    /// The request's fields whose values the request history never keeps (signatures,
    /// tokens, card data), by name as the protocol sends them, in a form, JSON or XML.
    /// Names that say they are secrets (`sign…`, `…token…`, `card…`, `…pan`; see
    /// [`crate::history::is_secret`]) are masked whatever a protocol lists.
    fn secrets(&self) -> &'static [&'static str];
    /// How long a booked order may wait to be paid, where the protocol says (Payme: 12
    /// hours): past it, the order is cancelled when next touched. `None`: as long as it
    /// takes.
    fn order_lifetime(&self) -> Option<chrono::Duration> {
        None
    }

    /// The answer for `outcome` when the protocol's answers tell the named orders' whole
    /// story ([`Protocol::order_lifetime`] is set: Payme): `orders` are the ones the
    /// request names as they stand after it was decided (all of a listing's period) — as
    /// the request's own booking or payment left them, or read after it.
    fn render_orders(&self, echo: &Echo, outcome: &Outcome, orders: &[OrderView]) -> Reply {
        let _ = orders;
        self.render(echo, outcome)
    }

    /// The answer signed for the caller, where the protocol signs answers and the system
    /// has a key (EasyPay); why it could not be, for the log (the answer goes unsigned).
    // The unsigned reply comes back whole either way (it is still the answer); boxing it
    // for the rare failure would only move the same bytes.
    #[allow(clippy::result_large_err)]
    fn seal(&self, reply: Reply, _system: &System) -> Result<Reply, (Reply, String)> {
        Ok(reply)
    }
}

impl Reply {
    /// An XML answer: HTTP 200 — or 403 for a caller no system admits, so that a misrouted
    /// request is plain in the web server's own access log too; terminals read the XML,
    /// not the status line. `result` and `comment` are what the log line says.
    pub fn xml(body: String, outcome: &Outcome, result: String, comment: String) -> Reply {
        let status = if matches!(outcome, Outcome::Refused(Refusal::CallerNotAllowed)) {
            403
        } else {
            200
        };
        Reply {
            response: Response {
                status,
                content_type: "text/xml; charset=utf-8",
                body,
                headers: Default::default(),
            },
            result,
            comment,
        }
    }
}

/// Whose answers a protocol gives where the billings' own scripts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// NoDeny's `osmp.pl` (`osmp.cgi`).
    NoDeny,
    /// ABillS's `paysys_check.cgi`.
    Abills,
}

/// The protocol `kind` speaking `dialect`.
pub fn of(kind: ProtocolKind, dialect: Dialect) -> &'static dyn Protocol {
    match (kind, dialect) {
        (ProtocolKind::Osmp, Dialect::NoDeny) => &osmp::Osmp::NODENY,
        (ProtocolKind::Osmp, Dialect::Abills) => &osmp::Osmp::ABILLS,
        (ProtocolKind::Nonstop24, _) => &nonstop24::Nonstop24,
        (ProtocolKind::Ibox, _) => &osmp::Osmp::IBOX,
        (ProtocolKind::City24, _) => &city24::City24,
        (ProtocolKind::Privat, _) => &privat::Privat,
        (ProtocolKind::Easypay, _) => &easypay::Easypay,
        (ProtocolKind::Liqpay, _) => &crate::card::callback::Liqpay,
        (ProtocolKind::Monobank, _) => &crate::card::callback::Monobank,
        (ProtocolKind::Wayforpay, _) => &crate::card::callback::Wayforpay,
        (ProtocolKind::Statement, _) => &statement::Statement,
        (ProtocolKind::Kaspi, _) => &osmp::Osmp::KASPI,
        (ProtocolKind::Portmone, _) => &portmone::Portmone,
        (ProtocolKind::Click, _) => &click::Click,
        (ProtocolKind::Payme, _) => &payme::Payme,
    }
}

/// The echo of a form request (OSMP and its kin): `command`, `txn_id`, `account` and `sum`
/// as sent, the parameters, and the whole request for the log. Also what a request no system
/// has claimed is logged with.
pub fn form_echo(request: &Request) -> Echo {
    let mut echo = Echo {
        dump: request.dump(),
        ..Echo::default()
    };
    if let Ok(form) = request.form() {
        let field = |k: &str| form.get(k).ok().flatten().unwrap_or("").to_string();
        echo.command = field("command");
        echo.txn_id = field("txn_id");
        echo.account = field("account");
        echo.sum = field("sum");
        echo.params = form.pairs().to_vec();
    }
    echo
}

/// Requests for the protocols' unit tests, as a web server hands them over.
#[cfg(test)]
pub(crate) mod testing {
    use std::ffi::OsString;

    use crate::cgi::Request;

    /// A GET with this query string.
    pub fn get(query: &str) -> Request {
        let q = OsString::from(query);
        Request::read(
            |k| match k {
                "QUERY_STRING" => Some(q.clone()),
                "REQUEST_METHOD" => Some("GET".into()),
                "REMOTE_ADDR" => Some("127.0.0.1".into()),
                _ => None,
            },
            &mut &b""[..],
        )
    }

    /// A POST of `body` as `content_type`.
    pub fn post(content_type: &str, body: &str) -> Request {
        let len = body.len().to_string();
        let content_type = content_type.to_string();
        Request::read(
            |k| match k {
                "REQUEST_METHOD" => Some("POST".into()),
                "CONTENT_TYPE" => Some(OsString::from(&content_type)),
                "CONTENT_LENGTH" => Some(OsString::from(&len)),
                "REMOTE_ADDR" => Some("127.0.0.1".into()),
                _ => None,
            },
            &mut body.as_bytes(),
        )
    }
}
