//! The `paysys` admin command line.

mod common;

use std::process::Command;

fn paysys(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/paysys.toml.example");
    let (ok, out, err) = paysys(&["check-config", example]);
    assert!(ok, "{err}");
    assert!(out.contains("system   osmp protocol=osmp"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("paysys-cli-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc/paysys.d")).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/paysys.toml.example"
    ))
    .unwrap();
    std::fs::write(dir.join("etc/paysys.toml"), &example).unwrap();
    std::fs::write(
        dir.join("etc/paysys.d/50-local.toml"),
        "[[system]]\nname = \"osmp\"\n\nallow = [\"10.0.0.300/8\"]\n",
    )
    .unwrap();
    let (ok, _, err) = paysys(&[
        "check-config",
        dir.join("etc/paysys.toml").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("50-local.toml line 4: system 'osmp': allow: '10.0.0.300/8' is not an IP"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_config_refuses_a_zero_window() {
    let dir = std::env::temp_dir().join(format!("paysys-cli-window-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/paysys.toml.example"
    ))
    .unwrap();
    assert!(example.contains("txn_window_hours = 24"));
    std::fs::write(
        dir.join("etc/paysys.toml"),
        example.replace("txn_window_hours = 24", "txn_window_hours = 0"),
    )
    .unwrap();
    let (ok, _, err) = paysys(&[
        "check-config",
        dir.join("etc/paysys.toml").to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(dir).unwrap();
    assert!(!ok);
    assert!(
        err.contains("txn_window_hours: 0 would refuse every payment"),
        "{err}"
    );
}

#[test]
fn code_prints_payment_codes() {
    let (ok, out, _) = paysys(&["code", "5907", "3"]);
    assert!(ok);
    assert_eq!(out, "5907\t59071\n3\t33\n");
    let (ok, _, err) = paysys(&["code", "x"]);
    assert!(!ok && err.contains("'x' is not a subscriber id"));
}

#[test]
fn check_db_finds_non_transactional_tables() {
    let db = common::TestDb::new();
    let site = common::Site::new(&db.url, "");
    let config = site.config_path();
    let (ok, out, err) = paysys(&["check-db", config.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ok: tables users, pays and paysys_txn"),
        "{out}"
    );

    use mysql::prelude::Queryable;
    db.conn()
        .query_drop("ALTER TABLE pays ENGINE=MyISAM")
        .unwrap();
    db.conn().query_drop("DROP TABLE paysys_txn").unwrap();
    let (ok, _, err) = paysys(&["check-db", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("table pays is ENGINE=MyISAM"), "{err}");
    assert!(err.contains("ALTER TABLE pays ENGINE=InnoDB"), "{err}");
    assert!(
        err.contains("paysys_txn is missing: load sql/paysys.sql"),
        "{err}"
    );
}

#[test]
fn check_config_points_out_overlapping_allow_lists() {
    let dir = std::env::temp_dir().join(format!("paysys-cli-overlap-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(
        dir.join("etc/paysys.toml"),
        r#"[database]
url = "mysql://x@127.0.0.1/abills"
billing = "abills"

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["10.0.0.0/8"]
test_allow = ["192.0.2.50"]

[[system]]
name = "qiwi"
protocol = "osmp"
allow = ["10.1.2.3"]

[[system]]
name = "other"
protocol = "osmp"
allow = ["192.0.2.0/28"]
"#,
    )
    .unwrap();
    let (ok, out, err) = paysys(&[
        "check-config",
        dir.join("etc/paysys.toml").to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(dir).unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("warning  systems osmp and qiwi admit some of the same addresses"),
        "{out}"
    );
    assert!(!out.contains("and other admit"), "{out}");
    assert!(out.contains("test     osmp: test_allow"), "{out}");
}

#[test]
fn check_db_knows_abills_tables() {
    let abills =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/abills.sql")).unwrap();
    let db = common::TestDb::with_fixture(&abills);
    let site = common::Site::new(&db.url, "");
    let config = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace("billing = \"nodeny\"", "billing = \"abills\"")
        .replace("account = \"payment_code\"", "account = \"login\"");
    site.write_config(&config);
    let path = site.config_path();
    let (ok, out, err) = paysys(&["check-db", path.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "users, users_pi, groups, companies, bills, payments, paysys_log and paysys_txn"
        ),
        "{out}"
    );
    use mysql::prelude::Queryable;
    db.conn()
        .query_drop("ALTER TABLE payments ENGINE=MyISAM")
        .unwrap();
    let (ok, _, err) = paysys(&["check-db", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("table payments is ENGINE=MyISAM"), "{err}");
}

#[test]
fn a_reader_that_goes_away_ends_paysys_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // A long output (every code from 1 to 20000) read only in part, as `| head` does.
    let ids: Vec<String> = (1..=20000).map(|n| n.to_string()).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("code")
        .args(&ids)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run paysys");
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is closed now; the rest of the output meets a broken pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
