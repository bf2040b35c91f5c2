//! Three web nodes on a real three-node MariaDB Galera cluster (tests/common/galera.rs),
//! as INSTALL section 12 sets them up: each web node an install base of its own whose
//! `[database] url` lists every database node, its own first; each served as a CGI
//! (`osmp.cgi` processes) and persistently (the same executable serving FastCGI, with its
//! kept connections). The test is the terminals: each retries a temporary answer, as real
//! terminals do, until it gets a final one.
//!
//! One cluster for the whole file, one phase after another (a cluster takes seconds to
//! boot; three at once would crowd two cores):
//! 1. concurrent identical pays through all web nodes: one credit on every node, one
//!    `prv_txn` in every answer;
//! 2. a lagging node: its applier held, a payment committed through another node; the web
//!    nodes' kept and new connections leave the node (desynced by the hold) to the next in
//!    their list, which knows the payment; paysys's own session on the node waits for the
//!    cluster and finds it (never "no such transaction"), or, held past the causal read
//!    timeout, fails the lookup (a temporary answer);
//! 3. failover: a web node whose first URL is down pays through the next;
//! 4. a node SIGKILLed in the middle of a stream of pays: every final answer 0, nothing lost,
//!    nothing credited twice, and the node rejoins and holds the same rows;
//! 5. conflicts that outlast the ledger's retries (writers on another node changing the
//!    same subscriber's row): a temporary answer, logged as a cluster conflict; then the
//!    terminal's retry pays once;
//! 6. concurrent identical pays through `paysys_check.cgi` on ABillS's tables;
//! 7. the same through ABillS's stored procedure (`[database] procedure`, one CALL a pay).
//!
//! Skips itself where Galera cannot be started, unless `PAYSYS_REQUIRE_CLUSTER=1` (CI).

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fcgi::Responder;
use common::galera::Cluster;
use common::{abills, log_field, pay_query, with_database, Answer, Site, TestDb};
use mysql::prelude::Queryable;
use paysys::config::{BillingKind, DatabaseConfig};
use paysys::db::{self, Use};
use paysys::domain::TxnId;
use paysys::ledger;

/// OSMP's temporary answer: the terminal asks again.
const TEMPORARY: i32 = 1;
/// How long a terminal goes on retrying one payment. Generous: a node's eviction, a
/// rejoin and a loaded CI machine all fit; a payment still temporary after this is a bug.
const TERMINAL_PATIENCE: Duration = Duration::from_secs(90);
/// Sessions on node 2 that change subscriber 5907's row without pause in phase 5.
const WRITERS: usize = 8;
/// Subscriber 5907's payment code in the NoDeny fixture.
const ACCOUNT: &str = "59071";
const SUBSCRIBER: u64 = 5907;

/// A web node: its install base (config, log), the CGI it serves, and, once started, that
/// executable's persistent process.
struct WebNode {
    site: Site,
    exe: &'static str,
    persistent: Option<Responder>,
}

impl WebNode {
    /// `osmp.cgi` on NoDeny, whose `[database] url` is `urls`, in that order.
    fn new(urls: &[String]) -> WebNode {
        let site = Site::new(&urls[0], "");
        site.set_urls(urls);
        WebNode {
            site,
            exe: common::osmp_exe(),
            persistent: None,
        }
    }

    /// `paysys_check.cgi` on ABillS (one OSMP system, accounts by login), likewise; its
    /// pays made by ABillS's stored procedure when `procedure`.
    fn abills(urls: &[String], procedure: bool) -> WebNode {
        let site = Site::new(&urls[0], "");
        site.write_config(&abills::config_text_with(
            &urls[0],
            &abills::system("osmp", abills::DEFAULT_ALLOW, "account = \"login\""),
            procedure,
        ));
        site.set_urls(urls);
        WebNode {
            site,
            exe: common::paysys_check_exe(),
            persistent: None,
        }
    }

    fn start_persistent(&mut self) {
        let listener =
            UnixListener::bind(self.site.base.join("osmp.sock")).expect("bind osmp.sock");
        self.persistent = Some(Responder::start_exe(
            self.exe,
            &self.site,
            4,
            OwnedFd::from(listener),
            &[],
        ));
    }

    /// One GET from 127.0.0.1, as a CGI process or to the persistent process.
    fn get(&self, persistent: bool, query: &str) -> Answer {
        if persistent {
            return self
                .persistent
                .as_ref()
                .expect("started persistent")
                .get(query);
        }
        let config = common::path_str(&self.site.config_path());
        common::run_exe(
            self.exe,
            &[
                ("GATEWAY_INTERFACE", "CGI/1.1"),
                ("PAYSYS_CONFIG", &config),
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", "127.0.0.1"),
            ],
            b"",
        )
    }
}

/// What a terminal does: ask again after a temporary answer (a short pause between), until
/// a final one or TERMINAL_PATIENCE. Returns the final answer and how many temporary ones
/// came before it.
fn terminal(mut ask: impl FnMut() -> Answer) -> (Answer, usize) {
    let deadline = Instant::now() + TERMINAL_PATIENCE;
    let mut temporary = 0;
    loop {
        let answer = ask();
        if answer.result() != TEMPORARY || Instant::now() >= deadline {
            return (answer, temporary);
        }
        temporary += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// On node `i`, after it has caught up with the cluster: the count of `sql`.
fn count_on(cluster: &Cluster, i: usize, db: &str, sql: &str) -> u64 {
    let mut conn = cluster.conn(i);
    conn.query_drop(format!("USE `{db}`")).expect("use");
    conn.query_drop("SET SESSION wsrep_sync_wait = 1")
        .expect("sync wait");
    conn.query_first(sql)
        .unwrap_or_else(|e| panic!("node {i}: {sql}: {e}"))
        .unwrap_or(0)
}

fn balance_on(cluster: &Cluster, i: usize, db: &str) -> String {
    let mut conn = cluster.conn(i);
    conn.query_drop(format!("USE `{db}`")).expect("use");
    conn.query_drop("SET SESSION wsrep_sync_wait = 1")
        .expect("sync wait");
    conn.exec_first(
        "SELECT CAST(balance AS DECIMAL(16,2)) FROM users WHERE id = ?",
        (SUBSCRIBER,),
    )
    .expect("balance")
    .expect("subscriber")
}

/// Every node holds the same payments, and as many as `expected`.
fn every_node_agrees(cluster: &Cluster, db: &str, expected: u64, what: &str) -> String {
    let mut balances = Vec::new();
    for i in 1..=cluster.node_count() {
        let txns = count_on(cluster, i, db, "SELECT COUNT(*) FROM paysys_txn");
        let pays = count_on(cluster, i, db, "SELECT COUNT(*) FROM pays");
        assert_eq!(txns, expected, "{what}: paysys_txn rows on node {i}");
        assert_eq!(pays, expected, "{what}: pays rows on node {i}");
        balances.push(balance_on(cluster, i, db));
    }
    assert!(
        balances.windows(2).all(|w| w[0] == w[1]),
        "{what}: balances differ between nodes: {balances:?}"
    );
    balances.remove(0)
}

/// `paysys check-db` with a web node's config: success, and what it printed.
fn check_db(site: &Site) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["check-db", &common::path_str(&site.config_path())])
        .output()
        .expect("run paysys check-db");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `rounds` payments, each sent by seven terminals at once through the web nodes in turn,
/// as CGIs and then as many again persistent: every final answer 0, one `prv_txn` for each
/// payment. Returns how many temporary answers the terminals got on the way.
fn identical_pays(web: &[WebNode], txn: &mut usize, account: &str, rounds: usize) -> usize {
    let mut temporaries = 0;
    for persistent in [false, true] {
        for round in 0..rounds {
            *txn += 1;
            let query = pay_query(&txn.to_string(), account, "10.00");
            let answers: Vec<(Answer, usize)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..7)
                    .map(|k| {
                        let query = &query;
                        s.spawn(move || terminal(|| web[k % web.len()].get(persistent, query)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("terminal thread"))
                    .collect()
            });
            let first = answers[0].0.prv_txn();
            for (answer, temporary) in &answers {
                temporaries += temporary;
                assert_eq!(
                    answer.result(),
                    0,
                    "round {round} (persistent {persistent}): {answer:?}"
                );
                assert_eq!(answer.prv_txn(), first, "one prv_txn for one payment");
            }
        }
    }
    temporaries
}

fn phase(name: &str, started: Instant) {
    eprintln!("cluster: {name} ({:.1} s)", started.elapsed().as_secs_f64());
}

#[test]
fn three_web_nodes_on_a_galera_cluster_keep_every_promise() {
    let Some(mut cluster) = Cluster::start("web", 3).unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let t0 = Instant::now();
    for (what, took) in cluster.timings() {
        eprintln!("cluster start: {what} {:.1} s", took.as_secs_f64());
    }
    let fixture = std::fs::read_to_string(common::repo().join("sql/nodeny.sql")).expect("fixture");
    let db = TestDb::on_server(&cluster.url(1), &fixture);
    let node_url = |i: usize| with_database(&cluster.url(i), &db.name);
    // Web node k lists database node k first, then the others in order.
    let mut web: Vec<WebNode> = (1..=3)
        .map(|k| {
            let urls: Vec<String> = (0..3).map(|j| node_url((k - 1 + j) % 3 + 1)).collect();
            WebNode::new(&urls)
        })
        .collect();
    for w in &mut web {
        w.start_persistent();
    }
    phase("web nodes up", t0);

    let initial = balance_on(&cluster, 1, &db.name);

    // check-db reports each node's membership and the settings payments depend on.
    let (ok, out) = check_db(&web[0].site);
    assert!(ok, "{out}");
    for i in 1..=3 {
        assert!(
            out.contains(&format!(
                "node {i}   127.0.0.1:{}  Galera node: Synced, Primary component of 3 nodes",
                cluster.port(i)
            )),
            "{out}"
        );
    }

    // 1. Concurrent identical pays through all web nodes, as CGIs and persistent.
    let mut txn = 700_000;
    let temporaries = identical_pays(&web, &mut txn, ACCOUNT, 6);
    let mut expected = 12;
    let balance = every_node_agrees(&cluster, &db.name, expected, "concurrent identical pays");
    let added = balance.parse::<f64>().expect("balance") - initial.parse::<f64>().expect("balance");
    assert!(
        (added - 10.0 * expected as f64).abs() < 0.001,
        "{expected} payments of 10.00 added {added}: credited more than once?"
    );
    eprintln!("cluster: 12 payments x 7 concurrent terminals: {temporaries} temporary answers");
    // Every line of every web node's log names the database node that served it.
    for (k, w) in web.iter().enumerate() {
        for line in w.site.log_lines() {
            let db_field = log_field(&line, "db").unwrap_or_else(|| panic!("no db=: {line}"));
            assert!(
                db_field.starts_with("127.0.0.1:"),
                "web node {}: {line}",
                k + 1
            );
        }
    }
    phase("concurrent identical pays", t0);

    // 2. A lagging node. Holding its applier (FLUSH TABLES WITH READ LOCK) also desyncs it,
    //    so the web nodes leave it alone: a new connection skips it, a kept one is dropped
    //    when its state is asked before reuse. The causal read itself is shown on a session
    //    paysys opened on node 3 before the hold, as a kept connection is.
    txn += 1;
    let lagging = txn.to_string();
    let status = format!("command=status&txn_id={lagging}");
    // Web node 3's persistent workers have kept connections on node 3 by now.
    let unknown = web[2].get(true, &status);
    assert_eq!(unknown.result(), 300, "not paid yet: {unknown:?}");
    let node3 = DatabaseConfig {
        urls: vec![node_url(3)],
        billing: BillingKind::NoDeny,
        connect_timeout: 5,
        lock_timeout: 3,
        procedure: false,
    };
    let (mut session, node) = db::connect_node(&node3, Use::Write).expect("a session on node 3");
    assert!(node.cluster, "node 3 is known as a cluster node");
    let hold = cluster.hold_applier(3).expect("hold node 3's applier");
    let paid = web[0].get(false, &pay_query(&lagging, ACCOUNT, "10.00"));
    assert_eq!(paid.result(), 0, "{paid:?}");
    expected += 1;
    // Node 3 has not applied it: a plain read there does not see it …
    {
        let mut conn = cluster.conn(3);
        conn.query_drop(format!("USE `{}`", db.name)).expect("use");
        let seen: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM paysys_txn WHERE txn_id = ?",
                (lagging.as_str(),),
            )
            .expect("plain read");
        assert_eq!(seen, Some(0), "node 3 should lag behind while held");
    }
    // … and neither web node 3's kept connections nor its new ones are used while it is
    // not synced: node 1 answers, and knows the payment. (A kept connection's node is asked
    // once a second at most.)
    std::thread::sleep(Duration::from_millis(1100));
    for persistent in [true, false] {
        let answer = web[2].get(persistent, &status);
        assert_eq!(answer.result(), 0, "{answer:?}\n{}", web[2].site.log());
        assert_eq!(answer.prv_txn(), paid.prv_txn());
        let last = web[2].site.log_lines().pop().expect("a log line");
        assert_eq!(
            log_field(&last, "db"),
            Some(format!("127.0.0.1:{}", cluster.port(1)).as_str()),
            "node 3 is not synced while held (persistent {persistent}): {last}"
        );
    }
    let (ok, out) = check_db(&web[0].site);
    assert!(!ok, "a node that is not synced fails check-db: {out}");
    assert!(
        out.contains("node 3") && out.contains("Donor/Desynced") && out.contains("cannot serve"),
        "{out}"
    );
    // paysys's session on node 3 waits for the cluster: released after a moment, the
    // status's lookup finds the payment (without wsrep_sync_wait it found nothing at once).
    let txn_id = TxnId::parse(&lagging).expect("txn id");
    let found = std::thread::scope(|s| {
        let asked = s.spawn(|| ledger::find(&mut session, "osmp", &txn_id));
        std::thread::sleep(Duration::from_millis(1500));
        hold.release().expect("release node 3");
        asked.join().expect("lookup thread")
    });
    let stored = found
        .expect("the lookup waits, then reads")
        .expect("a status on a lagging node must see the payment, not 'no such transaction'");
    assert_eq!(Some(stored.prv_txn.to_string()), paid.prv_txn());
    // Held past the causal read timeout: the lookup fails (temporary), never "not found".
    txn += 1;
    let later = txn.to_string();
    let hold = cluster.hold_applier(3).expect("hold node 3 again");
    let paid_later = web[0].get(true, &pay_query(&later, ACCOUNT, "10.00"));
    assert_eq!(paid_later.result(), 0, "{paid_later:?}");
    expected += 1;
    let later_id = TxnId::parse(&later).expect("txn id");
    match ledger::find(&mut session, "osmp", &later_id) {
        Err(e) => assert_eq!(
            db::server_code(&e),
            Some(1205),
            "a node that cannot catch up: {e}"
        ),
        Ok(found) => panic!("a held node's lookup must not answer: {found:?}"),
    }
    hold.release().expect("release node 3");
    // Synced again: web node 3 is served by node 3 again.
    let (after, _) = terminal(|| web[2].get(false, &format!("command=status&txn_id={later}")));
    assert_eq!(after.result(), 0, "{after:?}");
    let last = web[2].site.log_lines().pop().expect("a log line");
    assert_eq!(
        log_field(&last, "db"),
        Some(format!("127.0.0.1:{}", cluster.port(3)).as_str()),
        "{last}"
    );
    phase("lagging node", t0);

    // 3. Failover: a web node whose first URL is down pays through the next.
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| format!("mysql://root@127.0.0.1:{}/{}", a.port(), db.name))
        .expect("a free port");
    let failover = WebNode::new(&[dead, node_url(2)]);
    txn += 1;
    let (answer, _) =
        terminal(|| failover.get(false, &pay_query(&txn.to_string(), ACCOUNT, "10.00")));
    assert_eq!(answer.result(), 0, "{answer:?}\n{}", failover.site.log());
    expected += 1;
    let last = failover.site.log_lines().pop().expect("a log line");
    assert_eq!(
        log_field(&last, "db"),
        Some(format!("127.0.0.1:{}", cluster.port(2)).as_str()),
        "{last}"
    );
    let before_stream = every_node_agrees(&cluster, &db.name, expected, "before the stream");
    phase("failover", t0);

    // 4. A node SIGKILLed in the middle of a stream of pays: six terminals, three through the
    //    web nodes' CGIs and three through their persistent processes, ten payments each.
    let per_terminal = 10;
    let done = AtomicUsize::new(0);
    let finals = Mutex::new(Vec::new());
    let first_txn = txn + 1;
    txn += 6 * per_terminal;
    std::thread::scope(|s| {
        for t in 0..6 {
            let (web, done, finals) = (&web, &done, &finals);
            s.spawn(move || {
                for n in 0..per_terminal {
                    let id = (first_txn + t * per_terminal + n).to_string();
                    let query = pay_query(&id, ACCOUNT, "1.00");
                    let (answer, temporary) = terminal(|| web[t % 3].get(t >= 3, &query));
                    finals.lock().expect("finals").push((id, answer, temporary));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // A third of the way in, node 2 dies.
        while done.load(Ordering::SeqCst) < 20 {
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.kill(2);
        eprintln!(
            "cluster: node 2 killed after {} payments ({:.1} s)",
            done.load(Ordering::SeqCst),
            t0.elapsed().as_secs_f64()
        );
    });
    let finals = finals.into_inner().expect("finals");
    let stream = (6 * per_terminal) as u64;
    assert_eq!(finals.len() as u64, stream);
    let mut temporaries = 0;
    for (id, answer, temporary) in &finals {
        temporaries += temporary;
        assert_eq!(answer.result(), 0, "txn {id}: final answer {answer:?}");
    }
    eprintln!("cluster: stream of {stream} pays, node 2 killed: {temporaries} temporary answers");
    expected += stream;
    // Web node 2 lost its first database node and went on through its second (node 3).
    let via_node_3 = format!("db=127.0.0.1:{}", cluster.port(3));
    assert!(
        web[1]
            .site
            .log_lines()
            .iter()
            .any(|l| l.contains("cmd=pay") && l.contains("result=0") && l.contains(&via_node_3)),
        "web node 2 should have paid through node 3 after node 2 died:\n{}",
        web[1].site.log()
    );
    phase("stream with node 2 killed", t0);
    cluster.restart(2).expect("restart node 2");
    cluster
        .wait_synced(2, Duration::from_secs(60))
        .expect("node 2 rejoins");
    let after_stream = every_node_agrees(&cluster, &db.name, expected, "after the kill");
    let added: f64 = after_stream.parse::<f64>().expect("balance")
        - before_stream.parse::<f64>().expect("balance");
    assert!(
        (added - stream as f64).abs() < 0.001,
        "the stream added {added}, not {stream}.00: a payment lost or doubled"
    );
    // Each stream payment once, on every node.
    for i in 1..=3 {
        let doubled = count_on(
            &cluster,
            i,
            &db.name,
            "SELECT COUNT(*) FROM (SELECT txn_id FROM paysys_txn GROUP BY txn_id HAVING COUNT(*) > 1) d",
        );
        assert_eq!(doubled, 0, "node {i}: a txn_id with two rows");
    }
    eprintln!(
        "cluster: node 2 rejoined: {}",
        if cluster.log_since_start(2).contains("IST") {
            "by IST"
        } else {
            "by SST"
        }
    );
    phase("node 2 rejoined and agrees", t0);

    // 5. Conflicts that outlast the retries. Writers on node 2 change subscriber 5907's row
    //    without pause, so a pay to it through node 1 loses certification (or is aborted
    //    by the applier) attempt after attempt. When all eight lose, the answer is
    //    temporary and the log says it was a cluster conflict; once the writers stop, the
    //    terminal's retry pays, once, and a repeat gets that answer.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let conflicted = std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (stop, cluster, db) = (&stop, &cluster, &db);
            s.spawn(move || {
                let mut conn = cluster.conn(2);
                conn.query_drop(format!("USE `{}`", db.name)).expect("use");
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    // An error (a conflict with a pay) only means: write again.
                    let _ = conn.exec_drop(
                        "UPDATE users SET fio = ? WHERE id = ?",
                        (format!("writer {w} {n}"), SUBSCRIBER),
                    );
                }
            });
        }
        let mut conflicted = None;
        for n in 0..30 {
            txn += 1;
            let query = pay_query(&txn.to_string(), ACCOUNT, "1.00");
            let answer = web[0].get(false, &query);
            let line = web[0].site.log_lines().pop().unwrap_or_default();
            if answer.result() == TEMPORARY {
                eprintln!("cluster: pay {} under conflicts: {line}", n + 1);
                conflicted = Some((query, line));
                break;
            }
            assert_eq!(answer.result(), 0, "{answer:?}\n{line}");
            expected += 1;
        }
        stop.store(true, Ordering::SeqCst);
        conflicted
    });
    let (query, line) = conflicted.expect(
        "30 pays while 8 writers on another node changed the same row: none answered temporary",
    );
    assert!(
        line.contains("result=1 ")
            && line.contains("cluster conflict")
            && line.contains("8 times in a row"),
        "a temporary answer under conflicts says it was a cluster conflict: {line}"
    );
    let (answer, _) = terminal(|| web[0].get(false, &query));
    assert_eq!(answer.result(), 0, "the retry pays: {answer:?}");
    let repeat = web[2].get(true, &query);
    assert_eq!(repeat.result(), 0, "{repeat:?}");
    assert_eq!(
        repeat.prv_txn(),
        answer.prv_txn(),
        "a repeat gets the first answer"
    );
    expected += 1;
    every_node_agrees(&cluster, &db.name, expected, "after the conflicts");
    phase("conflicts outlasting the retries", t0);

    // 6. ABillS: paysys_check.cgi's transaction writes bills, payments and paysys_log too,
    //    more rows for certification to compare across nodes; first by statements, then
    //    (7) by ABillS's stored procedure.
    let abills_db = TestDb::on_server(&cluster.url(1), &abills::fixture());
    let abills_web = |procedure: bool| -> Vec<WebNode> {
        (1..=3)
            .map(|k| {
                let urls: Vec<String> = (0..3)
                    .map(|j| with_database(&cluster.url((k - 1 + j) % 3 + 1), &abills_db.name))
                    .collect();
                let mut node = WebNode::abills(&urls, procedure);
                node.start_persistent();
                node
            })
            .collect()
    };
    let web_statements = abills_web(false);
    let tables = ["paysys_txn", "payments", "paysys_log"];
    let rows = |i: usize, table: &str| {
        count_on(
            &cluster,
            i,
            &abills_db.name,
            &format!("SELECT COUNT(*) FROM {table}"),
        )
    };
    let before: Vec<u64> = tables.iter().map(|t| rows(1, t)).collect();
    let mut abills_txn = 800_000;
    let temporaries = identical_pays(&web_statements, &mut abills_txn, "test1", 4);
    for i in 1..=3 {
        for (table, before) in tables.iter().zip(&before) {
            assert_eq!(
                rows(i, table),
                before + 8,
                "ABillS {table}: 8 payments, each once, on node {i}"
            );
        }
    }
    eprintln!(
        "cluster: ABillS, 8 payments x 7 concurrent terminals: {temporaries} temporary answers"
    );
    drop(web_statements);
    phase("ABillS on the cluster", t0);

    // 7. The same through ABillS's stored procedure (`[database] procedure`), loaded once
    //    (the cluster replicates it to every node): each pay is one CALL on the node its
    //    web node uses, its COMMIT certified inside the routine. A certification conflict
    //    there is a deadlock, rolled back and made again; the payments are each credited
    //    once and every node holds the same rows.
    {
        let mut conn = cluster.conn(1);
        conn.query_drop(format!("USE `{}`", abills_db.name))
            .expect("use");
        abills::load_pay_procedure(&mut conn);
    }
    let calls = || -> u64 {
        (1..=3)
            .map(|i| {
                let mut conn = cluster.conn(i);
                let row: Option<(String, u64)> = conn
                    .query_first("SHOW GLOBAL STATUS LIKE 'Com_call_procedure'")
                    .expect("Com_call_procedure");
                row.map_or(0, |(_, n)| n)
            })
            .sum()
    };
    // The bills' deposits in kopecks, on node `i` once it has caught up.
    let deposits = |i: usize| {
        count_on(
            &cluster,
            i,
            &abills_db.name,
            "SELECT CAST(ROUND(SUM(deposit) * 100) AS UNSIGNED) FROM bills",
        )
    };
    let deposits_before = deposits(1);
    let web_procedure = abills_web(true);
    let (before, calls_before) = (
        tables.iter().map(|t| rows(1, t)).collect::<Vec<u64>>(),
        calls(),
    );
    let temporaries = identical_pays(&web_procedure, &mut abills_txn, "test1", 4);
    let called = calls() - calls_before;
    for i in 1..=3 {
        for (table, before) in tables.iter().zip(&before) {
            assert_eq!(
                rows(i, table),
                before + 8,
                "ABillS by the procedure, {table}: 8 payments, each once, on node {i}"
            );
        }
    }
    // Every request of the 8 payments x 7 terminals offers its pay to the procedure (a
    // repeat is answered from the stored row by it too).
    assert!(
        called >= 56,
        "ABillS by the procedure: {called} CALLs on the nodes for 56 requests"
    );
    for i in 1..=3 {
        assert_eq!(
            deposits(i),
            deposits_before + 8 * 1000,
            "ABillS by the procedure: the bills' deposits on node {i}, in kopecks"
        );
    }
    eprintln!(
        "cluster: ABillS by the procedure, 8 payments x 7 concurrent terminals: {called} CALLs, \
         {temporaries} temporary answers"
    );
    drop(web_procedure);
    phase("ABillS by the procedure on the cluster", t0);
    drop(abills_db);
    drop(web);
    drop(failover);
    drop(db);
}
