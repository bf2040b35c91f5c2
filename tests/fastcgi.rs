//! osmp.cgi as a FastCGI responder, spoken to directly (no web server): the test is the web
//! server. It starts the real executable with a listening Unix socket as its standard
//! input, as mod_fcgid, spawn-fcgi and systemd do, and checks that the persistent mode
//! answers, logs and pays exactly as the CGI does, survives what a long-lived process
//! meets (a killed database connection, a config edit, a bad peer), and keeps exactly-once
//! under concurrent workers. The web servers in front of it: tests/e2e_fastcgi.rs.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fcgi::{pair, receive, record, send, Responder};
use common::{log_field, pay_query, Answer, Site, TestDb};
use mysql::prelude::Queryable;

fn waiting_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_pay_repeat_and_status_from_one_process() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let mut osmp = Responder::start(&site, 1);

    let check = osmp.get("command=check&txn_id=1&account=59071&sum=10.00");
    assert_eq!(check.result(), 0, "{}", check.body);
    assert_eq!(check.content_type, "text/xml; charset=utf-8");

    let pay = osmp.get(&pay_query("7001", "59071", "10.25"));
    assert_eq!(pay.result(), 0, "{}", pay.body);
    let prv = pay.prv_txn().expect("prv_txn");
    let again = osmp.get(&pay_query("7001", "59071", "10.25"));
    assert_eq!(again.result(), 0);
    assert_eq!(again.prv_txn(), Some(prv.clone()));
    assert_eq!(db.balance(5907), "110.25");
    assert_eq!((db.txns(), db.pays()), (1, 1));

    let status = osmp.get("command=status&txn_id=7001");
    assert_eq!(status.prv_txn(), Some(prv));
    let unknown = osmp.get("command=check&txn_id=2&account=59070&sum=10.00");
    assert_eq!(unknown.result(), 4);

    // One line per request, all from the same process.
    let lines = site.log_lines();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let pids: Vec<_> = lines.iter().map(|l| log_field(l, "pid")).collect();
    assert!(
        pids.iter().all(|p| p.is_some() && *p == pids[0]),
        "{lines:#?}"
    );
    assert_eq!(log_field(&lines[1], "result"), Some("0"));
    assert!(osmp.alive(), "{}", osmp.stderr());
}

#[test]
fn a_kept_connection_serves_several_requests() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 1);
    let mut s = osmp.connect();
    for (id, txn) in [(1u16, "8001"), (2, "8002"), (3, "8001")] {
        let q = pay_query(txn, "33", "5.00");
        send(&mut s, id, &[("QUERY_STRING", &q)], b"", true);
        assert_eq!(receive(&mut s, id).result(), 0);
    }
    assert_eq!(db.txns(), 2);
    assert_eq!(site.log_lines().len(), 3);
}

/// On a server whose sessions start with autocommit off, the worker's kept connection must
/// not keep reading the snapshot of its first request: a txn paid meanwhile by another
/// process (a CGI, another worker) is paid for the next `status` too.
#[test]
fn a_kept_connection_sees_payments_made_since_on_an_autocommit_off_server() {
    let Some(server) = common::mariadb::PrivateServer::start("fcgi", &["--autocommit=0"])
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let db = TestDb::new_on(&server.url());
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 1);
    let status = "command=status&txn_id=9101";
    let a = osmp.get(status);
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (300, "nod17"),
        "{}",
        a.body
    );

    // Paid through another connection: the CGI.
    let paid = site.get(&pay_query("9101", "59071", "1.00"));
    assert_eq!(paid.result(), 0, "{}", paid.body);

    let a = osmp.get(status);
    assert_eq!(
        (a.result(), a.prv_txn()),
        (0, paid.prv_txn()),
        "the worker read a stale snapshot: {}",
        a.body
    );
    assert_eq!(db.balance(5907), "101.00");
}

#[test]
fn a_killed_database_connection_is_replaced() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 1);
    assert_eq!(osmp.get(&pay_query("9001", "59071", "1.00")).result(), 0);

    // What wait_timeout or a server restart does to an idle connection.
    let mut admin = db.conn();
    let ids: Vec<u64> = admin
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
            (&db.name,),
        )
        .expect("processlist");
    assert_eq!(ids.len(), 1, "the responder keeps one connection");
    for id in ids {
        admin.query_drop(format!("KILL {id}")).expect("kill");
    }

    let check = osmp.get("command=check&txn_id=1&account=59071&sum=1.00");
    assert_eq!(check.result(), 0, "{}", check.body);
    let pay = osmp.get(&pay_query("9002", "59071", "1.00"));
    assert_eq!(pay.result(), 0, "{}", pay.body);
    assert_eq!(db.balance(5907), "102.00");
}

#[test]
fn config_edits_apply_without_a_restart() {
    let db = TestDb::new();
    let other = TestDb::new();
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 1);
    assert_eq!(osmp.get(&pay_query("1", "33", "1.00")).result(), 0);

    // The caller is no longer allowed.
    site.write_config(&common::config_text(&db.url, &["10.9.9.9"], ""));
    let refused = osmp.get("command=check&txn_id=2&account=33&sum=1.00");
    assert_eq!(refused.result(), 8, "{}", refused.body);
    assert_eq!(refused.status, 403);

    // Another database: the kept connection is not reused for it.
    site.write_config(&common::config_text(&other.url, &["127.0.0.1"], ""));
    assert_eq!(osmp.get(&pay_query("1", "33", "1.00")).result(), 0);
    assert_eq!((db.txns(), other.txns()), (1, 1));

    // A broken config: nod2, then fixed again.
    site.write_config("[database\n");
    let broken = osmp.get("command=check&txn_id=3&account=33&sum=1.00");
    assert_eq!(broken.result(), 1);
    assert!(broken.comment().contains("nod2"), "{}", broken.body);
    site.write_config(&common::config_text(&db.url, &["127.0.0.1"], ""));
    assert_eq!(
        osmp.get("command=check&txn_id=3&account=33&sum=1.00")
            .result(),
        0
    );
}

#[test]
fn a_database_that_is_down_is_a_temporary_error_then_recovers() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 1);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = format!("mysql://root@127.0.0.1:{port}/{}", db.name);
    site.write_config(&common::config_text(&down, &["127.0.0.1"], ""));
    let pay = osmp.get(&pay_query("5", "33", "1.00"));
    assert_eq!(pay.result(), 1, "{}", pay.body);
    assert!(pay.comment().contains("nod13"), "{}", pay.body);
    assert_eq!(db.txns(), 0);

    site.write_config(&common::config_text(&db.url, &["127.0.0.1"], ""));
    assert_eq!(osmp.get(&pay_query("5", "33", "1.00")).result(), 0);
    assert_eq!(db.txns(), 1);
}

#[test]
fn a_bad_peer_costs_its_own_connection_only() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let mut osmp = Responder::start(&site, 1);

    // Not FastCGI at all.
    let mut s = osmp.connect();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");

    // Half a request, then the peer goes away.
    let mut s = osmp.connect();
    let mut out = Vec::new();
    record(&mut out, 1, 1, &[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&[1, 4, 0, 1, 0, 200]);
    s.write_all(&out).unwrap();
    drop(s);

    // A body far over the limit: refused in the protocol, like the CGI does.
    let big = vec![b'a'; 10 * 1024 * 1024];
    let answer = osmp.request(&[("REQUEST_METHOD", "POST")], &big);
    assert_eq!(answer.result(), 300, "{}", answer.body);

    assert!(osmp.alive(), "{}", osmp.stderr());
    assert_eq!(
        osmp.get("command=check&txn_id=1&account=33&sum=1.00")
            .result(),
        0
    );
    assert_eq!(db.txns(), 0);
    assert_eq!(site.log_lines().len(), 2, "{:#?}", site.log_lines());
}

#[test]
fn concurrent_workers_pay_exactly_once() {
    const ACCOUNTS: &[(u64, &str)] = &[(3, "33"), (1234, "12340"), (5907, "59071")];
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 4);

    // 50 txns × 4 sends, interleaved over 8 client threads.
    let mut sends = Vec::new();
    for round in 0..4 {
        for t in 0..50u64 {
            let (_, code) = ACCOUNTS[(t % 3) as usize];
            let sum = format!("{}.{:02}", 1 + t % 7, (t * 13) % 100);
            sends.push((round, format!("4{t:03}"), code, sum));
        }
    }
    let answers: Vec<(String, Answer)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|k| {
                let mine: Vec<_> = sends.iter().skip(k).step_by(8).cloned().collect();
                let osmp = &osmp;
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|(_, txn, code, sum)| {
                            let a = osmp.get(&pay_query(&txn, code, &sum));
                            (txn, a)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });

    let mut prv: HashMap<String, String> = HashMap::new();
    for (txn, a) in &answers {
        assert_eq!(a.result(), 0, "{txn}: {}", a.body);
        let p = a.prv_txn().expect("prv_txn");
        assert_eq!(prv.entry(txn.clone()).or_insert(p.clone()), &p, "{txn}");
    }
    assert_eq!(prv.len(), 50);
    assert_eq!((db.txns(), db.pays()), (50, 50));
    // Every balance is its starting balance plus its distinct payments.
    let mut conn = db.conn();
    for (id, _) in ACCOUNTS {
        let (expected, actual): (String, String) = conn
            .exec_first(
                "SELECT CAST(SUM(amount) AS CHAR), CAST((SELECT balance FROM users WHERE id = ?) AS CHAR) \
                 FROM paysys_txn WHERE subscriber_id = ?",
                (id, id),
            )
            .expect("sums")
            .expect("row");
        let start: f64 = match id {
            3 => 0.0,
            1234 => 15.5,
            _ => 100.0,
        };
        let expected: f64 = expected.parse::<f64>().unwrap() + start;
        let actual: f64 = actual.parse().unwrap();
        assert!(
            (expected - actual).abs() < 0.001,
            "subscriber {id}: {expected} vs {actual}"
        );
    }
    assert_eq!(site.log_lines().len(), 200);
    // The workers used at most one connection each.
    let held = waiting_for("the processlist", || {
        let n: u64 = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
                (&db.name,),
            )
            .ok()
            .flatten()?;
        Some(n)
    });
    assert!((1..=4).contains(&held), "{held} connections");
}

#[test]
fn sigterm_finishes_the_payment_in_flight_then_exits() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let mut osmp = Responder::start(&site, 2);
    assert_eq!(
        osmp.get("command=check&txn_id=1&account=59071&sum=1.00")
            .result(),
        0
    );

    // Another session holds the subscriber's row: the pay below waits for it.
    let mut admin = db.conn();
    admin.query_drop("START TRANSACTION").unwrap();
    admin
        .query_drop("SELECT balance FROM users WHERE id = 5907 FOR UPDATE")
        .unwrap();
    let answer = std::thread::scope(|scope| {
        let pay = scope.spawn(|| osmp.get(&pay_query("6001", "59071", "2.00")));
        // The pay is waiting on the lock when the stop arrives.
        waiting_for("the pay to wait for the row lock", || {
            let n: u64 = db
                .conn()
                .exec_first(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'UPDATE users%'",
                    (&db.name,),
                )
                .ok()
                .flatten()?;
            (n > 0).then_some(())
        });
        let pid = osmp.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        std::thread::sleep(Duration::from_millis(300));
        admin.query_drop("COMMIT").unwrap();
        pay.join().expect("pay thread")
    });
    assert_eq!(answer.result(), 0, "{}", answer.body);
    assert_eq!(db.balance(5907), "102.00");
    let status = waiting_for("the responder to exit", || osmp.child.try_wait().unwrap());
    assert!(status.success(), "{status:?}; {}", osmp.stderr());
    assert_eq!(site.log_lines().len(), 2, "{:#?}", site.log_lines());
}

/// A request on a connection the web server keeps (`FCGI_KEEP_CONN`), and its answer.
fn kept(s: &mut (impl Read + Write), id: u16, query: &str) -> Answer {
    send(
        s,
        id,
        &[("REQUEST_METHOD", "GET"), ("QUERY_STRING", query)],
        b"",
        true,
    );
    receive(s, id)
}

const CHECK: &str = "command=check&txn_id=1&account=59071&sum=1.00";

/// How long a test waits for an answer that must not wait for an idle connection. Not a
/// speed requirement: a worker pinned by an idle kept connection frees itself only after
/// the 75 s I/O timeout, past the 60 s a terminal waits, and this bound tells the two apart.
const NOT_STARVED: Duration = Duration::from_secs(20);

#[test]
fn an_idle_kept_connection_does_not_hold_a_worker() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let mut osmp = Responder::start(&site, 1);

    // nginx with fastcgi_keep_conn on: a request, then the connection stays open, idle.
    let mut first = osmp.connect();
    assert_eq!(kept(&mut first, 1, CHECK).result(), 0);

    let mut second = osmp.connect();
    second.set_read_timeout(Some(NOT_STARVED)).unwrap();
    let pay = kept(&mut second, 1, &pay_query("9101", "59071", "1.00"));
    assert_eq!(pay.result(), 0, "{}", pay.body);

    // Both connections keep working, in either order.
    first.set_read_timeout(Some(NOT_STARVED)).unwrap();
    assert_eq!(kept(&mut first, 2, CHECK).result(), 0);
    assert_eq!(kept(&mut second, 2, CHECK).result(), 0);
    assert_eq!(kept(&mut first, 3, CHECK).result(), 0);
    assert_eq!(db.balance(5907), "101.00");
    assert_eq!(site.log_lines().len(), 5, "{:#?}", site.log_lines());
    assert!(osmp.alive(), "{}", osmp.stderr());
}

#[test]
fn idle_kept_connections_beyond_the_workers_do_not_block_a_new_one() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let mut osmp = Responder::start(&site, 2);

    // A web server's pool of ten kept connections, each used once and then idle.
    let mut pool: Vec<UnixStream> = (0..10).map(|_| osmp.connect()).collect();
    for s in &mut pool {
        s.set_read_timeout(Some(NOT_STARVED)).unwrap();
        assert_eq!(kept(s, 1, CHECK).result(), 0);
    }

    // An eleventh, not kept: answered and closed.
    let mut eleventh = osmp.connect();
    eleventh.set_read_timeout(Some(NOT_STARVED)).unwrap();
    send(
        &mut eleventh,
        1,
        &[("REQUEST_METHOD", "GET"), ("QUERY_STRING", CHECK)],
        b"",
        false,
    );
    assert_eq!(receive(&mut eleventh, 1).result(), 0);
    let mut rest = Vec::new();
    eleventh.read_to_end(&mut rest).expect("read to end");
    assert!(rest.is_empty(), "bytes after END_REQUEST: {rest:?}");

    // The pool is still served, newest first this time.
    for s in pool.iter_mut().rev() {
        assert_eq!(kept(s, 2, CHECK).result(), 0);
    }
    assert_eq!(site.log_lines().len(), 21);
    assert!(osmp.alive(), "{}", osmp.stderr());
}

#[test]
fn a_management_record_on_an_idle_connection_does_not_hold_a_worker() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let osmp = Responder::start(&site, 1);

    // FCGI_GET_VALUES, as a web server asks before it sends requests; then nothing.
    let mut asking = osmp.connect();
    let mut names = Vec::new();
    pair(&mut names, "FCGI_MPXS_CONNS", b"");
    let mut out = Vec::new();
    record(&mut out, 9, 0, &names);
    asking.write_all(&out).unwrap();
    let mut h = [0u8; 8];
    asking.read_exact(&mut h).expect("GET_VALUES_RESULT header");
    assert_eq!(h[1], 10, "GET_VALUES_RESULT");
    let mut content = vec![0u8; usize::from(u16::from_be_bytes([h[4], h[5]])) + usize::from(h[6])];
    asking
        .read_exact(&mut content)
        .expect("GET_VALUES_RESULT content");

    let mut other = osmp.connect();
    other.set_read_timeout(Some(NOT_STARVED)).unwrap();
    assert_eq!(kept(&mut other, 1, CHECK).result(), 0);
    // The asking connection can still send a request.
    asking.set_read_timeout(Some(NOT_STARVED)).unwrap();
    assert_eq!(kept(&mut asking, 1, CHECK).result(), 0);
}

#[test]
fn a_tcp_listener_admits_loopback_peers_or_exactly_the_named_ones() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");

    // No FCGI_WEB_SERVER_ADDRS: a web server on the same host is admitted.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let osmp = Responder::start_on(&site, 1, OwnedFd::from(listener), &[]);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(NOT_STARVED)).unwrap();
    assert_eq!(kept(&mut s, 1, CHECK).result(), 0);
    drop(osmp);

    // Named addresses: those alone, so this loopback peer is refused, and the refusal is
    // logged with what to do about it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let env = [("FCGI_WEB_SERVER_ADDRS", "10.0.0.5, not-an-address")];
    let osmp = Responder::start_on(&site, 1, OwnedFd::from(listener), &env);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(NOT_STARVED)).unwrap();
    send(
        &mut s,
        1,
        &[("REQUEST_METHOD", "GET"), ("QUERY_STRING", CHECK)],
        b"",
        false,
    );
    let mut answer = Vec::new();
    // Closed without an answer (a reset, if the request was still unread, is as good).
    let _ = s.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{answer:?}");
    let stderr = waiting_for("the refusal in stderr", || {
        let e = osmp.stderr();
        e.contains("127.0.0.1").then_some(e)
    });
    assert!(stderr.contains("FCGI_WEB_SERVER_ADDRS"), "{stderr}");
    assert!(stderr.contains("not-an-address"), "{stderr}");
    assert_eq!(site.log_lines().len(), 1, "{:#?}", site.log_lines());
}

/// paysys_check.cgi in persistent mode: the same dispatch by caller as a CGI, ABillS's rows,
/// and the answer to an unknown caller in ABillS's words.
#[test]
fn paysys_check_serves_every_system_persistently() {
    let abills = std::fs::read_to_string(common::repo().join("sql/abills.sql")).unwrap();
    let db = TestDb::with_fixture(&abills);
    let site = Site::new(&db.url, "");
    site.write_config(&format!(
        r#"[database]
url = "{}"
billing = "abills"

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["10.0.0.0/8"]
account = "uid"

[[system]]
name = "qiwi"
protocol = "osmp"
allow = ["192.0.2.0/24"]
account = "login"
"#,
        db.url
    ));
    let listener = UnixListener::bind(site.base.join("osmp.sock")).expect("bind socket");
    let responder = Responder::start_exe(
        env!("CARGO_BIN_EXE_paysys_check"),
        &site,
        2,
        OwnedFd::from(listener),
        &[],
    );
    let from = |ip: &str, query: &str| {
        responder.request(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", query),
                ("REMOTE_ADDR", ip),
            ],
            b"",
        )
    };
    let a = from("10.1.2.3", "command=check&txn_id=1&account=1&sum=0.00");
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(a.comment(), "Balance: 12.50 Ив*** И*** И*******");
    let pay = pay_query("700", "test1", "2.50");
    let a = from("192.0.2.9", &pay);
    assert_eq!(a.result(), 0, "{}", a.body);
    let again = from("192.0.2.9", &pay);
    assert_eq!(again.prv_txn(), a.prv_txn());
    let deposit: String = db
        .conn()
        .query_first("SELECT CAST(deposit AS DECIMAL(16,2)) FROM bills WHERE id = 1")
        .unwrap()
        .unwrap();
    assert_eq!(deposit, "15.00");
    let unknown = from("203.0.113.1", &pay);
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (200, "Error: Unknown payment system")
    );
    let lines = site.log_lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[1].contains(" ip=192.0.2.9 system=qiwi cmd=pay txn=700 "),
        "{}",
        lines[1]
    );
}
