//! paysys: a payment endpoint for ISP billings.
//!
//! Payment terminals and payment systems call a CGI executable under the web server's
//! `cgi-bin`; it decides who is calling, who is being paid and whether the payment may go
//! through, credits the subscriber's balance in the billing's MySQL database exactly once,
//! answers in the caller's protocol, and leaves one log line an admin can grep.
//!
//! # Layout
//!
//! The folders under `src/` say what a module is for: the path of one request, the money,
//! the admin's commands, and how the executables serve. Money reaches an ISP three ways —
//! terminals and bank apps calling us (the request path), card payments from the
//! subscriber's page, bank statements — and each ends in the same [`money`] code.
//!
//! One request flows one way through these modules; nothing calls back up. Both
//! executables — `osmp.cgi` (NoDeny's `osmp.pl`) and `paysys_check.cgi` (ABillS's script,
//! every system behind one URL) — run the same [`pipeline`]; they differ only in their
//! [`pipeline::Endpoint`].
//!
//! [`request`] — the request path:
//!
//! * [`cgi`] — the edge: CGI environment and stdin become a [`cgi::Request`] (body capped,
//!   caller = `REMOTE_ADDR` only); a [`cgi::Response`] goes back in one write.
//! * [`gate`] — which payment system is calling: the first whose allow list admits the
//!   caller (or whose `test_allow` does, in test mode).
//! * [`protocol`] — one file per wire protocol ([`protocol::osmp`] with its iBox and Kaspi
//!   dialects, [`protocol::nonstop24`], [`protocol::city24`], [`protocol::privat`],
//!   [`protocol::easypay`], [`protocol::portmone`], [`protocol::click`], [`protocol::payme`]):
//!   parse a request into a
//!   [`outcome::Command`] made of [`domain`] values, render an [`outcome::Outcome`], in the
//!   [`protocol::Dialect`] of the executable. [`protocol::sign`] builds the text of a
//!   signature over fields joined by a separator so that it signs one request only.
//! * [`policy`] — the system's limits: sum range, `txn_date` window. They judge new
//!   payments only.
//! * [`hooks`] — the admin's commands before and after a payment.
//! * [`journal`] — the log line.
//! * [`history`] — the request history in the database (`[log] database = true`): one row
//!   per request of a known system, secrets masked; `paysys requests` reads and purges it.
//! * [`outcome`] — the vocabulary between the stages: the command asked, every way it ends.
//! * [`pipeline`] — strings them together for one request.
//!
//! [`card`] — card payments the subscriber starts from our page (the second way money
//! comes): the providers' wire code, pure functions with no I/O ([`card::liqpay`],
//! [`card::monobank`], [`card::wayforpay`]: checkout forms and invoices, callbacks verified
//! over the bytes received, status requests); the page ([`card::page`]) that makes an order
//! and sends the browser to the provider, picking the merchant ([`card::merchant`]); the
//! callbacks ([`card::callback`]) and the sweeper ([`card::sweep`]), whose provider's word
//! is settled by the [`pipeline`] through the same ledger as a terminal's pay.
//!
//! [`statement`] — bank statements (the third way money comes): the parsing layer, pure
//! functions over bytes (a PrivatBank Autoclient page, a Monobank statement, a
//! `1CClientBankExchange` file in both versions, a bank's CSV through the admin's preset)
//! into typed [`statement::StatementRow`]s with a stable row id; the admin's rules
//! ([`statement::matching`]); the import ([`statement::import`]) that credits a row once,
//! through the ledger, as a payment of its bank's system under the row's id, and keeps the
//! rest in a queue ([`statement::store`]); and the pull from the banks' APIs
//! ([`statement::pull`]).

//! [`money`] — the only code that moves money:
//!
//! * [`ledger`] — one transaction, exactly once; cancel.
//! * [`billing`] — one file per billing schema ([`billing::nodeny`], [`billing::abills`]):
//!   find the subscriber, credit and reverse within the ledger's transaction.
//!
//! [`serve`] — how the executables serve:
//!
//! * [`endpoint`] — the executables' `main`: a CGI run, or the persistent mode.
//! * [`server`] and [`fastcgi`] — the persistent mode: the same executable, started with a
//!   listening socket as stdin, reads each request as FastCGI records instead of a CGI
//!   environment; its [`fastcgi::poller`] holds the connections between requests, so an
//!   idle one kept by the web server costs no worker.
//!
//! [`admin`] — the admin's commands, aside from the request flow:
//!
//! * [`report`] — `paysys report`: credited, cancelled and refused pays over a range of
//!   days, from our own tables (read only).
//! * [`reconcile`] — `paysys reconcile`: a provider's daily registry against `paysys_txn`
//!   (read only).
//! * [`audit`] — `paysys audit`: every payment of `paysys_txn` against the billing's own
//!   rows, the billing's rows of our systems that it does not know, and the balances of the
//!   subscribers paid (read only; each billing's part in [`billing::audit`]).
//! * [`abills_import`] — `paysys import-abills`: the systems an admin set up in ABillS's
//!   web interface, as a `paysys.d/` overlay.
//! * [`paypro`] — PayPRO terminals' provider files, read and turned into the requests a
//!   terminal sends us (`paysys paypro-provider`).
//! * `terminal` — `paysys terminal`, an OSMP or PayPRO terminal in a command that pays
//!   through a deployment over HTTP(S), to try it end to end.
//! * [`progress`] — the line on the admin's terminal that says what a long `report` or
//!   `reconcile` is doing; nothing when stderr is not a terminal.
//!
//! Shared leaves, at the top, used by all of the above:
//!
//! * [`config`] — `etc/paysys.toml` plus `etc/paysys.d/*.toml` overlays, checked and typed
//!   once; errors name file, line and key. A leaf: it names billings and protocols, their
//!   code lives elsewhere. It reads the keys every system has; each protocol's own keys
//!   (24NonStop's `secret`, EasyPay's `certificate`, …) are read by that protocol's file in
//!   [`config::protocols`].
//! * [`domain`] — amounts, txn ids, accounts, dates: parsed once, at the edge.
//! * [`allow`] — `REMOTE_ADDR` and allow lists (IPs, networks, `!` exclusions).
//! * [`db`] — connections with the timeouts a terminal needs: one per request (CGI) or one
//!   kept by each worker (FastCGI); the first synced node of a Galera cluster's URL list,
//!   with causal reads.
//! * [`cp1251`] — Windows-1251, for the files Russian-language Windows writes.
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

pub mod admin;
pub mod money;
pub mod request;
pub mod serve;

pub mod allow;
pub mod card;
pub mod config;
pub mod cp1251;
pub mod db;
pub mod domain;
pub mod statement;

// The stable public paths. Every module keeps the path it had before the folders
// (`paysys::protocol`, `paysys::ledger`, …): the executables, tests, benchmarks and fuzz
// targets use them, and so does the code inside the crate (`crate::ledger`), so a module
// can move between folders without touching its callers.
#[cfg(feature = "terminal")]
pub use admin::terminal;
pub use admin::{abills_import, audit, paypro, progress, reconcile, report};
pub use money::{billing, ledger};
pub use request::{cgi, gate, history, hooks, journal, outcome, pipeline, policy, protocol};
pub use serve::{endpoint, fastcgi, server};
