//! `paysys_check.cgi` end to end behind the real web servers (nginx + fcgiwrap, Apache
//! mod_cgid) on an ABillS database: the caller's address picks the payment system.
//!
//! The tests call from several loopback addresses (127.0.0.2, 127.0.0.3, …: every 127.x
//! address is this machine's), which the web server hands the CGI as REMOTE_ADDR, so each
//! address can be another payment system's terminal.

mod common;
#[macro_use]
mod webserver;

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use common::{txn_date, Answer, TestDb};
use mysql::prelude::Queryable;
use webserver::{HttpResponse, Kind, Options, TempPrefix, WebServer};

/// Two OSMP systems: `osmp` admits 127.0.0.2 and 127.0.0.16/28 but not 127.0.0.20; `qiwi`
/// admits 127.0.0.0/28, which overlaps `osmp` at 127.0.0.2 (the first in the file wins).
fn config(db_url: &str) -> String {
    format!(
        r#"[database]
url = "{db_url}"
billing = "abills"
lock_timeout = 5

[log]
file = "var/log/paysys_check.log"

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["127.0.0.2", "127.0.0.16/28", "!127.0.0.20"]
account = ["uid", "login"]

[[system]]
name = "qiwi"
protocol = "osmp"
allow = ["127.0.0.0/28"]
account = "login"
abills_id = 55
"#
    )
}

struct Fixture {
    web: WebServer,
    prefix: TempPrefix,
    db: TestDb,
}

fn fixture(kind: Kind, tag: &str) -> Option<Fixture> {
    let server = common::server_url();
    if server.contains("socket=") {
        eprintln!("skipped: the CGI runs as www-data and needs a TCP database URL, not {server}");
        return None;
    }
    let prefix =
        TempPrefix(webserver::temp_prefix(&format!("check-{tag}-{kind}")).expect("temp prefix"));
    let p = prefix.0.as_path();
    webserver::prepare_prefix(p).expect("prepare_prefix");
    webserver::install_cgi(
        p,
        "paysys_check.cgi",
        Path::new(env!("CARGO_BIN_EXE_paysys_check")),
    )
    .expect("install paysys_check.cgi");
    let abills = fs::read_to_string(common::repo().join("sql/abills.sql")).expect("sql/abills.sql");
    let db = TestDb::with_fixture(&abills);
    fs::write(p.join("etc/paysys.toml"), config(&db.url)).expect("config");
    match WebServer::start(kind, p, &Options::default()).expect("start web server") {
        Some(web) => Some(Fixture { web, prefix, db }),
        None => {
            eprintln!("skipped: {kind} is not installed");
            None
        }
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

impl Fixture {
    fn get_from(&self, from: u8, path: &str) -> HttpResponse {
        self.web
            .get_from(ip(from), path)
            .unwrap_or_else(|e| panic!("GET {path} from {}: {e}\n{}", ip(from), self.web.logs()))
    }

    fn osmp(&self, from: u8, path: &str) -> Answer {
        let r = self.get_from(from, path);
        assert!(
            r.status == 200 && r.body.contains("<response>"),
            "{} from {}: {r:?}\n{}",
            path,
            ip(from),
            self.web.logs()
        );
        Answer {
            exit: None,
            status: r.status,
            content_type: r.header("content-type").unwrap_or_default().to_string(),
            body: r.body,
            stderr: String::new(),
        }
    }

    fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(self.prefix.0.join("var/log/paysys_check.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn deposit(&self, bill: u64) -> String {
        self.db
            .conn()
            .exec_first::<String, _, _>(
                "SELECT CAST(deposit AS DECIMAL(16,2)) FROM bills WHERE id = ?",
                (bill,),
            )
            .expect("select")
            .expect("bill")
    }
}

fn pay_path(txn: &str, account: &str, sum: &str) -> String {
    format!(
        "/cgi-bin/paysys_check.cgi?command=pay&txn_id={txn}&account={account}&sum={sum}&txn_date={}",
        txn_date(-1)
    )
}

fn the_caller_picks_the_system(kind: Kind) {
    let Some(f) = fixture(kind, "dispatch") else {
        return;
    };
    // 127.0.0.2: both lists have it, osmp comes first.
    let a = f.osmp(
        2,
        "/cgi-bin/paysys_check.cgi?command=check&txn_id=1&account=1&sum=0.00",
    );
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(a.comment(), "Balance: 12.50 Ив*** И*** И*******");
    // 127.0.0.3: qiwi only, which reads accounts as logins.
    let a = f.osmp(3, &pay_path("501", "test1", "10.25"));
    assert_eq!(a.result(), 0, "{}", a.body);
    let prv_txn = a.prv_txn().expect("prv_txn");
    assert_eq!(f.deposit(1), "22.75");
    let (system_id, transaction_id): (u8, String) =
        f.db.conn()
            .exec_first(
                "SELECT system_id, transaction_id FROM paysys_log WHERE id = ?",
                (prv_txn.parse::<u64>().unwrap(),),
            )
            .unwrap()
            .expect("the answer's prv_txn is the paysys_log row");
    assert_eq!((system_id, transaction_id.as_str()), (55, "QIW:501"));
    // 127.0.0.17: osmp's second network; its repeat of qiwi's txn 501 is its own payment.
    let a = f.osmp(17, &pay_path("501", "1", "1.00"));
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_ne!(a.prv_txn(), Some(prv_txn));
    assert_eq!(f.deposit(1), "23.75");

    // 127.0.0.20 is excluded from osmp's network and in nobody else's: unknown, in ABillS's
    // words, and nothing touched.
    let r = f.get_from(20, &pay_path("502", "1", "5.00"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "Error: Unknown payment system"),
        "{r:?}"
    );
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    assert_eq!(f.deposit(1), "23.75");

    // A bare request from a known caller is OSMP's "no command", never a server error.
    let a = f.osmp(2, "/cgi-bin/paysys_check.cgi");
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod3"),
        "{}",
        a.body
    );

    let lines = f.log_lines();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines[0].contains(" ip=127.0.0.2 system=osmp cmd=check "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(" ip=127.0.0.3 system=qiwi cmd=pay txn=501 "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(" ip=127.0.0.17 system=osmp cmd=pay txn=501 "),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(" ip=127.0.0.20 system=- ")
            && lines[3].contains("comment=\"Error: Unknown payment system\"")
            && lines[3].contains("request=\"GET command=pay&txn_id=502"),
        "the unknown caller's request is logged: {}",
        lines[3]
    );
}
both!(the_caller_picks_the_system);

fn the_domain_comes_from_path_info(kind: Kind) {
    let Some(f) = fixture(kind, "domain") else {
        return;
    };
    // Domain 2 has its own test1 (uid 10, bill 10).
    let path = pay_path("601", "test1", "5.00").replace("paysys_check.cgi?", "paysys_check.cgi/2?");
    let a = f.osmp(3, &path);
    assert_eq!(a.result(), 0, "{}", a.body);
    assert_eq!(
        (f.deposit(10), f.deposit(1)),
        ("45.00".into(), "12.50".into())
    );
    let domain: u32 =
        f.db.conn()
            .query_first("SELECT domain_id FROM paysys_log WHERE transaction_id = 'QIW:601'")
            .unwrap()
            .unwrap();
    assert_eq!(domain, 2);
    let a = f.osmp(
        3,
        "/cgi-bin/paysys_check.cgi/abc?command=check&txn_id=1&account=test1",
    );
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (300, "nod25"),
        "{}",
        a.body
    );
}
both!(the_domain_comes_from_path_info);
