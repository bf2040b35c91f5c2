//! `make install` / `make uninstall` (scripts/install.sh) into temporary prefixes.
//!
//! The tests run `make install-files`, which is `make install` without the release build,
//! with the executables cargo built for this test run (`OSMP_BIN`, `PAYSYS_BIN`); that
//! `make install` builds first is checked with `make -n`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The id of a user (`/etc/passwd`) or group (`/etc/group`), if it exists.
fn id_of(file: &str, name: &str) -> Option<u32> {
    fs::read_to_string(file).ok()?.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// A fresh directory under the temp dir (the prefix itself goes inside it, not yet created).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "paysys-install-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// `make <target> VAR=value…` in the repository; returns stdout + stderr, panics on failure.
fn make(target: &str, vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("make");
    cmd.current_dir(repo())
        .arg("--no-print-directory")
        .arg(target)
        .arg(format!("OSMP_BIN={}", env!("CARGO_BIN_EXE_osmp")))
        .arg(format!(
            "PAYSYS_CHECK_BIN={}",
            env!("CARGO_BIN_EXE_paysys_check")
        ))
        .arg(format!("PAYSYS_BIN={}", env!("CARGO_BIN_EXE_paysys")));
    for (name, value) in vars {
        cmd.arg(format!("{name}={value}"));
    }
    let out = cmd.output().expect("run make (is it installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "make {target} {vars:?} failed:\n{text}"
    );
    text
}

fn install(prefix: &Path) -> String {
    make(
        "install-files",
        &[("PREFIX", prefix.to_str().expect("utf-8"))],
    )
}

fn uninstall(prefix: &Path) -> String {
    make("uninstall", &[("PREFIX", prefix.to_str().expect("utf-8"))])
}

/// Every file and directory under `root`, relative, directories with a trailing `/`.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sql_files() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repo().join("sql"))
        .expect("sql/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    assert!(names.contains(&"paysys.sql".to_string()), "{names:?}");
    names
}

/// What an install into an empty prefix leaves there.
fn full_install() -> BTreeSet<String> {
    let mut all = set(&[
        "bin/",
        "bin/paysys",
        "cgi-bin/",
        "cgi-bin/osmp.cgi",
        "cgi-bin/paysys_check.cgi",
        "etc/",
        "etc/apache/",
        "etc/apache/paysys-fcgid.conf",
        "etc/apache/paysys.conf",
        "etc/logrotate.d/",
        "etc/logrotate.d/paysys",
        "etc/nginx/",
        "etc/nginx/paysys-fastcgi.conf",
        "etc/nginx/paysys.conf",
        "etc/paysys.toml",
        "etc/paysys.toml.example",
        "etc/systemd/",
        "etc/systemd/paysys-audit.service",
        "etc/systemd/paysys-audit.timer",
        "etc/systemd/paysys-check.service",
        "etc/systemd/paysys-check.socket",
        "etc/systemd/paysys-osmp.service",
        "etc/systemd/paysys-osmp.socket",
        "etc/systemd/paysys-requests-purge.service",
        "etc/systemd/paysys-requests-purge.timer",
        "etc/systemd/paysys-statement.service",
        "etc/systemd/paysys-statement.timer",
        "etc/systemd/paysys-sweep.service",
        "etc/systemd/paysys-sweep.timer",
        "share/",
        "share/paysys/",
        "share/paysys/installed-files",
        "sql/",
        "var/",
        "var/cache/",
        "var/log/",
    ]);
    all.extend(sql_files().iter().map(|n| format!("sql/{n}")));
    all
}

/// The RUNDIR an install names when none is given.
const DEFAULT_RUNDIR: &str = "/run/paysys";

/// The web-server, logrotate and systemd files, each with `@PREFIX@` (and `@RUNDIR@`).
const SNIPPETS: [&str; 17] = [
    "etc/apache/paysys.conf",
    "etc/apache/paysys-fcgid.conf",
    "etc/nginx/paysys.conf",
    "etc/nginx/paysys-fastcgi.conf",
    "etc/logrotate.d/paysys",
    "etc/systemd/paysys-osmp.socket",
    "etc/systemd/paysys-osmp.service",
    "etc/systemd/paysys-check.socket",
    "etc/systemd/paysys-check.service",
    "etc/systemd/paysys-sweep.service",
    "etc/systemd/paysys-sweep.timer",
    "etc/systemd/paysys-statement.service",
    "etc/systemd/paysys-statement.timer",
    "etc/systemd/paysys-requests-purge.service",
    "etc/systemd/paysys-requests-purge.timer",
    "etc/systemd/paysys-audit.service",
    "etc/systemd/paysys-audit.timer",
];

/// Files, modes, contents and the `@PREFIX@` substitution of an install at `prefix`
/// (`written_as`: the PREFIX the files must name; differs from `prefix` with DESTDIR).
fn assert_installed(prefix: &Path, written_as: &str) {
    assert_installed_with(prefix, written_as, DEFAULT_RUNDIR);
}

/// [`assert_installed`] for an install with `RUNDIR=rundir`.
fn assert_installed_with(prefix: &Path, written_as: &str, rundir: &str) {
    for (file, from) in [
        ("cgi-bin/osmp.cgi", env!("CARGO_BIN_EXE_osmp")),
        (
            "cgi-bin/paysys_check.cgi",
            env!("CARGO_BIN_EXE_paysys_check"),
        ),
        ("bin/paysys", env!("CARGO_BIN_EXE_paysys")),
    ] {
        assert_eq!(mode(&prefix.join(file)), 0o755, "{file}");
        assert!(read(&prefix.join(file)) == read(Path::new(from)), "{file}");
    }
    let example = prefix.join("etc/paysys.toml.example");
    assert_eq!(mode(&example), 0o644);
    assert_eq!(
        read(&example),
        read(&repo().join("etc/paysys.toml.example"))
    );
    for name in sql_files() {
        let file = prefix.join("sql").join(&name);
        assert_eq!(mode(&file), 0o644, "{name}");
        assert_eq!(read(&file), read(&repo().join("sql").join(&name)), "{name}");
    }

    for (file, expect) in [
        (
            "etc/apache/paysys.conf",
            vec![
                format!("ScriptAlias /cgi-bin/ \"{written_as}/cgi-bin/\""),
                format!("<Directory \"{written_as}/cgi-bin\">"),
                format!("SetEnv PAYSYS_CONFIG \"{written_as}/etc/paysys.toml\""),
            ],
        ),
        (
            "etc/nginx/paysys.conf",
            vec![
                format!("fastcgi_param SCRIPT_FILENAME {written_as}$fastcgi_script_name;"),
                format!("fastcgi_param PAYSYS_CONFIG   {written_as}/etc/paysys.toml;"),
            ],
        ),
        (
            "etc/logrotate.d/paysys",
            vec![format!("\n{written_as}/var/log/paysys_check.log {{\n")],
        ),
        (
            "etc/apache/paysys-fcgid.conf",
            vec![
                format!("ScriptAlias /cgi-bin/ \"{written_as}/cgi-bin/\""),
                format!("<Directory \"{written_as}/cgi-bin\">"),
                "<Files \"osmp.cgi\">\n        SetHandler fcgid-script\n".to_string(),
                format!("FcgidInitialEnv PAYSYS_CONFIG \"{written_as}/etc/paysys.toml\""),
            ],
        ),
        (
            "etc/nginx/paysys-fastcgi.conf",
            vec![
                format!("fastcgi_pass unix:{rundir}/osmp.sock;"),
                "fastcgi_pass unix:/run/fcgiwrap.socket;".to_string(),
                format!("fastcgi_param PAYSYS_CONFIG   {written_as}/etc/paysys.toml;"),
            ],
        ),
        (
            "etc/systemd/paysys-osmp.socket",
            vec![
                format!("\nListenStream={rundir}/osmp.sock\n"),
                "\nSocketUser=www-data\n".to_string(),
            ],
        ),
        (
            "etc/systemd/paysys-check.socket",
            vec![format!("\nListenStream={rundir}/paysys_check.sock\n")],
        ),
        (
            "etc/systemd/paysys-check.service",
            vec![
                format!("\nExecStart={written_as}/cgi-bin/paysys_check.cgi\n"),
                "\nRequires=paysys-check.socket\n".to_string(),
                format!("\nReadWritePaths={written_as}/var/log {written_as}/var/cache\n"),
            ],
        ),
        (
            "etc/systemd/paysys-audit.service",
            vec![
                format!("\nExecStart={written_as}/bin/paysys audit {written_as}/etc/paysys.toml\n"),
                format!("\nReadWritePaths={written_as}/var/log\n"),
            ],
        ),
        (
            "etc/systemd/paysys-osmp.service",
            vec![
                format!("\nExecStart={written_as}/cgi-bin/osmp.cgi\n"),
                "\nStandardInput=socket\n".to_string(),
                "\nStandardOutput=journal\n".to_string(),
                format!("\nReadWritePaths={written_as}/var/log\n"),
            ],
        ),
    ] {
        let path = prefix.join(file);
        assert_eq!(mode(&path), 0o644, "{file}");
        let got = text(&path);
        assert!(
            !got.contains("@PREFIX@") && !got.contains("@RUNDIR@"),
            "{file} still has a placeholder:\n{got}"
        );
        for line in expect {
            assert!(got.contains(&line), "{file} lacks {line:?}:\n{got}");
        }
        // Apart from the header and the substitution, the snippet as shipped.
        let shipped = text(&repo().join(file))
            .replace("@PREFIX@", written_as)
            .replace("@RUNDIR@", rundir);
        assert!(
            got.ends_with(&shipped),
            "{file} differs from the shipped one"
        );
    }

    let log_dir = prefix.join("var/log");
    assert!(log_dir.is_dir());
    assert_eq!(mode(&log_dir), 0o750);
    if is_root() {
        if let Some(uid) = id_of("/etc/passwd", "www-data") {
            assert_eq!(
                fs::metadata(&log_dir).expect("var/log").uid(),
                uid,
                "var/log is www-data's"
            );
        }
    }
}

fn manifest(prefix: &Path) -> BTreeSet<String> {
    text(&prefix.join("share/paysys/installed-files"))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn install_into_an_empty_prefix_and_uninstall_all_of_it() {
    let scratch = Scratch::new("empty");
    let prefix = scratch.0.join("paysys");
    install(&prefix);
    assert_eq!(tree(&prefix), full_install());
    assert_installed(&prefix, prefix.to_str().unwrap());

    // A new config, from the example: 0640, group www-data (it holds the DB password).
    let config = prefix.join("etc/paysys.toml");
    assert_eq!(read(&config), read(&repo().join("etc/paysys.toml.example")));
    assert_eq!(mode(&config), 0o640);
    if is_root() {
        if let Some(gid) = id_of("/etc/group", "www-data") {
            assert_eq!(fs::metadata(&config).expect("config").gid(), gid);
        }
    }
    let files: BTreeSet<String> = full_install()
        .into_iter()
        .filter(|f| !f.ends_with('/') && f != "share/paysys/installed-files")
        .collect();
    assert_eq!(manifest(&prefix), files);

    // Again over itself: same files, same manifest (still listing the config it created).
    install(&prefix);
    assert_eq!(tree(&prefix), full_install());
    assert_eq!(manifest(&prefix), files);
    assert_installed(&prefix, prefix.to_str().unwrap());

    // The config is the untouched example: uninstall takes it, and every empty directory.
    let out = uninstall(&prefix);
    assert!(!prefix.exists(), "{out}\nleft: {:?}", tree(&prefix));
}

#[test]
fn an_existing_config_survives_install_and_uninstall() {
    let scratch = Scratch::new("existing");
    let prefix = scratch.0.join("abills");
    fs::create_dir_all(prefix.join("etc")).unwrap();
    fs::create_dir_all(prefix.join("var/log")).unwrap();
    let config = prefix.join("etc/paysys.toml");
    let mine = b"# mine\n[database]\nurl = \"mysql://paysys:pw@127.0.0.1/nodeny\"\n\xd0\x96\n";
    fs::write(&config, mine).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::metadata(&config).unwrap();
    // Someone else's files in the same prefix (ABillS has its own etc/), and an old log.
    fs::write(prefix.join("etc/config.pl"), "ABillS's own\n").unwrap();
    fs::write(prefix.join("var/log/paysys_check.log"), "an old line\n").unwrap();

    let out = install(&prefix);
    assert!(out.contains("kept the existing"), "{out}");
    assert_installed(&prefix, prefix.to_str().unwrap());
    let after = fs::metadata(&config).unwrap();
    assert_eq!(read(&config), mine, "the config, byte for byte");
    assert_eq!(
        (after.mode(), after.uid(), after.gid(), after.ino()),
        (before.mode(), before.uid(), before.gid(), before.ino())
    );
    assert!(!manifest(&prefix).contains("etc/paysys.toml"));
    let mut expect = full_install();
    expect.insert("etc/config.pl".into());
    expect.insert("var/log/paysys_check.log".into());
    assert_eq!(tree(&prefix), expect);

    uninstall(&prefix);
    assert_eq!(
        tree(&prefix),
        set(&[
            "etc/",
            "etc/config.pl",
            "etc/paysys.toml",
            "var/",
            "var/log/",
            "var/log/paysys_check.log",
        ])
    );
    assert_eq!(read(&config), mine);
    assert_eq!(
        text(&prefix.join("var/log/paysys_check.log")),
        "an old line\n"
    );
}

#[test]
fn abills_own_paysys_check_cgi_is_kept_aside_and_put_back() {
    let scratch = Scratch::new("abills-cgi");
    let prefix = scratch.0.join("abills");
    fs::create_dir_all(prefix.join("cgi-bin")).unwrap();
    let perl = b"#!/usr/bin/perl\n# ABillS's paysys_check.cgi\n";
    fs::write(prefix.join("cgi-bin/paysys_check.cgi"), perl).unwrap();

    let out = install(&prefix);
    assert!(out.contains("as paysys_check.cgi.abills"), "{out}");
    assert_eq!(read(&prefix.join("cgi-bin/paysys_check.cgi.abills")), perl);
    assert_installed(&prefix, prefix.to_str().unwrap());
    // Installing again replaces ours and leaves the kept one alone.
    let out = install(&prefix);
    assert!(!out.contains("paysys_check.cgi.abills"), "{out}");
    assert_eq!(read(&prefix.join("cgi-bin/paysys_check.cgi.abills")), perl);

    uninstall(&prefix);
    assert_eq!(
        tree(&prefix),
        set(&["cgi-bin/", "cgi-bin/paysys_check.cgi"]),
        "ABillS's script is back"
    );
    assert_eq!(read(&prefix.join("cgi-bin/paysys_check.cgi")), perl);
}

#[test]
fn uninstall_keeps_an_edited_config_and_the_logs() {
    let scratch = Scratch::new("edited");
    let prefix = scratch.0.join("paysys");
    install(&prefix);
    let config = prefix.join("etc/paysys.toml");
    let mut edited = read(&config);
    edited.extend_from_slice(b"# edited after the install\n");
    fs::write(&config, &edited).unwrap();
    fs::write(prefix.join("var/log/paysys_check.log"), "a line\n").unwrap();
    fs::write(prefix.join("var/log/paysys_check.log.1.gz"), "rotated\n").unwrap();

    let out = uninstall(&prefix);
    assert!(out.contains("kept"), "{out}");
    assert_eq!(
        tree(&prefix),
        set(&[
            "etc/",
            "etc/paysys.toml",
            "var/",
            "var/log/",
            "var/log/paysys_check.log",
            "var/log/paysys_check.log.1.gz",
        ])
    );
    assert_eq!(read(&config), edited);

    // Uninstalling twice is harmless; so is uninstalling from nowhere.
    uninstall(&prefix);
    assert_eq!(read(&config), edited);
    uninstall(&scratch.0.join("never-installed"));
}

#[test]
fn destdir_stages_files_that_name_the_real_prefix() {
    let scratch = Scratch::new("destdir");
    let stage = scratch.0.join("stage");
    let vars = [
        ("PREFIX", "/usr/abills"),
        ("DESTDIR", stage.to_str().unwrap()),
    ];
    make("install-files", &vars);
    let staged = stage.join("usr/abills");
    assert_eq!(tree(&staged), full_install());
    assert_installed(&staged, "/usr/abills");
    let stage_str = stage.to_str().unwrap();
    for file in SNIPPETS {
        assert!(!text(&staged.join(file)).contains(stage_str), "{file}");
    }

    make("uninstall", &vars);
    assert!(!staged.exists(), "left: {:?}", tree(&staged));
}

#[test]
fn make_install_builds_before_copying() {
    let out = Command::new("make")
        .current_dir(repo())
        .args(["-n", "--no-print-directory", "install"])
        .output()
        .expect("make -n install");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let build = text.find("build --release").expect("builds");
    let copy = text.find("scripts/install.sh install").expect("installs");
    assert!(build < copy, "{text}");
    assert!(text.contains("PREFIX=\"/usr/local/paysys\""), "{text}");

    // A relative PREFIX is refused before anything is written.
    let out = Command::new("make")
        .current_dir(repo())
        .args([
            "--no-print-directory",
            "install-files",
            "PREFIX=relative/dir",
        ])
        .output()
        .expect("make install-files");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("absolute"));
    assert!(!repo().join("relative").exists());
}

#[test]
fn rundir_names_the_fastcgi_socket() {
    let scratch = Scratch::new("rundir");
    let prefix = scratch.0.join("paysys");
    let p = prefix.to_str().unwrap();
    make(
        "install-files",
        &[("PREFIX", p), ("RUNDIR", "/run/p&y|s\\x/")],
    );
    assert_installed_with(&prefix, p, "/run/p&y|s\\x");
    for file in SNIPPETS {
        let got = text(&prefix.join(file));
        let names_rundir = got.contains("/run/p&y|s\\x/osmp.sock");
        assert_eq!(
            names_rundir,
            file.contains("fastcgi") || file.contains("systemd/paysys-osmp.socket"),
            "{file}:\n{got}"
        );
        assert!(!got.contains("/run/paysys/"), "{file}:\n{got}");
        // The header says which RUNDIR a file was written for, where it names one.
        let header = got.lines().next().unwrap_or_default();
        assert_eq!(
            header.contains("RUNDIR=/run/p&y|s\\x"),
            text(&repo().join(file)).contains("@RUNDIR@"),
            "{file}: {header}"
        );
    }
    uninstall(&prefix);
    assert!(!prefix.exists(), "left: {:?}", tree(&prefix));

    // A relative RUNDIR is refused before anything is written.
    let out = Command::new("make")
        .current_dir(repo())
        .args(["--no-print-directory", "install-files"])
        .arg(format!("PREFIX={p}"))
        .arg("RUNDIR=run/paysys")
        .arg(format!("OSMP_BIN={}", env!("CARGO_BIN_EXE_osmp")))
        .arg(format!(
            "PAYSYS_CHECK_BIN={}",
            env!("CARGO_BIN_EXE_paysys_check")
        ))
        .arg(format!("PAYSYS_BIN={}", env!("CARGO_BIN_EXE_paysys")))
        .output()
        .expect("make install-files");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUNDIR must be an absolute path"));
    assert!(!prefix.exists());
}
