//! What the protocol fuzz targets share: the clock they parse against, requests as a web
//! server hands them over, and the check that an answer is well-formed XML.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use chrono::{NaiveDate, NaiveDateTime};
use paysys::cgi::Request;
use quick_xml::events::Event;
use quick_xml::Reader;

pub fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 22)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

pub fn request(method: &str, content_type: &str, query: &[u8], body: &[u8]) -> Request {
    let length = body.len().to_string();
    let vars: Vec<(&str, Vec<u8>)> = vec![
        ("REQUEST_METHOD", method.as_bytes().to_vec()),
        ("QUERY_STRING", query.to_vec()),
        ("CONTENT_LENGTH", length.into_bytes()),
        ("CONTENT_TYPE", content_type.as_bytes().to_vec()),
        ("REMOTE_ADDR", b"10.0.0.1".to_vec()),
    ];
    let var = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| OsString::from_vec(v.clone()))
    };
    Request::read(var, &mut &body[..])
}

/// `xml` is one well-formed document whose root is `root`: matching end tags, entities
/// that resolve, no control character but `\n`, nothing after the root but whitespace.
pub fn check_xml(xml: &str, root: &[u8]) {
    assert!(
        !xml.chars().any(|c| c.is_control() && c != '\n'),
        "control character in {xml:?}"
    );
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i32;
    let mut roots = 0;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed ({e}): {xml:?}"))
        {
            Event::Eof => break,
            Event::Start(s) => {
                if depth == 0 {
                    roots += 1;
                    assert_eq!(s.name().as_ref(), root, "{xml:?}");
                }
                depth += 1;
            }
            Event::End(_) => depth -= 1,
            Event::Empty(_) => assert!(depth > 0, "{xml:?}"),
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .unwrap_or_else(|e| panic!("bad entity ({e}) in {xml:?}"));
                assert!(
                    depth > 0 || text.trim().is_empty(),
                    "text outside the root: {xml:?}"
                );
            }
            Event::Decl(_) => {}
            other => panic!("unexpected {other:?} in {xml:?}"),
        }
    }
    assert_eq!((depth, roots), (0, 1), "{xml:?}");
}
