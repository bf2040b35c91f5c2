//! The texts ABillS keeps a payment's id under: `payments.ext_id` and
//! `paysys_log.transaction_id`, both `"<prefix>:<txn_id>"`.
//!
//! One id has had several texts over the years, and a retry, a status or a cancel that
//! arrives after the switch-over must find the payment under whichever one was written:
//!
//! * **whole**: what ABillS's own script writes, whatever its length;
//! * **cut**: the whole text cut to the column by a non-strict server (ABillS connects with
//!   `sql_mode = 'NO_ENGINE_SUBSTITUTION'`, so MySQL cut long ids silently). The columns were
//!   VARCHAR(24) (`paysys_log`) and (28) (`payments`) up to ABillS 1.20, 36 in 1.30 and 50
//!   since 1.40, and an upgraded install keeps rows cut at its old widths;
//! * **hashed**: what paysys writes when the whole text does not fit its columns: the prefix
//!   and as many hex digits of the id's SHA-256 as fit. Cutting would let two ids that
//!   share a beginning look like one payment; a hash never does. Earlier versions of paysys
//!   wrote it at 24 characters on every install.
//!
//! paysys writes the whole text whenever both columns hold it (ABillS 1.40 and later hold
//! 50 characters), so that ABillS's own screens and cancel find our payments as they find
//! their own.
//!
//! The columns compare ignoring letter case (`utf8_general_ci`), while payment ids are exact
//! text: `PbA7x` and `pba7X` are two payments. Every row a lookup returns is therefore
//! classified here, in Rust, as an exact match of one of the texts or as a row the
//! collation merely considers equal ([`Seen::Collated`]), which the caller must not take for
//! the same payment.

use sha2::Digest;

/// Widths `transaction_id` and `ext_id` have had in ABillS releases (0.53 onwards). A text
/// longer than one of them may have been cut to it.
pub const WIDTHS: [usize; 4] = [24, 28, 36, 50];

/// The narrowest width of every supported ABillS: a text this short is written whole
/// without asking the server for its columns.
pub const NARROWEST: usize = WIDTHS[0];

/// One way an id was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Whole,
    /// Cut to this many characters.
    Cut(usize),
    /// The prefix and the id's SHA-256, this many characters in all.
    Hashed(usize),
}

impl Form {
    /// How surely a row with this text is the id's own: the whole text and the hashes
    /// (only this id has them), then the cuts, longest first (another id that begins the
    /// same way has them too).
    fn rank(self) -> usize {
        match self {
            Form::Whole => 0,
            Form::Hashed(w) => 100 - w,
            Form::Cut(w) => 1000 - w,
        }
    }

    pub fn is_cut(self) -> bool {
        matches!(self, Form::Cut(_))
    }
}

/// How a stored text relates to an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Exactly one of the id's texts.
    Exact(Form),
    /// Equal only as the column's collation compares (letter case, trailing spaces): the
    /// text of another id, which ABillS cannot tell from this one.
    Collated,
}

/// What a `paysys_log` row's `info` (the request ABillS's script kept: `"key, value\n"`
/// per parameter) says of a row found by a cut text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// One of the request's values is this id.
    Ours,
    /// One of its values is another id whose text begins as the cut one: that id's row.
    Another(String),
    /// Neither (an empty `info`, or a request kept without its id).
    Silent,
}

/// Every text an id may be stored under, for one system's prefix.
#[derive(Debug, Clone)]
pub struct TxnIds {
    prefix: String,
    id: String,
    whole: String,
    forms: Vec<(String, Form)>,
}

impl TxnIds {
    pub fn new(prefix: &str, txn_id: &str) -> TxnIds {
        let whole = format!("{prefix}:{txn_id}");
        let length = whole.chars().count();
        let mut forms = vec![(whole.clone(), Form::Whole)];
        for w in WIDTHS.into_iter().filter(|&w| length > w) {
            forms.push((whole.chars().take(w).collect(), Form::Cut(w)));
            forms.push((hashed(prefix, txn_id, w), Form::Hashed(w)));
        }
        forms.sort_by_key(|(_, f)| f.rank());
        forms.dedup_by(|a, b| a.0 == b.0);
        TxnIds {
            prefix: prefix.to_string(),
            id: txn_id.to_string(),
            whole,
            forms,
        }
    }

    /// The payment system's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id of the request `info` kept whose text `stored` is (whole, or cut from it),
    /// when exactly one of its values fits: how a cancel that names only a `paysys_log` row
    /// with a cut text learns the whole id, and so finds the payment ABillS cut otherwise.
    pub fn from_info(prefix: &str, stored: &str, info: &str) -> Option<TxnIds> {
        let mut fitting = values(info)
            .filter(|v| !v.is_empty() && format!("{prefix}:{v}").starts_with(stored))
            .map(|v| TxnIds::new(prefix, v))
            .filter(|ids| matches!(ids.seen(stored), Seen::Exact(Form::Whole | Form::Cut(_))));
        let first = fitting.next()?;
        match fitting.next() {
            Some(other) if other.id != first.id => None,
            _ => Some(first),
        }
    }

    /// `"<prefix>:<txn_id>"`.
    pub fn whole(&self) -> &str {
        &self.whole
    }

    /// The text to write where the narrower of the two columns holds `width` characters:
    /// the whole text if it fits, else the longest hash that fits one of ABillS's widths
    /// (so that later lookups know it without asking the server).
    pub fn written(&self, width: usize) -> String {
        if self.whole.chars().count() <= width {
            return self.whole.clone();
        }
        let w = WIDTHS
            .into_iter()
            .filter(|&w| w <= width)
            .max()
            .unwrap_or(NARROWEST);
        match self.forms.iter().find(|(_, f)| *f == Form::Hashed(w)) {
            Some((text, _)) => text.clone(),
            // Not reachable (the whole text is longer than `width` ≥ w, so Hashed(w) is
            // listed), but a text that fits every column is the safe answer.
            None => self.whole.chars().take(NARROWEST).collect(),
        }
    }

    /// Every text, most certain first, for `IN (…)`.
    pub fn texts(&self) -> Vec<String> {
        self.forms.iter().map(|(t, _)| t.clone()).collect()
    }

    /// `?, ?, …`: one placeholder per text.
    pub fn placeholders(&self) -> String {
        vec!["?"; self.forms.len()].join(", ")
    }

    /// How `stored`, a text the database returned for one of ours, relates to the id.
    pub fn seen(&self, stored: &str) -> Seen {
        match self.forms.iter().find(|(t, _)| t == stored) {
            Some((_, form)) => Seen::Exact(*form),
            None => Seen::Collated,
        }
    }

    /// What `info` says of the row whose text `stored` (one of this id's cut texts) is. Only
    /// positive evidence counts: a request ABillS kept without its id says nothing.
    pub fn evidence(&self, stored: &str, info: &str) -> Evidence {
        let mut another = None;
        for v in values(info) {
            if v == self.id {
                return Evidence::Ours;
            }
            if another.is_none()
                && !v.is_empty()
                && format!("{}:{v}", self.prefix).starts_with(stored)
            {
                another = Some(v.to_string());
            }
        }
        another.map_or(Evidence::Silent, Evidence::Another)
    }

    /// The best of `rows` (each with its stored text) for this id: the exact match of the
    /// most certain form, or, when only other ids' texts matched, the first of those.
    pub fn best<'r, T>(&self, rows: &'r [(String, T)]) -> Option<(Seen, &'r T)> {
        let exact = rows
            .iter()
            .filter_map(|(text, row)| match self.seen(text) {
                Seen::Exact(form) => Some((form, row)),
                Seen::Collated => None,
            })
            .min_by_key(|(form, _)| form.rank());
        if let Some((form, row)) = exact {
            return Some((Seen::Exact(form), row));
        }
        rows.first().map(|(_, row)| (Seen::Collated, row))
    }
}

/// The values of `info`'s `"key, value"` lines.
fn values(info: &str) -> impl Iterator<Item = &str> {
    info.lines()
        .filter_map(|line| line.split_once(", ").map(|(_, v)| v))
}

/// `"<prefix>:"` and hex digits of the id's SHA-256, `width` characters in all (at most
/// the 64 digits there are).
fn hashed(prefix: &str, txn_id: &str, width: usize) -> String {
    let digest = sha2::Sha256::digest(txn_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let room = width.saturating_sub(prefix.chars().count() + 1);
    format!("{prefix}:{}", &hex[..room.min(hex.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "6F9619FF-8B86-D011-B42D-00C04FC964FF";

    #[test]
    fn a_short_id_has_one_text() {
        let ids = TxnIds::new("OSM", "12345678901234567890");
        assert_eq!(ids.texts(), vec!["OSM:12345678901234567890"]);
        assert_eq!(ids.written(24), "OSM:12345678901234567890");
        assert_eq!(
            ids.seen("OSM:12345678901234567890"),
            Seen::Exact(Form::Whole)
        );
    }

    #[test]
    fn a_long_id_is_written_whole_where_the_columns_hold_it() {
        let ids = TxnIds::new("24N", GUID);
        let whole = format!("24N:{GUID}");
        assert_eq!(ids.whole(), whole);
        assert_eq!(ids.written(50), whole);
        // ABillS ≤ 1.20: 24 characters, hashed as earlier versions of paysys wrote it.
        let narrow = ids.written(24);
        assert_eq!(narrow.len(), 24);
        assert!(narrow.starts_with("24N:"), "{narrow}");
        assert!(
            narrow[4..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{narrow}"
        );
        assert_eq!(ids.seen(&narrow), Seen::Exact(Form::Hashed(24)));
        // A width between ABillS's writes the hash of the widest ABillS width below it.
        assert_eq!(ids.written(30).len(), 28);
    }

    #[test]
    fn every_text_abills_or_paysys_wrote_is_known() {
        let ids = TxnIds::new("24N", GUID);
        let whole = format!("24N:{GUID}");
        let texts = ids.texts();
        assert_eq!(texts[0], whole, "the whole text is the most certain");
        for w in [24, 28, 36] {
            let cut: String = whole.chars().take(w).collect();
            assert!(texts.contains(&cut), "{cut}");
            assert_eq!(ids.seen(&cut), Seen::Exact(Form::Cut(w)));
        }
        // 40 characters: nothing was ever cut to 50.
        assert!(!texts.iter().any(|t| t.len() == 50));
        assert_eq!(ids.placeholders().matches('?').count(), texts.len());
        // What paysys wrote before: the same 24 characters for the same id.
        assert!(texts.contains(&hashed("24N", GUID, 24)));
    }

    #[test]
    fn ids_that_differ_in_letter_case_are_two_ids() {
        let ids = TxnIds::new("24N", "PbA7x");
        assert_eq!(ids.seen("24N:PbA7x"), Seen::Exact(Form::Whole));
        assert_eq!(ids.seen("24N:pba7X"), Seen::Collated);
        let rows = vec![("24N:pba7X".to_string(), 1), ("24N:PbA7x".to_string(), 2)];
        assert_eq!(ids.best(&rows), Some((Seen::Exact(Form::Whole), &2)));
        assert_eq!(ids.best(&rows[..1]), Some((Seen::Collated, &1)));
        assert_eq!(ids.best::<u8>(&[]), None);
    }

    #[test]
    fn the_whole_text_beats_a_cut_one() {
        let ids = TxnIds::new("24N", GUID);
        let cut: String = ids.whole().chars().take(24).collect();
        let rows = vec![(cut, 1), (ids.whole().to_string(), 2)];
        assert_eq!(ids.best(&rows), Some((Seen::Exact(Form::Whole), &2)));
    }

    #[test]
    fn info_tells_whose_a_cut_text_is_only_by_what_it_holds() {
        let ids = TxnIds::new("24N", GUID);
        let cut: String = ids.whole().chars().take(24).collect();
        assert_eq!(ids.evidence(&cut, ""), Evidence::Silent);
        // A request kept without its id (ABillS drops an XML body) says nothing.
        assert_eq!(
            ids.evidence(&cut, "ACT, 4\nPAY_AMOUNT, 10.00\n"),
            Evidence::Silent
        );
        assert_eq!(
            ids.evidence(&cut, &format!("ACT, 4\nPAY_ID, {GUID}\n")),
            Evidence::Ours
        );
        let other = "6F9619FF-8B86-D011-B42D-00C04FC96400";
        assert_eq!(
            ids.evidence(&cut, &format!("ACT, 4\nPAY_ID, {other}\n")),
            Evidence::Another(other.into())
        );
    }

    #[test]
    fn the_whole_id_is_found_again_in_info() {
        let cut: String = format!("24N:{GUID}").chars().take(24).collect();
        let info = format!("ACT, 4\nPAY_ACCOUNT, test1\nPAY_ID, {GUID}\n");
        assert_eq!(
            TxnIds::from_info("24N", &cut, &info).map(|i| i.id().to_string()),
            Some(GUID.to_string())
        );
        assert!(TxnIds::from_info("24N", &cut, "ACT, 4\n").is_none());
        // Two ids that both fit: which one cannot be told.
        let two = format!("{info}X, 6F9619FF-8B86-D011-B42D-00C04FC96400\n");
        assert!(TxnIds::from_info("24N", &cut, &two).is_none());
    }
}
