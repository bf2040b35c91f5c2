//! Card providers' wire code: what we send to LiqPay, Monobank acquiring and WayForPay, and
//! what they send back, as pure functions over typed values. No I/O happens here: the
//! caller fetches bodies and headers, stores orders and moves money; these modules only
//! build requests, verify signatures and parse answers.
//!
//! * [`liqpay`] — the checkout form, the callback (`data` + `signature`), the status API.
//! * [`monobank`] — invoice/create, the webhook signed with ECDSA P-256 (`X-Sign`), the
//!   merchant's public key, the invoice status API.
//! * [`pubkey`] — Monobank's webhook key when the config has none: cached under `var/cache/`,
//!   fetched from the API when absent or rotated (I/O; the pipeline calls it before the
//!   parse, which stays I/O-free).
//! * [`merchant`] — which of a provider's merchants takes a subscriber's payment, by
//!   ABillS group or by account, when an ISP has several.
//! * [`probe`] — the page's limit on accounts one caller tries that name nobody.
//! * [`wayforpay`] — the checkout form, the `serviceUrl` callback and its signed accept
//!   answer, `CHECK_STATUS`.
//!
//! Rules every module keeps (the "no signature, no money"):
//!
//! 1. A callback is verified before a byte of it is parsed for money, over the bytes or text
//!    exactly as received; signatures are compared in constant time. A missing or empty
//!    signature is [`Error::Unsigned`], a wrong one [`Error::Forged`].
//! 2. Amounts are [`Amount`] (integer kopecks) read from the exact text of the JSON number,
//!    never through a float.
//! 3. Hostile input (huge, not UTF-8, deeply nested, wrong types, a duplicated field) is an
//!    [`Error`], never a panic.
//! 4. Secrets are [`Secret`]: their `Debug` shows no byte of them.

pub mod callback;
pub mod liqpay;
pub mod merchant;
pub mod monobank;
pub mod order;
pub mod page;
pub mod probe;
pub mod pubkey;
pub mod sweep;
pub mod wayforpay;

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::Amount;

/// The largest body or decoded `data` we read. Real callbacks and answers are a few KiB;
/// the CGI edge caps bodies anyway, this keeps the parsers safe on their own.
pub const MAX_BODY: usize = 64 * 1024;

/// Which provider a value or an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    LiqPay,
    Monobank,
    WayForPay,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::LiqPay => "LiqPay",
            Provider::Monobank => "Monobank",
            Provider::WayForPay => "WayForPay",
        })
    }
}

/// A key or token from the config. `Debug` prints its length only, so a config or a
/// request dumped into a log never carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The key itself, for signing. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes hidden>)", self.0.len())
    }
}

/// Why a callback, an answer or a request to build was refused. Every message says what
/// was wrong and, where an admin can act, what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The signature is missing or empty: nothing in the request is trusted.
    Unsigned {
        provider: Provider,
        field: &'static str,
    },
    /// A signature is there but does not verify with the configured key.
    Forged {
        provider: Provider,
        field: &'static str,
        check: &'static str,
    },
    /// The body is not what the provider sends: not UTF-8, not JSON, a field missing, of
    /// the wrong type or given twice, a status or amount that cannot be read.
    Malformed { provider: Provider, why: String },
    /// The body is larger than [`MAX_BODY`].
    TooLarge { provider: Provider, len: usize },
    /// A key from the config cannot be used (Monobank's public key).
    Key { provider: Provider, why: String },
    /// A request we were asked to build cannot be signed as it is (a field holds the
    /// provider's separator, an amount is not positive).
    Unsignable { provider: Provider, why: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsigned { provider, field } => write!(
                f,
                "{provider}: no {field} (missing or empty): refused unread; a genuine \
                 {provider} request is always signed"
            ),
            Error::Forged {
                provider,
                field,
                check,
            } => write!(
                f,
                "{provider}: {field} does not verify: refused; either the request does not \
                 come from {provider} or {check}"
            ),
            Error::Malformed { provider, why } => write!(f, "{provider}: {why}"),
            Error::TooLarge { provider, len } => write!(
                f,
                "{provider}: body of {len} bytes is larger than the {MAX_BODY} bytes any \
                 {provider} message needs: refused unread"
            ),
            Error::Key { provider, why } => write!(f, "{provider}: {why}"),
            Error::Unsignable { provider, why } => write!(f, "{provider}: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A provider's API said no (Monobank's `{errCode, errText}`, LiqPay's `err_code`,
/// WayForPay's `reasonCode`): the request reached it and was refused, so retrying the same
/// request will not help. Nothing here is money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRefusal {
    pub code: String,
    pub text: String,
}

pub(crate) fn malformed(provider: Provider, why: impl Into<String>) -> Error {
    Error::Malformed {
        provider,
        why: why.into(),
    }
}

/// The body as text, refused when larger than [`MAX_BODY`] or not UTF-8.
pub(crate) fn body_text<'a>(
    provider: Provider,
    what: &str,
    body: &'a [u8],
) -> Result<&'a str, Error> {
    if body.len() > MAX_BODY {
        return Err(Error::TooLarge {
            provider,
            len: body.len(),
        });
    }
    std::str::from_utf8(body).map_err(|e| {
        malformed(
            provider,
            format!(
                "{what} is not UTF-8 text (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// `text`, a JSON object, read into `T`. serde_json refuses nesting deeper than 128 levels
/// and our derived structs refuse a known field given twice, so neither reaches the caller.
/// Only an object: serde would also fill a struct from an array, field by position.
pub(crate) fn from_json<'a, T: Deserialize<'a>>(
    provider: Provider,
    what: &str,
    text: &'a str,
) -> Result<T, Error> {
    if !text.trim_start().starts_with('{') {
        return Err(malformed(
            provider,
            format!("{what} is not a JSON object: '{}'", clip(text)),
        ));
    }
    serde_json::from_str(text).map_err(|e| malformed(provider, format!("{what}: {e}")))
}

/// The text a scalar JSON value carries: a string's contents (unescaped), a number's exact
/// digits, `""` for `null`. Objects, arrays and booleans are not scalars any provider signs.
pub(crate) fn scalar_text(raw: &RawValue) -> Result<String, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).map_err(|e| e.to_string()),
        Some(b'-' | b'0'..=b'9') => Ok(text.to_string()),
        Some(b'n') => Ok(String::new()),
        _ => Err(format!(
            "expected a string or a number, found {}",
            clip(text)
        )),
    }
}

/// An amount from a JSON number (`100`, `100.5`, `100.50`, also `100.000`: zeros past the
/// second decimal change nothing) or a string holding one. Never through a float: `1e3`,
/// `-5` and `100.001` are refused, not rounded.
pub(crate) fn amount_from(raw: &RawValue) -> Result<Amount, String> {
    let text = scalar_text(raw).map_err(|e| format!("amount: {e}"))?;
    parse_amount_text(&text)
}

pub(crate) fn parse_amount_text(text: &str) -> Result<Amount, String> {
    let exact = match text.split_once('.') {
        // ASCII first: slicing at byte 2 of "0é" would cut a character in two.
        Some((int, frac))
            if frac.len() > 2 && frac.is_ascii() && frac[2..].bytes().all(|b| b == b'0') =>
        {
            format!("{int}.{}", &frac[..2])
        }
        _ => text.to_string(),
    };
    Amount::parse(&exact).map_err(|e| format!("amount '{}': {e}", clip(text)))
}

/// At most 64 characters of `text`, control characters replaced, for an error message.
pub(crate) fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_amount_with_a_wide_character_is_refused_not_a_panic() {
        assert!(super::parse_amount_text("1.0\u{e9}").is_err());
        assert!(super::parse_amount_text("1.00\u{e9}").is_err());
        assert_eq!(
            super::parse_amount_text("1.500").map(|a| a.to_string()),
            Ok("1.50".into())
        );
    }

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn amounts_come_from_the_exact_text() {
        let table: &[(&str, Result<i64, ()>)] = &[
            ("100", Ok(10000)),
            ("100.5", Ok(10050)),
            ("100.50", Ok(10050)),
            ("100.500", Ok(10050)),
            ("\"3\"", Ok(300)),
            ("0.01", Ok(1)),
            ("100.001", Err(())),
            ("1e3", Err(())),
            ("-5", Err(())),
            ("\"\"", Err(())),
            ("null", Err(())),
            ("true", Err(())),
            ("[1]", Err(())),
            ("{\"a\":1}", Err(())),
            ("99999999999999999999", Err(())),
        ];
        for (text, want) in table {
            let got = amount_from(&raw(text)).map(Amount::kopecks).map_err(|_| ());
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn scalars_keep_their_text() {
        assert_eq!(scalar_text(&raw("1100")).unwrap(), "1100");
        assert_eq!(scalar_text(&raw("1.50")).unwrap(), "1.50");
        assert_eq!(scalar_text(&raw("\"a\\u0041\"")).unwrap(), "aA");
        assert_eq!(scalar_text(&raw("null")).unwrap(), "");
        assert!(scalar_text(&raw("false")).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let secret = Secret::new("a4825234f4bae72a0be04eafe9e8e2bada209255");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("a482"), "{shown}");
        assert_eq!(secret.expose(), "a4825234f4bae72a0be04eafe9e8e2bada209255");
    }

    #[test]
    fn bodies_are_capped_and_utf8() {
        let big = vec![b' '; MAX_BODY + 1];
        assert!(matches!(
            body_text(Provider::LiqPay, "body", &big),
            Err(Error::TooLarge { .. })
        ));
        let err = body_text(Provider::LiqPay, "body", b"{\xff}").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
