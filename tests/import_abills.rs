//! `paysys import-abills`: ABillS's paysys_connect as a paysys.d/ overlay, read from the
//! ABillS fixture database by the real executable, and loaded back by `check-config`.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestDb;
use paysys::config::{Config, ProtocolKind};

fn paysys(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn abills_db() -> TestDb {
    TestDb::with_fixture(
        &std::fs::read_to_string(common::repo().join("sql/abills.sql")).expect("sql/abills.sql"),
    )
}

/// An install base whose main config points at `db_url` with billing = "abills", plus
/// `system` appended.
struct Base {
    dir: std::path::PathBuf,
}

impl Base {
    fn new(db_url: &str, system: &str) -> Base {
        let dir = std::env::temp_dir().join(format!(
            "paysys_import_{}_{}",
            std::process::id(),
            db_url.rsplit('/').next().unwrap_or("db")
        ));
        std::fs::create_dir_all(dir.join("etc/paysys.d")).unwrap();
        std::fs::write(
            dir.join("etc/paysys.toml"),
            format!(
                "[database]\nurl = \"{db_url}\"\nbilling = \"abills\"\n\n[log]\n\
                 file = \"var/log/paysys_check.log\"\n{system}"
            ),
        )
        .unwrap();
        Base { dir }
    }

    fn config(&self) -> String {
        self.dir
            .join("etc/paysys.toml")
            .to_string_lossy()
            .into_owned()
    }

    fn overlay(&self) -> std::path::PathBuf {
        self.dir.join("etc/paysys.d/50-abills.toml")
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const OSMP_BLOCK: &str = "\
# ABillS paysys_connect id 1: Osmp (Osmp.pm), paysys_id 44
[[system]]
name = \"osmp\"
protocol = \"osmp\"
allow = [\"192.0.2.10\", \"192.0.2.11\"]
# account = [\"uid\"]  # ABillS's PAYSYS_OSMP_ACCOUNT_KEY: uid (default), login, contract_id
abills_id = 44
payment_method = 10
description = \"OSMP Payments\"
txn_prefix = \"OSM\"
# Sums: ABillS's script credited any sum above 0 that a payment system sent. Its config
# has no minimum or maximum per payment system ($conf{PAYSYS_MIN_SUM} and
# $conf{PAYSYS_MAX_SUM} bound only what a subscriber enters on the user portal, not the
# systems' requests), so nothing here is read from config.pl. min_sum \"0.01\" and max_sum
# \"none\" accept what ABillS accepted: any sum up to 99999999.99, the most its payments.sum
# holds. Set a sum instead of \"none\" to refuse larger payments (242, nod9).
min_sum = \"0.01\"
max_sum = \"none\"
# txn_date: ABillS's script did not look at it and credited a payment however late a
# terminal delivered it. paysys refuses a pay whose txn_date is more than txn_window_hours
# from the server's clock (300, nod12, final), so that a terminal with a wrong clock
# cannot pay into the past or the future; such refusals are logged and counted by paysys
# report. 24 is NoDeny's day; raise it (up to 8784) if this system's terminals deliver
# payments later.
txn_window_hours = 24

# ABillS paysys_connect id 2: Easypay (Easypay.pm), paysys_id 62: disabled in ABillS (status 0), not imported
";

#[test]
fn the_fixture_imports_and_check_config_takes_it() {
    let db = abills_db();
    let base = Base::new(&db.url, "");
    let (code, out, err) = paysys(&["import-abills", &base.config()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with(OSMP_BLOCK), "{out}");
    let real = std::fs::canonicalize(base.config()).unwrap();
    let overlay_dir = real.with_extension("d");
    assert!(
        out.contains(&format!(
            "#   paysys import-abills {} > {}\n#   paysys check-config {}\n",
            real.display(),
            overlay_dir.join("50-abills.toml").display(),
            real.display()
        )),
        "{out}"
    );
    assert!(
        out.replace("\n# ", " ")
            .contains(&format!("database {} on 127.0.0.1:", db.name)),
        "{out}"
    );
    assert!(
        err.contains("1 system(s) imported from paysys_connect, 0 left commented out, 1 disabled"),
        "{err}"
    );

    std::fs::write(base.overlay(), &out).unwrap();
    let (code, listed, err) = paysys(&["check-config", &base.config()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(listed.contains("paysys.d/50-abills.toml\n"), "{listed}");
    assert!(listed.contains("billing  abills\n"), "{listed}");
    assert!(
        listed.contains("system   osmp protocol=osmp account=uid "),
        "{listed}"
    );
    assert!(!listed.contains("easypay"), "{listed}");
    assert!(listed.ends_with("ok\n"), "{listed}");

    let config = Config::load(Path::new(&base.config())).unwrap();
    assert_eq!(config.systems.len(), 1);
    let osmp = config.system("osmp").unwrap();
    assert_eq!(osmp.protocol, ProtocolKind::Osmp);
    assert!(osmp.allow.allows("192.0.2.10".parse().unwrap()));
    assert!(osmp.allow.allows("192.0.2.11".parse().unwrap()));
    assert!(!osmp.allow.allows("127.0.0.1".parse().unwrap()));
    assert_eq!(osmp.abills.id, 44);
    assert_eq!(osmp.abills.payment_method, 10);
    assert_eq!(osmp.abills.admin_id, 2);
    assert_eq!(osmp.abills.description, "OSMP Payments");
    assert_eq!(osmp.abills.txn_prefix, "OSM");

    // Run again with the overlay in place: the same text.
    let (code, again, _) = paysys(&["import-abills", &base.config()]);
    assert_eq!(code, Some(0));
    assert_eq!(again, out);
}

#[test]
fn the_overlay_changes_a_system_of_the_main_config_and_flags_what_it_cannot_take() {
    let db = abills_db();
    {
        use mysql::prelude::Queryable;
        let mut conn = db.conn();
        conn.query_drop(
            "UPDATE paysys_connect SET paysys_ip = '10.0.0.0/8,!10.0.0.13, example.com', \
             payment_method = 0 WHERE id = 1",
        )
        .unwrap();
        conn.query_drop(
            "INSERT INTO paysys_connect (id, paysys_id, name, module, status, paysys_ip, \
             payment_method) VALUES (3, 70, 'Privat 24', 'Privat_p24.pm', 1, '198.51.100.7', 0), \
             (4, 45, 'OSMP-2', 'Osmp.pm', 1, '192.0.2.30', 0)",
        )
        .unwrap();
    }
    let base = Base::new(
        &db.url,
        "\n[[system]]\nname = \"osmp\"\nprotocol = \"osmp\"\nallow = [\"127.0.0.1\"]\n\
         account = \"login\"\nmax_sum = \"500.00\"\n",
    );
    let (code, out, err) = paysys(&["import-abills", &base.config()]);
    assert_eq!(code, Some(0), "{err}");
    for want in [
        "allow = [\"10.0.0.0/8\", \"!10.0.0.13\"]",
        "left out: \"example.com\"",
        "10.0.0.13 through the earlier",
        "payment_method = 2  # paysys_connect says 0",
        "# NOT IMPORTED: system 'osmp' (paysys_connect id 1) has txn_prefix \"OSM\" too",
        "# name = \"osmp-2\"",
        "# ABillS paysys_connect id 3: Privat 24 (Privat_p24.pm), paysys_id 70\n",
        "# NOT IMPORTED: module Privat_p24.pm is a protocol paysys does not speak yet",
        "# name = \"privat_24\"\n# protocol = \"privat_p24\"\n# allow = [\"198.51.100.7\"]\n",
        "Enabled in ABillS: 1 imported, 2 left commented out; disabled: 1.",
    ] {
        // Notes are wrapped: a phrase may run over two comment lines.
        let flat = out.replace("\n# ", " ");
        assert!(
            out.contains(want) || flat.contains(want),
            "{want}\n---\n{out}"
        );
    }
    std::fs::write(base.overlay(), &out).unwrap();
    let (code, listed, err) = paysys(&["check-config", &base.config()]);
    assert_eq!(code, Some(0), "{err}\n{out}");
    // The main config's osmp, with ABillS's addresses and ids; its own keys kept.
    assert!(
        listed.contains("system   osmp protocol=osmp account=login sums=0.01..500.00"),
        "{listed}"
    );
    // The admin's max_sum stays, and the overlay says so where it would have set one.
    let main = std::fs::canonicalize(base.config()).unwrap();
    let kept = format!(
        "\n# max_sum = \"none\"  # {} line 13 sets it for this system: that stays\n",
        base.config()
    );
    assert!(out.contains(&kept), "{kept}\n---\n{out}");
    assert!(
        listed.contains(&format!(
            "limits   osmp: min_sum 0.01 ({}/50-abills.toml line ",
            main.with_extension("d").display()
        )) && listed.contains(&format!("max_sum 500.00 ({} line 13)", base.config())),
        "{listed}"
    );
    let config = Config::load(Path::new(&base.config())).unwrap();
    assert_eq!(config.systems.len(), 1);
    let osmp = &config.systems[0];
    assert!(!osmp.allow.allows("127.0.0.1".parse().unwrap()));
    assert!(osmp.allow.allows("10.1.2.3".parse().unwrap()));
    assert!(!osmp.allow.allows("10.0.0.13".parse().unwrap()));
    assert_eq!((osmp.abills.id, osmp.abills.payment_method), (44, 2));
}

#[test]
fn a_database_without_paysys_connect_says_what_to_do() {
    let nodeny = TestDb::new();
    let base = Base::new(&nodeny.url, "");
    let (code, out, err) = paysys(&["import-abills", &base.config()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("database {} on 127.0.0.1:", nodeny.name))
            && err.contains(
                "has no table paysys_connect: [database] url must name ABillS's database"
            ),
        "{err}"
    );

    let unreachable = Base::new("mysql://root@127.0.0.1:1/abills", "");
    let (code, out, err) = paysys(&["import-abills", &unreachable.config()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("paysys: database: cannot connect"), "{err}");
    assert!(err.contains("check [database] url"), "{err}");

    let (code, _, err) = paysys(&["import-abills", "/nonexistent/etc/paysys.toml"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("/nonexistent/etc/paysys.toml cannot be read"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["import-abills", "a.toml", "b.toml"][..],
        &["import-abills", "--overlay"][..],
    ] {
        let (code, out, err) = paysys(args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(out.is_empty());
        assert!(err.contains("paysys import-abills [CONFIG]"), "{err}");
    }
    // Asked for, the usage is no error: on stdout, exit 0.
    let (code, out, err) = paysys(&["import-abills", "--help"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("usage: paysys import-abills [CONFIG]"),
        "{out}"
    );
    let (code, out, _) = paysys(&["help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("paysys import-abills [CONFIG]"), "{out}");
}

#[test]
fn an_imported_system_takes_the_sums_abills_took_and_says_how_late_a_payment_may_come() {
    let db = abills_db();
    let base = Base::new(&db.url, "");
    std::fs::create_dir_all(base.dir.join("var/log")).unwrap();
    let (code, out, err) = paysys(&["import-abills", &base.config()]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(base.overlay(), &out).unwrap();
    let (code, listed, err) = paysys(&["check-config", &base.config()]);
    assert_eq!(code, Some(0), "{err}");
    let overlay = std::fs::canonicalize(base.overlay()).unwrap();
    let limits = listed
        .lines()
        .find(|l| l.starts_with("limits   osmp: "))
        .unwrap_or_else(|| panic!("{listed}"));
    for want in [
        "min_sum 0.01 (",
        "max_sum none: up to 99999999.99, the most payments.sum holds (",
        "txn_window_hours 24 (",
        "is refused (nod12)",
    ] {
        assert!(limits.contains(want), "{want}\n{limits}");
    }
    assert_eq!(
        limits.matches(&overlay.display().to_string()).count(),
        3,
        "each limit names the overlay: {limits}"
    );

    let pay = |txn: &str, sum: &str, minutes: i64| {
        let query = format!(
            "command=pay&txn_id={txn}&account=1&sum={sum}&txn_date={}",
            common::txn_date(minutes)
        );
        let config = base.config();
        common::abills::run_paysys_check(
            &[
                ("GATEWAY_INTERFACE", "CGI/1.1"),
                ("PAYSYS_CONFIG", &config),
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", &query),
                ("REMOTE_ADDR", "192.0.2.10"),
            ],
            b"",
        )
    };
    // A company's transfer, far above the 15000.00 a hand-written system defaults to.
    let big = pay("7001", "99999.99", -1);
    assert_eq!(big.result(), 0, "{}", big.body);
    let deposit: Option<String> = {
        use mysql::prelude::Queryable;
        db.conn()
            .query_first("SELECT CAST(ROUND(deposit, 2) AS CHAR) FROM bills WHERE id = 1")
            .unwrap()
    };
    assert_eq!(deposit.as_deref(), Some("100012.49"));
    // A terminal delivering a day and an hour late: refused, and the refusal is counted.
    let late = pay("7002", "10.00", -25 * 60);
    assert_eq!((late.result(), late.comment().as_str()), (300, "nod12"));
    let today = chrono::Local::now().date_naive();
    let (from, to) = (
        (today - chrono::Duration::days(2)).to_string(),
        (today + chrono::Duration::days(1)).to_string(),
    );
    let (code, report, err) = paysys(&[
        "report",
        "--from",
        &from,
        "--to",
        &to,
        "--config",
        &base.config(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let nod12 = report
        .lines()
        .find(|l| l.trim_start().starts_with("nod12 "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    assert_eq!(
        nod12.as_deref(),
        Some("nod12 1 txn_date more than 24 h from now"),
        "{report}"
    );
}
