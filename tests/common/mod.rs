//! Shared by the integration tests: a private database per test, an install base with a
//! config, and the real `osmp` executable run as a web server runs a CGI.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

/// The server tests talk to: `PAYSYS_TEST_DB_URL`, or local root over TCP.
pub fn server_url() -> String {
    std::env::var("PAYSYS_TEST_DB_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_string())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub(crate) fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos:x}", std::process::id())
}

pub mod abills;
pub mod browser;
pub mod fcgi;
pub mod galera;
pub mod mariadb;
pub mod providers;

/// A database of its own, with our tables and the NoDeny fixture; dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The server it is on (no database in the URL).
    server: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        TestDb::with_fixture(
            &std::fs::read_to_string(repo().join("sql/nodeny.sql")).expect("sql/nodeny.sql"),
        )
    }

    /// A NoDeny whose money columns are `FLOAT(10,2)`, as on old installs.
    pub fn with_float_money() -> TestDb {
        let fixture = std::fs::read_to_string(repo().join("sql/nodeny.sql"))
            .expect("sql/nodeny.sql")
            .replace("DECIMAL(12,2)", "FLOAT(10,2)");
        assert!(fixture.contains("FLOAT(10,2)"));
        TestDb::with_fixture(&fixture)
    }

    pub fn with_fixture(fixture: &str) -> TestDb {
        TestDb::on_server(&server_url(), fixture)
    }

    /// The NoDeny fixture on another server than the shared one (a private server).
    pub fn new_on(server: &str) -> TestDb {
        TestDb::on_server(
            server,
            &std::fs::read_to_string(repo().join("sql/nodeny.sql")).expect("sql/nodeny.sql"),
        )
    }

    pub fn on_server(server: &str, fixture: &str) -> TestDb {
        let name = unique("paysys_t");
        let mut admin = Conn::new(Opts::from_url(server).expect("PAYSYS_TEST_DB_URL")).unwrap_or_else(|e| {
            panic!("cannot reach the test database at {server}: {e}. Start MariaDB or set PAYSYS_TEST_DB_URL.")
        });
        admin
            .query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .expect("create database");
        let url = with_database(server, &name);
        let db = TestDb {
            name,
            url,
            server: server.to_string(),
        };
        let mut conn = db.conn();
        run_script(
            &mut conn,
            &std::fs::read_to_string(repo().join("sql/paysys.sql")).expect("sql/paysys.sql"),
        );
        run_script(&mut conn, fixture);
        db
    }

    /// A connection in autocommit mode whatever the server's default (a private server may
    /// run with `--autocommit=0`): the fixture's rows and a test's own writes are committed
    /// as they are made.
    pub fn conn(&self) -> Conn {
        Conn::new(
            OptsBuilder::from_opts(Opts::from_url(&self.url).expect("url"))
                .prefer_socket(false)
                .init(vec!["SET SESSION autocommit = 1"]),
        )
        .expect("connect")
    }

    pub fn balance(&self, id: u64) -> String {
        self.conn()
            .exec_first::<String, _, _>(
                "SELECT CAST(balance AS DECIMAL(16,2)) FROM users WHERE id = ?",
                (id,),
            )
            .expect("select")
            .expect("subscriber exists")
    }

    pub fn count(&self, sql: &str) -> u64 {
        self.conn()
            .query_first::<u64, _>(sql)
            .expect("count")
            .unwrap_or(0)
    }

    pub fn pays(&self) -> u64 {
        self.count("SELECT COUNT(*) FROM pays")
    }

    pub fn txns(&self) -> u64 {
        self.count("SELECT COUNT(*) FROM paysys_txn")
    }

    /// Statements on this database running now whose text starts with `prefix` (a pay
    /// waiting on a row lock shows as its `UPDATE users`, a status as its `SELECT id,
    /// account`).
    pub fn running(&self, prefix: &str) -> u64 {
        self.conn()
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE ?",
                (&self.name, format!("{prefix}%")),
            )
            .unwrap()
            .unwrap_or(0)
    }

    /// Waits (at most 15 s) until a statement starting with `prefix` runs on this database.
    pub fn wait_until_running(&self, prefix: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while self.running(prefix) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "never saw '{prefix}' running"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Conn::new(Opts::from_url(&self.server).expect("url")) {
            let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

/// Runs a `;`-separated SQL script, statement by statement (comments stripped).
pub fn run_script(conn: &mut Conn, script: &str) {
    let text: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        conn.query_drop(stmt)
            .unwrap_or_else(|e| panic!("{e}: {stmt}"));
    }
}

/// `mysql://u@h:p` + `db` → `mysql://u@h:p/db`, keeping a `?socket=…` query in place.
pub fn with_database(server: &str, db: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let base = base.trim_end_matches('/');
    // A URL that already names a database (mysql://u@h/x) gets it replaced.
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(i) => &base[..authority_end + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tests' config: `db_url`, one OSMP system admitting `allow`, plus `system_extra`
/// TOML lines in its `[[system]]` table.
pub fn config_text(db_url: &str, allow: &[&str], system_extra: &str) -> String {
    let allow = allow
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[database]
url = "{db_url}"
billing = "nodeny"
lock_timeout = 3

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "osmp"
protocol = "osmp"
allow = [{allow}]
account = "payment_code"
min_sum = "1.00"
max_sum = "15000.00"
txn_window_hours = 24
{system_extra}
"#
    )
}

/// An install base: `etc/paysys.toml` and `var/log/`, in a temp dir of its own.
pub struct Site {
    pub base: PathBuf,
}

impl Site {
    /// A config for `db` with one OSMP system admitting loopback, plus `extra` TOML appended.
    pub fn new(db_url: &str, system_extra: &str) -> Site {
        let base = std::env::temp_dir().join(unique("paysys_site"));
        std::fs::create_dir_all(base.join("etc")).expect("mkdir etc");
        let site = Site { base };
        site.write_config(&config_text(
            db_url,
            &["127.0.0.1", "::1", "10.0.0.0/8", "!10.0.0.13"],
            system_extra,
        ));
        site
    }

    pub fn config_path(&self) -> PathBuf {
        self.base.join("etc/paysys.toml")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Rewrites the config's `url = "…"` line as the list `urls` (the nodes of a cluster).
    pub fn set_urls(&self, urls: &[String]) {
        let text = std::fs::read_to_string(self.config_path()).expect("config");
        let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
        let line = text
            .lines()
            .find(|l| l.starts_with("url = "))
            .expect("a url line")
            .to_string();
        self.write_config(&text.replacen(&line, &format!("url = [{}]", quoted.join(", ")), 1));
    }

    pub fn log_path(&self) -> PathBuf {
        self.base.join("var/log/paysys_check.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log().lines().map(str::to_string).collect()
    }

    /// `osmp.cgi` with a GET query from 127.0.0.1.
    pub fn get(&self, query: &str) -> Answer {
        self.cgi(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", "127.0.0.1"),
            ],
            b"",
        )
    }

    /// `osmp` set up for a GET from 127.0.0.1, for tests that drive the process themselves.
    pub fn cgi_command(&self, query: &str) -> Command {
        let mut cmd = Command::new(osmp_exe());
        cmd.env_clear()
            .env("PAYSYS_CONFIG", self.config_path())
            .env("REQUEST_METHOD", "GET")
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("QUERY_STRING", query);
        cmd
    }

    /// `osmp.cgi` with these CGI variables (plus PAYSYS_CONFIG) and stdin.
    pub fn cgi(&self, vars: &[(&str, &str)], stdin: &[u8]) -> Answer {
        let config = self.config_path();
        let mut all: Vec<(&str, &str)> = vec![("GATEWAY_INTERFACE", "CGI/1.1")];
        let config_str = config.to_string_lossy().into_owned();
        all.push(("PAYSYS_CONFIG", &config_str));
        all.extend_from_slice(vars);
        run_cgi(&all, stdin)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Puts the executable `from` at `to` (0755), copied by `cp`, a process of its own: a file
/// this process had open for writing may be inherited by a child another test thread forks
/// at that moment, and executing it then fails with ETXTBSY ("Text file busy").
pub fn install_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let status = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Writes the script `text` to `to` as an executable (see [`install_executable`]).
pub fn write_executable(to: &Path, text: &str) {
    let draft = to.with_extension("draft");
    std::fs::write(&draft, text).expect("write draft");
    install_executable(&draft, to);
    let _ = std::fs::remove_file(&draft);
}

pub fn osmp_exe() -> &'static str {
    env!("CARGO_BIN_EXE_osmp")
}

pub fn paysys_check_exe() -> &'static str {
    env!("CARGO_BIN_EXE_paysys_check")
}

/// Runs `osmp` as a web server would: a clean environment, the CGI variables, stdin.
pub fn run_cgi(vars: &[(&str, &str)], stdin: &[u8]) -> Answer {
    run_exe(osmp_exe(), vars, stdin)
}

/// Runs the CGI executable `exe` as a web server would.
pub fn run_exe(exe: &str, vars: &[(&str, &str)], stdin: &[u8]) -> Answer {
    let mut child = Command::new(exe)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {exe}: {e}"));
    {
        let mut input = child.stdin.take().expect("stdin");
        // The CGI may stop reading early (a body over the limit): a broken pipe is fine.
        let _ = input.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait {exe}: {e}"));
    Answer::parse(out.status.code(), &out.stdout, &out.stderr)
}

/// A CGI answer, split into what tests look at.
#[derive(Debug, Clone)]
pub struct Answer {
    pub exit: Option<i32>,
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub stderr: String,
}

impl Answer {
    pub fn parse(exit: Option<i32>, stdout: &[u8], stderr: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(stdout).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no CGI header in {text:?}"));
        let mut status = 200;
        let mut content_type = String::new();
        for line in head.split("\r\n") {
            if let Some(s) = line.strip_prefix("Status: ") {
                status = s[..3].parse().expect("status code");
            }
            if let Some(t) = line.strip_prefix("Content-Type: ") {
                content_type = t.to_string();
            }
        }
        Answer {
            exit,
            status,
            content_type,
            body: body.to_string(),
            stderr: String::from_utf8_lossy(stderr).into_owned(),
        }
    }

    /// The text of `<name>…</name>`, if present exactly once.
    pub fn element(&self, name: &str) -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        assert!(
            self.body.matches(&open).count() <= 1,
            "{name} twice in {}",
            self.body
        );
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&close)? + start;
        Some(self.body[start..end].to_string())
    }

    pub fn result(&self) -> i32 {
        self.element("result")
            .unwrap_or_else(|| panic!("no result in {}", self.body))
            .parse()
            .expect("result")
    }

    pub fn comment(&self) -> String {
        self.element("comment").unwrap_or_default()
    }

    pub fn prv_txn(&self) -> Option<String> {
        self.element("prv_txn")
    }
}

/// A `txn_date` `minutes` from now, in the server's local time.
pub fn txn_date(minutes: i64) -> String {
    (chrono::Local::now() + chrono::Duration::minutes(minutes))
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// The value of `key=` in a log line, if the line has it.
pub fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// A pay query.
pub fn pay_query(txn: &str, account: &str, sum: &str) -> String {
    format!(
        "command=pay&txn_id={txn}&account={account}&sum={sum}&txn_date={}",
        txn_date(-1)
    )
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// What a terminal showed: `paysys ARGS` run by `script` (util-linux, in every Debian), its
/// stdout and stderr both a terminal. The exit status and the bytes shown (the terminal
/// writes each `\n` as `\r\n`); `None` when `script` is not installed.
pub fn paysys_on_a_terminal(args: &[&str]) -> Option<(Option<i32>, String)> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_paysys"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let out = match Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env_remove("PAYSYS_CONFIG")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("run script: {e}"),
    };
    Some((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}
