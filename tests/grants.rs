//! `sql/grants-abills.sql` and `sql/grants-nodeny.sql`, loaded as INSTALL says, must admit
//! the database URLs INSTALL and etc/paysys.toml.example give — over TCP to 127.0.0.1 and
//! over the socket — on a server with `skip-name-resolve`, where a TCP login from
//! 127.0.0.1 is `'paysys'@'127.0.0.1'` and never `'paysys'@'localhost'`.
//!
//! A private server (tests/common/mariadb.rs, which always runs with `--skip-name-resolve`)
//! whatever the shared one does: there the grant files are loaded verbatim, with their
//! own user and database names, and `paysys check-db` logs in with the URLs cut out of
//! INSTALL and the example, as an admin following them would.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

use common::mariadb::PrivateServer;
use common::{repo, run_script};

/// The password the grant files ship with.
const PASSWORD: &str = "change-me";

fn text(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `mysql://paysys:…` URL in `doc` to a database `db` on this machine, as written there.
fn urls_in(doc: &str, db: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in doc.match_indices("mysql://paysys:") {
        let url: String = doc[i..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | ')' | ','))
            .collect();
        let path = url.split('?').next().unwrap_or("");
        // This machine's database only: over TCP to 127.0.0.1 or over the socket (section
        // 12's cluster nodes are other machines, whose grants name the web nodes).
        let local = url.contains("@127.0.0.1:3306/")
            || (url.contains("@localhost/") && url.contains("?socket="));
        if local && path.ends_with(&format!("/{db}")) && !out.contains(&url) {
            out.push(url);
        }
    }
    out
}

/// `url` pointed at the private server: its password, port and socket.
fn on_private(url: &str, server: &PrivateServer) -> String {
    let (userinfo, rest) = url
        .strip_prefix("mysql://")
        .and_then(|u| u.split_once('@'))
        .unwrap_or_else(|| panic!("not a mysql:// URL with a user: {url}"));
    let user = userinfo.split(':').next().unwrap_or("");
    assert_eq!(user, "paysys", "{url}");
    let rest = rest
        .replace("127.0.0.1:3306", &format!("127.0.0.1:{}", server.port()))
        .replace(
            "/run/mysqld/mysqld.sock",
            &server.socket().to_string_lossy(),
        );
    format!("mysql://paysys:{PASSWORD}@{rest}")
}

/// Who the server says `url` logged in as (`CURRENT_USER()`), over the very transport the
/// URL names (no switch to the socket after a TCP connect).
fn current_user(url: &str) -> Result<String, mysql::Error> {
    let opts = OptsBuilder::from_opts(Opts::from_url(url).expect("url")).prefer_socket(false);
    let mut conn = Conn::new(opts)?;
    Ok(conn
        .query_first::<String, _>("SELECT CURRENT_USER()")?
        .unwrap_or_default())
}

/// `paysys check-db` with a config whose `[database]` is `url` and `billing`.
fn check_db(dir: &Path, url: &str, billing: &str) -> (bool, String) {
    let config = dir.join(format!("paysys-{billing}.toml"));
    fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\nbilling = \"{billing}\"\n\n\
             [[system]]\nname = \"osmp\"\nprotocol = \"osmp\"\nallow = [\"127.0.0.1\"]\n\
             account = \"{}\"\n",
            if billing == "abills" {
                "login"
            } else {
                "payment_code"
            }
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("check-db")
        .arg(&config)
        .output()
        .expect("run paysys check-db");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_grant_files_admit_the_urls_install_gives_without_name_resolution() {
    let Some(server) = PrivateServer::start("grants", &[]).unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let mut root = server.conn();
    let skip: i64 = root
        .query_first("SELECT @@skip_name_resolve")
        .unwrap()
        .unwrap();
    assert_eq!(
        skip, 1,
        "the private server must run with skip-name-resolve"
    );
    // The billing's tables and ours in the databases the grant files name, then the grant
    // files as they are.
    for (db, fixture) in [("abills", "sql/abills.sql"), ("nodeny", "sql/nodeny.sql")] {
        root.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"))
            .unwrap();
        root.query_drop(format!("USE `{db}`")).unwrap();
        run_script(&mut root, &text("sql/paysys.sql"));
        run_script(&mut root, &text(fixture));
    }
    run_script(&mut root, &text("sql/grants-abills.sql"));
    run_script(&mut root, &text("sql/grants-nodeny.sql"));

    let install = text("INSTALL");
    let example = text("etc/paysys.toml.example");
    let dir = server.dir().to_path_buf();
    let mut tried = Vec::new();
    for (db, docs) in [
        ("abills", vec![&install]),
        ("nodeny", vec![&install, &example]),
    ] {
        let urls: Vec<String> = docs.iter().flat_map(|d| urls_in(d, db)).collect();
        assert!(
            urls.iter().any(|u| u.contains("@127.0.0.1:3306/")),
            "INSTALL gives no TCP URL for {db}: {urls:?}"
        );
        for url in urls {
            let private = on_private(&url, &server);
            let who = current_user(&private).unwrap_or_else(|e| {
                panic!(
                    "{url} (as loaded from the grant file) does not log in on a server \
                     with skip-name-resolve: {e}"
                )
            });
            // Over TCP the server sees the address; 'localhost' is the socket only.
            let expected = if url.contains("?socket=") {
                "paysys@localhost"
            } else {
                "paysys@127.0.0.1"
            };
            assert_eq!(who, expected, "{url}");
            let (ok, out) = check_db(&dir, &private, db);
            assert!(ok, "paysys check-db with {url}:\n{out}");
            tried.push(url);
        }
    }
    eprintln!("logged in with: {tried:#?}");
    // A card payment end to end as the paysys user: the page's order (and ABillS's row in
    // progress), an account that names nobody counted, the callback completing the row.
    let tcp = tried
        .iter()
        .find(|u| u.contains("/abills") && u.contains("@127.0.0.1:3306/"))
        .expect("an ABillS TCP URL");
    card_payment_as_paysys(&dir, &on_private(tcp, &server), &mut root);
    procedure_pay_as_paysys(&dir, &on_private(tcp, &server), &mut root);
    assert!(
        tried.iter().any(|u| u.contains("?socket=")),
        "no socket URL was tried: {tried:?}"
    );
    // The two accounts are one user: the same grants, table by table.
    let mut grants = |host: &str| -> Vec<String> {
        let mut rows: Vec<String> = root
            .query::<String, _>(format!("SHOW GRANTS FOR 'paysys'@'{host}'"))
            .unwrap()
            .into_iter()
            .map(|g| g.replace(&format!("'paysys'@'{host}'"), "'paysys'@HOST"))
            .map(|g| g.replace(&format!("`paysys`@`{host}`"), "`paysys`@HOST"))
            .collect();
        rows.sort();
        rows
    };
    let (local, loopback) = (grants("localhost"), grants("127.0.0.1"));
    assert_eq!(local, loopback);
}

/// The page and a LiqPay callback through `paysys_check`, logged in as the paysys user of
/// the grant file: every statement of a card payment is one the grants allow.
fn card_payment_as_paysys(dir: &Path, url: &str, root: &mut Conn) {
    use base64::Engine as _;
    const PRIVATE_KEY: &str = "a4825234f4bae72a0be04eafe9e8e2bada209255";
    let config = dir.join("paysys-card.toml");
    fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\nbilling = \"abills\"\n\n\
             [log]\nfile = \"{log}\"\ndatabase = true\n\n\
             [[system]]\nname = \"liqpay\"\nprotocol = \"liqpay\"\npublic_key = \"i00000000\"\n\
             private_key = \"{PRIVATE_KEY}\"\nabills_id = 62\naccount = \"login\"\n\n\
             [page]\npublic_url = \"https://isp.example/cgi-bin/paysys_check.cgi\"\n",
            log = dir.join("paysys-card.log").display()
        ),
    )
    .expect("write config");
    let config_text = config.to_string_lossy().into_owned();
    let run = |path: &str, body: &str| {
        let len = body.len().to_string();
        common::run_exe(
            common::paysys_check_exe(),
            &[
                ("GATEWAY_INTERFACE", "CGI/1.1"),
                ("PAYSYS_CONFIG", &config_text),
                ("REQUEST_METHOD", "POST"),
                ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
                ("PATH_INFO", path),
                ("REMOTE_ADDR", "198.51.100.7"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
                ("CONTENT_LENGTH", &len),
            ],
            body.as_bytes(),
        )
    };
    let log = || fs::read_to_string(dir.join("paysys-card.log")).unwrap_or_default();
    let missed = run("/pay", "account=nosuchlogin&sum=10&system=liqpay");
    assert_eq!(missed.status, 200, "{}\n{}", missed.body, log());
    assert!(!log().contains("not counted"), "{}", log());
    let page = run("/pay", "account=test1&sum=10&system=liqpay");
    assert_eq!(page.status, 200, "{}\n{}", page.body, log());
    let at = page
        .body
        .find("name=\"data\" value=\"")
        .expect("the LiqPay form");
    let data = &page.body[at + 19..];
    let data = &data[..data.find('"').unwrap()];
    let json: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    )
    .unwrap();
    let order_id = json["order_id"].as_str().unwrap().to_string();
    let callback = format!(
        "{{\"public_key\":\"i00000000\",\"version\":3,\"action\":\"pay\",\"status\":\"success\",\
         \"order_id\":\"{order_id}\",\"payment_id\":1,\"amount\":10,\"currency\":\"UAH\"}}"
    );
    let body =
        paysys::card::liqpay::SignedForm::new(&paysys::card::Secret::new(PRIVATE_KEY), &callback)
            .form_body();
    let paid = run("/callback/liqpay", &body);
    assert_eq!(paid.status, 200, "{}\n{}", paid.body, log());
    let status: u8 = root
        .exec_first(
            "SELECT status FROM abills.paysys_log WHERE transaction_id = CONCAT('LIQ:', ?)",
            (&order_id,),
        )
        .unwrap()
        .expect("the order's paysys_log row");
    assert_eq!(status, 2, "{}", log());
    // The callback's row in ABillS's request history, written and purged as paysys.
    assert!(!log().contains("not recorded"), "{}", log());
    let rows = |root: &mut Conn| -> u64 {
        root.query_first("SELECT COUNT(*) FROM abills.paysys_requests")
            .unwrap()
            .unwrap()
    };
    assert_eq!(rows(root), 1, "{}", log());
    let tomorrow = (chrono::Local::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let purged = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["requests", "--purge-before", &tomorrow, "--config"])
        .arg(&config)
        .output()
        .expect("run paysys requests");
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert_eq!(rows(root), 0);
    let misses: u64 = root
        .query_first("SELECT COUNT(*) FROM abills.paysys_page_miss")
        .unwrap()
        .unwrap();
    assert_eq!(misses, 1);
}

/// INSTALL's one-CALL pay, as the paysys user: sql/abills-pay.sql loaded by the admin, the
/// grant file's commented EXECUTE line run, `procedure = true`. check-db finds it, and a
/// terminal's pay is made by the procedure with the grant file's grants alone (it runs
/// with the caller's).
fn procedure_pay_as_paysys(dir: &Path, url: &str, root: &mut Conn) {
    root.query_drop("USE `abills`").unwrap();
    common::abills::load_pay_procedure(root);
    let grant = text("sql/grants-abills.sql")
        .lines()
        .find_map(|l| l.strip_prefix("-- GRANT EXECUTE ON PROCEDURE "))
        .map(|rest| format!("GRANT EXECUTE ON PROCEDURE {}", rest.trim_end_matches(';')))
        .expect("sql/grants-abills.sql: the EXECUTE grant, commented out");
    root.query_drop(&grant)
        .unwrap_or_else(|e| panic!("{grant}: {e}"));
    let config = dir.join("paysys-procedure.toml");
    fs::write(
        &config,
        format!(
            "[database]\nurl = \"{url}\"\nbilling = \"abills\"\nprocedure = true\n\n\
             [log]\nfile = \"{log}\"\n\n\
             [[system]]\nname = \"osmp\"\nprotocol = \"osmp\"\nallow = [\"127.0.0.1\"]\n\
             account = \"login\"\n",
            log = dir.join("paysys-procedure.log").display()
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .arg("check-db")
        .arg(&config)
        .output()
        .expect("run paysys check-db");
    assert!(
        out.status.success(),
        "check-db with procedure = true as paysys: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // CALLs, and statements executed: a pay the CALL made is one of each.
    let calls = |root: &mut Conn| -> (u64, u64) {
        root.query_first(
            "SELECT SUM(IF(VARIABLE_NAME = 'COM_CALL_PROCEDURE', VARIABLE_VALUE, 0)), \
             SUM(IF(VARIABLE_NAME = 'COM_STMT_EXECUTE', VARIABLE_VALUE, 0)) \
             FROM information_schema.GLOBAL_STATUS",
        )
        .unwrap()
        .unwrap()
    };
    let before = calls(root);
    let config_text = config.to_string_lossy().into_owned();
    let query = common::pay_query("880001", "test1", "3.00");
    let paid = common::run_exe(
        common::paysys_check_exe(),
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("PAYSYS_CONFIG", &config_text),
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", &query),
            ("SCRIPT_NAME", "/cgi-bin/paysys_check.cgi"),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        b"",
    );
    let log = fs::read_to_string(dir.join("paysys-procedure.log")).unwrap_or_default();
    assert_eq!(paid.result(), 0, "{}\n{log}", paid.body);
    let after = calls(root);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "paid by the procedure alone: {log}"
    );
    let payments: u64 = root
        .query_first("SELECT COUNT(*) FROM abills.payments WHERE ext_id = 'OSM:880001'")
        .unwrap()
        .unwrap();
    assert_eq!(payments, 1);
}
