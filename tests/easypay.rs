//! `protocol = "easypay"` through the real `paysys_check` executable on ABillS's tables:
//! requests signed with a test "EasySoft" key (tests/fixtures/easypay), answers signed with
//! the provider's. Payment books, Confirm pays exactly once, Cancel reverses or withdraws.

mod common;

use std::path::PathBuf;

use common::abills::{self, Abills};
use common::Answer;
use paysys::config::SignHash;
use paysys::protocol::easypay::{load_certificate, load_private_key, sign, signed_part, verify};

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/easypay").join(name)
}

fn easypay() -> Abills {
    let extra = format!(
        "account = \"login\"\ncertificate = \"{}\"\nprivate_key = \"{}\"",
        fixture("easysoft.cer").display(),
        fixture("provider.key").display()
    );
    Abills::with_systems(
        &abills::system("easypay", abills::DEFAULT_ALLOW, &extra)
            .replace("protocol = \"osmp\"", "protocol = \"easypay\""),
    )
}

/// `operation` in a `<Request>` signed as EasySoft signs it.
fn signed(operation: &str) -> String {
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Request><DateTime>{}</DateTime><Sign></Sign>{operation}</Request>",
        chrono::Local::now().format("%Y-%m-%dT%H:%M:%S")
    );
    let key = load_private_key(&fixture("easysoft.key")).unwrap();
    let hex = sign(&key, SignHash::Sha1, doc.as_bytes());
    doc.replace("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"))
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

/// StatusCode, after checking that the answer is signed with the provider's key.
fn status(a: &Answer) -> i32 {
    assert_eq!(a.status, 200, "{a:?}");
    let (signed, hex) = signed_part(a.body.as_bytes()).expect("a <Sign>");
    let cert = load_certificate(&fixture("provider.cer")).unwrap();
    assert_eq!(
        verify(&cert, SignHash::Sha1, &signed, &hex),
        Ok(()),
        "{a:?}"
    );
    a.element("StatusCode")
        .expect("StatusCode")
        .parse()
        .unwrap()
}

fn payment(order: &str, amount: &str) -> String {
    signed(&format!(
        "<Payment><ServiceId>1220</ServiceId><OrderId>{order}</OrderId><Account>test1</Account>\
         <Amount>{amount}</Amount><ObjectId>1004</ObjectId></Payment><Token>GqcbcNJR</Token>"
    ))
}

fn confirm(payment_id: &str) -> String {
    signed(&format!(
        "<Confirm><ServiceId>1220</ServiceId><PaymentId>{payment_id}</PaymentId></Confirm>"
    ))
}

#[test]
fn check_book_confirm_once_cancel() {
    let a = easypay();
    let before = a.deposit(1);
    let r = post(
        &a,
        &signed("<Check><ServiceId>1220</ServiceId><Account>test1</Account></Check>"),
    );
    assert_eq!(status(&r), 0);
    assert_eq!(r.element("Name").as_deref(), Some("Ив*** И*** И*******"));
    assert_eq!(r.element("Balance").as_deref(), Some("12.50"));
    assert_eq!(
        status(&post(
            &a,
            &signed("<Check><ServiceId>1</ServiceId><Account>nobody</Account></Check>")
        )),
        -1
    );

    // Payment books; nothing is credited until Confirm.
    let r = post(&a, &payment("352862406", "100.00"));
    assert_eq!(status(&r), 0);
    let payment_id = r.element("PaymentId").expect("PaymentId");
    assert_eq!(a.deposit(1), before);
    // The same booking again: the same PaymentId. Another amount: -3.
    assert_eq!(
        post(&a, &payment("352862406", "100.00"))
            .element("PaymentId")
            .as_deref(),
        Some(payment_id.as_str())
    );
    assert_eq!(status(&post(&a, &payment("352862406", "99.00"))), -3);

    // Twenty confirmations at once credit once, and each answers 0.
    let body = confirm(&payment_id);
    let codes: Vec<i32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|_| s.spawn(|| status(&post(&a, &body))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    let paid = a.deposit(1);
    assert_ne!(paid, before);
    let credited = a
        .payments()
        .into_iter()
        .filter(|p| p.ext_id == "EAS:352862406")
        .count();
    assert_eq!(credited, 1);
    assert_eq!(a.log_row("EAS:352862406").system_id, 57);
    assert_eq!(status(&post(&a, &confirm("999999"))), -4);

    // Cancel of the confirmed order reverses its payment.
    let cancel = |id: &str| {
        signed(&format!(
            "<Cancel><ServiceId>1220</ServiceId><PaymentId>{id}</PaymentId></Cancel>"
        ))
    };
    let r = post(&a, &cancel(&payment_id));
    assert_eq!(status(&r), 0, "{r:?}");
    assert!(r.element("CancelDate").is_some());
    assert_eq!(a.deposit(1), before);

    // An order cancelled before it is confirmed is never paid.
    let r = post(&a, &payment("352862407", "5.00"));
    let second = r.element("PaymentId").unwrap();
    assert_eq!(status(&post(&a, &cancel(&second))), 0);
    assert_eq!(status(&post(&a, &confirm(&second))), -2);
    assert_eq!(a.deposit(1), before);
}

#[test]
fn unsigned_or_forged_requests_are_refused_before_anything() {
    let a = easypay();
    let good = payment("777", "1.00");
    for bad in [
        good.replace("<Amount>1.00</Amount>", "<Amount>1000.00</Amount>"),
        good.replace("<Sign>", "<Sign>0"),
        good.split("<Sign>").next().unwrap().to_string()
            + "<Sign></Sign><Payment><OrderId>777</OrderId><Account>test1</Account><Amount>1.00</Amount></Payment></Request>",
    ] {
        assert_eq!(status(&post(&a, &bad)), -5, "{bad}");
    }
    let orders: u64 = {
        use mysql::prelude::Queryable;
        a.db.conn()
            .query_first("SELECT COUNT(*) FROM paysys_order")
            .unwrap()
            .unwrap()
    };
    assert_eq!(orders, 0, "nothing was booked");
    assert!(a.site.log().contains("Wrong signature"), "{}", a.site.log());
}

/// EasySoft signs every provider's requests with one key, so a genuine request made for
/// another provider's service verifies here too. With service_id set, a request must name
/// it: one signed for another ServiceId (or none) is refused -5, and nothing is booked.
#[test]
fn a_request_signed_for_another_service_is_refused() {
    let a = easypay();
    let extra = format!(
        "account = \"login\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\nservice_id = \"1220\"",
        fixture("easysoft.cer").display(),
        fixture("provider.key").display()
    );
    a.set_systems(
        &abills::system("easypay", abills::DEFAULT_ALLOW, &extra)
            .replace("protocol = \"osmp\"", "protocol = \"easypay\""),
    );
    let ours = payment("801", "1.00");
    assert_eq!(status(&post(&a, &ours)), 0);
    let theirs = signed(
        "<Payment><ServiceId>9999</ServiceId><OrderId>802</OrderId><Account>test1</Account>\
         <Amount>1.00</Amount></Payment>",
    );
    let none = signed(
        "<Payment><OrderId>803</OrderId><Account>test1</Account><Amount>1.00</Amount></Payment>",
    );
    let confirm_theirs =
        signed("<Confirm><ServiceId>9999</ServiceId><PaymentId>1</PaymentId></Confirm>");
    for bad in [&theirs, &none, &confirm_theirs] {
        assert_eq!(status(&post(&a, bad)), -5, "{bad}");
    }
    let orders: u64 = {
        use mysql::prelude::Queryable;
        a.db.conn()
            .query_first("SELECT COUNT(*) FROM paysys_order")
            .unwrap()
            .unwrap()
    };
    assert_eq!(orders, 1, "only our own service's order was booked");
    assert!(
        a.site.log().contains("not this system's service_id '1220'"),
        "{}",
        a.site.log()
    );
}

/// `paysys easypay-verify` on a captured request, and `check-config` on the system's keys.
#[test]
fn the_admins_tools_check_the_keys() {
    let a = easypay();
    let dir = std::env::temp_dir().join(format!("paysys-easypay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("request.xml");
    std::fs::write(&good, payment("1", "1.00")).unwrap();
    let forged = dir.join("forged.xml");
    std::fs::write(
        &forged,
        payment("1", "1.00").replace("<Amount>1.00", "<Amount>9.00"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
            .arg("easypay-verify")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let cert = fixture("easysoft.cer");
    let cert = cert.to_str().unwrap();
    let (code, out) = run(&[good.to_str().unwrap(), "--certificate", cert]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("yes: the request verifies"), "{out}");
    let (code, out) = run(&[forged.to_str().unwrap(), "--certificate", cert]);
    assert_eq!(code, Some(1), "{out}");
    let (code, _) = run(&[
        good.to_str().unwrap(),
        "--certificate",
        cert,
        "--sign",
        "sha256",
    ]);
    assert_eq!(code, Some(1));
    let config = a.site.config_path();
    let (code, out) = run(&[
        good.to_str().unwrap(),
        "--system",
        "easypay",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _) = run(&[good.to_str().unwrap(), "--certificate", "/nonexistent.cer"]);
    assert_eq!(code, Some(2));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(["check-config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("keys     easypay: certificate"), "{text}");
    assert!(text.contains("answers are signed"), "{text}");
    // check-db knows EasyPay's table is needed.
    let check_db = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paysys"))
            .args(["check-db", config.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = check_db();
    assert!(ok && text.contains("paysys_order"), "{text}");
    {
        use mysql::prelude::Queryable;
        a.db.conn().query_drop("DROP TABLE paysys_order").unwrap();
    }
    let (ok, text) = check_db();
    assert!(
        !ok && text.contains("paysys_order (EasyPay's booked orders, card orders) is missing"),
        "{text}"
    );
    // A table of an earlier version: the columns card orders added are named.
    {
        use mysql::prelude::Queryable;
        a.db.conn()
            .query_drop(
                "CREATE TABLE paysys_order (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 system_name VARCHAR(32) NOT NULL, order_id VARCHAR(64) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL, account VARCHAR(64) NOT NULL, \
                 amount DECIMAL(16,2) NOT NULL, created DATETIME NOT NULL, cancelled DATETIME NULL) \
                 ENGINE=InnoDB",
            )
            .unwrap();
    }
    let (ok, text) = check_db();
    assert!(
        !ok && text.contains("paysys_order has no column state, charged,")
            && text.contains("subscriber_id (a table of an earlier version)"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A cancel of an unconfirmed order racing its confirmation: the cancel holds the order's
/// row while it marks it; the confirmation waits for it and then refuses, crediting nothing.
#[test]
fn a_cancel_racing_the_confirmation_wins_cleanly() {
    use mysql::prelude::Queryable;
    let a = easypay();
    let before = a.deposit(1);
    let r = post(&a, &payment("555", "3.00"));
    let payment_id = r.element("PaymentId").expect("PaymentId");
    // What drop_order does, held open: the order's row locked, found unpaid, marked.
    let mut cancel = a.db.conn();
    cancel.query_drop("START TRANSACTION").unwrap();
    cancel
        .exec_drop(
            "SELECT id FROM paysys_order WHERE id = ? FOR UPDATE",
            (&payment_id,),
        )
        .unwrap();
    cancel
        .exec_drop(
            "UPDATE paysys_order SET cancelled = NOW() WHERE id = ?",
            (&payment_id,),
        )
        .unwrap();
    let body = confirm(&payment_id);
    let answer = std::thread::scope(|s| {
        let confirming = s.spawn(|| post(&a, &body));
        std::thread::sleep(std::time::Duration::from_millis(500));
        cancel.query_drop("COMMIT").unwrap();
        confirming.join().unwrap()
    });
    assert_eq!(status(&answer), -2, "{answer:?}");
    assert_eq!(a.deposit(1), before, "a cancelled order is never paid");
}

/// A Confirm sends the database no more statements than a terminal's pay of the same
/// billing: the order is read, checked and locked by the pay's own first statement
/// (MariaDB 10.5 and later), not by a read before it. ABillS, CGI processes, a private
/// server's general log.
#[test]
fn a_confirm_costs_no_more_statements_than_a_terminals_pay() {
    let Some(logged) = common::mariadb::Logged::start("easypay_statements") else {
        return;
    };
    let extra = format!(
        "account = \"login\"\ncertificate = \"{}\"\nprivate_key = \"{}\"",
        fixture("easysoft.cer").display(),
        fixture("provider.key").display()
    );
    let systems = abills::system("osmp", &["192.0.2.7"], "account = \"login\"")
        + &abills::system("easypay", abills::DEFAULT_ALLOW, &extra)
            .replace("protocol = \"osmp\"", "protocol = \"easypay\"");
    let (a, pay) = abills::after_a_terminal_pay(&logged, &systems);
    let before = a.deposit(1);
    let r = post(&a, &payment("352862499", "100.00"));
    assert_eq!(status(&r), 0);
    let payment_id = r.element("PaymentId").expect("PaymentId");
    let body = confirm(&payment_id);
    let (sent, r) = logged.statements(|| post(&a, &body));
    assert_eq!(status(&r), 0, "{r:?}");
    assert_ne!(a.deposit(1), before);
    logged.assert_no_more("a Confirm", &pay, &sent);
}
