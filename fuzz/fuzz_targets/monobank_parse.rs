//! Monobank acquiring: a webhook (`X-Sign` and body: the input split at its first NUL;
//! without one, the whole input is the body, checked against the documented X-Sign), the
//! invoice object, the invoice/create, status and pubkey answers, and a public key as text.
//! Checks: nothing panics; a webhook that verifies parses exactly as its body does; an
//! invoice's amounts are non-negative and its status prints back; a created invoice's
//! page is https; a status answer's invoice is the one asked about.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paysys::card::monobank::{
    parse_create_answer, parse_invoice, parse_pubkey_answer, parse_status_answer, verify_webhook,
    CreateAnswer, Invoice, InvoiceStatus, PublicKey, StatusAnswer,
};

// Monobank's documented key and X-Sign (see src/card/monobank.rs's tests).
const DOC_PUBKEY: &str = "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZrd0V3WUhLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FFQUc1LzZ3NnZubGJZb0ZmRHlYWE4vS29CbVVjTgo3NWJSUWg4MFBhaEdldnJoanFCQnI3OXNSS0JSbnpHODFUZVQ5OEFOakU1c0R3RmZ5Znhub0ZJcmZBPT0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg==";
const DOC_X_SIGN: &str = "MEUCIQC/mVKhi8FKoayul2Mim3E2oaIOCNJk5dEXxTqbkeJSOQIgOM0hsW0qcP2H8iXy1aQYpmY0SJWEaWur7nQXlKDCFxA=";

fn check(invoice: &Invoice) {
    assert!(invoice.amount.kopecks() >= 0);
    assert!(invoice.final_amount.is_none_or(|a| a.kopecks() >= 0));
    assert!(!invoice.invoice_id.is_empty());
    assert_eq!(
        InvoiceStatus::parse(invoice.status.as_str()),
        invoice.status
    );
}

fuzz_target!(|input: &[u8]| {
    let Ok(key) = PublicKey::parse(DOC_PUBKEY) else {
        panic!("the documented key does not parse")
    };
    let (x_sign, body) = match input.iter().position(|&b| b == 0) {
        Some(nul) => (
            String::from_utf8_lossy(&input[..nul]).into_owned(),
            &input[nul + 1..],
        ),
        None => (DOC_X_SIGN.to_string(), input),
    };
    if let Ok(invoice) = verify_webhook(&key, Some(&x_sign), body) {
        assert_eq!(parse_invoice(body).as_ref(), Ok(&invoice));
        check(&invoice);
    }
    if let Ok(invoice) = parse_invoice(input) {
        check(&invoice);
    }
    if let Ok(StatusAnswer::Invoice(invoice)) = parse_status_answer("p2_9ZgpZVsl3", input) {
        assert_eq!(invoice.invoice_id, "p2_9ZgpZVsl3");
        check(&invoice);
    }
    if let Ok(CreateAnswer::Created {
        invoice_id,
        page_url,
    }) = parse_create_answer(input)
    {
        assert!(!invoice_id.is_empty());
        assert!(page_url.starts_with("https://"));
    }
    let _ = parse_pubkey_answer(input);
    let _ = PublicKey::parse(&String::from_utf8_lossy(input));
});
