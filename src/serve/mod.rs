//! How the executables serve: one request per process as a CGI, or many as a persistent
//! FastCGI server. Either way each request goes down the same [`crate::request`] path.
//!
//! * [`endpoint`] — the executables' `main`: tells a CGI start from a FastCGI one.
//! * [`server`] — the persistent mode's workers and their kept connections.
//! * [`fastcgi`] — the FastCGI records; its [`fastcgi::poller`] holds idle connections.

pub mod endpoint;
pub mod fastcgi;
pub mod server;
