//! Benchmarks: figures to read, not timed assertions. Every test here is `#[ignore]`d;
//! `bench/run.sh` builds what they need and runs them with
//!
//! ```text
//! cargo test --release --test bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! * `bench_1_web`: `wrk` against a no-op CGI (`bench/noop.c`), the database floor
//!   (`bench/floor.c`: the least a CGI linked to MariaDB's C client can do for a check and a
//!   pay, installed as `floor.cgi`; skipped when not built), `osmp.cgi` refused before the
//!   database, `osmp.cgi` check, and `osmp.cgi` pay (a new `txn_id` per request,
//!   `bench/pay.lua`, as for the floor's pay) through nginx+fcgiwrap and Apache (mod_cgid),
//!   each server started by the tests' web-server harness from the production snippets in
//!   `etc/`. Then again with osmp.cgi persistent (FastCGI: nginx to a socket osmp serves
//!   with `BENCH_WORKERS` threads, Apache through mod_fcgid; `etc/*/paysys-f*.conf`): the
//!   no-op, osmp refused before the database, check and pay, the no-op still a CGI through
//!   the same server. Prints req/s, p50, p99 and the ratio to the no-op, and checks each
//!   target's work: osmp's log lines, and for both pays the rows they added.
//!   Beside each of those four set-ups, `paysys_check.cgi` on an ABillS database
//!   (`sql/abills.sql`, `billing = "abills"`, one system admitting 127.0.0.1, `account =
//!   "uid"`): its own install base and server instance (one config file names one
//!   database), with the same no-op CGI measured through it, then a check (`sum=0.00`) and a
//!   pay to uid 1 (`bench/pay.lua`); persistent through nginx to its own socket (as
//!   `etc/systemd/paysys-check.service` starts it) and through mod_fcgid.
//! * `bench_2_process`: one CGI process at a time, as a web server starts it (clean
//!   environment, CGI variables, `PAYSYS_CONFIG`): CPU time (user+sys), peak RSS and wall
//!   time from `wait4` in `bench/rusage.c`; no-op, osmp refused before the database, check,
//!   pay; and `/usr/bin/time -v` of one run each.
//! * `bench_3_scale`: check and pay processes with `users`, `paysys_txn` and `pays` at
//!   ~10 k rows, then at ~1 M rows.
//! * `bench_5_protocols`: `paysys_check.cgi` processes, one at a time, for a check and a pay
//!   of every protocol it speaks (OSMP, iBox, Kaspi, Portmone, City24, PrivatBank, 24NonStop
//!   with its SIGN, EasyPay with its RSA signature: the Payment that books and the Confirm
//!   that pays, Click with its MD5 sign_string: the Prepare that books and the Complete that
//!   pays, Payme with its key in the Authorization header: the Create and the Perform), on
//!   one ABillS database: CPU time and peak RSS, each next to OSMP's.
//! * `bench_6_protocols_web`: the same checks and pays through nginx, `paysys_check.cgi` as a
//!   CGI and persistent, with `wrk` and `bench/requests.lua` (a file of requests, each sent
//!   once: new ids for every pay), next to the no-op CGI and OSMP's; EasyPay's, Click's and
//!   Payme's pays are confirmations (Completes, Performs) of orders booked beforehand.
//! * `bench_7_cluster`: `osmp` check and pay through one, two and three web nodes on a
//!   three-node Galera cluster (tests/common/galera.rs, all on this machine) against one
//!   web node on a plain private server with the same settings: each web node an install
//!   base whose `[database] url` lists the nodes, its own first; as CGI processes (spawned
//!   as a web server spawns them, no web server in between: its cost is bench_1's) and to a
//!   persistent process per web node; `BENCH_CONNECTIONS` terminals at once spread over the
//!   web nodes, pays to 1000 different subscribers. Then three web nodes that all list the
//!   same writing node first (INSTALL section 12's advice). Prints req/s and the ratio to
//!   the plain server, then checks that every node holds the same rows.
//! * `bench_8_card_callback`: a LiqPay callback paying an order (made as the page makes
//!   it) next to an OSMP pay of the same sum to the same subscriber, through the same
//!   `paysys_check` and config, on ABillS and on NoDeny, the two alternating: as CGI
//!   processes (CPU, wall, the log's `ms=`), persistent (FastCGI on a socket: latency one at
//!   a time, req/s from `BENCH_CONNECTIONS` clients, CPU of the process), and the database
//!   round trips of one request in each mode, from a private server's general log.
//! * `bench_9_statement`: a bank statement (a 1C file of `BENCH_STATEMENT_ROWS` rows,
//!   default 50 000) imported by the real `paysys statement import` into a NoDeny
//!   database whose subscribers the rows name: rows per second of a dry run, the first
//!   import (crediting) and the same file again, the process's peak RSS at a tenth of the
//!   rows and at all of them (`bench/rusage.c`), and the round trips per row from a private
//!   server's general log.
//! * `bench_11_history`: what the request history (`[log] database = true`) costs: OSMP
//!   checks and pays through `paysys_check` on ABillS and NoDeny with it off and on (two
//!   configs of one install, alternating request by request), as CGI processes (CPU, wall,
//!   the log's `ms=`) and persistent (latency one at a time, req/s from
//!   `BENCH_CONNECTIONS` clients, CPU of the process).
//! * `bench_10_audit`: `paysys audit` over `BENCH_AUDIT_ROWS` payments (default 1 000 000)
//!   spread over a year, on NoDeny and on ABillS (every payment with its billing rows, the
//!   balances adding up): wall and CPU time and peak RSS of the year, of its last month and of
//!   the daily timer's two days, each audit clean (exit 0) or the benchmark fails.
//! * `bench_4_profile`: where one check process spends its time: `strace -c -f`, the
//!   syscall timeline from `strace -f -tt -T`, `perf stat`, `valgrind --tool=callgrind`
//!   (each only if installed).
//!
//! Knobs (environment; bench/run.sh sets them from its options):
//! `BENCH_DURATION` (wrk `-d`, default 10s), `BENCH_CONNECTIONS` (8), `BENCH_THREADS` (2),
//! `BENCH_ROUNDS` (1), `BENCH_REPS` (process runs per figure, 50), `BENCH_ROWS` (1000000),
//! `BENCH_OSMP` (the `osmp` executable to measure: bench/run.sh passes `make`'s static
//! build, or `--osmp`; without it, cargo's release build of this tree), `BENCH_PAYSYS_CHECK`
//! (the `paysys_check` executable, likewise: bench/run.sh passes `make`'s static build),
//! `BENCH_PAYSYS` (the `paysys` executable, likewise), `BENCH_STATEMENT_ROWS` (50000),
//! `BENCH_AUDIT_ROWS` (1000000),
//! `BENCH_VARIANTS` (`name=path;…`: other `osmp` builds whose check and pay are measured
//! in the same run, next to this one's; `bench/variants.sh` builds some),
//! `BENCH_FASTCGI` (1: also measure the persistent mode; 0: not), `BENCH_WORKERS` (4),
//! `BENCH_NOOP` (the compiled no-op, default target/bench/noop), `BENCH_FLOOR` (the
//! compiled `bench/floor.c`, default target/bench/floor), `BENCH_RUSAGE` (the
//! compiled `bench/rusage.c`, default target/bench/rusage), `BENCH_OUT` (directory for raw
//! outputs, default target/bench).

mod common;
mod webserver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{repo, Site, TestDb};
use mysql::prelude::Queryable;
use paysys::domain::PaymentCode;
use webserver::{Kind, Options, WebServer};

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    duration: String,
    connections: usize,
    threads: usize,
    rounds: usize,
    reps: usize,
    rows: u64,
    noop: PathBuf,
    floor: PathBuf,
    rusage: PathBuf,
    out: PathBuf,
    /// Other `osmp` builds measured next to this one: `BENCH_VARIANTS="name=path;…"`.
    variants: Vec<(String, PathBuf)>,
    /// Also measure osmp.cgi in persistent (FastCGI) mode: `BENCH_FASTCGI` (default 1).
    fastcgi: bool,
    /// `PAYSYS_WORKERS` of the persistent osmp behind nginx: `BENCH_WORKERS` (default 4).
    workers: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not valid")),
        _ => default,
    }
}

impl Settings {
    fn get() -> Settings {
        let connections: usize = env_or("BENCH_CONNECTIONS", 8);
        let threads: usize = env_or("BENCH_THREADS", 2);
        let out = PathBuf::from(env_or(
            "BENCH_OUT",
            repo().join("target/bench").to_string_lossy().into_owned(),
        ));
        std::fs::create_dir_all(&out).expect("BENCH_OUT directory");
        Settings {
            duration: env_or("BENCH_DURATION", "10s".to_string()),
            connections: connections.max(1),
            threads: threads.clamp(1, connections.max(1)),
            rounds: env_or("BENCH_ROUNDS", 1usize).max(1),
            reps: env_or("BENCH_REPS", 50usize).max(1),
            rows: env_or("BENCH_ROWS", 1_000_000u64).max(10_000),
            noop: PathBuf::from(env_or(
                "BENCH_NOOP",
                repo()
                    .join("target/bench/noop")
                    .to_string_lossy()
                    .into_owned(),
            )),
            floor: PathBuf::from(env_or(
                "BENCH_FLOOR",
                repo()
                    .join("target/bench/floor")
                    .to_string_lossy()
                    .into_owned(),
            )),
            rusage: PathBuf::from(env_or(
                "BENCH_RUSAGE",
                repo()
                    .join("target/bench/rusage")
                    .to_string_lossy()
                    .into_owned(),
            )),
            out,
            fastcgi: env_or("BENCH_FASTCGI", 1u8) != 0,
            workers: env_or("BENCH_WORKERS", 4usize).clamp(1, 256),
            variants: std::env::var("BENCH_VARIANTS")
                .unwrap_or_default()
                .split(';')
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    let (name, path) = v
                        .split_once('=')
                        .unwrap_or_else(|| panic!("BENCH_VARIANTS: {v:?} is not name=path"));
                    assert!(
                        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                        "BENCH_VARIANTS: name {name:?} must be letters, digits and -"
                    );
                    let path = PathBuf::from(path);
                    assert!(path.is_file(), "BENCH_VARIANTS: {} missing", path.display());
                    (name.to_string(), path)
                })
                .collect(),
        }
    }

    fn rusage(&self) -> &Path {
        assert!(
            self.rusage.is_file(),
            "{} missing: build it with `gcc -O2 -o {} bench/rusage.c` (bench/run.sh does)",
            self.rusage.display(),
            self.rusage.display()
        );
        &self.rusage
    }

    fn noop(&self) -> &Path {
        assert!(
            self.noop.is_file(),
            "{} missing: build it with `gcc -O2 -o {} bench/noop.c` (bench/run.sh does)",
            self.noop.display(),
            self.noop.display()
        );
        &self.noop
    }

    /// The database floor, if it was built (it needs MariaDB's client library).
    fn floor(&self) -> Option<&Path> {
        self.floor.is_file().then_some(self.floor.as_path())
    }
}

/// The `osmp` executable measured: `BENCH_OSMP` (bench/run.sh: the static build `make`
/// ships, or another build such as an experiment, compared with the same harness), else
/// cargo's release build of this tree.
fn osmp_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| match std::env::var_os("BENCH_OSMP") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_osmp")),
    })
}

/// The `paysys_check` executable measured: `BENCH_PAYSYS_CHECK` (bench/run.sh: the static
/// build `make` ships), else cargo's release build of this tree.
fn paysys_check_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| match std::env::var_os("BENCH_PAYSYS_CHECK") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_paysys_check")),
    })
}

/// The 1-, 5- and 15-minute load averages, as `uptime` shows them.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The CGIs run as www-data when the bench runs as root: they must reach MariaDB over TCP
/// (root's unix_socket login would not let them in).
fn require_tcp(db: &TestDb) {
    assert!(
        !db.url.contains("socket="),
        "the benchmark needs a TCP database URL (the CGIs run as the web server's user); got {}",
        db.url
    );
}

/// A `txn_date` a minute ago: inside the 24-hour window.
fn txn_date() -> String {
    common::txn_date(-1)
}

fn payment_code(id: u64) -> String {
    format!("{id}{}", PaymentCode::check_digit(id))
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// wrk

#[derive(Clone, Debug, Default)]
struct WrkResult {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: u64,
}

/// `1.23ms`, `850.00us`, `1.02s`, `2.00m` → milliseconds.
fn wrk_time_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if t.starts_with("50%") && words.len() == 2 {
            r.p50_ms = wrk_time_ms(words[1]).unwrap_or(f64::NAN);
        } else if t.starts_with("99%") && words.len() == 2 {
            r.p99_ms = wrk_time_ms(words[1]).unwrap_or(f64::NAN);
        } else if words.len() > 2 && words[1] == "requests" && words[2] == "in" {
            r.requests = words[0].parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            r.socket_errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    r
}

fn run_wrk(
    s: &Settings,
    url: &str,
    duration: &str,
    script: Option<(&Path, &[String])>,
) -> (WrkResult, String) {
    let mut cmd = Command::new("wrk");
    cmd.arg("-t")
        .arg(s.threads.to_string())
        .arg("-c")
        .arg(s.connections.to_string())
        .arg("-d")
        .arg(duration)
        .arg("--timeout")
        .arg("30s")
        .arg("--latency");
    if let Some((lua, _)) = script {
        cmd.arg("-s").arg(lua);
    }
    cmd.arg(url);
    if let Some((_, args)) = script {
        cmd.arg("--").args(args);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run wrk ({e}): apt-get install wrk, or use bench/run.sh")
    });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wrk failed: {text}");
    let result = parse_wrk(&text);
    assert!(
        result.requests > 0 && result.rps > 0.0,
        "no requests in: {text}"
    );
    (result, text)
}

/// Lines the CGIs appended to `log` since byte `from`, once nothing more is being written
/// (requests wrk abandoned at the end of its run may still be finishing).
fn new_log_lines(log: &Path, from: u64) -> (Vec<String>, u64) {
    let mut size = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        if now == size {
            break;
        }
        size = now;
    }
    let text = std::fs::read(log).unwrap_or_default();
    let start = (from as usize).min(text.len());
    let lines = String::from_utf8_lossy(&text[start..])
        .lines()
        .map(str::to_string)
        .collect();
    (lines, text.len() as u64)
}

/// The rows of each of `tables`.
fn table_rows(db: &TestDb, tables: &[&str]) -> Vec<u64> {
    tables
        .iter()
        .map(|t| db.count(&format!("SELECT COUNT(*) FROM {t}")))
        .collect()
}

/// The `paysys_txn` rows whose `txn_id` starts with `prefix`, and all rows of each of
/// `tables` (the billing's: `pays`; `payments`, `paysys_log`), once they no longer grow
/// (requests wrk abandoned at the end of its run may still commit).
fn settled_rows(db: &TestDb, prefix: &str, tables: &[&str]) -> (u64, Vec<u64>) {
    let read = || {
        (
            db.count(&format!(
                "SELECT COUNT(*) FROM paysys_txn WHERE txn_id LIKE '{prefix}%'"
            )),
            table_rows(db, tables),
        )
    };
    let mut last = read();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

fn log_field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("-")
}

/// `cmd result` → count, e.g. `{"check 0": 1234}`.
fn tally(lines: &[String]) -> BTreeMap<String, u64> {
    let mut t = BTreeMap::new();
    for l in lines {
        let key = format!("{} {}", log_field(l, "cmd"), log_field(l, "result"));
        *t.entry(key).or_insert(0) += 1;
    }
    t
}

/// CPU time used so far, in ms: the whole machine (all CPUs, every process: includes other
/// users' noise) and the MariaDB server process (all its threads), if it runs here.
#[derive(Clone, Copy, Default)]
struct CpuSnapshot {
    machine_ms: f64,
    mysqld_ms: Option<f64>,
}

/// Clock ticks per second of /proc/stat (USER_HZ; 100 on Linux).
const USER_HZ: f64 = 100.0;

fn mysqld_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        matches!(comm.trim(), "mariadbd" | "mysqld").then_some(pid)
    })
}

impl CpuSnapshot {
    fn now() -> CpuSnapshot {
        let machine_ms = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| {
                let first = t.lines().next()?.to_string();
                let v: Vec<f64> = first
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal …: busy = all - idle - iowait
                let total: f64 = v.iter().take(8).sum();
                Some((total - v.get(3)? - v.get(4)?) * 1000.0 / USER_HZ)
            })
            .unwrap_or(f64::NAN);
        let mysqld_ms = mysqld_pid().and_then(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the ")" of comm: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks * 1000.0 / USER_HZ)
        });
        CpuSnapshot {
            machine_ms,
            mysqld_ms,
        }
    }

    /// (machine, mysqld) CPU ms per request since `self`.
    fn per_request(&self, requests: u64) -> (f64, Option<f64>) {
        let now = CpuSnapshot::now();
        let n = requests.max(1) as f64;
        (
            (now.machine_ms - self.machine_ms) / n,
            match (self.mysqld_ms, now.mysqld_ms) {
                (Some(a), Some(b)) => Some((b - a) / n),
                _ => None,
            },
        )
    }
}

struct WebRow {
    /// The set-up's label: "nginx", "apache", "nginx fastcgi", "apache fcgid", each also
    /// with " abills" (paysys_check.cgi's instance).
    server: String,
    round: usize,
    target: String,
    r: WrkResult,
    noop_rps: f64,
    machine_ms: f64,
    mysqld_ms: Option<f64>,
    note: String,
}

/// What `bench_1_web` sends. `expect`: the `cmd result` every log line must have (none for
/// the no-op and the floor, which write no log). `pay`: through `bench/pay.lua`, and the
/// rows it added are counted. `persistent`: measured in the persistent set-ups too.
struct Target {
    name: String,
    path: String,
    pay: bool,
    expect: Option<&'static str>,
    persistent: bool,
}

/// What one server instance serves, and where its CGIs write: osmp.cgi's on NoDeny, or
/// paysys_check.cgi's on ABillS (a config file names one database, so each has its own
/// install base, config and log).
struct Instance {
    /// Appended to the set-up's label: "" or " abills".
    tag: &'static str,
    prefix: PathBuf,
    db: TestDb,
    log: PathBuf,
    /// The account the pays credit (`bench/pay.lua`'s second argument).
    pay_account: &'static str,
    /// The billing's tables a pay adds one row to each.
    pay_tables: &'static [&'static str],
    /// The CGI served persistently in the persistent set-ups (`Options::fastcgi_cgi`).
    persistent_cgi: &'static str,
    targets: Vec<Target>,
}

/// paysys_check.cgi's targets on ABillS: the no-op, then a check (`sum=0.00`: about the
/// account) and a pay to uid 1, in every set-up.
fn check_targets() -> Vec<Target> {
    vec![
        Target {
            name: "noop".into(),
            path: "/cgi-bin/noop.cgi?command=check&txn_id=1&account=1&sum=0.00".into(),
            pay: false,
            expect: None,
            persistent: true,
        },
        Target {
            name: "paysys_check check".into(),
            path: "/cgi-bin/paysys_check.cgi?command=check&txn_id=1&account=1&sum=0.00".into(),
            pay: false,
            expect: Some("check 0"),
            persistent: true,
        },
        Target {
            name: "paysys_check pay".into(),
            path: "/cgi-bin/paysys_check.cgi".into(),
            pay: true,
            expect: Some("pay 0"),
            persistent: true,
        },
    ]
}

/// The no-op, the floor's check and pay (with `floor`), then this build's no-DB refusal,
/// check and pay, then each variant's check and pay (installed as `osmp-<name>.cgi`).
fn web_targets(variants: &[(String, PathBuf)], floor: bool) -> Vec<Target> {
    let check = "command=check&txn_id=1&account=59071&sum=10.00";
    let mut targets = vec![Target {
        name: "noop".into(),
        path: format!("/cgi-bin/noop.cgi?{check}"),
        pay: false,
        expect: None,
        persistent: true,
    }];
    if floor {
        targets.push(Target {
            name: "floor check".into(),
            path: format!("/cgi-bin/floor.cgi?{check}"),
            pay: false,
            expect: None,
            persistent: false,
        });
        targets.push(Target {
            name: "floor pay".into(),
            path: "/cgi-bin/floor.cgi".into(),
            pay: true,
            expect: None,
            persistent: false,
        });
    }
    targets.push(Target {
        // Refused on its check digit: config, gate and parse, but no database.
        name: "osmp, no DB".into(),
        path: "/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59070&sum=10.00".into(),
        pay: false,
        expect: Some("check 4"),
        persistent: true,
    });
    let builds = std::iter::once((String::new(), "osmp.cgi".to_string())).chain(
        variants
            .iter()
            .map(|(name, _)| (format!(" [{name}]"), format!("osmp-{name}.cgi"))),
    );
    for (label, cgi) in builds {
        targets.push(Target {
            name: format!("check{label}"),
            path: format!("/cgi-bin/{cgi}?{check}"),
            pay: false,
            expect: Some("check 0"),
            persistent: label.is_empty(),
        });
        targets.push(Target {
            name: format!("pay{label}"),
            path: format!("/cgi-bin/{cgi}"),
            pay: true,
            expect: Some("pay 0"),
            persistent: label.is_empty(),
        });
    }
    targets
}

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_1_web() {
    let s = Settings::get();
    let noop = s.noop().to_path_buf();
    let lua = repo().join("bench/pay.lua");
    let opts = Options {
        // One fcgiwrap child serves one request at a time: at least one per connection.
        fcgi_children: s.connections.max(8),
        ..Options::default()
    };

    // osmp.cgi on NoDeny: the no-op, the floor, osmp.cgi and its variants.
    let db = TestDb::new();
    require_tcp(&db);
    let prefix = webserver::temp_prefix("bench").expect("temp prefix");
    webserver::prepare_prefix(&prefix).expect("prepare prefix");
    webserver::install_cgi(&prefix, "osmp.cgi", osmp_exe()).expect("osmp.cgi");
    webserver::install_cgi(&prefix, "noop.cgi", &noop).expect("noop.cgi");
    for (name, path) in &s.variants {
        webserver::install_cgi(&prefix, &format!("osmp-{name}.cgi"), path).expect("variant");
    }
    if let Some(floor) = s.floor() {
        webserver::install_cgi(&prefix, "floor.cgi", floor).expect("floor.cgi");
    }
    std::fs::write(
        prefix.join("etc/paysys.toml"),
        common::config_text(&db.url, &["127.0.0.1", "::1"], ""),
    )
    .expect("config");
    let nodeny = Instance {
        tag: "",
        log: prefix.join("var/log/paysys_check.log"),
        prefix,
        db,
        pay_account: "59071",
        pay_tables: &["pays"],
        persistent_cgi: "osmp",
        targets: web_targets(&s.variants, s.floor().is_some()),
    };

    // paysys_check.cgi on ABillS: the same no-op, check and pay. With
    // PAYSYS_TEST_ABILLS_PROCEDURE=1, its pays go through ABillS's stored procedure
    // (`sql/abills-pay.sql`, loaded here; `config_text` sets `procedure = true`).
    let db = TestDb::with_fixture(&common::abills::fixture());
    if common::abills::procedure_run() {
        common::abills::load_pay_procedure(&mut db.conn());
    }
    let prefix = webserver::temp_prefix("bench-abills").expect("temp prefix");
    webserver::prepare_prefix(&prefix).expect("prepare prefix");
    webserver::install_cgi(&prefix, "paysys_check.cgi", paysys_check_exe())
        .expect("paysys_check.cgi");
    webserver::install_cgi(&prefix, "noop.cgi", &noop).expect("noop.cgi");
    std::fs::write(
        prefix.join("etc/paysys.toml"),
        common::abills::config_text(
            &db.url,
            &common::abills::system("osmp", &["127.0.0.1", "::1"], "account = \"uid\""),
        ),
    )
    .expect("config");
    let abills = Instance {
        tag: " abills",
        log: prefix.join("var/log/paysys_check.log"),
        prefix,
        db,
        pay_account: "1",
        pay_tables: &["payments", "paysys_log"],
        persistent_cgi: "paysys_check",
        targets: check_targets(),
    };
    let instances = [nodeny, abills];

    println!(
        "\n== web: wrk -t{} -c{} -d{} --latency, {} round(s); osmp: {}; paysys_check: {}; load before: {}",
        s.threads,
        s.connections,
        s.duration,
        s.rounds,
        osmp_exe().display(),
        paysys_check_exe().display(),
        load()
    );
    if s.floor().is_none() {
        println!(
            "no database floor: {} not built (bench/run.sh builds it when libmariadb-dev is \
             installed); skipping floor check and floor pay",
            s.floor.display()
        );
    }
    let mut rows: Vec<WebRow> = Vec::new();
    let mut raw = String::new();
    // Each server twice: the CGIs as CGIs (fcgiwrap, mod_cgid), then osmp.cgi (or
    // paysys_check.cgi) persistent (FastCGI: nginx to a socket it serves with BENCH_WORKERS
    // threads, Apache through mod_fcgid). In the persistent set-ups the no-op is still a
    // CGI: the same reference in every row. Each set-up once per instance, one after the
    // other: osmp.cgi on NoDeny, then paysys_check.cgi on ABillS.
    let servers: Vec<(Kind, bool, &str)> = Kind::ALL
        .into_iter()
        .map(|k| (k, false, k.name()))
        .chain(
            s.fastcgi
                .then(|| {
                    Kind::ALL.into_iter().map(|k| {
                        let label = match k {
                            Kind::Nginx => "nginx fastcgi",
                            Kind::Apache => "apache fcgid",
                        };
                        (k, true, label)
                    })
                })
                .into_iter()
                .flatten(),
        )
        .collect();
    let setups: Vec<(Kind, bool, String, &Instance)> = servers
        .iter()
        .flat_map(|(kind, fastcgi, label)| {
            instances
                .iter()
                .map(move |i| (*kind, *fastcgi, format!("{label}{}", i.tag), i))
        })
        .collect();
    for (server_no, (kind, fastcgi, label, inst)) in setups.iter().enumerate() {
        let kind = *kind;
        let opts = Options {
            fastcgi: *fastcgi,
            workers: s.workers,
            fastcgi_cgi: inst.persistent_cgi,
            ..opts.clone()
        };
        let Some(web) = WebServer::start(kind, &inst.prefix, &opts).expect("start web server")
        else {
            println!("skipped {label}: not installed");
            continue;
        };
        let targets: Vec<&Target> = inst
            .targets
            .iter()
            .filter(|t| !fastcgi || t.persistent)
            .collect();
        let base = web.base_url();
        // Every target answers as expected through this server before anything is measured.
        for t in targets.iter().filter(|t| !t.pay) {
            let r = web.get(&t.path, &[]).expect("request");
            let want = match t.expect {
                Some(e) => format!("<result>{}</result>", e.rsplit(' ').next().unwrap_or("")),
                None => "<result>0</result>".into(),
            };
            assert!(r.body.contains(&want), "{label} {}: {}", t.name, r.body);
        }
        // Warm-up: page cache, the server's workers, MariaDB's buffer pool.
        let check = targets
            .iter()
            .find(|t| t.expect == Some("check 0"))
            .expect("check");
        run_wrk(&s, &format!("{base}{}", check.path), "2s", None);
        run_wrk(&s, &format!("{base}{}", targets[0].path), "1s", None);
        let (_, mut log_offset) = new_log_lines(&inst.log, 0);

        for round in 1..=s.rounds {
            let mut noop_rps = f64::NAN;
            for (target_no, t) in targets.iter().enumerate() {
                let url = format!("{base}{}", t.path);
                let txn_prefix = format!("9{server_no}{round:02}{target_no:02}");
                let rows_before = table_rows(&inst.db, inst.pay_tables);
                let args = vec![
                    txn_prefix.clone(),
                    inst.pay_account.to_string(),
                    txn_date(),
                    "1.00".to_string(),
                ];
                let cpu = CpuSnapshot::now();
                let (r, out) = if t.pay {
                    run_wrk(&s, &url, &s.duration, Some((&lua, &args)))
                } else {
                    run_wrk(&s, &url, &s.duration, None)
                };
                let (machine_ms, mysqld_ms) = cpu.per_request(r.requests);
                raw += &format!("--- {label} round {round} {}\n{out}\n", t.name);
                if t.name == "noop" {
                    noop_rps = r.rps;
                }
                let mut note = String::new();
                // Log lines: the CGI's answered requests; the no-op and the floor write none.
                let mut answered = None;
                if let Some(expect) = t.expect {
                    let (lines, off) = new_log_lines(&inst.log, log_offset);
                    log_offset = off;
                    let tl = tally(&lines);
                    let ok = tl.get(expect).copied().unwrap_or(0);
                    // wrk counts completed responses; a request per connection may have been
                    // cut off at the end of the run and still be answered (and logged).
                    let complete = ok as usize == lines.len()
                        && ok >= r.requests
                        && ok <= r.requests + s.connections as u64;
                    note = format!(
                        "{ok} log lines `{expect}` of {}{}",
                        lines.len(),
                        if complete { "" } else { " <-- CHECK" }
                    );
                    answered = Some(ok);
                }
                if t.pay {
                    let (txns, after) = settled_rows(&inst.db, &txn_prefix, inst.pay_tables);
                    // Without a log, the rows must match what wrk counted (plus a request
                    // per connection cut off at the end and still committed).
                    let expected = match answered {
                        Some(ok) => txns == ok,
                        None => txns >= r.requests && txns <= r.requests + s.connections as u64,
                    };
                    let mut all_match = expected;
                    let mut counts = format!("{txns} paysys_txn rows");
                    for ((table, before), after) in
                        inst.pay_tables.iter().zip(&rows_before).zip(&after)
                    {
                        let added = after - before;
                        all_match &= added == txns;
                        counts += &format!(", {added} {table} rows");
                    }
                    note += &format!(
                        "{}{counts}{}",
                        if note.is_empty() { "" } else { "; " },
                        if all_match { "" } else { " <-- CHECK" }
                    );
                }
                rows.push(WebRow {
                    server: label.clone(),
                    round,
                    target: t.name.clone(),
                    r,
                    noop_rps,
                    machine_ms,
                    mysqld_ms,
                    note,
                });
            }
        }
        let errors = web.error_log();
        let errors: Vec<&str> = errors
            .lines()
            .filter(|l| !l.contains(":notice]") && !l.contains("[notice]"))
            .collect();
        if !errors.is_empty() {
            println!(
                "{label} error log, {} lines other than notices; last ones:\n{}",
                errors.len(),
                tail(&errors.join("\n"), 10)
            );
        }
    }
    println!("load after: {}\n", load());
    println!(
        "| server | round | target | req/s | p50 ms | p99 ms | ratio to no-op | non-2xx | socket errors | machine CPU ms/req | mysqld CPU ms/req | checked |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for w in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.0} % | {} | {} | {:.2} | {} | {} |",
            w.server,
            w.round,
            w.target,
            w.r.rps,
            w.r.p50_ms,
            w.r.p99_ms,
            100.0 * w.r.rps / w.noop_rps,
            w.r.non_2xx,
            w.r.socket_errors,
            w.machine_ms,
            w.mysqld_ms
                .map(|m| format!("{m:.2}"))
                .unwrap_or_else(|| "-".into()),
            w.note
        );
    }
    if s.rounds > 1 {
        println!(
            "\nmedians over the {} rounds (ratio: median of each round's req/s over that round's no-op):\n",
            s.rounds
        );
        println!(
            "| server | target | req/s | p50 ms | p99 ms | ratio to no-op: median (min–max) | median req/s ÷ median no-op req/s | machine CPU ms/req | mysqld CPU ms/req | rounds with a CHECK |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (_, _, kind, inst) in &setups {
            let noop_median = median(
                &rows
                    .iter()
                    .filter(|w| w.server == *kind && w.target == "noop")
                    .map(|w| w.r.rps)
                    .collect::<Vec<_>>(),
            );
            for t in &inst.targets {
                let of: Vec<&WebRow> = rows
                    .iter()
                    .filter(|w| w.server == *kind && w.target == t.name)
                    .collect();
                if of.is_empty() {
                    continue;
                }
                let all = |f: &dyn Fn(&WebRow) -> f64| of.iter().map(|w| f(w)).collect::<Vec<_>>();
                let m = |f: &dyn Fn(&WebRow) -> f64| median(&all(f));
                let ratios = all(&|w| 100.0 * w.r.rps / w.noop_rps);
                println!(
                    "| {kind} | {} | {:.0} | {:.2} | {:.2} | {:.0} % ({:.0}–{:.0}) | {:.0} % | {:.2} | {} | {} |",
                    t.name,
                    m(&|w| w.r.rps),
                    m(&|w| w.r.p50_ms),
                    m(&|w| w.r.p99_ms),
                    median(&ratios),
                    percentile(&ratios, 0.0),
                    percentile(&ratios, 100.0),
                    100.0 * m(&|w| w.r.rps) / noop_median,
                    m(&|w| w.machine_ms),
                    if of.iter().all(|w| w.mysqld_ms.is_some()) {
                        format!("{:.2}", m(&|w| w.mysqld_ms.unwrap_or(0.0)))
                    } else {
                        "-".into()
                    },
                    of.iter().filter(|w| w.note.contains("CHECK")).count()
                );
            }
        }
    }
    let raw_path = s.out.join("wrk-raw.txt");
    std::fs::write(&raw_path, raw).expect("write wrk output");
    println!("\nraw wrk output: {}", raw_path.display());
    for inst in &instances {
        let _ = std::fs::remove_dir_all(&inst.prefix);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// One process at a time

/// One finished process: what it printed and what it cost.
struct Run {
    stdout: String,
    stderr: String,
    cpu_ms: f64,
    maxrss_kb: u64,
    wall_ms: f64,
    minflt: u64,
}

/// Runs `exe` as a web server runs a CGI (clean environment, these variables, no stdin)
/// under `bench/rusage.c`, which reports its CPU time, peak RSS and wall time.
fn run_process(s: &Settings, exe: &Path, vars: &[(&str, &str)]) -> Run {
    run_process_in(s, exe, vars, b"")
}

/// [`run_process`] with `stdin` as the request body.
fn run_process_in(s: &Settings, exe: &Path, vars: &[(&str, &str)], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut child = Command::new(s.rusage())
        .arg(exe)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {} under rusage: {e}", exe.display()));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("run {} under rusage: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("rusage "))
        .unwrap_or_else(|| panic!("no rusage line from {}: {stderr}", exe.display()))
        .to_string();
    stderr = stderr.replace(&format!("{report}\n"), "");
    let field = |key: &str| -> u64 {
        report
            .split(' ')
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in {report}"))
    };
    assert_eq!(
        field("status"),
        0,
        "{} failed: {stdout}{stderr}",
        exe.display()
    );
    Run {
        cpu_ms: field("cpu_us") as f64 / 1000.0,
        maxrss_kb: field("maxrss_kb"),
        wall_ms: field("wall_us") as f64 / 1000.0,
        minflt: field("minflt"),
        stdout,
        stderr,
    }
}

fn cgi_vars<'a>(config: &'a str, query: &'a str, remote: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/cgi-bin/osmp.cgi"),
        ("QUERY_STRING", query),
        ("REMOTE_ADDR", remote),
        ("PAYSYS_CONFIG", config),
    ]
}

/// Summary of `reps` runs of one kind of request.
struct Figures {
    name: String,
    cpu: Vec<f64>,
    wall: Vec<f64>,
    rss: Vec<f64>,
    minflt: Vec<f64>,
    /// `ms=` of the log line: from the start of `endpoint::run` to the log write.
    inproc: Vec<f64>,
}

impl Figures {
    fn new(name: &str) -> Figures {
        Figures {
            name: name.to_string(),
            cpu: Vec::new(),
            wall: Vec::new(),
            rss: Vec::new(),
            minflt: Vec::new(),
            inproc: Vec::new(),
        }
    }

    fn add(&mut self, r: &Run) {
        self.cpu.push(r.cpu_ms);
        self.wall.push(r.wall_ms);
        self.rss.push(r.maxrss_kb as f64);
        self.minflt.push(r.minflt as f64);
    }

    /// Adds the `ms=` of the last line of the log (the request's own line).
    fn add_log_ms(&mut self, site: &Site) {
        let ms = site
            .log_lines()
            .last()
            .map(|l| log_field(l, "ms").parse().unwrap_or(f64::NAN))
            .unwrap_or(f64::NAN);
        self.inproc.push(ms);
    }

    fn header() -> &'static str {
        "| process | runs | CPU ms (user+sys) median | p90 | wall ms median | p90 | log ms= median | peak RSS KB median | max | page faults |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    fn row(&self) -> String {
        let inproc = if self.inproc.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", median(&self.inproc))
        };
        format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {inproc} | {:.0} | {:.0} | {:.0} |",
            self.name,
            self.cpu.len(),
            median(&self.cpu),
            percentile(&self.cpu, 90.0),
            median(&self.wall),
            percentile(&self.wall, 90.0),
            median(&self.rss),
            percentile(&self.rss, 100.0),
            median(&self.minflt)
        )
    }
}

/// The XML `<result>` of a CGI's stdout.
fn result_of(stdout: &str) -> &str {
    stdout
        .split_once("<result>")
        .and_then(|(_, rest)| rest.split_once("</result>"))
        .map(|(r, _)| r)
        .unwrap_or("?")
}

/// `/usr/bin/time -v` of one run: its own report of user, system, elapsed and peak RSS.
fn time_v(exe: &Path, vars: &[(&str, &str)]) -> String {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        return "/usr/bin/time not installed (apt-get install time)".into();
    }
    let out = Command::new(time)
        .arg("-v")
        .arg(exe)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run /usr/bin/time");
    let report = String::from_utf8_lossy(&out.stderr);
    let keep = [
        "User time",
        "System time",
        "Elapsed (wall clock)",
        "Maximum resident set size",
        "Voluntary context switches",
        "Involuntary context switches",
        "Minor (reclaiming",
    ];
    report
        .lines()
        .map(str::trim)
        .filter(|l| keep.iter().any(|k| l.starts_with(k)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_2_process() {
    let s = Settings::get();
    let noop = s.noop().to_path_buf();
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = site.config_path().to_string_lossy().into_owned();
    let check = "command=check&txn_id=1&account=59071&sum=10.00";
    let date = txn_date();
    println!(
        "\n== process: each figure from {} runs (after 3 warm-up runs), one process at a time; osmp: {}; load before: {}",
        s.reps,
        osmp_exe().display(),
        load()
    );

    let mut figures = Vec::new();
    let mut measure =
        |name: &str, exe: &Path, query: &dyn Fn(usize) -> String, remote: &str, want: &str| {
            let mut f = Figures::new(name);
            for i in 0..s.reps + 3 {
                let q = query(i);
                let run = run_process(&s, exe, &cgi_vars(&config, &q, remote));
                assert_eq!(
                    result_of(&run.stdout),
                    want,
                    "{name}: {}{}",
                    run.stdout,
                    run.stderr
                );
                if i >= 3 {
                    f.add(&run);
                    if exe != noop.as_path() {
                        f.add_log_ms(&site);
                    }
                }
            }
            figures.push(f);
        };
    measure(
        "no-op CGI (bench/noop.c)",
        &noop,
        &|_| check.to_string(),
        "127.0.0.1",
        "0",
    );
    measure(
        "osmp.cgi, refused before the database (bad check digit)",
        osmp_exe(),
        &|_| "command=check&txn_id=1&account=59070&sum=10.00".to_string(),
        "127.0.0.1",
        "4",
    );
    measure(
        "osmp.cgi check",
        osmp_exe(),
        &|_| check.to_string(),
        "127.0.0.1",
        "0",
    );
    measure(
        "osmp.cgi pay (new txn_id each)",
        osmp_exe(),
        &|i| {
            format!(
                "command=pay&txn_id={}&account=59071&sum=1.00&txn_date={date}",
                500_000 + i
            )
        },
        "127.0.0.1",
        "0",
    );
    for (v, (name, path)) in s.variants.iter().enumerate() {
        measure(
            &format!("osmp.cgi check [{name}]"),
            path,
            &|_| check.to_string(),
            "127.0.0.1",
            "0",
        );
        measure(
            &format!("osmp.cgi pay [{name}]"),
            path,
            &|i| {
                format!(
                    "command=pay&txn_id={}&account=59071&sum=1.00&txn_date={date}",
                    700_000 + 10_000 * v + i
                )
            },
            "127.0.0.1",
            "0",
        );
    }
    println!("load after: {}\n", load());
    println!("{}", Figures::header());
    for f in &figures {
        println!("{}", f.row());
    }

    println!("\n/usr/bin/time -v, one run each:");
    let pay = format!("command=pay&txn_id=600000&account=59071&sum=1.00&txn_date={date}");
    for (name, exe, q) in [
        ("no-op", noop.as_path(), check.to_string()),
        ("check", osmp_exe(), check.to_string()),
        ("pay", osmp_exe(), pay),
    ] {
        println!(
            "  {name}: {}",
            time_v(exe, &cgi_vars(&config, &q, "127.0.0.1"))
        );
    }
}

// ---------------------------------------------------------------------------------------
// Scale: 10 k rows, then 1 M

/// First id of the bulk subscribers (the fixture's are 3, 1234, 5907, 5908).
const BULK_BASE: u64 = 100_000;

/// Adds bulk rows `from..=to` (1-based) to users, paysys_txn and pays, in chunks.
fn fill(conn: &mut mysql::Conn, from: u64, to: u64) {
    let chunk = 200_000;
    let mut lo = from;
    while lo <= to {
        let hi = (lo + chunk - 1).min(to);
        let seq = format!("seq_{lo}_to_{hi}");
        conn.query_drop("START TRANSACTION").expect("begin");
        conn.query_drop(format!(
            "INSERT INTO users (id, mid, name, fio, balance) \
             SELECT {BULK_BASE} + seq, 0, CONCAT('user', seq), CONCAT('Subscriber ', seq), \
             (seq % 1000) / 10 FROM {seq}"
        ))
        .expect("fill users");
        conn.query_drop(format!(
            "INSERT INTO paysys_txn (system_name, txn_id, account, subscriber_id, amount, txn_date, \
             created, caller_ip, payment_ref) \
             SELECT 'osmp', CONCAT('7', LPAD(seq, 12, '0')), CONCAT({BULK_BASE} + seq, '0'), \
             {BULK_BASE} + seq, 10.00, NOW() - INTERVAL seq SECOND, NOW() - INTERVAL seq SECOND, \
             '10.0.0.7', seq FROM {seq}"
        ))
        .expect("fill paysys_txn");
        conn.query_drop(format!(
            "INSERT INTO pays (mid, cash, time, admin_id, admin_ip, office, bonus, reason, coment, \
             type, category) \
             SELECT {BULK_BASE} + seq, 10.00, UNIX_TIMESTAMP() - seq, 0, 167772167, 0, '', \
             CONCAT('osmp txn_id=7', LPAD(seq, 12, '0')), CONCAT('paysys prv_txn=', seq), 10, 0 \
             FROM {seq}"
        ))
        .expect("fill pays");
        conn.query_drop("COMMIT").expect("commit");
        lo = hi + 1;
    }
}

fn status_counter(conn: &mut mysql::Conn, name: &str) -> u64 {
    conn.query_first::<(String, u64), _>(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .expect("show status")
        .map(|(_, v)| v)
        .unwrap_or(0)
}

/// A small deterministic generator: the same accounts in every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_3_scale() {
    let s = Settings::get();
    let date = txn_date();
    // Two databases, measured in turns (small, big, small, big, …), so that whatever else
    // the machine is doing weighs on both alike.
    let dbs = [(10_000u64, TestDb::new()), (s.rows, TestDb::new())];
    let sites: Vec<Site> = dbs.iter().map(|(_, db)| Site::new(&db.url, "")).collect();
    let configs: Vec<String> = sites
        .iter()
        .map(|site| site.config_path().to_string_lossy().into_owned())
        .collect();
    let mut conn = dbs[0].1.conn();
    let pool_mb = conn
        .query_first::<u64, _>("SELECT @@innodb_buffer_pool_size")
        .expect("buffer pool size")
        .unwrap_or(0)
        / (1 << 20);
    println!(
        "\n== scale: check and pay processes against a database with 10 k and one with {} rows, \
         in turns; {} runs each (a random bulk subscriber per run), first touch then the same \
         subscribers again; InnoDB buffer pool {pool_mb} MB; load before: {}",
        s.rows,
        s.reps,
        load()
    );
    for (rows, db) in &dbs {
        let t = Instant::now();
        let mut c = db.conn();
        fill(&mut c, 1, *rows);
        // Fresh statistics, as a long-lived table has (and information_schema sizes).
        let _: Vec<mysql::Row> = c
            .query("ANALYZE TABLE users, paysys_txn, pays")
            .expect("analyze table");
        let load_s = t.elapsed().as_secs_f64();
        let size: (u64, u64, u64, u64) = conn
            .query_first(format!(
                "SELECT \
                 (SELECT COUNT(*) FROM `{0}`.users), (SELECT COUNT(*) FROM `{0}`.paysys_txn), \
                 (SELECT COUNT(*) FROM `{0}`.pays), \
                 (SELECT SUM(data_length + index_length) FROM information_schema.tables \
                  WHERE table_schema = '{0}' AND table_name IN ('users', 'paysys_txn', 'pays'))",
                db.name
            ))
            .expect("counts")
            .expect("a row");
        println!(
            "loaded {rows} bulk rows per table in {load_s:.1} s: users {}, paysys_txn {}, pays {}; \
             data + indexes {} MB",
            size.0,
            size.1,
            size.2,
            size.3 / (1 << 20)
        );
    }

    let n = s.reps + 3;
    let mut rng = Lcg(42);
    // Per database: the subscribers its checks and its pays go to.
    let ids: Vec<(Vec<u64>, Vec<u64>)> = dbs
        .iter()
        .map(|(rows, _)| {
            let mut pick =
                || -> Vec<u64> { (0..n).map(|_| BULK_BASE + 1 + rng.next(*rows)).collect() };
            (pick(), pick())
        })
        .collect();
    // figures[pass][db] = (check, pay)
    let mut figures: Vec<Vec<(Figures, Figures)>> = Vec::new();
    let mut txn = 0u64;
    for pass in ["first touch", "again"] {
        let mut this: Vec<(Figures, Figures)> = dbs
            .iter()
            .map(|(rows, _)| {
                (
                    Figures::new(&format!("check @ {rows} rows, {pass}")),
                    Figures::new(&format!("pay @ {rows} rows, {pass}")),
                )
            })
            .collect();
        let reads_before = status_counter(&mut conn, "Innodb_buffer_pool_reads");
        for i in 0..n {
            for k in 0..dbs.len() {
                let account = payment_code(ids[k].0[i]);
                let q = format!("command=check&txn_id={i}&account={account}&sum=10.00");
                let r = run_process(&s, osmp_exe(), &cgi_vars(&configs[k], &q, "127.0.0.1"));
                assert_eq!(result_of(&r.stdout), "0", "{q}: {}", r.stdout);
                if i >= 3 {
                    this[k].0.add(&r);
                    this[k].0.add_log_ms(&sites[k]);
                }
                txn += 1;
                let account = payment_code(ids[k].1[i]);
                let q = format!(
                    "command=pay&txn_id={}&account={account}&sum=1.00&txn_date={date}",
                    60_000_000 + txn
                );
                let r = run_process(&s, osmp_exe(), &cgi_vars(&configs[k], &q, "127.0.0.1"));
                assert_eq!(result_of(&r.stdout), "0", "{q}: {}", r.stdout);
                if i >= 3 {
                    this[k].1.add(&r);
                    this[k].1.add_log_ms(&sites[k]);
                }
            }
        }
        let misses = status_counter(&mut conn, "Innodb_buffer_pool_reads") - reads_before;
        println!(
            "  {pass}: {misses} buffer-pool misses (pages read from disk) in {} processes",
            2 * n * dbs.len()
        );
        figures.push(this);
    }
    println!("load after: {}\n", load());
    println!("{}", Figures::header());
    for pass in &figures {
        for (c, p) in pass {
            println!("{}\n{}", c.row(), p.row());
        }
    }
    let ratio = |a: &Figures, b: &Figures| {
        format!(
            "wall {:.2}, log ms= {:.2}, CPU {:.2}",
            median(&b.wall) / median(&a.wall),
            median(&b.inproc) / median(&a.inproc),
            median(&b.cpu) / median(&a.cpu)
        )
    };
    println!("\nratio of medians, {} rows / 10000 rows:", s.rows);
    for (pass, f) in ["first touch", "again"].iter().zip(&figures) {
        println!("  check, {pass}: {}", ratio(&f[0].0, &f[1].0));
        println!("  pay,   {pass}: {}", ratio(&f[0].1, &f[1].1));
    }

    // How each statement finds its row at full size: ANALYZE runs it and counts rows read.
    let big = &dbs[1].1;
    let mut conn = big.conn();
    let id = BULK_BASE + s.rows / 2;
    let txn_id = format!("7{:012}", s.rows / 2);
    let prv: u64 = conn
        .exec_first(
            "SELECT id FROM paysys_txn WHERE system_name = 'osmp' AND txn_id = ?",
            (&txn_id,),
        )
        .expect("select")
        .unwrap_or(0);
    println!(
        "\nANALYZE of the statements a request runs, at {} rows (r_rows: rows actually read; \
         a const lookup is done while planning and shows NULL):",
        s.rows
    );
    conn.query_drop("START TRANSACTION").expect("begin");
    for sql in [
        format!("SELECT id, name, balance FROM users WHERE id = {id} AND mid = 0"),
        format!("SELECT id FROM paysys_txn WHERE system_name = 'osmp' AND txn_id = '{txn_id}'"),
        format!("UPDATE users SET balance = balance + 1 WHERE id = {id} AND mid = 0"),
        format!("UPDATE paysys_txn SET payment_ref = 1 WHERE id = {prv}"),
    ] {
        let plan: Vec<mysql::Row> = conn.query(format!("ANALYZE {sql}")).expect("analyze");
        for row in plan {
            let col = |name: &str| -> String {
                row.get_opt::<Option<String>, _>(name)
                    .and_then(Result::ok)
                    .flatten()
                    .unwrap_or_else(|| "NULL".into())
            };
            println!(
                "  {sql}\n    -> table {} type {} key {} rows {} r_rows {}",
                col("table"),
                col("type"),
                col("key"),
                col("rows"),
                col("r_rows")
            );
        }
    }
    conn.query_drop("ROLLBACK").expect("rollback");
}

// ---------------------------------------------------------------------------------------
// Where one check process spends its time

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `tool args… exe` with a CGI environment; returns (stdout, stderr).
fn under(tool: &str, args: &[&str], exe: &Path, vars: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(tool)
        .args(args)
        .arg(exe)
        .env_clear()
        .envs(vars.iter().copied())
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `strace -f -tt` line's time of day in microseconds, and the call. Lines start with the
/// pid when strace writes to a file with `-f`.
fn strace_time(line: &str) -> Option<(f64, &str)> {
    let line = line
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    let (ts, rest) = line.split_once(' ')?;
    let mut parts = ts.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(((h * 3600.0 + m * 60.0 + s) * 1e6, rest))
}

/// A profiled request: name, executable, query.
struct Probe {
    name: &'static str,
    exe: PathBuf,
    query: fn(usize) -> String,
}

fn probe_check(_: usize) -> String {
    "command=check&txn_id=1&account=59071&sum=10.00".into()
}

fn probe_no_db(_: usize) -> String {
    "command=check&txn_id=1&account=59070&sum=10.00".into()
}

fn probe_pay(i: usize) -> String {
    format!(
        "command=pay&txn_id={}&account=59071&sum=1.00&txn_date={}",
        800_000 + i,
        txn_date()
    )
}

/// `perf stat -x,` output → event → value.
fn perf_values(csv: &str) -> BTreeMap<String, f64> {
    csv.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let v: f64 = f.first()?.parse().ok()?;
            Some((f.get(2)?.to_string(), v))
        })
        .collect()
}

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_4_profile() {
    let s = Settings::get();
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let config = site.config_path().to_string_lossy().into_owned();
    let dir = s.out.join("profile");
    std::fs::create_dir_all(&dir).expect("profile dir");
    let probes = [
        Probe {
            name: "no-op",
            exe: s.noop().to_path_buf(),
            query: probe_check,
        },
        Probe {
            name: "osmp, no DB",
            exe: osmp_exe().to_path_buf(),
            query: probe_no_db,
        },
        Probe {
            name: "check",
            exe: osmp_exe().to_path_buf(),
            query: probe_check,
        },
        Probe {
            name: "pay",
            exe: osmp_exe().to_path_buf(),
            query: probe_pay,
        },
    ];
    let mut serial = 0usize;
    let mut next_query = |p: &Probe| {
        serial += 1;
        (p.query)(serial)
    };
    println!("\n== profile: one process at a time; load: {}", load());

    // perf stat: CPU time, page faults, and user/kernel instructions and cycles.
    if have("perf") {
        let events = "task-clock,page-faults,instructions:u,instructions:k,cycles:u,cycles:k";
        let runs = 20;
        println!("\nperf stat -e {events}, median of {runs} runs each:");
        println!("| process | task-clock ms | page faults | instructions user | instructions kernel | cycles user | cycles kernel |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let mut raw = String::new();
        for p in &probes {
            let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for _ in 0..runs {
                let q = next_query(p);
                let (_, err) = under(
                    "perf",
                    &["stat", "-x", ",", "-e", events, "--"],
                    &p.exe,
                    &cgi_vars(&config, &q, "127.0.0.1"),
                );
                raw += &format!("--- {}\n{err}\n", p.name);
                for (k, v) in perf_values(&err) {
                    values.entry(k).or_default().push(v);
                }
            }
            let m = |k: &str| -> String {
                values
                    .get(k)
                    .map(|v| median(v))
                    .map(|v| {
                        if k == "task-clock" {
                            format!("{v:.2}")
                        } else {
                            format!("{v:.0}")
                        }
                    })
                    .unwrap_or_else(|| "n/a".into())
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                p.name,
                m("task-clock"),
                m("page-faults"),
                m("instructions:u"),
                m("instructions:k"),
                m("cycles:u"),
                m("cycles:k")
            );
        }
        std::fs::write(dir.join("perf-stat.txt"), raw).expect("write");
    } else {
        println!("perf not installed (apt-get install linux-perf)");
    }

    // strace: syscall counts, and the timeline of the database exchange.
    if have("strace") {
        for p in probes
            .iter()
            .filter(|p| p.name == "check" || p.name == "pay")
        {
            let q = next_query(p);
            let vars = cgi_vars(&config, &q, "127.0.0.1");
            let (_, summary) = under("strace", &["-f", "-c", "-o", "/dev/stderr"], &p.exe, &vars);
            std::fs::write(dir.join(format!("strace-c-{}.txt", p.name)), &summary).expect("write");
            let total = summary
                .lines()
                .find(|l| l.trim_end().ends_with("total"))
                .unwrap_or("")
                .to_string();
            println!("\nstrace -c -f, one {} process: {}", p.name, total.trim());
            let counts: Vec<String> = summary
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // % time, seconds, usecs/call, calls, [errors], syscall
                    if f.len() >= 5 && f[0].contains('.') && *f.last()? != "total" {
                        Some(format!("{} {}", f.last()?, f[3]))
                    } else {
                        None
                    }
                })
                .collect();
            println!("  calls: {}", counts.join(", "));

            let q = next_query(p);
            let vars = cgi_vars(&config, &q, "127.0.0.1");
            let trace_path = dir.join(format!("strace-timeline-{}.txt", p.name));
            let trace_arg = trace_path.to_string_lossy().into_owned();
            // Only these calls are stopped (seccomp-bpf): the others run at full speed, so
            // the gaps between the traced calls are close to the real ones.
            let _ = under(
                "strace",
                &[
                    "-f",
                    "--seccomp-bpf",
                    "-tt",
                    "-T",
                    "-s",
                    "80",
                    "-e",
                    "trace=execve,openat,connect,sendto,recvfrom,write,close,exit_group",
                    "-o",
                    &trace_arg,
                ],
                &p.exe,
                &vars,
            );
            let trace = std::fs::read_to_string(&trace_path).unwrap_or_default();
            println!("\nstrace timeline of one {} process:", p.name);
            summarize_trace(&trace);
            println!("  (trace: {})", trace_path.display());
        }
    } else {
        println!("strace not installed (apt-get install strace)");
    }

    // callgrind: user-space instructions by function, for one process each.
    if have("valgrind") && have("callgrind_annotate") {
        for p in probes.iter().filter(|p| p.name != "no-op") {
            let q = next_query(p);
            let vars = cgi_vars(&config, &q, "127.0.0.1");
            let slug = p.name.replace([' ', ','], "-");
            let out_file = dir.join(format!("callgrind-{slug}.out"));
            let out_arg = format!("--callgrind-out-file={}", out_file.display());
            let _ = under("valgrind", &["--tool=callgrind", &out_arg], &p.exe, &vars);
            let annotate = Command::new("callgrind_annotate")
                .arg("--inclusive=yes")
                .arg("--threshold=100")
                .arg(&out_file)
                .output()
                .expect("callgrind_annotate");
            let inclusive = String::from_utf8_lossy(&annotate.stdout).into_owned();
            std::fs::write(dir.join(format!("callgrind-{slug}.txt")), &inclusive).expect("write");
            println!(
                "\ncallgrind, one {} process: instructions by phase (inclusive)",
                p.name
            );
            print_phases(&inclusive);
        }
    } else {
        println!("valgrind not installed (apt-get install valgrind)");
    }
    println!("\nraw profiles: {}", dir.display());
}

/// Inclusive instruction counts of the functions that mark the phases of a request.
fn print_phases(report: &str) {
    let phases: &[(&str, &str)] = &[
        ("PROGRAM TOTALS", "whole process (user space)"),
        ("_dl_start ", "dynamic loader: relocations, libc"),
        ("std::rt::lang_start_internal", "Rust main"),
        ("paysys::cgi::Request::from_process", "read the CGI request"),
        ("paysys::config::Config::load", "read and check the config"),
        ("paysys::db::connect", "database connect (all of it)"),
        (
            "HandshakePacket::server_version_parsed",
            "  of which: server version regex (mysql_common)",
        ),
        (
            "HandshakePacket::maria_db_server_version_parsed",
            "  of which: MariaDB version regex (mysql_common)",
        ),
        ("Billing>::find", "check: SELECT the subscriber"),
        ("paysys::ledger::pay", "pay: the transaction"),
        (
            "<mysql::conn::Conn as core::ops::drop::Drop>::drop",
            "close statements, COM_QUIT",
        ),
        ("chrono::offset::local", "local time zone (chrono)"),
    ];
    let total: f64 = report
        .lines()
        .find(|l| l.contains("PROGRAM TOTALS"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or(f64::NAN);
    for (needle, label) in phases {
        // The first (largest) line naming the function.
        let found = report.lines().find(|l| l.contains(needle));
        if let Some(line) = found {
            let ir: f64 = line
                .split_whitespace()
                .next()
                .and_then(|n| n.replace(',', "").parse().ok())
                .unwrap_or(f64::NAN);
            println!("  {:>10.0} Ir {:>5.1} %  {label}", ir, 100.0 * ir / total);
        }
    }
}

/// The phases of one process from a `strace -f -tt -T` of a few calls: process start to the
/// DB connect, each client → server exchange with the time until the reply had arrived,
/// and the end.
fn summarize_trace(trace: &str) {
    let lines: Vec<(f64, &str)> = trace.lines().filter_map(strace_time).collect();
    let (Some(&(t0, _)), Some(&(t_end, _))) = (lines.first(), lines.last()) else {
        println!("  empty trace");
        return;
    };
    // -T appends the time spent in the call: `= 11 <0.001786>`.
    let duration = |l: &str| -> f64 {
        l.rsplit_once('<')
            .and_then(|(_, d)| d.trim_end_matches('>').parse::<f64>().ok())
            .map(|d| d * 1e6)
            .unwrap_or(0.0)
    };
    let db = |l: &str| l.starts_with("connect(") && l.contains("htons(3306)");
    let Some(fd) = lines
        .iter()
        .find(|(_, l)| db(l))
        .and_then(|(_, l)| l["connect(".len()..].split(',').next())
        .map(str::to_string)
    else {
        println!(
            "  execve to exit_group: {:.2} ms; no TCP connect to port 3306 seen",
            (t_end - t0) / 1000.0
        );
        return;
    };
    let is = |l: &str, call: &str| l.starts_with(&format!("{call}({fd},"));
    // (sent at, what, reply arrived at)
    let mut exchanges: Vec<(f64, String, Option<f64>)> = Vec::new();
    let mut open = false;
    let mut last_db = t0;
    for (t, l) in &lines {
        if db(l) {
            open = true;
            exchanges.push((*t, "TCP connect, server greeting".into(), None));
        } else if !open {
            continue;
        } else if l.starts_with(&format!("close({fd})")) {
            open = false;
        } else if is(l, "sendto") || is(l, "write") {
            exchanges.push((*t, packet_summary(l), None));
            last_db = *t;
        } else if is(l, "recvfrom") && !l.contains("EAGAIN") {
            let end = t + duration(l);
            last_db = end;
            // The reply belongs to the latest exchange still waiting for one.
            if let Some(x) = exchanges.iter_mut().rev().find(|x| x.2.is_none()) {
                x.2 = Some(end);
            }
        }
    }
    let first_db = exchanges.first().map(|x| x.0).unwrap_or(t0);
    let trips = exchanges.iter().filter(|x| x.2.is_some()).count();
    let waited: f64 = exchanges.iter().filter_map(|x| Some(x.2? - x.0)).sum();
    println!(
        "  execve to exit_group {:.2} ms = execve to connect() {:.2} + connect() to the last DB packet {:.2} + the rest {:.2}",
        (t_end - t0) / 1000.0,
        (first_db - t0) / 1000.0,
        (last_db - first_db) / 1000.0,
        (t_end - last_db) / 1000.0
    );
    println!(
        "  {trips} round trips to MariaDB (connect included): {:.2} ms from sending to the reply's arrival, {:.2} ms between them in the client",
        waited / 1000.0,
        (last_db - first_db - waited) / 1000.0
    );
    println!("  sent at (ms since execve), reply after (ms), what:");
    for (t, what, reply) in &exchanges {
        let r = reply
            .map(|r| format!("{:6.3}", (r - t) / 1000.0))
            .unwrap_or_else(|| "     -".into());
        println!("    +{:7.3}  {r}  {what}", (t - t0) / 1000.0);
    }
}

/// A short name for a client packet from strace's escaped text of it.
fn packet_summary(line: &str) -> String {
    let Some(text) = line.split_once('"').map(|(_, r)| r) else {
        return line.to_string();
    };
    // 4-byte header (3 length bytes, sequence), then the command byte.
    let mut bytes = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            break;
        }
        if c == '\\' {
            match chars.next() {
                Some('n') => bytes.push(b'\n'),
                Some('t') => bytes.push(b'\t'),
                Some('r') => bytes.push(b'\r'),
                Some('f') => bytes.push(0x0c),
                Some('v') => bytes.push(0x0b),
                Some('\\') => bytes.push(b'\\'),
                Some('"') => bytes.push(b'"'),
                Some('x') => {
                    let h: String = chars.by_ref().take(2).collect();
                    bytes.push(u8::from_str_radix(&h, 16).unwrap_or(0));
                }
                Some(d) if d.is_ascii_digit() => {
                    let mut oct = d.to_string();
                    while oct.len() < 3 && chars.peek().is_some_and(|c| c.is_digit(8)) {
                        oct.push(chars.next().unwrap_or('0'));
                    }
                    bytes.push(u8::from_str_radix(&oct, 8).unwrap_or(0));
                }
                Some(other) => bytes.push(other as u8),
                None => break,
            }
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    if bytes.len() < 5 {
        return "(short packet)".into();
    }
    let body = String::from_utf8_lossy(&bytes[5..]);
    let sql: String = body.chars().take(70).collect();
    match (bytes[3], bytes[4]) {
        (1, _) => "handshake response (login)".into(),
        (_, 0x01) => "COM_QUIT".into(),
        (_, 0x03) => format!("COM_QUERY {sql}"),
        (_, 0x16) => format!("COM_STMT_PREPARE {sql}"),
        (_, 0x17) => "COM_STMT_EXECUTE".into(),
        (_, 0x19) => "COM_STMT_CLOSE (no reply)".into(),
        (seq, cmd) => format!("packet seq {seq} command {cmd:#04x}"),
    }
}

// ---------------------------------------------------------------------------------------
// Every protocol, one process at a time

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_5_protocols() {
    use paysys::config::{ServiceSlot, SignHash, SignRule};
    let s = Settings::get();
    let db = TestDb::with_fixture(&common::abills::fixture());
    let site = Site::new(&db.url, "");
    let fixtures = repo().join("tests/fixtures/easypay");
    // One system per protocol, each the caller of its own loopback address.
    let system = |name: &str, protocol: &str, last: u8, extra: &str| {
        format!(
            "\n[[system]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nallow = [\"127.0.0.{last}\"]\n\
             account = \"login\"\nmax_sum = \"1000000.00\"\n{extra}\n"
        )
    };
    let systems = [
        system("osmp", "osmp", 1, ""),
        system("ibox", "ibox", 2, ""),
        system("city24", "city24", 3, ""),
        system("privat", "privat", 4, ""),
        // 2.10's form (no SERVICE_ID), so that the requests stay those of earlier runs.
        system(
            "24ns",
            "24nonstop",
            5,
            "secret = \"s3cret\"\nsign_service_id = false",
        ),
        system(
            "easypay",
            "easypay",
            6,
            &format!(
                "certificate = \"{}\"\nprivate_key = \"{}\"",
                fixtures.join("easysoft.cer").display(),
                fixtures.join("provider.key").display()
            ),
        ),
        // The same without our key: what signing the answers costs.
        system(
            "easypay-unsigned",
            "easypay",
            7,
            &format!(
                "certificate = \"{}\"\ntxn_prefix = \"EPU\"",
                fixtures.join("easysoft.cer").display()
            ),
        ),
        system("kaspi", "kaspi", 8, "abills_id = 130"),
        system("portmone", "portmone", 9, "abills_id = 131"),
        system(
            "click",
            "click",
            10,
            "service_id = \"17449\"\nsecret_key = \"s3cret\"\nabills_id = 99",
        ),
        system("payme", "payme", 11, "key = \"s3cret\"\nabills_id = 98"),
    ]
    .concat();
    site.write_config(&common::abills::config_text(&db.url, &systems));
    let config = site.config_path().to_string_lossy().into_owned();
    let exe = paysys_check_exe();
    let date = txn_date();
    let ns_rule = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: false,
        service: ServiceSlot::Absent,
    };
    let click_rule = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: true,
        service: ServiceSlot::Fixed("17449".into()),
    };
    // A Prepare (prepare id `None`) or a Complete, as a query: Click POSTs the same form.
    let click_form = move |trans: usize, prepare_id: Option<usize>| {
        let (trans, prepare) = (trans.to_string(), prepare_id.map(|p| p.to_string()));
        let action = if prepare.is_some() { "1" } else { "0" };
        let time = "2026-11-22 10:00:00";
        let sign = paysys::protocol::click::signature(
            &click_rule,
            &trans,
            "test1",
            prepare.as_deref(),
            "1.00",
            action,
            time,
        )
        .expect("a signable request");
        let mut q = format!(
            "click_trans_id={trans}&service_id=17449&click_paydoc_id=1&merchant_trans_id=test1\
             &amount=1.00&action={action}&error=0&error_note=Success\
             &sign_time=2026-11-22+10%3A00%3A00&sign_string={sign}"
        );
        if let Some(p) = prepare {
            q.push_str(&format!("&merchant_prepare_id={p}"));
        }
        q
    };
    let click_complete = click_form.clone();
    // Payme's calls: a Create (booking PM<n>) or the Perform of it, JSON.
    let payme = |method: &str, i: usize| {
        format!(
            "{{\"id\":1,\"method\":\"{method}\",\"params\":{{\"id\":\"PM{}\",\"time\":1795000000000,\
             \"amount\":100,\"account\":{{\"login\":\"test1\"}}}}}}",
            800_000 + i
        )
    };
    let payme_auth = "Basic UGF5Y29tOnMzY3JldA=="; // base64("Paycom:s3cret")
    let ep_key = paysys::protocol::easypay::load_private_key(&fixtures.join("easysoft.key"))
        .expect("the test EasySoft key");
    let ep_signed = move |operation: &str| {
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Request><DateTime>2026-11-22T10:00:00</DateTime><Sign></Sign>{operation}</Request>"
        );
        let hex = paysys::protocol::easypay::sign(&ep_key, SignHash::Sha1, doc.as_bytes());
        doc.replace("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"))
    };
    let privat = |action: &str, data: &str| {
        format!(
            "<Transfer xmlns=\"http://debt.privatbank.ua/Transfer\" interface=\"Debt\" action=\"{action}\">{data}</Transfer>"
        )
    };
    println!(
        "\n== protocols: paysys_check.cgi processes, each figure from {} runs (after 3 warm-up runs), round by round one process of every kind; {}; load before: {}",
        s.reps,
        exe.display(),
        load()
    );
    // (name, caller, GET query or POST body for run i, how a success answer shows)
    type Request = Box<dyn Fn(usize) -> (String, Option<String>)>;
    let get = |f: Box<dyn Fn(usize) -> String>| -> Request { Box::new(move |i| (f(i), None)) };
    let post = |f: Box<dyn Fn(usize) -> String>| -> Request {
        Box::new(move |i| (String::new(), Some(f(i))))
    };
    let date2 = date.clone();
    let date3 = date.clone();
    let date4 = date.clone();
    let portmone_form =
        |xml: String| serde_urlencoded::to_string([("data", xml)]).expect("a Portmone form");
    let ns_check = ns_rule.clone();
    let ns_pay = ns_rule.clone();
    let book = ep_signed.clone();
    let confirm = ep_signed.clone();
    let unsigned_check = ep_signed.clone();
    let cases: Vec<(&str, &str, Request, &str)> = vec![
        (
            "osmp check",
            "127.0.0.1",
            get(Box::new(|_| {
                "command=check&txn_id=1&account=test1&sum=0.00".into()
            })),
            "<result>0</result>",
        ),
        (
            "osmp pay",
            "127.0.0.1",
            get(Box::new(move |i| {
                format!(
                    "command=pay&txn_id={}&account=test1&sum=1.00&txn_date={date}",
                    800_000 + i
                )
            })),
            "<result>0</result>",
        ),
        (
            "ibox check",
            "127.0.0.2",
            get(Box::new(|_| {
                "command=check&txn_id=1&account=test1&sum=0.00".into()
            })),
            "<result>0</result>",
        ),
        (
            "ibox pay",
            "127.0.0.2",
            get(Box::new(move |i| {
                format!(
                    "command=pay&txn_id={}&account=test1&sum=1.00&txn_date={date2}",
                    800_000 + i
                )
            })),
            "<result>0</result>",
        ),
        (
            "kaspi check",
            "127.0.0.8",
            get(Box::new(|_| {
                "command=check&txn_id=1&account=test1&sum=1.00".into()
            })),
            "<result>0</result>",
        ),
        (
            "kaspi pay",
            "127.0.0.8",
            get(Box::new(move |i| {
                format!(
                    "command=pay&account=test1&txn_date={date4}&txn_id={}&sum=1.00",
                    800_000 + i
                )
            })),
            "<result>0</result>",
        ),
        (
            "portmone check",
            "127.0.0.9",
            post(Box::new(move |_| {
                portmone_form("<REQUESTS><PAYEE>1</PAYEE><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER></REQUESTS>".into())
            })),
            "<BILL>",
        ),
        (
            "portmone pay",
            "127.0.0.9",
            post(Box::new(move |i| {
                portmone_form(format!("<BILLS><BILL><BILL_ID>PM{}</BILL_ID><PAYED_AMOUNT>1.00</PAYED_AMOUNT><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER><STATUS>PAYED</STATUS></BILL></BILLS>", 800_000 + i))
            })),
            "<ERROR_CODE>0</ERROR_CODE>",
        ),
        (
            "city24 check",
            "127.0.0.3",
            get(Box::new(|_| {
                "QueryType=check&TransactionId=1&Account=test1".into()
            })),
            "<ResultCode>0</ResultCode>",
        ),
        (
            "city24 pay",
            "127.0.0.3",
            get(Box::new(move |i| {
                format!("QueryType=pay&TransactionId={}&Account=test1&Amount=1.00&TransactionDate={date3}", 800_000 + i)
            })),
            "<ResultCode>0</ResultCode>",
        ),
        (
            "privat search",
            "127.0.0.4",
            post(Box::new(move |_| {
                privat("Search", "<Data xsi:type=\"Payer\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><Unit name=\"bill_identifier\" value=\"test1\"/></Data>")
            })),
            "DebtPack",
        ),
        (
            "privat pay",
            "127.0.0.4",
            post(Box::new(move |i| {
                privat("Pay", &format!("<Data xsi:type=\"Payment\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" id=\"PB{}\"><PayerInfo billIdentifier=\"test1\"/><TotalSum>1.00</TotalSum></Data>", 800_000 + i))
            })),
            "Gateway",
        ),
        (
            "24nonstop check (MD5 SIGN)",
            "127.0.0.5",
            get(Box::new(move |_| {
                let sign = paysys::protocol::nonstop24::signature(
                    &ns_check, "1", "test1", None, "1", None,
                )
                .expect("a signable request");
                format!("ACT=1&PAY_ACCOUNT=test1&PAY_ID=1&SIGN={sign}")
            })),
            "<status_code>21</status_code>",
        ),
        (
            "24nonstop pay (MD5 SIGN)",
            "127.0.0.5",
            get(Box::new(move |i| {
                let id = format!("G-{}", 800_000 + i);
                let sign =
                    paysys::protocol::nonstop24::signature(&ns_pay, "4", "test1", None, &id, None)
                        .expect("a signable request");
                format!("ACT=4&PAY_ACCOUNT=test1&PAY_ID={id}&PAY_AMOUNT=1.00&SIGN={sign}")
            })),
            "<status_code>22</status_code>",
        ),
        (
            "easypay check (RSA verify + sign)",
            "127.0.0.6",
            post(Box::new(move |_| {
                ep_signed("<Check><ServiceId>1</ServiceId><Account>test1</Account></Check>")
            })),
            "<StatusCode>0</StatusCode>",
        ),
        (
            "easypay payment: book (RSA)",
            "127.0.0.6",
            post(Box::new(move |i| {
                book(&format!("<Payment><ServiceId>1</ServiceId><OrderId>{}</OrderId><Account>test1</Account><Amount>1.00</Amount></Payment>", 800_000 + i))
            })),
            "<PaymentId>",
        ),
        (
            "easypay check, answer unsigned (RSA verify)",
            "127.0.0.7",
            post(Box::new(move |_| {
                unsigned_check("<Check><ServiceId>1</ServiceId><Account>test1</Account></Check>")
            })),
            "<StatusCode>0</StatusCode>",
        ),
        // Each round books three orders, in this order: EasyPay's, Payme's, Click's; a
        // fresh paysys_order numbers them 3i + 1, 3i + 2, 3i + 3 in round i.
        (
            "easypay confirm: pay (RSA)",
            "127.0.0.6",
            post(Box::new(move |i| {
                confirm(&format!(
                    "<Confirm><ServiceId>1</ServiceId><PaymentId>{}</PaymentId></Confirm>",
                    3 * i + 1
                ))
            })),
            "<StatusCode>0</StatusCode>",
        ),
        (
            "payme create: book (Authorization key)",
            "127.0.0.11",
            post(Box::new(move |i| payme("CreateTransaction", i))),
            "\"state\":1",
        ),
        (
            "payme perform: pay (Authorization key)",
            "127.0.0.11",
            post(Box::new(move |i| payme("PerformTransaction", i))),
            "\"state\":2",
        ),
        (
            "click prepare: book (MD5 sign_string)",
            "127.0.0.10",
            get(Box::new(move |i| click_form(800_000 + i, None))),
            "\"error\":0",
        ),
        (
            "click complete: pay (MD5 sign_string)",
            "127.0.0.10",
            get(Box::new(move |i| {
                click_complete(800_000 + i, Some(3 * i + 3))
            })),
            "\"error\":0",
        ),
    ];
    // Round by round, one process of every kind in each: whatever the machine does
    // meanwhile (others' work, the tables growing) falls on every kind alike, not on the
    // kinds that happen to run last.
    let mut figures: Vec<Figures> = cases.iter().map(|(name, ..)| Figures::new(name)).collect();
    for i in 0..s.reps + 3 {
        for ((name, caller, request, want), f) in cases.iter().zip(figures.iter_mut()) {
            let (query, body) = request(i);
            let len = body
                .as_ref()
                .map(|b| b.len().to_string())
                .unwrap_or_default();
            let mut vars = cgi_vars(&config, &query, caller);
            if *caller == "127.0.0.11" {
                vars.push(("HTTP_AUTHORIZATION", payme_auth));
            }
            if body.is_some() {
                vars.retain(|(k, _)| *k != "REQUEST_METHOD");
                vars.push(("REQUEST_METHOD", "POST"));
                // Portmone's form (data=<xml>); every other body is XML.
                let form = body.as_deref().is_some_and(|b| b.starts_with("data="));
                vars.push((
                    "CONTENT_TYPE",
                    if form {
                        "application/x-www-form-urlencoded"
                    } else {
                        "text/xml"
                    },
                ));
                vars.push(("CONTENT_LENGTH", &len));
            }
            let run = run_process_in(&s, exe, &vars, body.as_deref().unwrap_or("").as_bytes());
            assert!(
                run.stdout.contains(want),
                "{name}: {}{}",
                run.stdout,
                run.stderr
            );
            if i >= 3 {
                f.add(&run);
                f.add_log_ms(&site);
            }
        }
    }
    println!("load after: {}\n", load());
    println!("{}", Figures::header());
    for f in &figures {
        println!("{}", f.row());
    }
    let cpu = |name: &str| {
        figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| median(&f.cpu))
            .unwrap_or(f64::NAN)
    };
    println!("\nCPU median against OSMP's (check against osmp check, pay against osmp pay):");
    for f in &figures {
        let base = if f.name.contains("check") || f.name.contains("search") {
            cpu("osmp check")
        } else {
            cpu("osmp pay")
        };
        println!(
            "  {:<36} {:>6.2} ms  x{:.2}",
            f.name,
            median(&f.cpu),
            median(&f.cpu) / base
        );
    }
}

// ---------------------------------------------------------------------------------------
// Every protocol through nginx, as a CGI and persistent

/// One protocol's target: its name, the config's `[[system]]` (admitting 127.0.0.1), the
/// requests (one `METHOD\tPATH[\tBODY]` line each, see bench/requests.lua) and the log's
/// `cmd result` every answered request must have.
struct ProtocolTarget {
    name: String,
    system: String,
    lines: Vec<String>,
    expect: &'static str,
}

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_6_protocols_web() {
    use paysys::config::{ServiceSlot, SignHash, SignRule};
    let s = Settings::get();
    let noop = s.noop().to_path_buf();
    let lua = repo().join("bench/requests.lua");
    let db = TestDb::with_fixture(&common::abills::fixture());
    require_tcp(&db);
    let prefix = webserver::temp_prefix("bench-protocols").expect("temp prefix");
    webserver::prepare_prefix(&prefix).expect("prepare prefix");
    webserver::install_cgi(&prefix, "paysys_check.cgi", paysys_check_exe()).expect("cgi");
    webserver::install_cgi(&prefix, "noop.cgi", &noop).expect("noop.cgi");
    // The CGI runs as www-data: the certificate goes where it can read it.
    let fixtures = repo().join("tests/fixtures/easypay");
    std::fs::copy(
        fixtures.join("easysoft.cer"),
        prefix.join("etc/easysoft.cer"),
    )
    .expect("cer");
    let n = 40_000usize;
    let date = txn_date();
    let path = "/cgi-bin/paysys_check.cgi";
    let system = |protocol: &str, extra: &str| {
        format!(
            "\n[[system]]\nname = \"{protocol}\"\nprotocol = \"{protocol}\"\nallow = [\"127.0.0.1\"]\n\
             account = \"login\"\nmax_sum = \"1000000.00\"\n{extra}\n"
        )
    };
    let get = |q: String| format!("GET\t{path}?{q}");
    let post = |b: String| format!("POST\t{path}\t{b}");
    let ns = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: false,
        service: ServiceSlot::Absent,
    };
    let ns_sign = |act: &str, acc: &str, id: &str| {
        paysys::protocol::nonstop24::signature(&ns, act, acc, None, id, None)
            .expect("a signable request")
    };
    let ep_key = paysys::protocol::easypay::load_private_key(&fixtures.join("easysoft.key"))
        .expect("the test EasySoft key");
    let ep_check = {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Request><DateTime>2026-11-22T10:00:00</DateTime>\
                   <Sign></Sign><Check><ServiceId>1</ServiceId><Account>test1</Account></Check></Request>";
        let hex = paysys::protocol::easypay::sign(&ep_key, SignHash::Sha1, doc.as_bytes());
        doc.replace("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"))
    };
    let click_rule = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: true,
        service: ServiceSlot::Fixed("17449".into()),
    };
    // Completes of the Click orders booked beforehand (paysys_order ids n+1..2n, below).
    let click_complete = |trans: usize, prepare_id: usize| {
        let (trans, prepare) = (trans.to_string(), prepare_id.to_string());
        let sign = paysys::protocol::click::signature(
            &click_rule,
            &trans,
            "test1",
            Some(&prepare),
            "1.00",
            "1",
            "2026-11-22 10:00:00",
        )
        .expect("a signable request");
        format!(
            "click_trans_id={trans}&service_id=17449&click_paydoc_id=1&merchant_trans_id=test1\
             &amount=1.00&action=1&error=0&error_note=Success&merchant_prepare_id={prepare}\
             &sign_time=2026-11-22+10%3A00%3A00&sign_string={sign}"
        )
    };
    let click_system = "service_id = \"17449\"\nsecret_key = \"s3cret\"\nabills_id = 99";
    // Performs of the Payme orders booked beforehand (paysys_order ids 2n+1..3n, below),
    // with the key in the Authorization header.
    let payme_perform = |i: usize| {
        format!(
            "POST\t{path}\t{{\"id\":1,\"method\":\"PerformTransaction\",\"params\":{{\"id\":\"PMB{i}\"}}}}\t\
             Basic UGF5Y29tOnMzY3JldA=="
        )
    };
    let privat = |action: &str, data: String| {
        format!("<Transfer interface=\"Debt\" action=\"{action}\">{data}</Transfer>")
    };
    let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let targets = vec![
        ProtocolTarget {
            name: "osmp check".into(),
            system: system("osmp", ""),
            lines: vec![get("command=check&txn_id=1&account=test1&sum=0.00".into())],
            expect: "check 0",
        },
        ProtocolTarget {
            name: "osmp pay".into(),
            system: system("osmp", ""),
            lines: (0..n).map(|i| get(format!("command=pay&txn_id={}&account=test1&sum=1.00&txn_date={date}", 1_000_000 + i))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "ibox check".into(),
            system: system("ibox", ""),
            lines: vec![get("command=check&txn_id=1&account=test1&sum=0.00".into())],
            expect: "check 0",
        },
        ProtocolTarget {
            name: "ibox pay".into(),
            system: system("ibox", ""),
            lines: (0..n).map(|i| get(format!("command=pay&txn_id={}&account=test1&sum=1.00&txn_date={date}", 2_000_000 + i))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "kaspi check".into(),
            system: system("kaspi", "abills_id = 130"),
            lines: vec![get("command=check&txn_id=1&account=test1&sum=1.00".into())],
            expect: "check 0",
        },
        ProtocolTarget {
            name: "kaspi pay".into(),
            system: system("kaspi", "abills_id = 130"),
            lines: (0..n).map(|i| get(format!("command=pay&account=test1&txn_date={date}&txn_id={}&sum=1.00", 9_000_000 + i))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "portmone check".into(),
            system: system("portmone", "abills_id = 131"),
            lines: vec![post(serde_urlencoded::to_string([("data", "<REQUESTS><PAYEE>1</PAYEE><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER></REQUESTS>")]).expect("form"))],
            expect: "check 0",
        },
        ProtocolTarget {
            name: "portmone pay".into(),
            system: system("portmone", "abills_id = 131"),
            lines: (0..n).map(|i| post(serde_urlencoded::to_string([("data", format!("<BILLS><BILL><BILL_ID>PM{}</BILL_ID><PAYED_AMOUNT>1.00</PAYED_AMOUNT><PAYER><CONTRACT_NUMBER>test1</CONTRACT_NUMBER></PAYER><STATUS>PAYED</STATUS></BILL></BILLS>", 10_000_000 + i))]).expect("form"))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "city24 check".into(),
            system: system("city24", ""),
            lines: vec![get("QueryType=check&TransactionId=1&Account=test1".into())],
            expect: "check 0",
        },
        ProtocolTarget {
            name: "city24 pay".into(),
            system: system("city24", ""),
            lines: (0..n).map(|i| get(format!("QueryType=pay&TransactionId={}&Account=test1&Amount=1.00&TransactionDate={date}", 3_000_000 + i))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "privat search".into(),
            system: system("privat", ""),
            lines: vec![post(privat("Search", format!("<Data {xsi} xsi:type=\"Payer\"><Unit name=\"bill_identifier\" value=\"test1\"/></Data>")))],
            expect: "check 0",
        },
        ProtocolTarget {
            name: "privat pay".into(),
            system: system("privat", ""),
            lines: (0..n).map(|i| post(privat("Pay", format!("<Data {xsi} xsi:type=\"Payment\" id=\"PB{}\"><PayerInfo billIdentifier=\"test1\"/><TotalSum>1.00</TotalSum></Data>", 4_000_000 + i)))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "24nonstop check (SIGN)".into(),
            system: system("24nonstop", "secret = \"s3cret\"\nsign_service_id = false"),
            lines: vec![get(format!("ACT=1&PAY_ACCOUNT=test1&PAY_ID=1&SIGN={}", ns_sign("1", "test1", "1")))],
            expect: "check 21",
        },
        ProtocolTarget {
            name: "24nonstop pay (SIGN)".into(),
            system: system("24nonstop", "secret = \"s3cret\"\nsign_service_id = false"),
            lines: (0..n).map(|i| {
                let id = format!("G-{}", 5_000_000 + i);
                get(format!("ACT=4&PAY_ACCOUNT=test1&PAY_ID={id}&PAY_AMOUNT=1.00&SIGN={}", ns_sign("4", "test1", &id)))
            }).collect(),
            expect: "pay 22",
        },
        ProtocolTarget {
            name: "easypay check (RSA verified)".into(),
            system: system("easypay", "certificate = \"etc/easysoft.cer\""),
            lines: vec![post(ep_check.clone())],
            expect: "check 0",
        },
        // Confirmations of orders booked beforehand (paysys_order ids 1..n, below); unsigned:
        // a signature per request would have to be made here, and its check costs nothing.
        ProtocolTarget {
            name: "easypay confirm (pay)".into(),
            system: system("easypay", "sign = \"none\""),
            lines: (1..=n).map(|i| post(format!("<Request><Sign></Sign><Confirm><ServiceId>1</ServiceId><PaymentId>{i}</PaymentId></Confirm></Request>"))).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "payme perform (pay, Authorization key)".into(),
            system: system("payme", "key = \"s3cret\"\nabills_id = 98"),
            lines: (1..=n).map(payme_perform).collect(),
            expect: "pay 0",
        },
        ProtocolTarget {
            name: "click complete (pay, MD5 sign_string)".into(),
            system: system("click", click_system),
            lines: (1..=n).map(|i| get(click_complete(7_000_000 + i, n + i))).collect(),
            expect: "pay 0",
        },
    ];
    {
        // The orders the confirmations pay.
        let mut conn = db.conn();
        for chunk in (1..=n).collect::<Vec<_>>().chunks(1000) {
            let values: Vec<String> = chunk
                .iter()
                .map(|i| format!("({i}, 'easypay', 'EPB{i}', 'test1', 1.00, NOW())"))
                .collect();
            conn.query_drop(format!(
                "INSERT INTO paysys_order (id, system_name, order_id, account, amount, created) VALUES {}",
                values.join(",")
            ))
            .expect("book orders");
            let values: Vec<String> = chunk
                .iter()
                .map(|i| {
                    format!(
                        "({}, 'click', '{}', 'test1', 1.00, NOW())",
                        n + i,
                        7_000_000 + i
                    )
                })
                .collect();
            conn.query_drop(format!(
                "INSERT INTO paysys_order (id, system_name, order_id, account, amount, created) VALUES {}",
                values.join(",")
            ))
            .expect("book Click's orders");
            let values: Vec<String> = chunk
                .iter()
                .map(|i| format!("({}, 'payme', 'PMB{i}', 'test1', 1.00, NOW())", 2 * n + i))
                .collect();
            conn.query_drop(format!(
                "INSERT INTO paysys_order (id, system_name, order_id, account, amount, created) VALUES {}",
                values.join(",")
            ))
            .expect("book Payme's orders");
        }
    }
    let out_dir = s.out.join("protocols");
    std::fs::create_dir_all(&out_dir).expect("bench out dir");
    println!(
        "\n== protocols through nginx: wrk -t{} -c{} -d{} against paysys_check.cgi, one protocol at a time \
         (the config rewritten between them); load before: {}",
        s.threads, s.connections, s.duration, load()
    );
    let log = prefix.join("var/log/paysys_check.log");
    let config = |system: &str| {
        std::fs::write(
            prefix.join("etc/paysys.toml"),
            common::abills::config_text(&db.url, system),
        )
        .expect("config");
    };
    println!("| set-up | target | req/s | p50 ms | p99 ms | of no-op | of OSMP's | checked |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    for (fastcgi, label) in [(false, "nginx CGI"), (true, "nginx persistent")] {
        config(&targets[0].system);
        let opts = Options {
            fastcgi,
            workers: s.workers,
            fastcgi_cgi: "paysys_check",
            fcgi_children: s.connections.max(8),
            ..Options::default()
        };
        let Some(web) = WebServer::start(Kind::Nginx, &prefix, &opts).expect("start nginx") else {
            println!("skipped {label}: nginx not installed");
            continue;
        };
        let base = web.base_url();
        run_wrk(&s, &format!("{base}/cgi-bin/noop.cgi"), "1s", None);
        let (noop_r, _) = run_wrk(&s, &format!("{base}/cgi-bin/noop.cgi"), &s.duration, None);
        let mut osmp = (f64::NAN, f64::NAN);
        for (t_no, t) in targets.iter().enumerate() {
            config(&t.system);
            let file = out_dir.join(format!(
                "{}-{t_no}.txt",
                if fastcgi { "fcgi" } else { "cgi" }
            ));
            // Pays: each mode its own ids (the lines of the persistent run are shifted).
            let lines: Vec<String> = if fastcgi && t.lines.len() > 1 {
                t.lines.iter().rev().cloned().collect()
            } else {
                t.lines.clone()
            };
            std::fs::write(&file, lines.join("\n") + "\n").expect("requests file");
            let (_, log_offset) = new_log_lines(&log, 0);
            let args = vec![file.to_string_lossy().into_owned(), s.threads.to_string()];
            let (r, _) = run_wrk(&s, &base, &s.duration, Some((&lua, &args)));
            let (answered, _) = new_log_lines(&log, log_offset);
            let tl = tally(&answered);
            let ok = tl.get(t.expect).copied().unwrap_or(0);
            let checked = if ok as usize == answered.len() && ok >= r.requests {
                format!("{ok} log lines `{}`", t.expect)
            } else {
                format!("{ok} `{}` of {} <-- CHECK {tl:?}", t.expect, answered.len())
            };
            if t.name == "osmp check" {
                osmp.0 = r.rps;
            }
            if t.name == "osmp pay" {
                osmp.1 = r.rps;
            }
            let of_osmp = if t.lines.len() > 1 {
                r.rps / osmp.1
            } else {
                r.rps / osmp.0
            };
            println!(
                "| {label} | {} | {:.0} | {:.2} | {:.2} | {:.0} % | {:.0} % | {checked} |",
                t.name,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                100.0 * r.rps / noop_r.rps,
                100.0 * of_osmp
            );
        }
        drop(web);
    }
    println!("load after: {}", load());
}

// ---------------------------------------------------------------------------------------
// bench_7_cluster

/// One measured target of `bench_7_cluster`: how many requests of `query(i)` the web nodes
/// answered with result 0 in the run's time, `connections` terminals at once, terminal `t`'s
/// `i`-th request going to web node `(t + i) % nodes`.
fn cluster_rate(
    s: &Settings,
    nodes: &[ClusterWeb],
    persistent: bool,
    seconds: f64,
    query: &(dyn Fn(usize) -> String + Sync),
) -> (f64, usize) {
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..s.connections {
            let (counter, failed) = (&counter, &failed);
            scope.spawn(move || {
                let mut i = t;
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let web = &nodes[i % nodes.len()];
                    let body = web.get(persistent, &query(n));
                    if result_of(&body) != "0"
                        && failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
                    {
                        println!("first answer other than 0: {}", body.trim());
                    }
                    i += 1;
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let total = counter.load(std::sync::atomic::Ordering::SeqCst);
    let failed = failed.load(std::sync::atomic::Ordering::SeqCst);
    ((total - failed) as f64 / elapsed, failed)
}

/// A web node of `bench_7_cluster`: an install base whose `[database] url` lists the
/// database nodes (its own first), served as CGI processes of the measured `osmp` and by a
/// persistent `osmp` process on a socket.
struct ClusterWeb {
    site: Site,
    responder: common::fcgi::Responder,
}

impl ClusterWeb {
    fn new(s: &Settings, urls: &[String]) -> ClusterWeb {
        let site = Site::new(&urls[0], "");
        site.set_urls(urls);
        let listener = std::os::unix::net::UnixListener::bind(site.base.join("osmp.sock"))
            .expect("bind osmp.sock");
        let responder = common::fcgi::Responder::start_exe(
            &osmp_exe().to_string_lossy(),
            &site,
            s.workers,
            std::os::fd::OwnedFd::from(listener),
            &[],
        );
        ClusterWeb { site, responder }
    }

    /// The answer's body.
    fn get(&self, persistent: bool, query: &str) -> String {
        if persistent {
            return self.responder.get(query).body;
        }
        let config = self.site.config_path();
        let out = Command::new(osmp_exe())
            .env_clear()
            .env("PAYSYS_CONFIG", &config)
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("REQUEST_METHOD", "GET")
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("QUERY_STRING", query)
            .stdin(Stdio::null())
            .output()
            .expect("run osmp");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The NoDeny fixture plus `n` subscribers 100000.., so that concurrent pays credit
/// different rows, as a day's payments do.
fn cluster_fixture(n: u64) -> String {
    let mut sql = std::fs::read_to_string(repo().join("sql/nodeny.sql")).expect("sql/nodeny.sql");
    let rows: Vec<String> = (0..n)
        .map(|k| {
            let id = 100_000 + k;
            format!("({id}, 0, 'bench{id}', 'Bench {id}', 0)")
        })
        .collect();
    sql.push_str(&format!(
        "\nINSERT INTO users (id, mid, name, fio, balance) VALUES {};\n",
        rows.join(", ")
    ));
    sql
}

#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_7_cluster() {
    use common::galera::Cluster;
    use common::mariadb::PrivateServer;
    let s = Settings::get();
    let seconds: f64 = s
        .duration
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("BENCH_DURATION {:?}: seconds, e.g. 10s", s.duration));
    let subscribers = 1000u64;
    let fixture = cluster_fixture(subscribers);
    // The plain server gets the same settings as the cluster's nodes (private, small buffer
    // pool, ROW binlog format, interleaved auto-increment): the difference measured is the
    // cluster's, not the configuration's.
    let plain = PrivateServer::start(
        "bench-plain",
        &["--binlog-format=ROW", "--innodb-autoinc-lock-mode=2"],
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .expect("mariadbd");
    let plain_db = TestDb::on_server(&plain.url(), &fixture);
    let cluster = Cluster::start("bench", 3)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("galera-4 is needed for this benchmark (apt-get install galera-4 rsync)");
    let cluster_db = TestDb::on_server(&cluster.url(1), &fixture);
    let node = |i: usize| common::with_database(&cluster.url(i), &cluster_db.name);
    let plain_web = vec![ClusterWeb::new(&s, std::slice::from_ref(&plain_db.url))];
    // Each web node writing to its own database node (the most certification)…
    let web: Vec<ClusterWeb> = (1..=3)
        .map(|k| {
            let urls: Vec<String> = (0..3).map(|j| node((k - 1 + j) % 3 + 1)).collect();
            ClusterWeb::new(&s, &urls)
        })
        .collect();
    // … and three web nodes with the same writing node first, as INSTALL advises.
    let one_writer: Vec<ClusterWeb> = (1..=3)
        .map(|_| ClusterWeb::new(&s, &[node(1), node(2), node(3)]))
        .collect();
    println!(
        "\n== cluster: osmp check and pay through 1, 2 and 3 web nodes on a 3-node Galera cluster \
         (all on this machine, loopback) against one web node on a plain server with the same \
         settings; {} terminals at once, {seconds} s per figure, {} workers per persistent \
         process; {}; load before: {}",
        s.connections,
        s.workers,
        osmp_exe().display(),
        load()
    );
    let date = txn_date();
    let base = std::sync::atomic::AtomicUsize::new(1_000_000);
    let check = |n: usize| {
        let id = 100_000 + (n as u64 % subscribers);
        format!(
            "command=check&txn_id={n}&account={}&sum=1.00",
            payment_code(id)
        )
    };
    for persistent in [false, true] {
        let mode = if persistent { "persistent" } else { "CGI" };
        for (kind, is_pay) in [("check", false), ("pay", true)] {
            // Pays get fresh txn ids in every run: a repeat would measure the repeat path.
            let offset = base.fetch_add(10_000_000, std::sync::atomic::Ordering::SeqCst);
            let pay = |n: usize| {
                let id = 100_000 + (n as u64 % subscribers);
                format!(
                    "command=pay&txn_id={}&account={}&sum=1.00&txn_date={date}",
                    offset + n,
                    payment_code(id)
                )
            };
            let query: &(dyn Fn(usize) -> String + Sync) = if is_pay { &pay } else { &check };
            let (plain_rate, plain_failed) =
                cluster_rate(&s, &plain_web, persistent, seconds, query);
            println!(
                "{mode:<10} {kind:<5} plain server, 1 web node      {plain_rate:>8.0} req/s   1.00{}",
                if plain_failed > 0 {
                    format!("   ({plain_failed} not 0)")
                } else {
                    String::new()
                }
            );
            let targets: [(&str, &[ClusterWeb]); 4] = [
                ("cluster, 1 web node         ", &web[..1]),
                ("cluster, 2 web nodes        ", &web[..2]),
                ("cluster, 3 web nodes        ", &web[..]),
                ("cluster, 3 web nodes, 1 writer", &one_writer[..]),
            ];
            for (name, nodes) in targets {
                let (rate, failed) = cluster_rate(&s, nodes, persistent, seconds, query);
                println!(
                    "{mode:<10} {kind:<5} {name} {rate:>8.0} req/s   {:.2}{}",
                    rate / plain_rate,
                    if failed > 0 {
                        format!("   ({failed} not 0)")
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    // What the pays did: every one credited once, on every node.
    let counted = |conn: &mut mysql::Conn| -> (u64, u64) {
        let txns: Option<u64> = conn
            .query_first("SELECT COUNT(*) FROM paysys_txn")
            .expect("count");
        let pays: Option<u64> = conn
            .query_first("SELECT COUNT(*) FROM pays")
            .expect("count");
        (txns.unwrap_or(0), pays.unwrap_or(0))
    };
    let mut agreed = Vec::new();
    for i in 1..=3 {
        let mut conn = cluster.conn(i);
        conn.query_drop(format!("USE `{}`", cluster_db.name))
            .expect("use");
        conn.query_drop("SET SESSION wsrep_sync_wait = 1")
            .expect("sync wait");
        agreed.push(counted(&mut conn));
    }
    println!(
        "cluster rows (paysys_txn, pays) on nodes 1..3: {agreed:?}; plain server: {:?}",
        counted(&mut plain_db.conn())
    );
    assert!(
        agreed.windows(2).all(|w| w[0] == w[1]) && agreed[0].0 == agreed[0].1,
        "the nodes disagree: {agreed:?}"
    );
    drop(web);
    drop(one_writer);
    drop(plain_web);
    drop(cluster_db);
    drop(plain_db);
}

// ---------------------------------------------------------------------------------------
// A card provider's callback against a terminal's pay, on ABillS and NoDeny, as CGI
// processes and persistent

/// LiqPay's merchant key in bench_8's configs.
const CARD_PRIVATE_KEY: &str = "a4825234f4bae72a0be04eafe9e8e2bada209255";

/// One billing of `bench_8_card_callback`: an install base whose config has an OSMP system
/// (admitting 127.0.0.1) and a LiqPay system whose callbacks come to
/// `paysys_check.cgi/callback/liqpay` (as the page's `server_url` names it), both paying
/// the same subscriber; and the orders the callbacks pay, made as the page makes them.
struct CardBench {
    /// "ABillS" or "NoDeny".
    name: &'static str,
    db: TestDb,
    site: Site,
    /// The account both pay: `test1` (login, uid 1) or `59071` (payment code of 5907).
    account: &'static str,
    uid: u64,
    orders: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// The next OSMP `txn_id`.
    txn: std::sync::atomic::AtomicUsize,
}

impl CardBench {
    fn new(abills: bool, server: Option<&str>) -> CardBench {
        let fixture = if abills {
            common::abills::fixture()
        } else {
            std::fs::read_to_string(repo().join("sql/nodeny.sql")).expect("sql/nodeny.sql")
        };
        let db = match server {
            Some(server) => TestDb::on_server(server, &fixture),
            None => TestDb::with_fixture(&fixture),
        };
        let site = Site::new(&db.url, "");
        let (billing, key, account, uid) = if abills {
            ("abills", "login", "test1", 1)
        } else {
            ("nodeny", "payment_code", "59071", 5907)
        };
        // With PAYSYS_TEST_ABILLS_PROCEDURE=1, ABillS's pays go through its stored
        // procedure (`[database] procedure`, sql/abills-pay.sql).
        let procedure = abills && common::abills::procedure_run();
        if procedure {
            common::abills::load_pay_procedure(&mut db.conn());
        }
        site.write_config(&format!(
            "[database]\nurl = \"{url}\"\nbilling = \"{billing}\"\nlock_timeout = 3\n\
             procedure = {procedure}\n\n\
             [log]\nfile = \"var/log/paysys_check.log\"\n\n\
             [[system]]\nname = \"osmp\"\nprotocol = \"osmp\"\nallow = [\"127.0.0.1\"]\n\
             account = \"{key}\"\nmax_sum = \"1000000.00\"\n\n\
             [[system]]\nname = \"liqpay\"\nprotocol = \"liqpay\"\npublic_key = \"i00000000\"\n\
             private_key = \"{CARD_PRIVATE_KEY}\"\nabills_id = 62\naccount = \"{key}\"\n",
            url = db.url
        ));
        CardBench {
            name: if abills { "ABillS" } else { "NoDeny" },
            db,
            site,
            account,
            uid,
            orders: Default::default(),
            txn: std::sync::atomic::AtomicUsize::new(900_000),
        }
    }

    /// `n` more orders of 1.00, each stored as the page stores it: ours and, on ABillS, the
    /// `paysys_log` row in progress, in one transaction.
    fn make_orders(&self, n: usize) {
        use paysys::card::order::{self, NewOrder};
        let config = paysys::config::Config::load(&self.site.config_path())
            .unwrap_or_else(|e| panic!("bench_8 config: {e}"));
        let system = config
            .systems
            .iter()
            .find(|s| s.name == "liqpay")
            .expect("the liqpay system");
        let billing = paysys::billing::of(config.database.billing);
        let one = paysys::domain::Amount::from_kopecks(100);
        let mut conn = self.db.conn();
        let mut orders = self.orders.lock().expect("orders");
        for _ in 0..n {
            conn.query_drop("START TRANSACTION").expect("begin");
            let made = order::create(
                &mut conn,
                &NewOrder {
                    system: "liqpay",
                    account: self.account,
                    amount: one,
                    charged: one,
                    currency: "UAH",
                    domain: paysys::domain::Domain::default(),
                    validity_hours: 24,
                    subscriber_id: None,
                },
            )
            .expect("an order");
            billing
                .open_order(
                    &mut conn,
                    system,
                    &made.order_id,
                    self.uid,
                    one,
                    paysys::domain::Domain::default(),
                )
                .expect("the billing's record of the order");
            conn.query_drop("COMMIT").expect("commit");
            orders.push_back(made.order_id);
        }
    }

    /// The next order's id.
    fn next_order(&self) -> String {
        self.orders
            .lock()
            .expect("orders")
            .pop_front()
            .expect("bench_8 made too few orders")
    }

    /// The query of a new OSMP pay of 1.00.
    fn pay_query(&self, date: &str) -> String {
        let txn = self.txn.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!(
            "command=pay&txn_id={txn}&account={}&sum=1.00&txn_date={date}",
            self.account
        )
    }
}

/// LiqPay's callback saying the order was paid 1.00, signed: the form body.
fn liqpay_paid(order_id: &str) -> String {
    use paysys::card::{liqpay, Secret};
    let json = format!(
        "{{\"public_key\":\"i00000000\",\"version\":3,\"action\":\"pay\",\"status\":\"success\",\
         \"order_id\":\"{order_id}\",\"payment_id\":1,\"amount\":1.00,\"currency\":\"UAH\"}}"
    );
    liqpay::SignedForm::new(&Secret::new(CARD_PRIVATE_KEY), &json).form_body()
}

/// The CGI variables of a LiqPay callback at `/callback/liqpay` with a body of `len` bytes.
fn callback_vars<'a>(config: &'a str, len: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut vars = cgi_vars(config, "", "127.0.0.1");
    vars.retain(|(k, _)| !matches!(*k, "REQUEST_METHOD" | "SCRIPT_NAME"));
    vars.extend([
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
        ("PATH_INFO", "/callback/liqpay"),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("CONTENT_LENGTH", len),
    ]);
    vars
}

/// One `paysys_check.cgi` process paying by OSMP, checked.
fn cgi_osmp_pay(s: &Settings, b: &CardBench, date: &str) -> Run {
    let config = b.site.config_path().to_string_lossy().into_owned();
    let query = b.pay_query(date);
    let mut vars = cgi_vars(&config, &query, "127.0.0.1");
    vars.retain(|(k, _)| *k != "SCRIPT_NAME");
    vars.push(("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"));
    let run = run_process_in(s, paysys_check_exe(), &vars, b"");
    assert!(
        run.stdout.contains("<result>0</result>"),
        "{}: osmp pay: {}{}",
        b.name,
        run.stdout,
        run.stderr
    );
    run
}

/// One `paysys_check.cgi` process settling the next order by LiqPay's callback, checked.
fn cgi_callback(s: &Settings, b: &CardBench) -> Run {
    let config = b.site.config_path().to_string_lossy().into_owned();
    let body = liqpay_paid(&b.next_order());
    let len = body.len().to_string();
    let run = run_process_in(
        s,
        paysys_check_exe(),
        &callback_vars(&config, &len),
        body.as_bytes(),
    );
    assert!(
        run.stdout.contains("paid"),
        "{}: callback: {}{}",
        b.name,
        run.stdout,
        run.stderr
    );
    run
}

/// `paysys_check` persistent on a socket of the install base, `workers` threads.
fn card_responder(b: &CardBench, workers: usize) -> common::fcgi::Responder {
    let listener = std::os::unix::net::UnixListener::bind(b.site.base.join("osmp.sock"))
        .expect("bind the socket");
    common::fcgi::Responder::start_exe(
        &paysys_check_exe().to_string_lossy(),
        &b.site,
        workers,
        std::os::fd::OwnedFd::from(listener),
        &[],
    )
}

/// An OSMP pay through the persistent process: whether it paid.
fn fcgi_osmp_pay(r: &common::fcgi::Responder, b: &CardBench, date: &str) -> bool {
    let query = b.pay_query(date);
    let answer = r.request(
        &[
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("QUERY_STRING", &query),
        ],
        b"",
    );
    answer.body.contains("<result>0</result>")
}

/// A LiqPay callback for `order_id` through the persistent process: whether it paid.
fn fcgi_callback(r: &common::fcgi::Responder, order_id: &str) -> bool {
    let body = liqpay_paid(order_id);
    let answer = r.request(
        &[
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("PATH_INFO", "/callback/liqpay"),
        ],
        body.as_bytes(),
    );
    answer.status == 200 && answer.body.contains("paid")
}

/// CPU time all threads of process `pid` have used, in ms (from each thread's schedstat:
/// nanoseconds, not clock ticks).
fn process_cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let text = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum::<f64>()
        / 1e6
}

/// `n` requests `one(i)` from `threads` clients at once: the seconds it took and how many
/// failed.
fn concurrent(threads: usize, n: usize, one: &(dyn Fn(usize) -> bool + Sync)) -> (f64, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                if !one(i) {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (
        started.elapsed().as_secs_f64(),
        failed.load(Ordering::SeqCst),
    )
}

/// Round trips of one request from the general log's entries: statements (`Query`,
/// `Prepare`, `Execute`, `Init DB`; `Close stmt` and `Quit` get no answer) and connects.
fn round_trips(entries: &[(u64, String, String)]) -> (usize, usize, BTreeMap<String, usize>) {
    let mut by = BTreeMap::new();
    for (_, command, _) in entries {
        *by.entry(command.clone()).or_insert(0) += 1;
    }
    let answered = entries
        .iter()
        .filter(|(_, c, _)| matches!(c.as_str(), "Query" | "Prepare" | "Execute" | "Init DB"))
        .count();
    let connects = entries.iter().filter(|(_, c, _)| c == "Connect").count();
    (answered, connects, by)
}

/// What a LiqPay callback that pays an order costs next to an OSMP pay of the same sum to
/// the same subscriber, on ABillS and on NoDeny, through the same `paysys_check` executable
/// and the same config: as CGI processes (CPU, wall), persistent (FastCGI: latency one at a
/// time, requests per second from `BENCH_CONNECTIONS` clients at once, CPU of the
/// process), and the database round trips of each, counted in the general log of a private
/// server. The two kinds alternate throughout, so that a change in the machine's load
/// touches both alike: the ratio is measured in one run.
#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_8_card_callback() {
    let s = Settings::get();
    let date = txn_date();
    let seq = s.reps * 4;
    let many = s.reps * 20;
    let benches = [CardBench::new(true, None), CardBench::new(false, None)];
    for b in &benches {
        b.make_orders(s.reps + 3 + seq + 3 + many);
    }
    println!(
        "\n== a card callback next to a terminal's pay: paysys_check on ABillS (sql/abills.sql) and \
         NoDeny, an OSMP pay and a LiqPay callback (/callback/liqpay, an order made as the page \
         makes it) of 1.00 to one subscriber, alternating; {}; load before: {}",
        paysys_check_exe().display(),
        load()
    );

    // 1. CGI: one process per request, as a web server starts it.
    println!(
        "\n-- CGI: one process per request, each figure from {} runs (after 3 warm-up runs of each)\n",
        s.reps
    );
    println!(
        "{}",
        Figures::header().replace("| process |", "| billing, process |")
    );
    let mut cgi_ratio = Vec::new();
    for b in &benches {
        let mut osmp = Figures::new(&format!("{} osmp pay", b.name));
        let mut card = Figures::new(&format!("{} liqpay callback", b.name));
        for i in 0..s.reps + 3 {
            let run = cgi_osmp_pay(&s, b, &date);
            if i >= 3 {
                osmp.add(&run);
                osmp.add_log_ms(&b.site);
            }
            let run = cgi_callback(&s, b);
            if i >= 3 {
                card.add(&run);
                card.add_log_ms(&b.site);
            }
        }
        println!("{}", osmp.row());
        println!("{}", card.row());
        cgi_ratio.push((
            b.name,
            median(&card.cpu) / median(&osmp.cpu),
            median(&card.wall) / median(&osmp.wall),
            median(&card.inproc) / median(&osmp.inproc),
        ));
    }
    println!();
    for (name, cpu, wall, inproc) in &cgi_ratio {
        println!(
            "CGI {name}: callback / pay, medians: CPU x{cpu:.2}, wall x{wall:.2}, log ms= x{inproc:.2}"
        );
    }

    // 2. Persistent: the same executable on a socket, its workers keeping their
    // connections.
    println!(
        "\n-- persistent (FastCGI, {} workers): one request at a time ({seq} of each after 3 \
         warm-up), then {} clients at once ({many} of each, in two alternating halves)\n",
        s.workers, s.connections
    );
    println!(
        "| billing | request | one at a time: ms median | p90 | at once: req/s | CPU ms of the process per request | not paid | deadlocks at once |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut fcgi_ratio = Vec::new();
    for b in &benches {
        let responder = card_responder(b, s.workers);
        let pid = responder.child.id();
        let (mut osmp_ms, mut card_ms) = (Vec::new(), Vec::new());
        for i in 0..seq + 3 {
            let t = Instant::now();
            assert!(fcgi_osmp_pay(&responder, b, &date), "{}: osmp pay", b.name);
            if i >= 3 {
                osmp_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let order = b.next_order();
            let t = Instant::now();
            assert!(
                fcgi_callback(&responder, &order),
                "{}: callback\n{}",
                b.name,
                responder.stderr()
            );
            if i >= 3 {
                card_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let orders: Vec<String> = (0..many).map(|_| b.next_order()).collect();
        let (mut osmp_t, mut card_t, mut osmp_cpu, mut card_cpu) = (0.0, 0.0, 0.0, 0.0);
        let (mut osmp_failed, mut card_failed) = (0, 0);
        // Deadlocks the server resolved (each a pay rolled back and made again), from its
        // counter: nothing else runs against it during a bench.
        let mut status = b.db.conn();
        let (mut osmp_deadlocks, mut card_deadlocks) = (0, 0);
        let half = many / 2;
        for round in 0..2 {
            let n = if round == 0 { half } else { many - half };
            let cpu = process_cpu_ms(pid);
            let deadlocks = status_counter(&mut status, "Innodb_deadlocks");
            let (t, failed) =
                concurrent(s.connections, n, &|_| fcgi_osmp_pay(&responder, b, &date));
            osmp_t += t;
            osmp_failed += failed;
            osmp_cpu += process_cpu_ms(pid) - cpu;
            osmp_deadlocks += status_counter(&mut status, "Innodb_deadlocks") - deadlocks;
            let base = round * half;
            let cpu = process_cpu_ms(pid);
            let deadlocks = status_counter(&mut status, "Innodb_deadlocks");
            let (t, failed) = concurrent(s.connections, n, &|i| {
                fcgi_callback(&responder, &orders[base + i])
            });
            card_t += t;
            card_failed += failed;
            card_cpu += process_cpu_ms(pid) - cpu;
            card_deadlocks += status_counter(&mut status, "Innodb_deadlocks") - deadlocks;
        }
        let rows = [
            (
                "osmp pay",
                &osmp_ms,
                many as f64 / osmp_t,
                osmp_cpu,
                osmp_failed,
                osmp_deadlocks,
            ),
            (
                "liqpay callback",
                &card_ms,
                many as f64 / card_t,
                card_cpu,
                card_failed,
                card_deadlocks,
            ),
        ];
        for (name, ms, rps, cpu, failed, deadlocks) in rows {
            println!(
                "| {} | {name} | {:.2} | {:.2} | {rps:.0} | {:.2} | {failed} | {deadlocks} |",
                b.name,
                median(ms),
                percentile(ms, 90.0),
                cpu / many as f64
            );
        }
        fcgi_ratio.push((
            b.name,
            median(&card_ms) / median(&osmp_ms),
            (many as f64 / osmp_t) / (many as f64 / card_t),
            card_cpu / osmp_cpu,
        ));
        drop(responder);
    }
    println!();
    for (name, ms, rps, cpu) in &fcgi_ratio {
        println!(
            "persistent {name}: callback / pay: latency median x{ms:.2}, time per request at once \
             x{rps:.2}, CPU of the process x{cpu:.2}"
        );
    }
    println!("load after: {}", load());

    // 3. Round trips, from the general log of a private server (nobody else's statements).
    use common::mariadb::PrivateServer;
    let server = match PrivateServer::start(
        "bench-card",
        &["--general-log=1", "--general-log-file=general.log"],
    ) {
        Ok(Some(server)) => server,
        Ok(None) => return,
        Err(e) => panic!("{e}"),
    };
    let log = server.dir().join("data/general.log");
    println!(
        "\n-- database round trips of one request (general log of a private server; statements \
         answered: Query, Prepare, Execute; Connect is the handshake)\n"
    );
    println!("| billing | mode | request | statements | by command |");
    println!("|---|---|---|---:|---|");
    let mut listings = Vec::new();
    for abills in [true, false] {
        let b = CardBench::new(abills, Some(&server.url()));
        b.make_orders(8);
        let responder = card_responder(&b, 1);
        // Warm-up: the persistent worker's connection made, its statements prepared.
        assert!(fcgi_osmp_pay(&responder, &b, &date));
        assert!(fcgi_callback(&responder, &b.next_order()));
        let (_, mut at) = common::mariadb::general_log_entries(&log, 0);
        for mode in ["CGI", "persistent"] {
            for request in ["osmp pay", "liqpay callback"] {
                match (mode, request) {
                    ("CGI", "osmp pay") => drop(cgi_osmp_pay(&s, &b, &date)),
                    ("CGI", _) => drop(cgi_callback(&s, &b)),
                    (_, "osmp pay") => assert!(fcgi_osmp_pay(&responder, &b, &date)),
                    _ => assert!(fcgi_callback(&responder, &b.next_order())),
                }
                let (entries, end) = common::mariadb::general_log_entries(&log, at);
                at = end;
                let (answered, connects, by) = round_trips(&entries);
                let by: Vec<String> = by.iter().map(|(c, n)| format!("{c} {n}")).collect();
                let connects = match connects {
                    0 => String::new(),
                    1 => " + 1 connect".into(),
                    n => format!(" + {n} connects"),
                };
                println!(
                    "| {} | {mode} | {request} | {answered}{connects} | {} |",
                    b.name,
                    by.join(", ")
                );
                listings.push((format!("{} {mode} {request}", b.name), entries));
            }
        }
        drop(responder);
    }
    for (what, entries) in &listings {
        println!("\n{what}:");
        for (_, command, argument) in entries {
            let argument: String = argument.chars().take(150).collect();
            println!("  {command:<10} {argument}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// bench_9_statement

/// The `paysys` executable measured: `BENCH_PAYSYS` (bench/run.sh: the static build `make`
/// ships), else cargo's release build of this tree.
fn paysys_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| match std::env::var_os("BENCH_PAYSYS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_paysys")),
    })
}

/// Our account in the generated statements.
const STATEMENT_IBAN: &str = "UA213223130000026007233566001";

/// The config of bench_9: one `[[statement.bank]]` for `STATEMENT_IBAN` whose accounts are
/// NoDeny payment codes, and the rules of tests/statement.rs (a settlement by its purpose,
/// then an account read from the purpose).
fn statement_config(db_url: &str) -> String {
    format!(
        r#"[database]
url = "{db_url}"
billing = "nodeny"

[log]
file = "var/log/paysys_check.log"

[[statement.bank]]
name = "privat_main"
bank = "file"
iban = "{STATEMENT_IBAN}"
account = "payment_code"

[[statement.rule]]
settlement = true
purpose = '(?i)перерахування коштів, прийнятих від платників'

[[statement.rule]]
purpose = '(?i)(?:о/р|ос\.?\s*рах\.?|особистий рахунок|дог\.)\s*№?\s*(?P<account>[0-9a-z]{{3,12}})'
"#
    )
}

/// What a generated statement holds.
#[derive(Debug, Default, Clone, Copy)]
struct StatementMix {
    credits: usize,
    unmatched: usize,
    settlements: usize,
    debits: usize,
}

/// Writes a `rows`-document 1C 1.03 file (Windows-1251, CRLF) on `STATEMENT_IBAN`: of
/// every 100 rows, 2 bank commissions (debits), 1 payment network's settlement, 5 naming
/// an account nobody has, and the rest subscribers' payments whose purposes name the
/// payment codes of subscribers `BULK_BASE + 1 ..= BULK_BASE + subscribers`, in the three
/// ways payers write them. `salt` makes every row id differ from another file's.
fn write_statement(path: &Path, rows: usize, subscribers: u64, salt: u64) -> StatementMix {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("statement file");
    let mut out = std::io::BufWriter::new(file);
    let mut put = |text: &str| {
        out.write_all(&paysys::cp1251::encode(text).expect("cp1251"))
            .and_then(|()| out.write_all(b"\r\n"))
            .expect("write statement");
    };
    let mut mix = StatementMix::default();
    put(&format!(
        "1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\nОтправитель=Бухгалтерия\r\n\
         ДатаНачала=01.12.2026\r\nДатаКонца=28.12.2026\r\nРасчСчет={STATEMENT_IBAN}"
    ));
    let surnames = ["Петренко", "Коваленко", "Бондаренко", "Шевчук", "Мельник"];
    let names = ["Петро", "Олена", "Іван", "Марія", "Андрій", "Оксана"];
    for i in 0..rows {
        let date = format!("{:02}.12.2026", 1 + i * 28 / rows.max(1));
        let kopecks = 10_000 + (i * 3_517) % 90_000;
        let payer_account = format!("UA21305299000002620{:010}", salt * 100_000_000 + i as u64);
        let payer = format!(
            "{} {}",
            surnames[i % surnames.len()],
            names[(i / surnames.len()) % names.len()]
        );
        let subscriber = BULK_BASE + 1 + (i as u64 * 7_919) % subscribers;
        let (sum, from, to, purpose, posted) = if i % 50 == 49 {
            mix.debits += 1;
            (
                "15.75".to_string(),
                STATEMENT_IBAN.to_string(),
                "UA653052990000029024000000001".to_string(),
                "Комісія за обслуговування рахунку".to_string(),
                "ДатаСписано",
            )
        } else {
            let sum = format!("{}.{:02}", kopecks / 100, kopecks % 100);
            let purpose = if i % 100 == 24 {
                mix.settlements += 1;
                format!(
                    "Перерахування коштів, прийнятих від платників за дог. № 15/3 згідно реєстру \
                     від {date}"
                )
            } else if i % 20 == 7 {
                mix.unmatched += 1;
                format!(
                    "Сплата за Особистий рахунок {}",
                    payment_code(9_000_000 + i as u64)
                )
            } else {
                mix.credits += 1;
                let code = payment_code(subscriber);
                match i % 3 {
                    0 => format!("Плата за інтернет, о/р {code}, {payer}"),
                    1 => format!("Сплата за Особистий рахунок {code}"),
                    _ => format!("ос. рах. {code} за грудень"),
                }
            };
            (
                sum,
                payer_account,
                STATEMENT_IBAN.to_string(),
                purpose,
                "ДатаПоступило",
            )
        };
        put(&format!(
            "СекцияДокумент=Платіжне доручення\r\nНомер={}\r\nДата={date}\r\nСумма={sum}\r\n\
             ПлательщикСчет={from}\r\nПлательщик={payer}\r\nПлательщикИНН={}\r\n\
             ПолучательСчет={to}\r\nПолучатель=ТОВ Провайдер\r\nПолучательИНН=12345678\r\n\
             {posted}={date}\r\nНазначениеПлатежа={purpose}\r\nКонецДокумента",
            1 + i % 997,
            3_000_000_000u64 + i as u64
        ));
    }
    put("КонецФайла");
    out.flush().expect("write statement");
    mix
}

/// One `paysys statement import` process under `bench/rusage.c` (its CPU, peak RSS and wall
/// time), its listing written to `listing`; the summary line.
fn statement_import(
    s: &Settings,
    site: &Site,
    file: &Path,
    extra: &[&str],
    listing: &Path,
) -> (Run, String) {
    let out = std::fs::File::create(listing).expect("listing file");
    let child = Command::new(s.rusage())
        .arg(paysys_exe())
        .args(["statement", "import"])
        .arg(file)
        .args(extra)
        .arg("--config")
        .arg(site.config_path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(&site.base)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run paysys statement import under rusage");
    let done = child.wait_with_output().expect("paysys statement import");
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    let report = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("rusage "))
        .unwrap_or_else(|| panic!("no rusage line: {stderr}"))
        .to_string();
    let field = |key: &str| -> u64 {
        report
            .split(' ')
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in {report}"))
    };
    let listing_text = std::fs::read_to_string(listing).expect("listing");
    assert_eq!(
        field("status"),
        0,
        "paysys statement import failed: {stderr}{}",
        tail(&listing_text, 20)
    );
    let summary = listing_text
        .lines()
        .find(|l| l.contains(" rows: "))
        .unwrap_or_else(|| panic!("no summary in {}", tail(&listing_text, 5)))
        .split_once(": ")
        .map(|(_, s)| s.to_string())
        .unwrap_or_default();
    (
        Run {
            stdout: String::new(),
            stderr,
            cpu_ms: field("cpu_us") as f64 / 1000.0,
            maxrss_kb: field("maxrss_kb"),
            wall_ms: field("wall_us") as f64 / 1000.0,
            minflt: field("minflt"),
        },
        summary,
    )
}

/// `"N rows: A credited, B seen before, …"`: the number before `what`.
fn summary_count(summary: &str, what: &str) -> usize {
    let at = summary
        .find(what)
        .unwrap_or_else(|| panic!("{what} in {summary}"));
    summary[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what} in {summary}"))
}

/// A bank statement of `BENCH_STATEMENT_ROWS` rows (default 50 000; issue #19) imported
/// with the real `paysys statement import` into a NoDeny database of 5 000 subscribers the
/// rows name: rows per second of a dry run (every row decided, nothing written), of the
/// first import (crediting), and of the same file again (every row seen before); the
/// process's peak RSS at a tenth of the rows and at all of them, to show that the file is
/// streamed (the ratio stays near 1); then the database round trips of one row of each
/// kind, from a private server's general log.
#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_9_statement() {
    let s = Settings::get();
    let rows: usize = env_or("BENCH_STATEMENT_ROWS", 50_000usize).max(100);
    let small = (rows / 10).max(100);
    let subscribers = 5_000u64;
    let db = TestDb::new();
    {
        let mut conn = db.conn();
        conn.query_drop(format!(
            "INSERT INTO users (id, mid, name, fio, balance) SELECT {BULK_BASE} + seq, 0, \
             CONCAT('user', seq), CONCAT('Subscriber ', seq), 0 FROM seq_1_to_{subscribers}"
        ))
        .expect("subscribers");
    }
    let site = Site::new(&db.url, "");
    site.write_config(&statement_config(&db.url));
    std::fs::create_dir_all(site.base.join("var/log")).expect("var/log");
    println!(
        "\n== a bank statement: `paysys statement import` of a 1C file ({}) into NoDeny with {subscribers} \
         subscribers the rows name; {rows} and {small} rows; load before: {}",
        paysys_exe().display(),
        load()
    );

    let mut figures: Vec<(usize, &str, Run, String)> = Vec::new();
    for (n, salt) in [(small, 1u64), (rows, 2u64)] {
        let file = s.out.join(format!("statement-{n}.txt"));
        let t = Instant::now();
        let mix = write_statement(&file, n, subscribers, salt);
        let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        println!(
            "\n{n} rows ({:.1} MB, written in {:.1} s): {} subscribers' payments, {} naming an \
             account nobody has, {} settlements, {} debits",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            mix.credits,
            mix.unmatched,
            mix.settlements,
            mix.debits
        );
        let pays_before = db.pays();
        for (what, extra) in [
            ("dry run", &["--dry-run"][..]),
            ("first import", &[][..]),
            ("again", &[][..]),
        ] {
            let listing = s
                .out
                .join(format!("statement-{n}-{}.out", what.replace(' ', "-")));
            let (run, summary) = statement_import(&s, &site, &file, extra, &listing);
            println!("  {what}: {summary}");
            let credited = summary_count(&summary, " credited");
            match what {
                "first import" => {
                    assert_eq!(credited, mix.credits, "{summary}");
                    assert_eq!(db.pays(), pays_before + mix.credits as u64);
                }
                "again" => {
                    assert_eq!(credited, 0, "{summary}");
                    // Credited rows and settlements are closed; a row naming nobody
                    // waits in the queue and is matched again.
                    assert_eq!(
                        summary_count(&summary, " seen before"),
                        mix.credits + mix.settlements,
                        "{summary}"
                    );
                    assert_eq!(db.pays(), pays_before + mix.credits as u64);
                }
                _ => assert_eq!(db.pays(), pays_before),
            }
            figures.push((n, what, run, summary));
        }
    }
    let log = site.log_lines();
    let statement_lines = log.iter().filter(|l| l.contains("cmd=statement")).count();
    let credited_total: usize = figures
        .iter()
        .filter(|(_, w, _, _)| *w == "first import")
        .map(|(_, _, _, s)| summary_count(s, " credited"))
        .sum();
    assert_eq!(statement_lines, credited_total, "one log line per credit");

    println!("\n| rows | run | wall s | rows/s | CPU s | CPU ms per row | peak RSS KB |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for (n, what, run, _) in &figures {
        println!(
            "| {n} | {what} | {:.1} | {:.0} | {:.2} | {:.3} | {} |",
            run.wall_ms / 1000.0,
            *n as f64 / (run.wall_ms / 1000.0),
            run.cpu_ms / 1000.0,
            run.cpu_ms / *n as f64,
            run.maxrss_kb
        );
    }
    println!();
    for what in ["dry run", "first import", "again"] {
        let of = |n: usize| {
            figures
                .iter()
                .find(|(m, w, _, _)| *m == n && *w == what)
                .map(|(_, _, r, _)| r)
                .expect("figure")
        };
        let (a, b) = (of(small), of(rows));
        println!(
            "{what}: peak RSS {rows} / {small} rows x{:.2}; rows/s {rows} / {small} rows x{:.2}",
            b.maxrss_kb as f64 / a.maxrss_kb as f64,
            (rows as f64 / b.wall_ms) / (small as f64 / a.wall_ms)
        );
    }
    println!("load after: {}", load());

    // Round trips of a row of each kind, from the general log of a private server.
    use common::mariadb::PrivateServer;
    let server = match PrivateServer::start(
        "bench-statement",
        &["--general-log=1", "--general-log-file=general.log"],
    ) {
        Ok(Some(server)) => server,
        Ok(None) => return,
        Err(e) => panic!("{e}"),
    };
    let general = server.dir().join("data/general.log");
    let pdb = TestDb::new_on(&server.url());
    pdb.conn()
        .query_drop(format!(
            "INSERT INTO users (id, mid, name, fio, balance) SELECT {BULK_BASE} + seq, 0, \
             CONCAT('user', seq), CONCAT('Subscriber ', seq), 0 FROM seq_1_to_{subscribers}"
        ))
        .expect("subscribers");
    let psite = Site::new(&pdb.url, "");
    psite.write_config(&statement_config(&pdb.url));
    let n = 100;
    let file = s.out.join("statement-trips.txt");
    let mix = write_statement(&file, n, subscribers, 3);
    println!(
        "\n-- database round trips per row ({n} rows: {} payments, {} unknown accounts, {} \
         settlements, {} debits; a private server's general log; statements answered: Query, \
         Prepare, Execute; pings are not logged)\n",
        mix.credits, mix.unmatched, mix.settlements, mix.debits
    );
    println!("| run | statements | per row read | by command |");
    println!("|---|---:|---:|---|");
    let (_, mut at) = common::mariadb::general_log_entries(&general, 0);
    let mut listings = Vec::new();
    for (what, extra) in [
        ("dry run", &["--dry-run"][..]),
        ("first import", &[][..]),
        ("again", &[][..]),
    ] {
        let listing = s
            .out
            .join(format!("statement-trips-{}.out", what.replace(' ', "-")));
        statement_import(&s, &psite, &file, extra, &listing);
        let (entries, end) = common::mariadb::general_log_entries(&general, at);
        at = end;
        let (answered, connects, by) = round_trips(&entries);
        let by: Vec<String> = by.iter().map(|(c, k)| format!("{c} {k}")).collect();
        println!(
            "| {what} | {answered} + {connects} connect | {:.1} | {} |",
            answered as f64 / n as f64,
            by.join(", ")
        );
        listings.push((what, entries));
    }
    // One credited row's statements, as the server received them.
    if let Some((_, entries)) = listings.iter().find(|(w, _)| *w == "first import") {
        println!("\nfirst import, from the start to the second row's first statement:");
        let mut finds = 0;
        for (_, command, argument) in entries {
            if argument.contains("FROM paysys_statement WHERE bank") {
                finds += 1;
                if finds > 2 {
                    break;
                }
            }
            let argument: String = argument.chars().take(150).collect();
            println!("  {command:<10} {argument}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// paysys audit: a year of payments

/// Fills `db` with `rows` payments of `subs` subscribers over the last 365 days, as the
/// billing `billing` and our ledger hold them: payment `n` (1-based) is subscriber
/// `n % subs`'s, made `365 days × (rows - n) / rows` ago, 10.00 each, every row agreeing
/// and every balance adding up. In chunks, by the server (`seq_…` tables).
fn fill_audit(conn: &mut mysql::Conn, billing: &str, rows: u64, subs: u64) {
    let span = 365 * 86_400u64;
    // Subscribers: NoDeny users with their balance (their pays add up to it); ABillS users
    // with a bill each whose deposit the payments raised.
    // Subscriber k has the payments n = k, k + subs, … (k = 0: subs, 2 subs, …).
    let paid = |k: &str| format!("(FLOOR(({rows} - {k}) / {subs}) + IF({k} > 0, 1, 0)) * 10.00");
    match billing {
        "nodeny" => conn
            .query_drop(format!(
                "INSERT INTO users (id, mid, name, fio, balance) SELECT {BULK_BASE} + seq, 0, \
                 CONCAT('user', seq), '', {} FROM seq_0_to_{}",
                paid("seq"),
                subs - 1
            ))
            .expect("users"),
        _ => {
            conn.query_drop(format!(
                "INSERT INTO users (id, password, uid, gid, disable, company_id, bill_id, \
                 domain_id, deleted) SELECT CONCAT('user', seq), '', {BULK_BASE} + seq, 1, 0, 0, \
                 {BULK_BASE} + seq, 0, 0 FROM seq_0_to_{}",
                subs - 1
            ))
            .expect("users");
            conn.query_drop(format!(
                "INSERT INTO bills (id, deposit, uid, company_id, registration) \
                 SELECT {BULK_BASE} + seq, {}, {BULK_BASE} + seq, 0, '2024-01-01' \
                 FROM seq_0_to_{}",
                paid("seq"),
                subs - 1
            ))
            .expect("bills");
        }
    }
    let chunk = 200_000;
    let mut lo = 1;
    while lo <= rows {
        let hi = (lo + chunk - 1).min(rows);
        let seq = format!("seq_{lo}_to_{hi}");
        let when = format!("NOW() - INTERVAL FLOOR({span} * ({rows} - seq) / {rows}) SECOND");
        let sub = format!("{BULK_BASE} + seq % {subs}");
        let txn = "CONCAT('8', LPAD(seq, 12, '0'))";
        conn.query_drop("START TRANSACTION").expect("begin");
        match billing {
            "nodeny" => {
                conn.query_drop(format!(
                    "INSERT INTO pays (id, mid, cash, time, admin_id, admin_ip, office, bonus, \
                     reason, coment, type, category) SELECT seq, {sub}, 10.00, \
                     UNIX_TIMESTAMP({when}), 0, 167772167, 0, '', CONCAT('osmp txn_id=', {txn}), \
                     CONCAT('paysys prv_txn=', seq), 10, 0 FROM {seq}"
                ))
                .expect("pays");
                conn.query_drop(format!(
                    "INSERT INTO paysys_txn (id, system_name, txn_id, account, subscriber_id, \
                     amount, txn_date, created, caller_ip, payment_ref, prv_txn) \
                     SELECT seq, 'osmp', {txn}, {sub}, {sub}, 10.00, {when}, {when}, \
                     '10.0.0.7', seq, seq FROM {seq}"
                ))
                .expect("paysys_txn");
            }
            _ => {
                // Payment n is the subscriber's FLOOR((n - 1) / subs)-th: the deposit before
                // it is 10.00 for each earlier one (the fixture's own payment is id 1).
                conn.query_drop(format!(
                    "INSERT INTO payments (date, sum, dsc, ip, last_deposit, uid, aid, id, method, \
                     ext_id, bill_id, inner_describe, amount, currency, reg_date) \
                     SELECT {when}, 10.00, 'OSMP Payments', 167772167, \
                     FLOOR((seq - 1) / {subs}) * 10.00, {sub}, 2, 10 + seq, 10, \
                     CONCAT('OSM:', {txn}), {sub}, '', 10.00, 0, {when} FROM {seq}"
                ))
                .expect("payments");
                conn.query_drop(format!(
                    "INSERT INTO paysys_log (id, system_id, datetime, sum, commission, uid, \
                     transaction_id, info, ip, code, paysys_ip, domain_id, status) \
                     SELECT 10 + seq, 44, {when}, 10.00, 0, {sub}, CONCAT('OSM:', {txn}), '', 0, \
                     '', 167772167, 0, 2 FROM {seq}"
                ))
                .expect("paysys_log");
                conn.query_drop(format!(
                    "INSERT INTO paysys_txn (id, system_name, txn_id, account, subscriber_id, \
                     amount, txn_date, created, caller_ip, payment_ref, prv_txn) \
                     SELECT seq, 'osmp', {txn}, {sub}, {sub}, 10.00, {when}, {when}, \
                     '10.0.0.7', 10 + seq, 10 + seq FROM {seq}"
                ))
                .expect("paysys_txn");
            }
        }
        conn.query_drop("COMMIT").expect("commit");
        lo = hi + 1;
    }
}

/// `paysys audit` under `bench/rusage`: the run's figures and its stdout.
fn audit_run(s: &Settings, site: &Site, args: &[String]) -> (Run, String) {
    let done = Command::new(s.rusage())
        .arg(paysys_exe())
        .arg("audit")
        .args(args)
        .arg(site.config_path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(&site.base)
        .stdin(Stdio::null())
        .output()
        .expect("run paysys audit under rusage");
    let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    let report = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("rusage "))
        .unwrap_or_else(|| panic!("no rusage line: {stderr}"))
        .to_string();
    let field = |key: &str| -> u64 {
        report
            .split(' ')
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in {report}"))
    };
    assert_eq!(
        field("status"),
        0,
        "paysys audit {args:?} found something or failed: {stderr}{}",
        tail(&stdout, 30)
    );
    (
        Run {
            stdout: String::new(),
            stderr,
            cpu_ms: field("cpu_us") as f64 / 1000.0,
            maxrss_kb: field("maxrss_kb"),
            wall_ms: field("wall_us") as f64 / 1000.0,
            minflt: field("minflt"),
        },
        stdout,
    )
}

/// `paysys audit` over a year of `BENCH_AUDIT_ROWS` payments (default 1 000 000; issue
/// #20) on NoDeny and on ABillS, 10 payments a subscriber: the whole year, its last 30
/// days and the timer's default two days. Each must be clean; peak RSS of the year against
/// the month shows that the rows are streamed.
#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_10_audit() {
    let s = Settings::get();
    let rows: u64 = env_or("BENCH_AUDIT_ROWS", 1_000_000u64).max(1_000);
    let subs = (rows / 10).max(1);
    let today = chrono::Local::now().date_naive();
    let back = |days: i64| (today - chrono::Duration::days(days)).to_string();
    println!(
        "\n== paysys audit ({}): {rows} payments of {subs} subscribers over the last 365 days; \
         load before: {}",
        paysys_exe().display(),
        load()
    );
    println!(
        "\n| billing | range | payments | wall s | payments/s | CPU s | peak RSS KB | by question |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    let mut rss = Vec::new();
    for billing in ["nodeny", "abills"] {
        let db = match billing {
            "nodeny" => TestDb::new(),
            _ => TestDb::with_fixture(&common::abills::fixture()),
        };
        let t = Instant::now();
        fill_audit(&mut db.conn(), billing, rows, subs);
        let filled = t.elapsed().as_secs_f64();
        let site = Site::new(&db.url, "");
        if billing == "abills" {
            site.write_config(&common::abills::config_text(
                &db.url,
                &common::abills::system("osmp", &["127.0.0.1"], ""),
            ));
        }
        eprintln!("bench_10_audit: {billing}: {rows} payments written in {filled:.0} s");
        for (range, args) in [
            ("year", vec!["--from".to_string(), back(366)]),
            ("30 days", vec!["--from".to_string(), back(29)]),
            ("2 days (default)", vec![]),
        ] {
            let (run, out) = audit_run(&s, &site, &args);
            let checked: u64 = out
                .lines()
                .find_map(|l| l.strip_prefix("payments   "))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no payments line:\n{out}"));
            if range == "year" {
                assert_eq!(checked, rows, "{out}");
            }
            let took = out
                .lines()
                .find_map(|l| l.strip_prefix("took       "))
                .and_then(|l| l.split_once(": "))
                .map(|(_, parts)| parts.to_string())
                .unwrap_or_default();
            println!(
                "| {billing} | {range} | {checked} | {:.2} | {:.0} | {:.2} | {} | {took} |",
                run.wall_ms / 1000.0,
                checked as f64 / (run.wall_ms / 1000.0),
                run.cpu_ms / 1000.0,
                run.maxrss_kb
            );
            rss.push((billing, range, run.maxrss_kb));
        }
    }
    for billing in ["nodeny", "abills"] {
        let of = |range: &str| {
            rss.iter()
                .find(|(b, r, _)| *b == billing && *r == range)
                .map(|(_, _, kb)| *kb as f64)
                .unwrap_or(1.0)
        };
        println!(
            "{billing}: peak RSS a year / 30 days x{:.2}",
            of("year") / of("30 days")
        );
    }
    println!("load after: {}", load());
}

// ---------------------------------------------------------------------------------------
// bench_11_history

/// An OSMP request through one `paysys_check.cgi` process with the config `config`,
/// checked to answer 0.
fn cgi_history_run(s: &Settings, b: &CardBench, config: &Path, query: &str) -> Run {
    let config = config.to_string_lossy().into_owned();
    let mut vars = cgi_vars(&config, query, "127.0.0.1");
    vars.retain(|(k, _)| *k != "SCRIPT_NAME");
    vars.push(("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"));
    let run = run_process_in(s, paysys_check_exe(), &vars, b"");
    assert!(
        run.stdout.contains("<result>0</result>"),
        "{}: {query}: {}{}",
        b.name,
        run.stdout,
        run.stderr
    );
    run
}

/// The same through the persistent process: whether it answered 0. Done at the answer's
/// `END_REQUEST`, as a web server is (not at the connection's close: with the history on,
/// the row is written after the answer).
fn fcgi_history_run(r: &common::fcgi::Responder, config: &Path, query: &str) -> bool {
    let config = config.to_string_lossy().into_owned();
    let mut s = r.connect();
    common::fcgi::send(
        &mut s,
        1,
        &[
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("QUERY_STRING", query),
            ("PAYSYS_CONFIG", &config),
        ],
        b"",
        false,
    );
    let answer = common::fcgi::receive(&mut s, 1);
    answer.body.contains("<result>0</result>")
}

/// What the request history costs a request: OSMP checks and pays of 1.00 to one
/// subscriber through `paysys_check`, on ABillS (its `paysys_requests`) and on NoDeny (our
/// `paysys_request`), with `[log] database` off and on — two configs of the same install,
/// alternating request by request, so that the machine's load touches both alike. As CGI
/// processes (CPU, wall, the log line's `ms=`, which ends after the row is written) and
/// persistent (FastCGI: latency one at a time, requests per second from
/// `BENCH_CONNECTIONS` clients at once, CPU of the process). The ratios are of one run.
#[test]
#[ignore = "benchmark: bench/run.sh"]
fn bench_11_history() {
    let s = Settings::get();
    let date = txn_date();
    let seq = s.reps * 4;
    let many = s.reps * 20;
    let benches = [CardBench::new(true, None), CardBench::new(false, None)];
    let configs: Vec<(PathBuf, PathBuf)> = benches
        .iter()
        .map(|b| {
            let off = b.site.config_path();
            let on = b.site.base.join("etc/paysys-history.toml");
            let text = std::fs::read_to_string(&off).expect("config");
            std::fs::write(&on, text.replacen("[log]\n", "[log]\ndatabase = true\n", 1))
                .expect("write the config with the history on");
            (off, on)
        })
        .collect();
    println!(
        "\n== the request history ([log] database = true) off and on: paysys_check on ABillS \
         (sql/abills.sql: paysys_requests) and NoDeny (paysys_request), OSMP check and pay of \
         1.00, alternating off/on; {}; load before: {}",
        paysys_check_exe().display(),
        load()
    );
    let check = |b: &CardBench| format!("command=check&txn_id=1&account={}&sum=1.00", b.account);

    // 1. CGI.
    println!(
        "\n-- CGI: one process per request, each figure from {} runs (after 3 warm-up runs of each)\n",
        s.reps
    );
    println!(
        "{}",
        Figures::header().replace("| process |", "| billing, request, history |")
    );
    let mut cgi_ratio = Vec::new();
    for (b, (off, on)) in benches.iter().zip(&configs) {
        for request in ["check", "pay"] {
            let mut figures = [
                Figures::new(&format!("{} {request} off", b.name)),
                Figures::new(&format!("{} {request} on", b.name)),
            ];
            for i in 0..s.reps + 3 {
                for (k, config) in [off, on].into_iter().enumerate() {
                    let query = if request == "check" {
                        check(b)
                    } else {
                        b.pay_query(&date)
                    };
                    let run = cgi_history_run(&s, b, config, &query);
                    if i >= 3 {
                        figures[k].add(&run);
                        figures[k].add_log_ms(&b.site);
                    }
                }
            }
            for f in &figures {
                println!("{}", f.row());
            }
            let [off, on] = &figures;
            cgi_ratio.push((
                b.name,
                request,
                median(&on.cpu) / median(&off.cpu),
                median(&on.wall) / median(&off.wall),
                median(&on.inproc) / median(&off.inproc),
            ));
        }
    }
    println!();
    for (name, request, cpu, wall, inproc) in &cgi_ratio {
        println!(
            "CGI {name} {request}: history on / off, medians: CPU x{cpu:.2}, wall x{wall:.2}, log ms= x{inproc:.2}"
        );
    }

    // 2. Persistent.
    println!(
        "\n-- persistent (FastCGI, {} workers): one request at a time ({seq} of each after 3 \
         warm-up), then {} clients at once ({many} of each, in two alternating halves)\n",
        s.workers, s.connections
    );
    println!(
        "| billing | request | history | one at a time: ms median | p90 | at once: req/s | CPU ms of the process per request | failed |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    let mut fcgi_ratio = Vec::new();
    for (b, (off, on)) in benches.iter().zip(&configs) {
        let responder = card_responder(b, s.workers);
        let pid = responder.child.id();
        for request in ["check", "pay"] {
            let query = |b: &CardBench| {
                if request == "check" {
                    check(b)
                } else {
                    b.pay_query(&date)
                }
            };
            let mut ms = [Vec::new(), Vec::new()];
            for i in 0..seq + 3 {
                for (k, config) in [off, on].into_iter().enumerate() {
                    let q = query(b);
                    let t = Instant::now();
                    assert!(
                        fcgi_history_run(&responder, config, &q),
                        "{}: {q}\n{}",
                        b.name,
                        responder.stderr()
                    );
                    if i >= 3 {
                        ms[k].push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
            let (mut took, mut cpu, mut failed) = ([0.0; 2], [0.0; 2], [0; 2]);
            let half = many / 2;
            for round in 0..2 {
                let n = if round == 0 { half } else { many - half };
                for (k, config) in [off, on].into_iter().enumerate() {
                    let before = process_cpu_ms(pid);
                    let (t, f) = concurrent(s.connections, n, &|_| {
                        fcgi_history_run(&responder, config, &query(b))
                    });
                    took[k] += t;
                    failed[k] += f;
                    cpu[k] += process_cpu_ms(pid) - before;
                }
            }
            for (k, history) in ["off", "on"].into_iter().enumerate() {
                println!(
                    "| {} | {request} | {history} | {:.2} | {:.2} | {:.0} | {:.2} | {} |",
                    b.name,
                    median(&ms[k]),
                    percentile(&ms[k], 90.0),
                    many as f64 / took[k],
                    cpu[k] / many as f64,
                    failed[k]
                );
            }
            fcgi_ratio.push((
                b.name,
                request,
                median(&ms[1]) / median(&ms[0]),
                took[1] / took[0],
                cpu[1] / cpu[0],
            ));
        }
        // Every request made with the history on left its row (the last ones a moment
        // after their answers: the process is killed when dropped).
        std::thread::sleep(Duration::from_millis(500));
        drop(responder);
        let table = if b.name == "ABillS" {
            "paysys_requests"
        } else {
            "paysys_request"
        };
        let rows = b.db.count(&format!("SELECT COUNT(*) FROM {table}"));
        let expected = 2 * ((s.reps + 3) + (seq + 3) + many) as u64;
        assert_eq!(rows, expected, "{}: rows of the history", b.name);
    }
    println!();
    for (name, request, ms, at_once, cpu) in &fcgi_ratio {
        println!(
            "persistent {name} {request}: history on / off: latency median x{ms:.2}, time per \
             request at once x{at_once:.2}, CPU of the process x{cpu:.2}"
        );
    }
    println!("load after: {}", load());
}
