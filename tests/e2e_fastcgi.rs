//! `osmp.cgi` in persistent (FastCGI) mode, end to end behind the real web servers, each a
//! private instance configured by the production files for that mode (tests/webserver):
//! - nginx with `etc/nginx/paysys-fastcgi.conf`, osmp.cgi started on its listening socket
//!   as `etc/systemd/paysys-osmp.service` starts it (four worker threads);
//! - Apache with `etc/apache/paysys-fcgid.conf`: mod_fcgid starts osmp.cgi itself.
//!
//! The same URL and the same answers, log lines and exactly-once behaviour as in CGI mode
//! (tests/e2e_http.rs), served by a process that stays up: one pid in every log line, the
//! config re-read on every request, the database connection kept between requests and
//! re-opened when the server has killed it.
//!
//! As in e2e_http, the CGI side runs as www-data when the tests run as root, so the
//! database URL must be TCP. A server (or mod_fcgid) that is not installed makes the test
//! print "skipped: …" (an error with PAYSYS_REQUIRE_WEB=1).

mod common;
#[macro_use]
mod webserver;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

mod e2e;

use common::Answer;
use e2e::{ok, pay_path, refused, write_config_text, Fixture, LOOPBACK};
use webserver::{Kind, Options, TempPrefix, WebServer};

/// Worker threads of the persistent osmp.cgi behind nginx (`PAYSYS_WORKERS`).
const WORKERS: usize = 4;

/// The persistent-mode fixture.
fn fixture(kind: Kind, tag: &str) -> Option<Fixture> {
    let opts = Options {
        fastcgi: true,
        workers: WORKERS,
        ..Options::default()
    };
    e2e::fixture(kind, tag, &opts)
}

impl Fixture {
    fn check(&self, txn: u32) -> Answer {
        self.get(
            &format!("/cgi-bin/osmp.cgi?command=check&txn_id={txn}&account=59071&sum=10"),
            &[],
        )
    }

    /// The distinct `pid=` of the first `requests` log lines: the processes that served
    /// those requests.
    fn pids(&self, requests: usize) -> Vec<u32> {
        let mut pids: Vec<u32> = self.log_lines(requests).iter().map(|l| pid_of(l)).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The database connections of osmp.cgi: every connection to the test database but the
    /// one asking (the test's own helpers connect per call and are gone by then).
    fn endpoint_connections(&self, admin: &mut mysql::Conn) -> Vec<u64> {
        admin
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE DB = ? AND ID <> CONNECTION_ID()",
                (&self.db.name,),
            )
            .expect("processlist")
    }
}

/// The `pid=` of a log line.
fn pid_of(line: &str) -> u32 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid= in log line {line:?}"))
}

/// An admin connection to the test server (not to the test database).
fn admin() -> mysql::Conn {
    mysql::Conn::new(mysql::Opts::from_url(&common::server_url()).expect("server url"))
        .expect("admin connection")
}

/// Whether a process is running (not gone, not a zombie waiting to be reaped).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) S …": the state follows the last ')'.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

fn check_pay_repeat_post_by_one_process(kind: Kind) {
    let Some(f) = fixture(kind, "pay") else {
        return;
    };

    let prv_txn = e2e::check_pay_repeat_post(&f);

    // A bare request answers as osmp.pl did.
    let a = f.get("/cgi-bin/osmp.cgi", &[]);
    assert_eq!(
        (a.result(), a.comment().as_str()),
        (1, "nod3"),
        "{}",
        a.body
    );

    // One line per request, with the TCP peer as the caller, as in CGI mode.
    let lines = f.log_lines(7);
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(
        lines[0].contains(" ip=127.0.0.1 system=osmp cmd=check txn=1 "),
        "{}",
        lines[0]
    );
    let paid = format!(
        " ip=127.0.0.1 system=osmp cmd=pay txn=666 account=59071 sum=10.25 result=0 prv_txn={prv_txn} "
    );
    assert!(lines[1].contains(&paid), "{}", lines[1]);
    assert!(lines[2].contains(&paid), "{}", lines[2]);
    assert!(
        lines[3]
            .contains(" ip=127.0.0.1 system=osmp cmd=pay txn=667 account=12340 sum=4.50 result=0 "),
        "{}",
        lines[3]
    );
    assert!(
        lines.iter().all(|l| l.contains(" ip=127.0.0.1 ")),
        "{lines:#?}"
    );

    // Served one after another, every request went to the same, persistent, process.
    let pids = f.pids(7);
    assert_eq!(pids.len(), 1, "one process served them all: {lines:#?}");
    assert!(running(pids[0]), "osmp.cgi (pid {}) is still up", pids[0]);
    if kind == Kind::Nginx {
        assert_eq!(Some(pids[0]), f.web.fastcgi_pid());
        // Started as the systemd service starts it: its Environment=, our worker count.
        let environ = fs::read(format!("/proc/{}/environ", pids[0])).expect("environ");
        let environ: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        assert!(
            environ.contains(&format!("PAYSYS_WORKERS={WORKERS}")),
            "{environ:?}"
        );
        let config = format!("PAYSYS_CONFIG={}/etc/paysys.toml", f.prefix.0.display());
        assert!(environ.contains(&config), "{environ:?}");
    }
}
both!(check_pay_repeat_post_by_one_process);

fn unknown_callers_and_forged_headers_are_refused(kind: Kind) {
    let Some(f) = fixture(kind, "caller") else {
        return;
    };

    e2e::callers_are_known_by_remote_addr_only(&f);
}
both!(unknown_callers_and_forged_headers_are_refused);

fn chunked_post_pays_once(kind: Kind) {
    let Some(f) = fixture(kind, "chunked") else {
        return;
    };
    e2e::chunked_post_pays_once(&f);
}
both!(chunked_post_pays_once);

fn config_edits_apply_without_a_restart(kind: Kind) {
    let Some(f) = fixture(kind, "config") else {
        return;
    };
    ok(&f.check(1));

    // The allow list changes under the running process: the next request is refused.
    f.set_allow(&["192.0.2.0/24"]);
    refused(&f.check(2), "after the allow list lost 127.0.0.1");

    // A broken config answers "later" (nod2) and logs why; fixing it is enough.
    write_config_text(&f.prefix.0, "[database\nurl = \n");
    let a = f.check(3);
    assert_eq!(
        (a.status, a.result(), a.comment().as_str()),
        (200, 1, "nod2"),
        "{}",
        a.body
    );
    f.set_allow(LOOPBACK);
    ok(&f.check(4));
    let pay = f.get(&pay_path("40", "59071", "2.50"), &[]);
    ok(&pay);
    assert_eq!(f.db.balance(5907), "102.50");

    // A stricter limit in the new config applies to the very next pay.
    write_config_text(
        &f.prefix.0,
        &common::config_text(&f.db.url, LOOPBACK, "")
            .replace("max_sum = \"15000.00\"", "max_sum = \"2.00\""),
    );
    let a = f.get(&pay_path("41", "59071", "2.50"), &[]);
    assert_eq!(
        (a.status, a.result(), a.comment().as_str()),
        (200, 242, "nod9"),
        "{}",
        a.body
    );
    assert_eq!(f.db.balance(5907), "102.50");
    assert_eq!((f.db.pays(), f.db.txns()), (1, 1));

    let lines = f.log_lines(6);
    assert_eq!(lines.len(), 6, "one line per request: {lines:#?}");
    assert!(lines[1].contains("comment=\"nod15\""), "{}", lines[1]);
    assert!(lines[2].contains("comment=\"nod2\""), "{}", lines[2]);
    assert!(lines[5].contains("comment=\"nod9\""), "{}", lines[5]);
    // No restart: the process that answered the first request answered them all.
    assert_eq!(f.pids(6).len(), 1, "{lines:#?}");
}
both!(config_edits_apply_without_a_restart);

fn killed_database_connections_are_reopened(kind: Kind) {
    let Some(f) = fixture(kind, "dbkill") else {
        return;
    };
    let mut admin = admin();
    // A few requests, so that behind nginx more than one worker may have connected.
    for txn in 1..=4 {
        ok(&f.check(txn));
    }
    ok(&f.get(&pay_path("100", "59071", "1.00"), &[]));
    assert_eq!(f.db.balance(5907), "101.00");

    // The connections are kept between requests: there is one to kill.
    let before = f.endpoint_connections(&mut admin);
    assert!(
        !before.is_empty(),
        "osmp.cgi keeps its database connection(s) open between requests: {before:?}"
    );
    for id in &before {
        admin.query_drop(format!("KILL {id}")).expect("KILL");
    }
    // KILL returns before the server has closed the connection.
    for _ in 0..100 {
        let left = f.endpoint_connections(&mut admin);
        if left.iter().all(|id| !before.contains(id)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Every worker's connection is dead: each request must find out and connect anew.
    for txn in 5..=8 {
        ok(&f.check(txn));
    }
    let pay = f.get(&pay_path("101", "59071", "2.00"), &[]);
    ok(&pay);
    assert_eq!(f.db.balance(5907), "103.00");
    // A repeat after yet another kill: the stored answer, nothing credited twice.
    for id in f.endpoint_connections(&mut admin) {
        admin.query_drop(format!("KILL {id}")).expect("KILL");
    }
    let again = f.get(&pay_path("101", "59071", "2.00"), &[]);
    ok(&again);
    assert_eq!(again.prv_txn(), pay.prv_txn());
    assert_eq!(f.db.balance(5907), "103.00");
    assert_eq!((f.db.pays(), f.db.txns()), (2, 2));

    let after = f.endpoint_connections(&mut admin);
    assert!(
        !after.is_empty() && after.iter().all(|id| !before.contains(id)),
        "new connections, none of the killed ones: before {before:?}, after {after:?}"
    );
    let lines = f.log_lines(11);
    assert_eq!(lines.len(), 11, "one line per request: {lines:#?}");
    assert!(lines.iter().all(|l| l.contains(" result=0 ")), "{lines:#?}");
    // Still the same process: it reconnected, it was not restarted.
    assert_eq!(f.pids(11).len(), 1, "{lines:#?}");
}
both!(killed_database_connections_are_reopened);

fn concurrent_identical_pays_credit_once(kind: Kind) {
    let Some(f) = fixture(kind, "burst") else {
        return;
    };
    e2e::burst_of_identical_pays(&f);
    if kind == Kind::Nginx {
        // One process, several worker threads.
        assert_eq!(f.pids(20), vec![f.web.fastcgi_pid().expect("pid")]);
    }
}
both!(concurrent_identical_pays_credit_once);

/// Prints its CGI environment's REMOTE_ADDR and QUERY_STRING, and its pid.
const ECHO_CGI: &str = "#!/bin/sh\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
printf 'REMOTE_ADDR=%s\\nQUERY_STRING=%s\\nPATH_INFO=%s\\n' \"$REMOTE_ADDR\" \"$QUERY_STRING\" \"$PATH_INFO\"\n";

fn other_cgis_stay_plain_cgis(kind: Kind) {
    let Some(f) = fixture(kind, "others") else {
        return;
    };
    webserver::write_cgi_script(&f.prefix.0, "echo.cgi", ECHO_CGI).expect("echo.cgi");
    let r = f
        .web
        .get("/cgi-bin/echo.cgi/3?a=1", &[])
        .expect("GET echo.cgi");
    assert_eq!(r.status, 200, "{r:?}\n{}", f.web.logs());
    assert_eq!(
        r.body, "REMOTE_ADDR=127.0.0.1\nQUERY_STRING=a=1\nPATH_INFO=/3\n",
        "{r:?}"
    );
    // …while osmp.cgi next to it is the persistent one.
    ok(&f.check(1));
    ok(&f.check(2));
    assert_eq!(f.pids(2).len(), 1, "{}", f.log());
    assert_eq!(f.log_lines(2).len(), 2, "{}", f.log());
}
both!(other_cgis_stay_plain_cgis);

/// Dropping the server stops osmp.cgi too (nginx: the harness's process; Apache: mod_fcgid's).
#[test]
fn stopping_stops_the_persistent_process() {
    for kind in Kind::ALL {
        let Some(f) = fixture(kind, "stop") else {
            continue;
        };
        ok(&f.check(1));
        let pids = f.pids(1);
        assert_eq!(pids.len(), 1, "{}", f.log());
        assert!(running(pids[0]));
        let Fixture { web, prefix, db } = f;
        drop(web);
        // Killed with the server's process group; gone once the kernel has delivered it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(pids[0]) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !running(pids[0]),
            "{kind}: osmp.cgi (pid {}) still running after the server stopped",
            pids[0]
        );
        drop((prefix, db));
    }
}

/// An osmp.cgi that does not serve FastCGI on its stdin is reported, with what it printed,
/// instead of a server that answers 502 to every request.
#[test]
fn an_executable_without_fastcgi_mode_is_reported() {
    let prefix = TempPrefix(webserver::temp_prefix("fcgi-missing").expect("temp prefix"));
    let p = prefix.0.as_path();
    webserver::prepare_prefix(p).expect("prepare_prefix");
    let opts = Options {
        fastcgi: true,
        ..Options::default()
    };
    match WebServer::start(Kind::Nginx, p, &opts) {
        Err(e) => assert!(e.contains("install_cgi"), "{e}"),
        Ok(_) => panic!("started without {}/cgi-bin/osmp.cgi", p.display()),
    }

    webserver::write_cgi_script(
        p,
        "osmp.cgi",
        "#!/bin/sh\necho 'a plain CGI: no request here' >&2\nexit 1\n",
    )
    .expect("osmp.cgi");
    match WebServer::start(Kind::Nginx, p, &opts) {
        Err(e) => {
            assert!(
                e.contains("FastCGI")
                    && e.contains("exited")
                    && e.contains("a plain CGI: no request here"),
                "{e}"
            );
            // A failed start keeps the instance's state for a look; nothing to see here.
            let kept = e
                .rsplit_once("(state kept in ")
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no state dir named in {e}"));
            assert!(kept.contains("paysys-web-nginx-"), "{kept}");
            fs::remove_dir_all(kept).expect("remove the kept state dir");
        }
        Ok(None) => eprintln!("skipped: nginx or fcgiwrap is not installed"),
        Ok(Some(_)) => panic!("a shell script passed for a FastCGI server"),
    }
}

/// The upgrade step INSTALL gives for Apache: after a new osmp.cgi is installed,
/// `systemctl reload apache2` (a graceful restart, SIGUSR1) ends the running processes and
/// the next request is served by a new one.
#[test]
fn apache_graceful_restart_starts_the_new_executable() {
    let Some(f) = fixture(Kind::Apache, "graceful") else {
        return;
    };
    ok(&f.check(1));
    let old = f.pids(1);
    assert_eq!(old.len(), 1, "{}", f.log());

    // As make install does it: a new file in place of the old one, not the old one rewritten.
    let exe = f.prefix.0.join("cgi-bin/osmp.cgi");
    fs::remove_file(&exe).expect("remove osmp.cgi");
    webserver::install_cgi(
        &f.prefix.0,
        "osmp.cgi",
        Path::new(env!("CARGO_BIN_EXE_osmp")),
    )
    .expect("install osmp.cgi again");
    let apache = fs::read_to_string(f.web.state_dir().join("run/apache2.pid")).expect("pid file");
    let status = std::process::Command::new("kill")
        .args(["-USR1", apache.trim()])
        .status()
        .expect("kill -USR1");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(old[0]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !running(old[0]),
        "osmp.cgi (pid {}) outlived the graceful restart\n{}",
        old[0],
        f.web.logs()
    );

    ok(&f.check(2));
    let lines = f.log_lines(2);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let new = pid_of(&lines[1]);
    assert_ne!(new, old[0], "{lines:#?}");
    assert!(running(new), "{lines:#?}");
}
