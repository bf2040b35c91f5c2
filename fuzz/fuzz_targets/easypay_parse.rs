//! EasyPay: `echo`, `parse`, `render` on arbitrary POSTed bodies, parsed unsigned and with
//! a certificate (the test key's): a signed parse only succeeds where the unsigned one
//! does, with the same command. Every answer is one well-formed `<Response>` with one
//! `<StatusCode>`, no control character but `\n`; `signed_part` never panics.
#![no_main]

mod shared;

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::config::{RsaRule, SignHash};
use paysys::domain::{AccountKey, AccountRule, Amount, TxnId};
use paysys::outcome::{Command, Fault, Outcome, Refusal, Subscriber};
use paysys::protocol::easypay::{signed_part, Easypay};
use paysys::protocol::{ParseContext, Protocol};
use shared::{check_xml, now, request};

fn outcomes(parsed: &Result<Command, Refusal>) -> Vec<Outcome> {
    let mut all = vec![Outcome::Failed(Fault::DatabaseRead("gone".into()))];
    match parsed {
        Err(r) => all.push(Outcome::Refused(r.clone())),
        Ok(Command::Book(b)) => {
            assert_eq!(
                TxnId::parse_token(b.order_id.as_str()).as_ref(),
                Ok(&b.order_id)
            );
            assert!(b.sum.kopecks() >= 0);
            all.push(Outcome::Booked {
                payment_id: 1,
                repeat: true,
            });
        }
        Ok(Command::Confirm(r)) => {
            assert!(r.payment_id.is_some_and(|p| p > 0));
            all.push(Outcome::Paid {
                prv_txn: 1,
                sum: Amount::from_kopecks(1),
                repeat: false,
            });
        }
        Ok(Command::Unbook(_)) => all.push(Outcome::Cancelled {
            prv_txn: 1,
            sum: Amount::from_kopecks(1),
            repeat: false,
        }),
        Ok(Command::Check(c)) => all.push(Outcome::Checked {
            subscriber: Subscriber {
                id: c.account.subscriber_id().unwrap_or(1),
                name: "<Ivanov & Co>".into(),
                balance: Some(Amount::from_kopecks(-5)),
                group: None,
                account: None,
            },
            sum: None,
            limits: (Amount::from_kopecks(1), Amount::from_kopecks(100)),
        }),
        Ok(other) => panic!("EasyPay parsed into {other:?}"),
    }
    all
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_BODY {
        return;
    }
    let _ = signed_part(data);
    let post = request("POST", "text/xml", b"", data);
    let echo = Easypay.echo(&post);
    let rule = RsaRule {
        certificate: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/easypay/easysoft.cer"
        )),
        private_key: None,
        hash: SignHash::Sha1,
        service_id: None,
    };
    let account = AccountRule::new(AccountKey::Login);
    let ctx = |rsa| ParseContext {
        account: &account,
        now: now(),
        test: false,
        sign: None,
        rsa,
        card: None,
        monobank_key: None,
    };
    let plain = Easypay.parse(&post, &ctx(None));
    let signed = Easypay.parse(&post, &ctx(Some(&rule)));
    if signed.is_ok() {
        assert_eq!(signed, plain, "a signature changes nothing but admission");
    }
    for outcome in outcomes(&plain) {
        let xml = Easypay.render(&echo, &outcome).response.body;
        check_xml(&xml, b"Response");
        assert_eq!(xml.matches("<StatusCode>").count(), 1, "{xml:?}");
    }
});
