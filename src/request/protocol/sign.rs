//! Signatures a provider defines as a digest of request fields joined by a separator:
//! 24NonStop's and 2click's `ACT_PAY_ACCOUNT_SERVICE_ID_PAY_ID[_PAY_AMOUNT]_secret`, and
//! any protocol signed the same way later.
//!
//! Such a digest signs a string, not the fields. If a field may hold the separator, or if
//! which fields are in depends on what the request carries, one string (so one signature)
//! is also another request with the boundaries moved: `ACT=4 PAY_ACCOUNT=1
//! SERVICE_ID=Internet PAY_ID=G` and `ACT=4 PAY_ACCOUNT=1 PAY_ID=Internet_G` are both
//! `4_1_Internet_G`, and the second is a new payment. The string is one request only when
//!
//! 1. the list of fields is fixed by the system's config and the command, never by which
//!    fields the request carries (the caller builds its list from those alone), and
//! 2. no field holds the separator ([`joined`] refuses one that does).
//!
//! Then the separators in the string are exactly those between the fields (the secret,
//! fixed and last, may hold some), so the string splits back into its fields one way only.
//! An empty field moves no boundary; the protocol says where one is allowed.

/// One signed field: its name as the protocol spells it (for the refusal), its text exactly
/// as the request carries it, and whether the protocol lets it be empty.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub name: &'static str,
    pub value: &'a str,
    pub may_be_empty: bool,
}

/// The signed text: `parts` joined by `separator`, then the separator and the `secret`; or,
/// for the log and the admin, why no signature over these parts can vouch for one request.
pub fn joined(parts: &[Part], separator: char, secret: &str) -> Result<String, String> {
    let mut text = String::with_capacity(
        parts.iter().map(|p| p.value.len() + 1).sum::<usize>() + secret.len(),
    );
    for part in parts {
        if part.value.contains(separator) {
            return Err(format!(
                "{} '{}' holds '{separator}', which separates the signed fields: a signature \
                 over it would also sign another request, with text moved between fields",
                part.name,
                crate::protocol::osmp::clean(part.value)
            ));
        }
        if part.value.is_empty() && !part.may_be_empty {
            return Err(format!("{} is missing or empty; it is signed", part.name));
        }
        text.push_str(part.value);
        text.push(separator);
    }
    text.push_str(secret);
    Ok(text)
}

/// The signed text of a digest over fields written one after another with nothing between
/// them, the secret in its place among them (Click's `sign_string`): `parts` in order, or
/// why one is missing.
///
/// Without a separator, rule 2 above has nothing to hold on to: `12`+`345` is `1`+`2345`.
/// Such a text is one request only when the protocol pins each boundary by the fields'
/// own forms — a value the config fixes, digits without a leading zero, a fixed-width
/// time, a one-character action — and, where two free fields still meet, by what the
/// signature is used for: Click's Complete must name the booked order by its number, its
/// id, its account and its sum, all compared with what was booked, so that a text read
/// with the boundaries moved names no order it could pay. The protocol says how it does.
pub fn concatenated(parts: &[Part]) -> Result<String, String> {
    let mut text = String::with_capacity(parts.iter().map(|p| p.value.len()).sum());
    for part in parts {
        if part.value.is_empty() && !part.may_be_empty {
            return Err(format!("{} is missing or empty; it is signed", part.name));
        }
        text.push_str(part.value);
    }
    Ok(text)
}

/// Whether two texts are equal, in a time that depends on their length only: a signature
/// compared byte by byte with an early exit tells a forger how many leading bytes were
/// right.
pub fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part<'a>(name: &'static str, value: &'a str) -> Part<'a> {
        Part {
            name,
            value,
            may_be_empty: false,
        }
    }

    #[test]
    fn fields_join_with_the_secret_last() {
        let parts = [part("A", "4"), part("B", "1"), part("C", "G-1.x")];
        assert_eq!(joined(&parts, '_', "s_e").unwrap(), "4_1_G-1.x_s_e");
        let empty = [
            part("A", "7"),
            Part {
                name: "B",
                value: "",
                may_be_empty: true,
            },
        ];
        assert_eq!(joined(&empty, '_', "k").unwrap(), "7__k");
    }

    #[test]
    fn concatenated_fields_have_nothing_between_them() {
        let parts = [part("A", "12"), part("S", "k"), part("B", "7")];
        assert_eq!(concatenated(&parts).unwrap(), "12k7");
        let why = concatenated(&[part("A", "1"), part("B", "")]).unwrap_err();
        assert!(why.contains("B is missing"), "{why}");
        assert!(same_text("abc", "abc"));
        assert!(!same_text("abc", "abd") && !same_text("abc", "ab"));
    }

    #[test]
    fn a_field_holding_the_separator_or_empty_where_it_must_not_be_is_refused() {
        let why = joined(&[part("A", "4"), part("PAY_ID", "Internet_G")], '_', "k").unwrap_err();
        assert!(why.contains("PAY_ID 'Internet_G' holds '_'"), "{why}");
        let why = joined(&[part("A", "4"), part("PAY_ID", "")], '_', "k").unwrap_err();
        assert!(why.contains("PAY_ID is missing"), "{why}");
        // Another separator, another forbidden character.
        assert!(joined(&[part("A", "a|b")], '|', "k").is_err());
        assert!(joined(&[part("A", "a_b")], '|', "k").is_ok());
    }
}
