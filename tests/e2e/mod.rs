//! End to end through a real web server: a prefix with `osmp.cgi` and its config, a server
//! in front (CGI or persistent, as `Options` says) and a test database behind. Shared by
//! tests/e2e_http.rs (CGI) and tests/e2e_fastcgi.rs (persistent mode); a test file uses it
//! with `mod common; #[macro_use] mod webserver; mod e2e;`.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::common::{self, txn_date, Answer, TestDb};
use super::webserver::{self, HttpResponse, Kind, Options, TempPrefix, WebServer};

/// What every config admits unless a test says otherwise.
pub const LOOPBACK: &[&str] = &["127.0.0.1", "::1"];

/// How long a log line may take to appear after its answer (see `Fixture::log_lines`).
const LOG_WAIT: Duration = Duration::from_secs(5);

/// A prefix with `osmp.cgi` and a config, a server in front of it and the database behind.
/// Fields drop in order: the server stops before the prefix and the database go.
pub struct Fixture {
    pub web: WebServer,
    pub prefix: TempPrefix,
    pub db: TestDb,
}

/// The fixture, or `None` (with the reason printed) when the server is not installed or
/// the database is reachable only by socket.
pub fn fixture(kind: Kind, tag: &str, opts: &Options) -> Option<Fixture> {
    let server = common::server_url();
    if server.contains("socket=") {
        eprintln!(
            "skipped: the database URL {server} is a socket URL; osmp.cgi behind the web server \
             runs as www-data and needs a TCP URL (set PAYSYS_TEST_DB_URL=mysql://…@127.0.0.1:3306)"
        );
        return None;
    }
    let mode = if opts.fastcgi { "fcgi" } else { "e2e" };
    let prefix =
        TempPrefix(webserver::temp_prefix(&format!("{mode}-{tag}-{kind}")).expect("temp prefix"));
    let p = prefix.0.as_path();
    webserver::prepare_prefix(p).expect("prepare_prefix");
    webserver::install_cgi(p, "osmp.cgi", Path::new(common::osmp_exe())).expect("install osmp.cgi");
    let db = TestDb::new();
    write_config_text(p, &common::config_text(&db.url, LOOPBACK, ""));
    match WebServer::start(kind, p, opts).expect("start web server") {
        Some(web) => Some(Fixture { web, prefix, db }),
        None => {
            let what = match (kind, opts.fastcgi) {
                (Kind::Nginx, _) => "nginx or fcgiwrap",
                (Kind::Apache, false) => "apache2 or its mod_cgid",
                (Kind::Apache, true) => "apache2 or its mod_cgid/mod_fcgid",
            };
            eprintln!("skipped: {what} is not installed");
            None
        }
    }
}

/// `prefix/etc/paysys.toml`, written whole in one go: a request reading it meanwhile sees
/// the old or the new text.
pub fn write_config_text(prefix: &Path, text: &str) {
    let tmp = prefix.join("etc/paysys.toml.new");
    fs::write(&tmp, text).expect("write config");
    fs::rename(&tmp, prefix.join("etc/paysys.toml")).expect("rename config");
}

impl Fixture {
    pub fn set_allow(&self, allow: &[&str]) {
        write_config_text(
            &self.prefix.0,
            &common::config_text(&self.db.url, allow, ""),
        );
    }

    pub fn get(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Answer {
        let r = self
            .web
            .get(path_and_query, headers)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}\n{}", self.web.logs()));
        self.answer(r)
    }

    /// POST `body` as a form with `Transfer-Encoding: chunked`, cut into `chunks` pieces.
    pub fn post_chunked(&self, path: &str, body: &str, chunks: usize) -> Answer {
        let size = body.len().div_ceil(chunks.max(1)).max(1);
        let pieces: Vec<&[u8]> = body.as_bytes().chunks(size).collect();
        let r = self
            .web
            .post_chunked(path, &pieces, &[])
            .unwrap_or_else(|e| panic!("chunked POST {path}: {e}\n{}", self.web.logs()));
        self.answer(r)
    }

    pub fn post(&self, path: &str, body: &str) -> Answer {
        let r = self
            .web
            .post_form(path, body, &[])
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.web.logs()));
        self.answer(r)
    }

    /// The HTTP answer as a CGI answer; it must be an OSMP XML document.
    pub fn answer(&self, r: HttpResponse) -> Answer {
        let a = Answer {
            exit: None,
            status: r.status,
            content_type: r.header("content-type").unwrap_or_default().to_string(),
            body: r.body,
            stderr: String::new(),
        };
        assert!(
            a.content_type.starts_with("text/xml") && a.body.contains("<response>"),
            "{} did not answer OSMP XML: {a:?}\n{}",
            self.web.kind(),
            self.web.logs()
        );
        a
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.prefix.0.join("var/log/paysys_check.log")).unwrap_or_default()
    }

    /// The log's lines once there are `expected` of them (or after LOG_WAIT). A CGI's line
    /// is there before the web server ends the response (at the CGI's exit); a persistent
    /// osmp.cgi writes it before answering, but the test may read the log while another
    /// request of a burst is still being logged.
    pub fn log_lines(&self, expected: usize) -> Vec<String> {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let lines: Vec<String> = self.log().lines().map(str::to_string).collect();
            if lines.len() >= expected || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The common path through one server: a check, a pay, the terminal's repeat of it, a pay
/// POSTed as a form, PATH_INFO (the ABillS domain id), a bad check digit: six requests and
/// six log lines, the TCP peer as the caller. Returns the first pay's `prv_txn`.
pub fn check_pay_repeat_post(f: &Fixture) -> String {
    let a = f.get(
        "/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59071&sum=10.25",
        &[],
    );
    ok(&a);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("1"));

    let pay = pay_path("666", "59071", "10.25");
    let first = f.get(&pay, &[]);
    ok(&first);
    let prv_txn = first.prv_txn().expect("prv_txn");
    assert_eq!(first.element("sum").as_deref(), Some("10.25"));
    assert_eq!(f.db.balance(5907), "110.25");

    // The terminal did not hear the answer and repeats: same prv_txn, credited once.
    let again = f.get(&pay, &[]);
    ok(&again);
    assert_eq!(again.prv_txn().as_deref(), Some(prv_txn.as_str()));
    assert_eq!(f.db.balance(5907), "110.25");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));

    // A pay as a form body (POST), to another subscriber.
    let body = format!(
        "command=pay&txn_id=667&account=12340&sum=4.50&txn_date={}",
        txn_date(-1)
    );
    let posted = f.post("/cgi-bin/osmp.cgi", &body);
    ok(&posted);
    assert_ne!(posted.prv_txn(), Some(prv_txn.clone()));
    assert_eq!(f.db.balance(1234), "20.00");
    assert_eq!((f.db.pays(), f.db.txns()), (2, 2));

    // PATH_INFO (the ABillS domain id) does not break routing; osmp.cgi ignores it.
    let a = f.get(
        "/cgi-bin/osmp.cgi/3?command=check&txn_id=2&account=59071&sum=1",
        &[],
    );
    ok(&a);
    assert_eq!(a.element("osmp_txn_id").as_deref(), Some("2"));
    let a = f.get(
        "/cgi-bin/osmp.cgi/3?command=check&txn_id=3&account=58071",
        &[],
    );
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (4, "nod4"),
        "{}",
        a.body
    );

    // One line per request, with the TCP peer as the caller.
    let lines = f.log_lines(6);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(
        lines[0].contains("ip=127.0.0.1 system=osmp cmd=check"),
        "{}",
        lines[0]
    );
    let paid = format!(
        "ip=127.0.0.1 system=osmp cmd=pay txn=666 account=59071 sum=10.25 result=0 prv_txn={prv_txn} "
    );
    assert!(lines[1].contains(&paid), "{}", lines[1]);
    assert!(lines[2].contains(&paid), "{}", lines[2]);
    assert!(
        lines[3].contains("ip=127.0.0.1 system=osmp cmd=pay txn=667 account=12340"),
        "{}",
        lines[3]
    );
    assert!(
        lines.iter().all(|l| l.contains(" ip=127.0.0.1 ")),
        "{lines:#?}"
    );
    prv_txn
}

/// Twenty identical pays at once, as a terminal retrying in a hurry: every answer OK with
/// one `prv_txn`, one credit, one row each, one log line per request.
pub fn burst_of_identical_pays(f: &Fixture) {
    let pay = pay_path("4242", "59071", "7.77");
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| f.get(&pay, &[]))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    for a in &answers {
        ok(a);
    }
    let prv: Vec<Option<String>> = answers.iter().map(Answer::prv_txn).collect();
    assert!(
        prv[0].is_some() && prv.iter().all(|p| *p == prv[0]),
        "one prv_txn: {prv:?}"
    );
    assert_eq!(f.db.balance(5907), "107.77");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));
    let lines = f.log_lines(20);
    assert_eq!(lines.len(), 20, "one line per request: {lines:#?}");
    let expected = format!(
        " ip=127.0.0.1 system=osmp cmd=pay txn=4242 account=59071 sum=7.77 result=0 prv_txn={} ",
        prv[0].as_deref().unwrap_or_default()
    );
    assert!(lines.iter().all(|l| l.contains(&expected)), "{lines:#?}");
}

/// The caller is the TCP peer and nothing else: refused (403, nod15) while loopback is in
/// no allow list, whatever forwarding header names an allowed address; nothing written;
/// every refusal logged with the peer; then allowed, the same pay goes through.
pub fn callers_are_known_by_remote_addr_only(f: &Fixture) {
    // 127.0.0.1 is in no system's allow list.
    f.set_allow(&["192.0.2.0/24"]);
    refused(
        &f.get(
            "/cgi-bin/osmp.cgi?command=check&txn_id=1&account=59071&sum=10",
            &[],
        ),
        "unknown caller",
    );
    refused(
        &f.get(&pay_path("1", "59071", "10"), &[]),
        "unknown caller, pay",
    );

    // A forged header naming an allowed address changes nothing: REMOTE_ADDR wins.
    f.set_allow(&["10.0.0.0/8"]);
    for header in ["X-Forwarded-For", "X-Real-IP", "Client-IP"] {
        let a = f.get(&pay_path("2", "59071", "10"), &[(header, "10.0.0.5")]);
        refused(&a, header);
    }
    assert_eq!((f.db.pays(), f.db.txns()), (0, 0));
    assert_eq!(f.db.balance(5907), "100.00");
    let lines = f.log_lines(5);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" ip=127.0.0.1 system=- ") && l.contains("comment=\"nod15\"")),
        "{lines:#?}"
    );

    // And back: the same request from an allowed peer pays; the forged header still does
    // not become the caller.
    f.set_allow(LOOPBACK);
    let a = f.get(
        &pay_path("2", "59071", "10"),
        &[("X-Forwarded-For", "192.0.2.99")],
    );
    ok(&a);
    assert_eq!(f.db.balance(5907), "110.00");
    let lines = f.log_lines(6);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(
        lines[5].contains(" ip=127.0.0.1 system=osmp cmd=pay txn=2 ")
            && !lines[5].contains("192.0.2.99"),
        "{}",
        lines[5]
    );
}

/// A pay POSTed with `Transfer-Encoding: chunked`, as a client streaming its body sends it
/// (Apache passes it to a CGI without CONTENT_LENGTH): credited once, and its repeat answers
/// the same `prv_txn`.
pub fn chunked_post_pays_once(f: &Fixture) {
    let body = format!(
        "command=pay&txn_id=668&account=59071&sum=5.05&txn_date={}",
        txn_date(-1)
    );
    let first = f.post_chunked("/cgi-bin/osmp.cgi", &body, 3);
    ok(&first);
    let prv_txn = first.prv_txn().expect("prv_txn");
    let again = f.post_chunked("/cgi-bin/osmp.cgi", &body, 1);
    ok(&again);
    assert_eq!(again.prv_txn(), Some(prv_txn));
    assert_eq!(f.db.balance(5907), "105.05");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));
    let lines = f.log_lines(2);
    assert!(
        lines.len() == 2
            && lines.iter().all(|l| l.contains(
                " ip=127.0.0.1 system=osmp cmd=pay txn=668 account=59071 sum=5.05 result=0 "
            )),
        "{lines:#?}"
    );
}

pub fn pay_path(txn: &str, account: &str, sum: &str) -> String {
    format!("/cgi-bin/osmp.cgi?{}", common::pay_query(txn, account, sum))
}

/// A check or pay answered OK.
pub fn ok(a: &Answer) {
    assert_eq!(
        (a.status, a.result(), a.comment().as_str()),
        (200, 0, "OK"),
        "{}",
        a.body
    );
}

/// A caller no payment system admits.
pub fn refused(a: &Answer, what: &str) {
    assert_eq!(
        (a.status, a.result(), a.comment().as_str()),
        (403, 8, "nod15"),
        "{what}: {}",
        a.body
    );
}
