//! An OSMP answer as a terminal reads it: the `<response>` XML typed, and what its
//! `result` tells the terminal to do next.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The parts of an OSMP `<response>` a terminal uses. Text values are as sent (unescaped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsmpAnswer {
    pub result: u16,
    pub comment: String,
    pub osmp_txn_id: Option<String>,
    pub prv_txn: Option<String>,
    pub sum: Option<String>,
    /// `<fields><field1 name="fio">…</field1>…</fields>`: (the `name` attribute, or the
    /// element's name without one; the text), in order.
    pub fields: Vec<(String, String)>,
}

/// What a `result` means for the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 0: done (checked, paid, found, cancelled).
    Ok,
    /// 1 and 90: nothing final happened; the terminal keeps the payment and asks again.
    Temporary,
    /// Anything else: a final refusal; asking again gets the same answer.
    Refused,
}

/// The OSMP `<response>` in `body`, or `None` when the body is not one (an HTML error
/// page, an empty body, a `result` that is not a number): a terminal cannot read it.
pub fn parse(body: &str) -> Option<OsmpAnswer> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut field_name: Option<String> = None;
    let mut text = String::new();
    let mut answer = OsmpAnswer::default();
    let mut result: Option<u16> = None;
    let mut in_response = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != "response" {
                        return None;
                    }
                    in_response = true;
                }
                if path.len() == 2 && path[1] == "fields" {
                    field_name = e
                        .try_get_attribute("name")
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                        .or(Some(name.clone()));
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let name = path.pop()?;
                match path.len() {
                    1 => {
                        let value = std::mem::take(&mut text).trim().to_string();
                        match name.as_str() {
                            "result" => result = Some(value.parse().ok()?),
                            "comment" => answer.comment = value,
                            "osmp_txn_id" => answer.osmp_txn_id = Some(value),
                            "prv_txn" => answer.prv_txn = Some(value),
                            "sum" => answer.sum = Some(value),
                            _ => {}
                        }
                    }
                    2 if path[1] == "fields" => {
                        if let Some(field) = field_name.take() {
                            answer.fields.push((field, std::mem::take(&mut text)));
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Empty(_) | Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return None,
            Event::Eof => break,
        }
    }
    if !in_response || !path.is_empty() {
        return None;
    }
    answer.result = result?;
    Some(answer)
}

/// What `result` means, in a few words, and what the terminal does about it. The codes are
/// OSMP's; the words are those of the protocol table in INSTALL ("Answers").
pub fn meaning(result: u16) -> (&'static str, Class) {
    match result {
        0 => ("OK", Class::Ok),
        1 => (
            "temporary error: nothing was decided, ask again later",
            Class::Temporary,
        ),
        4 => ("bad account format or check digit", Class::Refused),
        5 => ("no such account", Class::Refused),
        7 => ("payment refused", Class::Refused),
        8 => (
            "refused for technical reasons (is this address allowed to call?)",
            Class::Refused,
        ),
        79 => ("account inactive", Class::Refused),
        90 => ("payment not finished: ask again later", Class::Temporary),
        241 => ("sum below the minimum", Class::Refused),
        242 => ("sum above the maximum", Class::Refused),
        300 => (
            "other error (bad request, unknown payment, txn_date out of window)",
            Class::Refused,
        ),
        _ => ("unknown result code: final for a terminal", Class::Refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_answers_and_others() {
        let paid = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><osmp_txn_id>666</osmp_txn_id>\
                    <prv_txn>18</prv_txn><sum>10.25</sum><result>0</result><comment>OK</comment></response>\n";
        let a = parse(paid).unwrap();
        assert_eq!(
            (
                a.result,
                a.prv_txn.as_deref(),
                a.sum.as_deref(),
                a.comment.as_str()
            ),
            (0, Some("18"), Some("10.25"), "OK")
        );
        let checked = "<response><result>0</result><comment>OK</comment><fields>\
                       <field1 name=\"fio\">Ив*** И&amp;***</field1><field2 name=\"balance\">-3.50</field2>\
                       <field3>x</field3></fields></response>";
        let a = parse(checked).unwrap();
        assert_eq!(
            a.fields,
            vec![
                ("fio".to_string(), "Ив*** И&***".to_string()),
                ("balance".to_string(), "-3.50".to_string()),
                ("field3".to_string(), "x".to_string()),
            ]
        );
        // Whitespace and other element orders, as other endpoints write them.
        let a =
            parse("<response>\n  <result> 1 </result>\n  <comment>nod13</comment>\n</response>")
                .unwrap();
        assert_eq!((a.result, a.comment.as_str()), (1, "nod13"));
    }

    #[test]
    fn what_is_not_an_osmp_answer() {
        for body in [
            "",
            "OK",
            "<html><body>502 Bad Gateway</body></html>",
            "<response><comment>no result</comment></response>",
            "<response><result>abc</result></response>",
            "<response><result>0</result>",
            "<!DOCTYPE x><response><result>0</result></response>",
        ] {
            assert_eq!(parse(body), None, "{body:?}");
        }
    }

    #[test]
    fn classes_follow_the_protocol_table() {
        assert_eq!(meaning(0).1, Class::Ok);
        for temporary in [1, 90] {
            assert_eq!(meaning(temporary).1, Class::Temporary);
        }
        for refused in [4, 5, 7, 8, 79, 241, 242, 300, 2, 999] {
            assert_eq!(meaning(refused).1, Class::Refused, "{refused}");
        }
    }
}
