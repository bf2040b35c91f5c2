//! `paysys terminal`: a payment terminal in a command, for trying a deployment end to end
//! over HTTP(S) from wherever the terminals call from.
//!
//! Two kinds of terminal:
//!
//! * **OSMP** (`--url URL`): what QIWI/OSMP terminals and payment systems send `osmp.cgi`
//!   and `paysys_check.cgi` — check, pay, status, cancel. Like a terminal, it asks again
//!   after a temporary answer (result 1 or 90, an HTTP 5xx, no answer at all) with growing
//!   pauses, within `--retry-for`, and then says whether the money is confirmed, refused
//!   or still in doubt.
//! * **PayPRO** (`--paypro FILE --provider N`): a PayPRO terminal with that provider
//!   description ([`crate::paypro`]): the pre-check packet, what the screen shows from its
//!   answer (the server variables), then the payment packet, which PayPRO sends until any
//!   non-empty answer comes — and counts as paid whatever it says. We read that answer as
//!   OSMP too, so the verdict tells the truth the terminal cannot see.
//!
//! Exit codes, for scripts: 0 confirmed (a check: the account can be paid), 1 refused,
//! 2 the command itself is wrong (nothing was sent, or nothing could be), 3 in doubt.
//!
//! * [`answer`] — the OSMP answer typed, and what each `result` means.
//! * [`http`] — one request out, one answer back, over HTTP or HTTPS.

pub mod answer;
pub mod http;

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use chrono::{Local, NaiveDateTime};

use crate::config::{ServiceSlot, SignHash, SignRule};
use crate::domain::{Amount, TxnId};
use crate::paypro::{self, HttpRequest, Layer, Method, Providers};
use answer::{Answer, Class, Wire};
use http::{Client, ClientOptions, Reply, SendError};

pub const USAGE: &str = "usage: paysys terminal --url URL [OPTIONS] check ACCOUNT [SUM]
       paysys terminal --url URL [OPTIONS] pay ACCOUNT SUM
       paysys terminal --url URL [OPTIONS] --txn-id N --status
       paysys terminal --url URL [OPTIONS] --txn-id N --cancel
       paysys terminal --paypro FILE [--paypro FILE…] --provider N [OPTIONS] check|pay ACCOUNT [SUM]

  A payment terminal in a command: sends the request, prints it, the raw answer and what its
  result means; asks again after a temporary answer (result 1 or 90, HTTP 5xx, no answer)
  with pauses of 1, 2, 4 … 30 s; ends with the verdict: confirmed, refused or in doubt.
  Exit 0 confirmed (a check: the account can be paid), 1 refused, 2 usage (nothing sent),
  3 in doubt (it prints the command that asks again with the same txn_id).

OPTIONS

  --url URL            the endpoint: http(s)://HOST/cgi-bin/osmp.cgi or …/paysys_check.cgi
  --txn-id N           the terminal's payment number (default: generated from the clock);
                       the same N repeats a payment, which is credited at most once
  --txn-date YYYYMMDDHHMMSS
                       the pay's txn_date (default: now, in this machine's time zone)
  --status             ask whether payment --txn-id N was committed
  --cancel             cancel payment --txn-id N (its prv_txn is asked for first, unless
                       --prv-txn P gives it)
  --param NAME=VALUE   one more parameter for every request (prv_id, trm_id, …); repeatable
  --post               send the form as a POST body instead of the query string
  --user U --password P
                       HTTP basic authentication in front of the CGI
  --retry-for SECS     ask again after temporary answers for up to SECS (default 60; 0: once)
  --timeout SECS       wait for one answer up to SECS (default 30)
  --cacert FILE        trust the certificates in this PEM file (a self-signed or private CA)
  --insecure           do not check the server's certificate
  --protocol NAME      osmp (default), ibox (OSMP with ibox_txn_id; a check sends sum 0.00
                       unless given), city24 (QueryType=…; --cancel names the pay by
                       --txn-id as RevertId), privat (PrivatBank's Debt XML: check is a
                       Search, pay a Pay with Data@id = --txn-id, --cancel a Cancel), easypay
                       (pay books --txn-id as the OrderId, then confirms its PaymentId;
                       --cancel --prv-txn PAYMENT_ID; --private-key FILE signs the requests,
                       --sign sha256), or 24nonstop (24NonStop and 2click terminals; ACT=1, 4, 7
                       signed with --secret S; --sign sha1, --sign-amount as the system's
                       config says; --service-id ID sends and signs SERVICE_ID, as 2.20 and
                       later do; without it, none is sent or signed, as 2.10 does, for a
                       system with sign_service_id = false), kaspi (OSMP's requests,
                       answers with txn_id and prv_txn_id), portmone (the form field data:
                       a <REQUESTS> check, a PAYED <BILL> notice with BILL_ID = --txn-id;
                       --cancel needs --param PAYED_AMOUNT=-SUM, the sum paid), click
                       (Click's SHOP API: check ACCOUNT SUM is a Prepare, pay a Prepare then
                       its Complete;
                       --txn-id is the click_trans_id; --secret S is the system's secret_key,
                       --service-id ID its service_id; no --status or --cancel), or payme
                       (Payme's Merchant API: check ACCOUNT SUM is CheckPerformTransaction,
                       pay a CreateTransaction then its PerformTransaction, --txn-id the
                       Payme id; --secret S is the system's key, sent as Basic Paycom:S;
                       --status is CheckTransaction, --cancel a CancelTransaction, reason 5)
  --paypro FILE        a PayPRO provider file (providers.ini, providers_user.ini, or an own
                       MyProviders.ini) or a terminal's directory of them; repeat to layer
                       files in that order
  --provider N         the provider's number as the terminal knows it (own ones: -1, -2, …;
                       1 finds own provider 1 when no standard provider 1 was read)";

/// What a run ended with; the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Confirmed = 0,
    Refused = 1,
    Usage = 2,
    InDoubt = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Check {
        account: String,
        sum: Option<Amount>,
    },
    Pay {
        account: String,
        sum: Amount,
    },
    Status,
    Cancel {
        prv_txn: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Args {
    url: Option<String>,
    post: bool,
    auth: Option<(String, String)>,
    txn_id: Option<TxnId>,
    txn_date: Option<String>,
    params: Vec<(String, String)>,
    retry_for: Duration,
    client: ClientOptions,
    paypro: Vec<PathBuf>,
    provider: Option<i64>,
    action: Action,
    wire: Wire,
    /// 24NonStop: how to sign, and the SERVICE_ID to send (and sign) if any.
    sign: Option<SignRule>,
    service: Option<String>,
    /// EasyPay: the key requests are signed with (EasySoft's role), and the hash.
    easypay_key: Option<rsa::RsaPrivateKey>,
    easypay_hash: SignHash,
}

/// `paysys terminal ARGS…`: the exit code.
pub fn command(args: &[String]) -> u8 {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return 0;
    }
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("paysys terminal: {e}\n(paysys terminal --help shows every option)");
            return Verdict::Usage as u8;
        }
    };
    let client = match Client::new(&args.client) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paysys terminal: {e}");
            return Verdict::Usage as u8;
        }
    };
    let verdict = if args.paypro.is_empty() {
        osmp_terminal(&client, &args)
    } else {
        paypro_terminal(&client, &args)
    };
    verdict as u8
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut url = None;
    let mut post = false;
    let mut user = None;
    let mut password = None;
    let mut txn_id = None;
    let mut txn_date = None;
    let mut params = Vec::new();
    let mut retry_for = Duration::from_secs(60);
    let mut timeout = Duration::from_secs(30);
    let mut cacert = None;
    let mut insecure = false;
    let mut paypro = Vec::new();
    let mut provider = None;
    let mut status = false;
    let mut cancel = false;
    let mut prv_txn = None;
    let mut wire = Wire::Osmp;
    let mut secret = None;
    let mut hash = SignHash::Md5;
    let mut sign_amount = false;
    let mut service = None;
    let mut private_key: Option<PathBuf> = None;
    let mut words: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<String, String> {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--url" => url = Some(value("--url")?),
            "--post" => post = true,
            "--user" => user = Some(value("--user")?),
            "--password" => password = Some(value("--password")?),
            "--txn-id" => txn_id = Some(value("--txn-id")?),
            "--txn-date" => {
                let v = value("--txn-date")?;
                if v.len() != 14 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "--txn-date {v}: expected 14 digits YYYYMMDDHHMMSS, e.g. 20261122143000"
                    ));
                }
                txn_date = Some(v);
            }
            "--param" => {
                let v = value("--param")?;
                let (name, val) = v
                    .split_once('=')
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| format!("--param {v}: expected NAME=VALUE"))?;
                params.push((name.to_string(), val.to_string()));
            }
            "--retry-for" => retry_for = seconds("--retry-for", &value("--retry-for")?)?,
            "--timeout" => {
                timeout = seconds("--timeout", &value("--timeout")?)?;
                if timeout.is_zero() {
                    return Err("--timeout must be more than 0 seconds".into());
                }
            }
            "--cacert" => cacert = Some(PathBuf::from(value("--cacert")?)),
            "--insecure" => insecure = true,
            "--paypro" => paypro.push(PathBuf::from(value("--paypro")?)),
            "--provider" => {
                let v = value("--provider")?;
                provider = Some(v.parse::<i64>().ok().filter(|n| *n != 0).ok_or_else(|| {
                    format!("--provider {v}: expected a provider's number, e.g. -1")
                })?);
            }
            "--status" => status = true,
            "--cancel" => cancel = true,
            "--prv-txn" => prv_txn = Some(value("--prv-txn")?),
            "--protocol" => {
                wire = match value("--protocol")?.as_str() {
                    "osmp" => Wire::Osmp,
                    "24nonstop" => Wire::Nonstop24,
                    "ibox" => Wire::Ibox,
                    "city24" => Wire::City24,
                    "privat" => Wire::Privat,
                    "easypay" => Wire::Easypay,
                    "kaspi" => Wire::Kaspi,
                    "portmone" => Wire::Portmone,
                    "click" => Wire::Click,
                    "payme" => Wire::Payme,
                    other => {
                        return Err(format!(
                            "--protocol {other}: osmp, ibox, city24, privat, easypay, kaspi, \
                             portmone, click, payme or 24nonstop"
                        ));
                    }
                }
            }
            "--secret" => secret = Some(value("--secret")?),
            "--sign" => {
                hash = match value("--sign")?.as_str() {
                    "md5" => SignHash::Md5,
                    "sha1" => SignHash::Sha1,
                    "sha256" => SignHash::Sha256,
                    other => return Err(format!("--sign {other}: md5, sha1 or sha256")),
                }
            }
            "--sign-amount" => sign_amount = true,
            "--service-id" => service = Some(value("--service-id")?),
            "--private-key" => private_key = Some(PathBuf::from(value("--private-key")?)),
            s if s.starts_with('-') && s.len() > 1 && s.parse::<f64>().is_err() => {
                return Err(format!("unknown option {s}"))
            }
            _ => words.push(arg.clone()),
        }
    }
    let sum = |text: &str| -> Result<Amount, String> {
        Amount::parse(text).map_err(|e| format!("sum '{text}': {e}"))
    };
    let action = match (status, cancel, words.first().map(String::as_str)) {
        (true, true, _) => return Err("--status and --cancel: one at a time".into()),
        (true, false, None) => Action::Status,
        (false, true, None) => Action::Cancel { prv_txn },
        (true, _, Some(_)) | (_, true, Some(_)) => {
            return Err(format!(
                "--status and --cancel take the payment from --txn-id N, not '{}'",
                words.join(" ")
            ))
        }
        (false, false, Some("check")) if (2..=3).contains(&words.len()) => Action::Check {
            account: words[1].clone(),
            sum: words.get(2).map(|s| sum(s)).transpose()?,
        },
        (false, false, Some("pay")) if words.len() == 3 => Action::Pay {
            account: words[1].clone(),
            sum: sum(&words[2])?,
        },
        (false, false, Some("pay")) => {
            return Err("pay needs ACCOUNT and SUM: pay 59071 10.25".into())
        }
        (false, false, Some("check")) => {
            return Err("check needs ACCOUNT (and an optional SUM)".into())
        }
        (false, false, Some(other)) => {
            return Err(format!(
                "'{other}': expected check ACCOUNT [SUM], pay ACCOUNT SUM, --status or --cancel"
            ))
        }
        (false, false, None) => {
            return Err(
                "what to do? check ACCOUNT [SUM], pay ACCOUNT SUM, --status or --cancel".into(),
            )
        }
    };
    if matches!(action, Action::Status | Action::Cancel { .. }) && txn_id.is_none() {
        return Err("--status and --cancel need the payment's --txn-id N".into());
    }
    if paypro.is_empty() {
        let Some(u) = &url else {
            return Err("--url URL (the endpoint), or --paypro FILE --provider N".into());
        };
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(format!("--url {u}: an http:// or https:// URL"));
        }
        if provider.is_some() {
            return Err("--provider needs --paypro FILE".into());
        }
    } else {
        if url.is_some() {
            return Err(
                "--url or --paypro: with --paypro the provider description holds the URLs".into(),
            );
        }
        if provider.is_none() {
            return Err("--paypro needs --provider N (own providers: -1, -2, …)".into());
        }
        if !matches!(action, Action::Check { .. } | Action::Pay { .. }) {
            return Err("a PayPRO terminal only checks and pays".into());
        }
        if post || !params.is_empty() {
            return Err("--post and --param: the provider description says how to send".into());
        }
    }
    if matches!(
        wire,
        Wire::City24 | Wire::Privat | Wire::Easypay | Wire::Portmone
    ) && matches!(action, Action::Status)
    {
        return Err("City24, PrivatBank, EasyPay and Portmone have no status request".into());
    }
    if wire == Wire::Portmone
        && matches!(action, Action::Cancel { .. })
        && !params
            .iter()
            .any(|(k, v)| k == "PAYED_AMOUNT" && v.starts_with('-'))
    {
        return Err(
            "a Portmone cancel is the payment's notice with its sum negative: \
             --param PAYED_AMOUNT=-SUM (the sum paid)"
                .into(),
        );
    }
    if wire == Wire::Easypay {
        if matches!(action, Action::Cancel { prv_txn: None }) {
            return Err("an EasyPay --cancel names the booking: --prv-txn PAYMENT_ID".into());
        }
        if post {
            return Err("EasyPay requests are always POSTed XML: no --post".into());
        }
    } else if private_key.is_some() {
        return Err("--private-key is for --protocol easypay".into());
    }
    if wire == Wire::Click {
        if !paypro.is_empty() {
            return Err("--protocol click or --paypro: one terminal at a time".into());
        }
        if matches!(action, Action::Status | Action::Cancel { .. }) {
            return Err(
                "Click has no status or cancel request: Click cancels by a Complete \
                        with its error, for a payment it could not take"
                    .into(),
            );
        }
        if matches!(action, Action::Check { sum: None, .. }) {
            return Err(
                "a Click check is a Prepare, which names the sum: check ACCOUNT SUM".into(),
            );
        }
        if secret.is_none() || service.is_none() {
            return Err(
                "--protocol click signs every request: --secret S (the system's secret_key) \
                 and --service-id ID (its service_id)"
                    .into(),
            );
        }
    } else if wire == Wire::Payme {
        if !paypro.is_empty() {
            return Err("--protocol payme or --paypro: one terminal at a time".into());
        }
        if matches!(action, Action::Cancel { prv_txn: Some(_) }) {
            return Err(
                "a Payme cancel names the transaction by its Payme id, --txn-id: no --prv-txn"
                    .into(),
            );
        }
        if matches!(action, Action::Check { sum: None, .. }) {
            return Err("a Payme check names the sum: check ACCOUNT SUM".into());
        }
        if secret.is_none() || service.is_some() || user.is_some() {
            return Err(
                "--protocol payme authenticates with the system's key: --secret KEY (sent as \
                 Basic Paycom:KEY), no --service-id or --user"
                    .into(),
            );
        }
    } else if matches!(wire, Wire::Privat) && post {
        return Err("PrivatBank requests are always POSTed XML: no --post".into());
    }
    if wire == Wire::Nonstop24 {
        if !paypro.is_empty() {
            return Err("--protocol 24nonstop or --paypro: one terminal at a time".into());
        }
        if matches!(action, Action::Cancel { .. }) {
            return Err("24NonStop has no cancel".into());
        }
        if secret.is_none() {
            return Err(
                "--protocol 24nonstop signs every request: --secret S (the system's secret)".into(),
            );
        }
    } else if (secret.is_some() && !matches!(wire, Wire::Click | Wire::Payme))
        || sign_amount
        || (service.is_some() && !matches!(wire, Wire::Easypay | Wire::Click))
    {
        return Err(
            "--secret is for --protocol 24nonstop and click, --sign-amount for 24nonstop, \
             --service-id for 24nonstop, easypay and click"
                .into(),
        );
    }
    let easypay_key = match &private_key {
        None => None,
        Some(path) => Some(
            crate::protocol::easypay::load_private_key(path)
                .map_err(|e| format!("--private-key {e}"))?,
        ),
    };
    let easypay_hash = if hash == SignHash::Sha1 || wire != Wire::Easypay {
        SignHash::Sha1
    } else {
        hash
    };
    // OSMP's txn_id is 1-20 digits; 24NonStop's PAY_ID a GUID-like token.
    let txn_id = match txn_id {
        None => None,
        Some(v) => Some(
            match wire {
                Wire::Osmp | Wire::Ibox | Wire::Kaspi | Wire::Click => TxnId::parse(&v),
                Wire::City24 | Wire::Privat | Wire::Easypay | Wire::Portmone | Wire::Payme => {
                    TxnId::parse_token(&v)
                }
                Wire::Nonstop24 => TxnId::parse_token(&v),
            }
            .map_err(|e| format!("--txn-id {v}: {e}"))?,
        ),
    };
    // The terminal signs the layout its options say: with --service-id, the SERVICE_ID slot
    // holding it (2.20 and later); without, none (2.10, sign_service_id = false).
    let sign = secret.map(|secret| SignRule {
        secret,
        hash,
        amount: sign_amount,
        service: match &service {
            Some(id) => ServiceSlot::Fixed(id.clone()),
            None => ServiceSlot::Absent,
        },
    });
    if let (Wire::Nonstop24, Some(rule)) = (wire, &sign) {
        // The endpoint refuses a signed field holding '_' (protocol::sign): say so here,
        // before anything is sent.
        let (act, account) = match &action {
            Action::Check { account, .. } | Action::Pay { account, .. } => ("4", account.as_str()),
            Action::Status | Action::Cancel { .. } => ("7", ""),
        };
        let pay_id = txn_id.as_ref().map_or("1", TxnId::as_str);
        crate::protocol::nonstop24::signature(rule, act, account, service.as_deref(), pay_id, None)
            .map_err(|e| format!("24NonStop cannot sign this request: {e}"))?;
    }
    let auth = match (user, password) {
        (Some(u), p) => Some((u, p.unwrap_or_default())),
        (None, Some(_)) => return Err("--password needs --user".into()),
        (None, None) => None,
    };
    Ok(Args {
        url,
        post,
        auth,
        txn_id,
        txn_date,
        params,
        retry_for,
        client: ClientOptions {
            timeout,
            cacert,
            insecure,
        },
        paypro,
        provider,
        action,
        wire,
        sign,
        service,
        easypay_key,
        easypay_hash,
    })
}

fn seconds(name: &str, text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{name} {text}: expected seconds, e.g. 60"))
}

/// A payment number from the clock, as a terminal numbers its payments: milliseconds since
/// 1970 (13 digits), unique enough for one admin at one keyboard.
fn generated_txn_id() -> TxnId {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(1);
    TxnId::parse(&ms.to_string()).unwrap_or_else(|_| fallback_txn_id())
}

fn fallback_txn_id() -> TxnId {
    // Only reached with a clock before 1970; any fixed number then.
    TxnId::parse("1").expect("1 is a txn_id")
}

/// The form for a command in the terminal's protocol. `extra` names OSMP's fields
/// (`account`, `sum`, `txn_date`, `prv_txn`); 24NonStop sends its own names, signed.
fn osmp_form(args: &Args, command: &str, txn_id: &TxnId, extra: &[(&str, String)]) -> String {
    if args.wire == Wire::Nonstop24 {
        return nonstop24_form(args, command, txn_id, extra);
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("command".into(), command.into()),
        ("txn_id".into(), txn_id.to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    pairs.extend(args.params.iter().cloned());
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// A 24NonStop request: ACT 1 (check), 4 (pay) or 7 (status), SIGN computed as the
/// operator's terminal does with the system's secret.
fn nonstop24_form(args: &Args, command: &str, txn_id: &TxnId, extra: &[(&str, String)]) -> String {
    let act = match command {
        "check" => "1",
        "pay" => "4",
        _ => "7",
    };
    let get = |k: &str| extra.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    let account = if act == "7" {
        ""
    } else {
        get("account").unwrap_or("")
    };
    let amount = (act == "4").then(|| get("sum").unwrap_or(""));
    let mut pairs: Vec<(String, String)> = vec![("ACT".into(), act.into())];
    if !account.is_empty() {
        pairs.push(("PAY_ACCOUNT".into(), account.into()));
    }
    if let Some(service) = &args.service {
        pairs.push(("SERVICE_ID".into(), service.clone()));
    }
    pairs.push(("PAY_ID".into(), txn_id.to_string()));
    if let Some(amount) = amount {
        pairs.push(("PAY_AMOUNT".into(), amount.into()));
    }
    if let Some(rule) = &args.sign {
        let signed_amount = amount.filter(|_| rule.amount);
        // parse_args refused what cannot be signed; were it to get here, the request goes
        // without SIGN and the endpoint says -101.
        if let Ok(sign) = crate::protocol::nonstop24::signature(
            rule,
            act,
            account,
            args.service.as_deref(),
            txn_id.as_str(),
            signed_amount,
        ) {
            pairs.push(("SIGN".into(), sign));
        }
    }
    pairs.extend(args.params.iter().cloned());
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// The request for a command in the terminal's protocol.
fn request_for(
    args: &Args,
    command: &str,
    txn_id: &TxnId,
    extra: &[(&str, String)],
) -> HttpRequest {
    match args.wire {
        Wire::Privat => privat_request(args, command, txn_id, extra),
        Wire::Portmone => portmone_request(args, command, txn_id, extra),
        Wire::Easypay => easypay_request(args, command, txn_id, extra),
        Wire::Payme => payme_request(args, command, txn_id, extra),
        Wire::Click => osmp_request(
            &Args {
                post: true,
                ..args.clone()
            },
            click_form(args, command, txn_id, extra),
        ),
        Wire::City24 => osmp_request(args, city24_form(args, command, txn_id, extra)),
        Wire::Osmp | Wire::Ibox | Wire::Kaspi | Wire::Nonstop24 => {
            osmp_request(args, osmp_form(args, command, txn_id, extra))
        }
    }
}

/// Click: a Prepare (`action=0`; "check" and "book") or the Complete of the booking
/// `prv_txn` (`action=1`), signed with the system's secret_key as Click signs them.
fn click_form(args: &Args, command: &str, txn_id: &TxnId, extra: &[(&str, String)]) -> String {
    let get = |k: &str| {
        extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let complete = command == "confirm";
    let action = if complete { "1" } else { "0" };
    let sign_time = Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let (account, amount, prepare_id) = (get("account"), get("sum"), get("prv_txn"));
    let mut pairs: Vec<(String, String)> = vec![
        ("click_trans_id".into(), txn_id.to_string()),
        (
            "service_id".into(),
            args.service.clone().unwrap_or_default(),
        ),
        ("click_paydoc_id".into(), txn_id.to_string()),
        ("merchant_trans_id".into(), account.into()),
        ("amount".into(), amount.into()),
        ("action".into(), action.into()),
        ("error".into(), "0".into()),
        ("error_note".into(), "Success".into()),
        ("sign_time".into(), sign_time.clone()),
    ];
    if complete {
        pairs.push(("merchant_prepare_id".into(), prepare_id.into()));
    }
    if let Some(rule) = &args.sign {
        // What cannot be signed goes without sign_string, and the endpoint says -1.
        if let Ok(sign) = crate::protocol::click::signature(
            rule,
            txn_id.as_str(),
            account,
            complete.then_some(prepare_id),
            amount,
            action,
            &sign_time,
        ) {
            pairs.push(("sign_string".into(), sign));
        }
    }
    pairs.extend(args.params.iter().cloned());
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// Payme: a JSON-RPC POST — CheckPerformTransaction ("check"), CreateTransaction
/// ("book", the id is --txn-id), PerformTransaction ("confirm") — with the key as Basic
/// auth, login Paycom.
fn payme_request(
    args: &Args,
    command: &str,
    txn_id: &TxnId,
    extra: &[(&str, String)],
) -> HttpRequest {
    let get = |k: &str| {
        extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    // The sum in tiyin: the terminal's sums parsed as amounts.
    let tiyin = Amount::parse(get("sum")).map(Amount::kopecks).unwrap_or(0);
    let account = serde_json::json!({ "account": get("account") });
    let ms = chrono::Local::now().timestamp_millis();
    let (method, params) = match command {
        "check" => (
            "CheckPerformTransaction",
            serde_json::json!({ "amount": tiyin, "account": account }),
        ),
        "book" => (
            "CreateTransaction",
            serde_json::json!({ "id": txn_id.as_str(), "time": ms, "amount": tiyin, "account": account }),
        ),
        "status" => (
            "CheckTransaction",
            serde_json::json!({ "id": txn_id.as_str() }),
        ),
        // Reason 5, "refund": what Payme sends when the money goes back to the payer.
        "cancel" => (
            "CancelTransaction",
            serde_json::json!({ "id": txn_id.as_str(), "reason": 5 }),
        ),
        _ => (
            "PerformTransaction",
            serde_json::json!({ "id": txn_id.as_str() }),
        ),
    };
    let body =
        serde_json::json!({ "jsonrpc": "2.0", "id": ms, "method": method, "params": params });
    HttpRequest {
        method: Method::Post,
        url: args.url.clone().unwrap_or_default(),
        body: Some(body.to_string()),
        content_type: Some("application/json".into()),
        basic_auth: args
            .sign
            .as_ref()
            .map(|rule| ("Paycom".to_string(), rule.secret.clone())),
    }
}

/// City24: `QueryType`, `TransactionId`, `Account`, `Amount`, `TransactionDate`; a cancel
/// names the pay by `RevertId` and is a transaction of its own.
fn city24_form(args: &Args, command: &str, txn_id: &TxnId, extra: &[(&str, String)]) -> String {
    let get = |k: &str| extra.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let mut pairs: Vec<(String, String)> = vec![("QueryType".into(), command.into())];
    if command == "cancel" {
        pairs.push(("TransactionId".into(), generated_txn_id().to_string()));
        pairs.push(("RevertId".into(), txn_id.to_string()));
        pairs.push((
            "RevertDate".into(),
            Local::now().format("%Y%m%d%H%M%S").to_string(),
        ));
    } else {
        pairs.push(("TransactionId".into(), txn_id.to_string()));
    }
    for (ours, theirs) in [
        ("account", "Account"),
        ("sum", "Amount"),
        ("txn_date", "TransactionDate"),
    ] {
        if let Some(v) = get(ours) {
            pairs.push((theirs.into(), v));
        }
    }
    pairs.extend(args.params.iter().cloned());
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// EasyPay: a POSTed `<Request>` with one operation — Check, Payment ("book": the order id
/// is --txn-id), Confirm and Cancel (of PaymentId, given as `prv_txn`) — signed with
/// --private-key when given (EasySoft's role, for trying with a test key pair).
fn easypay_request(
    args: &Args,
    command: &str,
    txn_id: &TxnId,
    extra: &[(&str, String)],
) -> HttpRequest {
    let get = |k: &str| {
        extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| quick_xml::escape::escape(v.as_str()).into_owned())
            .unwrap_or_default()
    };
    let service = args.service.as_deref().unwrap_or("1");
    let service = quick_xml::escape::escape(service);
    let operation = match command {
        "check" => format!(
            "<Check><ServiceId>{service}</ServiceId><Account>{}</Account></Check>",
            get("account")
        ),
        "book" => format!(
            "<Payment><ServiceId>{service}</ServiceId><OrderId>{txn_id}</OrderId><Account>{}</Account>\
             <Amount>{}</Amount></Payment>",
            get("account"),
            get("sum")
        ),
        "confirm" => format!(
            "<Confirm><ServiceId>{service}</ServiceId><PaymentId>{}</PaymentId></Confirm>",
            get("prv_txn")
        ),
        _ => format!(
            "<Cancel><ServiceId>{service}</ServiceId><PaymentId>{}</PaymentId></Cancel>",
            get("prv_txn")
        ),
    };
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Request><DateTime>{}</DateTime><Sign></Sign>{operation}</Request>",
        Local::now().format("%Y-%m-%dT%H:%M:%S")
    );
    if let Some(key) = &args.easypay_key {
        let hex = crate::protocol::easypay::sign(key, args.easypay_hash, body.as_bytes());
        body = body.replacen("<Sign></Sign>", &format!("<Sign>{hex}</Sign>"), 1);
    }
    HttpRequest {
        method: Method::Post,
        url: args.url.clone().unwrap_or_default(),
        body: Some(body),
        content_type: Some("text/xml; charset=utf-8".into()),
        basic_auth: args.auth.clone(),
    }
}

/// PrivatBank's Debt interface: a POSTed `<Transfer>`; a check is a Search.
fn privat_request(
    args: &Args,
    command: &str,
    txn_id: &TxnId,
    extra: &[(&str, String)],
) -> HttpRequest {
    let get = |k: &str| {
        extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| quick_xml::escape::escape(v.as_str()).into_owned())
            .unwrap_or_default()
    };
    let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let (action, data) = match command {
        "check" => (
            "Search",
            format!(
                "<Data {xsi} xsi:type=\"Payer\"><Unit name=\"bill_identifier\" value=\"{}\"/></Data>",
                get("account")
            ),
        ),
        "pay" => (
            "Pay",
            format!(
                "<Data {xsi} xsi:type=\"Payment\" id=\"{txn_id}\" number=\"{txn_id}\"><PayerInfo billIdentifier=\"{}\"/>\
                 <TotalSum>{}</TotalSum><CreateTime>{}</CreateTime></Data>",
                get("account"),
                get("sum"),
                Local::now().to_rfc3339()
            ),
        ),
        _ => ("Cancel", format!("<Data {xsi} xsi:type=\"Payment\" id=\"{txn_id}\"/>")),
    };
    HttpRequest {
        method: Method::Post,
        url: args.url.clone().unwrap_or_default(),
        body: Some(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Transfer xmlns=\"http://debt.privatbank.ua/Transfer\" \
             interface=\"Debt\" action=\"{action}\">{data}</Transfer>"
        )),
        content_type: Some("text/xml; charset=utf-8".into()),
        basic_auth: args.auth.clone(),
    }
}

/// Portmone: the form field `data` holding a check (`<REQUESTS>`) or a PAYED notice
/// (`<BILLS><BILL>`, `BILL_ID` = the txn id); a cancel is the notice with the sum negative,
/// which `--param PAYED_AMOUNT=-SUM` gives.
fn portmone_request(
    args: &Args,
    command: &str,
    txn_id: &TxnId,
    extra: &[(&str, String)],
) -> HttpRequest {
    let escaped = |v: &str| quick_xml::escape::escape(v).into_owned();
    let get = |k: &str| {
        extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| escaped(v))
            .unwrap_or_default()
    };
    let param = |k: &str| {
        args.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| escaped(v))
    };
    let xml = if command == "check" {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUESTS><PAYEE>{}</PAYEE><PAYER>\
             <CONTRACT_NUMBER>{}</CONTRACT_NUMBER></PAYER></REQUESTS>",
            param("PAYEE").unwrap_or_default(),
            get("account")
        )
    } else {
        let amount = match command {
            "cancel" => param("PAYED_AMOUNT").unwrap_or_default(),
            _ => get("sum"),
        };
        let now = Local::now();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BILLS><BILL><BILL_ID>{txn_id}</BILL_ID>\
             <PAY_DATE>{}</PAY_DATE><PAY_TIME>{}</PAY_TIME><PAYED_AMOUNT>{amount}</PAYED_AMOUNT>\
             <PAYED_COMMISSION>0.00</PAYED_COMMISSION><PAYER><CONTRACT_NUMBER>{}\
             </CONTRACT_NUMBER></PAYER><STATUS>PAYED</STATUS></BILL></BILLS>",
            now.format("%Y-%m-%d"),
            now.format("%H:%M:%S"),
            param("CONTRACT_NUMBER").unwrap_or_else(|| get("account"))
        )
    };
    HttpRequest {
        method: Method::Post,
        url: args.url.clone().unwrap_or_default(),
        body: Some(serde_urlencoded::to_string([("data", xml)]).unwrap_or_default()),
        content_type: Some("application/x-www-form-urlencoded".into()),
        basic_auth: args.auth.clone(),
    }
}

fn osmp_request(args: &Args, form: String) -> HttpRequest {
    let url = args.url.clone().unwrap_or_default();
    if args.post {
        HttpRequest {
            method: Method::Post,
            url,
            body: Some(form),
            content_type: Some("application/x-www-form-urlencoded".into()),
            basic_auth: args.auth.clone(),
        }
    } else {
        let join = if url.contains('?') { '&' } else { '?' };
        HttpRequest {
            method: Method::Get,
            url: format!("{url}{join}{form}"),
            body: None,
            content_type: None,
            basic_auth: args.auth.clone(),
        }
    }
}

/// How an exchange (with its retries) ended.
#[derive(Debug)]
enum Ending {
    /// A final OSMP answer: result 0 or a refusal.
    Answer(Answer),
    /// The web server answered with a final HTTP status and no OSMP answer: the endpoint's
    /// program did not decide anything.
    Http(Reply),
    /// The request cannot be sent as given.
    Unusable(String),
    /// Only temporary answers, or none, until the time ran out.
    Doubt { attempts: u32, last: String },
}

/// The OSMP terminal: check, pay, status, cancel.
fn osmp_terminal(client: &Client, args: &Args) -> Verdict {
    let txn_id = args.txn_id.clone().unwrap_or_else(generated_txn_id);
    match &args.action {
        Action::Check { account, sum } => {
            let mut extra = vec![("account", account.clone())];
            match (sum, args.wire) {
                (Some(sum), _) => extra.push(("sum", sum.to_string())),
                // iBox terminals always send one; ABillS's iBox module refuses a check without.
                (None, Wire::Ibox) => extra.push(("sum", "0.00".into())),
                (None, _) => {}
            }
            let request = request_for(args, "check", &txn_id, &extra);
            match exchange(client, &request, args.retry_for, args.wire) {
                Ending::Answer(a) if a.ok() => {
                    say(&format!("verdict: OK: account {account} can be paid"));
                    show_fields(&a);
                    Verdict::Confirmed
                }
                ending => final_verdict(ending, "the check", None),
            }
        }
        Action::Pay { account, sum } => {
            let txn_date = args
                .txn_date
                .clone()
                .unwrap_or_else(|| Local::now().format("%Y%m%d%H%M%S").to_string());
            let extra = [
                ("account", account.clone()),
                ("sum", sum.to_string()),
                ("txn_date", txn_date),
            ];
            let repeat = repeat_command(args, &txn_id, &format!("pay {account} {sum}"));
            // EasyPay and Click: the Payment (Prepare) books the order (nothing credited),
            // the Confirm (Complete) of its PaymentId (merchant_prepare_id) pays it.
            let request = if matches!(args.wire, Wire::Easypay | Wire::Click | Wire::Payme) {
                let book = request_for(args, "book", &txn_id, &extra);
                let payment_id = match exchange(client, &book, args.retry_for, args.wire) {
                    Ending::Answer(a) if a.ok() => match a.prv_txn {
                        Some(p) => p,
                        None => {
                            say("verdict: the booking's answer names no PaymentId");
                            return Verdict::InDoubt;
                        }
                    },
                    ending => return final_verdict(ending, "the booking", None),
                };
                say(&format!(
                    "   booked as PaymentId {payment_id}: confirming it"
                ));
                let mut confirm = extra.to_vec();
                confirm.push(("prv_txn", payment_id));
                request_for(args, "confirm", &txn_id, &confirm)
            } else {
                request_for(args, "pay", &txn_id, &extra)
            };
            match exchange(client, &request, args.retry_for, args.wire) {
                Ending::Answer(a) if a.ok() => {
                    say(&format!(
                        "verdict: CONFIRMED: {} credited to account {account}, txn_id {txn_id}{}",
                        a.sum.as_deref().unwrap_or(&sum.to_string()),
                        a.prv_txn
                            .as_deref()
                            .map(|p| format!(", prv_txn {p}"))
                            .unwrap_or_default()
                    ));
                    Verdict::Confirmed
                }
                ending => final_verdict(ending, "the payment", Some((&txn_id, &repeat))),
            }
        }
        Action::Status => {
            let request = request_for(args, "status", &txn_id, &[]);
            match exchange(client, &request, args.retry_for, args.wire) {
                // Payme's CheckTransaction answers a state, not a result code.
                Ending::Answer(a) if args.wire == Wire::Payme && a.ok() => {
                    payme_status(&a, &txn_id)
                }
                Ending::Answer(a) if a.fields.iter().any(|(k, v)| k == "status" && v == "130") => {
                    say(&format!(
                        "verdict: CANCELLED: payment {txn_id} was paid and cancelled since"
                    ));
                    Verdict::Refused
                }
                Ending::Answer(a) if a.ok() => {
                    say(&format!(
                        "verdict: CONFIRMED: payment {txn_id} is committed{}{}",
                        a.sum
                            .as_deref()
                            .map(|s| format!(", sum {s}"))
                            .unwrap_or_default(),
                        a.prv_txn
                            .as_deref()
                            .map(|p| format!(", prv_txn {p}"))
                            .unwrap_or_default()
                    ));
                    Verdict::Confirmed
                }
                ending => final_verdict(ending, "the status query", None),
            }
        }
        Action::Cancel { prv_txn } => {
            let prv_txn = match prv_txn {
                Some(p) => p.clone(),
                // These name the payment to cancel by its own id: no status first.
                None if matches!(
                    args.wire,
                    Wire::City24 | Wire::Privat | Wire::Portmone | Wire::Payme
                ) =>
                {
                    String::new()
                }
                None => {
                    say(&format!(
                        "cancel needs the endpoint's prv_txn of payment {txn_id}: asking its status first"
                    ));
                    let request = request_for(args, "status", &txn_id, &[]);
                    match exchange(client, &request, args.retry_for, args.wire) {
                        Ending::Answer(a) if a.ok() => match a.prv_txn {
                            Some(p) => p,
                            None => {
                                say("verdict: the status answer names no prv_txn; give it with --prv-txn P");
                                return Verdict::InDoubt;
                            }
                        },
                        ending => return final_verdict(ending, "the status query", None),
                    }
                }
            };
            let request = request_for(args, "cancel", &txn_id, &[("prv_txn", prv_txn.clone())]);
            let again = if prv_txn.is_empty() {
                "--cancel".to_string()
            } else {
                format!("--cancel --prv-txn {prv_txn}")
            };
            let repeat = repeat_command(args, &txn_id, &again);
            match exchange(client, &request, args.retry_for, args.wire) {
                Ending::Answer(a) if a.ok() => {
                    let number = if prv_txn.is_empty() {
                        a.prv_txn.clone().unwrap_or_default()
                    } else {
                        prv_txn
                    };
                    say(&format!(
                        "verdict: CONFIRMED: payment {txn_id} (prv_txn {number}) is cancelled"
                    ));
                    Verdict::Confirmed
                }
                ending => final_verdict(ending, "the cancel", Some((&txn_id, &repeat))),
            }
        }
    }
}

/// What Payme's CheckTransaction says of a transaction: its `state` (2 performed, 1 created
/// and waiting for its PerformTransaction, -1 cancelled before it was performed, -2 after).
fn payme_status(a: &Answer, txn_id: &TxnId) -> Verdict {
    let state = a
        .fields
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str());
    let prv = a
        .prv_txn
        .as_deref()
        .map(|p| format!(", transaction {p}"))
        .unwrap_or_default();
    match state {
        Some("2") => {
            say(&format!(
                "verdict: CONFIRMED: payment {txn_id} is performed{prv}"
            ));
            Verdict::Confirmed
        }
        Some("-2") => {
            say(&format!(
                "verdict: CANCELLED: payment {txn_id} was performed and cancelled since{prv}"
            ));
            Verdict::Refused
        }
        Some("-1") => {
            say(&format!(
                "verdict: CANCELLED: payment {txn_id} was cancelled before it was performed{prv}"
            ));
            Verdict::Refused
        }
        Some("1") => {
            say(&format!(
                "verdict: NOT PAID: payment {txn_id} is created, waiting for its \
                 PerformTransaction{prv}"
            ));
            Verdict::Refused
        }
        other => {
            say(&format!(
                "verdict: the answer names no state we know ({}); nothing is known of the money",
                other.unwrap_or("none")
            ));
            Verdict::InDoubt
        }
    }
}

/// The command that asks again for the same payment.
fn repeat_command(args: &Args, txn_id: &TxnId, what: &str) -> String {
    let mut cmd = format!(
        "paysys terminal --url '{}' --txn-id {txn_id}",
        args.url.as_deref().unwrap_or("URL")
    );
    match args.wire {
        Wire::Osmp | Wire::Nonstop24 => {}
        Wire::Ibox => cmd.push_str(" --protocol ibox"),
        Wire::Kaspi => cmd.push_str(" --protocol kaspi"),
        Wire::Portmone => cmd.push_str(" --protocol portmone"),
        Wire::City24 => cmd.push_str(" --protocol city24"),
        Wire::Privat => cmd.push_str(" --protocol privat"),
        Wire::Easypay => cmd.push_str(" --protocol easypay --private-key KEY"),
        // Never the secret itself on the screen.
        Wire::Payme => cmd.push_str(" --protocol payme --secret \"$KEY\""),
        Wire::Click => cmd.push_str(&format!(
            " --protocol click --secret \"$SECRET\" --service-id '{}'",
            args.service.as_deref().unwrap_or("")
        )),
    }
    if let (Wire::Nonstop24, Some(rule)) = (args.wire, &args.sign) {
        // Never the secret itself on the screen.
        cmd.push_str(" --protocol 24nonstop --secret \"$SECRET\"");
        if rule.hash == SignHash::Sha1 {
            cmd.push_str(" --sign sha1");
        }
        if rule.amount {
            cmd.push_str(" --sign-amount");
        }
        if let Some(service) = &args.service {
            cmd.push_str(&format!(" --service-id '{service}'"));
        }
    }
    if let (Action::Pay { .. }, Some(date)) = (&args.action, &args.txn_date) {
        cmd.push_str(&format!(" --txn-date {date}"));
    }
    format!("{cmd} {what}")
}

/// The verdict of an exchange that did not end in result 0. `money`: the payment's
/// txn_id and the command repeating it, when money may have moved.
fn final_verdict(ending: Ending, what: &str, money: Option<(&TxnId, &str)>) -> Verdict {
    match ending {
        Ending::Answer(a) => {
            let meaning = a.meaning;
            say(&format!(
                "verdict: REFUSED: {what} got result {} ({meaning}; comment {}): final, asking again gets the same answer",
                a.result, a.comment
            ));
            if money.is_some() {
                say("         this request moved no money (INSTALL, \"Answers\", explains each comment)");
            }
            Verdict::Refused
        }
        Ending::Http(reply) => {
            let hint = match reply.status {
                401 => "the web server wants a login: --user U --password P",
                403 => "the web server forbids this address or path",
                404 => "nothing at this URL: is the path right?",
                405 => "the web server refuses this method: try without --post",
                301 | 302 | 303 | 307 | 308 => {
                    "a redirect: terminals do not follow them; use the final URL"
                }
                _ => "the web server's error log says why",
            };
            say(&format!(
                "verdict: REFUSED by the web server: HTTP {} {} without an OSMP answer ({hint}); the payment program did not decide anything",
                reply.status, reply.reason
            ));
            Verdict::Refused
        }
        Ending::Unusable(why) => {
            say(&format!("verdict: not sent: {why}"));
            Verdict::Usage
        }
        Ending::Doubt { attempts, last } => {
            say(&format!(
                "verdict: IN DOUBT: no final answer to {what} in {attempts} attempt(s); the last: {last}"
            ));
            if let Some((txn_id, repeat)) = money {
                say(&format!(
                    "         it may or may not have been committed. Ask again with the same txn_id (it is \
                     credited at most once):\n           {repeat}\n         or look it up on the server: paysys txn {txn_id}"
                ));
            }
            Verdict::InDoubt
        }
    }
}

/// Sends `request` until a final answer, asking again after temporary ones with pauses of
/// 1, 2, 4, … 30 s while `retry_for` lasts. Prints every attempt.
fn exchange(client: &Client, request: &HttpRequest, retry_for: Duration, wire: Wire) -> Ending {
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        show_request(request, attempts);
        let last = match client.send(request) {
            Err(SendError::Unusable(why)) => return Ending::Unusable(why),
            Err(SendError::NoAnswer(why)) => {
                say(&format!("<- no answer: {why}"));
                format!("no answer: {why}")
            }
            Ok(reply) => {
                show_reply(&reply);
                match wire.read(&reply.body) {
                    Some(a) => {
                        say(&format!(
                            "   {} {}: {}{}",
                            wire.label(),
                            a.result,
                            a.meaning,
                            if a.comment.is_empty() {
                                String::new()
                            } else {
                                format!("; comment {}", a.comment)
                            }
                        ));
                        match a.class {
                            Class::Ok | Class::Refused => return Ending::Answer(a),
                            Class::Temporary => format!("result {} ({})", a.result, a.comment),
                        }
                    }
                    None if (300..500).contains(&reply.status) => return Ending::Http(reply),
                    None => {
                        say("   not an answer of the protocol: a terminal asks again");
                        format!("HTTP {} without an OSMP answer", reply.status)
                    }
                }
            }
        };
        let elapsed = started.elapsed();
        if elapsed + pause > retry_for {
            return Ending::Doubt { attempts, last };
        }
        say(&format!(
            "   temporary: asking again in {} s ({} s left of --retry-for)",
            pause.as_secs_f64(),
            (retry_for - elapsed).as_secs()
        ));
        sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

fn say(line: &str) {
    println!("{line}");
}

fn show_request(request: &HttpRequest, attempt: u32) {
    let method = match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    let nth = if attempt > 1 {
        format!(" (attempt {attempt})")
    } else {
        String::new()
    };
    say(&format!("-> {method} {}{nth}", request.url));
    if let Some((user, _)) = &request.basic_auth {
        say(&format!("   Authorization: Basic {user}:***"));
    }
    if let Some(body) = &request.body {
        say(&format!(
            "   Content-Type: {}",
            request.content_type.as_deref().unwrap_or("")
        ));
        say(&format!("   {body}"));
    }
}

fn show_reply(reply: &Reply) {
    say(&format!(
        "<- HTTP {} {} ({} ms){}",
        reply.status,
        reply.reason,
        reply.elapsed.as_millis(),
        reply
            .content_type
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default()
    ));
    for line in reply.body.lines() {
        say(&format!("   {line}"));
    }
}

fn show_fields(a: &Answer) {
    for (name, value) in &a.fields {
        say(&format!("         {name}: {value}"));
    }
}

/// The PayPRO terminal: the provider's pre-check, its screen, then its payment packet.
fn paypro_terminal(client: &Client, args: &Args) -> Verdict {
    let providers = match load_providers(&args.paypro) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("paysys terminal: {e}");
            return Verdict::Usage;
        }
    };
    let wanted = args.provider.unwrap_or(-1);
    let number = if providers.get(wanted).is_some() {
        wanted
    } else if wanted > 0 && providers.get(-wanted).is_some() {
        -wanted
    } else {
        let known: Vec<String> = providers.numbers().iter().map(i64::to_string).collect();
        eprintln!(
            "paysys terminal: no provider {wanted} in {}; the files have: {}",
            files(&args.paypro),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return Verdict::Usage;
    };
    let provider = match providers.get(number) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("paysys terminal: {e}");
            return Verdict::Usage;
        }
        None => return Verdict::Usage,
    };
    let (account, sum) = match &args.action {
        Action::Check { account, sum } => (account.clone(), *sum),
        Action::Pay { account, sum } => (account.clone(), Some(*sum)),
        _ => return Verdict::Usage,
    };
    let txn_id = args.txn_id.clone().unwrap_or_else(generated_txn_id);
    let date = match &args.txn_date {
        Some(d) => NaiveDateTime::parse_from_str(d, "%Y%m%d%H%M%S").ok(),
        None => Some(Local::now().naive_local()),
    };
    let Some(date) = date else {
        eprintln!("paysys terminal: --txn-date is not a real date and time");
        return Verdict::Usage;
    };
    let sum = sum.unwrap_or(provider.check_sum_credit);
    let payment = paypro::Payment {
        account: account.clone(),
        sum,
        paid: sum,
        txn_id: txn_id.clone(),
        date,
        client_phone: String::new(),
    };
    say(&format!(
        "PayPRO provider {number} \"{}\"{}: account {account}, payment {txn_id}",
        provider.short_name,
        provider
            .comment
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default()
    ));

    // "Приступить к оплате": the pre-check. The payer stands at the screen: one attempt.
    let check = match paypro::check_request(&provider, &payment) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paysys terminal: provider {number}: {e}");
            return Verdict::Usage;
        }
    };
    let check_request = HttpRequest {
        basic_auth: check.basic_auth.clone().or(args.auth.clone()),
        ..check
    };
    show_request(&check_request, 1);
    let answer = match client.send(&check_request) {
        Err(e) => {
            say(&format!("<- no answer: {e}"));
            say("screen: the pre-check failed; the terminal does not take the payment");
            return match e {
                SendError::Unusable(_) => Verdict::Usage,
                SendError::NoAnswer(_) => Verdict::InDoubt,
            };
        }
        Ok(reply) => {
            show_reply(&reply);
            reply
        }
    };
    say(&format!("screen: {}, {account}", provider.short_name));
    for (var, value) in paypro::server_variables(&provider, &answer.body) {
        say(&format!(
            "        {}: {}",
            var.name,
            value.map(str::trim).unwrap_or("(not in the answer)")
        ));
    }
    let osmp = answer::parse(&answer.body);
    match &osmp {
        Some(a) => {
            let (meaning, class) = (a.meaning, a.class);
            say(&format!(
                "   OSMP result {}: {meaning}; comment {}",
                a.result, a.comment
            ));
            if class != Class::Ok {
                say(&format!(
                    "verdict: REFUSED at the pre-check (result {}): paysys terminal does not pay an account the endpoint refused",
                    a.result
                ));
                return if class == Class::Temporary {
                    Verdict::InDoubt
                } else {
                    Verdict::Refused
                };
            }
        }
        None if answer.status >= 300 || answer.body.trim().is_empty() => {
            say(&format!(
                "verdict: the pre-check failed: HTTP {} {}",
                answer.status, answer.reason
            ));
            return Verdict::Refused;
        }
        None => say("   not an OSMP answer: the terminal shows it and goes on"),
    }
    let Action::Pay { .. } = args.action else {
        say(&format!("verdict: OK: account {account} can be paid"));
        return Verdict::Confirmed;
    };

    // "Оплатить": the payment packet, sent until any non-empty answer.
    let pay = match paypro::pay_request(&provider, &payment) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paysys terminal: provider {number}: {e}");
            return Verdict::Usage;
        }
    };
    let pay = HttpRequest {
        basic_auth: pay.basic_auth.clone().or(args.auth.clone()),
        ..pay
    };
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    let mut attempts = 0;
    let reply = loop {
        attempts += 1;
        show_request(&pay, attempts);
        let why = match client.send(&pay) {
            Err(SendError::Unusable(why)) => {
                say(&format!("verdict: not sent: {why}"));
                return Verdict::Usage;
            }
            Err(SendError::NoAnswer(why)) => why,
            Ok(reply) if !reply.body.trim().is_empty() => {
                show_reply(&reply);
                break reply;
            }
            Ok(reply) => {
                show_reply(&reply);
                format!("HTTP {} with an empty body", reply.status)
            }
        };
        say(&format!("<- no answer: {why}"));
        let elapsed = started.elapsed();
        if elapsed + pause > args.retry_for {
            say(&format!(
                "verdict: IN DOUBT: no answer in {attempts} attempt(s); the terminal keeps sending payment {txn_id} until one comes"
            ));
            return Verdict::InDoubt;
        }
        say(&format!(
            "   PayPRO sends it again in {} s",
            pause.as_secs_f64()
        ));
        sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(30));
    };
    say(&format!(
        "screen: payment {txn_id} of {sum} to {account} done (PayPRO counts any non-empty answer as paid)"
    ));
    let url = provider.pay_url.as_deref().unwrap_or("URL");
    let base = url.split('?').next().unwrap_or(url);
    match answer::parse(&reply.body) {
        Some(a) if a.ok() => {
            say(&format!(
                "verdict: CONFIRMED: {sum} credited to account {account}, txn_id {txn_id}{}",
                a.prv_txn
                    .as_deref()
                    .map(|p| format!(", prv_txn {p}"))
                    .unwrap_or_default()
            ));
            Verdict::Confirmed
        }
        Some(a) => {
            let (meaning, class) = (a.meaning, a.class);
            if class == Class::Temporary {
                say(&format!(
                    "verdict: IN DOUBT: the endpoint answered result {} ({meaning}; comment {}), but PayPRO \
                     will not send this payment again. Credit it by sending it again yourself:\n           \
                     paysys terminal --url '{base}' --txn-id {txn_id} --txn-date {} pay {account} {sum}",
                    a.result,
                    a.comment,
                    date.format("%Y%m%d%H%M%S")
                ));
                Verdict::InDoubt
            } else {
                say(&format!(
                    "verdict: REFUSED: the endpoint refused the payment (result {}: {meaning}; comment {}), \
                     though the terminal counts it as paid: the payer's money needs returning. \
                     paysys report lists such refused pays; paysys txn {txn_id} shows this one",
                    a.result, a.comment
                ));
                Verdict::Refused
            }
        }
        None => {
            say("verdict: IN DOUBT: the answer is not OSMP, so paysys cannot tell whether it was credited");
            Verdict::InDoubt
        }
    }
}

/// Provider files layered in the order given; a directory is a terminal's whole set.
fn load_providers(paths: &[PathBuf]) -> Result<Providers, String> {
    let mut providers = Providers::new();
    for path in paths {
        if path.is_dir() {
            if !providers.numbers().is_empty() {
                return Err(format!(
                    "--paypro {}: a terminal's directory comes first, before single files",
                    path.display()
                ));
            }
            providers = Providers::load_dir(path).map_err(|e| e.to_string())?;
            if providers.numbers().is_empty() {
                return Err(format!(
                    "{}: no providers.ini, providers_user.ini or MyProviders.ini with a provider in it",
                    path.display()
                ));
            }
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let layer = match name.as_str() {
            "providers.ini" => Layer::Standard,
            "providers_user.ini" => Layer::User,
            _ => Layer::Own,
        };
        providers
            .read_file(path, layer)
            .map_err(|e| e.to_string())?;
    }
    Ok(providers)
}

fn files(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Result<Args, String> {
        parse_args(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn commands_parse() {
        let a = args(&["--url", "http://h/cgi-bin/osmp.cgi", "pay", "59071", "10.5"]).unwrap();
        assert_eq!(
            a.action,
            Action::Pay {
                account: "59071".into(),
                sum: Amount::parse("10.50").unwrap()
            }
        );
        let a = args(&["check", "59071", "--url", "https://h/x", "--post"]).unwrap();
        assert!(a.post);
        assert_eq!(
            a.action,
            Action::Check {
                account: "59071".into(),
                sum: None
            }
        );
        let a = args(&["--url", "http://h/", "--txn-id", "666", "--cancel"]).unwrap();
        assert_eq!(a.action, Action::Cancel { prv_txn: None });
        let a = args(&[
            "--paypro",
            "MyProviders.ini",
            "--provider",
            "-1",
            "pay",
            "1",
            "2",
        ])
        .unwrap();
        assert_eq!(a.provider, Some(-1));
    }

    #[test]
    fn mistakes_are_explained() {
        for (words, says) in [
            (&["pay", "1", "2"][..], "--url"),
            (&["--url", "ftp://h", "check", "1"], "http://"),
            (&["--url", "http://h", "pay", "1"], "ACCOUNT and SUM"),
            (&["--url", "http://h", "pay", "1", "1,5"], "sum '1,5'"),
            (&["--url", "http://h", "--status"], "--txn-id"),
            (
                &["--url", "http://h", "--txn-id", "x1", "--status"],
                "--txn-id x1",
            ),
            (
                &["--url", "http://h", "--txn-date", "2026", "pay", "1", "1"],
                "14 digits",
            ),
            (
                &["--url", "http://h", "--bogus", "check", "1"],
                "unknown option --bogus",
            ),
            (
                &["--url", "http://h", "--password", "p", "check", "1"],
                "--user",
            ),
            (&["--paypro", "f.ini", "check", "1"], "--provider"),
            (
                &[
                    "--paypro",
                    "f.ini",
                    "--provider",
                    "1",
                    "--url",
                    "http://h",
                    "check",
                    "1",
                ],
                "--url or --paypro",
            ),
            (
                &["--url", "http://h", "--retry-for", "-1", "check", "1"],
                "--retry-for",
            ),
            (&["--url", "http://h"], "what to do"),
            // 24NonStop signs fields joined by '_': one holding '_' is not signed at all.
            (
                &[
                    "--url",
                    "http://h",
                    "--protocol",
                    "24nonstop",
                    "--secret",
                    "k",
                    "--service-id",
                    "Internet",
                    "pay",
                    "ivan_x",
                    "1",
                ],
                "24NonStop cannot sign this request: PAY_ACCOUNT 'ivan_x' holds '_'",
            ),
            (
                &[
                    "--url",
                    "http://h",
                    "--protocol",
                    "24nonstop",
                    "--secret",
                    "k",
                    "--service-id",
                    "Inter_net",
                    "check",
                    "1",
                ],
                "SERVICE_ID 'Inter_net' holds '_'",
            ),
        ] {
            let e = args(words).unwrap_err();
            assert!(e.contains(says), "{words:?}: {e}");
        }
    }

    #[test]
    fn forms_are_what_terminals_send() {
        let a = args(&[
            "--url",
            "http://h/osmp.cgi",
            "--param",
            "prv_id=7",
            "check",
            "59071",
        ])
        .unwrap();
        let id = TxnId::parse("666").unwrap();
        let r = osmp_request(
            &a,
            osmp_form(&a, "check", &id, &[("account", "59 071".into())]),
        );
        assert_eq!(
            r.url,
            "http://h/osmp.cgi?command=check&txn_id=666&account=59+071&prv_id=7"
        );
        let a = args(&["--url", "http://h/p.cgi?x=1", "--post", "check", "1"]).unwrap();
        let r = osmp_request(&a, osmp_form(&a, "status", &id, &[]));
        assert_eq!(
            (r.url.as_str(), r.body.as_deref()),
            ("http://h/p.cgi?x=1", Some("command=status&txn_id=666"))
        );
        assert!(generated_txn_id().as_str().len() >= 13);
    }

    /// What `--protocol 24nonstop` signs is what the endpoint checks: with --service-id, a
    /// system that signs the sent SERVICE_ID (the default) or that service_id; without, a
    /// 2.10 system (sign_service_id = false); never the other layout.
    #[test]
    fn nonstop24_requests_pass_the_endpoints_check() {
        use crate::domain::{AccountKey, AccountRule};
        use crate::protocol::{nonstop24::Nonstop24, Protocol};
        let endpoint = |service: ServiceSlot| SignRule {
            secret: "k".into(),
            hash: SignHash::Md5,
            amount: true,
            service,
        };
        let accounts = AccountRule::new(AccountKey::Login);
        let id = TxnId::parse_token("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap();
        let base = [
            "--url",
            "http://h/",
            "--protocol",
            "24nonstop",
            "--secret",
            "k",
        ];
        let with = [&base[..], &["--sign-amount", "--service-id", "Internet"]].concat();
        let without = [&base[..], &["--sign-amount"]].concat();
        let fixed = ServiceSlot::Fixed("Internet".into());
        for (words, admitted, refused) in [
            (
                &with,
                vec![ServiceSlot::Sent, fixed.clone()],
                ServiceSlot::Absent,
            ),
            (&without, vec![ServiceSlot::Absent], ServiceSlot::Sent),
        ] {
            let a = args(&[&words[..], &["pay", "login1", "10.00"]].concat()).unwrap();
            let form = osmp_form(
                &a,
                "pay",
                &id,
                &[("account", "login1".into()), ("sum", "10.00".into())],
            );
            let request = crate::protocol::testing::get(&form);
            let check = |rule: &SignRule| {
                let ctx = crate::protocol::ParseContext {
                    account: &accounts,
                    now: chrono::Local::now().naive_local(),
                    test: false,
                    sign: Some(rule),
                    rsa: None,
                    card: None,
                    monobank_key: None,
                };
                Nonstop24.parse(&request, &ctx)
            };
            for slot in admitted {
                let r = check(&endpoint(slot.clone()));
                assert!(r.is_ok(), "{form} {slot:?}: {r:?}");
            }
            assert!(check(&endpoint(refused)).is_err(), "{form}");
        }
    }
}
