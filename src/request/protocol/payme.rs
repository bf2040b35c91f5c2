//! Payme's Merchant API (Uzbekistan), as Payme's developer documentation and ABillS's
//! `Payme` module (its `t/Payme.t` requests) take it.
//!
//! JSON-RPC 2.0 over POST: `{"method": …, "params": {…}, "id": …}`, answered with
//! `{"jsonrpc": "2.0", "id": …, "result": {…}}` or `… "error": {"code", "message": {"ru",
//! "uz", "en"}, "data"}`, always HTTP 200. Amounts are tiyin (1/100 sum: our minor unit as
//! it is); times milliseconds since 1970.
//!
//! The only credential is the `Authorization: Basic base64("Paycom:<key>")` header (the
//! web server passes it as `HTTP_AUTHORIZATION`; INSTALL section 23 shows how), compared
//! with the system's `key` in constant time before anything else is read: a missing or
//! wrong one is -32504, and nothing is looked up. The allow list still picks the system.
//!
//! * `CheckPerformTransaction` (`amount`, `account`): may it be paid? `{"allow": true}`.
//! * `CreateTransaction` (`id`, `time`, `amount`, `account`): books the order under Payme's
//!   `id` (`paysys_order`, Payme's `time` kept with it); nothing is credited. `{"create_time",
//!   "transaction", "state": 1}`; a repeat gets the same answer while the order waits, and
//!   -31008 once it was paid or cancelled.
//! * `PerformTransaction` (`id`): pays the order exactly once (`paysys_txn` with Payme's id
//!   as its txn id). `{"transaction", "perform_time", "state": 2}`, the same for a repeat.
//! * `CancelTransaction` (`id`, `reason`): an unpaid order is cancelled for good (state
//!   -1); a paid one is reversed (state -2; -31007 where the billing cannot reverse it:
//!   an edited or deleted payment). `{"transaction", "cancel_time", "state"}`, the same for a repeat; the first
//!   `reason` is kept.
//! * `CheckTransaction` (`id`): `{"create_time", "perform_time", "cancel_time",
//!   "transaction", "state", "reason"}`.
//! * `GetStatement` (`from`, `to`): every order Payme made in that time (by its `time`),
//!   each as CheckTransaction tells it plus `id`, `time`, `amount`, `account`.
//!
//! An order not paid within 12 hours of its booking is cancelled with reason 4 when it is
//! next touched — a repeated Create, a Perform (-31008), a Cancel, a CheckTransaction — and
//! a GetStatement cancels every such order of the system before it lists; no sweeper is
//! needed, since nobody but Payme can pay it.
//!
//! The account object's field is named after the system's first account key (`login`,
//! `uid`, `contract_id`, `payment_code`, `id`); `account` is taken too. Errors: -31001 wrong
//! amount (or outside min_sum..max_sum), -31003 no such transaction, -31007 a paid order
//! cannot be cancelled, -31008 cannot perform (cancelled, paid, or booked otherwise),
//! -31050 no such account, -31051 payments to it refused, -32504 the key, -32700 not JSON,
//! -32600 a malformed request, -32601 an unknown method (ChangePassword too: the key lives
//! in the config), -32400 our temporary error (Payme asks again).

use base64::Engine;
use chrono::{Local, NaiveDateTime};
use serde_json::{json, Map, Value};

use crate::cgi::{Request, Response};
use crate::config::ProtocolKind;
use crate::domain::{Account, Amount, AmountError, TxnId};
use crate::ledger::OrderView;
use crate::outcome::{
    Booking, Check, Command, Echo, OrderRef, Outcome, Period, Refusal, StatusQuery,
};
use crate::protocol::osmp::clean;
use crate::protocol::sign::same_text;
use crate::protocol::{ParseContext, Protocol, Reply};

pub struct Payme;

/// How a request that is not JSON is refused: -32700, where any other unreadable request
/// is -32600.
const NOT_JSON: &str = "not JSON: ";

/// The login Payme sends with the key.
const LOGIN: &str = "Paycom";

/// An error's code, its words (Russian, Uzbek, English) and, for an account error, the
/// account's field.
struct Error {
    code: i32,
    ru: &'static str,
    uz: &'static str,
    en: &'static str,
    account_field: bool,
}

const fn error(code: i32, ru: &'static str, uz: &'static str, en: &'static str) -> Error {
    Error {
        code,
        ru,
        uz,
        en,
        account_field: false,
    }
}

const WRONG_AMOUNT: Error = error(-31001, "Неверная сумма", "Noto'g'ri summa", "Wrong amount");
const NOT_FOUND: Error = error(
    -31003,
    "Транзакция не найдена",
    "Tranzaksiya topilmadi",
    "Transaction not found",
);
const CANNOT_CANCEL: Error = error(
    -31007,
    "Платёж проведён, отменить нельзя",
    "To'lov o'tkazilgan, bekor qilib bo'lmaydi",
    "The payment is done and cannot be cancelled",
);
const CANNOT_PERFORM: Error = error(
    -31008,
    "Невозможно выполнить операцию",
    "Amalni bajarib bo'lmaydi",
    "Unable to perform the operation",
);
const NO_ACCOUNT: Error = Error {
    account_field: true,
    ..error(
        -31050,
        "Абонент не найден",
        "Abonent topilmadi",
        "Account not found",
    )
};
const REFUSED_ACCOUNT: Error = Error {
    account_field: true,
    ..error(
        -31051,
        "Платежи на этот счёт не принимаются",
        "Bu hisobga to'lovlar qabul qilinmaydi",
        "Payments to this account are refused",
    )
};
const SYSTEM: Error = error(
    -32400,
    "Системная ошибка, повторите позже",
    "Tizim xatosi, keyinroq qayta urinib ko'ring",
    "System error, try again later",
);
const PRIVILEGES: Error = error(
    -32504,
    "Недостаточно привилегий",
    "Huquqlar yetarli emas",
    "Insufficient privileges",
);
const INVALID: Error = error(
    -32600,
    "Неверный запрос",
    "Noto'g'ri so'rov",
    "Invalid request",
);
const NO_METHOD: Error = error(
    -32601,
    "Метод не найден",
    "Metod topilmadi",
    "Method not found",
);
const PARSE: Error = error(
    -32700,
    "Ошибка разбора JSON",
    "JSON tahlil xatosi",
    "Parse error",
);

/// The error an outcome that is no success is answered with.
fn error_of(outcome: &Outcome) -> &'static Error {
    match outcome {
        Outcome::Refused(refusal) => match refusal {
            Refusal::BadSignature(_) | Refusal::CallerNotAllowed => &PRIVILEGES,
            Refusal::BadRequest(why) if why.starts_with(NOT_JSON) => &PARSE,
            Refusal::NoCommand(_) => &NO_METHOD,
            Refusal::BadSum(_)
            | Refusal::SumBelowMin { .. }
            | Refusal::SumAboveMax { .. }
            | Refusal::SumTooLarge(_) => &WRONG_AMOUNT,
            Refusal::NoSuchSubscriber | Refusal::BadAccount(_) => &NO_ACCOUNT,
            Refusal::AccountInactive | Refusal::PaymentsDisabled | Refusal::HookRefused(_) => {
                &REFUSED_ACCOUNT
            }
            Refusal::UnknownTxn => &NOT_FOUND,
            Refusal::PaidThenCancelled { .. } | Refusal::Conflict { .. } => &CANNOT_PERFORM,
            // A paid transaction whose billing row was deleted or edited since: it cannot be
            // reversed (Payme's -31007), though CheckTransaction still shows it paid.
            Refusal::CancelUnknown(_) | Refusal::CancelNotSupported(_) => &CANNOT_CANCEL,
            // The admin must give the subscriber a bill: "later".
            Refusal::NoBill => &SYSTEM,
            Refusal::BadRequest(_)
            | Refusal::BadTxnId(_)
            | Refusal::BadTxnDate(_)
            | Refusal::TxnDateOutOfWindow { .. }
            | Refusal::BadDomain(_) => &INVALID,
        },
        Outcome::Failed(_) => &SYSTEM,
        // Successes answered without the order they name (render_orders reads it): the
        // order is gone, which only a hand in the database does.
        _ => &NOT_FOUND,
    }
}

/// Whether `header` is `Basic base64("Paycom:<key>")`, compared in constant time.
fn authorized(header: Option<&str>, key: &str) -> Result<(), Refusal> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            Refusal::BadSignature(
                "no Authorization header (the web server must pass it as HTTP_AUTHORIZATION: \
                 INSTALL section 23)"
                    .into(),
            )
        })?;
    let encoded = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
        .ok_or_else(|| Refusal::BadSignature("the Authorization header is not Basic".into()))?;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Refusal::BadSignature("the Authorization header is not base64 text".into())
        })?;
    if !same_text(&sent, &format!("{LOGIN}:{key}")) {
        return Err(Refusal::BadSignature(
            "the Authorization header does not carry this system's key".into(),
        ));
    }
    Ok(())
}

/// The method as the log names it.
fn command_name(method: &str) -> String {
    match method {
        "CheckPerformTransaction" => "check",
        "CreateTransaction" => "book",
        "PerformTransaction" => "pay",
        "CancelTransaction" => "cancel",
        "CheckTransaction" => "status",
        "GetStatement" => "list",
        other => return format!("method={}", clean(other)),
    }
    .to_string()
}

/// The request's JSON object, as much as reads.
fn body(request: &Request) -> Result<Map<String, Value>, Refusal> {
    let body = request
        .body
        .as_ref()
        .map_err(|e| Refusal::BadRequest(e.0.clone()))?;
    let v: Value =
        serde_json::from_slice(body).map_err(|e| Refusal::BadRequest(format!("{NOT_JSON}{e}")))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(Refusal::BadRequest(format!(
            "{NOT_JSON}the body is not a JSON object"
        ))),
    }
}

/// A number Payme sends (tiyin, milliseconds): an integer, or a float without a fraction.
fn integer(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// Payme's `amount` in tiyin, as a sum.
fn amount(params: &Map<String, Value>) -> Result<Amount, Refusal> {
    let tiyin = integer(params.get("amount"))
        .ok_or_else(|| Refusal::BadSum("amount is not a whole number of tiyin".into()))?;
    if tiyin <= 0 {
        return Err(Refusal::BadSum(format!("amount {tiyin} is not above 0")));
    }
    // Through the sums' own parser: the same largest sum as every protocol's.
    let text = format!("{}.{:02}", tiyin / 100, tiyin % 100);
    Amount::parse(&text).map_err(|e| match e {
        AmountError::TooLarge => Refusal::SumTooLarge(format!("amount {tiyin} tiyin: {e}")),
        AmountError::Malformed(why) => Refusal::BadSum(format!("amount {tiyin} tiyin: {why}")),
    })
}

/// Milliseconds since 1970 as the server's local time.
fn local_time(ms: i64) -> Option<NaiveDateTime> {
    Some(
        chrono::DateTime::from_timestamp_millis(ms)?
            .with_timezone(&Local)
            .naive_local(),
    )
}

/// The last millisecond a DATETIME holds (9999-12-31 23:59:59.999 UTC), less a day for
/// the time zone: a later time would make the booking's INSERT fail, and the request a
/// temporary error for ever.
const LAST_MS: i64 = 253_402_300_799_999 - 86_400_000;

/// A time parameter (`time`, `from`, `to`).
fn time(params: &Map<String, Value>, name: &str) -> Result<NaiveDateTime, Refusal> {
    integer(params.get(name))
        .filter(|ms| (0..LAST_MS).contains(ms))
        .and_then(local_time)
        .ok_or_else(|| Refusal::BadTxnDate(format!("{name} is not a time in milliseconds")))
}

/// Payme's transaction `id`.
fn id(params: &Map<String, Value>) -> Result<TxnId, Refusal> {
    let text = params
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::BadTxnId("id is missing or not a string".into()))?;
    TxnId::parse_token(text).map_err(|e| Refusal::BadTxnId(format!("id: {e}")))
}

/// The names the account object's field may have: the system's first account key's, and
/// `account`.
fn account_fields(ctx_keys: &[crate::domain::AccountKey]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ctx_keys.first().map(|k| k.name()).into_iter().collect();
    names.push("account");
    names
}

/// The account text the request's `account` object carries, if any.
fn account_text<'a>(params: &'a Map<String, Value>, fields: &[&str]) -> Option<&'a str> {
    let object = params.get("account")?.as_object()?;
    fields
        .iter()
        .find_map(|f| object.get(*f))
        .and_then(Value::as_str)
}

impl Protocol for Payme {
    /// The key itself comes in the Authorization header, which the history never keeps;
    /// ChangePassword's body carries a new one.
    fn secrets(&self) -> &'static [&'static str] {
        &["password"]
    }

    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Payme
    }

    fn echo(&self, request: &Request) -> Echo {
        let mut echo = Echo {
            dump: request.dump(),
            ..Echo::default()
        };
        let Ok(o) = body(request) else {
            return echo;
        };
        let method = o.get("method").and_then(Value::as_str).unwrap_or("");
        echo.command = command_name(method);
        echo.params.push(("method".into(), method.into()));
        // The JSON-RPC id, whatever JSON it is, for the answer; as JSON text.
        if let Some(id) = o.get("id") {
            echo.params.push(("rpc_id".into(), id.to_string()));
        }
        if let Some(params) = o.get("params").and_then(Value::as_object) {
            echo.txn_id = params
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(account) = params.get("account").and_then(Value::as_object) {
                // Whichever field it named: the log shows what came.
                if let Some((field, value)) = account.iter().find(|(_, v)| v.is_string()) {
                    echo.account = value.as_str().unwrap_or("").to_string();
                    echo.params
                        .push((format!("account.{field}"), echo.account.clone()));
                }
            }
            if let Some(tiyin) = integer(params.get("amount")) {
                let sign = if tiyin < 0 { "-" } else { "" };
                echo.sum = format!("{sign}{}.{:02}", (tiyin / 100).abs(), (tiyin % 100).abs());
            }
            for key in ["time", "reason", "from", "to"] {
                if let Some(v) = params.get(key) {
                    echo.params.push((key.into(), v.to_string()));
                }
            }
        }
        echo
    }

    fn parse(&self, request: &Request, ctx: &ParseContext) -> Result<Command, Refusal> {
        // The key first: a caller without it learns nothing, not even what it sent wrong.
        let rule = ctx.sign.ok_or_else(|| {
            Refusal::BadSignature("the system has no key: nothing can be checked".into())
        })?;
        authorized(request.authorization.as_deref(), &rule.secret)?;
        if request.method != "POST" {
            return Err(Refusal::BadRequest(format!(
                "a {} request: Payme POSTs",
                clean(&request.method)
            )));
        }
        let o = body(request)?;
        let method = o
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::BadRequest("no method".into()))?;
        let params = o
            .get("params")
            .and_then(Value::as_object)
            .ok_or_else(|| Refusal::BadRequest("no params object".into()))?;
        let fields = account_fields(&ctx.account.keys);
        let account = || -> Result<Account, Refusal> {
            let text = account_text(params, &fields).ok_or_else(|| {
                Refusal::BadAccount(format!(
                    "no account.{} in the request",
                    fields.first().copied().unwrap_or("account")
                ))
            })?;
            Account::parse_by(text, ctx.account).map_err(Refusal::BadAccount)
        };
        let order = |note: Option<String>| -> Result<OrderRef, Refusal> {
            Ok(OrderRef {
                payment_id: None,
                order_id: Some(id(params)?),
                account: None,
                sum: None,
                reverses: true,
                note,
            })
        };
        match method {
            "CheckPerformTransaction" => Ok(Command::Check(Check {
                txn_id: None,
                account: account()?,
                sum: Some(amount(params)?),
            })),
            "CreateTransaction" => Ok(Command::Book(Booking {
                order_id: id(params)?,
                account: account()?,
                sum: amount(params)?,
                at: Some(time(params, "time")?),
            })),
            "PerformTransaction" => Ok(Command::Confirm(order(None)?)),
            "CancelTransaction" => {
                let reason = integer(params.get("reason"))
                    .ok_or_else(|| Refusal::BadRequest("reason is not a number".into()))?;
                Ok(Command::Unbook(order(Some(reason.to_string()))?))
            }
            "CheckTransaction" => Ok(Command::Status(StatusQuery {
                txn_id: id(params)?,
            })),
            "GetStatement" => {
                let (from, to) = (time(params, "from")?, time(params, "to")?);
                if from > to {
                    return Err(Refusal::BadTxnDate("from is after to".into()));
                }
                Ok(Command::List(Period { from, to }))
            }
            other => Err(Refusal::NoCommand(other.to_string())),
        }
    }

    fn render(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        match outcome {
            Outcome::Checked { .. } => answer(echo, Ok(json!({ "allow": true }))),
            _ => answer(echo, Err(error_of(outcome))),
        }
    }

    fn order_lifetime(&self) -> Option<chrono::Duration> {
        Some(chrono::Duration::hours(12))
    }

    fn render_orders(&self, echo: &Echo, outcome: &Outcome, orders: &[OrderView]) -> Reply {
        let method = field(echo, "method");
        let order = orders.first();
        let result = match (method, outcome, order) {
            ("CreateTransaction", Outcome::Booked { .. }, Some(v)) if state(v) == 1 => Ok(json!({
                "create_time": v.created,
                "transaction": v.payment_id.to_string(),
                "state": 1,
            })),
            // Booked before and paid or cancelled since (12 hours passed): not again.
            ("CreateTransaction", Outcome::Booked { .. }, Some(_)) => Err(&CANNOT_PERFORM),
            ("PerformTransaction", Outcome::Paid { .. }, Some(v)) if state(v) == 2 => Ok(json!({
                "transaction": v.payment_id.to_string(),
                "perform_time": v.paid,
                "state": 2,
            })),
            ("CancelTransaction", Outcome::Cancelled { .. }, Some(v)) if v.cancelled != 0 => {
                Ok(json!({
                    "transaction": v.payment_id.to_string(),
                    "cancel_time": v.cancelled,
                    "state": state(v),
                }))
            }
            // A booked order is no unknown transaction, paid or not.
            (
                "CheckTransaction",
                Outcome::Found { .. } | Outcome::Refused(crate::outcome::Refusal::UnknownTxn),
                Some(v),
            ) => Ok(json!({
                "create_time": v.created,
                "perform_time": v.paid,
                "cancel_time": v.cancelled,
                "transaction": v.payment_id.to_string(),
                "state": state(v),
                "reason": reason(v),
            })),
            ("GetStatement", Outcome::Listed(_), _) => Ok(json!({
                "transactions": orders.iter().map(|v| statement_row(echo, v)).collect::<Vec<_>>(),
            })),
            (_, Outcome::Checked { .. }, _) => Ok(json!({ "allow": true })),
            _ => Err(error_of(outcome)),
        };
        answer(echo, result)
    }
}

/// The order's state as Payme numbers them: 1 booked, 2 paid, -1 cancelled unpaid, -2
/// cancelled after it was paid.
pub fn state(v: &OrderView) -> i32 {
    match (v.cancelled != 0, v.reversed, v.paid != 0) {
        (true, true, _) => -2,
        (true, false, _) => -1,
        (false, _, true) => 2,
        (false, _, false) => 1,
    }
}

/// The cancel reason as Payme sent it (a number), or null.
fn reason(v: &OrderView) -> Value {
    match v.reason.parse::<i64>() {
        Ok(n) if v.cancelled != 0 => n.into(),
        _ => Value::Null,
    }
}

/// One transaction of a GetStatement answer.
fn statement_row(echo: &Echo, v: &OrderView) -> Value {
    let _ = echo;
    json!({
        "id": v.order_id,
        "time": v.at,
        "amount": v.amount.kopecks(),
        "account": { v.account_key: v.account },
        "create_time": v.created,
        "perform_time": v.paid,
        "cancel_time": v.cancelled,
        "transaction": v.payment_id.to_string(),
        "state": state(v),
        "reason": reason(v),
        "receivers": Value::Null,
    })
}

/// A parameter of the request as the echo kept it.
fn field<'a>(echo: &'a Echo, name: &str) -> &'a str {
    echo.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The JSON-RPC answer: `result`, or the error.
fn answer(echo: &Echo, result: Result<Value, &'static Error>) -> Reply {
    // The request's id as it came (JSON we parsed ourselves), else null.
    let id: Value = serde_json::from_str(field(echo, "rpc_id")).unwrap_or(Value::Null);
    let (body, code, words) = match result {
        Ok(result) => (
            json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            0,
            "OK",
        ),
        Err(e) => {
            let mut error = json!({
                "code": e.code,
                "message": { "ru": e.ru, "uz": e.uz, "en": e.en },
            });
            if e.account_field {
                let named = echo
                    .params
                    .iter()
                    .find_map(|(k, _)| k.strip_prefix("account."))
                    .unwrap_or("account");
                error["data"] = clean(named).into();
            }
            (
                json!({ "jsonrpc": "2.0", "id": id, "error": error }),
                e.code,
                e.en,
            )
        }
    };
    Reply {
        response: Response {
            status: 200,
            content_type: "application/json; charset=utf-8",
            body: body.to_string(),
            headers: Default::default(),
        },
        result: code.to_string(),
        comment: words.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServiceSlot, SignHash, SignRule};
    use crate::domain::{AccountKey, AccountRule};
    use std::ffi::OsString;

    fn rule() -> SignRule {
        SignRule {
            secret: "k3y&x".into(),
            hash: SignHash::Md5,
            amount: false,
            service: ServiceSlot::Absent,
        }
    }

    fn basic(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    fn post(auth: Option<&str>, body: &str) -> Request {
        let len = body.len().to_string();
        let auth = auth.map(OsString::from);
        Request::read(
            |k| match k {
                "REQUEST_METHOD" => Some("POST".into()),
                "CONTENT_TYPE" => Some("application/json".into()),
                "CONTENT_LENGTH" => Some(OsString::from(&len)),
                "REMOTE_ADDR" => Some("127.0.0.1".into()),
                "HTTP_AUTHORIZATION" => auth.clone(),
                _ => None,
            },
            &mut body.as_bytes(),
        )
    }

    fn parse(auth: Option<&str>, body: &str) -> Result<Command, Refusal> {
        let account = AccountRule::new(AccountKey::Login);
        let r = rule();
        let ctx = ParseContext {
            account: &account,
            now: NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap(),
            test: false,
            sign: Some(&r),
            rsa: None,
            card: None,
            monobank_key: None,
        };
        Payme.parse(&post(auth, body), &ctx)
    }

    const CREATE: &str = r#"{"jsonrpc":"2.0","id":2,"method":"CreateTransaction","params":{"account":{"login":"test1"},"amount":500000,"id":"5305e3bab097f420a62ced0b","time":1399114284039}}"#;

    #[test]
    fn methods_parse_with_the_key() {
        let auth = basic("Paycom:k3y&x");
        let Ok(Command::Book(b)) = parse(Some(&auth), CREATE) else {
            panic!("{:?}", parse(Some(&auth), CREATE));
        };
        assert_eq!(
            (b.order_id.as_str(), b.account.as_str(), b.sum),
            (
                "5305e3bab097f420a62ced0b",
                "test1",
                Amount::from_kopecks(500_000)
            )
        );
        assert_eq!(
            b.at.map(|t| t.and_local_timezone(Local).unwrap().timestamp_millis()),
            Some(1_399_114_284_039)
        );
        let cancel = r#"{"method":"CancelTransaction","params":{"id":"abc","reason":3}}"#;
        let Ok(Command::Unbook(r)) = parse(Some(&auth), cancel) else {
            panic!()
        };
        assert_eq!(
            (
                r.payment_id,
                r.order_id.unwrap().as_str().to_string(),
                r.note
            ),
            (None, "abc".to_string(), Some("3".into()))
        );
        let check = r#"{"method":"CheckPerformTransaction","params":{"amount":100,"account":{"account":"test1"}}}"#;
        assert!(matches!(parse(Some(&auth), check), Ok(Command::Check(_))));
        let list =
            r#"{"method":"GetStatement","params":{"from":1399114284039,"to":1399120284000}}"#;
        assert!(matches!(parse(Some(&auth), list), Ok(Command::List(_))));
    }

    #[test]
    fn a_missing_or_wrong_key_is_refused_before_the_body_is_read() {
        for auth in [
            None,
            Some(String::new()),
            Some(basic("Paycom:k3y&y")),
            Some(basic("Paycom:k3y&x ")),
            Some(basic("Other:k3y&x")),
            Some(basic("k3y&x")),
            Some("Bearer k3y&x".to_string()),
            Some("Basic !!!".to_string()),
        ] {
            // Even a body that is not JSON: the key is looked at first.
            let r = parse(auth.as_deref(), "{not json");
            assert!(
                matches!(r, Err(Refusal::BadSignature(_))),
                "{auth:?}: {r:?}"
            );
            assert_eq!(error_of(&Outcome::Refused(r.unwrap_err())).code, -32504);
        }
        assert!(parse(Some("basic  UGF5Y29tOmszeSZ4"), CREATE).is_ok());
    }

    #[test]
    fn bad_requests_get_payme_codes() {
        let auth = basic("Paycom:k3y&x");
        let table = [
            ("{not json", -32700),
            ("[1,2]", -32700),
            (r#"{"params":{}}"#, -32600),
            (r#"{"method":"CreateTransaction"}"#, -32600),
            (
                r#"{"method":"ChangePassword","params":{"password":"x"}}"#,
                -32601,
            ),
            (
                r#"{"method":"CheckPerformTransaction","params":{"amount":-5,"account":{"login":"test1"}}}"#,
                -31001,
            ),
            (
                r#"{"method":"CheckPerformTransaction","params":{"amount":1.5,"account":{"login":"test1"}}}"#,
                -31001,
            ),
            (
                r#"{"method":"CheckPerformTransaction","params":{"amount":"100","account":{"login":"test1"}}}"#,
                -31001,
            ),
            (
                r#"{"method":"CheckPerformTransaction","params":{"amount":100,"account":{"uid":"1"}}}"#,
                -31050,
            ),
            (
                r#"{"method":"PerformTransaction","params":{"id":"a b"}}"#,
                -32600,
            ),
            (
                r#"{"method":"CancelTransaction","params":{"id":"a"}}"#,
                -32600,
            ),
            (
                r#"{"method":"GetStatement","params":{"from":5,"to":1}}"#,
                -32600,
            ),
            (
                r#"{"method":"CreateTransaction","params":{"id":"a","time":99999999999999999,"amount":100,"account":{"login":"test1"}}}"#,
                -32600,
            ),
        ];
        for (body, want) in table {
            let r = parse(Some(&auth), body).unwrap_err();
            assert_eq!(
                error_of(&Outcome::Refused(r.clone())).code,
                want,
                "{body}: {r:?}"
            );
        }
    }

    #[test]
    fn answers_carry_the_request_id_and_the_order_state() {
        let echo = Payme.echo(&post(None, CREATE));
        assert_eq!(
            (
                echo.command.as_str(),
                echo.txn_id.as_str(),
                echo.sum.as_str()
            ),
            ("book", "5305e3bab097f420a62ced0b", "5000.00")
        );
        let view = OrderView {
            payment_id: 9,
            order_id: "5305e3bab097f420a62ced0b".into(),
            account: "test1".into(),
            account_key: "login",
            amount: Amount::from_kopecks(500_000),
            at: 1_399_114_284_039,
            created: 1_399_114_285_000,
            paid: 0,
            cancelled: 0,
            reversed: false,
            reason: String::new(),
        };
        let booked = Outcome::Booked {
            payment_id: 9,
            repeat: false,
        };
        let reply = Payme.render_orders(&echo, &booked, std::slice::from_ref(&view));
        let v: Value = serde_json::from_str(&reply.response.body).unwrap();
        assert_eq!(v["id"], 2);
        assert_eq!(v["result"]["transaction"], "9");
        assert_eq!(v["result"]["create_time"], 1_399_114_285_000i64);
        assert_eq!(v["result"]["state"], 1);
        // Cancelled since (12 hours, reason 4): a repeated Create cannot be performed.
        let expired = OrderView {
            cancelled: 1_399_160_000_000,
            reason: "4".into(),
            ..view.clone()
        };
        let reply = Payme.render_orders(&echo, &booked, std::slice::from_ref(&expired));
        let v: Value = serde_json::from_str(&reply.response.body).unwrap();
        assert_eq!(v["error"]["code"], -31008);
        assert_eq!((state(&expired), reason(&expired)), (-1, json!(4)));
        let reversed = OrderView {
            paid: 1_399_114_290_000,
            reversed: true,
            ..expired
        };
        assert_eq!(state(&reversed), -2);
        let row = statement_row(&echo, &reversed);
        assert_eq!(row["account"]["login"], "test1");
        assert_eq!(
            (row["amount"].as_i64(), row["state"].as_i64()),
            (Some(500_000), Some(-2))
        );
        // An account error names the field; hostile text stays JSON text.
        let hostile = Payme.echo(&post(
            None,
            r#"{"id":"\u0000\"}","method":"x","params":{"account":{"lo\"gin":"a"}}}"#,
        ));
        let reply = Payme.render(&hostile, &Outcome::Refused(Refusal::NoSuchSubscriber));
        let v: Value = serde_json::from_str(&reply.response.body).unwrap();
        assert_eq!(v["error"]["code"], -31050);
        assert_eq!(v["id"], "\u{0}\"}");
        assert_eq!(v["error"]["data"], "lo\"gin");
    }
}
