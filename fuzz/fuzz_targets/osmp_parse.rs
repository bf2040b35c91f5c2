//! The OSMP protocol: `echo`, `parse`, `render` of both dialects on arbitrary requests.
//!
//! The input is the form, raw (`command=pay&txn_id=…`). It is sent three ways — as a GET
//! query, as a form POST body, and split at its first `&` into query + body — which must all
//! parse the same. Each is parsed with every `ParseContext` (payment code / id / ABillS
//! accounts, test on / off) and the result rendered in both dialects; every answer must be
//! well-formed XML with exactly one `<result>`, and no control character but `\n`.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use chrono::{NaiveDate, NaiveDateTime};
use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Request, MAX_BODY};
use paysys::domain::{AccountKey, AccountRef, AccountRule, Amount, PaymentCode, TxnId};
use paysys::outcome::{Command, Echo, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::osmp::Osmp;
use paysys::protocol::{ParseContext, Protocol, Reply};
use quick_xml::events::Event;
use quick_xml::Reader;

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 22)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

fn request(method: &str, query: &[u8], body: &[u8]) -> Request {
    let length = body.len().to_string();
    let vars: Vec<(&str, Vec<u8>)> = vec![
        ("REQUEST_METHOD", method.as_bytes().to_vec()),
        ("QUERY_STRING", query.to_vec()),
        ("CONTENT_LENGTH", length.into_bytes()),
        (
            "CONTENT_TYPE",
            b"application/x-www-form-urlencoded".to_vec(),
        ),
        ("REMOTE_ADDR", b"10.0.0.1".to_vec()),
    ];
    let var = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| OsString::from_vec(v.clone()))
    };
    Request::read(var, &mut &body[..])
}

/// XML 1.0 `Char`: what may appear in a well-formed document at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Reads the whole document with quick-xml: a declaration, one root element, matching end
/// tags, text whose entities resolve. Returns (element name, unescaped text) for each leaf.
fn well_formed(xml: &str) -> Vec<(String, String)> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut open: Vec<String> = Vec::new();
    let mut leaves: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    loop {
        let event = reader.read_event().unwrap_or_else(|e| {
            panic!(
                "not well-formed XML ({e}) at {}: {xml:?}",
                reader.buffer_position()
            )
        });
        match event {
            Event::Eof => break,
            Event::Decl(_) => assert_eq!(
                reader.buffer_position() as usize,
                xml.find("?>").unwrap() + 2
            ),
            Event::Start(start) => {
                if depth == 0 {
                    roots += 1;
                }
                // Only a check's payer fields carry an attribute: <field1 name="fio">.
                if !start.name().as_ref().starts_with(b"field") || depth != 2 {
                    assert_eq!(start.attributes().count(), 0, "{xml:?}");
                }
                depth += 1;
                open.push(String::from_utf8(start.name().as_ref().to_vec()).unwrap());
                text.clear();
            }
            Event::End(end) => {
                let name = open.pop().expect("end tag without start");
                assert_eq!(end.name().as_ref(), name.as_bytes());
                // <fields> and its children are the payer's, after <comment>.
                if name != "response" && !name.starts_with("field") {
                    leaves.push((name, std::mem::take(&mut text)));
                }
                depth -= 1;
            }
            Event::Empty(_) => panic!("empty element in {xml:?}"),
            Event::Text(t) => {
                let unescaped = t
                    .unescape()
                    .unwrap_or_else(|e| panic!("bad entity ({e}) in {xml:?}"));
                if depth == 0 {
                    assert!(
                        unescaped.trim().is_empty(),
                        "text outside the root: {xml:?}"
                    );
                } else {
                    text.push_str(&unescaped);
                }
            }
            other => panic!("unexpected {other:?} in {xml:?}"),
        }
    }
    assert_eq!(depth, 0, "unclosed element in {xml:?}");
    assert_eq!(roots, 1, "{xml:?}");
    leaves
}

fn check_reply(echo: &Echo, outcome: &Outcome, reply: &Reply) {
    let xml = &reply.response.body;
    assert_eq!(xml.matches("<result>").count(), 1, "{xml:?}");
    assert_eq!(xml.matches("</response>").count(), 1, "{xml:?}");
    assert!(
        !xml.chars().any(|c| c.is_control() && c != '\n'),
        "control character in {xml:?}"
    );
    if let Some(bad) = xml.chars().find(|&c| !is_xml_char(c)) {
        panic!("U+{:04X} is not an XML character, in {xml:?}", bad as u32);
    }
    let leaves = well_formed(xml);
    let names: Vec<&str> = leaves.iter().map(|(n, _)| n.as_str()).collect();
    let value = |name: &str| {
        leaves
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(names.first(), Some(&"osmp_txn_id"), "{xml:?}");
    assert_eq!(&names[names.len() - 2..], ["result", "comment"], "{xml:?}");
    assert_eq!(value("result"), Some(reply.result.as_str()));
    assert_eq!(value("comment"), Some(reply.comment.as_str()));
    // Echoed values are capped at 64 characters plus an ellipsis.
    for echoed in ["osmp_txn_id", "sum"] {
        if let Some(v) = value(echoed) {
            assert!(v.chars().count() <= 65, "{echoed} not capped: {xml:?}");
        }
    }
    if echo
        .txn_id
        .chars()
        .all(|c| !c.is_control() && is_xml_char(c))
        && echo.txn_id.chars().count() <= 64
    {
        assert_eq!(value("osmp_txn_id"), Some(echo.txn_id.as_str()), "{xml:?}");
    }
    if let Outcome::Paid { sum, .. } | Outcome::Found { sum, .. } = outcome {
        assert_eq!(value("sum"), Some(sum.to_string().as_str()), "{xml:?}");
    }
    assert_eq!(
        reply.response.status,
        if matches!(outcome, Outcome::Refused(Refusal::CallerNotAllowed)) {
            403
        } else {
            200
        }
    );
    // The HTTP framing around it.
    let bytes = reply.response.to_bytes();
    let header = format!("Content-Length: {}\r\n", xml.len());
    assert!(bytes.windows(header.len()).any(|w| w == header.as_bytes()));
    assert!(bytes.ends_with(xml.as_bytes()));
}

/// `sum` of a parsed request renders with exactly two decimals and parses back to itself.
fn check_amount(sum: Amount) {
    assert!(sum.kopecks() >= 0, "negative sum {sum:?}");
    let text = sum.to_string();
    let (int, frac) = text.split_once('.').expect("no decimal point");
    assert!(
        !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()),
        "{text}"
    );
    assert!(
        frac.len() == 2 && frac.bytes().all(|b| b.is_ascii_digit()),
        "{text}"
    );
    assert_eq!(Amount::parse(&text), Ok(sum), "{text}");
}

fn check_command(command: &Command, ctx: &ParseContext) {
    let account = match command {
        Command::Check(c) => {
            if let Some(txn) = &c.txn_id {
                assert_eq!(TxnId::parse(txn.as_str()).as_ref(), Ok(txn));
            }
            if let Some(sum) = c.sum {
                check_amount(sum);
            }
            Some(&c.account)
        }
        Command::Pay(p) => {
            assert_eq!(TxnId::parse(p.txn_id.as_str()).as_ref(), Ok(&p.txn_id));
            check_amount(p.sum);
            // A DATETIME MySQL takes: no leap second (`…:60`).
            assert_eq!(
                p.txn_date.naive().and_utc().timestamp_subsec_nanos(),
                0,
                "{:?}",
                p.txn_date
            );
            Some(&p.account)
        }
        Command::Status(s) => {
            assert_eq!(TxnId::parse(s.txn_id.as_str()).as_ref(), Ok(&s.txn_id));
            None
        }
        Command::Cancel(c) => {
            assert!(c.prv_txn.is_some(), "an OSMP cancel names its prv_txn");
            if let Some(txn) = &c.txn_id {
                assert_eq!(TxnId::parse(txn.as_str()).as_ref(), Ok(txn));
            }
            None
        }
        other => panic!("OSMP parsed into {other:?}"),
    };
    if let Some(account) = account {
        assert!(!account.refs().is_empty());
        for r in account.refs() {
            match r {
                AccountRef::Id(id) => {
                    assert!(*id > 0);
                    if ctx.account.keys == [AccountKey::PaymentCode] {
                        let code = PaymentCode::parse(account.as_str()).expect("account re-parse");
                        assert_eq!(code.id(), *id);
                    } else {
                        assert_eq!(account.as_str().parse::<u64>(), Ok(*id));
                    }
                }
                // Literal values: what was typed, with nothing a lookup could misread.
                AccountRef::Login(text) | AccountRef::ContractId(text) => {
                    assert_eq!(text, account.as_str());
                    assert_eq!(text.trim(), text);
                    assert!(!text.is_empty() && !text.chars().any(char::is_control));
                }
            }
        }
    }
}

/// The outcomes a parse result can end in: what the pipeline would answer next.
fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    match parsed {
        Err(r) => vec![Outcome::Refused(r.clone())],
        Ok(Command::Pay(p)) => vec![
            Outcome::Paid {
                prv_txn: 18,
                sum: p.sum,
                repeat: false,
            },
            Outcome::Paid {
                prv_txn: u64::MAX,
                sum: p.sum,
                repeat: true,
            },
            Outcome::Refused(Refusal::Conflict {
                prv_txn: 7,
                account: p.account.as_str().to_string(),
                sum: p.sum,
            }),
        ],
        Ok(Command::Check(c)) => vec![Outcome::Checked {
            subscriber: Subscriber {
                id: c.account.subscriber_id().unwrap_or(1),
                name: "<Ivanov & Co>".into(),
                balance: Some(Amount::from_kopecks(-1)),
                group: None,
                account: None,
            },
            sum: c.sum,
            limits: (Amount::from_kopecks(100), Amount::from_kopecks(1_500_000)),
        }],
        Ok(Command::Status(_)) => vec![
            Outcome::Found {
                prv_txn: 1,
                sum: Amount::from_kopecks(1050),
                cancelled: false,
            },
            Outcome::Found {
                prv_txn: 1,
                sum: Amount::from_kopecks(1050),
                cancelled: true,
            },
            Outcome::Refused(Refusal::UnknownTxn),
        ],
        Ok(Command::Cancel(c)) => vec![
            Outcome::Cancelled {
                prv_txn: c.prv_txn.expect("an OSMP cancel names its prv_txn"),
                sum: Amount::from_kopecks(1050),
                repeat: false,
            },
            Outcome::Refused(Refusal::CancelUnknown("no such payment".into())),
        ],
        Ok(other) => panic!("OSMP parsed into {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let get = request("GET", data, b"");
    let mut others = vec![request("POST", b"", data)];
    if let Some(at) = data.iter().position(|&b| b == b'&') {
        others.push(request("POST", &data[..at], &data[at + 1..]));
    }

    let rules = [
        AccountRule::new(AccountKey::PaymentCode),
        AccountRule::new(AccountKey::Id),
        AccountRule {
            keys: vec![AccountKey::Uid, AccountKey::Login, AccountKey::ContractId],
            expr: None,
        },
    ];
    let contexts: Vec<ParseContext> = rules
        .iter()
        .flat_map(|account| {
            [false, true].map(|test| ParseContext {
                account,
                now: now(),
                test,
                sign: None,
                rsa: None,
                card: None,
                monobank_key: None,
            })
        })
        .collect();

    // Answers that depend on the request's echo only.
    let echo = Osmp::NODENY.echo(&get);
    for outcome in [
        Outcome::Refused(Refusal::CallerNotAllowed),
        Outcome::Failed(Fault::DatabaseWrite("lost connection".into())),
    ] {
        check_reply(&echo, &outcome, &Osmp::NODENY.render(&echo, &outcome));
    }

    let mut rendered: Vec<Result<Command, Refusal>> = Vec::new();
    for ctx in &contexts {
        let parsed = Osmp::NODENY.parse(&get, ctx);
        if let Ok(command) = &parsed {
            check_command(command, ctx);
        }
        // GET, POST and query + body are the same form: the same echo and the same answer.
        for (i, other) in others.iter().enumerate() {
            assert_eq!(
                Osmp::NODENY.parse(other, ctx),
                parsed,
                "POST {i} parses differently from the GET"
            );
        }
        if !rendered.contains(&parsed) {
            for outcome in outcomes(&parsed) {
                for dialect in [&Osmp::NODENY, &Osmp::ABILLS] {
                    check_reply(&echo, &outcome, &dialect.render(&echo, &outcome));
                }
            }
            rendered.push(parsed);
        }
    }
    for (i, other) in others.iter().enumerate() {
        let other_echo = Osmp::NODENY.echo(other);
        assert_eq!(
            (
                &other_echo.command,
                &other_echo.txn_id,
                &other_echo.account,
                &other_echo.sum
            ),
            (&echo.command, &echo.txn_id, &echo.account, &echo.sum),
            "POST {i} echoes differently from the GET"
        );
    }
});
