//! Exactly once under load: many concurrent pays, repeated and shuffled, through the real
//! executable, and the books must balance afterwards.

mod common;
mod webserver;

use std::collections::HashMap;
use std::sync::Barrier;

use common::{pay_query, Answer, Site, TestDb};
use mysql::prelude::Queryable;

/// Subscribers the fixture has, with their payment codes.
const ACCOUNTS: &[(u64, &str)] = &[(3, "33"), (1234, "12340"), (5907, "59071")];

/// A small deterministic shuffle (no randomness crate needed; the seed is printed on failure).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

/// A terminal: retries while the answer is temporary (result 1), as OSMP terminals do.
fn terminal(send: &(dyn Fn(&str) -> Answer + Sync), query: &str) -> Answer {
    let mut answer = send(query);
    for attempt in 1..40 {
        if answer.result() != 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
        answer = send(query);
    }
    answer
}

#[test]
fn two_hundred_concurrent_pays_credit_each_txn_once() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    exactly_once_under_load(&db, &site, &|q| site.get(q));
}

#[test]
fn two_hundred_concurrent_pays_through_nginx_credit_each_txn_once() {
    let server = common::server_url();
    if server.contains("socket=") {
        eprintln!("skipped: behind nginx the CGI runs as www-data and needs a TCP database URL, not {server}");
        return;
    }
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    webserver::prepare_prefix(&site.base).expect("prepare prefix");
    webserver::install_cgi(
        &site.base,
        "osmp.cgi",
        std::path::Path::new(common::osmp_exe()),
    )
    .expect("install cgi");
    let Some(web) = webserver::WebServer::start(
        webserver::Kind::Nginx,
        &site.base,
        &webserver::Options::default(),
    )
    .expect("start nginx") else {
        eprintln!("skipped: nginx or fcgiwrap is not installed");
        return;
    };
    let send = |query: &str| {
        let r = web
            .get(&format!("/cgi-bin/osmp.cgi?{query}"), &[])
            .unwrap_or_else(|e| panic!("GET: {e}"));
        assert_eq!(r.status, 200, "{}", r.body);
        Answer {
            exit: None,
            status: r.status,
            content_type: String::new(),
            body: r.body,
            stderr: String::new(),
        }
    };
    exactly_once_under_load(&db, &site, &send);
}

fn exactly_once_under_load(db: &TestDb, site: &Site, send: &(dyn Fn(&str) -> Answer + Sync)) {
    // 50 distinct txns over 3 subscribers, sums 1.01 .. 50.50; each sent 4 times.
    let txns: Vec<(String, u64, &str, String)> = (0..50)
        .map(|i| {
            let (id, code) = ACCOUNTS[i % ACCOUNTS.len()];
            (
                format!("9{i:04}"),
                id,
                code,
                format!("{}.{:02}", i + 1, (i * 7 + 1) % 100),
            )
        })
        .collect();
    let mut requests: Vec<usize> = (0..txns.len()).flat_map(|i| [i; 4]).collect();
    let seed = std::process::id() as u64;
    shuffle(&mut requests, seed);
    let queries: Vec<String> = requests
        .iter()
        .map(|&i| pay_query(&txns[i].0, txns[i].2, &txns[i].3))
        .collect();

    let barrier = Barrier::new(queries.len());
    let answers: Vec<(usize, Answer)> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .zip(&queries)
            .map(|(&i, q)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (i, terminal(send, q))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });

    // Every answer is success, with one stable prv_txn per txn.
    let mut prv: HashMap<usize, String> = HashMap::new();
    for (i, a) in &answers {
        assert_eq!(a.result(), 0, "seed {seed}, txn {}: {}", txns[*i].0, a.body);
        let p = a.prv_txn().expect("prv_txn");
        let first = prv.entry(*i).or_insert_with(|| p.clone());
        assert_eq!(
            *first, p,
            "seed {seed}: txn {} answered two prv_txn",
            txns[*i].0
        );
    }
    assert_eq!(prv.len(), 50);

    // Every balance is its start plus the sum of its distinct payments.
    let start: HashMap<u64, i64> = [(3, 0), (1234, 1550), (5907, 10000)].into_iter().collect();
    for (id, _) in ACCOUNTS {
        let paid: i64 = txns
            .iter()
            .filter(|t| t.1 == *id)
            .map(|t| paysys::domain::Amount::parse(&t.3).unwrap().kopecks())
            .sum();
        let expected = paysys::domain::Amount::from_kopecks(start[id] + paid).to_string();
        assert_eq!(db.balance(*id), expected, "seed {seed}: subscriber {id}");
    }

    // How often terminals had to retry (Too many connections, lock waits): information only.
    let log = site.log();
    let temporary = log.lines().filter(|l| l.contains(" result=1 ")).count();
    eprintln!(
        "{} requests, {temporary} temporary answers retried",
        log.lines().count()
    );
    assert_eq!(log.lines().count(), 200 + temporary, "one line per request");

    // Our table and the billing's rows agree one to one.
    assert_eq!((db.txns(), db.pays()), (50, 50));
    let mut conn = db.conn();
    let mismatched: u64 = conn
        .query_first(
            "SELECT COUNT(*) FROM paysys_txn t LEFT JOIN pays p ON p.id = t.payment_ref \
             WHERE p.id IS NULL OR p.mid <> t.subscriber_id OR p.cash <> t.amount \
             OR p.reason <> CONCAT('osmp txn_id=', t.txn_id)",
        )
        .unwrap()
        .unwrap();
    assert_eq!(mismatched, 0, "every paysys_txn row has its pays row");
    let distinct_refs: u64 = conn
        .query_first("SELECT COUNT(DISTINCT payment_ref) FROM paysys_txn")
        .unwrap()
        .unwrap();
    assert_eq!(distinct_refs, 50);
}
