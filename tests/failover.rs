//! `[database] url` as a list, with plain servers: a list names the nodes of one Galera
//! cluster, so a server outside a cluster is not used from a list (it would take payments
//! the cluster never sees); every node tried is named in the error, never a password;
//! `paysys check-db` reports every node. A single URL is a plain server as it always was.
//! Failover between cluster nodes (a node down, one up but not synced, a node killed
//! mid-stream, causal reads) is tests/cluster.rs.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;

use common::{log_field, pay_query, Site, TestDb};
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
        procedure: false,
    }
}

#[test]
fn a_list_uses_cluster_nodes_only_and_names_every_node_tried() {
    let db = TestDb::new();
    let dead = dead_url();
    let e = db::connect_node(&database(&[&dead, &db.url]), Use::Write).unwrap_err();
    assert!(
        e.contains("no database node can serve")
            && e.contains("node 1 (127.0.0.1:")
            && e.contains("cannot connect")
            && e.contains("node 2 (127.0.0.1:")
            && e.contains("not a Galera cluster member"),
        "{e}"
    );
    // A single URL is a plain server, as before lists existed.
    let (_, node) = db::connect_node(&database(&[&db.url]), Use::Read).expect("single");
    assert_eq!(node.index, 1);
    assert!(!node.cluster, "a plain server");
    let e = db::connect_node(&database(&[&dead]), Use::Read).unwrap_err();
    assert!(e.starts_with("cannot connect"), "{e}");
    // Never a password in what it says.
    let other = dead_url().replace("root@", "paysys:secret@");
    let e = db::connect_node(&database(&[&dead, &other]), Use::Read).unwrap_err();
    assert!(!e.contains("secret"), "{e}");
    // A kept connection goes through the same list.
    let mut conns = Connections::persistent();
    assert!(conns
        .get_on(&database(&[&dead, &db.url]), Use::Write)
        .is_err());
    assert!(conns.node().is_none());
    let (_, node) = conns
        .get_on(&database(&[&db.url]), Use::Write)
        .expect("connect");
    assert_eq!(node.index, 1);
}

#[test]
fn a_web_node_with_a_list_of_plain_servers_answers_temporary_and_says_why() {
    let db = TestDb::new();
    let dead = dead_url();
    let site = Site::new(&db.url, "");
    let text = std::fs::read_to_string(site.config_path()).expect("config");
    site.set_urls(&[dead.clone(), db.url.clone()]);
    let pay = site.get(&pay_query("9100", "59071", "10.00"));
    assert_eq!(pay.result(), 1, "temporary: {pay:?}");
    assert_eq!(db.pays(), 0);
    let line = site.log_lines().pop().expect("a log line");
    assert!(line.contains("not a Galera cluster member"), "{line}");
    // check-config lists the nodes in order; check-db reports each and fails.
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
    assert!(!ok, "{out}");
    assert!(
        out.contains("node 1") && out.contains("cannot connect"),
        "{out}"
    );
    assert!(
        out.contains("node 2") && out.contains("not a Galera cluster member"),
        "{out}"
    );
    // A single plain URL: check-db says what it always said, and no db= in the log.
    site.write_config(&text);
    let (ok, out) = paysys("check-db");
    assert!(ok && !out.contains("node 1"), "{out}");
    let pay = site.get(&pay_query("9101", "59071", "10.00"));
    assert_eq!(pay.result(), 0, "{pay:?}");
    let last = site.log_lines().pop().expect("a line");
    assert_eq!(log_field(&last, "db"), None, "{last}");
}
