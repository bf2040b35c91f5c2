//! The admin's commands: what `paysys` does besides serving requests. None of it is on
//! the request path; the reports only read, and the terminal pays through a deployment
//! over HTTP(S) like any terminal would.
//!
//! * [`report`] — `paysys report`: credited, cancelled and refused pays over days.
//! * [`requests`] — `paysys requests`: the request history read back, and purged.
//! * [`audit`] — `paysys audit`: our ledger against the billing's own rows and balances.
//! * [`reconcile`] — `paysys reconcile`: a provider's daily registry against our rows.
//! * [`abills_import`] — `paysys import-abills`: ABillS's systems as a config overlay.
//! * [`paypro`] — PayPRO terminals' provider files (`paysys paypro-provider`).
//! * `terminal` — `paysys terminal`: an OSMP or PayPRO terminal in a command (feature
//!   `terminal`).
//! * [`statement`] — `paysys statement`: bank statements imported and credited once, and
//!   the queue of rows no rule could match.
//! * [`progress`] — the line on the admin's terminal during a long `report` or `reconcile`.

pub mod abills_import;
pub mod audit;
pub mod paypro;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod requests;
pub mod statement;
#[cfg(feature = "terminal")]
pub mod terminal;
