//! Domain parsers: `Amount`, `parse_balance`, `TxnId`, `PaymentCode`, `Account`, `TxnDate`,
//! `AccountKey`, checked against what their documentation promises and for round trips.
//!
//! The input, as text (invalid UTF-8 is replaced by U+FFFD), goes to every parser. Its first
//! eight bytes, read as a little-endian `u64`, are also used as a subscriber id and a window.
#![no_main]

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Timelike};
use libfuzzer_sys::fuzz_target;
use paysys::domain::{
    parse_balance, Account, AccountKey, AccountRef, Amount, AmountError, PaymentCode, TxnDate,
    TxnId,
};

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 22)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// An independent reading of the sum grammar: digits, optionally `.` and 1–2 digits.
/// `Some(Ok(kopecks))`, `Some(Err(()))` for well-formed but over 13 integer digits, `None`
/// for malformed.
fn reference_amount(s: &str) -> Option<Result<i128, ()>> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || frac.len() > 2 {
        return None;
    }
    if s.contains('.') && frac.is_empty() {
        return None;
    }
    let significant = int.trim_start_matches('0');
    if significant.len() > 13 {
        return Some(Err(()));
    }
    let whole: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().unwrap()
    };
    let cents: i128 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i128>().unwrap() * 10,
        _ => frac.parse().unwrap(),
    };
    Some(Ok(whole * 100 + cents))
}

fn check_amount_text(text: &str, amount: Amount) {
    let (int, frac) = text.split_once('.').expect("no decimal point");
    let int = int.strip_prefix('-').unwrap_or(int);
    assert!(!int.is_empty() && all_digits(int), "{text}");
    assert!(frac.len() == 2 && all_digits(frac), "{text}");
    assert_eq!(text.starts_with('-'), amount.kopecks() < 0, "{text}");
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(data) {
        *w = *b;
    }
    let n = u64::from_le_bytes(word);

    // Amount: exactly the documented grammar; display has two decimals and parses back.
    let parsed = Amount::parse(s);
    match (&parsed, reference_amount(s)) {
        (Ok(a), Some(Ok(k))) => assert_eq!(i128::from(a.kopecks()), k, "{s:?}"),
        (Err(AmountError::TooLarge), Some(Err(()))) => {}
        (Err(AmountError::Malformed(_)), None) => {}
        (got, expected) => panic!("Amount::parse({s:?}) = {got:?}, reference {expected:?}"),
    }
    if let Ok(a) = parsed {
        assert!(a.kopecks() >= 0);
        let text = a.to_string();
        check_amount_text(&text, a);
        assert_eq!(Amount::parse(&text), Ok(a), "{text}");
        assert_eq!(parse_balance(&text), Some(a));
    }
    // Display of any kopeck count, negative and extreme ones included.
    for k in [n as i64, i64::MIN, i64::MAX, -(n as i64 % 100_000)] {
        let a = Amount::from_kopecks(k);
        let text = a.to_string();
        check_amount_text(&text, a);
        if (0..=999_999_999_999_999).contains(&k) {
            assert_eq!(Amount::parse(&text), Ok(a), "{text}");
        }
        if k.unsigned_abs() <= 999_999_999_999_999 {
            assert_eq!(parse_balance(&text), Some(a), "{text}");
        }
    }
    if let Some(b) = parse_balance(s) {
        let text = b.to_string();
        assert_eq!(parse_balance(&text), Some(b), "{s:?} -> {text}");
    }

    // TxnId: 1 to 20 ASCII digits, kept verbatim.
    match TxnId::parse(s) {
        Ok(id) => {
            assert!((1..=20).contains(&s.len()) && all_digits(s), "{s:?}");
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
        }
        Err(_) => assert!(
            !((1..=20).contains(&s.len()) && all_digits(s)),
            "{s:?} refused"
        ),
    }

    // PaymentCode: id + mod-10 check digit; for_id(id) prints a code that parses to id.
    if let Ok(code) = PaymentCode::parse(s) {
        let id = code.id();
        assert!(id > 0);
        assert!(all_digits(s) && (2..=20).contains(&s.len()), "{s:?}");
        assert_eq!(
            s.as_bytes()[s.len() - 1] - b'0',
            PaymentCode::check_digit(id)
        );
        assert_eq!(s[..s.len() - 1].parse::<u64>(), Ok(id));
        let printed = PaymentCode::for_id(id).to_string();
        assert_eq!(
            PaymentCode::parse(&printed).map(PaymentCode::id),
            Ok(id),
            "{s:?} -> {printed}"
        );
        assert_eq!(code.to_string(), printed);
        let account = Account::parse(s, AccountKey::PaymentCode).expect("code is an account");
        assert_eq!((account.as_str(), account.subscriber_id()), (s, Some(id)));
    } else if PaymentCode::parse(s.trim()).is_err() {
        // An account is read with the blanks around it dropped: " 11" is the code 11.
        assert!(Account::parse(s, AccountKey::PaymentCode).is_err());
    }
    // Every id that prints in at most 20 characters round-trips.
    if n > 0 && n < 10_000_000_000_000_000_000 {
        let printed = PaymentCode::for_id(n).to_string();
        assert_eq!(
            PaymentCode::parse(&printed).map(PaymentCode::id),
            Ok(n),
            "{printed}"
        );
        // A one-digit typo in the check digit is always caught.
        let mut typo = printed.into_bytes();
        let last = typo.len() - 1;
        typo[last] = b'0' + (typo[last] - b'0' + 1) % 10;
        assert!(PaymentCode::parse(std::str::from_utf8(&typo).unwrap()).is_err());
    }

    // Accounts are read with the blanks around them dropped (a terminal's keyboard pads
    // them); what is left is judged.
    let t = s.trim();
    // Account by bare id: digits, not zero, fits u64.
    if let Ok(account) = Account::parse(s, AccountKey::Id) {
        let id = account.subscriber_id().expect("an id account names an id");
        assert!(id > 0);
        assert_eq!(t.parse::<u64>(), Ok(id), "{s:?}");
        assert!(all_digits(t));
        assert_eq!(account.as_str(), t);
    }
    // ABillS logins and contract numbers: literal, what was typed less the blanks around
    // it, never blank-edged.
    if let Ok(account) = Account::parse(s, AccountKey::Login) {
        assert_eq!(account.refs(), &[AccountRef::Login(t.to_string())]);
        assert!(!t.is_empty() && t.trim() == t && !t.chars().any(char::is_control));
    }
    if let Ok(key) = AccountKey::parse(s) {
        assert_eq!(key.name(), s);
    }

    // TxnDate: `now` only for test systems, otherwise 14 digits naming a real time that
    // MySQL accepts as a DATETIME, and that prints back as the same 14 digits.
    for test in [false, true] {
        let Ok(date) = TxnDate::parse(s, now(), test) else {
            continue;
        };
        if s == "now" {
            assert!(test);
            assert_eq!(date.naive(), now());
            continue;
        }
        assert!(s.len() == 14 && all_digits(s), "{s:?}");
        let t = date.naive();
        assert_eq!(
            t.nanosecond(),
            0,
            "{s:?} parsed as a leap second: sql() = {}",
            date.sql()
        );
        assert_eq!(t.format("%Y%m%d%H%M%S").to_string(), s);
        let sql = date.sql();
        assert_eq!(sql.len(), 19, "{sql}");
        assert_eq!(
            NaiveDateTime::parse_from_str(&sql, "%Y-%m-%d %H:%M:%S"),
            Ok(t),
            "{sql}"
        );
        let _ = date.unix_time();
        // In UTC, wall-clock time and instants agree: the window is plain arithmetic.
        let window = (n % 100_000) as u32;
        let utc_now = chrono::Utc.from_utc_datetime(&now());
        assert_eq!(
            date.within(&utc_now, window),
            (t - now()).num_seconds().abs() <= i64::from(window) * 3600
        );
        assert!(date.within(&chrono::Utc.from_utc_datetime(&t), 0));
        assert_eq!(date.instant_in(&chrono::Utc).naive_utc(), t);
        // In any zone, the instant is within the largest offset (±26 h) of the text.
        let local = date.instant_in(&chrono::Local).naive_utc();
        assert!((local - t).num_hours().abs() <= 26, "{s:?}");
    }
});
