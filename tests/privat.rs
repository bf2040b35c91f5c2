//! `protocol = "privat"` (PrivatBank's Debt interface) through the real `paysys_check`
//! executable on ABillS's tables: Search, Check, Pay (once per bank payment id, also under
//! concurrent repeats), Cancel, and the errors.

mod common;

use common::abills::{self, Abills};
use common::Answer;

const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";

fn privat() -> Abills {
    Abills::with_systems(
        &abills::system("privat", abills::DEFAULT_ALLOW, "account = \"login\"")
            .replace("protocol = \"osmp\"", "protocol = \"privat\""),
    )
}

fn post(a: &Abills, body: &str) -> Answer {
    let len = body.len().to_string();
    a.cgi(
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "text/xml"),
            ("CONTENT_LENGTH", &len),
            ("REMOTE_ADDR", "127.0.0.1"),
        ],
        body.as_bytes(),
    )
}

fn transfer(action: &str, data: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Transfer xmlns=\"http://debt.privatbank.ua/Transfer\" \
         interface=\"Debt\" action=\"{action}\">{data}</Transfer>"
    )
}

fn pay(id: &str, account: &str, sum: &str) -> String {
    transfer(
        "Pay",
        &format!(
            "<Data {XSI} xsi:type=\"Payment\" id=\"{id}\" number=\"12432\"><CompanyInfo>\
             <CheckReference>1</CheckReference></CompanyInfo><PayerInfo billIdentifier=\"{account}\"/>\
             <TotalSum>{sum}</TotalSum><CreateTime>{now}</CreateTime></Data>",
            now = chrono::Local::now().to_rfc3339()
        ),
    )
}

/// `reference` of a Gateway answer, or the ErrorInfo code as "error N".
fn gateway(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{a:?}");
    let attr = |name: &str| {
        let key = format!("{name}=\"");
        let start = a.body.find(&key)? + key.len();
        let end = a.body[start..].find('"')?;
        Some(a.body[start..start + end].to_string())
    };
    match (a.body.contains("xsi:type=\"Gateway\""), attr("code")) {
        (true, _) => attr("reference").expect("reference"),
        (false, Some(code)) => format!("error {code}"),
        _ => panic!("neither Gateway nor ErrorInfo: {a:?}"),
    }
}

#[test]
fn search_check_pay_repeat_cancel() {
    let a = privat();
    let before = a.deposit(1);
    let search = transfer(
        "Search",
        &format!("<Data {XSI} xsi:type=\"Payer\"><Unit name=\"bill_identifier\" value=\"test1\"/></Data>"),
    );
    let r = post(&a, &search);
    assert!(r.body.contains("xsi:type=\"DebtPack\""), "{r:?}");
    assert!(r.body.contains("<Fio>Ив*** И*** И*******</Fio>"), "{r:?}");
    assert!(r.body.contains("<Balance>12.50</Balance>"), "{r:?}");
    // A-Bank and Monobank: no namespace.
    let r = post(
        &a,
        &search.replace(" xmlns=\"http://debt.privatbank.ua/Transfer\"", ""),
    );
    assert!(r.body.contains("xsi:type=\"DebtPack\""), "{r:?}");
    let r = post(&a, &search.replace("test1", "nobody"));
    assert_eq!(gateway(&r), "error 2");

    let check = transfer(
        "Check",
        &format!("<Data {XSI} xsi:type=\"Payment\" number=\"1\"><PayerInfo billIdentifier=\"test1\"/><TotalSum>25.00</TotalSum></Data>"),
    );
    assert_eq!(gateway(&post(&a, &check)), "1", "the subscriber's number");

    let r = post(&a, &pay("PB-9001", "test1", "25.00"));
    let reference = gateway(&r);
    assert!(reference.parse::<u64>().is_ok(), "{r:?}");
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    assert_eq!(
        gateway(&post(&a, &pay("PB-9001", "test1", "25.00"))),
        reference
    );
    assert_eq!(a.deposit(1), paid);
    assert_eq!(
        gateway(&post(&a, &pay("PB-9001", "test1", "26.00"))),
        "error 7"
    );
    assert_eq!(gateway(&post(&a, &pay("PB-9002", "test1", "x"))), "error 3");
    assert_eq!(a.deposit(1), paid);
    // ABillS: system 65, "PRI:PB-9001".
    assert_eq!(a.log_row("PRI:PB-9001").system_id, 65);

    let cancel = |id: &str| {
        transfer(
            "Cancel",
            &format!(
                "<Data {XSI} xsi:type=\"Payment\" id=\"{id}\"><TotalSum>25.00</TotalSum></Data>"
            ),
        )
    };
    assert_eq!(gateway(&post(&a, &cancel("PB-9001"))), reference);
    assert_eq!(a.deposit(1), before);
    assert_eq!(gateway(&post(&a, &cancel("PB-0000"))), "error 98");
    assert_eq!(
        gateway(&post(&a, &transfer("Upload", "<Data/>"))),
        "error 1"
    );
}

#[test]
fn concurrent_repeats_credit_once() {
    let a = privat();
    let before = a.deposit(1);
    let body = pay("PB-7", "test1", "1.00");
    let refs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| gateway(&post(&a, &body))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        refs.iter()
            .all(|r| r == &refs[0] && !r.starts_with("error")),
        "{refs:?}"
    );
    let payments = a
        .payments()
        .into_iter()
        .filter(|p| p.ext_id == "PRI:PB-7")
        .count();
    assert_eq!(payments, 1);
    assert_ne!(a.deposit(1), before);
}
