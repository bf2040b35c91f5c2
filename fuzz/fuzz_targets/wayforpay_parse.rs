//! WayForPay: the `serviceUrl` callback and the `CHECK_STATUS` answer (the input is the
//! body), and the accept answer and `CHECK_STATUS` request for the input as an order
//! reference. Checks: nothing panics; a payment read has a non-negative amount that prints
//! and parses back, a non-empty order reference without `;`, a status that prints back; a
//! status answer's payment is the order asked about; a request or answer is built exactly
//! when the order reference holds no `;`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paysys::card::wayforpay::{
    accept_answer, check_status_request, parse_check_status_answer, verify_callback, Merchant,
    Payment, StatusAnswer, TransactionStatus,
};
use paysys::card::Secret;
use paysys::domain::Amount;

fn check(payment: &Payment) {
    assert!(payment.amount.kopecks() >= 0);
    assert_eq!(
        Amount::parse(&payment.amount.to_string()),
        Ok(payment.amount)
    );
    assert!(!payment.order_reference.is_empty());
    assert!(!payment.order_reference.contains(';'));
    assert_eq!(
        TransactionStatus::parse(payment.transaction_status.as_str()),
        payment.transaction_status
    );
}

fuzz_target!(|input: &[u8]| {
    let merchant = Merchant {
        account: "test_merch_n1".to_string(),
        domain: "isp.example".to_string(),
        secret_key: Secret::new("flk3409refn54t54t*FNJRET"),
    };
    if let Ok(payment) = verify_callback(&merchant, input) {
        check(&payment);
    }
    if let Ok(StatusAnswer::Payment(payment)) =
        parse_check_status_answer(&merchant, "ord-42", input)
    {
        assert_eq!(payment.order_reference, "ord-42");
        check(&payment);
    }
    let reference = String::from_utf8_lossy(input);
    let signable = !reference.contains(';');
    let accept = accept_answer(&merchant, &reference, 1_700_000_000);
    assert_eq!(accept.is_ok(), signable);
    if let Ok(json) = accept {
        assert!(json.starts_with("{\"orderReference\":") && json.ends_with('}'));
    }
    assert_eq!(
        check_status_request(&merchant, &reference).is_ok(),
        signable
    );
});
