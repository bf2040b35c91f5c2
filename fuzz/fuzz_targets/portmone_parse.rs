//! The Portmone protocol: `echo`, `parse`, `render` on arbitrary `data` documents, sent as
//! the form field `data` of a POST and as a GET query, which must parse the same. Every
//! answer must be one well-formed document — `<RESPONSE>` for a check that found payers,
//! `<RESULT>` with exactly one `<ERROR_CODE>` (the reply's) otherwise — with no control
//! character but `\n`; a fault is answered 503. The same bytes are read as a saved
//! `<PAY_ORDERS>` listing too (`paysys reconcile`'s registry).
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Payer, Refusal, Subscriber};
use paysys::protocol::portmone::{Portmone, MAX_PAYERS};
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
            assert_eq!(
                TxnId::parse_token(p.txn_id.as_str()).as_ref(),
                Ok(&p.txn_id)
            );
            assert!(p.sum.kopecks() >= 0);
            all.push(Outcome::Paid {
                prv_txn: 1,
                sum: p.sum,
                repeat: false,
            });
        }
        Ok(Command::Lookup(l)) => {
            assert!(!l.payers.is_empty() && l.payers.len() <= MAX_PAYERS);
            let payers = l
                .payers
                .iter()
                .filter(|(_, a)| a.is_some())
                .map(|(sent, _)| Payer {
                    sent: sent.clone(),
                    subscriber: Subscriber {
                        id: 7,
                        name: "<Ivanov & Co>".into(),
                        balance: Some(Amount::from_kopecks(i64::MIN)),
                        group: None,
                        account: None,
                    },
                })
                .collect();
            all.push(Outcome::LookedUp {
                date: l.date,
                payers,
            });
            all.push(Outcome::LookedUp {
                date: l.date,
                payers: Vec::new(),
            });
        }
        Ok(Command::Cancel(c)) => {
            assert!(c.prv_txn.is_none() && c.txn_id.is_some());
            assert!(c.sum.is_some_and(|s| s.kopecks() >= 0));
            all.push(Outcome::Cancelled {
                prv_txn: 3,
                sum: Amount::from_kopecks(5),
                repeat: true,
            });
        }
        Ok(other) => panic!("Portmone parsed into {other:?}"),
    }
    all
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY / 3 {
        return;
    }
    // The same bytes as a saved <PAY_ORDERS> listing (paysys reconcile's registry): read
    // or refused, never a panic; every bill it lists names its line.
    let text = String::from_utf8_lossy(data);
    if let Ok(bills) = paysys::protocol::portmone::pay_orders(&text) {
        assert!(bills.iter().all(|b| b.line >= 1));
    }
    // The bytes as the value of `data`, percent-encoded as a browser would.
    let mut form = String::from("data=");
    for b in data {
        if b.is_ascii_alphanumeric() {
            form.push(char::from(*b));
        } else {
            form.push_str(&format!("%{b:02X}"));
        }
    }
    let post = request(
        "POST",
        "application/x-www-form-urlencoded",
        b"",
        form.as_bytes(),
    );
    let get = request(
        "GET",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
        b"",
    );
    let echo = Portmone.echo(&post);
    assert_eq!(
        Portmone.echo(&get).params,
        echo.params,
        "GET echoes differently"
    );
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
        let parsed = Portmone.parse(&post, &ctx);
        assert_eq!(Portmone.parse(&get, &ctx), parsed, "GET parses differently");
        for outcome in outcomes(&parsed) {
            let reply = Portmone.render(&echo, &outcome);
            let xml = &reply.response.body;
            if xml.contains("<RESPONSE>") {
                check_xml(xml, b"RESPONSE");
                assert_eq!(reply.result, "0");
            } else {
                check_xml(xml, b"RESULT");
                assert_eq!(xml.matches("<ERROR_CODE>").count(), 1, "{xml:?}");
                assert!(
                    xml.contains(&format!("<ERROR_CODE>{}</ERROR_CODE>", reply.result)),
                    "{xml:?}"
                );
            }
            if matches!(outcome, Outcome::Failed(_)) {
                assert_eq!(reply.response.status, 503);
            }
        }
    }
});
