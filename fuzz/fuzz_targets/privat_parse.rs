//! PrivatBank's Debt interface: `echo`, `parse`, `render` on arbitrary XML bodies. Every
//! answer must be well-formed XML: one `<Transfer>` holding one `<Data>`, no control
//! character but `\n`; a parsed pay's id is a token, its sum not negative.
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::privat::Privat;
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
            assert!(p_ok(c.txn_id.as_ref()));
            all.push(Outcome::Cancelled {
                prv_txn: 3,
                sum: Amount::from_kopecks(5),
                repeat: true,
            });
        }
        Ok(other) => panic!("the Debt interface parsed into {other:?}"),
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
    let post = request("POST", "text/xml", b"", data);
    let echo = Privat.echo(&post);
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
        let parsed = Privat.parse(&post, &ctx);
        for outcome in outcomes(&parsed) {
            let xml = Privat.render(&echo, &outcome).response.body;
            check_xml(&xml, b"Transfer");
            assert_eq!(xml.matches("<Data ").count(), 1, "{xml:?}");
        }
    }
});
