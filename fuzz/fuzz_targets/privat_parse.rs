//! PrivatBank's Debt interface: `echo`, `parse`, `render` on arbitrary XML bodies. Every
//! answer must be well-formed XML: one `<Transfer>` holding one `<Data>`, no control
//! character but `\n`; a parsed pay's id is a token, its sum not negative.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use chrono::{NaiveDate, NaiveDateTime};
use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Request, MAX_BODY};
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::privat::Privat;
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
        ("CONTENT_TYPE", b"text/xml".to_vec()),
        ("REMOTE_ADDR", b"10.0.0.1".to_vec()),
    ];
    let var = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| OsString::from_vec(v.clone()))
    };
    Request::read(var, &mut &body[..])
}

fn check_xml(xml: &str) {
    assert!(
        !xml.chars().any(|c| c.is_control() && c != '\n'),
        "control character in {xml:?}"
    );
    assert_eq!(xml.matches("<Data ").count(), 1, "{xml:?}");
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
                    assert_eq!(s.name().as_ref(), b"Transfer");
                }
                depth += 1;
            }
            Event::End(_) => depth -= 1,
            Event::Empty(_) => {}
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
            assert!(p_ok(c.txn_id.as_ref()));
            all.push(Outcome::Cancelled {
                prv_txn: 3,
                sum: Amount::from_kopecks(5),
                repeat: true,
            });
        }
        Ok(Command::List(_) | Command::Status(_)) => panic!("the Debt interface lists nothing"),
    }
    all
}

fn p_ok(id: Option<&TxnId>) -> bool {
    id.is_some_and(|t| TxnId::parse_token(t.as_str()).as_ref() == Ok(t))
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let post = request("POST", b"", data);
    let echo = Privat.echo(&post);
    for account in [AccountRule::new(AccountKey::Id), AccountRule::new(AccountKey::Login)] {
        let ctx = ParseContext {
            account: &account,
            now: now(),
            test: false,
            sign: None,
        };
        let parsed = Privat.parse(&post, &ctx);
        for outcome in outcomes(&parsed) {
            check_xml(&Privat.render(&echo, &outcome).response.body);
        }
    }
});
