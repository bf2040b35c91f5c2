//! Windows-1251, the code page Russian-language Windows writes its text files in: PayPRO's
//! provider files, registries saved by Excel. One table of our own, shared by everything
//! that reads such files: a single-byte code page is these 64 characters and a range, not
//! worth a crate.

/// The upper half from 0x80 to 0xBF (0xC0..=0xFF are А..я in order). 0x98 is unassigned.
#[rustfmt::skip]
const UPPER_80_BF: [char; 64] = [
    'Ђ', 'Ѓ', '‚', 'ѓ', '„', '…', '†', '‡', '€', '‰', 'Љ', '‹', 'Њ', 'Ќ', 'Ћ', 'Џ',
    'ђ', '‘', '’', '“', '”', '•', '–', '—', '\u{98}', '™', 'љ', '›', 'њ', 'ќ', 'ћ', 'џ',
    '\u{A0}', 'Ў', 'ў', 'Ј', '¤', 'Ґ', '¦', '§', 'Ё', '©', 'Є', '«', '¬', '\u{AD}', '®', 'Ї',
    '°', '±', 'І', 'і', 'ґ', 'µ', '¶', '·', 'ё', '№', 'є', '»', 'ј', 'Ѕ', 'ѕ', 'ї',
];

/// The character byte `b` stands for; `None` for 0x98, which Windows-1251 leaves unassigned
/// (a byte that suggests the text is in another encoding).
pub fn char_of(b: u8) -> Option<char> {
    match b {
        0x00..=0x7F => Some(char::from(b)),
        0x98 => None,
        0x80..=0xBF => Some(UPPER_80_BF[usize::from(b - 0x80)]),
        // А (U+0410) .. я (U+044F)
        _ => char::from_u32(0x0410 + u32::from(b - 0xC0)),
    }
}

/// Bytes as text, every byte kept: 0x98 becomes U+0098 (as in the WHATWG table), so that
/// [`encode`] gives the same bytes back.
pub fn decode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| char_of(b).unwrap_or('\u{98}'))
        .collect()
}

/// Text as Windows-1251 bytes, or the first character it cannot hold.
pub fn encode(text: &str) -> Result<Vec<u8>, char> {
    text.chars()
        .map(|c| match u32::from(c) {
            0x00..=0x7F => Ok(c as u8),
            0x0410..=0x044F => u8::try_from(u32::from(c) - 0x0410 + 0xC0).map_err(|_| c),
            _ => UPPER_80_BF
                .iter()
                .position(|&t| t == c)
                .and_then(|i| u8::try_from(0x80 + i).ok())
                .ok_or(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_but_0x98_is_a_character_and_round_trips() {
        for b in 0..=255u8 {
            let text = decode(&[b]);
            assert_eq!(encode(&text), Ok(vec![b]), "{b:#x}");
            assert_eq!(char_of(b).is_none(), b == 0x98, "{b:#x}");
        }
        assert_eq!(char_of(0xC0), Some('А'));
        assert_eq!(char_of(0xFF), Some('я'));
        assert_eq!(char_of(0xA8), Some('Ё'));
        assert_eq!(char_of(0xB9), Some('№'));
        assert_eq!(decode(b"\xcd\xee\xec\xe5\xf0"), "Номер");
        assert_eq!(encode("ёж 😀"), Err('😀'));
    }
}
