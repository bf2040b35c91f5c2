//! Real web servers for end-to-end tests: Apache httpd (mod_cgid) and nginx + fcgiwrap,
//! each a private instance on a free 127.0.0.1 port, serving `<prefix>/cgi-bin/*.cgi`
//! through the production snippets `etc/apache/paysys.conf` and `etc/nginx/paysys.conf`
//! (with `@PREFIX@` replaced by the test's prefix).
//!
//! With `Options::fastcgi`, `/cgi-bin/osmp.cgi` is served in persistent (FastCGI) mode
//! instead, through the production files for that mode, while every other `*.cgi` stays a
//! plain CGI:
//! - nginx: `etc/nginx/paysys-fastcgi.conf` (`@RUNDIR@` is the instance's `run/`). The
//!   harness does what `etc/systemd/paysys-osmp.socket` + `.service` do: it creates the
//!   listening socket `run/osmp.sock` (owned by the worker user, 0660) and starts
//!   `<prefix>/cgi-bin/osmp.cgi` with that socket as its stdin, as the worker user, with the
//!   `Environment=` of the service unit (`PAYSYS_WORKERS` from `Options::workers` when not
//!   0), its stdout and stderr in `logs/osmp-fastcgi.log`. It is ready when it answers a
//!   FastCGI `FCGI_GET_VALUES` on the socket (no request, so no log line).
//! - Apache: `etc/apache/paysys-fcgid.conf` with mod_fcgid loaded, its `FcgidIPCDir` and
//!   `FcgidProcessTableFile` in the instance's `run/`; mod_fcgid starts osmp.cgi itself and
//!   its stderr goes to Apache's error log.
//!
//! With `Options::fastcgi_cgi = "paysys_check"` as well, `/cgi-bin/paysys_check.cgi` is the
//! persistent one instead, as the snippets' comments tell an admin to set it up: nginx's
//! persistent location rewritten for it (`paysys_check\.cgi`, `@RUNDIR@/paysys_check.sock`,
//! the `Environment=` of `etc/systemd/paysys-check.service`), Apache's `<Files "osmp.cgi">`
//! made `<FilesMatch "^(osmp|paysys_check)\.cgi$">`.
//!
//! Use it from a test file with `mod webserver;`. Standard library only.
//!
//! ```ignore
//! let prefix = webserver::temp_prefix("my_test")?;     // or any world-searchable dir
//! webserver::prepare_prefix(&prefix)?;                 // cgi-bin/, etc/, var/log/ (www-data)
//! webserver::install_cgi(&prefix, "osmp.cgi", Path::new(env!("CARGO_BIN_EXE_osmp")))?;
//! let Some(web) = WebServer::start(Kind::Nginx, &prefix, &Options::default())? else {
//!     eprintln!("skipped: nginx/fcgiwrap not installed");
//!     return;
//! };
//! let r = web.get("/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59071&sum=10", &[])?;
//! ```
//!
//! Every instance keeps all of its state (configuration, pid file, logs, lock files, the
//! cgid and fcgiwrap sockets, nginx's temp dirs) in its own directory under the system temp
//! dir, runs in its own process group, and is stopped (process group and all) on drop, so
//! tests run in parallel, each with its own server. The state directory is deleted on drop
//! unless the test is panicking or `PAYSYS_KEEP_WEB=1` is set; then its path and the tail of
//! the server's error log are printed.
//!
//! When the test runs as root (as CI does) the servers drop privileges the way production
//! ones do: Apache's children, nginx's workers and fcgiwrap run as `www-data` (or `nobody`
//! when there is no `www-data`), and so do the CGIs. Hence `prepare_prefix`, which makes
//! `var/log` writable for that user, and the check that every directory above the prefix is
//! searchable by it.
//!
//! Environment:
//! - `PAYSYS_REQUIRE_WEB=1`: a missing server binary (or mod_fcgid, with
//!   `Options::fastcgi`) is an error instead of `Ok(None)`.
//! - `PAYSYS_APACHE_BIN`, `PAYSYS_NGINX_BIN`, `PAYSYS_FCGIWRAP_BIN`: binaries to use.
//! - `PAYSYS_APACHE_MODULES`: Apache module dir (default `/usr/lib/apache2/modules`).
//! - `PAYSYS_KEEP_WEB=1`: keep every state directory.
#![allow(dead_code)]

/// One test per server kind: `name::nginx`, `name::apache`, each calling `name(kind)`.
#[allow(unused_macros)]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn nginx() {
                super::$name(super::Kind::Nginx);
            }
            #[test]
            fn apache() {
                super::$name(super::Kind::Apache);
            }
        }
    };
}

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long `start` waits for a server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Drop` waits for a server to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for one whole HTTP exchange (connect, send, receive).
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// fcgiwrap children when `Options::fcgi_children` is 0. One child serves one request at
/// a time, so this is nginx's CGI concurrency.
const DEFAULT_FCGI_CHILDREN: usize = 8;
const DEFAULT_APACHE_MODULES: &str = "/usr/lib/apache2/modules";
/// The persistent CGI's stdout and stderr, under the state dir (nginx, `fastcgi`).
const FASTCGI_LOG: &str = "logs/osmp-fastcgi.log";
/// The systemd service whose `Environment=` the persistent CGI gets (nginx, `fastcgi`), by
/// the CGI's name (`Options::fastcgi_cgi`).
const FASTCGI_SERVICES: [(&str, &str); 2] = [
    ("osmp", "etc/systemd/paysys-osmp.service"),
    ("paysys_check", "etc/systemd/paysys-check.service"),
];
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

extern "C" {
    // From the C library that std links anyway; declared here to avoid a `libc` dependency.
    fn kill(pid: i32, sig: i32) -> i32;
    fn geteuid() -> u32;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Apache,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Nginx, Kind::Apache];

    /// "nginx" or "apache": also the directory under `etc/` that holds the snippet.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Apache => "apache",
        }
    }

    /// `etc/<kind>/paysys.conf`, or the persistent-mode file (`fastcgi`):
    /// `etc/nginx/paysys-fastcgi.conf`, `etc/apache/paysys-fcgid.conf`.
    fn snippet_path(self, fastcgi: bool) -> PathBuf {
        let file = match (self, fastcgi) {
            (_, false) => "paysys.conf",
            (Kind::Nginx, true) => "paysys-fastcgi.conf",
            (Kind::Apache, true) => "paysys-fcgid.conf",
        };
        repo_path(&format!("etc/{}/{file}", self.name()))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Require HTTP basic auth with this user and password for `/cgi-bin/`.
    pub basic_auth: Option<(String, String)>,
    /// Extra environment for the CGIs (Apache `SetEnv`, nginx `fastcgi_param`). A name the
    /// snippet already sets (`PAYSYS_CONFIG`) gets this value instead. Values must not
    /// contain `"`, `\`, `$` or control characters.
    pub env: Vec<(String, String)>,
    /// nginx only: number of fcgiwrap children (CGI requests served at once); 0 means 8.
    pub fcgi_children: usize,
    /// Serve `/cgi-bin/osmp.cgi` in persistent (FastCGI) mode (see the module docs); it
    /// must have been installed into the prefix (`install_cgi`) before `start`.
    pub fastcgi: bool,
    /// nginx with `fastcgi`: `PAYSYS_WORKERS` for osmp.cgi (requests served at once); 0
    /// keeps the service unit's value. Apache: unused (mod_fcgid starts more processes
    /// instead, each serving one request at a time).
    pub workers: usize,
    /// With `fastcgi`: the CGI served persistently, `"osmp"` (also when empty) or
    /// `"paysys_check"` (see the module docs); the others stay plain CGIs.
    pub fastcgi_cgi: &'static str,
    /// nginx only: serve HTTPS with a self-signed certificate for 127.0.0.1, made with the
    /// `openssl` command (`WebServer::certificate`); `base_url` is then `https://…`. The
    /// harness's own request helpers speak plain HTTP only.
    pub tls: bool,
    /// The snippet to serve through instead of the repository's `etc/<kind>/…` file, made
    /// into the server's config the same way: an already filled-in one, such as the Debian
    /// package's `/usr/share/doc/paysys/examples/nginx/paysys.conf` (tests/deb.rs).
    pub snippet: Option<PathBuf>,
}

impl Options {
    /// The CGI served persistently with `fastcgi`: `osmp` unless `fastcgi_cgi` says otherwise.
    fn persistent(&self) -> &'static str {
        if self.fastcgi_cgi.is_empty() {
            "osmp"
        } else {
            self.fastcgi_cgi
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// In the order received; names as sent by the server.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked), decoded as UTF-8 with replacement characters.
    pub body: String,
}

impl HttpResponse {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct WebServer {
    kind: Kind,
    port: u16,
    state: PathBuf,
    server: Option<Child>,
    fcgiwrap: Option<Child>,
    /// nginx with `Options::fastcgi`: the persistent osmp.cgi.
    fastcgi: Option<Child>,
    http_timeout: Duration,
    tls: bool,
}

/// What `start_apache` / `start_nginx` started besides the server itself.
struct Started {
    server: Child,
    fcgiwrap: Option<Child>,
    fastcgi: Option<Child>,
}

/// The unprivileged user the servers and CGIs run as when the test runs as root.
#[derive(Clone, Debug)]
struct Worker {
    name: String,
    uid: u32,
    gid: u32,
}

impl WebServer {
    /// Starts a private instance on a free 127.0.0.1 port serving `prefix/cgi-bin/*.cgi`,
    /// configured by the production snippet `etc/<kind>/paysys.conf` (with
    /// `Options::fastcgi`: the persistent-mode file, see the module docs) with `@PREFIX@`
    /// replaced by `prefix`. Returns when the server answers on its port (and the
    /// persistent osmp.cgi, if any, on its socket).
    ///
    /// `Ok(None)`: the server (or fcgiwrap; with `Options::fastcgi`, Apache's mod_fcgid) is
    /// not installed; the test should print "skipped: …" and return. With
    /// `PAYSYS_REQUIRE_WEB=1` that is an error instead.
    pub fn start(kind: Kind, prefix: &Path, opts: &Options) -> Result<Option<WebServer>, String> {
        let bins = match find_binaries(kind, opts.fastcgi)? {
            Some(bins) => bins,
            None => return Ok(None),
        };
        validate_options(opts)?;
        if opts.tls && kind != Kind::Nginx {
            return Err("Options::tls: only nginx serves HTTPS in the harness".into());
        }
        let prefix = fs::canonicalize(prefix)
            .map_err(|e| format!("web server prefix {}: {e}", prefix.display()))?;
        let prefix_str = config_safe_path(&prefix, "prefix")?;
        if !prefix.join("cgi-bin").is_dir() {
            return Err(format!(
                "{}/cgi-bin is not a directory (call webserver::prepare_prefix first)",
                prefix.display()
            ));
        }
        let persistent = opts.persistent();
        if opts.fastcgi && !is_executable(&prefix.join(format!("cgi-bin/{persistent}.cgi"))) {
            return Err(format!(
                "Options::fastcgi serves {}/cgi-bin/{persistent}.cgi, which is not an executable \
                 file (call webserver::install_cgi first)",
                prefix.display()
            ));
        }
        let worker = worker_user()?;
        if let Some(w) = &worker {
            check_searchable(&prefix.join("cgi-bin"), w)?;
        }
        let snippet = opts
            .snippet
            .clone()
            .unwrap_or_else(|| kind.snippet_path(opts.fastcgi));
        let template = fs::read_to_string(&snippet)
            .map_err(|e| format!("reading {}: {e}", snippet.display()))?;
        let template = if opts.fastcgi && persistent != "osmp" {
            persistent_snippet(kind, &template, persistent)
                .map_err(|e| format!("{}: {e}", snippet.display()))?
        } else {
            template
        };

        let mut last_err = String::new();
        for _attempt in 0..5 {
            let state = new_state_dir(kind, worker.as_ref())?;
            let port = free_port()?;
            let result = match kind {
                Kind::Apache => start_apache(
                    &bins,
                    &state,
                    port,
                    &prefix_str,
                    &template,
                    opts,
                    worker.as_ref(),
                ),
                Kind::Nginx => start_nginx(
                    &bins,
                    &state,
                    port,
                    &prefix_str,
                    &template,
                    opts,
                    worker.as_ref(),
                ),
            };
            match result {
                Ok(started) => {
                    return Ok(Some(WebServer {
                        kind,
                        port,
                        state,
                        server: Some(started.server),
                        fcgiwrap: started.fcgiwrap,
                        fastcgi: started.fastcgi,
                        http_timeout: DEFAULT_HTTP_TIMEOUT,
                        tls: opts.tls,
                    }))
                }
                Err(Failure::PortTaken(e)) => {
                    // Another process took the port between our probe and the server's bind.
                    last_err = e;
                    let _ = fs::remove_dir_all(&state);
                }
                Err(Failure::Other(e)) => {
                    return Err(format!(
                        "{kind} did not start: {e}\n(state kept in {})",
                        state.display()
                    ))
                }
            }
        }
        Err(format!(
            "{kind} did not start, ports kept being taken: {last_err}"
        ))
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` (`https://` with `Options::tls`)
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// With `Options::tls`: the server's self-signed certificate (PEM).
    pub fn certificate(&self) -> PathBuf {
        self.state.join("conf/tls.crt")
    }

    /// This instance's private directory: `conf/`, `logs/`, `run/`, `tmp/`.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The server's error log so far. The CGIs' stderr ends up here (Apache: mod_cgid and
    /// mod_fcgid; nginx: "FastCGI sent in stderr", fcgiwrap runs with `-f`), except the
    /// persistent osmp.cgi's behind nginx: see `fastcgi_log`.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.state.join("logs/error.log")).unwrap_or_default()
    }

    /// nginx with `Options::fastcgi`: the persistent osmp.cgi's stdout and stderr so far
    /// (in production they go to the journal). Empty otherwise.
    pub fn fastcgi_log(&self) -> String {
        fs::read_to_string(self.state.join(FASTCGI_LOG)).unwrap_or_default()
    }

    /// nginx with `Options::fastcgi`: the pid of the persistent osmp.cgi.
    pub fn fastcgi_pid(&self) -> Option<u32> {
        self.fastcgi.as_ref().map(Child::id)
    }

    /// The error log and, when there is one, the persistent osmp.cgi's output: for
    /// assertion messages.
    pub fn logs(&self) -> String {
        let mut s = format!("--- logs/error.log ---\n{}", tail(&self.error_log(), 40));
        if self.fastcgi.is_some() {
            let _ = write!(
                s,
                "\n--- {FASTCGI_LOG} ---\n{}",
                tail(&self.fastcgi_log(), 40)
            );
        }
        s
    }

    /// Time limit for one whole request made by `get`, `post_form` and `request`.
    pub fn set_http_timeout(&mut self, timeout: Duration) {
        self.http_timeout = timeout;
    }

    pub fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        self.request("GET", path_and_query, headers, None)
    }

    /// POST with `Content-Type: application/x-www-form-urlencoded` (unless `headers` name
    /// another) and `body` as given (already urlencoded).
    pub fn post_form(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        self.request(
            "POST",
            path,
            &with_form_type(headers),
            Some(body.as_bytes()),
        )
    }

    /// POST with `Transfer-Encoding: chunked`, one HTTP chunk per element of `chunks` (an
    /// empty element is skipped: it would end the body), and no `Content-Length`, the way a
    /// client streaming its body sends it. `Content-Type` is a form unless `headers` name one.
    pub fn post_chunked(
        &self,
        path: &str,
        chunks: &[&[u8]],
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        let mut all = with_form_type(headers);
        all.push(("Transfer-Encoding", "chunked"));
        let mut body = Vec::new();
        for chunk in chunks.iter().filter(|c| !c.is_empty()) {
            let _ = write!(body, "{:x}\r\n", chunk.len());
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        self.request("POST", path, &all, Some(&body))
    }

    /// One HTTP/1.1 request on a fresh connection (`Connection: close`). `Host` and
    /// `Content-Length` (when there is a body and `headers` name no `Transfer-Encoding`) are
    /// added unless `headers` name them. The body is sent as given: with a
    /// `Transfer-Encoding`, already encoded.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        http_request(
            self.port,
            None,
            self.http_timeout,
            method,
            path_and_query,
            headers,
            body,
        )
    }

    /// A GET from the loopback address `from` (any of 127.0.0.0/8): the server sees it as
    /// REMOTE_ADDR, so that tests can be several payment systems' callers at once.
    pub fn get_from(&self, from: Ipv4Addr, path_and_query: &str) -> Result<HttpResponse, String> {
        http_request(
            self.port,
            Some(from),
            self.http_timeout,
            "GET",
            path_and_query,
            &[],
            None,
        )
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(child) = self.server.take() {
            stop_group(child);
        }
        if let Some(child) = self.fcgiwrap.take() {
            stop_group(child);
        }
        let fastcgi = self.fastcgi.take().is_some_and(|child| {
            stop_group(child);
            true
        });
        let keep = std::env::var("PAYSYS_KEEP_WEB").is_ok_and(|v| v == "1");
        if thread::panicking() || keep {
            eprintln!(
                "webserver: {} state kept in {}\n--- tail of {}/logs/error.log ---\n{}",
                self.kind,
                self.state.display(),
                self.state.display(),
                tail(&self.error_log(), 40)
            );
            if fastcgi {
                eprintln!(
                    "--- tail of {}/{FASTCGI_LOG} ---\n{}",
                    self.state.display(),
                    tail(&self.fastcgi_log(), 40)
                );
            }
        } else {
            let _ = fs::remove_dir_all(&self.state);
        }
    }
}

/// Creates `prefix` (0755) with `cgi-bin/`, `etc/` (0755) and `var/log/` (0755, owned by the
/// user the CGIs run as — `www-data` when the test is root — so that they can write
/// `var/log/paysys_check.log`). Files the CGIs read (config) must be world-readable, which
/// they are with the usual umask 022.
pub fn prepare_prefix(prefix: &Path) -> Result<(), String> {
    for dir in ["cgi-bin", "etc", "var/log"] {
        let path = prefix.join(dir);
        fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    }
    for dir in ["", "cgi-bin", "etc", "var", "var/log"] {
        set_mode(&prefix.join(dir), 0o755)?;
    }
    if let Some(w) = worker_user()? {
        chown(&prefix.join("var/log"), w.uid, w.gid)?;
        check_searchable(prefix, &w)?;
    }
    Ok(())
}

/// A new empty directory under the system temp dir, world-searchable (0755), for use as a
/// prefix. Named after `tag`; the caller removes it when done (or leaves it to the OS).
pub fn temp_prefix(tag: &str) -> Result<PathBuf, String> {
    let dir = unique_dir(&format!("paysys-prefix-{tag}"))?;
    set_mode(&dir, 0o755)?;
    Ok(dir)
}

/// A prefix from [`temp_prefix`] that is removed when dropped — unless the test is failing,
/// so that what the CGI left there can be looked at.
pub struct TempPrefix(pub PathBuf);

impl Drop for TempPrefix {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Copies an executable (e.g. `env!("CARGO_BIN_EXE_osmp")`) to `prefix/cgi-bin/<name>`, 0755.
pub fn install_cgi(prefix: &Path, name: &str, from: &Path) -> Result<PathBuf, String> {
    let to = prefix.join("cgi-bin").join(name);
    copy_by_child(from, &to)?;
    set_mode(&to, 0o755)?;
    Ok(to)
}

/// Writes a script (e.g. `#!/bin/sh …`) to `prefix/cgi-bin/<name>`, 0755.
pub fn write_cgi_script(prefix: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let to = prefix.join("cgi-bin").join(name);
    let draft = prefix.join("cgi-bin").join(format!(".{name}.draft"));
    fs::write(&draft, text).map_err(|e| format!("writing {}: {e}", draft.display()))?;
    copy_by_child(&draft, &to)?;
    let _ = fs::remove_file(&draft);
    set_mode(&to, 0o755)?;
    Ok(to)
}

/// Copies a file that is going to be executed with `cp`, a process of its own. A file this
/// process has open for writing can be inherited by a child that another test thread forks
/// at that moment; until that child execs, executing the file fails with ETXTBSY ("Text file
/// busy"), and fcgiwrap answers "Cannot execute script" (seen under load).
fn copy_by_child(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| format!("running cp: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cp {} {}: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The value of an `Authorization` header for HTTP basic auth.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// `{SHA}` password hash (base64 of SHA-1), understood by both Apache and nginx.
pub fn htpasswd_sha_line(user: &str, password: &str) -> String {
    format!("{user}:{{SHA}}{}\n", base64(&sha1(password.as_bytes())))
}

// ---------------------------------------------------------------------------------------
// Starting the servers

struct Binaries {
    server: PathBuf,
    fcgiwrap: Option<PathBuf>,
    apache_modules: Option<PathBuf>,
}

enum Failure {
    PortTaken(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Other(e)
    }
}

fn find_binaries(kind: Kind, fastcgi: bool) -> Result<Option<Binaries>, String> {
    let require = std::env::var("PAYSYS_REQUIRE_WEB").is_ok_and(|v| v == "1");
    let missing_from = |what: String, packages: &str| -> Result<Option<Binaries>, String> {
        if require {
            Err(format!(
                "{what} (PAYSYS_REQUIRE_WEB=1; Debian: apt-get install {packages})"
            ))
        } else {
            Ok(None)
        }
    };
    let missing = |what: String| missing_from(what, "apache2 nginx fcgiwrap");
    match kind {
        Kind::Apache => {
            let Some(server) = find_binary("PAYSYS_APACHE_BIN", &["apache2", "httpd"])? else {
                return missing("apache2/httpd not found".into());
            };
            let modules = std::env::var("PAYSYS_APACHE_MODULES")
                .map(PathBuf::from)
                .unwrap_or_else(|_| PathBuf::from(DEFAULT_APACHE_MODULES));
            if !modules.join("mod_cgid.so").is_file() {
                return missing(format!("{}/mod_cgid.so not found", modules.display()));
            }
            if fastcgi && !modules.join("mod_fcgid.so").is_file() {
                return missing_from(
                    format!(
                        "{}/mod_fcgid.so not found: Apache cannot serve osmp.cgi in FastCGI mode",
                        modules.display()
                    ),
                    "libapache2-mod-fcgid",
                );
            }
            Ok(Some(Binaries {
                server,
                fcgiwrap: None,
                apache_modules: Some(modules),
            }))
        }
        Kind::Nginx => {
            let Some(server) = find_binary("PAYSYS_NGINX_BIN", &["nginx"])? else {
                return missing("nginx not found".into());
            };
            let Some(fcgiwrap) = find_binary("PAYSYS_FCGIWRAP_BIN", &["fcgiwrap"])? else {
                return missing("fcgiwrap not found".into());
            };
            Ok(Some(Binaries {
                server,
                fcgiwrap: Some(fcgiwrap),
                apache_modules: None,
            }))
        }
    }
}

/// `$override` if set (must exist), else the first of `names` in PATH or the sbin dirs.
fn find_binary(override_var: &str, names: &[&str]) -> Result<Option<PathBuf>, String> {
    if let Ok(path) = std::env::var(override_var) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(Some(path))
        } else {
            Err(format!(
                "{override_var}={} is not an executable file",
                path.display()
            ))
        };
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        dirs.push(PathBuf::from(d));
    }
    for name in names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}

/// A path in this source tree.
fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `conf/tls.crt` and `conf/tls.key` in `state`: a self-signed certificate for 127.0.0.1
/// (subjectAltName IP), valid for two days.
fn self_signed_certificate(state: &Path) -> Result<(), Failure> {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            // A server's certificate, not a CA's (which TLS clients refuse as a server's).
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(state.join("conf/tls.key"))
        .arg("-out")
        .arg(state.join("conf/tls.crt"))
        .output()
        .map_err(|e| Failure::Other(format!("openssl (for Options::tls): {e}")))?;
    if !out.status.success() {
        return Err(Failure::Other(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn validate_options(opts: &Options) -> Result<(), String> {
    if !FASTCGI_SERVICES
        .iter()
        .any(|(name, _)| *name == opts.persistent())
    {
        return Err(format!(
            "Options::fastcgi_cgi: {:?} is neither \"osmp\" nor \"paysys_check\"",
            opts.fastcgi_cgi
        ));
    }
    for (name, value) in &opts.env {
        let name_ok = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(format!("Options::env: bad variable name {name:?}"));
        }
        if value
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\\' | '$'))
        {
            return Err(format!(
                "Options::env: value of {name} has a character the server configs can't carry: {value:?}"
            ));
        }
    }
    if let Some((user, password)) = &opts.basic_auth {
        if user.is_empty()
            || user.contains(':')
            || user.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!("Options::basic_auth: bad user name {user:?}"));
        }
        if password.chars().any(|c| c.is_control()) {
            return Err("Options::basic_auth: password has control characters".into());
        }
    }
    Ok(())
}

/// The persistent-mode snippet set up for `name` instead of osmp.cgi, as its comments say:
/// nginx's osmp location rewritten for `name` (regex, split and socket), Apache's
/// `<Files "osmp.cgi">` widened to `<FilesMatch "^(osmp|name)\.cgi$">`.
fn persistent_snippet(kind: Kind, template: &str, name: &str) -> Result<String, String> {
    let count = |s: &str| template.matches(s).count();
    match kind {
        Kind::Nginx => {
            let (regex, pass) = (r"/cgi-bin/osmp\.cgi", "unix:@RUNDIR@/osmp.sock;");
            if (count(regex), count(pass)) != (2, 1) {
                return Err(format!(
                    "expected `{regex}` twice and `{pass}` once, found them {} and {} times",
                    count(regex),
                    count(pass)
                ));
            }
            Ok(template
                .replace(regex, &format!(r"/cgi-bin/{name}\.cgi"))
                .replace(pass, &format!("unix:@RUNDIR@/{name}.sock;")))
        }
        Kind::Apache => {
            // The directive lines, not the comments that name them.
            let (open, close) = ("<Files \"osmp.cgi\">", "</Files>");
            let lines: Vec<&str> = template.lines().collect();
            let at = lines.iter().position(|l| l.trim() == open);
            let end = at.and_then(|at| {
                (at..lines.len())
                    .find(|&i| lines[i].trim() == close)
                    .filter(|_| lines.iter().filter(|l| l.trim() == open).count() == 1)
            });
            let (Some(at), Some(end)) = (at, end) else {
                return Err(format!("expected one `{open}` … `{close}` block"));
            };
            let mut out = String::new();
            for (i, line) in lines.iter().enumerate() {
                let line = if i == at {
                    line.replace(open, &format!("<FilesMatch \"^(osmp|{name})\\.cgi$\">"))
                } else if i == end {
                    line.replace(close, "</FilesMatch>")
                } else {
                    line.to_string()
                };
                out.push_str(&line);
                out.push('\n');
            }
            Ok(out)
        }
    }
}

/// The path as a string that can go unquoted into nginx and Apache configs.
fn config_safe_path(path: &Path, what: &str) -> Result<String, String> {
    let s = path
        .to_str()
        .ok_or_else(|| format!("{what} {} is not UTF-8", path.display()))?;
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c))
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{what} {s:?} has characters (space, quote, $, …) that the config snippets don't quote; \
             use a plainer path"
        ))
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// `Some` when running as root: the user that server workers and CGIs run as.
fn worker_user() -> Result<Option<Worker>, String> {
    if !is_root() {
        return Ok(None);
    }
    let passwd =
        fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    for wanted in ["www-data", "nobody"] {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == wanted {
                if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                    return Ok(Some(Worker {
                        name: wanted.to_string(),
                        uid,
                        gid,
                    }));
                }
            }
        }
    }
    Err(
        "running as root, but /etc/passwd has neither www-data nor nobody to run the web server as"
            .into(),
    )
}

/// Every directory from `/` down to `dir` must be searchable by the worker user.
fn check_searchable(dir: &Path, w: &Worker) -> Result<(), String> {
    for d in dir.ancestors() {
        let m = fs::metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        let mode = m.mode();
        let ok = if m.uid() == w.uid {
            mode & 0o100 != 0
        } else if m.gid() == w.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(format!(
                "{} (mode {:o}) is not searchable by {}, the user the web server and CGIs run as; \
                 put the prefix under a world-searchable directory such as {}",
                d.display(),
                mode & 0o7777,
                w.name,
                std::env::temp_dir().display()
            ));
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {mode:o} {}: {e}", path.display()))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {uid}:{gid} {}: {e}", path.display()))
}

fn unique_dir(stem: &str) -> Result<PathBuf, String> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for _ in 0..100 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("{stem}-{}-{seq}-{nanos:x}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "could not create a unique directory {stem}-… under the temp dir"
    ))
}

/// `<tmp>/paysys-web-<kind>-…/{conf,logs,htdocs}` (root, 0755) and `{run,tmp}` (worker).
fn new_state_dir(kind: Kind, worker: Option<&Worker>) -> Result<PathBuf, String> {
    let state = unique_dir(&format!("paysys-web-{kind}"))?;
    set_mode(&state, 0o755)?;
    for sub in ["conf", "logs", "htdocs", "run", "run/lock", "tmp"] {
        let d = state.join(sub);
        fs::create_dir(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        set_mode(&d, 0o755)?;
        if let (Some(w), true) = (worker, sub.starts_with("run") || sub == "tmp") {
            chown(&d, w.uid, w.gid)?;
        }
    }
    if let Some(w) = worker {
        check_searchable(&state.join("run"), w)?;
    }
    let sock = state.join("run/fcgiwrap.sock");
    if sock.as_os_str().len() > 100 {
        return Err(format!(
            "{} is too long for a unix socket path; set TMPDIR shorter",
            sock.display()
        ));
    }
    Ok(state)
}

/// A port nobody listens on now, and that no other server of this process was given.
fn free_port() -> Result<u16, String> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..50 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("binding 127.0.0.1:0 to find a free port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr of probe socket: {e}"))?
            .port();
        if given.insert(port) {
            return Ok(port);
        }
    }
    Err("no free port found on 127.0.0.1".into())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    set_mode(path, 0o644)
}

fn log_file(path: &Path) -> Result<File, String> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// A command with a clean environment, in its own process group (so that `Drop` can stop
/// it together with everything it forked), stdout/stderr appended to `log`.
fn server_command(bin: &Path, log: &Path) -> Result<Command, String> {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(log_file(log)?)
        .stderr(log_file(log)?)
        .process_group(0);
    Ok(cmd)
}

fn start_apache(
    bins: &Binaries,
    state: &Path,
    port: u16,
    prefix: &str,
    template: &str,
    opts: &Options,
    worker: Option<&Worker>,
) -> Result<Started, Failure> {
    let st = config_safe_path(state, "state dir")?;
    let modules = bins
        .apache_modules
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_APACHE_MODULES));
    let modules = config_safe_path(modules, "Apache module dir")?;

    write_file(
        &state.join("conf/paysys.conf"),
        &template
            .replace("@PREFIX@", prefix)
            .replace("@RUNDIR@", &format!("{st}/run")),
    )?;
    write_file(&state.join("conf/mime.types"), "")?;

    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Generated by tests/webserver for one test; production part: conf/paysys.conf"
    );
    let _ = writeln!(c, "ServerRoot \"{st}\"");
    let _ = writeln!(c, "ServerName 127.0.0.1");
    let _ = writeln!(c, "Listen 127.0.0.1:{port}");
    let _ = writeln!(c, "PidFile \"{st}/run/apache2.pid\"");
    let _ = writeln!(c, "DefaultRuntimeDir \"{st}/run\"");
    let _ = writeln!(c, "Mutex file:{st}/run/lock default");
    let _ = writeln!(c, "ErrorLog \"{st}/logs/error.log\"");
    let _ = writeln!(c, "LogLevel warn");
    for m in [
        "mpm_event",
        "authz_core",
        "authz_host",
        "authz_user",
        "authn_core",
        "authn_file",
        "auth_basic",
        "alias",
        "cgid",
        "env",
        "mime",
        "setenvif",
        "log_config",
        "unixd",
    ] {
        let _ = writeln!(
            c,
            "<IfModule !{m}_module>\n    LoadModule {m}_module \"{modules}/mod_{m}.so\"\n</IfModule>"
        );
    }
    if opts.fastcgi {
        // Debian's defaults (/var/lib/apache2/fcgid/…) would be shared by every instance.
        let _ = writeln!(
            c,
            "<IfModule !fcgid_module>\n    LoadModule fcgid_module \"{modules}/mod_fcgid.so\"\n</IfModule>\n\
             FcgidIPCDir \"{st}/run/fcgid\"\nFcgidProcessTableFile \"{st}/run/fcgid_shm\""
        );
    }
    if let Some(w) = worker {
        let _ = writeln!(c, "User {}\nGroup #{}", w.name, w.gid);
    }
    c.push_str(
        "StartServers 1\nServerLimit 4\nThreadsPerChild 25\nMaxRequestWorkers 100\n\
         MinSpareThreads 25\nMaxSpareThreads 75\nTimeout 60\nKeepAlive Off\n",
    );
    let _ = writeln!(c, "ScriptSock \"{st}/run/cgid.sock\"");
    let _ = writeln!(c, "TypesConfig \"{st}/conf/mime.types\"");
    let _ = writeln!(
        c,
        "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b %D\" paysys_test"
    );
    let _ = writeln!(c, "CustomLog \"{st}/logs/access.log\" paysys_test");
    let _ = writeln!(c, "DocumentRoot \"{st}/htdocs\"");
    c.push_str("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n");
    // Readable like a real DocumentRoot: mod_cgi looks up PATH_INFO (/3) under it to set
    // PATH_TRANSLATED, and a denied lookup would log an error for every such request.
    let _ = writeln!(
        c,
        "<Directory \"{st}/htdocs\">\n    Require all granted\n</Directory>"
    );
    let _ = writeln!(c, "Include \"{st}/conf/paysys.conf\"");
    // Test-only additions. <Location> is merged after <Directory>, so these win over the
    // snippet's SetEnv and `Require all granted`.
    if !opts.env.is_empty() || opts.basic_auth.is_some() {
        c.push_str("<Location \"/cgi-bin/\">\n");
        for (name, value) in &opts.env {
            let _ = writeln!(c, "    SetEnv {name} \"{value}\"");
        }
        if let Some((user, password)) = &opts.basic_auth {
            write_file(
                &state.join("conf/htpasswd"),
                &htpasswd_sha_line(user, password),
            )?;
            // As the snippet tells the admin: with Apache's own basic auth, its password
            // stays out of the CGIs' environment.
            let _ = writeln!(
                c,
                "    AuthType Basic\n    AuthName \"paysys\"\n    AuthBasicProvider file\n    \
                 AuthUserFile \"{st}/conf/htpasswd\"\n    Require valid-user\n    \
                 SetEnv HTTP_AUTHORIZATION \"\""
            );
        }
        c.push_str("</Location>\n");
    }
    let conf = state.join("conf/httpd.conf");
    write_file(&conf, &c)?;

    let stderr_log = state.join("logs/stderr.log");
    let mut cmd = server_command(&bins.server, &stderr_log)?;
    cmd.arg("-d")
        .arg(state)
        .arg("-f")
        .arg(&conf)
        .arg("-DFOREGROUND");
    let child = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", bins.server.display()))?;
    let child = wait_ready(
        child,
        port,
        &state.join("run/apache2.pid"),
        Some(&state.join("run/cgid.sock")),
        state,
    )?;
    Ok(Started {
        server: child,
        fcgiwrap: None,
        fastcgi: None,
    })
}

fn start_nginx(
    bins: &Binaries,
    state: &Path,
    port: u16,
    prefix: &str,
    template: &str,
    opts: &Options,
    worker: Option<&Worker>,
) -> Result<Started, Failure> {
    let st = config_safe_path(state, "state dir")?;
    let socket = format!("{st}/run/fcgiwrap.sock");
    // As the snippet tells the admin: with nginx's own basic auth, its password stays out
    // of the CGIs' environment.
    let mut env = opts.env.clone();
    if opts.basic_auth.is_some() && !env.iter().any(|(n, _)| n == "HTTP_AUTHORIZATION") {
        env.push(("HTTP_AUTHORIZATION".into(), String::new()));
    }
    let snippet = NginxSnippet {
        prefix,
        rundir: &format!("{st}/run"),
        fcgiwrap_socket: &socket,
        fastcgi: opts.fastcgi,
        persistent: opts.persistent(),
        env: &env,
    };
    write_file(&state.join("conf/paysys.conf"), &snippet.render(template)?)?;
    // The snippet says `include fastcgi_params;`, which nginx resolves next to the main
    // config file: give it the system's copy (Debian: /etc/nginx/fastcgi_params).
    let params = fs::read_to_string("/etc/nginx/fastcgi_params")
        .unwrap_or_else(|_| FASTCGI_PARAMS.to_string());
    write_file(&state.join("conf/fastcgi_params"), &params)?;

    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Generated by tests/webserver for one test; production part: conf/paysys.conf"
    );
    if let Some(w) = worker {
        let _ = writeln!(
            c,
            "user {} {};",
            w.name,
            group_name(w.gid).unwrap_or_else(|| w.name.clone())
        );
    }
    let _ = writeln!(c, "worker_processes 1;");
    let _ = writeln!(c, "pid {st}/run/nginx.pid;");
    let _ = writeln!(c, "lock_file {st}/run/lock/nginx.lock;");
    let _ = writeln!(c, "error_log {st}/logs/error.log warn;");
    let _ = writeln!(c, "events {{\n    worker_connections 512;\n}}");
    let _ = writeln!(c, "http {{");
    let _ = writeln!(c, "    access_log {st}/logs/access.log;");
    for t in ["client_body", "fastcgi", "proxy", "scgi", "uwsgi"] {
        let _ = writeln!(c, "    {t}_temp_path {st}/tmp/{t};");
    }
    let _ = writeln!(c, "    server {{");
    if opts.tls {
        self_signed_certificate(state)?;
        let _ = writeln!(c, "        listen 127.0.0.1:{port} ssl;");
        let _ = writeln!(c, "        ssl_certificate {st}/conf/tls.crt;");
        let _ = writeln!(c, "        ssl_certificate_key {st}/conf/tls.key;");
    } else {
        let _ = writeln!(c, "        listen 127.0.0.1:{port};");
    }
    let _ = writeln!(c, "        server_name 127.0.0.1;");
    let _ = writeln!(c, "        root {st}/htdocs;");
    if let Some((user, password)) = &opts.basic_auth {
        write_file(
            &state.join("conf/htpasswd"),
            &htpasswd_sha_line(user, password),
        )?;
        let _ = writeln!(
            c,
            "        auth_basic \"paysys\";\n        auth_basic_user_file {st}/conf/htpasswd;"
        );
    }
    let _ = writeln!(c, "        include {st}/conf/paysys.conf;");
    let _ = writeln!(
        c,
        "        location / {{\n            return 404;\n        }}"
    );
    let _ = writeln!(c, "    }}\n}}");
    let conf = state.join("conf/nginx.conf");
    write_file(&conf, &c)?;

    // fcgiwrap first: nginx's first request must find the socket.
    let fcgiwrap_bin = bins
        .fcgiwrap
        .as_deref()
        .ok_or_else(|| Failure::Other("fcgiwrap binary missing".into()))?;
    let children = if opts.fcgi_children == 0 {
        DEFAULT_FCGI_CHILDREN
    } else {
        opts.fcgi_children
    };
    let mut cmd = server_command(fcgiwrap_bin, &state.join("logs/fcgiwrap.log"))?;
    cmd.arg("-f")
        .arg("-c")
        .arg(children.to_string())
        .arg("-s")
        .arg(format!("unix:{socket}"));
    if let Some(w) = worker {
        // As in Debian's fcgiwrap.service: User=www-data, Group=www-data.
        cmd.uid(w.uid).gid(w.gid);
    }
    let mut fcgiwrap = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", fcgiwrap_bin.display()))?;
    if let Err(e) = wait_unix_socket(&mut fcgiwrap, Path::new(&socket), state) {
        stop_group(fcgiwrap);
        return Err(Failure::Other(e));
    }
    // The persistent CGI (osmp.cgi), as the systemd socket and service start it.
    let fastcgi = if opts.fastcgi {
        match start_osmp_fastcgi(state, prefix, opts, worker) {
            Ok(child) => Some(child),
            Err(e) => {
                stop_group(fcgiwrap);
                return Err(Failure::Other(e));
            }
        }
    } else {
        None
    };
    let stop_helpers = |fastcgi: Option<Child>, fcgiwrap: Child| {
        if let Some(child) = fastcgi {
            stop_group(child);
        }
        stop_group(fcgiwrap);
    };

    let mut cmd = server_command(&bins.server, &state.join("logs/stderr.log"))?;
    cmd.arg("-e")
        .arg(state.join("logs/error.log"))
        .arg("-p")
        .arg(format!("{st}/"))
        .arg("-c")
        .arg(&conf)
        .arg("-g")
        .arg("daemon off;");
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            stop_helpers(fastcgi, fcgiwrap);
            return Err(Failure::Other(format!(
                "spawning {}: {e}",
                bins.server.display()
            )));
        }
    };
    match wait_ready(child, port, &state.join("run/nginx.pid"), None, state) {
        Ok(child) => Ok(Started {
            server: child,
            fcgiwrap: Some(fcgiwrap),
            fastcgi,
        }),
        Err(e) => {
            stop_helpers(fastcgi, fcgiwrap);
            Err(e)
        }
    }
}

/// What `etc/systemd/paysys-osmp.socket` and `.service` do, for one instance: binds
/// `state/run/osmp.sock` (the worker user's, 0660, so nginx's workers can connect), starts
/// `prefix/cgi-bin/osmp.cgi` with it as stdin, as the worker user, with the service's
/// `Environment=` (`@PREFIX@` filled in; `PAYSYS_WORKERS` from `opts.workers` unless 0), in
/// a process group of its own. Returns once it answers `FCGI_GET_VALUES` on the socket.
/// With `Options::fastcgi_cgi = "paysys_check"`: `paysys_check.sock`, `paysys_check.cgi`
/// and `paysys-check.service` (`.socket`) instead.
fn start_osmp_fastcgi(
    state: &Path,
    prefix: &str,
    opts: &Options,
    worker: Option<&Worker>,
) -> Result<Child, String> {
    let name = opts.persistent();
    let service = FASTCGI_SERVICES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, unit)| *unit)
        .ok_or_else(|| format!("no service unit for {name}.cgi"))?;
    let mut env = service_environment(&repo_path(service), prefix)?;
    if opts.workers > 0 {
        env.retain(|(name, _)| name != "PAYSYS_WORKERS");
        env.push(("PAYSYS_WORKERS".into(), opts.workers.to_string()));
    }
    let socket = state.join(format!("run/{name}.sock"));
    let listener =
        UnixListener::bind(&socket).map_err(|e| format!("binding {}: {e}", socket.display()))?;
    if let Some(w) = worker {
        chown(&socket, w.uid, w.gid)?;
    }
    set_mode(&socket, 0o660)?;

    let exe = Path::new(prefix).join(format!("cgi-bin/{name}.cgi"));
    let mut cmd = server_command(&exe, &state.join(FASTCGI_LOG))?;
    cmd.envs(env.iter().map(|(n, v)| (n, v)))
        .stdin(Stdio::from(OwnedFd::from(listener)));
    if let Some(w) = worker {
        // As the service's User=www-data, Group=www-data.
        cmd.uid(w.uid).gid(w.gid);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {} (FastCGI): {e}", exe.display()))?;
    match wait_fastcgi(&mut child, &socket) {
        Ok(()) => Ok(child),
        Err(e) => {
            stop_group(child);
            let log = fs::read_to_string(state.join(FASTCGI_LOG)).unwrap_or_default();
            Err(format!(
                "{name}.cgi in FastCGI mode (stdin: the listening socket {}): {e}\n\
                 --- {FASTCGI_LOG} ---\n{}",
                socket.display(),
                tail(&log, 30)
            ))
        }
    }
}

/// `NAME=value` pairs of the `Environment=` lines of a systemd unit, `@PREFIX@` filled in.
/// Only the plain form (no quotes, no specifiers) is understood; anything else is an error
/// rather than a silent difference from what systemd would do.
fn service_environment(unit: &Path, prefix: &str) -> Result<Vec<(String, String)>, String> {
    let text = fs::read_to_string(unit).map_err(|e| format!("reading {}: {e}", unit.display()))?;
    let mut env = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("Environment=") else {
            continue;
        };
        for assignment in rest.split_whitespace() {
            let pair = assignment.split_once('=').filter(|(n, v)| {
                !n.is_empty() && !(n.to_string() + v).contains(['"', '\'', '%', '\\'])
            });
            let Some((name, value)) = pair else {
                return Err(format!(
                    "{}: the test harness understands only Environment=NAME=value (no quotes or \
                     specifiers), not {line:?}",
                    unit.display()
                ));
            };
            env.push((name.to_string(), value.replace("@PREFIX@", prefix)));
        }
    }
    Ok(env)
}

/// Waits until the process behind `socket` answers a FastCGI `FCGI_GET_VALUES` record (a
/// management record: no request is run, nothing is logged). Fails when the process exits
/// first (for example: it took its stdin for a CGI request) or after START_TIMEOUT.
fn wait_fastcgi(child: &mut Child, socket: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no answer yet");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "exited at startup ({status}) instead of serving FastCGI on the listening socket \
                 it got as stdin (an osmp.cgi without the FastCGI mode?); last probe: {last}"
            ));
        }
        match fastcgi_get_values(socket) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no FastCGI answer after {START_TIMEOUT:?}: {last} (does this osmp.cgi have \
                 the FastCGI mode?)"
            ));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// One `FCGI_GET_VALUES` (asking for `FCGI_MPXS_CONNS`) on a fresh connection; `Ok` when a
/// `FCGI_GET_VALUES_RESULT` record comes back.
fn fastcgi_get_values(socket: &Path) -> Result<(), String> {
    const GET_VALUES: u8 = 9;
    const GET_VALUES_RESULT: u8 = 10;
    let name = b"FCGI_MPXS_CONNS";
    let mut body = vec![name.len() as u8, 0];
    body.extend_from_slice(name);
    let mut record = vec![1, GET_VALUES, 0, 0, 0, body.len() as u8, 0, 0];
    record.extend_from_slice(&body);

    let mut conn = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_millis(500)))
        .and_then(|()| conn.set_write_timeout(Some(Duration::from_millis(500))))
        .and_then(|()| conn.write_all(&record))
        .map_err(|e| format!("sending FCGI_GET_VALUES: {e}"))?;
    let mut header = [0u8; 8];
    conn.read_exact(&mut header)
        .map_err(|e| format!("reading the answer to FCGI_GET_VALUES: {e}"))?;
    if header[0] == 1 && header[1] == GET_VALUES_RESULT {
        // The whole record, then an orderly close: leaving bytes unread would reset the
        // connection, which the process would rightly log as an error.
        let rest = usize::from(u16::from_be_bytes([header[4], header[5]])) + usize::from(header[6]);
        let mut body = vec![0u8; rest];
        conn.read_exact(&mut body)
            .and_then(|()| conn.shutdown(std::net::Shutdown::Write))
            .map_err(|e| format!("reading the answer to FCGI_GET_VALUES: {e}"))?;
        // Until the process closes its side: it has then seen our end of input.
        let _ = conn.read(&mut [0u8; 64]);
        Ok(())
    } else {
        Err(format!(
            "answered FCGI_GET_VALUES with record type {} (version {})",
            header[1], header[0]
        ))
    }
}

/// How `start_nginx` fills in the nginx snippet.
struct NginxSnippet<'a> {
    prefix: &'a str,
    /// What `@RUNDIR@` becomes: the instance's `run/`.
    rundir: &'a str,
    fcgiwrap_socket: &'a str,
    /// The snippet is `paysys-fastcgi.conf`: one location passes to `@RUNDIR@/osmp.sock`.
    fastcgi: bool,
    /// With `fastcgi`: the CGI whose socket that is (`osmp`, or as `Options::fastcgi_cgi`).
    persistent: &'a str,
    env: &'a [(String, String)],
}

impl NginxSnippet<'_> {
    /// The snippet with `@PREFIX@` and `@RUNDIR@` replaced, every `fastcgi_pass` except the
    /// one to `@RUNDIR@/osmp.sock` pointed at our fcgiwrap socket, and `env` as
    /// `fastcgi_param`s: a name the snippet sets gets our value in place, other names are
    /// added at the top of every location block.
    fn render(&self, template: &str) -> Result<String, String> {
        let file = if self.fastcgi {
            "etc/nginx/paysys-fastcgi.conf"
        } else {
            "etc/nginx/paysys.conf"
        };
        let osmp_pass = format!(
            "fastcgi_pass unix:{}/{}.sock;",
            self.rundir, self.persistent
        );
        let text = template
            .replace("@PREFIX@", self.prefix)
            .replace("@RUNDIR@", self.rundir);
        let param_name = |line: &str| -> Option<String> {
            let rest = line.trim_start().strip_prefix("fastcgi_param")?;
            if !rest.starts_with([' ', '\t']) {
                return None;
            }
            rest.split_whitespace().next().map(str::to_string)
        };
        let in_snippet: HashSet<String> = text.lines().filter_map(param_name).collect();
        let mut out = String::new();
        let (mut passes, mut osmp_passes, mut locations) = (0, 0, 0);
        for line in text.lines() {
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            if t.trim_end() == osmp_pass {
                osmp_passes += 1;
            } else if t.starts_with("fastcgi_pass ") || t.starts_with("fastcgi_pass\t") {
                passes += 1;
                let _ = writeln!(out, "{indent}fastcgi_pass unix:{};", self.fcgiwrap_socket);
                continue;
            }
            if let Some(name) = param_name(line) {
                if let Some((_, value)) = self.env.iter().find(|(n, _)| *n == name) {
                    let _ = writeln!(out, "{indent}fastcgi_param {name} \"{value}\";");
                    continue;
                }
            }
            out.push_str(line);
            out.push('\n');
            if t.starts_with("location ") && t.ends_with('{') {
                locations += 1;
                for (name, value) in self.env.iter().filter(|(n, _)| !in_snippet.contains(n)) {
                    let _ = writeln!(out, "    fastcgi_param {name} \"{value}\";");
                }
            }
        }
        let expected = if self.fastcgi { (2, 1, 1) } else { (1, 0, 1) };
        if (locations, osmp_passes, passes) != expected {
            return Err(format!(
                "{file}: expected {} `location … {{` line(s), {} `fastcgi_pass unix:@RUNDIR@/osmp.sock;` \
                 and {} other `fastcgi_pass` line(s); found {locations}, {osmp_passes} and {passes}",
                expected.0, expected.1, expected.2
            ));
        }
        Ok(out)
    }
}

fn group_name(gid: u32) -> Option<String> {
    let groups = fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(gid)).then(|| f[0].to_string())
    })
}

/// Waits until the server wrote its pid file (it does so after binding its port), the port
/// answers, and (Apache) the cgid socket exists (mod_cgid appends ".<parent pid>" to the
/// ScriptSock name). Stops the server on failure.
fn wait_ready(
    mut child: Child,
    port: u16,
    pid_file: &Path,
    extra_socket: Option<&Path>,
    state: &Path,
) -> Result<Child, Failure> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let logs = startup_logs(state);
                let msg = format!("exited at startup ({status}) on port {port}:\n{logs}");
                let _ = fs::remove_file(pid_file);
                return Err(if logs.contains("Address already in use") {
                    Failure::PortTaken(msg)
                } else {
                    Failure::Other(msg)
                });
            }
            Ok(None) => {}
            Err(e) => {
                stop_group(child);
                return Err(Failure::Other(format!("waiting for the server: {e}")));
            }
        }
        let pid_ok = fs::read_to_string(pid_file).is_ok_and(|s| s.trim() == child.id().to_string());
        let extra_ok = extra_socket.is_none_or(|p| {
            let with_pid = format!("{}.{}", p.display(), child.id());
            p.exists() || Path::new(&with_pid).exists()
        });
        if pid_ok
            && extra_ok
            && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
        {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            stop_group(child);
            return Err(Failure::Other(format!(
                "not answering on 127.0.0.1:{port} after {START_TIMEOUT:?}:\n{}",
                startup_logs(state)
            )));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

fn wait_unix_socket(child: &mut Child, socket: &Path, state: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "fcgiwrap exited at startup ({status}):\n{}",
                startup_logs(state)
            ));
        }
        if UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "fcgiwrap socket {} not there after {START_TIMEOUT:?}:\n{}",
                socket.display(),
                startup_logs(state)
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn startup_logs(state: &Path) -> String {
    let mut s = String::new();
    for name in [
        "stderr.log",
        "error.log",
        "fcgiwrap.log",
        "osmp-fastcgi.log",
    ] {
        if let Ok(text) = fs::read_to_string(state.join("logs").join(name)) {
            if !text.trim().is_empty() {
                let _ = write!(s, "--- logs/{name} ---\n{}\n", tail(&text, 30));
            }
        }
    }
    s
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// SIGTERM to the child's whole process group (server, its workers, cgid, CGIs), SIGKILL
/// if it has not exited within STOP_TIMEOUT, then SIGKILL to whatever is left in the group.
fn stop_group(mut child: Child) {
    let Ok(pgid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // SAFETY: kill() has no memory-safety preconditions; a negative pid names our group.
    unsafe { kill(-pgid, SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if Instant::now() >= deadline => {
                // SAFETY: as above.
                unsafe { kill(-pgid, SIGKILL) };
                let _ = child.wait();
                break;
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
        }
    }
    // Stragglers (a CGI still running): the group id stays reserved while any member lives.
    // SAFETY: as above.
    unsafe { kill(-pgid, SIGKILL) };
}

// ---------------------------------------------------------------------------------------
// HTTP client

/// A TCP connection to 127.0.0.1:`port` from the local address `from` (bound first: std
/// has no bind-before-connect). Loopback only: every 127.x address is this machine's.
fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    if !from.is_loopback() {
        return Err(std::io::Error::other(format!(
            "{from} is not a loopback address"
        )));
    }
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned by the TcpStream made from it at
    // once; the sockaddr_in values live for the duration of each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(from, 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sockaddr(Ipv4Addr::LOCALHOST, port);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

fn http_request(
    port: u16,
    from: Option<Ipv4Addr>,
    timeout: Duration,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    if !path_and_query.starts_with('/')
        || path_and_query
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "bad request target {path_and_query:?} (must start with '/', no spaces)"
        ));
    }
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\n");
    if !has("host") {
        let _ = write!(req, "Host: 127.0.0.1:{port}\r\n");
    }
    let _ = write!(req, "Connection: close\r\n");
    if let Some(body) = body {
        if !has("content-length") && !has("transfer-encoding") {
            let _ = write!(req, "Content-Length: {}\r\n", body.len());
        }
    }
    for (name, value) in headers {
        if name.is_empty()
            || (name.to_string() + value)
                .chars()
                .any(|c| c == '\r' || c == '\n')
        {
            return Err(format!("bad header {name:?}: {value:?}"));
        }
        let _ = write!(req, "{name}: {value}\r\n");
    }
    req.push_str("\r\n");
    let mut raw = req.into_bytes();
    raw.extend_from_slice(body.unwrap_or_default());

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    let mut stream = match from {
        None => TcpStream::connect_timeout(&addr, timeout),
        Some(from) => connect_from(from, port),
    }
    .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(&raw))
        .map_err(|e| format!("sending {method} {path_and_query} to {addr}: {e}"))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{method} {path_and_query}: no complete answer within {timeout:?}"
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !response.is_empty() => {
                break
            }
            Err(e) => {
                return Err(format!(
                    "{method} {path_and_query}: reading the answer: {e}"
                ))
            }
        }
    }
    parse_response(&response, method == "HEAD")
        .map_err(|e| format!("{method} {path_and_query}: {e}"))
}

fn parse_response(raw: &[u8], head: bool) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no end of headers in {} bytes: {:?}",
                raw.len(),
                String::from_utf8_lossy(raw)
            )
        })?;
    let head_text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut resp = HttpResponse {
        status,
        headers,
        body: String::new(),
    };
    let rest = &raw[end + 4..];
    let body: Vec<u8> = if head || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(rest)?
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        if rest.len() < len {
            return Err(format!(
                "body cut short: Content-Length {len}, got {}",
                rest.len()
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    resp.body = String::from_utf8_lossy(&body).into_owned();
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body: no chunk size line")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("chunked body: bad size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunked body cut short".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------
// Small encodings (no crates): base64 and SHA-1 for basic auth.

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Used when the system has no /etc/nginx/fastcgi_params (same as nginx's own file).
const FASTCGI_PARAMS: &str = "\
fastcgi_param  QUERY_STRING       $query_string;
fastcgi_param  REQUEST_METHOD     $request_method;
fastcgi_param  CONTENT_TYPE       $content_type;
fastcgi_param  CONTENT_LENGTH     $content_length;
fastcgi_param  SCRIPT_NAME        $fastcgi_script_name;
fastcgi_param  REQUEST_URI        $request_uri;
fastcgi_param  DOCUMENT_URI       $document_uri;
fastcgi_param  DOCUMENT_ROOT      $document_root;
fastcgi_param  SERVER_PROTOCOL    $server_protocol;
fastcgi_param  REQUEST_SCHEME     $scheme;
fastcgi_param  HTTPS              $https if_not_empty;
fastcgi_param  GATEWAY_INTERFACE  CGI/1.1;
fastcgi_param  SERVER_SOFTWARE    nginx/$nginx_version;
fastcgi_param  REMOTE_ADDR        $remote_addr;
fastcgi_param  REMOTE_PORT        $remote_port;
fastcgi_param  REMOTE_USER        $remote_user;
fastcgi_param  SERVER_ADDR        $server_addr;
fastcgi_param  SERVER_PORT        $server_port;
fastcgi_param  SERVER_NAME        $server_name;
";

/// `headers`, plus a form `Content-Type` unless they name one.
fn with_form_type<'a>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = headers.to_vec();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    all
}
