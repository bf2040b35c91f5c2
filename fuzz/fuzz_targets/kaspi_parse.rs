//! The Kaspi protocol (OSMP's requests, Kaspi's names in the answer): `echo`, `parse`,
//! `render` on arbitrary requests, sent as a GET query and as a form POST body, which must
//! parse the same. Every answer must be one well-formed `<response>` with exactly one
//! `<result>`, Kaspi's `txn_id` (never OSMP's `osmp_txn_id` or `prv_txn`), and no control
//! character but `\n`; a bare request is answered finally (300), never "retry".
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::osmp::Osmp;
use paysys::protocol::{ParseContext, Protocol};
use shared::{check_xml, now, request};

fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    let mut all = vec![
        Outcome::Failed(Fault::DatabaseWrite("gone".into())),
        Outcome::Refused(Refusal::CallerNotAllowed),
    ];
    match parsed {
        Err(r) => all.push(Outcome::Refused(r.clone())),
        Ok(Command::Pay(p)) => {
            assert_eq!(TxnId::parse(p.txn_id.as_str()).as_ref(), Ok(&p.txn_id));
            assert!(p.sum.kopecks() >= 0);
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
                balance: Some(Amount::from_kopecks(-5)),
                group: None,
                account: None,
            },
            sum: c.sum,
            limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
        }),
        Ok(Command::Status(_)) => all.push(Outcome::Found {
            prv_txn: 2,
            sum: Amount::from_kopecks(5),
            cancelled: false,
        }),
        Ok(Command::Cancel(c)) => {
            assert!(c.prv_txn.is_some());
            all.push(Outcome::Cancelled {
                prv_txn: 3,
                sum: Amount::from_kopecks(5),
                repeat: true,
            });
        }
        Ok(other) => panic!("Kaspi parsed into {other:?}"),
    }
    all
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let kaspi = &Osmp::KASPI;
    let get = request("GET", "application/x-www-form-urlencoded", data, b"");
    let post = request("POST", "application/x-www-form-urlencoded", b"", data);
    let echo = kaspi.echo(&get);
    assert_eq!(
        kaspi.echo(&post).params,
        echo.params,
        "POST echoes differently"
    );
    for account in [
        AccountRule::new(AccountKey::Id),
        AccountRule::new(AccountKey::Login),
    ] {
        for test in [false, true] {
            let ctx = ParseContext {
                account: &account,
                now: now(),
                test,
                sign: None,
                rsa: None,
                card: None,
                monobank_key: None,
            };
            let parsed = kaspi.parse(&get, &ctx);
            assert_eq!(kaspi.parse(&post, &ctx), parsed, "POST parses differently");
            if let Err(Refusal::NoCommand(_)) = &parsed {
                let reply =
                    kaspi.render(&echo, &Outcome::Refused(Refusal::NoCommand(String::new())));
                assert_eq!(reply.result, "300");
            }
            for outcome in outcomes(&parsed) {
                let reply = kaspi.render(&echo, &outcome);
                let xml = &reply.response.body;
                check_xml(xml, b"response");
                assert_eq!(xml.matches("<result>").count(), 1, "{xml:?}");
                assert!(xml.contains("<txn_id>"), "{xml:?}");
                assert!(!xml.contains("<osmp_txn_id>"), "{xml:?}");
                assert!(!xml.contains("<prv_txn>"), "{xml:?}");
                assert!(
                    xml.contains(&format!("<result>{}</result>", reply.result)),
                    "{xml:?}"
                );
            }
        }
    }
});
