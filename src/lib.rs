//! paysys: a payment endpoint for ISP billings.
//!
//! Payment terminals and payment systems call a CGI executable under the web server's
//! `cgi-bin`; it decides who is calling, who is being paid and whether the payment may go
//! through, credits the subscriber's balance in the billing's MySQL database exactly once,
//! answers in the caller's protocol, and leaves one log line an admin can grep.
//!
//! # Layout
//!
//! One request flows one way through these modules; nothing calls back up. Both
//! executables — `osmp.cgi` (NoDeny's `osmp.pl`) and `paysys_check.cgi` (ABillS's script,
//! every system behind one URL) — run the same [`pipeline`]; they differ only in their
//! [`pipeline::Endpoint`].
//!
//! * [`cgi`] — the edge: CGI environment and stdin become a [`cgi::Request`] (body capped,
//!   caller = `REMOTE_ADDR` only); a [`cgi::Response`] goes back in one write.
//! * [`config`] — `etc/paysys.toml` plus `etc/paysys.d/*.toml` overlays, checked and typed
//!   once; errors name file, line and key. A leaf: it names billings and protocols, their
//!   code lives elsewhere.
//! * [`allow`] — `REMOTE_ADDR` and allow lists (IPs, networks, `!` exclusions).
//! * [`gate`] — which payment system is calling: the first whose allow list admits the
//!   caller (or whose `test_allow` does, in test mode).
//! * [`protocol`] — one file per wire protocol ([`protocol::osmp`] with its iBox dialect,
//!   [`protocol::nonstop24`], [`protocol::city24`], [`protocol::privat`],
//!   [`protocol::easypay`]): parse a request into a
//!   [`outcome::Command`] made of [`domain`] values, render an [`outcome::Outcome`], in the
//!   [`protocol::Dialect`] of the executable. [`protocol::sign`] builds the text of a
//!   signature over fields joined by a separator so that it signs one request only.
//! * [`card`] — card providers' wire code, pure functions with no I/O: build the checkout
//!   form or invoice, verify a callback's signature over the bytes received and parse it
//!   into typed values, build and read the status API's request and answer
//!   ([`card::liqpay`], [`card::monobank`], [`card::wayforpay`]).
//! * [`policy`] — the system's limits: sum range, `txn_date` window. They judge new
//!   payments only.
//! * [`billing`] — one file per billing schema ([`billing::nodeny`], [`billing::abills`]):
//!   find the subscriber, credit and reverse within the ledger's transaction.
//! * [`db`] — connections with the timeouts a terminal needs: one per request (CGI) or one
//!   kept by each worker (FastCGI); the first synced node of a Galera cluster's URL list,
//!   with causal reads.
//! * [`ledger`] — the only code that moves money: one transaction, exactly once; cancel.
//! * [`hooks`] — the admin's commands before and after a payment.
//! * [`journal`] — the log line.
//! * [`reconcile`] — `paysys reconcile`: a provider's daily registry against `paysys_txn`
//!   (read only; not on the request path).
//! * [`report`] — `paysys report`: credited, cancelled and refused pays over a range of
//!   days, from our own tables (read only; not on the request path).
//! * [`progress`] — the line on the admin's terminal that says what a long `report` or
//!   `reconcile` is doing; nothing when stderr is not a terminal.
//! * [`pipeline`] — strings them together for one request.
//! * [`paypro`] — aside from the request flow: PayPRO terminals' provider files, read and
//!   turned into the requests a terminal sends us (`paysys paypro-provider`).
//! * [`terminal`] — aside from the request flow too: `paysys terminal`, an OSMP or PayPRO
//!   terminal in a command that pays through a deployment over HTTP(S), to try it end to end.
//! * [`endpoint`] — the executables' `main`: a CGI run, or the persistent mode.
//! * [`server`] and [`fastcgi`] — the persistent mode: the same executable, started with a
//!   listening socket as stdin, reads each request as FastCGI records instead of a CGI
//!   environment; its [`fastcgi::poller`] holds the connections between requests, so an
//!   idle one kept by the web server costs no worker.
//!
//! # Invariants about money
//!
//! 1. Success only after `COMMIT`; any doubt answers the protocol's temporary error.
//! 2. Exactly once: a UNIQUE key on (system, txn id), inserted in the same transaction as
//!    the balance change.
//! 3. A repeat returns the first answer; a repeat with another account or sum is refused.
//! 4. Money is integer kopecks ([`domain::Amount`]), never a float.
//! 5. The caller is `REMOTE_ADDR`, never a header.
//! 6. All SQL is parameterized; every echoed value is escaped.
//! 7. One request, one log line, one `write()`.
//! 8. No panic reaches the web server.

pub mod abills_import;
pub mod allow;
pub mod billing;
pub mod card;
pub mod cgi;
pub mod config;
pub mod cp1251;
pub mod db;
pub mod domain;
pub mod endpoint;
pub mod fastcgi;
pub mod gate;
pub mod hooks;
pub mod journal;
pub mod ledger;
pub mod outcome;
pub mod paypro;
pub mod pipeline;
pub mod policy;
pub mod progress;
pub mod protocol;
pub mod reconcile;
pub mod report;
pub mod server;
#[cfg(feature = "terminal")]
pub mod terminal;
