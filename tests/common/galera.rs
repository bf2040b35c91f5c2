//! A real MariaDB Galera cluster on loopback, for tests of what paysys does when its
//! database is a cluster: a node that dies mid-traffic, one that rejoins, one that lags
//! behind the others.
//!
//! Every node is a `mariadbd` of its own (see [`super::mariadb`] for the single server):
//! its own directory under the temp dir with a `my.cnf`, data directory, socket, pid file
//! and error log, and four free ports on 127.0.0.1 (MySQL, Galera replication, IST, SST).
//! Node 1 bootstraps a new cluster; the others join it one after another by a full state
//! transfer (SST by rsync) into an empty data directory. Root has no password over TCP on
//! every node (node 1 is installed so, the others get its `mysql.global_priv` by SST).
//!
//! ```ignore
//! let Some(mut cluster) = Cluster::start("failover", 3)? else {
//!     return; // "skipped: …" was printed: Galera is not installed
//! };
//! let db = TestDb::on_server(&cluster.url(1), …);
//! cluster.kill(2);                       // SIGKILL: a crash mid-traffic
//! cluster.wait_size(2, Duration::from_secs(15))?;
//! cluster.restart(2)?;                   // recovers, rejoins by IST
//! cluster.wait_synced(2, Duration::from_secs(30))?;
//! let hold = cluster.hold_applier(3)?;   // node 3 stops applying: it lags
//! …
//! hold.release()?;
//! ```
//!
//! Nodes are numbered from 1, as Galera's own logs and the cluster address list do.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

use super::mariadb::{find, install_datadir, BASE_ARGS};

/// How long [`Cluster::start`] may take in all. Three nodes start in about ten seconds on
/// two cores; a cluster still not formed after this is stuck, and CI must not wait longer.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a stop waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// `mariadbd --wsrep-recover` only starts InnoDB and reads its last XID: well under a second.
const RECOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`ApplierHold::release`] waits for the held node to catch up and sync again.
const RESYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Where distributions put the Galera 4 provider.
const PROVIDER_PATHS: &[&str] = &[
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/galera-4/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",
    "/usr/lib64/galera/libgalera_smm.so",
    "/usr/lib/libgalera_smm.so",
];

/// Set to 1 where a cluster test must run (CI with Galera installed): a missing piece is
/// then an error rather than a skip, so that the tests cannot pass by not running.
const REQUIRE_ENV: &str = "PAYSYS_REQUIRE_CLUSTER";

/// `wsrep_local_state` of a node that is a full member: Synced.
const SYNCED: &str = "4";

/// Galera's options for every node; `{…}` are filled in per node.
///
/// - `evs.*`: a SIGKILLed node is suspected after 2 s of silence and evicted after 4 s
///   (the defaults are 5 s and 15 s, plus a 7.5 s install timeout), so a crash test does
///   not wait for half a minute; keepalives every 0.5 s keep live nodes from being
///   suspected. Galera checks them against each other when it starts and refuses to open
///   the connection otherwise, naming the range in the error log: tried, install_timeout
///   must lie in [inactive_check_period, inactive_timeout) and keepalive_period below a
///   third of suspect_timeout.
/// - `repl.causal_read_timeout`: a read with `wsrep_sync_wait` on a node that cannot
///   catch up fails after 3 s (default 30 s) with ER_LOCK_WAIT_TIMEOUT (1205).
/// - `gcache.size`: the writeset cache a rejoining node gets its IST from, 128 MiB by
///   default, preallocated in every data directory; 32 MiB covers any test's writes.
/// - Every address on 127.0.0.1 (Galera would otherwise pick the first interface's).
const PROVIDER_OPTIONS: &str = "base_host=127.0.0.1;base_port={galera};\
gmcast.listen_addr=tcp://127.0.0.1:{galera};ist.recv_addr=127.0.0.1:{ist};\
evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;\
evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT3S;\
repl.causal_read_timeout=PT3S;gcache.size=32M";

/// The ports of one node, all on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
struct Ports {
    /// Clients (MySQL protocol).
    mysql: u16,
    /// Galera replication (gcomm); the cluster address lists these.
    galera: u16,
    /// Incremental state transfer: a rejoining node receives missed writesets here.
    ist: u16,
    /// State snapshot transfer: the joiner's rsync daemon listens here.
    sst: u16,
}

struct Node {
    /// 1-based.
    index: usize,
    dir: PathBuf,
    ports: Ports,
    child: Option<Child>,
    /// The error log's length when the running process was started: what it logged since.
    log_start: u64,
}

impl Node {
    fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mariadbd.sock")
    }

    fn error_log_path(&self) -> PathBuf {
        self.dir.join("mariadbd.err")
    }

    /// `mariadbd --wsrep-recover` logs here, apart from the server's own log.
    fn recover_log_path(&self) -> PathBuf {
        self.dir.join("recover.err")
    }

    /// What mariadbd writes before its error log is open (a bad option, a missing library).
    fn stderr_path(&self) -> PathBuf {
        self.dir.join("stderr.log")
    }

    fn error_log(&self) -> String {
        let mut text = fs::read_to_string(self.error_log_path()).unwrap_or_default();
        let early = fs::read_to_string(self.stderr_path()).unwrap_or_default();
        if !early.trim().is_empty() {
            text = format!("{text}\n--- stderr ---\n{early}");
        }
        text
    }

    fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Err when the process is gone (it died: no point waiting for it).
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(Child::try_wait) {
            None => Err(format!("node {} is not running", self.index)),
            Some(Ok(Some(status))) => Err(format!("node {} exited ({status})", self.index)),
            Some(_) => Ok(()),
        }
    }
}

/// A Galera cluster of `mariadbd`s on loopback; every node is stopped and its directory
/// removed on drop.
pub struct Cluster {
    dir: PathBuf,
    name: String,
    mariadbd: PathBuf,
    provider: PathBuf,
    /// `mysql` when we are root (see [`node_user`]), None otherwise: run as ourselves.
    user: Option<(String, u32, u32)>,
    nodes: Vec<Node>,
    /// How long each phase of `start` took, for the test's own report.
    timings: Vec<(String, Duration)>,
}

impl Cluster {
    /// Boots an `nodes`-node cluster: node 1 bootstraps it (`--wsrep-new-cluster`), then
    /// nodes 2..n join one after another, each by SST; returns once every node is Synced
    /// (`wsrep_local_state` 4) and sees `nodes` members. One at a time because a joiner
    /// needs a donor that is Synced, and two SSTs at once from one donor only queue.
    ///
    /// `Ok(None)`, with "skipped: …" on stderr, when Galera, mariadbd or the rsync SST are
    /// not installed, unless `PAYSYS_REQUIRE_CLUSTER=1`: then `Err` saying what to install.
    /// `Err` with every node's error log when the cluster is not up within 90 s.
    pub fn start(tag: &str, nodes: usize) -> Result<Option<Cluster>, String> {
        assert!(nodes >= 1, "a cluster has at least one node");
        let started = Instant::now();
        let deadline = started + START_TIMEOUT;
        let tools = match Tools::find() {
            Ok(tools) => tools,
            Err(missing) => {
                if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                    return Err(format!(
                        "{REQUIRE_ENV}=1 but a Galera cluster cannot be started: {missing}. \
                         Install it (Debian: apt-get install galera-4 rsync mariadb-server \
                         iproute2), or unset {REQUIRE_ENV} to skip the cluster tests."
                    ));
                }
                eprintln!(
                    "skipped: {missing} (Debian: apt-get install galera-4 rsync \
                     mariadb-server iproute2; set {REQUIRE_ENV}=1 to fail instead)"
                );
                return Ok(None);
            }
        };
        let dir = std::env::temp_dir().join(super::unique(&format!("paysys_galera_{tag}")));
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // The nodes may run as another user (the mysql user, when we are root): they must
        // be able to reach their directories whatever our umask.
        set_mode(&dir, 0o755)?;
        // The cluster's name, unique like the directory's but short: Galera's handshake
        // carries it in a fixed field, and a name over 32 bytes fails every join with an
        // empty "handling gmcast protocol message failed:" (seen with 33; the directory
        // name with its tag is longer).
        let dir_name = dir.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!("paysys_galera_{tag}_");
        let mut name = format!("paysys_{}", dir_name.strip_prefix(&prefix).unwrap_or(""));
        name.truncate(31);
        // Owns the directory from here: an error below stops what started and removes it.
        let mut cluster = Cluster {
            dir,
            name,
            mariadbd: tools.mariadbd,
            provider: tools.provider,
            user: tools.user,
            nodes: Vec::new(),
            timings: Vec::new(),
        };
        let mut ports = free_ports(4 * nodes)?.into_iter();
        for index in 1..=nodes {
            let mut next = || ports.next().expect("4 ports a node");
            let node_dir = cluster.dir.join(format!("n{index}"));
            fs::create_dir_all(node_dir.join("data"))
                .map_err(|e| format!("mkdir {}: {e}", node_dir.display()))?;
            cluster.chown(&node_dir)?;
            cluster.chown(&node_dir.join("data"))?;
            cluster.nodes.push(Node {
                index,
                dir: node_dir,
                ports: Ports {
                    mysql: next(),
                    galera: next(),
                    ist: next(),
                    sst: next(),
                },
                child: None,
                log_start: 0,
            });
        }
        cluster.write_configs()?;

        let phase = Instant::now();
        cluster.install_first(&tools.install_db)?;
        cluster
            .timings
            .push(("install node 1".into(), phase.elapsed()));

        // Node 1 bootstraps, the others join by SST; a node whose port was taken between
        // probing and binding gets new ports and another try.
        for index in 1..=nodes {
            let phase = Instant::now();
            cluster.start_fresh(index, deadline)?;
            let what = if index == 1 {
                "bootstrap node 1".to_string()
            } else {
                format!("node {index} joined by SST")
            };
            cluster.timings.push((what, phase.elapsed()));
        }
        let phase = Instant::now();
        for index in 1..=nodes {
            cluster
                .wait_synced_until(index, deadline)
                .map_err(|e| cluster.failure(&e))?;
        }
        cluster
            .wait_size_until(nodes, deadline)
            .map_err(|e| cluster.failure(&e))?;
        cluster.timings.push(("all synced".into(), phase.elapsed()));
        cluster.timings.push(("total".into(), started.elapsed()));
        eprintln!(
            "galera cluster {} up: {}",
            cluster.name,
            cluster
                .timings
                .iter()
                .map(|(what, d)| format!("{what} {:.1}s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Some(cluster))
    }

    /// Node 1's data directory: system tables with root@127.0.0.1 (and @localhost, @::1)
    /// without a password. The other nodes get theirs from node 1 by SST: rsync copies the
    /// whole data directory into an empty one, so they need no install of their own.
    fn install_first(&self, install_db: &Path) -> Result<(), String> {
        let datadir = self.nodes[0].datadir();
        let user: Vec<String> = self
            .user
            .iter()
            .map(|(u, ..)| format!("--user={u}"))
            .collect();
        install_datadir(install_db, &datadir, &user)?;
        self.chown(&datadir)
    }

    /// First start of node `index`: bootstrap for node 1, a join by SST for the others.
    /// Up to three tries when a port turns out to be taken; each try on fresh ports.
    fn start_fresh(&mut self, index: usize, deadline: Instant) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..3 {
            let extra: &[&str] = if index == 1 {
                &["--wsrep-new-cluster"]
            } else {
                &[]
            };
            self.spawn(index, extra)?;
            match self.wait_synced_until(index, deadline) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.stop_node(index);
                    let log = self.node(index).error_log();
                    let taken = ["already in use", "taken by another program"]
                        .iter()
                        .any(|s| log.contains(s));
                    if !taken || Instant::now() >= deadline {
                        return Err(self.failure(&e));
                    }
                    last = log;
                    // New ports for this node, and every my.cnf told (their cluster
                    // address lists it). A joiner's half-copied data directory goes.
                    let fresh = free_ports(4)?;
                    let node = self.node_mut(index);
                    node.ports = Ports {
                        mysql: fresh[0],
                        galera: fresh[1],
                        ist: fresh[2],
                        sst: fresh[3],
                    };
                    let _ = fs::rename(node.error_log_path(), node.dir.join("taken.err"));
                    if index == 1 {
                        // A fresh bootstrap: a process SIGKILLed after bootstrapping left
                        // "safe_to_bootstrap: 0", and Galera would refuse another.
                        for state in ["grastate.dat", "gvwstate.dat"] {
                            let _ = fs::remove_file(node.datadir().join(state));
                        }
                    } else {
                        let datadir = node.datadir();
                        let _ = fs::remove_dir_all(&datadir);
                        fs::create_dir_all(&datadir)
                            .map_err(|e| format!("mkdir {}: {e}", datadir.display()))?;
                        self.chown(&datadir)?;
                    }
                    self.write_configs()?;
                }
            }
        }
        Err(self.failure(&format!(
            "node {index} did not start, its ports kept being taken:\n{last}"
        )))
    }

    /// Writes every node's `my.cnf`. A file rather than command-line options because the
    /// SST scripts read the server's configuration with `my_print_defaults` from the file
    /// the server names (`--defaults-file`); under `--no-defaults` they would read
    /// /etc/mysql/my.cnf, the system server's, with its datadir and its port.
    fn write_configs(&self) -> Result<(), String> {
        let cluster_address = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.ports.galera))
            .collect::<Vec<_>>()
            .join(",");
        for node in &self.nodes {
            let p = node.ports;
            let provider_options = PROVIDER_OPTIONS
                .replace("{galera}", &p.galera.to_string())
                .replace("{ist}", &p.ist.to_string());
            let mut lines = vec!["[mysqld]".to_string()];
            if let Some((user, ..)) = &self.user {
                lines.push(format!("user={user}"));
            }
            lines.extend([
                format!("datadir={}", node.datadir().display()),
                format!("socket={}", node.socket().display()),
                format!("pid-file={}", node.dir.join("mariadbd.pid").display()),
                format!("log-error={}", node.error_log_path().display()),
                format!("port={}", p.mysql),
                "bind-address=127.0.0.1".into(),
            ]);
            lines.extend(
                BASE_ARGS
                    .iter()
                    .map(|a| a.trim_start_matches("--").to_string()),
            );
            lines.extend([
                // What Galera requires: row events, InnoDB, interleaved auto-increment
                // locks (statement-level ones would deadlock the parallel appliers).
                "binlog_format=ROW".into(),
                "default_storage_engine=InnoDB".into(),
                "innodb_autoinc_lock_mode=2".into(),
                "wsrep_on=ON".into(),
                format!("wsrep_provider={}", self.provider.display()),
                format!("wsrep_cluster_name={}", self.name),
                format!("wsrep_cluster_address=gcomm://{cluster_address}"),
                format!("wsrep_node_name=n{}", node.index),
                format!("wsrep_node_address=127.0.0.1:{}", p.galera),
                format!("wsrep_node_incoming_address=127.0.0.1:{}", p.mysql),
                format!("wsrep_sst_receive_address=127.0.0.1:{}", p.sst),
                "wsrep_sst_method=rsync".into(),
                // Two appliers: writesets of different rows apply in parallel, as in
                // production, where ordering bugs would show.
                "wsrep_slave_threads=2".into(),
                format!("wsrep_provider_options=\"{provider_options}\""),
            ]);
            lines.push(String::new());
            fs::write(node.config_path(), lines.join("\n"))
                .map_err(|e| format!("write {}: {e}", node.config_path().display()))?;
        }
        Ok(())
    }

    /// Starts node `index`'s mariadbd with its my.cnf and `extra` options, in a process
    /// group of its own (which then holds the SST scripts and their rsync daemon too).
    fn spawn(&mut self, index: usize, extra: &[&str]) -> Result<(), String> {
        let mariadbd = self.mariadbd.clone();
        let node = self.node_mut(index);
        assert!(node.child.is_none(), "node {index} is already running");
        node.log_start = fs::metadata(node.error_log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.stderr_path())
            .map_err(|e| format!("open {}: {e}", node.stderr_path().display()))?;
        let child = Command::new(&mariadbd)
            // Must come first: mariadbd reads it only there.
            .arg(format!("--defaults-file={}", node.config_path().display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("running {}: {e}", mariadbd.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `mysql://root@127.0.0.1:<port>` of node `i` (1-based): TCP, as production connects.
    pub fn url(&self, i: usize) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port(i))
    }

    /// Node `i`'s MySQL port on 127.0.0.1.
    pub fn port(&self, i: usize) -> u16 {
        self.node(i).ports.mysql
    }

    /// Every node's URL, node 1 first: a `[database] url` list.
    pub fn urls(&self) -> Vec<String> {
        (1..=self.node_count()).map(|i| self.url(i)).collect()
    }

    /// A root connection to node `i` over TCP, with the server's session defaults; panics
    /// (with the node's error log) when the node does not answer.
    pub fn conn(&self, i: usize) -> Conn {
        self.try_conn(i).unwrap_or_else(|e| {
            panic!(
                "root on node {i} ({}): {e}\n{}",
                self.url(i),
                self.error_log(i)
            )
        })
    }

    /// [`Cluster::conn`] for a node that may be down.
    pub fn try_conn(&self, i: usize) -> Result<Conn, mysql::Error> {
        Conn::new(node_opts(self.port(i)))
    }

    /// Node `i`'s error log so far (all its runs), for assertion messages.
    pub fn error_log(&self, i: usize) -> String {
        self.node(i).error_log()
    }

    /// What node `i` logged since it was last started: after a [`Cluster::restart`], how
    /// it rejoined ("Receiving IST: N writesets" or "SST received").
    pub fn log_since_start(&self, i: usize) -> String {
        let node = self.node(i);
        let log = fs::read(node.error_log_path()).unwrap_or_default();
        let from = usize::try_from(node.log_start).unwrap_or(0).min(log.len());
        String::from_utf8_lossy(&log[from..]).into_owned()
    }

    /// How node `i` got the cluster's state when it last started: `Some("IST")` (only the
    /// writesets it missed, from a donor's gcache), `Some("SST")` (a copy of a donor's
    /// whole data directory), None when its log does not say (yet), or for node 1's
    /// bootstrap. After a [`Cluster::restart`]: IST when InnoDB had a position to recover,
    /// which it has once the node applied a row change; DDL alone may not leave one, and
    /// the node then gets an SST.
    pub fn joined_by(&self, i: usize) -> Option<&'static str> {
        let log = self.log_since_start(i);
        // The joiner logs "Receiving IST: 3 writesets, seqnos 9-11" only for an IST; an
        // SST is followed by an empty IST ("Receiving IST... 0.0%"), and both log "SST
        // received" (the rsync script runs either way, in bypass mode for an IST).
        if log.contains("Receiving IST:") {
            Some("IST")
        } else if log.contains("SST received") {
            Some("SST")
        } else {
            None
        }
    }

    /// The cluster's directory: every node's my.cnf, data directory and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long each phase of the start took.
    pub fn timings(&self) -> &[(String, Duration)] {
        &self.timings
    }

    /// A global status variable of node `i` (`wsrep_local_state`, `wsrep_cluster_size`…).
    pub fn status(&self, i: usize, name: &str) -> Result<String, String> {
        node_status(&self.node(i).socket(), &[name])?
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .ok_or_else(|| format!("node {i} has no status variable {name}"))
    }

    /// Whether node `i`'s mariadbd is running (not killed, not exited).
    pub fn running(&mut self, i: usize) -> bool {
        self.node_mut(i).running()
    }

    /// SIGKILL to node `i`'s mariadbd: a crash mid-traffic, nothing flushed, its Galera
    /// state file left at seqno -1. Then the rest of its process group (an SST script, its
    /// rsync daemon), as a machine that lost power would: a leftover rsync daemon would
    /// hold the SST port the restarted node needs. Returns once the process is gone; the
    /// others notice within the evs timeouts (about 2-4 s, see [`Cluster::wait_size`]).
    pub fn kill(&mut self, i: usize) {
        let node = self.node_mut(i);
        let Some(mut child) = node.child.take() else {
            return;
        };
        let pid = child.id();
        let _ = child.kill();
        let _ = child.wait();
        kill_group(pid);
    }

    /// Starts node `i` again on its data directory and ports after [`Cluster::kill`] (or
    /// a crash). As Debian's `galera_recovery` does before a start, `mariadbd
    /// --wsrep-recover` first reads the last committed position from InnoDB (the state
    /// file says -1 after a crash) and the node starts with `--wsrep-start-position`: it
    /// then asks the cluster only for the writesets it missed, an IST from a donor's
    /// gcache, instead of a full SST of the data directory (which it gets when there is no
    /// position to recover, e.g. after a kill during its own SST). Returns once mariadbd runs;
    /// [`Cluster::wait_synced`] waits for it to rejoin, [`Cluster::joined_by`] tells how.
    /// A restart before the others have evicted the killed process works, but the rejoin
    /// then waits for that eviction (about 8 s in all instead of 3): call
    /// [`Cluster::wait_size`] first to keep a test's timings apart.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.node_mut(i).running() {
            return Err(format!("node {i} is running; kill it first"));
        }
        self.node_mut(i).child = None;
        // A node killed during its SST has no InnoDB to recover from: it gets a new SST.
        let position = self.recover_position(i).unwrap_or_else(|e| {
            eprintln!("{e}\nstarting node {i} without a position: it will rejoin by SST");
            None
        });
        let start_position = position.map(|p| format!("--wsrep-start-position={p}"));
        let extra: Vec<&str> = start_position.iter().map(String::as_str).collect();
        self.spawn(i, &extra)
    }

    /// `uuid:seqno` from `mariadbd --wsrep-recover`; None when it has no position to give
    /// (seqno -1), and then the node will rejoin by SST.
    fn recover_position(&self, i: usize) -> Result<Option<String>, String> {
        let node = self.node(i);
        let log = node.recover_log_path();
        let _ = fs::remove_file(&log);
        let mut child = Command::new(&self.mariadbd)
            .arg(format!("--defaults-file={}", node.config_path().display()))
            .arg("--wsrep-recover")
            .arg(format!("--log-error={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("running {} --wsrep-recover: {e}", self.mariadbd.display()))?;
        let deadline = Instant::now() + RECOVER_TIMEOUT;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                let pid = child.id();
                let _ = child.kill();
                let _ = child.wait();
                kill_group(pid);
                return Err(format!(
                    "node {i}: mariadbd --wsrep-recover still running after \
                     {RECOVER_TIMEOUT:?}:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = fs::read_to_string(&log).unwrap_or_default();
        if !status.success() {
            return Err(format!(
                "node {i}: mariadbd --wsrep-recover failed ({status}):\n{text}"
            ));
        }
        // "[Note] WSREP: Recovered position: 6f70d768-ee75-11f1-9909-4fdc8257a211:9"
        let position = text
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once("WSREP: Recovered position: ")
                    .map(|(_, p)| p.trim())
            })
            .filter(|p| !p.ends_with(":-1") && p.contains(':'))
            .map(str::to_string);
        Ok(position)
    }

    /// Until node `i` is Synced (`wsrep_local_state` 4, `wsrep_ready` ON): it answers
    /// queries and has applied everything up to the moment it joined. `Err` with its
    /// error log when it exits or `timeout` passes.
    pub fn wait_synced(&mut self, i: usize, timeout: Duration) -> Result<(), String> {
        self.wait_synced_until(i, Instant::now() + timeout)
            .map_err(|e| {
                format!(
                    "{e}\n--- node {i} error log ---\n{}",
                    tail(&self.error_log(i))
                )
            })
    }

    fn wait_synced_until(&mut self, i: usize, deadline: Instant) -> Result<(), String> {
        loop {
            self.node_mut(i).check_alive()?;
            let socket = self.node(i).socket();
            let seen = match node_status(&socket, &["wsrep_local_state", "wsrep_ready"]) {
                Ok(vars) => {
                    let get = |n: &str| {
                        vars.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(n))
                            .map(|(_, v)| v.as_str())
                            .unwrap_or("")
                    };
                    if get("wsrep_local_state") == SYNCED && get("wsrep_ready") == "ON" {
                        return Ok(());
                    }
                    format!("{vars:?}")
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!("node {i} not synced in time; last seen: {seen}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Until every running node that answers sees a Primary component of `n` members
    /// (and at least one answers): after a kill, the survivors have evicted the dead node;
    /// after a restart, it is counted again.
    pub fn wait_size(&mut self, n: usize, timeout: Duration) -> Result<(), String> {
        self.wait_size_until(n, Instant::now() + timeout)
    }

    fn wait_size_until(&mut self, n: usize, deadline: Instant) -> Result<(), String> {
        let want = n.to_string();
        loop {
            let mut seen = Vec::new();
            let mut all = true;
            for i in 1..=self.node_count() {
                if !self.node_mut(i).running() {
                    continue;
                }
                if let Ok(vars) = node_status(
                    &self.node(i).socket(),
                    &["wsrep_cluster_size", "wsrep_cluster_status"],
                ) {
                    let ok = vars
                        .iter()
                        .any(|(k, v)| k.eq_ignore_ascii_case("wsrep_cluster_size") && *v == want)
                        && vars.iter().any(|(k, v)| {
                            k.eq_ignore_ascii_case("wsrep_cluster_status") && v == "Primary"
                        });
                    all &= ok;
                    seen.push(format!("node {i}: {vars:?}"));
                }
            }
            if all && !seen.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the cluster did not reach {n} members in time; last seen: {}",
                    if seen.is_empty() {
                        "no node answers".to_string()
                    } else {
                        seen.join("; ")
                    }
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes node `i` stop applying replicated writesets while it stays a member, until
    /// the guard is released or dropped: it lags, its plain reads miss what other nodes
    /// commit meanwhile.
    ///
    /// How: a connection of the guard's holds `FLUSH TABLES WITH READ LOCK` on the node.
    /// On a Galera node that statement desyncs the node (`wsrep_local_state` 2,
    /// "Donor/Desynced", as a donor during SST) and pauses its provider: nothing applies,
    /// the node stays in the cluster, and as a desynced node it sends no flow control, so
    /// the other nodes go on committing at full speed however far it falls behind. A read
    /// with `wsrep_sync_wait = 1` on it waits for the writesets it cannot apply and fails
    /// after `repl.causal_read_timeout` (3 s here) with ER_LOCK_WAIT_TIMEOUT (1205, "Lock
    /// wait timeout exceeded; try restarting transaction").
    ///
    /// Side effect, as with any FTWRL: a write through node i waits for the global read
    /// lock until release, up to the session's `lock_wait_timeout` (a day by default; with
    /// `SET SESSION lock_wait_timeout = 2` it fails after 2 s with error 1205 too). Drop
    /// the guard before the cluster: a node still held stalls its clean shutdown, and the
    /// cluster's drop then waits 10 s before SIGKILL.
    /// Other ways do not lag the node: the applier brute-force aborts a local transaction
    /// holding a row lock it needs, goes through a local `LOCK TABLES … WRITE` (tried: the
    /// row is visible at once), and `SET GLOBAL wsrep_desync = ON` alone only stops flow
    /// control, the node goes on applying.
    pub fn hold_applier(&self, i: usize) -> Result<ApplierHold, String> {
        let socket = self.node(i).socket();
        let mut conn = Conn::new(node_opts(self.port(i))).map_err(|e| format!("node {i}: {e}"))?;
        conn.query_drop("FLUSH TABLES WITH READ LOCK")
            .map_err(|e| format!("node {i}: FLUSH TABLES WITH READ LOCK: {e}"))?;
        // The statement returns once the node is desynced and paused; checked, because a
        // hold that did not hold would let a lag test pass for the wrong reason.
        let state = node_status(&socket, &["wsrep_local_state", "wsrep_desync_count"])?;
        let desynced = state
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("wsrep_desync_count") && v != "0");
        if !desynced {
            return Err(format!(
                "node {i}: FLUSH TABLES WITH READ LOCK did not desync it: {state:?}"
            ));
        }
        Ok(ApplierHold {
            node: i,
            socket,
            conn: Some(conn),
        })
    }

    fn node(&self, i: usize) -> &Node {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "node {i}: the cluster has nodes 1..={}",
            self.nodes.len()
        );
        &self.nodes[i - 1]
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "node {i}: the cluster has nodes 1..={}",
            self.nodes.len()
        );
        &mut self.nodes[i - 1]
    }

    /// `why`, with the tail of every node's error log.
    fn failure(&self, why: &str) -> String {
        let mut text = why.to_string();
        for node in &self.nodes {
            text.push_str(&format!(
                "\n--- node {} error log ({}) ---\n{}",
                node.index,
                node.error_log_path().display(),
                tail(&node.error_log())
            ));
        }
        text
    }

    /// Gives `path` to the user the nodes run as (no-op when they run as ourselves).
    fn chown(&self, path: &Path) -> Result<(), String> {
        let Some((user, uid, gid)) = &self.user else {
            return Ok(());
        };
        std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
            .map_err(|e| format!("chown {user} {}: {e}", path.display()))
    }

    /// SIGTERM (a clean shutdown), then SIGKILL after STOP_TIMEOUT; then the rest of its
    /// process group.
    fn stop_node(&mut self, i: usize) {
        stop_children(&mut [self.node_mut(i)]);
    }
}

impl Drop for Cluster {
    /// Stops every node at once (a clean shutdown each, SIGKILL after 10 s), prints their
    /// error logs if the test is failing, removes the directory.
    fn drop(&mut self) {
        let mut nodes: Vec<&mut Node> = self.nodes.iter_mut().collect();
        stop_children(&mut nodes);
        if std::thread::panicking() {
            eprintln!(
                "{}",
                self.failure(&format!(
                    "galera cluster in {} (removed); its nodes' logs:",
                    self.dir.display()
                ))
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Node `i` held out of applying by [`Cluster::hold_applier`]; applying resumes on
/// [`ApplierHold::release`] or drop.
pub struct ApplierHold {
    node: usize,
    /// Where its status is read.
    socket: PathBuf,
    conn: Option<Conn>,
}

impl ApplierHold {
    /// Lets the node apply again and waits until it has caught up and is Synced, so that
    /// what follows sees every write. (A drop only unlocks: the node catches up within
    /// moments, and a read with `wsrep_sync_wait` waits for that anyway.)
    pub fn release(mut self) -> Result<(), String> {
        let mut conn = self.conn.take().expect("held");
        conn.query_drop("UNLOCK TABLES")
            .map_err(|e| format!("node {}: UNLOCK TABLES: {e}", self.node))?;
        drop(conn);
        let deadline = Instant::now() + RESYNC_TIMEOUT;
        loop {
            match node_status(&self.socket, &["wsrep_local_state"]) {
                Ok(vars) if vars.iter().any(|(_, v)| v == SYNCED) => return Ok(()),
                seen => {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "node {} not synced {RESYNC_TIMEOUT:?} after release: {seen:?}",
                            self.node
                        ));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ApplierHold {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Closing the connection would release the lock too; said outright.
            let _ = conn.query_drop("UNLOCK TABLES");
        }
    }
}

/// What a cluster needs from the machine.
struct Tools {
    mariadbd: PathBuf,
    install_db: PathBuf,
    provider: PathBuf,
    user: Option<(String, u32, u32)>,
}

impl Tools {
    /// Err names what is missing.
    fn find() -> Result<Tools, String> {
        let sbin = ["/usr/sbin", "/usr/libexec", "/usr/bin", "/sbin", "/bin"];
        let mut missing = Vec::new();
        let provider = PROVIDER_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        if provider.is_none() {
            missing.push("the Galera provider (libgalera_smm.so)");
        }
        let mariadbd = find(&["mariadbd", "mysqld"], &sbin);
        if mariadbd.is_none() {
            missing.push("mariadbd");
        }
        let install_db = find(&["mariadb-install-db", "mysql_install_db"], &sbin);
        if install_db.is_none() {
            missing.push("mariadb-install-db");
        }
        // The rsync SST: the script, the tools it calls (my_print_defaults for the
        // config, rsync, and ss, lsof or sockstat to see its daemon listen).
        for (what, names) in [
            ("wsrep_sst_rsync", &["wsrep_sst_rsync"][..]),
            ("my_print_defaults", &["my_print_defaults"][..]),
            ("rsync", &["rsync"][..]),
            ("ss (or lsof)", &["ss", "lsof", "sockstat"][..]),
        ] {
            if find(names, &sbin).is_none() {
                missing.push(what);
            }
        }
        let user = node_user();
        if let Err(e) = user {
            missing.push(e);
        }
        match (provider, mariadbd, install_db, user) {
            (Some(provider), Some(mariadbd), Some(install_db), Ok(user)) if missing.is_empty() => {
                Ok(Tools {
                    mariadbd,
                    install_db,
                    provider,
                    user,
                })
            }
            _ => Err(format!("not installed: {}", missing.join(", "))),
        }
    }
}

/// The user the nodes run as: ourselves, unless we are root; then `mysql`, as a packaged
/// server runs. Not root, as PrivateServer runs: the joiner's SST is an rsync daemon,
/// which when started by root drops to `nobody` (rsyncd.conf's default `uid`) and then
/// cannot write into the root-owned data directory ("mkdir failed: Permission denied").
/// The script writes the daemon's config itself, and mariadbd puts its own bin directory
/// first in the scripts' PATH, so neither can be told otherwise.
fn node_user() -> Result<Option<(String, u32, u32)>, &'static str> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam(3) with a NUL-terminated name; the fields are copied out at once,
    // before another call could overwrite the static record. Tests of this binary that
    // call it concurrently read the same record for the same name.
    unsafe {
        let pw = libc::getpwnam(c"mysql".as_ptr());
        if pw.is_null() {
            return Err("the mysql user (mariadb-server makes it; as root the nodes run as mysql)");
        }
        Ok(Some(("mysql".to_string(), (*pw).pw_uid, (*pw).pw_gid)))
    }
}

/// A root login to 127.0.0.1:`port`, as paysys connects. Connecting gives up after 2 s:
/// a killed node refuses at once, but a test must not hang on one that is stuck.
fn node_opts(port: u16) -> OptsBuilder {
    OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(port)
        .user(Some("root"))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(2)))
}

/// `names`' values in the node's `SHOW GLOBAL STATUS`, asked over its Unix socket
/// (root@localhost has no password either). Not over TCP: the waits ask ten times a
/// second, and every TCP connection takes an ephemeral port, which could be one already
/// picked for a node that has yet to bind it.
fn node_status(socket: &Path, names: &[&str]) -> Result<Vec<(String, String)>, String> {
    let opts = OptsBuilder::new()
        .socket(Some(socket.to_string_lossy()))
        .user(Some("root"))
        .read_timeout(Some(Duration::from_secs(5)))
        .write_timeout(Some(Duration::from_secs(5)));
    let mut conn = Conn::new(opts).map_err(|e| e.to_string())?;
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(",");
    conn.query(format!(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ({list})"
    ))
    .map_err(|e| e.to_string())
}

/// `count` distinct free ports on 127.0.0.1: all bound at once, so none comes twice,
/// then released for the nodes to bind. Another process may take one meanwhile; the
/// start retries on fresh ports then.
fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// SIGTERM to every node at once (each leaves the cluster on its own; one after another
/// would take the sum of their shutdowns), SIGKILL to those still up after STOP_TIMEOUT,
/// then SIGKILL to what is left in their process groups (an SST script's rsync daemon).
fn stop_children(nodes: &mut [&mut Node]) {
    let mut children: Vec<Child> = nodes.iter_mut().filter_map(|n| n.child.take()).collect();
    for child in &children {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline
        && children
            .iter_mut()
            .any(|c| matches!(c.try_wait(), Ok(None)))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for child in &mut children {
        let pid = child.id();
        let _ = child.kill();
        let _ = child.wait();
        kill_group(pid);
    }
}

/// SIGKILL to the process group `pid` led (spawned with `process_group(0)`): what our
/// mariadbd left running. The group's id stays taken while anything is in it, so this
/// reaches only what our child started.
fn kill_group(pid: u32) {
    if let Ok(pgid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// The last 150 lines of a log: enough for what went wrong, not a whole start-up.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(150);
    lines[from..].join("\n")
}
