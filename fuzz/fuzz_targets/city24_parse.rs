//! The City24 protocol: `echo`, `parse`, `render` on arbitrary requests, sent as a GET
//! query and as a form POST body, which must parse the same. Every answer must be
//! well-formed XML: one `<Response>`, exactly one `<ResultCode>` unless it is a listing, no
//! control character but `\n`.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use chrono::{NaiveDate, NaiveDateTime};
use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Request, MAX_BODY};
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Listed, Outcome, Refusal, Subscriber};
use paysys::protocol::city24::City24;
use paysys::protocol::{ParseContext, Protocol};
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
        ("CONTENT_TYPE", b"application/x-www-form-urlencoded".to_vec()),
        ("REMOTE_ADDR", b"10.0.0.1".to_vec()),
    ];
    let var = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| OsString::from_vec(v.clone()))
    };
    Request::read(var, &mut &body[..])
}

fn check_xml(xml: &str, listing: bool) {
    assert!(
        !xml.chars().any(|c| c.is_control() && c != '\n'),
        "control character in {xml:?}"
    );
    if !listing {
        assert_eq!(xml.matches("<ResultCode>").count(), 1, "{xml:?}");
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i32;
    let mut roots = 0;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed ({e}): {xml:?}"))
        {
            Event::Eof => break,
            Event::Start(s) => {
                if depth == 0 {
                    roots += 1;
                    assert_eq!(s.name().as_ref(), b"Response");
                }
                depth += 1;
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                t.unescape()
                    .unwrap_or_else(|e| panic!("bad entity ({e}) in {xml:?}"));
            }
            Event::Decl(_) => {}
            other => panic!("unexpected {other:?} in {xml:?}"),
        }
    }
    assert_eq!((depth, roots), (0, 1), "{xml:?}");
}

fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    let mut all = vec![Outcome::Failed(Fault::DatabaseWrite("gone".into()))];
    match parsed {
        Err(r) => all.push(Outcome::Refused(r.clone())),
        Ok(Command::Pay(p)) => {
            assert_eq!(TxnId::parse_token(p.txn_id.as_str()).as_ref(), Ok(&p.txn_id));
            all.push(Outcome::Paid {
                prv_txn: 1,
                sum: p.sum,
                repeat: false,
            });
        }
        Ok(Command::Check(c)) => all.push(Outcome::Checked {
            subscriber: Subscriber {
                id: c.account.subscriber_id().unwrap_or(1),
                name: "<Ivanov & Co>".into(),
                balance: None,
            },
            sum: None,
            limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
        }),
        Ok(Command::Cancel(c)) => {
            assert!(c.prv_txn.is_none() && c.txn_id.is_some());
            all.push(Outcome::Cancelled {
                prv_txn: 3,
                sum: Amount::from_kopecks(5),
                repeat: true,
            });
        }
        Ok(Command::List(p)) => all.push(Outcome::Listed(vec![Listed {
            txn_id: "1".into(),
            account: "<x>".into(),
            txn_date: p.from,
            sum: Amount::from_kopecks(5),
            prv_txn: 2,
        }])),
        Ok(Command::Status(_)) => panic!("City24 has no status"),
    }
    all
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let get = request("GET", data, b"");
    let post = request("POST", b"", data);
    let echo = City24.echo(&get);
    for account in [AccountRule::new(AccountKey::Id), AccountRule::new(AccountKey::Login)] {
        let ctx = ParseContext {
            account: &account,
            now: now(),
            test: false,
            sign: None,
        };
        let parsed = City24.parse(&get, &ctx);
        assert_eq!(City24.parse(&post, &ctx), parsed, "POST parses differently");
        for outcome in outcomes(&parsed) {
            let listing = matches!(outcome, Outcome::Listed(_));
            check_xml(&City24.render(&echo, &outcome).response.body, listing);
        }
    }
});
