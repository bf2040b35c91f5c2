//! `protocol = "city24"` through the real `paysys_check` executable on ABillS's tables:
//! check, pay, repeat, conflict, cancel by RevertId, and the reconciliation listing.

mod common;

use common::abills::{self, Abills};

fn city24() -> Abills {
    Abills::with_systems(
        &abills::system("city24", abills::DEFAULT_ALLOW, "account = \"login\"")
            .replace("protocol = \"osmp\"", "protocol = \"city24\""),
    )
}

fn code(a: &common::Answer) -> i32 {
    a.element("ResultCode")
        .unwrap_or_else(|| panic!("no ResultCode: {a:?}"))
        .parse()
        .unwrap()
}

#[test]
fn check_pay_repeat_cancel_and_listing() {
    let a = city24();
    let before = a.deposit(1);
    let r = a.get("QueryType=check&TransactionId=500&Account=test1");
    assert_eq!(code(&r), 0, "{r:?}");
    assert!(
        r.body.contains("<field2 name=\"balance\">12.50</field2>"),
        "{r:?}"
    );
    assert_eq!(
        code(&a.get("QueryType=check&TransactionId=500&Account=nobody")),
        21
    );

    let when = common::txn_date(-5);
    let pay = format!(
        "QueryType=pay&TransactionId=501&Account=test1&Amount=30.00&TransactionDate={when}"
    );
    let r = a.get(&pay);
    assert_eq!(code(&r), 0, "{r:?}");
    let ext = r.element("TransactionExt").expect("TransactionExt");
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    // The repeat: the same TransactionExt, nothing credited.
    let again = a.get(&pay);
    assert_eq!(
        again.element("TransactionExt").as_deref(),
        Some(ext.as_str())
    );
    assert_eq!(a.deposit(1), paid);
    // The same TransactionId with another sum: refused, nothing credited.
    let r = a.get(&pay.replace("Amount=30.00", "Amount=31.00"));
    assert_eq!(code(&r), 22, "{r:?}");
    assert_eq!(a.deposit(1), paid);
    // ABillS's rows: system 47 (its USMP module), "CIT:501".
    assert_eq!(a.log_row("CIT:501").system_id, 47);

    // Another pay, then the listing of the period has both, in time order.
    let pay2 = format!(
        "QueryType=pay&TransactionId=502&Account=test1&Amount=1.50&TransactionDate={}",
        common::txn_date(-1)
    );
    assert_eq!(code(&a.get(&pay2)), 0);
    let from = (chrono::Local::now() - chrono::Duration::hours(1)).format("%Y%m%d%H%M%S");
    let to = (chrono::Local::now() + chrono::Duration::hours(1)).format("%Y%m%d%H%M%S");
    let listing = a.get(&format!("CheckDateBegin={from}&CheckDateEnd={to}"));
    assert_eq!(listing.status, 200);
    assert_eq!(listing.body.matches("<Payment>").count(), 2, "{listing:?}");
    let first = listing
        .body
        .find("<TransactionId>501</TransactionId>")
        .expect("501 listed");
    let second = listing
        .body
        .find("<TransactionId>502</TransactionId>")
        .expect("502 listed");
    assert!(first < second, "{listing:?}");
    assert!(
        listing.body.contains("<Amount>30.00</Amount>"),
        "{listing:?}"
    );

    // Cancel by RevertId: the deposit goes back, and the listing no longer has it.
    let r = a.get(&format!(
        "QueryType=cancel&TransactionId=503&RevertId=501&RevertDate={}&Amount=30.00&Account=test1",
        common::txn_date(0)
    ));
    assert_eq!(code(&r), 0, "{r:?}");
    assert_eq!(r.element("RevertId").as_deref(), Some("501"));
    assert_eq!(r.element("TransactionExt").as_deref(), Some(ext.as_str()));
    let listing = a.get(&format!("CheckDateBegin={from}&CheckDateEnd={to}"));
    assert_eq!(listing.body.matches("<Payment>").count(), 1, "{listing:?}");
    // A cancel of a payment that is not there: 22.
    let r = a.get("QueryType=cancel&TransactionId=504&RevertId=999&Amount=1.00&Account=test1");
    assert_eq!(code(&r), 22, "{r:?}");
    // A repeated pay of the cancelled one is not paid again.
    assert_eq!(code(&a.get(&pay)), 22);
    let log = a.site.log();
    assert!(log.contains("cmd=list"), "{log}");
}
