//! The City24 protocol: `echo`, `parse`, `render` on arbitrary requests, sent as a GET
//! query and as a form POST body, which must parse the same. Every answer must be
//! well-formed XML: one `<Response>`, exactly one `<ResultCode>` unless it is a listing, no
//! control character but `\n`.
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Listed, Outcome, Refusal, Subscriber};
use paysys::protocol::city24::City24;
use paysys::protocol::{ParseContext, Protocol};
use shared::{check_xml, now, request};

fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    let mut all = vec![Outcome::Failed(Fault::DatabaseWrite("gone".into()))];
    match parsed {
        Err(r) => all.push(Outcome::Refused(r.clone())),
        Ok(Command::Pay(p)) => {
            assert_eq!(
                TxnId::parse_token(p.txn_id.as_str()).as_ref(),
                Ok(&p.txn_id)
            );
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
                group: None,
                account: None,
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
        Ok(other) => panic!("City24 parsed into {other:?}"),
    }
    all
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let get = request("GET", "application/x-www-form-urlencoded", data, b"");
    let post = request("POST", "application/x-www-form-urlencoded", b"", data);
    let echo = City24.echo(&get);
    for account in [
        AccountRule::new(AccountKey::Id),
        AccountRule::new(AccountKey::Login),
    ] {
        let ctx = ParseContext {
            account: &account,
            now: now(),
            test: false,
            sign: None,
            rsa: None,
            card: None,
            monobank_key: None,
        };
        let parsed = City24.parse(&get, &ctx);
        assert_eq!(City24.parse(&post, &ctx), parsed, "POST parses differently");
        for outcome in outcomes(&parsed) {
            let listing = matches!(outcome, Outcome::Listed(_));
            let xml = City24.render(&echo, &outcome).response.body;
            check_xml(&xml, b"Response");
            if !listing {
                assert_eq!(xml.matches("<ResultCode>").count(), 1, "{xml:?}");
            }
        }
    }
});
