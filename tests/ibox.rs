//! `protocol = "ibox"` through the real `paysys_check` executable on ABillS's tables
//! (sql/abills.sql): OSMP with `ibox_txn_id` and `prv_txn_date`, ABillS system id 60.

mod common;

use common::abills::{self, Abills};

fn ibox() -> Abills {
    Abills::with_systems(
        &abills::system("ibox", abills::DEFAULT_ALLOW, "account = \"uid\"")
            .replace("protocol = \"osmp\"", "protocol = \"ibox\""),
    )
}

#[test]
fn check_pay_repeat_cancel() {
    let a = ibox();
    let before = a.deposit(1);
    let r = a.get("command=check&txn_id=199869974&account=1&sum=0.00");
    assert_eq!(r.element("result").as_deref(), Some("0"), "{r:?}");
    assert_eq!(r.element("ibox_txn_id").as_deref(), Some("199869974"));
    assert!(
        r.body.contains("<field2 name=\"balance\">12.50</field2>"),
        "{r:?}"
    );
    // ABillS's iBox module: a check without a sum is 300.
    let r = a.get("command=check&txn_id=1&account=1");
    assert_eq!(r.element("result").as_deref(), Some("300"), "{r:?}");

    let pay = "command=pay&txn_id=199869975&account=1&sum=100.00&txn_date=TXN_DATE&pay_type=1"
        .replace("TXN_DATE", &common::txn_date(0));
    let r = a.get(&pay);
    assert_eq!(r.element("result").as_deref(), Some("0"), "{r:?}");
    let prv_txn = r.element("prv_txn").expect("prv_txn");
    let date = r.element("prv_txn_date").expect("prv_txn_date");
    assert_eq!(date.len(), 19, "{date}");
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    // The repeat: the same answer, nothing credited.
    let again = a.get(&pay);
    assert_eq!(again.body, r.body);
    assert_eq!(a.deposit(1), paid);
    // ABillS's rows: system 60, "IBO:" (the name's first three letters, ABillS's rule).
    let log = a.log_row("IBO:199869975");
    assert_eq!(log.system_id, 60);

    let r = a.get(&format!(
        "command=cancel&txn_id=199869975&prv_txn={prv_txn}"
    ));
    assert_eq!(r.element("result").as_deref(), Some("0"), "{r:?}");
    assert_eq!(a.deposit(1), before);

    let r = a.get("command=check&txn_id=2&account=999999&sum=1.00");
    assert_eq!(r.element("result").as_deref(), Some("5"), "{r:?}");
}
