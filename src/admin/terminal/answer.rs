//! An answer as a terminal reads it: OSMP's `<response>` or 24NonStop's `<pay-response>`
//! typed, and what its code tells the terminal to do next.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The protocol a terminal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Osmp,
    /// iBox: OSMP's fields and answers, `ibox_txn_id` for `osmp_txn_id`.
    Ibox,
    Nonstop24,
    /// City24: `<Response>` with `ResultCode`.
    City24,
    /// PrivatBank's Debt interface: `<Transfer>` with a `Gateway`, `DebtPack` or `ErrorInfo`.
    Privat,
    /// EasyPay: `<Response>` with `StatusCode`.
    Easypay,
    /// Kaspi: OSMP's requests and `result`s, `txn_id` and `prv_txn_id` in the answer.
    Kaspi,
    /// Portmone: `<RESULT>` with `ERROR_CODE`, or a check's `<RESPONSE><BILLS>`.
    Portmone,
    /// Click: a JSON object with `error`, `error_note`, `merchant_prepare_id` or
    /// `merchant_confirm_id`.
    Click,
    /// Payme: a JSON-RPC answer, `result` (with `transaction`) or `error` (with `code`).
    Payme,
}

impl Wire {
    /// The answer in `body`, or `None` when it is not one of this protocol's.
    pub fn read(self, body: &str) -> Option<Answer> {
        let mut a = match self {
            Wire::Osmp | Wire::Ibox | Wire::Kaspi => parse(body)?,
            Wire::Nonstop24 => parse_nonstop24(body)?,
            Wire::City24 => parse_city24(body)?,
            Wire::Privat => parse_privat(body)?,
            Wire::Easypay => parse_easypay(body)?,
            Wire::Portmone => parse_portmone(body)?,
            Wire::Click => parse_click(body)?,
            Wire::Payme => parse_payme(body)?,
        };
        let (meaning, class) = match self {
            Wire::Osmp | Wire::Ibox | Wire::Kaspi => meaning(a.result),
            Wire::Nonstop24 => meaning_nonstop24(a.result),
            Wire::City24 => meaning_city24(a.result),
            Wire::Privat => meaning_privat(a.result),
            Wire::Easypay => meaning_easypay(a.result),
            Wire::Portmone => meaning_portmone(a.result),
            Wire::Click => meaning_click(a.result),
            Wire::Payme => meaning_payme(a.result),
        };
        a.meaning = meaning;
        a.class = class;
        Some(a)
    }

    /// How the code is named when shown: "OSMP result 0".
    pub fn label(self) -> &'static str {
        match self {
            Wire::Osmp => "OSMP result",
            Wire::Ibox => "iBox result",
            Wire::Kaspi => "Kaspi result",
            Wire::Portmone => "Portmone ERROR_CODE",
            Wire::Nonstop24 => "24NonStop status_code",
            Wire::City24 => "City24 ResultCode",
            Wire::Privat => "PrivatBank ErrorInfo code",
            Wire::Easypay => "EasyPay StatusCode",
            Wire::Click => "Click error",
            Wire::Payme => "Payme error code",
        }
    }
}

/// The parts of an answer a terminal uses. Text values are as sent (unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// OSMP `result`, 24NonStop `status_code`.
    pub result: i32,
    /// What the code means ([`Wire::read`] fills it in).
    pub meaning: &'static str,
    pub class: Class,
    pub comment: String,
    pub osmp_txn_id: Option<String>,
    pub prv_txn: Option<String>,
    pub sum: Option<String>,
    /// `<fields><field1 name="fio">…</field1>…</fields>` (OSMP; the `name` attribute, or
    /// the element's name without one) or a 24NonStop check's `balance` and `name`: (name,
    /// text), in order.
    pub fields: Vec<(String, String)>,
}

impl Answer {
    /// Done: checked, paid, found, cancelled.
    pub fn ok(&self) -> bool {
        self.class == Class::Ok
    }
}

impl Default for Answer {
    fn default() -> Answer {
        Answer {
            result: 0,
            meaning: "",
            class: Class::Refused,
            comment: String::new(),
            osmp_txn_id: None,
            prv_txn: None,
            sum: None,
            fields: Vec::new(),
        }
    }
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
pub fn parse(body: &str) -> Option<Answer> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut field_name: Option<String> = None;
    let mut text = String::new();
    let mut answer = Answer::default();
    let mut result: Option<i32> = None;
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
                            "result" => result = Some(value.parse::<u16>().ok()?.into()),
                            "comment" => answer.comment = value,
                            // Kaspi's names for the same two.
                            "osmp_txn_id" | "txn_id" => answer.osmp_txn_id = Some(value),
                            "prv_txn" | "prv_txn_id" => answer.prv_txn = Some(value),
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
    let (meaning, class) = meaning(answer.result);
    answer.meaning = meaning;
    answer.class = class;
    Some(answer)
}

/// A 24NonStop `<pay-response>`: `status_code`, a check's `balance` and `name` as fields,
/// a pay's `pay_id` and `amount`, a status's `<transaction>` `amount` and `status`.
pub fn parse_nonstop24(body: &str) -> Option<Answer> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut answer = Answer::default();
    let mut code: Option<i32> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() && name != "pay-response" {
                    return None;
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::End(_) => {
                let name = path.pop()?;
                let value = std::mem::take(&mut text).trim().to_string();
                match (path.len(), name.as_str()) {
                    (1, "status_code") => code = Some(value.parse().ok()?),
                    (1, "balance" | "name") => answer.fields.push((name, value)),
                    (1, "description") => answer.comment = value,
                    (1, "amount") | (2, "amount") => answer.sum = Some(value),
                    (2, "status") => answer.fields.push(("status".into(), value)),
                    _ => {}
                }
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return None;
    }
    answer.result = code?;
    let (meaning, class) = meaning_nonstop24(answer.result);
    answer.meaning = meaning;
    answer.class = class;
    Some(answer)
}

/// A City24 `<Response>`: `ResultCode`, `TransactionExt` (our number), `Amount`,
/// `Comment`, and a check's `<Fields>`.
pub fn parse_city24(body: &str) -> Option<Answer> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut answer = Answer::default();
    let mut field: Option<String> = None;
    let mut code: Option<i32> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() && name != "Response" {
                    return None;
                }
                if path.len() == 2 {
                    field = e
                        .try_get_attribute("name")
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::End(_) => {
                let name = path.pop()?;
                let value = std::mem::take(&mut text).trim().to_string();
                match (path.len(), name.as_str()) {
                    (1, "ResultCode") => code = Some(value.parse().ok()?),
                    (1, "TransactionExt") => answer.prv_txn = Some(value),
                    (1, "Amount") => answer.sum = Some(value),
                    (1, "Comment") => answer.comment = value,
                    (2, _) => {
                        if let Some(f) = field.take() {
                            answer.fields.push((f, value));
                        }
                    }
                    _ => {}
                }
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return None;
    }
    answer.result = code?;
    Some(answer)
}

/// What a City24 `ResultCode` means.
pub fn meaning_city24(code: i32) -> (&'static str, Class) {
    match code {
        0 => ("OK", Class::Ok),
        1 => ("temporary error: ask again later", Class::Temporary),
        100 => ("payment not finished: ask again later", Class::Temporary),
        3 => ("wrong account format", Class::Refused),
        21 => ("account not found", Class::Refused),
        22 => ("payment forbidden (or cannot cancel)", Class::Refused),
        23 => (
            "forbidden for technical reasons (is this address allowed?)",
            Class::Refused,
        ),
        24 => ("account inactive", Class::Refused),
        241 => ("amount too small", Class::Refused),
        242 => ("amount too large", Class::Refused),
        _ => ("other error", Class::Refused),
    }
}

/// A PrivatBank `<Transfer>` answer: a `Gateway` (result 0, `reference` as the prv_txn),
/// a `DebtPack` or `PayersTable` (0; the name and balance as fields), or an `ErrorInfo`
/// (its code, and its `Message` as the comment).
pub fn parse_privat(body: &str) -> Option<Answer> {
    let mut reader = Reader::from_str(body);
    let mut depth = 0usize;
    let mut answer = Answer::default();
    let mut kind = String::new();
    let mut current = String::new();
    let mut text = String::new();
    loop {
        let event = reader.read_event().ok()?;
        let start = match &event {
            Event::Start(e) | Event::Empty(e) => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = start {
            let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            let attr = |key: &[u8]| {
                e.attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == key)
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
            };
            if depth == 0 && name != "Transfer" {
                return None;
            }
            if name == "Data" {
                kind = attr(b"type").unwrap_or_default();
                match kind.as_str() {
                    "Gateway" => answer.prv_txn = attr(b"reference"),
                    "ErrorInfo" => answer.result = attr(b"code")?.parse().ok()?,
                    _ => {}
                }
            }
            if name == "DebtInfo" {
                if let Some(v) = attr(b"amountToPay") {
                    answer.fields.push(("amountToPay".into(), v));
                }
            }
            if matches!(event, Event::Start(_)) {
                depth += 1;
                current = name;
                text.clear();
            }
            continue;
        }
        match event {
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                let value = std::mem::take(&mut text).trim().to_string();
                match current.as_str() {
                    "Fio" | "Balance" | "Element" if !value.is_empty() => {
                        answer.fields.push((current.clone(), value))
                    }
                    "Message" => answer.comment = value,
                    _ => {}
                }
                current.clear();
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 || kind.is_empty() {
        return None;
    }
    Some(answer)
}

/// What a PrivatBank answer means: 0 (no ErrorInfo) done, else the ErrorInfo code.
pub fn meaning_privat(code: i32) -> (&'static str, Class) {
    match code {
        0 => ("OK", Class::Ok),
        1 => ("unknown request type", Class::Refused),
        2 => ("payer not found", Class::Refused),
        3 => ("wrong sum", Class::Refused),
        4 => ("wrong date", Class::Refused),
        5 => ("access from this address not allowed", Class::Refused),
        6 => ("more than one payer found", Class::Refused),
        7 => ("duplicate payment", Class::Refused),
        98 => ("payment not found", Class::Refused),
        // The interface has no "later": 99 is also a provider's temporary fault, after
        // which the bank asks again.
        99 => (
            "other error (also a temporary fault): ask again",
            Class::Temporary,
        ),
        _ => ("unknown error code", Class::Refused),
    }
}

/// A Portmone answer: `<RESULT>` with `ERROR_CODE` and `REASON` (the comment), or a
/// check's `<RESPONSE><BILLS>` (0), each bill's `CONTRACT_NUMBER`, `AMOUNT` and `DEBT` as
/// fields.
pub fn parse_portmone(body: &str) -> Option<Answer> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut answer = Answer::default();
    let mut code: Option<i32> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() {
                    match name.as_str() {
                        "RESPONSE" => code = Some(0),
                        "RESULT" => {}
                        _ => return None,
                    }
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::End(_) => {
                let name = path.pop()?;
                let value = std::mem::take(&mut text).trim().to_string();
                match (path.first().map(String::as_str), name.as_str()) {
                    (Some("RESULT"), "ERROR_CODE") => code = Some(value.parse().ok()?),
                    (Some("RESULT"), "REASON") => answer.comment = value,
                    (Some("RESPONSE"), "CONTRACT_NUMBER" | "AMOUNT" | "DEBT") => {
                        answer.fields.push((name, value));
                    }
                    _ => {}
                }
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return None;
    }
    answer.result = code?;
    Some(answer)
}

/// What a Portmone `ERROR_CODE` means (paysys's codes; Portmone's own are not public but
/// 0 and 15).
pub fn meaning_portmone(code: i32) -> (&'static str, Class) {
    match code {
        0 => ("OK", Class::Ok),
        1 => ("temporary error: ask again", Class::Temporary),
        2 => ("the request cannot be read", Class::Refused),
        3 => ("wrong sum", Class::Refused),
        15 => ("payer not found", Class::Refused),
        16 => ("payment impossible for this payer", Class::Refused),
        17 => ("BILL_ID already paid with other data", Class::Refused),
        18 => ("payment not found", Class::Refused),
        20 => ("access from this address not allowed", Class::Refused),
        _ => ("unknown error code", Class::Refused),
    }
}

/// An EasyPay `<Response>`: `StatusCode`, `StatusDetail` as the comment, `PaymentId` as
/// the prv_txn, a check's `Name` and `Balance` as fields.
pub fn parse_easypay(body: &str) -> Option<Answer> {
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut answer = Answer::default();
    let mut code: Option<i32> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() && name != "Response" {
                    return None;
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::End(_) => {
                let name = path.pop()?;
                let value = std::mem::take(&mut text).trim().to_string();
                match (path.len(), name.as_str()) {
                    (1, "StatusCode") => code = Some(value.parse().ok()?),
                    (1, "StatusDetail") => answer.comment = value,
                    (1, "PaymentId") => answer.prv_txn = Some(value),
                    (2, "Name" | "Balance") => answer.fields.push((name, value)),
                    _ => {}
                }
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return None;
    }
    answer.result = code?;
    Some(answer)
}

/// Click's JSON answer: `error` as the result, `error_note` as the comment, the prepare
/// or confirm id as `prv_txn`; `None` when the body is no such object.
pub fn parse_click(body: &str) -> Option<Answer> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let result = i32::try_from(v.get("error")?.as_i64()?).ok()?;
    let id = ["merchant_confirm_id", "merchant_prepare_id"]
        .iter()
        .find_map(|k| v.get(*k).filter(|id| !id.is_null()))
        .map(|id| id.to_string().trim_matches('"').to_string());
    Some(Answer {
        result,
        comment: v
            .get("error_note")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string(),
        prv_txn: id,
        ..Answer::default()
    })
}

/// Payme's JSON-RPC answer: 0 for a `result` (its `transaction` as `prv_txn`, its `state`
/// as a field), else the error's `code` and English message; `None` when the body is
/// neither.
pub fn parse_payme(body: &str) -> Option<Answer> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let Some(result) = v.get("result").filter(|r| r.is_object()) {
        let mut answer = Answer {
            result: 0,
            prv_txn: result
                .get("transaction")
                .and_then(|t| t.as_str())
                .map(str::to_string),
            ..Answer::default()
        };
        if let Some(state) = result.get("state") {
            answer.fields.push(("state".into(), state.to_string()));
        }
        return Some(answer);
    }
    let error = v.get("error")?;
    Some(Answer {
        result: i32::try_from(error.get("code")?.as_i64()?).ok()?,
        comment: error["message"]["en"].as_str().unwrap_or("").to_string(),
        ..Answer::default()
    })
}

/// What a Payme error code means, as paysys answers them (INSTALL, "Payme").
pub fn meaning_payme(code: i32) -> (&'static str, Class) {
    match code {
        0 => ("OK", Class::Ok),
        -32400 => ("temporary error: ask again later", Class::Temporary),
        -32504 => ("wrong or missing key (--secret?)", Class::Refused),
        -31001 => ("wrong amount", Class::Refused),
        -31003 => ("transaction not found", Class::Refused),
        -31007 => ("paid: cannot be cancelled", Class::Refused),
        -31008 => ("cannot perform", Class::Refused),
        -31050 => ("account not found", Class::Refused),
        -31051 => ("payments to the account refused", Class::Refused),
        -32700 | -32600 | -32601 => ("bad request", Class::Refused),
        _ => ("unknown error code", Class::Refused),
    }
}

/// What a Click `error` means, as paysys answers them (INSTALL, "Click").
pub fn meaning_click(code: i32) -> (&'static str, Class) {
    match code {
        0 => ("success", Class::Ok),
        -1 => (
            "sign check failed (--secret, --service-id?)",
            Class::Refused,
        ),
        -2 => ("incorrect amount", Class::Refused),
        -3 => ("action not found", Class::Refused),
        -4 => ("already paid", Class::Refused),
        -5 => ("user does not exist", Class::Refused),
        -6 => ("transaction does not exist", Class::Refused),
        -7 => ("temporary error: ask again later", Class::Temporary),
        -8 => ("error in request", Class::Refused),
        -9 => ("transaction cancelled", Class::Refused),
        _ => ("unknown error code", Class::Refused),
    }
}

/// What an EasyPay `StatusCode` means, as paysys answers them (INSTALL, section 11).
pub fn meaning_easypay(code: i32) -> (&'static str, Class) {
    match code {
        0 => ("OK", Class::Ok),
        -10 => ("temporary error: ask again later", Class::Temporary),
        -1 => ("account not found", Class::Refused),
        -2 => ("payment refused", Class::Refused),
        -3 => (
            "the order id was booked with another account or amount",
            Class::Refused,
        ),
        -4 => ("payment not found", Class::Refused),
        -5 => ("wrong signature (--private-key?)", Class::Refused),
        -6 => ("bad request", Class::Refused),
        _ => ("unknown status code", Class::Refused),
    }
}

/// What a 24NonStop `status_code` means for the terminal.
pub fn meaning_nonstop24(code: i32) -> (&'static str, Class) {
    match code {
        21 => ("payment possible", Class::Ok),
        22 => ("payment accepted", Class::Ok),
        11 => ("transaction found", Class::Ok),
        -10 => ("transaction not found", Class::Refused),
        -40 => ("client not found", Class::Refused),
        -41 => ("payments for this client impossible", Class::Refused),
        -42 => ("payment of this amount impossible", Class::Refused),
        -90 => ("service unavailable: ask again later", Class::Temporary),
        -100 => ("this PAY_ID was paid otherwise", Class::Refused),
        -101 => ("request parameters incorrect (SIGN?)", Class::Refused),
        _ => ("unknown status code: final for a terminal", Class::Refused),
    }
}

/// What `result` means, in a few words, and what the terminal does about it. The codes are
/// OSMP's; the words are those of the protocol table in INSTALL ("Answers").
pub fn meaning(result: i32) -> (&'static str, Class) {
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
    fn reads_24nonstop_answers() {
        let check =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pay-response><balance>92.10</balance>\
                     <name>test  Test user</name><account>1</account><status_code>21</status_code>\
                     <time_stamp>19.01.2015 15:26:00</time_stamp></pay-response>";
        let a = Wire::Nonstop24.read(check).unwrap();
        assert_eq!((a.result, a.class), (21, Class::Ok));
        assert_eq!(a.fields[0], ("balance".to_string(), "92.10".to_string()));
        let a = Wire::Nonstop24
            .read("<pay-response><status_code>-90</status_code></pay-response>")
            .unwrap();
        assert_eq!(a.class, Class::Temporary);
        let a = Wire::Nonstop24
            .read(
                "<pay-response><status_code>11</status_code><transaction><amount>10.00</amount>\
                   <status>111</status></transaction></pay-response>",
            )
            .unwrap();
        assert_eq!((a.sum.as_deref(), a.ok()), (Some("10.00"), true));
        assert_eq!(
            Wire::Nonstop24.read("<response><result>0</result></response>"),
            None
        );
        assert_eq!(
            Wire::Osmp.read("<pay-response><status_code>21</status_code></pay-response>"),
            None
        );
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
