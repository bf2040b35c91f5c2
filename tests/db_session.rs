//! The session paysys opens is in autocommit mode whatever the server's default: a server
//! run with `autocommit=0` (my.cnf) or `init_connect='SET autocommit=0'` would otherwise
//! keep a read snapshot open on a kept connection, and later reads would not see payments
//! committed since. Tested on a private server started with `--autocommit=0`
//! (tests/common/mariadb.rs), so that the shared test server keeps its defaults.

mod common;

use common::mariadb::PrivateServer;
use common::TestDb;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};
use paysys::config::DatabaseConfig;
use paysys::db::{self, Connections, Use};

fn autocommit_off_server() -> Option<PrivateServer> {
    PrivateServer::start("autocommit", &["--autocommit=0"]).unwrap_or_else(|e| panic!("{e}"))
}

fn config(url: &str) -> DatabaseConfig {
    DatabaseConfig {
        urls: vec![url.to_string()],
        billing: paysys::config::BillingKind::NoDeny,
        connect_timeout: 5,
        lock_timeout: 3,
        procedure: false,
    }
}

fn autocommit(conn: &mut Conn) -> u8 {
    conn.query_first("SELECT @@autocommit")
        .expect("SELECT @@autocommit")
        .expect("a row")
}

fn balance(conn: &mut Conn) -> String {
    conn.query_first("SELECT CAST(balance AS CHAR) FROM users WHERE id = 5907")
        .expect("select balance")
        .expect("subscriber 5907")
}

/// Another connection credits subscriber 5907 and commits.
fn credit_elsewhere(db: &TestDb) {
    db.conn()
        .query_drop("UPDATE users SET balance = balance + 1 WHERE id = 5907")
        .expect("update elsewhere");
}

/// A read, a commit by someone else, the same read on the same connection: the second must
/// see the commit.
fn sees_commits_made_meanwhile(conn: &mut Conn, db: &TestDb, what: &str) {
    let before = balance(conn);
    credit_elsewhere(db);
    let after = balance(conn);
    assert_ne!(before, after, "{what}: a stale read, still {before}");
}

#[test]
fn every_connection_is_in_autocommit_mode_on_an_autocommit_off_server() {
    let Some(server) = autocommit_off_server() else {
        return;
    };
    // The premise: a session that sets nothing starts with autocommit off here.
    assert_eq!(autocommit(&mut server.conn()), 0, "{}", server.error_log());
    let db = TestDb::new_on(&server.url());
    let config = config(&db.url);

    for usage in [Use::Read, Use::Write] {
        let mut conn = db::connect(&config, usage).expect("db::connect");
        assert_eq!(autocommit(&mut conn), 1, "{usage:?}");
        sees_commits_made_meanwhile(&mut conn, &db, &format!("{usage:?}"));
    }

    // The FastCGI worker's kept connection, from one request to the next.
    let mut conns = Connections::persistent();
    let before = balance(conns.get(&config, Use::Read).expect("first request"));
    conns.done(true);
    credit_elsewhere(&db);
    let after = balance(conns.get(&config, Use::Read).expect("second request"));
    assert_ne!(before, after, "the kept connection read a stale balance");
}

#[test]
fn init_connect_cannot_turn_autocommit_off_either() {
    let Some(server) = autocommit_off_server() else {
        return;
    };
    let db = TestDb::new_on(&server.url());
    // This server's global default back on, and init_connect turning it off instead, as
    // some my.cnf do. init_connect runs for users without SUPER only, as paysys's is.
    let mut root = server.conn();
    for stmt in [
        "SET GLOBAL autocommit = 1".to_string(),
        "SET GLOBAL init_connect = 'SET autocommit = 0'".to_string(),
        "CREATE USER 'paysys'@'127.0.0.1' IDENTIFIED BY 'secret'".to_string(),
        format!("GRANT ALL ON `{}`.* TO 'paysys'@'127.0.0.1'", db.name),
    ] {
        root.query_drop(&stmt)
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let url = format!(
        "mysql://paysys:secret@127.0.0.1:{}/{}",
        server.port(),
        db.name
    );
    let plain = OptsBuilder::from_opts(Opts::from_url(&url).expect("url")).prefer_socket(false);
    let mut plain = Conn::new(plain).expect("connect as paysys");
    assert_eq!(autocommit(&mut plain), 0, "the premise: init_connect ran");

    let config = config(&url);
    for usage in [Use::Read, Use::Write] {
        let mut conn = db::connect(&config, usage).expect("db::connect");
        assert_eq!(autocommit(&mut conn), 1, "{usage:?}");
        sees_commits_made_meanwhile(&mut conn, &db, &format!("{usage:?}"));
    }
}
