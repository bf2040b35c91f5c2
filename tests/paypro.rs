//! `paysys paypro-provider`: the PayPRO own-provider description it prints reads back as a
//! provider that pre-checks and pays with exactly the OSMP requests.

use std::process::Command;

use chrono::NaiveDateTime;
use paysys::domain::{Amount, TxnId};
use paysys::paypro::{self, Encoding, Layer, Method, Payment, Providers};

fn paysys(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paysys"))
        .args(args)
        .env_remove("PAYSYS_CONFIG")
        .output()
        .expect("run paysys");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn payment() -> Payment {
    Payment {
        account: "59071".into(),
        sum: Amount::parse("10.25").unwrap(),
        paid: Amount::parse("10.25").unwrap(),
        txn_id: TxnId::parse("666").unwrap(),
        date: NaiveDateTime::parse_from_str("20261122100001", "%Y%m%d%H%M%S").unwrap(),
        client_phone: String::new(),
    }
}

/// Reads the printed file as a terminal would, and checks the provider it describes.
fn read_back(bytes: &[u8], number: i64, url: &str) -> paypro::Provider {
    let mut providers = Providers::new();
    providers
        .layer_bytes("MyProviders.ini", bytes, Layer::Own)
        .unwrap();
    assert_eq!(providers.numbers(), vec![number]);
    let provider = providers.get(number).unwrap().unwrap();
    assert_eq!(provider.method, Method::Get);
    let check = paypro::check_request(&provider, &payment()).unwrap();
    assert_eq!(
        check.url,
        format!("{url}?command=check&txn_id=666&account=59071&sum=0.00")
    );
    let pay = paypro::pay_request(&provider, &payment()).unwrap();
    assert_eq!(
        pay.url,
        format!("{url}?command=pay&txn_id=666&account=59071&sum=10.25&txn_date=20261122100001")
    );
    let answer =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><osmp_txn_id>666</osmp_txn_id>\
                  <result>0</result><comment>OK</comment><fields><field1 name=\"fio\">Ив*** И***\
                  </field1><field2 name=\"balance\">12.50</field2></fields></response>\n";
    let shown: Vec<_> = paypro::server_variables(&provider, answer)
        .into_iter()
        .map(|(v, value)| (v.name.clone(), value.map(String::from)))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("Абонент".to_string(), Some("Ив*** И***".to_string())),
            ("Баланс".to_string(), Some("12.50".to_string())),
        ]
    );
    provider
}

#[test]
fn paypro_provider_prints_utf8_that_reads_back() {
    let url = "https://billing.example.org/cgi-bin/osmp.cgi";
    let (ok, out, err) = paysys(&["paypro-provider", "--url", url]);
    assert!(ok, "{err}");
    assert_eq!(paypro::decode(&out).1, Encoding::Utf8);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(!text.contains('\r'));
    assert!(text.starts_with("; paysys: PayPRO own-provider description"));
    let provider = read_back(&out, -1, url);
    assert_eq!(provider.short_name, "Интернет");
}

#[test]
fn paypro_provider_prints_cp1251_with_crlf() {
    let url = "https://isp.example/cgi-bin/paysys_check.cgi";
    let (ok, out, err) = paysys(&[
        "paypro-provider",
        "--cp1251",
        "--url",
        url,
        "--number",
        "17",
        "--name",
        "Интернет «Ёлка»",
    ]);
    assert!(ok, "{err}");
    let (text, encoding) = paypro::decode(&out);
    assert_eq!(encoding, Encoding::Windows1251);
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    assert!(text.contains("\r\nКраткое наименование=Интернет «Ёлка»\r\n"));
    let provider = read_back(&out, -17, url);
    assert_eq!(provider.name.as_deref(), Some("Интернет «Ёлка»"));
    assert_eq!(provider.short_name, "Интернет «Ёлка»");
}

#[test]
fn paypro_provider_refuses_what_a_terminal_could_not_use() {
    for args in [
        &["paypro-provider"][..],
        &["paypro-provider", "--url"],
        &["paypro-provider", "--url", "billing.example.org/osmp.cgi"],
        &[
            "paypro-provider",
            "--url",
            "http://x/osmp.cgi",
            "--number",
            "0",
        ],
        &["paypro-provider", "--url", "http://x/osmp.cgi", "--bogus"],
        &[
            "paypro-provider",
            "--url",
            "http://x/osmp.cgi",
            "--cp1251",
            "--name",
            "Ἀθῆναι",
        ],
    ] {
        let (ok, out, err) = paysys(args);
        assert!(!ok, "{args:?}");
        assert!(out.is_empty(), "{args:?}");
        assert!(!err.is_empty(), "{args:?}");
    }
}
