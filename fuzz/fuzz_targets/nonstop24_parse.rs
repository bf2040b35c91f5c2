//! The 24NonStop protocol: `echo`, `parse`, `render` on arbitrary requests.
//!
//! The input goes in as a GET query, as a form POST body and as an XML POST body. Each is
//! parsed unsigned and with a signature rule; a signed parse never succeeds where the
//! unsigned one fails, and succeeds only when `SIGN` is the one the rule computes. Every
//! answer must be well-formed XML: one `<pay-response>` with one `<status_code>`, no
//! control character but `\n`.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use chrono::{NaiveDate, NaiveDateTime};
use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Request, MAX_BODY};
use paysys::config::{SignHash, SignRule};
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::nonstop24::Nonstop24;
use paysys::protocol::{ParseContext, Protocol};
use quick_xml::events::Event;
use quick_xml::Reader;

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 22)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

fn request(method: &str, content_type: &str, query: &[u8], body: &[u8]) -> Request {
    let length = body.len().to_string();
    let vars: Vec<(&str, Vec<u8>)> = vec![
        ("REQUEST_METHOD", method.as_bytes().to_vec()),
        ("QUERY_STRING", query.to_vec()),
        ("CONTENT_LENGTH", length.into_bytes()),
        ("CONTENT_TYPE", content_type.as_bytes().to_vec()),
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
    assert_eq!(xml.matches("<status_code>").count(), 1, "{xml:?}");
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
                    assert_eq!(s.name().as_ref(), b"pay-response");
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
    let mut all = vec![Outcome::Failed(Fault::DatabaseRead("gone".into()))];
    match parsed {
        Err(r) => all.push(Outcome::Refused(r.clone())),
        Ok(Command::Pay(p)) => {
            assert_eq!(TxnId::parse_token(p.txn_id.as_str()).as_ref(), Ok(&p.txn_id));
            assert!(p.sum.kopecks() >= 0);
            all.push(Outcome::Paid {
                prv_txn: 1,
                sum: p.sum,
                repeat: true,
            });
        }
        Ok(Command::Check(c)) => all.push(Outcome::Checked {
            subscriber: Subscriber {
                id: c.account.subscriber_id().unwrap_or(1),
                name: "<Ivanov & Co>".into(),
                balance: Some(Amount::from_kopecks(-1)),
            },
            sum: None,
            limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
        }),
        Ok(Command::Status(_)) => all.push(Outcome::Found {
            prv_txn: 1,
            sum: Amount::from_kopecks(1),
            cancelled: true,
        }),
        Ok(Command::Cancel(_) | Command::List(_)) => panic!("24NonStop has no cancel or listing"),
    }
    all
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let form = "application/x-www-form-urlencoded";
    let requests = [
        request("GET", "", data, b""),
        request("POST", form, b"", data),
        request("POST", "text/xml", b"", data),
    ];
    let rules = [AccountRule::new(AccountKey::Id), AccountRule::new(AccountKey::Login)];
    let sign = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: true,
    };
    for req in &requests {
        let echo = Nonstop24.echo(req);
        for account in &rules {
            let ctx = |sign| ParseContext {
                account,
                now: now(),
                test: false,
                sign,
            };
            let plain = Nonstop24.parse(req, &ctx(None));
            let signed = Nonstop24.parse(req, &ctx(Some(&sign)));
            if signed.is_ok() {
                assert_eq!(signed, plain, "a signature changes nothing but admission");
            }
            for parsed in [&plain, &signed] {
                for outcome in outcomes(parsed) {
                    check_xml(&Nonstop24.render(&echo, &outcome).response.body);
                }
            }
        }
    }
});
