//! `[database] url` as a list, on plain servers: the first URL that answers is used, in
//! order, on every connect; the log line names the node that served; `paysys check-db`
//! reports every node. The cluster half (a node up but not synced, causal reads, a node
//! killed mid-stream) is tests/cluster.rs.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;

use common::{pay_query, Site, TestDb};
use paysys::config::{BillingKind, DatabaseConfig};
use paysys::db::{self, Connections, Use};

/// A loopback port nothing listens on (bound, then released).
fn dead_url() -> String {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("mysql://root@127.0.0.1:{port}/nowhere")
}

fn database(urls: &[&str]) -> DatabaseConfig {
    DatabaseConfig {
        urls: urls.iter().map(|u| u.to_string()).collect(),
        billing: BillingKind::NoDeny,
        connect_timeout: 2,
        lock_timeout: 3,
    }
}

fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

#[test]
fn the_first_url_that_answers_is_used_in_order() {
    let db = TestDb::new();
    let dead = dead_url();
    let (_, node) = db::connect_node(&database(&[&dead, &db.url]), Use::Write)
        .unwrap_or_else(|e| panic!("the second URL should serve: {e}"));
    assert_eq!(node.index, 2);
    assert!(!node.cluster, "a plain server");
    let (_, node) = db::connect_node(&database(&[&db.url, &dead]), Use::Read).expect("first");
    assert_eq!(node.index, 1, "the first URL is preferred while it answers");
    // None answers: the error names every node and why, never a password.
    let other = dead_url().replace("root@", "paysys:secret@");
    let e = db::connect_node(&database(&[&dead, &other]), Use::Read).unwrap_err();
    assert!(
        e.contains("no database node can serve")
            && e.contains("node 1 (127.0.0.1:")
            && e.contains("node 2 (127.0.0.1:")
            && !e.contains("secret"),
        "{e}"
    );
    // A single URL keeps its plain error, as before lists existed.
    let e = db::connect_node(&database(&[&dead]), Use::Read).unwrap_err();
    assert!(e.starts_with("cannot connect"), "{e}");
}

#[test]
fn a_kept_connection_comes_back_to_the_list_after_its_server_goes() {
    let db = TestDb::new();
    let dead = dead_url();
    let config = database(&[&dead, &db.url]);
    let mut conns = Connections::persistent();
    let (_, node) = conns.get_on(&config, Use::Write).expect("connect");
    assert_eq!(node.index, 2);
    conns.done(true);
    assert_eq!(conns.node().map(|n| n.index), Some(2), "kept");
    // A request that failed drops the connection; the next connect walks the list again.
    conns.done(false);
    assert!(conns.node().is_none());
    let (_, node) = conns.get_on(&config, Use::Write).expect("reconnect");
    assert_eq!(node.index, 2);
}

#[test]
fn a_web_node_pays_through_its_second_url_and_logs_which() {
    let db = TestDb::new();
    let dead = dead_url();
    let site = Site::new(&db.url, "");
    let text = std::fs::read_to_string(site.config_path()).expect("config");
    let list = format!("url = [\"{dead}\", \"{}\"]", db.url);
    site.write_config(&text.replacen(&format!("url = \"{}\"", db.url), &list, 1));
    let pay = site.get(&pay_query("9100", "59071", "10.00"));
    assert_eq!(pay.result(), 0, "{pay:?}\n{}", site.log());
    assert_eq!(db.pays(), 1);
    let repeat = site.get(&pay_query("9100", "59071", "10.00"));
    assert_eq!(repeat.result(), 0);
    assert_eq!(repeat.prv_txn(), pay.prv_txn());
    assert_eq!(db.pays(), 1, "exactly once");
    let lines = site.log_lines();
    let db_address = db::describe_address(&db.url);
    for line in &lines {
        assert_eq!(log_field(line, "db"), Some(db_address.as_str()), "{line}");
    }
    // check-config lists the nodes in order; check-db reports each and fails on the dead one.
    let paysys = |cmd: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args([cmd, &common::path_str(&site.config_path())])
            .output()
            .expect("run paysys");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = paysys("check-config");
    assert!(ok, "{out}");
    assert!(
        out.contains("(node 1: tried in this order)")
            && out.contains("(node 2: tried in this order)"),
        "{out}"
    );
    let (ok, out) = paysys("check-db");
    assert!(!ok, "a node that cannot serve fails check-db:\n{out}");
    assert!(
        out.contains("node 1") && out.contains("cannot connect"),
        "{out}"
    );
    assert!(
        out.contains("node 2") && out.contains("a server of its own (no cluster)"),
        "{out}"
    );
    assert!(
        out.contains("ok: tables"),
        "the schema is still checked: {out}"
    );
    // A single plain URL: check-db says what it always said, and no db= in the log.
    site.write_config(&text);
    let (ok, out) = paysys("check-db");
    assert!(ok && !out.contains("node 1"), "{out}");
    let status = site.get("command=check&txn_id=9101&account=59071&sum=1.00");
    assert_eq!(status.result(), 0, "{status:?}");
    let last = site.log_lines().pop().expect("a line");
    assert_eq!(log_field(&last, "db"), None, "{last}");
}
