//! The hostile-input table: every row a request a caller could send, each answered cleanly
//! (a protocol answer, exit 0, nothing on stderr), nothing credited unless valid, one log
//! line per request that stays one line.

mod common;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};

use common::{txn_date, Site, TestDb};

struct Case {
    name: &'static str,
    /// Raw QUERY_STRING bytes (may be invalid UTF-8).
    query: Vec<u8>,
    remote_addr: Option<&'static str>,
    content_length: Option<String>,
    body: Vec<u8>,
    /// Expected (result, comment).
    expect: (i32, &'static str),
}

fn get(name: &'static str, query: impl Into<Vec<u8>>, expect: (i32, &'static str)) -> Case {
    Case {
        name,
        query: query.into(),
        remote_addr: Some("127.0.0.1"),
        content_length: None,
        body: Vec::new(),
        expect,
    }
}

fn pay(txn: &str, account: &str, sum: &str, date: &str) -> String {
    format!("command=pay&txn_id={txn}&account={account}&sum={sum}&txn_date={date}")
}

fn run(site: &Site, case: &Case) -> (std::process::Output, String) {
    let mut cmd = Command::new(common::osmp_exe());
    cmd.env_clear()
        .env("PAYSYS_CONFIG", site.config_path())
        .env(
            "REQUEST_METHOD",
            if case.body.is_empty() && case.content_length.is_none() {
                "GET"
            } else {
                "POST"
            },
        )
        .env("QUERY_STRING", OsString::from_vec(case.query.clone()));
    if let Some(ip) = case.remote_addr {
        cmd.env("REMOTE_ADDR", ip);
    }
    if let Some(len) = &case.content_length {
        cmd.env("CONTENT_LENGTH", len);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body = case.body.clone();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

fn element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(&body[start..end])
}

#[test]
fn hostile_input_table() {
    let db = TestDb::new();
    let site = Site::new(&db.url, "");
    let d = txn_date(-1);
    let sql = "1%27%20OR%20%271%27%3D%271";
    let drop = "%27%3B%20DROP%20TABLE%20users%3B%20--";
    let ten_mb = vec![b'a'; 10 * 1024 * 1024];
    let cases = vec![
        // SQL metacharacters in every parameter.
        get(
            "sql in command",
            format!("command=pay{drop}&txn_id=1&account=59071&sum=1&txn_date={d}"),
            (1, "nod3"),
        ),
        get("sql in txn_id", pay(sql, "59071", "1", &d), (300, "nod6")),
        get(
            "sql in account",
            pay("2", &format!("59071{drop}"), "1", &d),
            (4, "nod4"),
        ),
        get(
            "sql in sum",
            pay("3", "59071", &format!("1{drop}"), &d),
            (300, "nod7"),
        ),
        get(
            "sql in txn_date",
            pay("4", "59071", "1", &format!("{d}{drop}")),
            (300, "nod10"),
        ),
        get(
            "sql in a stray key",
            format!("command=check&account=59071&x{drop}=1"),
            (0, "OK"),
        ),
        // XML metacharacters are echoed escaped, never as markup.
        get(
            "xml in txn_id",
            pay(
                "%3C/osmp_txn_id%3E%3Cresult%3E0%3C/result%3E",
                "59071",
                "1",
                &d,
            ),
            (300, "nod6"),
        ),
        get(
            "xml in sum",
            pay("5", "59071", "%3Cresult%3E0%3C/result%3E", &d),
            (300, "nod7"),
        ),
        get(
            "xml in account",
            "command=check&account=%3C/comment%3E%3Cresult%3E0",
            (4, "nod4"),
        ),
        // CR/LF and NUL.
        get(
            "crlf in txn_id",
            pay("6%0D%0A2026-11-22%20fake%20result%3D0", "59071", "1", &d),
            (300, "nod6"),
        ),
        get("nul in account", pay("7", "5907%001", "1", &d), (4, "nod4")),
        get(
            "txn_id with a trailing newline",
            pay("666%0A", "59071", "1", &d),
            (300, "nod6"),
        ),
        // Non-UTF-8, raw and percent-encoded.
        get(
            "raw non-utf8",
            b"command=check&account=\xff\xfe59071".to_vec(),
            (4, "nod4"),
        ),
        get(
            "encoded non-utf8",
            "command=check&account=%C0%AF59071",
            (4, "nod4"),
        ),
        get(
            "repeated keys that differ",
            format!("{}&sum=2", pay("8", "59071", "1", &d)),
            (300, "nod16"),
        ),
        get(
            "repeated keys that agree",
            format!("{}&sum=1", pay("9", "59071", "1", &d)),
            (0, "OK"),
        ),
        // Dates.
        get(
            "13-digit txn_date",
            pay("10", "59071", "1", &d[..13]),
            (300, "nod10"),
        ),
        get(
            "15-digit txn_date",
            pay("11", "59071", "1", &format!("{d}0")),
            (300, "nod10"),
        ),
        get(
            "second 60 in txn_date",
            pay("25", "59071", "1", &format!("{}60", &d[..12])),
            (300, "nod10"),
        ),
        get(
            "xml noncharacter in txn_id",
            pay("%EF%BF%BE", "59071", "1", &d),
            (300, "nod6"),
        ),
        get(
            "impossible txn_date",
            pay("12", "59071", "1", "20261399999999"),
            (300, "nod10"),
        ),
        // Sums.
        get("sum 1e3", pay("13", "59071", "1e3", &d), (300, "nod7")),
        get("sum -5", pay("14", "59071", "-5", &d), (300, "nod7")),
        get(
            "sum 10.001",
            pay("15", "59071", "10.001", &d),
            (300, "nod7"),
        ),
        get(
            "sum with a leading space",
            pay("16", "59071", "%2010", &d),
            (300, "nod7"),
        ),
        get("sum 0", pay("17", "59071", "0", &d), (241, "nod8")),
        get(
            "sum 00010.00",
            pay("18", "59071", "00010.00", &d),
            (0, "OK"),
        ),
        get(
            "sum of 20 nines",
            pay("19", "59071", "99999999999999999999", &d),
            (242, "nod9"),
        ),
        // Accounts.
        get(
            "25-digit account",
            pay("20", "1234567890123456789012345", "1", &d),
            (4, "nod4"),
        ),
        // Callers.
        Case {
            remote_addr: Some("::ffff:127.0.0.1"),
            ..get(
                "ipv4-mapped ipv6 caller",
                pay("21", "59071", "1", &d),
                (0, "OK"),
            )
        },
        Case {
            remote_addr: None,
            ..get(
                "missing REMOTE_ADDR",
                pay("22", "59071", "1", &d),
                (8, "nod15"),
            )
        },
        // Bodies.
        Case {
            content_length: Some(ten_mb.len().to_string()),
            body: ten_mb,
            ..get("10 MB body", "", (300, "nod16"))
        },
        Case {
            content_length: Some("1000".into()),
            body: pay("23", "59071", "1", &d).into_bytes(),
            ..get("CONTENT_LENGTH larger than the body", "", (300, "nod16"))
        },
        Case {
            content_length: Some("-20".into()),
            body: pay("24", "59071", "1", &d).into_bytes(),
            ..get("negative CONTENT_LENGTH", "", (300, "nod16"))
        },
    ];

    let mut expected_credit = 0;
    for case in &cases {
        let (out, text) = run(&site, case);
        assert_eq!(out.status.code(), Some(0), "{}: exit", case.name);
        assert!(
            out.stderr.is_empty(),
            "{}: stderr {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("{}: no header", case.name));
        assert_eq!(body.matches("<result>").count(), 1, "{}: {body}", case.name);
        assert!(
            !body
                .chars()
                .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{FFFE}' | '\u{FFFF}')),
            "{}: control chars in {body:?}",
            case.name
        );
        let result: i32 = element(body, "result").unwrap().parse().unwrap();
        let comment = element(body, "comment").unwrap();
        assert_eq!((result, comment), case.expect, "{}: {body}", case.name);
        if result == 0 && case.query.starts_with(b"command=pay") {
            expected_credit += 1;
        }
    }
    // Only the valid pays credited: 1 + 10 + 1 (repeated-keys-agree, 00010.00, mapped caller).
    assert_eq!(db.txns(), expected_credit);
    assert_eq!(db.balance(5907), "112.00");
    assert_eq!(db.count("SELECT COUNT(*) FROM users"), 4, "users intact");
    let log = site.log();
    assert_eq!(
        log.lines().count(),
        cases.len(),
        "one line per request:\n{log}"
    );
    assert!(
        log.lines().all(|l| l.len() < 2000 && l.starts_with("20")),
        "{log}"
    );
}
