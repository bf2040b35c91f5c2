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

/// The synopses of `cmd` in `lines`, whitespace made single spaces: each line that starts
/// with `paysys CMD`, joined to the lines that go on with it (they start with `[`).
/// In `paysys --help`'s list (`in_list`) a synopsis starts two spaces in and ends at two
/// spaces in a row, where its description begins. Elsewhere (a command's own help, the
/// README's code blocks) it may follow `usage:`, and the synopses are the lines the text
/// opens with: an example further down is not one.
fn synopses(lines: &[&str], cmd: &str, in_list: bool) -> Vec<String> {
    let head = format!("paysys {cmd}");
    let mut found: Vec<String> = Vec::new();
    let mut going_on = false;
    for line in lines {
        let text = line.trim_start();
        let starts = if in_list {
            line.strip_prefix("  ")
                .filter(|t| !t.starts_with(' '))
                .and_then(|t| t.split("  ").next())
        } else {
            Some(text.strip_prefix("usage:").unwrap_or(text).trim_start())
        };
        match starts {
            Some(t) if t == head || t.starts_with(&format!("{head} ")) => {
                found.push(t.to_string());
                going_on = true;
            }
            _ if going_on && text.starts_with('[') => {
                if let Some(last) = found.last_mut() {
                    last.push(' ');
                    last.push_str(text);
                }
            }
            _ if !in_list => break,
            _ => going_on = false,
        }
    }
    found.iter().map(|s| normalized(s)).collect()
}

fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The code blocks of README.md's section on the command line, each as its lines.
fn readme_blocks() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let heading = "## The admin's command line: paysys\n";
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in section.lines() {
        match (line.starts_with("```"), block.take()) {
            (true, None) => block = Some(Vec::new()),
            (true, Some(done)) => blocks.push(done),
            (false, Some(mut open)) => {
                open.push(line.to_string());
                block = Some(open);
            }
            (false, None) => {}
        }
    }
    blocks
}

#[test]
fn every_command_answers_help_with_its_readme_synopsis() {
    let (ok, usage, _) = paysys(&["--help"]);
    assert!(ok);
    // The commands: the word after `paysys` on the lines of usage's list.
    let lines: Vec<&str> = usage.lines().collect();
    let mut commands: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("  paysys "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    commands.sort_unstable();
    commands.dedup();
    assert!(commands.len() >= 8, "{commands:?} in {usage}");

    let blocks = readme_blocks();
    let in_readme = |cmd: &str| -> Vec<String> {
        let mut all: Vec<String> = blocks
            .iter()
            .flat_map(|b| {
                synopses(
                    &b.iter().map(String::as_str).collect::<Vec<_>>(),
                    cmd,
                    false,
                )
            })
            .collect();
        all.sort();
        all
    };
    for block in &blocks {
        let cmd = block
            .first()
            .and_then(|l| l.strip_prefix("paysys "))
            .and_then(|l| l.split_whitespace().next());
        assert!(
            cmd.is_some_and(|c| commands.contains(&c)),
            "README.md's section on paysys has a block for no command of paysys --help: {block:?}"
        );
    }

    for cmd in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args([cmd, "--help"])
            .env_remove("PAYSYS_CONFIG")
            .output()
            .expect("run paysys");
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "paysys {cmd} --help: {help}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut own = synopses(&help.lines().collect::<Vec<_>>(), cmd, false);
        own.sort();
        assert!(
            !own.is_empty(),
            "paysys {cmd} --help opens with no synopsis:\n{help}"
        );
        assert_eq!(
            in_readme(cmd),
            own,
            "README.md's section on paysys and paysys {cmd} --help"
        );
        let mut listed = synopses(&lines, cmd, true);
        listed.sort();
        assert_eq!(listed, own, "paysys --help and paysys {cmd} --help");
    }
}

#[test]
fn check_config_shows_each_systems_limits_and_where_they_come_from() {
    let dir = std::env::temp_dir().join(format!("paysys-cli-limits-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc/paysys.d")).unwrap();
    std::fs::write(
        dir.join("etc/paysys.toml"),
        r#"[database]
url = "mysql://x@127.0.0.1/abills"
billing = "abills"

[[system]]
name = "osmp"
protocol = "osmp"
allow = ["10.0.0.1"]

[[system]]
name = "bank"
protocol = "osmp"
allow = ["10.0.0.2"]
max_sum = "200000000.00"

[[system]]
name = "qiwi"
protocol = "osmp"
allow = ["10.0.0.3"]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/paysys.d/50-abills.toml"),
        "[[system]]\nname = \"qiwi\"\nmin_sum = \"0.01\"\nmax_sum = \"none\"\ntxn_window_hours = 72\n",
    )
    .unwrap();
    let (ok, out, err) = paysys(&[
        "check-config",
        dir.join("etc/paysys.toml").to_str().unwrap(),
    ]);
    let main = dir.join("etc/paysys.toml").display().to_string();
    let overlay = dir
        .join("etc/paysys.d/50-abills.toml")
        .display()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(ok, "{err}");
    // Written by hand without limits: the design's defaults, named as such.
    assert!(
        out.contains(
            "limits   osmp: min_sum 0.01 (the default); max_sum 15000.00 (the default; \
             max_sum = \"none\" for no limit); txn_window_hours 24 (the default): a pay whose \
             txn_date is further from the server's clock is refused (nod12)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "limits   qiwi: min_sum 0.01 ({overlay} line 3); max_sum none: up to 99999999.99, \
             the most payments.sum holds ({overlay} line 4); txn_window_hours 72 ({overlay} \
             line 5)"
        )),
        "{out}"
    );
    assert!(
        out.contains("system   qiwi protocol=osmp account=uid sums=0.01..99999999.99 window=72h"),
        "{out}"
    );
    assert!(
        out.contains(&format!("max_sum 200000000.00 ({main} line 14)")),
        "{out}"
    );
    assert!(
        out.contains(
            "warning  bank: max_sum 200000000.00 is more than payments.sum holds (99999999.99)"
        ),
        "{out}"
    );
    assert!(out.ends_with("ok\n"), "{out}");
}

/// check-config shows the text each 24NonStop system's SIGN covers, SERVICE_ID slot
/// included, as the config fixes it.
#[test]
fn check_config_shows_what_a_24nonstop_sign_covers() {
    let dir = std::env::temp_dir().join(format!("paysys-cli-sign-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let system = |name: &str, last: u8, extra: &str| {
        format!(
            "\n[[system]]\nname = \"{name}\"\nprotocol = \"24nonstop\"\n\
             allow = [\"127.0.0.{last}\"]\nsecret = \"k\"\n{extra}\n"
        )
    };
    let config = format!(
        "[database]\nurl = \"mysql://x@127.0.0.1/db\"\nbilling = \"abills\"\n{}{}{}",
        system("sent", 1, ""),
        system(
            "fixed",
            2,
            "service_id = \"Internet\"\nsign = \"sha1\"\nsign_amount = true"
        ),
        system("old", 3, "sign_service_id = false"),
    );
    std::fs::write(dir.join("etc/paysys.toml"), config).unwrap();
    let (ok, out, err) = paysys(&[
        "check-config",
        dir.join("etc/paysys.toml").to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(dir).unwrap();
    assert!(ok, "{err}");
    for line in [
        "sign     sent: SIGN = MD5(ACT_PAY_ACCOUNT_SERVICE_ID_PAY_ID_secret); a request must \
         send SERVICE_ID",
        "sign     fixed: SIGN = SHA1(ACT_PAY_ACCOUNT_Internet_PAY_ID[_PAY_AMOUNT]_secret); \
         PAY_AMOUNT on ACT=4; a request may send only this SERVICE_ID",
        "sign     old: SIGN = MD5(ACT_PAY_ACCOUNT_PAY_ID_secret); a request may not send \
         SERVICE_ID",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
}
