//! The 24NonStop protocol: `echo`, `parse`, `render` on arbitrary requests.
//!
//! The input goes in as a GET query, as a form POST body and as an XML POST body. Each is
//! parsed unsigned and with a signature rule; a signed parse never succeeds where the
//! unsigned one fails, succeeds only when `SIGN` is the one the rule computes, and never
//! admits a signed field holding `_`, the signature's separator. Every
//! answer must be well-formed XML: one `<pay-response>` with one `<status_code>`, no
//! control character but `\n`.
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::config::{ServiceSlot, SignHash, SignRule};
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::nonstop24::Nonstop24;
use paysys::protocol::{ParseContext, Protocol};
use shared::{check_xml, now, request};

fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    let mut all = vec![Outcome::Failed(Fault::DatabaseRead("gone".into()))];
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
                repeat: true,
            });
        }
        Ok(Command::Check(c)) => all.push(Outcome::Checked {
            subscriber: Subscriber {
                id: c.account.subscriber_id().unwrap_or(1),
                name: "<Ivanov & Co>".into(),
                balance: Some(Amount::from_kopecks(-1)),
                group: None,
                account: None,
            },
            sum: None,
            limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
        }),
        Ok(Command::Status(_)) => all.push(Outcome::Found {
            prv_txn: 1,
            sum: Amount::from_kopecks(1),
            cancelled: true,
        }),
        Ok(other) => panic!("24NonStop parsed into {other:?}"),
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
    let rules = [
        AccountRule::new(AccountKey::Id),
        AccountRule::new(AccountKey::Login),
    ];
    let sign = SignRule {
        secret: "s3cret".into(),
        hash: SignHash::Md5,
        amount: true,
        service: ServiceSlot::Sent,
    };
    for req in &requests {
        let echo = Nonstop24.echo(req);
        for account in &rules {
            let ctx = |sign| ParseContext {
                account,
                now: now(),
                test: false,
                sign,
                rsa: None,
                card: None,
                monobank_key: None,
            };
            let plain = Nonstop24.parse(req, &ctx(None));
            let signed = Nonstop24.parse(req, &ctx(Some(&sign)));
            if let Ok(command) = &signed {
                assert_eq!(signed, plain, "a signature changes nothing but admission");
                // No signed field holds the separator: a SIGN signs one request only.
                if let Command::Pay(p) = command {
                    assert!(!p.txn_id.as_str().contains('_'), "{p:?}");
                }
            }
            for parsed in [&plain, &signed] {
                for outcome in outcomes(parsed) {
                    let xml = Nonstop24.render(&echo, &outcome).response.body;
                    check_xml(&xml, b"pay-response");
                    assert_eq!(xml.matches("<status_code>").count(), 1, "{xml:?}");
                }
            }
        }
    }
});
