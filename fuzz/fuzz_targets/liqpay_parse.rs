//! LiqPay: a callback's `data` and `signature` (the input split at its first NUL; without
//! one, the whole input is the decoded JSON) and the status answer. Checks: nothing panics;
//! only a signature we made verifies; any JSON we sign is never refused as unsigned or
//! forged, and a payment read from it has a non-negative amount that prints and parses
//! back, a non-empty order id; a status answer's payment is the order asked about.
#![no_main]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use paysys::card::liqpay::{parse_status_answer, verify_callback, Keys, SignedForm, StatusAnswer};
use paysys::card::{Error, Secret};
use paysys::domain::Amount;

fuzz_target!(|input: &[u8]| {
    let keys = Keys {
        public_key: "i00000000".to_string(),
        private_key: Secret::new("a4825234f4bae72a0be04eafe9e8e2bada209255"),
    };
    let check = |payment: &paysys::card::liqpay::Payment| {
        assert!(payment.amount.kopecks() >= 0);
        assert_eq!(
            Amount::parse(&payment.amount.to_string()),
            Ok(payment.amount)
        );
        assert!(!payment.order_id.is_empty());
        assert_eq!(
            paysys::card::liqpay::Status::parse(payment.status.as_str()),
            payment.status
        );
    };

    // As received: data and signature from the input.
    if let Some(nul) = input.iter().position(|&b| b == 0) {
        let data = String::from_utf8_lossy(&input[..nul]);
        let signature = String::from_utf8_lossy(&input[nul + 1..]);
        if let Ok(payment) = verify_callback(&keys, Some(&data), Some(&signature)) {
            // Verified: `data` is base64 of a JSON text that, signed by us, gives exactly
            // this `data` and this `signature`.
            let json = BASE64
                .decode(data.as_bytes())
                .expect("verified data is base64");
            let json = String::from_utf8(json).expect("verified data is UTF-8");
            let ours = SignedForm::new(&keys.private_key, &json);
            assert_eq!(
                (ours.data.as_str(), ours.signature.as_str()),
                (&*data, &*signature)
            );
            check(&payment);
        }
    }

    // Signed by us: the input is the JSON.
    let json = String::from_utf8_lossy(input);
    let form = SignedForm::new(&keys.private_key, &json);
    match verify_callback(&keys, Some(&form.data), Some(&form.signature)) {
        Err(Error::Unsigned { .. }) | Err(Error::Forged { .. }) => {
            panic!("our own signature was refused")
        }
        Ok(payment) => check(&payment),
        Err(_) => {}
    }
    // Another key never verifies it (empty data is refused before any key is used).
    let other = Keys {
        private_key: Secret::new("another"),
        ..keys.clone()
    };
    assert!(
        form.data.is_empty()
            || matches!(
                verify_callback(&other, Some(&form.data), Some(&form.signature)),
                Err(Error::Forged { .. }) | Err(Error::TooLarge { .. })
            )
    );

    if let Ok(StatusAnswer::Payment(payment)) = parse_status_answer(&keys, "ord-42", input) {
        assert_eq!(payment.order_id, "ord-42");
        check(&payment);
    }
});
