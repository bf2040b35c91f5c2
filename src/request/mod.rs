//! The request path: what one call from a terminal or a payment system goes through, from
//! the CGI environment to the answer and the log line.
//!
//! [`cgi`] (the edge) → [`gate`] (which system?) → [`protocol`] (parse into a
//! [`outcome::Command`]) → [`policy`] (the system's limits) → [`crate::money`] (the ledger
//! credits) → [`protocol`] (render the [`outcome::Outcome`]) → [`journal`] (one log line)
//! and, with `[log] database = true`, [`history`] (one row);
//! [`hooks`] run the admin's commands around a payment, and [`pipeline`] strings it all
//! together. The executables reach it through [`crate::serve`].

pub mod cgi;
pub mod gate;
pub mod history;
pub mod hooks;
pub mod journal;
pub mod outcome;
pub mod pipeline;
pub mod policy;
pub mod protocol;
