//! The executables' `main`: a CGI run, or the persistent mode.
//!
//! Started as a CGI, [`run`] reads the process's CGI environment, answers on stdout, writes
//! the log line and exits. Started with a listening socket as standard input, it is a
//! FastCGI responder ([`crate::server`]) and does the same for each request it accepts,
//! keeping its database connection between them. Either way no panic reaches the web
//! server. What is served is the [`Endpoint`]: `osmp.cgi` and `paysys_check.cgi` differ in
//! nothing else.

use std::path::PathBuf;
use std::time::Instant;

use crate::cgi::Request;
use crate::config;
use crate::db::Connections;
use crate::fastcgi::Listener;
use crate::pipeline::{record, serve_safely, Endpoint};
use crate::server;

/// `main` of a CGI executable serving `endpoint`. Always answers; returns the exit code.
pub fn run(endpoint: &'static Endpoint) -> i32 {
    let started = Instant::now();
    let _ = simplelog::WriteLogger::init(
        log::LevelFilter::Warn,
        simplelog::Config::default(),
        std::io::stderr(),
    );
    let config_path = config_path(std::env::var_os("PAYSYS_CONFIG"));
    if let Some(listener) = Listener::from_stdin() {
        return server::run(endpoint, listener, config_path);
    }
    let request = Request::from_process();
    let mut conns = Connections::per_request();
    let mut served = serve_safely(endpoint, &request, &config_path, &mut conns);
    if let Err(e) = served
        .reply
        .response
        .write_to(&mut std::io::stdout().lock())
    {
        log::error!("cannot write the answer to the web server: {e}");
    }
    // The answer first, then the request-history row and the log line. The web server
    // ends a CGI's answer when the process exits, so the caller waits for them all the
    // same; the process must not close its output early to avoid that, as a web server
    // may then stop it (Apache kills a CGI still running after its request ended).
    record(&request, &mut served, &mut conns, started);
    0
}

/// The main config file: `PAYSYS_CONFIG` if set, else `../etc/paysys.toml` beside the
/// executable's directory.
fn config_path(from_env: Option<std::ffi::OsString>) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let env_config = from_env.filter(|v| !v.is_empty()).map(PathBuf::from);
    config::locate(env_config.as_deref(), exe.as_deref())
}
