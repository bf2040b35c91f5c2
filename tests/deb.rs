//! The Debian package: `make deb-files` (scripts/deb.sh, pkg/deb/) with the executables
//! cargo built for this run, once per run.
//!
//! - `the_package_holds_what_it_should` (anywhere dpkg-deb is): the files, modes, links,
//!   conffiles and control fields; the units, logrotate file and web-server examples with
//!   the package's paths; a man page per command saying what its `--help` says; lintian
//!   finds no error.
//! - `apt_installs_serves_removes_and_purges_it` changes this machine, so it runs only as
//!   root with dpkg and apt-get, one at a time (a lock file), and refuses to start while a
//!   paysys package is installed. It installs the package with `apt-get install ./….deb`
//!   (no network: nothing else is needed), serves a check and a pay through
//!   /usr/lib/cgi-bin/osmp.cgi behind a private nginx + fcgiwrap configured by the package's
//!   own nginx example (and a check through paysys_check.cgi), a check behind Apache with
//!   its Apache example, and one by the CGI run as www-data without PAYSYS_CONFIG (as
//!   Debian's serve-cgi-bin runs it), with the packaged config pointed at a test database by
//!   an overlay in /etc/paysys/paysys.d/; then removes the package (the config and the log
//!   stay) and purges it: nothing of it is left, and the database is as the pay left it.
//!
//! Either skips itself ("skipped: …") when what it needs is missing, unless
//! PAYSYS_REQUIRE_WEB=1 (as in CI, whose .ci/run installs lintian). The package is built
//! with `gzip -1`: xz, make deb's default, takes several times as long on debug executables.

mod common;
mod webserver;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{txn_date, TestDb};
use mysql::prelude::Queryable;
use webserver::{Kind, Options, WebServer};

const BASE: &str = "/usr/lib/paysys";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn required() -> bool {
    std::env::var("PAYSYS_REQUIRE_WEB").is_ok_and(|v| v == "1")
}

/// Prints why the test skips itself, or fails when it must not skip.
fn skip(why: &str) {
    assert!(!required(), "PAYSYS_REQUIRE_WEB=1, but {why}");
    eprintln!("skipped: {why}");
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Runs `cmd`, panics unless it succeeds; its stdout and stderr together.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn stdout(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Holds an exclusive lock on `path` (created) until dropped; waits for it.
fn lock(path: &Path) -> File {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// The package, built once per run into target/tmp/deb-test/ (a lock keeps two runs of this
/// tree from building it at once); `None` without dpkg-deb.
fn package() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !have("dpkg-deb") || !have("dpkg") {
                return None;
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-test");
            fs::create_dir_all(&out).expect("target/tmp/deb-test");
            let _lock = lock(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-test.lock"));
            for entry in fs::read_dir(&out).expect("read deb-test") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "deb") {
                    fs::remove_file(&path).expect("remove an old package");
                }
            }
            // Readable by apt's unprivileged downloader (_apt), so that it needs no fallback.
            for dir in [Path::new(env!("CARGO_TARGET_TMPDIR")), out.as_path()] {
                let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
            }
            let made = run(Command::new("make")
                .current_dir(repo())
                .args(["--no-print-directory", "deb-files"])
                .arg(format!("OSMP_BIN={}", env!("CARGO_BIN_EXE_osmp")))
                .arg(format!(
                    "PAYSYS_CHECK_BIN={}",
                    env!("CARGO_BIN_EXE_paysys_check")
                ))
                .arg(format!("PAYSYS_BIN={}", env!("CARGO_BIN_EXE_paysys")))
                .arg(format!("DEB_OUT={}", out.display()))
                .args(["DEB_COMPRESS=gzip", "DEB_COMPRESS_LEVEL=1", "LINTIAN=0"]));
            let printed = String::from_utf8_lossy(&made.stdout);
            let said = String::from_utf8_lossy(&made.stderr);
            assert!(
                made.status.success(),
                "make deb-files failed:\n{printed}{said}"
            );
            let deb = out.join(format!(
                "paysys_{}-1_{}.deb",
                env!("CARGO_PKG_VERSION"),
                architecture()
            ));
            assert!(
                deb.is_file(),
                "no {} after make deb-files:\n{printed}{said}",
                deb.display()
            );
            assert_eq!(
                printed.lines().last(),
                deb.to_str(),
                "make deb-files names the package on its last line"
            );
            Some(deb)
        })
        .as_deref()
}

fn architecture() -> String {
    stdout(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}

/// One entry of `dpkg-deb -c`: the path (absolute, "/" for the root), its mode string,
/// owner and link target.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    mode: String,
    owner: String,
    link: Option<String>,
}

fn contents(deb: &Path) -> Vec<Entry> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|line| {
            // drwxr-xr-x root/root 0 2026-12-07 08:13 ./etc/   (a link: ./a -> b)
            let mut words = line.split_whitespace();
            let mode = words.next().expect("a mode").to_string();
            let owner = words.next().expect("an owner").to_string();
            let name = &line[line.find(" ./").expect("a ./ path") + 1..];
            let (path, link) = match name.split_once(" -> ") {
                Some((p, l)) => (p, Some(l.to_string())),
                None => (name, None),
            };
            let path = path.trim_start_matches('.').trim_end_matches('/');
            Entry {
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.into()
                },
                mode,
                owner,
                link,
            }
        })
        .collect()
}

fn entry<'a>(all: &'a [Entry], path: &str) -> &'a Entry {
    all.iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("the package has no {path}: {all:#?}"))
}

/// The commands `paysys --help` lists, in its order.
fn commands() -> Vec<String> {
    let help = stdout(Command::new(env!("CARGO_BIN_EXE_paysys")).arg("--help"));
    let mut seen = Vec::new();
    for line in help.lines() {
        if let Some(rest) = line.strip_prefix("  paysys ") {
            let cmd: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !cmd.is_empty() && !seen.contains(&cmd) {
                seen.push(cmd);
            }
        }
    }
    assert!(seen.len() >= 10, "{help}");
    seen
}

/// A man page's text as it reads: roff requests dropped, our escapes undone.
fn man_text(page: &str) -> Vec<String> {
    page.lines()
        .filter(|l| !l.starts_with('.'))
        .map(|l| {
            let l = l.strip_prefix("\\&").unwrap_or(l);
            let mut out = String::new();
            let mut rest = l;
            while let Some(i) = rest.find('\\') {
                out.push_str(&rest[..i]);
                let esc = &rest[i + 1..];
                if let Some(r) = esc.strip_prefix('-') {
                    out.push('-');
                    rest = r;
                } else if let Some(r) = esc.strip_prefix('e') {
                    out.push('\\');
                    rest = r;
                } else if let Some(r) = esc.strip_prefix("[u") {
                    let end = r.find(']').expect("\\[uXXXX]");
                    let c = u32::from_str_radix(&r[..end], 16)
                        .ok()
                        .and_then(char::from_u32)
                        .expect("a character");
                    out.push(c);
                    rest = &r[end + 1..];
                } else {
                    panic!("an escape the man pages do not use: {l}");
                }
            }
            out.push_str(rest);
            out
        })
        .collect()
}

fn gunzip(path: &Path) -> String {
    stdout(Command::new("gzip").arg("-dc").arg(path))
}

#[test]
fn the_package_holds_what_it_should() {
    let Some(deb) = package() else {
        return skip("dpkg-deb is not installed");
    };
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let field = |name: &str| {
        stdout(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "paysys");
    assert_eq!(field("Version"), version);
    assert_eq!(field("Architecture"), architecture());
    // cargo's debug executables are linked dynamically: the C library, as dpkg-shlibdeps
    // says, and nothing that an installed system lacks (apt-get installs it offline).
    assert!(
        field("Depends").contains("libc6 (>= "),
        "{}",
        field("Depends")
    );
    assert_eq!(field("Recommends"), "");
    assert!(field("Installed-Size").parse::<u64>().expect("a size") > 1000);
    assert_eq!(
        stdout(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles")),
        "/etc/logrotate.d/paysys\n/etc/paysys/paysys.toml\n"
    );

    let all = contents(deb);
    for e in &all {
        assert_eq!(e.owner, "root/root", "{e:?}");
        if e.mode.starts_with('d') {
            assert_eq!(e.mode, "drwxr-xr-x", "{e:?}");
        }
    }
    for exe in [
        "/usr/lib/paysys/cgi-bin/osmp.cgi",
        "/usr/lib/paysys/cgi-bin/paysys_check.cgi",
        "/usr/lib/paysys/bin/paysys",
    ] {
        assert_eq!(entry(&all, exe).mode, "-rwxr-xr-x", "{exe}");
    }
    assert_eq!(entry(&all, "/etc/paysys/paysys.toml").mode, "-rw-r-----");
    assert!(entry(&all, "/etc/paysys/paysys.d").mode.starts_with('d'));
    for (link, to) in [
        ("/usr/lib/cgi-bin/osmp.cgi", "../paysys/cgi-bin/osmp.cgi"),
        (
            "/usr/lib/cgi-bin/paysys_check.cgi",
            "../paysys/cgi-bin/paysys_check.cgi",
        ),
        ("/usr/bin/paysys", "../lib/paysys/bin/paysys"),
        ("/usr/lib/paysys/etc", "/etc/paysys"),
        ("/usr/lib/paysys/var/log", "/var/log/paysys"),
        ("/usr/lib/paysys/var/cache", "/var/cache/paysys"),
        ("/usr/lib/paysys/sql", "../../share/paysys/sql"),
    ] {
        assert_eq!(entry(&all, link).link.as_deref(), Some(to), "{link}");
    }
    // In /usr/lib/cgi-bin (shared with other packages) only the two links; no log or cache
    // directory in the package (postinst makes them, for the web server's user).
    let cgi_bin: Vec<&str> = all
        .iter()
        .filter(|e| e.path.starts_with("/usr/lib/cgi-bin/"))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        cgi_bin,
        [
            "/usr/lib/cgi-bin/osmp.cgi",
            "/usr/lib/cgi-bin/paysys_check.cgi"
        ]
    );
    assert!(!all.iter().any(|e| e.path.starts_with("/var/")), "{all:#?}");

    // Every systemd unit of the tree, and nothing else there.
    let mut units: Vec<String> = fs::read_dir(repo().join("etc/systemd"))
        .expect("etc/systemd")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".service") || n.ends_with(".socket") || n.ends_with(".timer"))
        .map(|n| format!("/usr/lib/systemd/system/{n}"))
        .collect();
    units.sort();
    let packaged: Vec<String> = all
        .iter()
        .filter(|e| e.path.starts_with("/usr/lib/systemd/system/"))
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(packaged, units);

    // The files themselves.
    let tree = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("deb-test/tree-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tree);
    ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree));
    let at = |p: &str| tree.join(p.trim_start_matches('/'));
    for unit in &units {
        let t = text(&at(unit));
        assert!(
            !t.contains("@PREFIX@") && !t.contains("@RUNDIR@"),
            "{unit} has a placeholder left:\n{t}"
        );
        assert!(t.starts_with("# From the paysys Debian package"), "{unit}");
    }
    let osmp = text(&at("/usr/lib/systemd/system/paysys-osmp.service"));
    for line in [
        "\nExecStart=/usr/lib/cgi-bin/osmp.cgi\n",
        "\nEnvironment=PAYSYS_CONFIG=/usr/lib/paysys/etc/paysys.toml\n",
        "\nReadWritePaths=/var/log/paysys\n",
    ] {
        assert!(osmp.contains(line), "paysys-osmp.service lacks {line:?}");
    }
    assert!(text(&at("/usr/lib/systemd/system/paysys-check.service"))
        .contains("\nReadWritePaths=/var/log/paysys /var/cache/paysys\n"));
    assert!(
        text(&at("/usr/lib/systemd/system/paysys-sweep.service")).contains(
            "\nExecStart=/usr/lib/paysys/bin/paysys sweep /usr/lib/paysys/etc/paysys.toml\n"
        )
    );
    assert!(text(&at("/usr/lib/systemd/system/paysys-osmp.socket"))
        .contains("\nListenStream=/run/paysys/osmp.sock\n"));
    assert!(text(&at("/etc/logrotate.d/paysys")).contains("\n/var/log/paysys/paysys_check.log {\n"));
    // The config is the example under a header that says where things are.
    let config = text(&at("/etc/paysys/paysys.toml"));
    assert!(config.ends_with(&text(&repo().join("etc/paysys.toml.example"))));
    assert!(config.starts_with("# /etc/paysys/paysys.toml, from the paysys Debian package"));
    let examples = "/usr/share/doc/paysys/examples";
    for f in ["nginx/paysys.conf", "nginx/paysys-fastcgi.conf"] {
        let t = text(&at(&format!("{examples}/{f}")));
        assert!(!t.contains("@PREFIX@") && !t.contains("@RUNDIR@"), "{f}");
        assert!(
            t.contains("fastcgi_param SCRIPT_FILENAME /usr/lib$fastcgi_script_name;"),
            "{f}"
        );
        assert!(
            t.contains("fastcgi_param PAYSYS_CONFIG   /usr/lib/paysys/etc/paysys.toml;"),
            "{f}"
        );
        // Other packages' CGIs in /usr/lib/cgi-bin are not served.
        assert!(!t.contains("[^/]+\\.cgi"), "{f} serves every CGI:\n{t}");
        assert!(
            t.contains("location ~ ^/cgi-bin/(osmp|paysys_check)\\.cgi(/|$) {"),
            "{f}"
        );
    }
    let apache = text(&at(&format!("{examples}/apache/paysys.conf")));
    assert!(apache.contains("ScriptAlias /cgi-bin/ \"/usr/lib/cgi-bin/\""));
    assert!(apache.contains("SetEnv PAYSYS_CONFIG \"/usr/lib/paysys/etc/paysys.toml\""));
    assert!(at(&format!("{examples}/apache/paysys-fcgid.conf")).is_file());
    assert_eq!(
        text(&at(&format!("{examples}/paysys.toml.example"))),
        text(&repo().join("etc/paysys.toml.example"))
    );
    assert!(text(&at("/usr/share/doc/paysys/copyright")).starts_with("Format: "));
    assert!(gunzip(&at("/usr/share/doc/paysys/changelog.Debian.gz"))
        .starts_with(&format!("paysys ({version}) unstable; urgency=medium\n")));
    // The packaged admin tool is the one built (stripped): the same help.
    assert_eq!(
        stdout(Command::new(at("/usr/lib/paysys/bin/paysys")).arg("--help")),
        stdout(Command::new(env!("CARGO_BIN_EXE_paysys")).arg("--help"))
    );

    // A man page per command, saying what its --help says, line for line.
    let man1 = "/usr/share/man/man1";
    let mut pages: Vec<String> = all
        .iter()
        .filter(|e| e.path.starts_with(&format!("{man1}/")))
        .map(|e| e.path[man1.len() + 1..].to_string())
        .collect();
    pages.sort();
    let mut expect: Vec<String> = commands()
        .iter()
        .map(|c| format!("paysys-{c}.1.gz"))
        .collect();
    expect.push("paysys.1.gz".into());
    expect.sort();
    assert_eq!(pages, expect);
    for page in &pages {
        let args: Vec<&str> = match page.strip_prefix("paysys-") {
            Some(rest) => vec![rest.trim_end_matches(".1.gz"), "--help"],
            None => vec!["--help"],
        };
        let help = stdout(Command::new(env!("CARGO_BIN_EXE_paysys")).args(&args));
        let roff = gunzip(&at(&format!("{man1}/{page}")));
        assert!(roff.contains("\n.SH NAME\n"), "{page}");
        let shown = man_text(&roff);
        let mut lines = shown.iter().map(|l| l.trim());
        for (i, want) in help.lines().enumerate() {
            let want = if i == 0 {
                want.strip_prefix("usage:").unwrap_or(want).trim()
            } else {
                want.trim()
            };
            if want.is_empty() {
                continue;
            }
            assert!(
                lines.any(|l| l == want),
                "{page} lacks, or has out of order, the line of `paysys {}`: {want:?}\n{roff}",
                args.join(" ")
            );
        }
    }
    let _ = fs::remove_dir_all(&tree);

    // lintian: no errors (the warnings it gives are listed in INSTALL, section 18).
    if !have("lintian") {
        return skip("lintian is not installed: the package was not checked by it");
    }
    let out = run(Command::new("lintian")
        .arg("--fail-on")
        .arg("error")
        .arg(deb));
    let said = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian:\n{said}");
    assert!(
        out.status.success() && !said.lines().any(|l| l.starts_with("E:")),
        "lintian reports errors:\n{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The package's state in dpkg's database: "installed", "config-files", or "" when dpkg
/// knows none.
fn status() -> String {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", "paysys"]));
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::new()
    }
}

fn apt_get(args: &[&str]) -> String {
    ok(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-y", "-q", "-o", "DPkg::Lock::Timeout=300"])
        .args(args))
}

/// Purges the package if a failing test left it installed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if !status().is_empty() {
            let _ = Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args([
                    "-y",
                    "-q",
                    "-o",
                    "DPkg::Lock::Timeout=300",
                    "purge",
                    "paysys",
                ])
                .output();
        }
    }
}

fn exists(path: &str) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Files systemd's helpers keep about our units (enablement, masks, their records).
fn systemd_traces() -> Vec<String> {
    let out = stdout(Command::new("sh").args([
        "-c",
        "find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
         /var/lib/systemd/deb-systemd-helper-masked -name 'paysys-*' 2>/dev/null || true",
    ]));
    out.lines().map(str::to_string).collect()
}

/// Tables of the test database and the number of rows each holds.
fn database_state(db: &TestDb) -> Vec<(String, u64)> {
    let mut conn = db.conn();
    let tables: Vec<String> = conn.query("SHOW TABLES").expect("show tables");
    tables
        .into_iter()
        .map(|t| {
            let n: u64 = conn
                .query_first(format!("SELECT COUNT(*) FROM `{t}`"))
                .expect("count")
                .unwrap_or(0);
            (t, n)
        })
        .collect()
}

/// A user's uid and primary gid, from /etc/passwd.
fn user_ids(name: &str) -> (u32, u32) {
    text(Path::new("/etc/passwd"))
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0] != name {
                return None;
            }
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        })
        .unwrap_or_else(|| panic!("{name} is not in /etc/passwd"))
}

fn result_of(body: &str) -> i32 {
    let start = body.find("<result>").expect("a result") + "<result>".len();
    let end = body[start..].find("</result>").expect("</result>") + start;
    body[start..end].parse().expect("a number")
}

#[test]
fn apt_installs_serves_removes_and_purges_it() {
    if !is_root() {
        return skip("not root: installing a package needs root");
    }
    for tool in ["apt-get", "dpkg", "dpkg-query", "dpkg-statoverride"] {
        if !have(tool) {
            return skip(&format!("{tool} is not installed"));
        }
    }
    let server = common::server_url();
    if server.contains("socket=") {
        return skip(&format!(
            "the database URL {server} is a socket URL; the CGI runs as www-data behind the \
             web server and needs a TCP URL"
        ));
    }
    let Some(deb) = package() else {
        return skip("dpkg-deb is not installed");
    };
    // One install test at a time on this machine, whichever tree it runs from.
    let lock_dir = if Path::new("/run/lock").is_dir() {
        PathBuf::from("/run/lock")
    } else {
        std::env::temp_dir()
    };
    let _lock = lock(&lock_dir.join("paysys-deb-test.lock"));
    let before = status();
    assert!(
        before.is_empty() || before == "not-installed",
        "a paysys package is on this machine already (dpkg -l paysys: {before}); this test \
         installs and purges its own: apt-get purge paysys first"
    );
    let db = TestDb::new();
    let all = contents(deb);
    let existed_before: BTreeSet<String> = all
        .iter()
        .filter(|e| exists(&e.path))
        .map(|e| e.path.clone())
        .collect();
    for path in ["/etc/paysys", "/var/log/paysys", "/var/cache/paysys", BASE] {
        assert!(!exists(path), "{path} is there before the install");
    }
    let traces_before = systemd_traces();
    let in_etc = |traces: &[String]| -> Vec<String> {
        traces
            .iter()
            .filter(|p| p.starts_with("/etc/"))
            .cloned()
            .collect()
    };

    let _installed = Installed;
    let said = apt_get(&["install", deb.to_str().expect("utf-8")]);
    assert_eq!(status(), "installed", "{said}");
    // dpkg knows exactly the package's files.
    let listed: BTreeSet<String> = stdout(Command::new("dpkg").args(["-L", "paysys"]))
        .lines()
        .map(|l| {
            if l == "/." {
                "/".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let packaged: BTreeSet<String> = all.iter().map(|e| e.path.clone()).collect();
    assert_eq!(listed, packaged);

    // postinst: the config for the web server's group, the log and cache for its user.
    let (www_uid, www_gid) = user_ids("www-data");
    let config = fs::metadata("/etc/paysys/paysys.toml").expect("the config");
    assert_eq!(
        (config.mode() & 0o7777, config.uid(), config.gid()),
        (0o640, 0, www_gid)
    );
    assert_eq!(
        stdout(Command::new("dpkg-statoverride").args(["--list", "/etc/paysys/paysys.toml"])),
        "root www-data 640 /etc/paysys/paysys.toml\n"
    );
    for dir in ["/var/log/paysys", "/var/cache/paysys"] {
        let m = fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(m.is_dir());
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o750, www_uid), "{dir}");
    }
    assert_eq!(
        fs::canonicalize("/usr/lib/cgi-bin/osmp.cgi").expect("the link"),
        PathBuf::from("/usr/lib/paysys/cgi-bin/osmp.cgi")
    );
    assert_eq!(
        in_etc(&systemd_traces()),
        in_etc(&traces_before),
        "installed, not enabled"
    );
    // systemd reads the units as they are installed (their executables, sockets, timers).
    if have("systemd-analyze") {
        let installed: Vec<String> = all
            .iter()
            .filter(|e| e.path.starts_with("/usr/lib/systemd/system/"))
            .map(|e| e.path.clone())
            .collect();
        ok(Command::new("systemd-analyze")
            .arg("verify")
            .args(&installed));
    }

    // The packaged config, pointed at the test database by an overlay an admin would write.
    let overlay = Path::new("/etc/paysys/paysys.d/50-test.toml");
    fs::write(
        overlay,
        format!("[database]\nurl = \"{}\"\nbilling = \"nodeny\"\n", db.url),
    )
    .expect("write the overlay");
    fs::set_permissions(overlay, fs::Permissions::from_mode(0o640)).expect("chmod");
    std::os::unix::fs::chown(overlay, Some(0), Some(www_gid)).expect("chgrp");
    let checked = ok(Command::new("/usr/bin/paysys")
        .arg("check-config")
        .env_remove("PAYSYS_CONFIG"));
    assert!(checked.contains("paysys.d/50-test.toml"), "{checked}");

    // A check and a pay behind nginx + fcgiwrap, through the package's nginx example: the
    // URL /cgi-bin/osmp.cgi is /usr/lib/cgi-bin/osmp.cgi.
    let example = PathBuf::from("/usr/share/doc/paysys/examples/nginx/paysys.conf");
    let opts = Options {
        snippet: Some(example),
        ..Options::default()
    };
    let balance_before = db.balance(5907);
    {
        let Some(web) = WebServer::start(Kind::Nginx, Path::new(BASE), &opts).expect("start nginx")
        else {
            return skip("nginx or fcgiwrap is not installed");
        };
        let txn = format!("{}", std::process::id());
        let check = web
            .get(
                &format!("/cgi-bin/osmp.cgi?command=check&txn_id={txn}&account=59071&sum=10.00"),
                &[],
            )
            .expect("GET check");
        assert_eq!(
            (check.status, result_of(&check.body)),
            (200, 0),
            "{check:?}\n{}",
            web.logs()
        );
        let pay = web
            .get(
                &format!(
                    "/cgi-bin/osmp.cgi?command=pay&txn_id={txn}&account=59071&sum=10.00&txn_date={}",
                    txn_date(-1)
                ),
                &[],
            )
            .expect("GET pay");
        assert_eq!(
            (pay.status, result_of(&pay.body)),
            (200, 0),
            "{pay:?}\n{}",
            web.logs()
        );
        assert!(pay.body.contains("<prv_txn>"), "{}", pay.body);
        // paysys_check.cgi's link answers too.
        let other = web
            .get(
                &format!(
                    "/cgi-bin/paysys_check.cgi?command=check&txn_id={txn}1&account=59071&sum=5.00"
                ),
                &[],
            )
            .expect("GET paysys_check.cgi");
        assert_eq!(
            (other.status, result_of(&other.body)),
            (200, 0),
            "{other:?}\n{}",
            web.logs()
        );
    }
    // Apache with the package's Apache example (the same mapping as Debian's serve-cgi-bin).
    {
        let opts = Options {
            snippet: Some(PathBuf::from(
                "/usr/share/doc/paysys/examples/apache/paysys.conf",
            )),
            ..Options::default()
        };
        let Some(web) =
            WebServer::start(Kind::Apache, Path::new(BASE), &opts).expect("start Apache")
        else {
            return skip("apache2 or its mod_cgid is not installed");
        };
        let check = web
            .get(
                "/cgi-bin/osmp.cgi?command=check&txn_id=2&account=59071&sum=1.00",
                &[],
            )
            .expect("GET check");
        assert_eq!(
            (check.status, result_of(&check.body)),
            (200, 0),
            "{check:?}\n{}",
            web.logs()
        );
    }
    // Without PAYSYS_CONFIG (serve-cgi-bin sets none) the CGI finds the config through its
    // link: /usr/lib/cgi-bin/osmp.cgi is /usr/lib/paysys/cgi-bin/osmp.cgi, and
    // ../etc/paysys.toml from there is /etc/paysys/paysys.toml.
    let direct = run(Command::new("/usr/lib/cgi-bin/osmp.cgi")
        .uid(www_uid)
        .gid(www_gid)
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "GET")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env(
            "QUERY_STRING",
            "command=check&txn_id=3&account=59071&sum=1.00",
        ));
    let body = String::from_utf8_lossy(&direct.stdout);
    assert_eq!(result_of(&body), 0, "{body}");
    assert_ne!(balance_before, db.balance(5907));
    assert_eq!(db.balance(5907), "110.00");
    assert_eq!(db.txns(), 1);
    // The log: in /var/log/paysys, written by the web server's user, a line per request.
    let log = Path::new("/var/log/paysys/paysys_check.log");
    let lines = text(log);
    assert_eq!(lines.lines().count(), 5, "{lines}");
    assert!(
        lines.lines().nth(1).is_some_and(|l| l.contains("cmd=pay")),
        "{lines}"
    );
    assert_eq!(fs::metadata(log).expect("the log").uid(), www_uid);
    // logrotate takes the packaged file and the directory as they are (it refuses a
    // directory others may write to); -d rotates nothing.
    if have("logrotate") {
        let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-test/logrotate.state");
        let _ = fs::remove_file(&state);
        let said = ok(Command::new("logrotate")
            .arg("-d")
            .arg("-s")
            .arg(&state)
            .arg("/etc/logrotate.d/paysys"));
        assert!(
            said.contains("considering log /var/log/paysys/paysys_check.log")
                && !said.contains("error"),
            "{said}"
        );
        let _ = fs::remove_file(&state);
    }
    let db_after_pay = database_state(&db);

    // remove: the program goes; the config (with the admin's overlay) and the log stay.
    apt_get(&["remove", "paysys"]);
    assert_eq!(status(), "config-files");
    for path in [
        "/usr/lib/cgi-bin/osmp.cgi",
        "/usr/bin/paysys",
        BASE,
        "/usr/lib/systemd/system/paysys-osmp.service",
        "/var/cache/paysys",
    ] {
        assert!(!exists(path), "{path} is still there after apt-get remove");
    }
    assert!(exists("/etc/paysys/paysys.toml") && overlay.exists());
    assert!(log.exists());

    // purge: nothing of the package is left, and no database was touched.
    apt_get(&["purge", "paysys"]);
    let after = status();
    assert!(after.is_empty() || after == "not-installed", "{after}");
    for e in &all {
        if existed_before.contains(&e.path) {
            assert!(exists(&e.path), "{} was there before and must stay", e.path);
        } else {
            assert!(!exists(&e.path), "{} is left after the purge", e.path);
        }
    }
    for path in ["/etc/paysys", "/var/log/paysys", "/var/cache/paysys"] {
        assert!(!exists(path), "{path} is left after the purge");
    }
    assert!(
        !stdout(Command::new("dpkg-statoverride").arg("--list")).contains("/etc/paysys"),
        "the stat override is left after the purge"
    );
    assert_eq!(systemd_traces(), traces_before);
    assert_eq!(database_state(&db), db_after_pay);
}
