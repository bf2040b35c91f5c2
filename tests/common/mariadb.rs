//! A private MariaDB server for tests that need a server configured otherwise than the
//! shared one (`--autocommit=0`, later the nodes of a Galera cluster): a data directory of
//! its own made by `mariadb-install-db`, its own socket, a free port on 127.0.0.1, root
//! without a password over TCP. Stopped and removed on drop.
//!
//! ```ignore
//! let Some(server) = PrivateServer::start("autocommit", &["--autocommit=0"])? else {
//!     return; // "skipped: …" was printed: mariadbd is not installed
//! };
//! let db = TestDb::on_server(&server.url(), …);
//! ```

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

/// How long `start` waits for the server to answer on its socket. A fresh data directory
/// starts in about a second; more means it is stuck, and CI must not wait for that.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long drop waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options every private server gets. Small redo log: the data directory is made afresh
/// for every server, and the default (96 MiB) would be written out each time. No DNS:
/// the grants are by address.
/// Small, and without native AIO: several private servers may start at once beside the
/// shared one, and io_uring or libaio resources (locked memory, aio-max-nr) can run short
/// for a bootstrap, which then fails without saying why.
pub(crate) const BASE_ARGS: &[&str] = &[
    "--innodb-log-file-size=8M",
    "--innodb-buffer-pool-size=32M",
    "--innodb-use-native-aio=0",
    "--skip-name-resolve",
];

pub struct PrivateServer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl PrivateServer {
    /// Installs a data directory and starts `mariadbd` on it with `args` added to its
    /// command line. `Ok(None)` (with "skipped: …" printed) when mariadbd or
    /// mariadb-install-db is not installed; `Err` with the server's error log when it does
    /// not come up within START_TIMEOUT.
    pub fn start(tag: &str, args: &[&str]) -> Result<Option<PrivateServer>, String> {
        let (Some(mariadbd), Some(install_db)) = (
            find(&["mariadbd", "mysqld"], &["/usr/sbin", "/usr/libexec"]),
            find(&["mariadb-install-db", "mysql_install_db"], &["/usr/bin"]),
        ) else {
            eprintln!(
                "skipped: mariadbd or mariadb-install-db is not installed \
                 (Debian: apt-get install mariadb-server)"
            );
            return Ok(None);
        };
        let dir = std::env::temp_dir().join(super::unique(&format!("paysys_mariadb_{tag}")));
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // Owns the directory from here: an error below removes it.
        let mut server = PrivateServer {
            child: None,
            dir,
            port: 0,
        };
        let user: Vec<String> = run_as_root().into_iter().collect();
        let datadir = server.dir.join("data");
        install_datadir(&install_db, &datadir, &user)?;
        // The port is free when probed; another process may take it before mariadbd binds
        // it: then try another.
        let mut last = String::new();
        for _ in 0..3 {
            server.port = free_port()?;
            let _ = fs::remove_file(server.error_log_path());
            let child = Command::new(&mariadbd)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--socket={}", server.socket().display()))
                .arg(format!(
                    "--pid-file={}",
                    server.dir.join("mariadbd.pid").display()
                ))
                .arg(format!("--log-error={}", server.error_log_path().display()))
                .arg(format!("--port={}", server.port))
                .arg("--bind-address=127.0.0.1")
                .args(&user)
                .args(BASE_ARGS)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("running {}: {e}", mariadbd.display()))?;
            server.child = Some(child);
            match server.wait_ready() {
                Ok(()) => return Ok(Some(server)),
                Err(e) => {
                    server.stop();
                    let log = server.error_log();
                    if !log.contains("Address already in use") {
                        return Err(format!("{e}\n--- mariadbd error log ---\n{log}"));
                    }
                    last = log;
                }
            }
        }
        Err(format!(
            "mariadbd did not start, its ports kept being taken:\n{last}"
        ))
    }

    /// Until the server answers a query on its socket, it exits, or START_TIMEOUT passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("mariadbd exited during start-up ({status})"));
            }
            if UnixStream::connect(self.socket()).is_ok() {
                let opts = OptsBuilder::new()
                    .socket(Some(self.socket().to_string_lossy()))
                    .user(Some("root"));
                if let Ok(mut conn) = Conn::new(opts) {
                    if conn.query_drop("SELECT 1").is_ok() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "mariadbd did not answer on {} within {START_TIMEOUT:?}",
                    self.socket().display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `mysql://root@127.0.0.1:<port>`: TCP, as production connects.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("mariadbd.sock")
    }

    /// Data directory, socket, error log: everything of this server.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error_log_path(&self) -> PathBuf {
        self.dir.join("mariadbd.err")
    }

    /// The server's error log so far, for assertion messages.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.error_log_path()).unwrap_or_default()
    }

    /// A root connection over TCP, with the server's session defaults.
    pub fn conn(&self) -> Conn {
        Conn::new(
            OptsBuilder::new()
                .ip_or_hostname(Some("127.0.0.1"))
                .tcp_port(self.port)
                .user(Some("root"))
                .prefer_socket(false),
        )
        .unwrap_or_else(|e| panic!("root on {}: {e}\n{}", self.url(), self.error_log()))
    }

    /// SIGTERM (a clean shutdown), then SIGKILL if it takes longer than STOP_TIMEOUT.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "private mariadbd in {} (removed); its error log:\n{}",
                self.dir.display(),
                self.error_log()
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh data directory made by `mariadb-install-db` (`--no-defaults`: no my.cnf, no
/// wsrep), with root@localhost, @127.0.0.1 and @::1 without a password (not the
/// unix_socket plugin, which would admit only the OS user root). `user`: `--user=…` when
/// the server is to run as another user than ours.
pub(crate) fn install_datadir(
    install_db: &Path,
    datadir: &Path,
    user: &[String],
) -> Result<(), String> {
    let install = || {
        // A failed try may leave a half-made data directory behind.
        let _ = fs::remove_dir_all(datadir);
        Command::new(install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .args(user)
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(BASE_ARGS)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", install_db.display()))
    };
    // Once more after a failure: a bootstrap on a loaded machine has been seen to fail
    // once and work the next time.
    let mut out = install()?;
    if !out.status.success() {
        std::thread::sleep(Duration::from_millis(500));
        out = install()?;
    }
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}{}",
            install_db.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The first of `names` found in PATH or in `dirs` (sbin is often not in a user's PATH).
pub(crate) fn find(names: &[&str], dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all: Vec<PathBuf> = std::env::split_paths(&path).collect();
    all.extend(dirs.iter().map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| all.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// mariadbd refuses to run as root unless told to; as anyone else it runs as that user.
fn run_as_root() -> Option<String> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    (unsafe { libc::geteuid() } == 0).then(|| "--user=root".to_string())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Every entry the server's general log received from byte `from` on: `(connection id,
/// command, argument)`; and the log's size.
pub fn general_log_entries(log: &Path, from: u64) -> (Vec<(u64, String, String)>, u64) {
    // The server writes each entry as it comes; wait until the file stops growing.
    let mut size = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let now = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        if now == size {
            break;
        }
        size = now;
    }
    let text = fs::read(log).unwrap_or_default();
    let start = (from as usize).min(text.len());
    let entries = String::from_utf8_lossy(&text[start..])
        .lines()
        .filter_map(|line| {
            // "[time]\t    <id> <Command>\t<argument>"
            let parts: Vec<&str> = line.split('\t').collect();
            parts.iter().enumerate().find_map(|(i, part)| {
                let (id, command) = part.trim().split_once(' ')?;
                let id = id.parse::<u64>().ok()?;
                let command = command.trim();
                (!command.is_empty()
                    && command.chars().all(|c| c.is_ascii_alphabetic() || c == ' '))
                .then(|| (id, command.to_string(), parts[i + 1..].join(" ")))
            })
        })
        .collect();
    (entries, text.len() as u64)
}

/// The general log's commands from byte `from` on that the server answers (`Query`,
/// `Prepare`, `Execute`: round trips), as `(command, argument)`; and the log's size.
pub fn general_log_since(log: &Path, from: u64) -> (Vec<(String, String)>, u64) {
    let (entries, size) = general_log_entries(log, from);
    let answered = entries
        .into_iter()
        .filter(|(_, command, _)| matches!(command.as_str(), "Query" | "Prepare" | "Execute"))
        .map(|(_, command, argument)| (command, argument))
        .collect();
    (answered, size)
}

/// A private server that writes every statement to its general log, for tests that count
/// what a request sends: the server, its `@@version`, and [`Logged::statements`].
pub struct Logged {
    pub server: PrivateServer,
    pub version: String,
    log: PathBuf,
}

impl Logged {
    /// `None` where [`PrivateServer::start`] skips.
    pub fn start(tag: &str) -> Option<Logged> {
        let server =
            PrivateServer::start(tag, &["--general-log=1", "--general-log-file=general.log"])
                .unwrap_or_else(|e| panic!("{e}"))?;
        let version: String = server
            .conn()
            .query_first("SELECT @@version")
            .expect("SELECT @@version")
            .expect("a version");
        let log = server.dir().join("data/general.log");
        Some(Logged {
            server,
            version,
            log,
        })
    }

    /// The statements the server answered while `f` ran (see [`general_log_since`]), and
    /// what `f` returned.
    pub fn statements<T>(&self, f: impl FnOnce() -> T) -> (Vec<(String, String)>, T) {
        let (_, at) = general_log_since(&self.log, 0);
        let out = f();
        (general_log_since(&self.log, at).0, out)
    }

    /// Prints what a terminal's `pay` and the request `what` sent, and — on a server that
    /// takes `INSERT … RETURNING`, where `what` reads its order in the pay's first
    /// statement — asserts that `what` sent no more statements than the pay.
    pub fn assert_no_more(&self, what: &str, pay: &[(String, String)], sent: &[(String, String)]) {
        let shown = format!(
            "{what} sent {} statements, a terminal's pay {}:\npay:\n{}\n{what}:\n{}",
            sent.len(),
            pay.len(),
            listing(pay),
            listing(sent)
        );
        println!("{}: {shown}", self.version);
        if !takes_insert_returning(&self.version) {
            eprintln!(
                "skipped: {} has no INSERT ... RETURNING, {what} reads its order first",
                self.version
            );
            return;
        }
        assert!(sent.len() <= pay.len(), "{shown}");
        assert!(
            sent.iter().any(|(_, a)| a.contains("RETURNING")),
            "{what} did not read its order in the pay's first statement:\n{shown}"
        );
    }
}

/// Statements as [`general_log_since`] reads them, one line each, for a failure message.
pub fn listing(entries: &[(String, String)]) -> String {
    entries
        .iter()
        .map(|(c, a)| format!("  {c} {}", a.chars().take(100).collect::<String>()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a server of `@@version` takes `INSERT … RETURNING` (MariaDB 10.5 and later).
pub fn takes_insert_returning(version: &str) -> bool {
    version.contains("MariaDB")
        && version
            .split('.')
            .take(2)
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
            >= vec![10, 5]
}
