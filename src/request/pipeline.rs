//! The pipeline of one request, the same for every executable and both modes:
//!
//! request → config → gate (which system?) → protocol::parse → policy → billing / ledger →
//! protocol::render → journal.
//!
//! [`serve`] decides; it touches no process state, so tests and the admin command line can
//! call it. Which systems an executable offers and how it answers before a system is known
//! is its [`Endpoint`]; everything after that is the system's protocol and the config's
//! billing. [`serve_safely`] turns a panic into the temporary answer, and [`record`], after
//! the answer, writes the request-history row (`[log] database`) and the log line.

use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Local};

use crate::billing::{self, Billing};
use crate::card;
use crate::cgi::{Request, Response};
use crate::config::{self, Config, ConfigError, ProtocolKind, System};
use crate::db::{self, Connections};
use crate::domain::{Account, Amount, Domain, TxnDate, TxnId};
use crate::gate::{self, Caller};
use crate::history;
use crate::hooks::{self, HookError, Hooks};
use crate::journal::{self, Line};
use crate::ledger::{self, LedgerError, Paid, PayOrder, Unpaid};
use crate::outcome::{
    mask_name, Booking, CancelOrder, CardState, Command, Echo, Fault, OrderRef, Outcome, Pay,
    Payer, Refusal, Settlement,
};
use crate::policy;
use crate::protocol::{self, Dialect, ParseContext, Protocol, Reply};

/// What an executable serves.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// For the log and errors: `osmp.cgi`, `paysys_check.cgi`.
    pub name: &'static str,
    /// `Some`: only the systems speaking this protocol (`osmp.cgi`); `None`: every system,
    /// the caller's address picking it and so its protocol (`paysys_check.cgi`).
    pub only: Option<ProtocolKind>,
    /// Whose answers to give where NoDeny's and ABillS's scripts differ.
    pub dialect: Dialect,
}

/// `cgi-bin/osmp.cgi`: NoDeny's `osmp.pl`, OSMP systems only.
pub const OSMP_CGI: Endpoint = Endpoint {
    name: "osmp.cgi",
    only: Some(ProtocolKind::Osmp),
    dialect: Dialect::NoDeny,
};

/// `cgi-bin/paysys_check.cgi`: ABillS's endpoint, every system.
pub const PAYSYS_CHECK_CGI: Endpoint = Endpoint {
    name: "paysys_check.cgi",
    only: None,
    dialect: Dialect::Abills,
};

/// What ABillS's script answers a caller no system admits, word for word: payment systems
/// and admins' scripts look for this text.
pub const UNKNOWN_SYSTEM: &str = "Error: Unknown payment system";

impl Endpoint {
    fn offers(&self, system: &System) -> bool {
        system.protocol.called() && self.only.is_none_or(|kind| kind == system.protocol)
    }

    /// The protocol that answers before a system is known (a broken config, an unknown
    /// caller, a panic), if this endpoint has only one.
    fn sole_protocol(&self) -> Option<&'static dyn Protocol> {
        self.only.map(|kind| protocol::of(kind, self.dialect))
    }

    /// The echo of a request no system has claimed yet.
    fn echo(&self, request: &Request) -> Echo {
        match self.sole_protocol() {
            Some(p) => p.echo(request),
            None => protocol::form_echo(request),
        }
    }

    /// The answer to a request no system has claimed: in the sole protocol, or as ABillS's
    /// script gives it — plain text, which every protocol's client takes for a failure.
    fn render_unclaimed(&self, echo: &Echo, outcome: &Outcome) -> Reply {
        if let Some(p) = self.sole_protocol() {
            return p.render(echo, outcome);
        }
        let (status, text, result) = match outcome {
            Outcome::Refused(Refusal::CallerNotAllowed) => (200, UNKNOWN_SYSTEM, "unknown-system"),
            // Not knowing the caller's protocol, say it in HTTP: 503 is "try again later"
            // to every client.
            _ => (
                503,
                "Error: temporarily unavailable, try again later",
                "unavailable",
            ),
        };
        Reply {
            response: Response {
                status,
                content_type: "text/plain; charset=utf-8",
                body: text.to_string(),
                headers: Default::default(),
            },
            result: result.to_string(),
            comment: text.to_string(),
        }
    }
}

/// What a request came to: the answer, and what the journal needs to describe it.
pub struct Served {
    pub reply: Reply,
    pub outcome: Outcome,
    pub echo: Echo,
    /// The system the caller was identified as, if it got that far.
    pub system: Option<String>,
    /// Called in test mode (`test_allow`, or a system with `test = true`).
    pub test: bool,
    pub domain: Domain,
    pub log_file: PathBuf,
    /// `[log] file` is on: the line goes there (else to stderr, and only when the request
    /// has no row in the request history).
    pub to_file: bool,
    /// The request's row in the request history was written.
    pub stored: bool,
    /// The request's row in the request history, to be written after the answer is sent
    /// ([`record`]); `None` with `[log] database` off, and for a request no system claimed.
    pub history: Option<PendingRow>,
    pub debug: bool,
    /// What went wrong around the answer without changing it (a failed hook, a refusal
    /// that could not be recorded).
    pub notes: Vec<String>,
    /// The database node that served it, where there is a choice (several URLs, or a
    /// cluster node): `host:port`.
    pub db: Option<String>,
}

impl Served {
    /// A request no system has claimed (a config that cannot be read, an unknown caller, a
    /// panic), answered by the endpoint itself.
    fn unclaimed(
        endpoint: &Endpoint,
        echo: Echo,
        outcome: Outcome,
        log: (PathBuf, bool, bool),
        notes: Vec<String>,
    ) -> Served {
        Served {
            reply: endpoint.render_unclaimed(&echo, &outcome),
            outcome,
            echo,
            system: None,
            test: false,
            domain: Domain::default(),
            log_file: log.0,
            to_file: log.2,
            stored: false,
            history: None,
            debug: log.1,
            notes,
            db: None,
        }
    }
}

/// Decides one request. `config_path` is the main config file; `now` the server's time;
/// `conns` where the database connection comes from.
pub fn serve(
    endpoint: &Endpoint,
    request: &Request,
    config_path: &Path,
    now: DateTime<Local>,
    conns: &mut Connections,
) -> Served {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            return Served::unclaimed(
                endpoint,
                endpoint.echo(request),
                Outcome::Failed(config_fault(&e)),
                (
                    config::default_log_file(&config::base_of(config_path)),
                    false,
                    true,
                ),
                Vec::new(),
            );
        }
    };
    // The subscriber's page (`/pay`, `/<domain>/pay`, `/pay/<order id>`): for anyone, from
    // anywhere; it stores orders and moves no money.
    if endpoint.only.is_none() {
        if let Some(route) = card::page::route(&request.path_info) {
            let page = card::page::serve(&route, request, &config, now, conns);
            conns.done(page.healthy);
            return Served {
                reply: page.reply,
                outcome: page.outcome,
                echo: page.echo,
                system: page.system,
                test: false,
                domain: page.domain,
                log_file: config.log.file.clone(),
                to_file: config.log.to_file,
                stored: false,
                history: None,
                debug: config.log.debug,
                notes: page.notes,
                db: None,
            };
        }
    }
    // A card provider's callback names its system in the URL (`/callback/<name>`): its
    // addresses change without notice, so its allow list, if it has one, is enforced, but
    // none is needed — the signature is the credential, and no money moves without it.
    let named = request.path_info.strip_prefix("/callback/").map(|name| {
        config
            .systems
            .iter()
            .filter(|s| s.protocol.card() && endpoint.offers(s))
            .find(|s| s.name == name.trim_end_matches('/'))
            .filter(|s| {
                s.allow.is_empty() || request.remote_addr.is_some_and(|ip| s.allow.allows(ip))
            })
            .map(|system| gate::Caller {
                system,
                test: false,
            })
    });
    // The caller first: someone we do not know learns nothing about the request's validity.
    let caller = match named {
        Some(named) => named,
        None => gate::identify(&config.systems, request.remote_addr, |s| endpoint.offers(s)),
    };
    let Some(caller) = caller else {
        let outcome = Outcome::Refused(Refusal::CallerNotAllowed);
        let echo = endpoint.echo(request);
        let mut notes = Vec::new();
        if let Some(hook) = &config.hooks.notify {
            notify_unknown_caller(hook, &config.hooks, endpoint, request, &echo, &mut notes);
        }
        return Served::unclaimed(
            endpoint,
            echo,
            outcome,
            (
                config.log.file.clone(),
                config.log.debug,
                config.log.to_file,
            ),
            notes,
        );
    };
    let protocol = protocol::of(caller.system.protocol, endpoint.dialect);
    let billing = billing::of(config.database.billing);
    let mut echo = protocol.echo(request);
    // Domains are the billing's (ABillS Multidoms); where it has none, PATH_INFO is ignored
    // as NoDeny's script ignored it. A card callback's order knows its own domain.
    let domain = if caller.system.protocol.card() {
        Ok(Domain::default())
    } else if billing.has_domains() {
        Domain::from_path_info(&request.path_info)
    } else {
        Ok(Domain::default())
    };
    let mut notes = Vec::new();
    // A pay, parsed or not, is one that says so (a refused one leaves a paysys_refusal row).
    let pay = echo.command == PAY;
    let mut known = Known::default();
    let outcome = match &domain {
        Err(why) => Outcome::Refused(Refusal::BadDomain(why.clone())),
        Ok(domain) => decide(
            protocol, billing, request, &mut echo, &config, caller, *domain, now, conns,
            &mut notes, &mut known,
        ),
    };
    let rendered = match protocol.order_lifetime() {
        Some(_) if !matches!(outcome, Outcome::Failed(_)) => {
            let orders = match known.view.take() {
                Some(view) => Ok(vec![view]),
                None => order_views(known.command.as_ref(), &config, caller, conns),
            };
            match orders.map(|views| named_by_key(views, caller.system)) {
                Ok(orders) => protocol.render_orders(&echo, &outcome, &orders),
                Err(why) => {
                    notes.push(format!(
                        "answered as a temporary error: the orders could not be read ({why}) \
                         after the request ended in: {}",
                        outcome.detail().unwrap_or_else(|| "success".into())
                    ));
                    protocol.render(&echo, &Outcome::Failed(Fault::DatabaseRead(why)))
                }
            }
        }
        _ => protocol.render(&echo, &outcome),
    };
    let reply = match protocol.seal(rendered, caller.system) {
        Ok(reply) => reply,
        Err((reply, why)) => {
            notes.push(format!("answer not signed: {why}"));
            reply
        }
    };
    let mut healthy = !matches!(outcome, Outcome::Failed(_));
    if let (true, Outcome::Refused(refusal)) = (pay, &outcome) {
        let record = ledger::RefusalRecord::new(
            &caller.system.name,
            &echo.txn_id,
            &echo.account,
            &echo.sum,
            &reply.result,
            &reply.comment,
            &refusal.detail(),
            &request.remote_addr_text,
        );
        if let Err(why) = record_refusal(&config.database, conns, &record) {
            notes.push(format!("refusal not recorded: {why}"));
            healthy = false;
        }
    }
    let db = conns
        .node()
        .filter(|node| node.cluster || config.database.urls.len() > 1)
        .map(|node| node.address.clone());
    let domain = domain.unwrap_or_default();
    // The request-history row is written by `record`, after the answer is sent.
    let history = config.log.database.then(|| PendingRow {
        database: config.database.clone(),
        entry: history_entry(request, caller.system, &echo, &outcome, &reply, domain),
        secrets: protocol.secrets(),
    });
    // After a database error the connection's state is unknown: never reuse it (the
    // history's row then goes on a new one).
    conns.done(healthy);
    Served {
        reply,
        outcome,
        echo,
        system: Some(caller.system.name.clone()),
        test: caller.test,
        domain,
        log_file: config.log.file.clone(),
        to_file: config.log.to_file,
        stored: false,
        history,
        debug: config.log.debug,
        notes,
        db,
    }
}

/// The command name of a pay as sent ([`Command::name`]).
const PAY: &str = "pay";

/// The reason an order past its lifetime is cancelled with (Payme's 4: timed out).
const EXPIRED: &str = "4";

/// The most payments one listing answers: a day of a busy system, with room; a longer
/// period is for `paysys report` and `reconcile`.
const LIST_MAX: u32 = 100_000;

/// What deciding a request learned that its answer may use: the command as parsed (for a
/// protocol whose answers tell the named orders' story), and that story where the request's
/// own writes told it (a booking, a confirmation paid now), so that it is not read again.
#[derive(Default)]
struct Known {
    command: Option<Command>,
    view: Option<ledger::OrderView>,
}

/// The orders a request of a protocol whose answers tell their story names (Payme's),
/// read after the request was decided: the one `command` (the request, as parsed) names,
/// or every one of a listing's period; none for a request that did not parse. A cancel's
/// reason is kept with its order here, once the cancel stands.
fn order_views(
    command: Option<&Command>,
    config: &Config,
    caller: Caller<'_>,
    conns: &mut Connections,
) -> Result<Vec<ledger::OrderView>, String> {
    let system = caller.system;
    let Some(command) = command else {
        return Ok(Vec::new());
    };
    if !matches!(
        command,
        Command::List(_)
            | Command::Book(_)
            | Command::Status(_)
            | Command::Confirm(_)
            | Command::Unbook(_)
    ) {
        return Ok(Vec::new());
    }
    // Write: a cancel's reason may be kept below.
    let conn = conns.get(&config.database, db::Use::Write)?;
    let one = |conn: &mut mysql::Conn, order_id: &TxnId| {
        ledger::order_view(conn, &system.name, order_id).map(|v| v.into_iter().collect())
    };
    let views: Vec<ledger::OrderView> = match command {
        Command::List(period) => ledger::order_views(conn, &system.name, period, LIST_MAX),
        Command::Book(b) => one(conn, &b.order_id),
        Command::Status(q) => one(conn, &q.txn_id),
        Command::Confirm(r) | Command::Unbook(r) => match &r.order_id {
            Some(order_id) => one(conn, order_id),
            None => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
    .map_err(|e| e.to_string())?;
    if let (Command::Unbook(r), Some(v)) = (command, views.first()) {
        if let (Some(reason), true, "") = (&r.note, v.cancelled != 0, v.reason.as_str()) {
            ledger::note_order(conn, &system.name, v.payment_id, reason)
                .map_err(|e| e.to_string())?;
            let mut noted = v.clone();
            noted.reason = ledger::column_text(reason, 32);
            return Ok(vec![noted]);
        }
    }
    Ok(views)
}

/// The orders with their account's field named as the system's first account key.
fn named_by_key(views: Vec<ledger::OrderView>, system: &System) -> Vec<ledger::OrderView> {
    let key = system.account.keys.first().map_or("account", |k| k.name());
    views
        .into_iter()
        .map(|v| ledger::OrderView {
            account_key: key,
            ..v
        })
        .collect()
}

/// A refused pay's `paysys_refusal` row, on the request's connection if it has one (a new
/// one if not). Only pays from a known system get here: a flood of anything else costs no
/// database write.
fn record_refusal(
    database: &config::DatabaseConfig,
    conns: &mut Connections,
    record: &ledger::RefusalRecord,
) -> Result<(), String> {
    let conn = conns.get(database, db::Use::Read)?;
    ledger::record_refusal(conn, record).map_err(|e| e.to_string())
}

/// The request-history row of a request a known system made, answered `reply`: all but
/// its request text, which [`record`] makes after the answer is sent ([`PendingRow`]).
fn history_entry(
    request: &Request,
    system: &System,
    echo: &Echo,
    outcome: &Outcome,
    reply: &Reply,
    domain: Domain,
) -> history::Entry {
    let uid = match outcome {
        Outcome::Checked { subscriber, .. } => Some(subscriber.id),
        _ => None,
    };
    history::Entry {
        system: system.name.clone(),
        abills_id: system.abills.id,
        method: request.method.clone(),
        request: String::new(),
        response: reply.response.body.clone(),
        caller: request.remote_addr,
        caller_text: request.remote_addr_text.clone(),
        command: echo.command.clone(),
        txn_id: echo.txn_id.clone(),
        account: echo.account.clone(),
        sum: Amount::parse(&echo.sum).ok(),
        result: reply.result.clone(),
        error: outcome.detail().unwrap_or_default(),
        failed: matches!(outcome, Outcome::Refused(_) | Outcome::Failed(_)),
        prv_txn: outcome.prv_txn(),
        uid,
        domain: domain.id(),
    }
}

/// A request's row of the request history, waiting for its answer to be sent. Its
/// request text is made by [`record`], from the request itself: masking its secrets
/// (parsing a form, JSON or XML body) is work the answer need not wait for.
pub struct PendingRow {
    database: config::DatabaseConfig,
    entry: history::Entry,
    /// The protocol's secret fields ([`Protocol::secrets`]).
    secrets: &'static [&'static str],
}

impl PendingRow {
    /// The row as it waits: everything but the request text.
    pub fn entry(&self) -> &history::Entry {
        &self.entry
    }

    /// The row to write for `request`: its text, the secrets masked, made now.
    fn finish(self, request: &Request) -> (config::DatabaseConfig, history::Entry) {
        let body = request
            .body
            .as_ref()
            .map(Vec::as_slice)
            .map_err(|e| e.0.as_str());
        let entry = history::Entry {
            request: history::request_text(&request.query, body, self.secrets),
            ..self.entry
        };
        (self.database, entry)
    }
}

/// `[hooks] notify` about a caller no system admits: what it sent, for the admin who is
/// about to add a payment system (or to block somebody). No request byte reaches a header
/// line of the message.
fn notify_unknown_caller(
    hook: &hooks::HookCommand,
    hooks: &Hooks,
    endpoint: &Endpoint,
    request: &Request,
    echo: &Echo,
    notes: &mut Vec<String>,
) {
    let printable = |text: &str, max: usize| -> String {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(max)
            .collect()
    };
    let caller = printable(&request.remote_addr_text, 64);
    let message = format!(
        "Subject: paysys: unknown caller {caller}\n\n\
         {} refused a request from {caller}, which no payment system's allow list admits:\n\n{}\n",
        endpoint.name,
        printable(&echo.dump, 2000)
    );
    let env = [("PAYSYS_CALLER", caller.clone())];
    if let Err(e) = hooks::run(hook, &env, Some(&message), hooks.timeout) {
        notes.push(format!("notify failed: {e}"));
    }
}

fn config_fault(e: &ConfigError) -> Fault {
    match e {
        ConfigError::Missing { .. } => Fault::ConfigMissing(e.to_string()),
        ConfigError::Invalid { .. } => Fault::ConfigInvalid(e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn decide(
    protocol: &dyn Protocol,
    billing: &dyn Billing,
    request: &Request,
    echo: &mut Echo,
    config: &Config,
    caller: Caller<'_>,
    domain: Domain,
    now: DateTime<Local>,
    conns: &mut Connections,
    notes: &mut Vec<String>,
    known: &mut Known,
) -> Outcome {
    let system = caller.system;
    // Monobank's key when the config has none: cached or fetched here, before the parse,
    // which does no I/O (card::pubkey says why); a fetch that fails is a temporary answer.
    let monobank_key = match card::pubkey::for_webhook(system, &config.base, request, notes) {
        Ok(key) => key,
        Err(fault) => return Outcome::Failed(fault),
    };
    let ctx = ParseContext {
        account: &system.account,
        now: now.naive_local(),
        test: caller.test,
        sign: system.sign(),
        rsa: system.rsa(),
        card: system.card(),
        monobank_key: monobank_key.as_ref(),
    };
    let command = match protocol.parse(request, &ctx) {
        Ok(command) => command,
        Err(refusal) => return Outcome::Refused(refusal),
    };
    // Orders the payment system may pay only for a while (Payme's 12 hours): those past it
    // are cancelled when next touched — the one the request names, or, for a listing,
    // every one — before anything is decided about them. A booking or a confirmation
    // reads its order anyway, and cancels it there if it is due (`Lifetime::due`); the
    // others cancel here.
    let lifetime = protocol.order_lifetime().map(|lifetime| {
        known.command = Some(command.clone());
        Lifetime::before(now - lifetime)
    });
    if let Some(lifetime) = &lifetime {
        let named = match &command {
            Command::Unbook(r) => Some(r.order_id.as_ref()),
            Command::Status(q) => Some(Some(&q.txn_id)),
            Command::List(_) => Some(None),
            _ => None,
        };
        if let Some(order_id) = named {
            let before = &lifetime.before;
            let expired = conns
                .get(&config.database, db::Use::Write)
                .and_then(|conn| {
                    ledger::expire_orders(conn, &system.name, order_id, before, EXPIRED)
                        .map_err(|e| e.to_string())
                });
            if let Err(why) = expired {
                return Outcome::Failed(Fault::DatabaseWrite(why));
            }
        }
        // Such a system's listing is of its orders, which the answer reads (order_views).
        if let Command::List(_) = command {
            return Outcome::Listed(Vec::new());
        }
    }
    // A card provider's word, verified: the log names its order and sum from here on; a
    // success is the pay of that order (in the order's domain), anything else is noted.
    let mut pinned = None;
    let (command, domain, settled_order, word) = match command {
        Command::Settle(settlement) => {
            echo.txn_id = settlement.order_id.clone();
            echo.sum = settlement.amount.to_string();
            if let Some(outcome) = pay_at_once(
                &settlement,
                (system, billing),
                config,
                request.remote_addr,
                echo,
                now,
                conns,
                notes,
            ) {
                return outcome;
            }
            match settle(settlement, system, &config.database, conns, now) {
                Ok((pay, order, word)) => {
                    echo.account = order.account.clone();
                    echo.command = PAY.into();
                    pinned = order.subscriber_id;
                    (pay, order.domain, Some(order.id), Some(word))
                }
                Err(outcome) => return outcome,
            }
        }
        other => (other, domain, None, None),
    };
    // A confirmation or cancellation of a booked order is the pay or the cancel of that
    // order: from here on judged, paid and logged as one.
    if let Command::Confirm(r) = &command {
        let at_once = ConfirmAtOnce {
            system,
            billing,
            config,
            caller: request.remote_addr,
            params: &echo.params,
            domain,
            now,
            lifetime: lifetime.as_ref(),
        };
        if let Some((outcome, order)) = at_once.run(r, conns, notes) {
            if lifetime.is_some() {
                known.view = order.map(|order| order.paid_view(&order.now));
            }
            return outcome;
        }
    }
    let (command, booked, confirmed) = match &command {
        Command::Confirm(r) | Command::Unbook(r) => {
            match resolve_order(
                &command,
                r,
                system,
                &config.database,
                conns,
                now,
                lifetime.as_ref(),
            ) {
                Ok((resolved, order)) => {
                    let confirms = matches!(command, Command::Confirm(_));
                    let booked = confirms.then_some(order.payment_id);
                    (resolved, booked, confirms.then_some(order))
                }
                Err(outcome) => return outcome,
            }
        }
        _ => (command, settled_order, None),
    };
    // A provider's success is money already taken: the order was judged by today's limits
    // when it was made, and is not judged again.
    let admitted = match settled_order {
        Some(_) => Ok(()),
        None => policy::check(system, &command, &now),
    };
    if let (
        Err(refusal),
        Command::Check(_)
        | Command::Status(_)
        | Command::Cancel(_)
        | Command::List(_)
        | Command::Lookup(_),
    ) = (&admitted, &command)
    {
        // Outside today's limits needs no database to be refused — except a pay or a
        // booking, which may be the retry of one made under earlier limits.
        return Outcome::Refused(refusal.clone());
    }
    let job = Job {
        billing,
        system,
        caller: request.remote_addr,
        domain,
        params: &echo.params,
        hooks: &config.hooks,
        booked,
        word,
        pinned,
        // A confirmation's payment is recorded as made when its order was read, on the
        // server's clock: the time its answer says, without reading the payment back.
        created: confirmed.as_ref().map(|order| order.now.as_str()),
        lifetime: lifetime.as_ref(),
        one_call: config.database.procedure,
    };
    let mut view = None;
    let outcome = job.run(
        &config.database,
        &command,
        admitted,
        settled_order,
        conns,
        notes,
        &mut view,
    );
    if lifetime.is_some() {
        known.view = match (&outcome, confirmed) {
            (Outcome::Paid { repeat: false, .. }, Some(order)) => Some(order.paid_view(&order.now)),
            _ => view,
        };
    }
    outcome
}

/// When orders of a protocol that gives them a lifetime are due: booked before `before`
/// (`%Y-%m-%d %H:%M:%S`, as `paysys_order.created`) and still unpaid.
struct Lifetime {
    before: String,
}

impl Lifetime {
    fn before(at: DateTime<Local>) -> Lifetime {
        Lifetime {
            before: at.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }

    /// Whether the order, as read, is due to be cancelled (the cancel looks again).
    fn due(&self, order: &ledger::Order) -> bool {
        !order.cancelled && order.state == "booked" && order.created < self.before
    }

    /// The same, for an order's story: unpaid, not cancelled, booked before `before`.
    fn due_view(&self, view: &ledger::OrderView) -> bool {
        let before = chrono::NaiveDateTime::parse_from_str(&self.before, "%Y-%m-%d %H:%M:%S")
            .ok()
            .and_then(|t| t.and_local_timezone(Local).earliest())
            .map_or(0, |t| t.timestamp_millis());
        view.paid == 0 && view.cancelled == 0 && view.created < before
    }
}

/// The part that talks to the database (and runs the hooks around a payment).
struct Job<'a> {
    billing: &'a dyn Billing,
    system: &'a System,
    caller: Option<IpAddr>,
    domain: Domain,
    params: &'a [(String, String)],
    hooks: &'a Hooks,
    /// The booked order a pay confirms (EasyPay's PaymentId), or a card order it settles.
    booked: Option<u64>,
    /// The card provider's word a pay settles, kept on the order as it is marked paid.
    word: Option<ledger::ProviderWord>,
    /// The subscriber a card order was made for.
    pinned: Option<u64>,
    /// A confirmation's payment time ([`PayOrder::created`]).
    created: Option<&'a str>,
    /// The protocol's orders have a lifetime: a repeated booking of one that is due is
    /// cancelled before it is answered; a status is answered from the order alone.
    lifetime: Option<&'a Lifetime>,
    /// `[database] procedure` ([`PayOrder::one_call`]).
    one_call: bool,
}

impl<'a> Job<'a> {
    /// The job of a payment its order's own statements made (a card callback's, a
    /// confirmation's: [`ledger::pay_card_order`], [`ledger::confirm_order`]), for what
    /// follows it: the commands after a payment.
    fn paid(
        billing: &'a dyn Billing,
        system: &'a System,
        caller: Option<IpAddr>,
        domain: Domain,
        params: &'a [(String, String)],
        config: &'a Config,
    ) -> Job<'a> {
        Job {
            billing,
            system,
            caller,
            domain,
            params,
            hooks: &config.hooks,
            booked: None,
            word: None,
            pinned: None,
            created: None,
            lifetime: None,
            one_call: config.database.procedure,
        }
    }

    /// [`Job::execute`], and what follows it: a card order's pay the billing refused holds
    /// the order (`settled_order`: the money is taken), and a payment committed now — never
    /// a repeat — runs the commands after a payment.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        database: &config::DatabaseConfig,
        command: &Command,
        admitted: Result<(), Refusal>,
        settled_order: Option<u64>,
        conns: &mut Connections,
        notes: &mut Vec<String>,
        view: &mut Option<ledger::OrderView>,
    ) -> Outcome {
        let outcome = self.execute(database, command, admitted, conns, view);
        let outcome = match settled_order {
            Some(order) => hold_refused(outcome, order, database, conns),
            None => outcome,
        };
        if let (
            Outcome::Paid {
                prv_txn,
                repeat: false,
                ..
            },
            Command::Pay(pay),
        ) = (&outcome, command)
        {
            self.after_payment(pay, *prv_txn, conns, database, notes);
        }
        outcome
    }

    /// What a hook learns of a payment.
    fn hook_env(
        &self,
        pay: &Pay,
        uid: Option<u64>,
        prv_txn: Option<u64>,
    ) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PAYSYS_SYSTEM", self.system.name.clone()),
            ("PAYSYS_TXN_ID", pay.txn_id.to_string()),
            ("PAYSYS_ACCOUNT", pay.account.as_str().to_string()),
            ("PAYSYS_SUM", pay.sum.to_string()),
            ("PAYSYS_DOMAIN", self.domain.to_string()),
            (
                "PAYSYS_CALLER",
                self.caller.map(|ip| ip.to_string()).unwrap_or_default(),
            ),
        ];
        if let Some(uid) = uid {
            env.push(("PAYSYS_UID", uid.to_string()));
        }
        if let Some(prv_txn) = prv_txn {
            env.push(("PAYSYS_PRV_TXN", prv_txn.to_string()));
        }
        env
    }

    /// What a pay of a txn paid before is answered — by us ([`ledger::settled`]) or by the
    /// billing's own script before the switch-over — or `None` if it never was.
    fn settled(&self, conn: &mut mysql::Conn, pay: &Pay) -> Result<Option<Paid>, mysql::Error> {
        if let Some(paid) = ledger::settled(conn, &self.system.name, pay)? {
            return Ok(Some(paid));
        }
        let Some(r) = self
            .billing
            .recorded(conn, self.system, &pay.txn_id, self.domain)?
        else {
            return Ok(None);
        };
        if r.cancelled {
            return Ok(Some(Paid::Cancelled { prv_txn: r.prv_txn }));
        }
        let uid = self
            .billing
            .subscriber_of(conn, self.system, &pay.account, self.domain)?;
        Ok(Some(
            if billing::same_payment(uid, r.subscriber_id, r.amount, pay.sum) {
                Paid::Repeat { prv_txn: r.prv_txn }
            } else {
                Paid::Conflict {
                    prv_txn: r.prv_txn,
                    account: format!("(recorded by {} before)", self.billing.kind().name()),
                    sum: r.amount,
                }
            },
        ))
    }

    /// `[hooks] before_payment` for a pay not committed before: `None` to go on, or how the
    /// request ends. A repeat gets its first answer without the hook; the subscriber is
    /// looked up first, so the hook knows whom it is asked about (and an unknown account is
    /// refused as such).
    fn before_payment(&self, conn: &mut mysql::Conn, pay: &Pay) -> Option<Outcome> {
        let hook = self.hooks.before_payment.as_ref()?;
        match self.settled(conn, pay) {
            Ok(Some(paid)) => return Some(paid_outcome(paid, pay.sum)),
            Ok(None) => {}
            Err(e) => return Some(Outcome::Failed(Fault::DatabaseRead(e.to_string()))),
        }
        let uid = match self
            .billing
            .find(conn, self.system, &pay.account, self.domain)
        {
            Ok(Ok(subscriber)) => subscriber.id,
            Ok(Err(refusal)) => return Some(Outcome::Refused(refusal)),
            Err(e) => return Some(Outcome::Failed(Fault::DatabaseRead(e.to_string()))),
        };
        let env = self.hook_env(pay, Some(uid), None);
        match hooks::run(hook, &env, None, self.hooks.timeout) {
            Ok(()) => None,
            Err(HookError::Refused(why)) => Some(Outcome::Refused(Refusal::HookRefused(format!(
                "before_payment refused: {why}"
            )))),
            Err(HookError::Broken(why)) => Some(Outcome::Failed(Fault::Hook(format!(
                "before_payment: {why}"
            )))),
        }
    }

    /// `[hooks] after_payment` and `notify` for a payment committed now. Nothing here can
    /// change its answer: failures become notes on the log line.
    fn after_payment(
        &self,
        pay: &Pay,
        prv_txn: u64,
        conns: &mut Connections,
        database: &config::DatabaseConfig,
        notes: &mut Vec<String>,
    ) {
        if self.hooks.after_payment.is_none() && self.hooks.notify.is_none() {
            return;
        }
        // Whom it credited, as the ledger recorded it (one read, only with hooks set).
        let uid = conns
            .get(database, db::Use::Read)
            .ok()
            .and_then(|conn| {
                ledger::find(conn, &self.system.name, &pay.txn_id)
                    .ok()
                    .flatten()
            })
            .map(|stored| stored.subscriber_id);
        let env = self.hook_env(pay, uid, Some(prv_txn));
        if let Some(hook) = &self.hooks.after_payment {
            if let Err(e) = hooks::run(hook, &env, None, self.hooks.timeout) {
                notes.push(format!("after_payment failed: {e}"));
            }
        }
        if let Some(hook) = &self.hooks.notify {
            let caller = self.caller.map(|ip| ip.to_string()).unwrap_or_default();
            let subscriber = uid
                .map(|u| format!(" (subscriber {u})"))
                .unwrap_or_default();
            let (system, txn, account, sum) = (
                &self.system.name,
                &pay.txn_id,
                pay.account.as_str(),
                pay.sum,
            );
            let message = format!(
                "Subject: paysys: {system} paid {sum} to {account} (txn {txn})\n\n\
                 system {system}, txn {txn}, account {account}{subscriber}, sum {sum}, \
                 prv_txn {prv_txn}, caller {caller}\n"
            );
            if let Err(e) = hooks::run(hook, &env, Some(&message), self.hooks.timeout) {
                notes.push(format!("notify failed: {e}"));
            }
        }
    }

    /// `admitted`: what the system's limits said of the command. `view`: a booking's order,
    /// as it stands after it.
    fn execute(
        &self,
        database: &config::DatabaseConfig,
        command: &Command,
        admitted: Result<(), Refusal>,
        conns: &mut Connections,
        view: &mut Option<ledger::OrderView>,
    ) -> Outcome {
        let writes = matches!(command, Command::Pay(_) | Command::Cancel(_));
        // Pays and cancels write; status may wait on a pay of the same txn in flight
        // (ledger::find): all need the lock timeouts. A check only reads what is committed.
        let usage = match command {
            Command::Check(_) | Command::List(_) | Command::Lookup(_) => db::Use::Read,
            _ => db::Use::Write,
        };
        let (conn, cluster) = match conns.get_on(database, usage) {
            Ok((conn, node)) => (conn, node.cluster),
            // A pay that could not even connect was not written: NoDeny's nod13 all the same.
            Err(why) if writes => return Outcome::Failed(Fault::DatabaseWrite(why)),
            Err(why) => return Outcome::Failed(Fault::DatabaseRead(why)),
        };
        let system = self.system;
        match command {
            Command::Check(check) => {
                match self.billing.find(conn, system, &check.account, self.domain) {
                    Ok(Ok(mut subscriber)) => {
                        if system.mask_name {
                            subscriber.name = mask_name(&subscriber.name);
                        }
                        Outcome::Checked {
                            subscriber,
                            sum: check.sum,
                            limits: (system.min_sum, system.max_sum),
                        }
                    }
                    Ok(Err(refusal)) => Outcome::Refused(refusal),
                    Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
                }
            }
            Command::Pay(pay) => match admitted {
                Ok(()) => {
                    if let Some(outcome) = self.before_payment(conn, pay) {
                        return outcome;
                    }
                    let order = PayOrder {
                        system,
                        pay,
                        caller: self.caller,
                        domain: self.domain,
                        params: self.params,
                        booked: self.booked,
                        word: self.word.as_ref(),
                        pinned: self.pinned,
                        created: self.created,
                        one_call: self.one_call,
                    };
                    match ledger::pay(conn, self.billing, &order) {
                        Ok(paid) => paid_outcome(paid, pay.sum),
                        Err(e) => ledger_fault(e, cluster),
                    }
                }
                // Outside today's limits: refused, unless this txn was committed before, in
                // which case its first answer stands (invariant 3: the window or the limits
                // may have changed since, and the retry of a paid payment must not be told
                // it failed).
                Err(refusal) => match self.settled(conn, pay) {
                    Ok(Some(paid)) => paid_outcome(paid, pay.sum),
                    Ok(None) => Outcome::Refused(refusal),
                    // Not knowing whether it is a repeat, a final refusal could be wrong.
                    Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
                },
            },
            Command::Status(query) => match ledger::find(conn, &system.name, &query.txn_id) {
                Ok(Some(stored)) => Outcome::Found {
                    prv_txn: stored.prv_txn,
                    sum: stored.sum,
                    cancelled: stored.cancelled,
                },
                // A protocol whose orders have a lifetime answers from the order alone
                // (Payme's: pipeline::order_views), which a payment ABillS's own script
                // recorded is not.
                Ok(None) if self.lifetime.is_some() => Outcome::Refused(Refusal::UnknownTxn),
                // Paid before paysys (ABillS's own script)? Then that is the answer.
                Ok(None) => match self
                    .billing
                    .recorded(conn, system, &query.txn_id, self.domain)
                {
                    Ok(Some(r)) => Outcome::Found {
                        prv_txn: r.prv_txn,
                        sum: r.amount,
                        cancelled: r.cancelled,
                    },
                    Ok(None) => Outcome::Refused(Refusal::UnknownTxn),
                    Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
                },
                Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
            },
            Command::Book(booking) => self.book(conn, booking, admitted, view),
            // Resolved into a pay, a cancel or an answer by `decide`.
            Command::Confirm(_) | Command::Unbook(_) | Command::Settle(_) => Outcome::Failed(
                Fault::Internal("an order's confirmation reached the ledger unresolved".into()),
            ),
            Command::Lookup(lookup) => {
                let mut payers = Vec::with_capacity(lookup.payers.len());
                for (sent, account) in &lookup.payers {
                    let Some(account) = account else { continue };
                    match self.billing.find(conn, system, account, self.domain) {
                        Ok(Ok(mut subscriber)) => {
                            if system.mask_name {
                                subscriber.name = mask_name(&subscriber.name);
                            }
                            payers.push(Payer {
                                sent: sent.clone(),
                                subscriber,
                            });
                        }
                        // Not found, disabled: this payer is left out, the others answered.
                        Ok(Err(_)) => {}
                        Err(e) => return Outcome::Failed(Fault::DatabaseRead(e.to_string())),
                    }
                }
                Outcome::LookedUp {
                    date: lookup.date,
                    payers,
                }
            }
            Command::List(period) => match ledger::list(conn, &system.name, period, LIST_MAX) {
                Ok(listed) => Outcome::Listed(listed),
                Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
            },
            Command::Cancel(order) => {
                match ledger::cancel(conn, self.billing, system, self.domain, self.caller, order) {
                    Ok(Unpaid::Cancelled { prv_txn, sum }) => Outcome::Cancelled {
                        prv_txn,
                        sum,
                        repeat: false,
                    },
                    Ok(Unpaid::Repeat { prv_txn, sum }) => Outcome::Cancelled {
                        prv_txn,
                        sum,
                        repeat: true,
                    },
                    Ok(Unpaid::Refused(refusal)) => Outcome::Refused(refusal),
                    Err(e) => ledger_fault(e, cluster),
                }
            }
        }
    }
}

impl Job<'_> {
    /// A booking. An order id booked before is answered as it was then — whatever today's
    /// limits and the subscriber's state say now — so the order is looked up before any
    /// refusal is answered; a new one must be within the limits and for an account we can
    /// credit when the order is confirmed.
    fn book(
        &self,
        conn: &mut mysql::Conn,
        booking: &Booking,
        admitted: Result<(), Refusal>,
        view: &mut Option<ledger::OrderView>,
    ) -> Outcome {
        let system = self.system;
        let refused = match admitted {
            Err(refusal) => Some(refusal),
            Ok(()) => match self
                .billing
                .find(conn, system, &booking.account, self.domain)
            {
                Ok(Ok(_)) => None,
                Ok(Err(refusal)) => Some(refusal),
                Err(e) => return Outcome::Failed(Fault::DatabaseRead(e.to_string())),
            },
        };
        if let Some(refusal) = refused {
            return match ledger::order_view(conn, &system.name, &booking.order_id) {
                Ok(Some(first)) => self.booked_before(conn, booking, first, view),
                Ok(None) => Outcome::Refused(refusal),
                // Not knowing whether it is a repeat, a final refusal could be wrong.
                Err(e) => Outcome::Failed(Fault::DatabaseRead(e.to_string())),
            };
        }
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let at = booking
            .at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
        match ledger::book(
            conn,
            &system.name,
            &booking.order_id,
            booking.account.as_str(),
            booking.sum,
            &now,
            at.as_deref(),
        ) {
            Ok(ledger::Booked::New(booked)) => {
                let payment_id = booked.payment_id;
                *view = Some(booked);
                Outcome::Booked {
                    payment_id,
                    repeat: false,
                }
            }
            Ok(ledger::Booked::Before(first)) => self.booked_before(conn, booking, first, view),
            Err(e) => Outcome::Failed(Fault::DatabaseWrite(e.to_string())),
        }
    }

    /// A booking of an order id booked before (`first`): its first answer if the account
    /// and sum are the same, a conflict if not. An order past its lifetime is cancelled
    /// first, and answered as it then stands.
    fn booked_before(
        &self,
        conn: &mut mysql::Conn,
        booking: &Booking,
        mut first: ledger::OrderView,
        view: &mut Option<ledger::OrderView>,
    ) -> Outcome {
        let system = &self.system.name;
        if let Some(lifetime) = self.lifetime.filter(|l| l.due_view(&first)) {
            let expired = ledger::expire_orders(
                conn,
                system,
                Some(&booking.order_id),
                &lifetime.before,
                EXPIRED,
            )
            .and_then(|_| ledger::order_view(conn, system, &booking.order_id));
            match expired {
                Ok(Some(now)) => first = now,
                Ok(None) => {}
                Err(e) => return Outcome::Failed(Fault::DatabaseWrite(e.to_string())),
            }
        }
        let outcome = if first.account == booking.account.as_str() && first.amount == booking.sum {
            Outcome::Booked {
                payment_id: first.payment_id,
                repeat: true,
            }
        } else {
            Outcome::Refused(Refusal::Conflict {
                prv_txn: first.payment_id,
                account: first.account.clone(),
                sum: first.amount,
            })
        };
        *view = Some(first);
        outcome
    }
}

/// The pay (a confirmation) or the cancel (an unbooking) of the order `r` names; or the
/// answer already: no such order, a confirmation of a cancelled one, an unpaid order now
/// cancelled, the database down.
fn resolve_order(
    command: &Command,
    r: &OrderRef,
    system: &System,
    database: &config::DatabaseConfig,
    conns: &mut Connections,
    now: DateTime<Local>,
    lifetime: Option<&Lifetime>,
) -> Result<(Command, ledger::Order), Outcome> {
    let conn = conns
        .get(database, db::Use::Write)
        .map_err(|why| Outcome::Failed(Fault::DatabaseWrite(why)))?;
    let read = |e: mysql::Error| Outcome::Failed(Fault::DatabaseRead(e.to_string()));
    let find = |conn: &mut mysql::Conn| match (r.payment_id, &r.order_id) {
        (Some(payment_id), _) => ledger::order(conn, &system.name, payment_id),
        (None, Some(order_id)) => ledger::order_named(conn, &system.name, order_id),
        (None, None) => Ok(None),
    };
    let mut order = find(conn)
        .map_err(read)?
        .ok_or(Outcome::Refused(Refusal::UnknownTxn))?;
    // Past its lifetime and never paid: cancelled now, and judged as it then stands.
    if let Some(lifetime) = lifetime.filter(|l| l.due(&order)) {
        let order_id = TxnId::parse_token(&order.order_id).map_err(|e| {
            Outcome::Failed(Fault::Internal(format!(
                "paysys_order {}: {e}",
                order.payment_id
            )))
        })?;
        ledger::expire_orders(
            conn,
            &system.name,
            Some(&order_id),
            &lifetime.before,
            EXPIRED,
        )
        .map_err(|e| Outcome::Failed(Fault::DatabaseWrite(e.to_string())))?;
        order = find(conn)
            .map_err(read)?
            .ok_or(Outcome::Refused(Refusal::UnknownTxn))?;
    }
    // What we stored ourselves; it parsed when it was booked.
    let txn_id = TxnId::parse_token(&order.order_id).map_err(|e| {
        Outcome::Failed(Fault::Internal(format!(
            "paysys_order {}: {e}",
            order.payment_id
        )))
    })?;
    // What the request says of the order besides its number must be what was booked:
    // another order id or account is not this order; another sum is a wrong amount.
    let named_otherwise = r.order_id.as_ref().is_some_and(|t| *t != txn_id)
        || r.account.as_ref().is_some_and(|a| *a != order.account);
    if named_otherwise {
        return Err(Outcome::Refused(Refusal::UnknownTxn));
    }
    if let Some(sum) = r.sum.filter(|s| *s != order.amount) {
        return Err(Outcome::Refused(Refusal::BadSum(format!(
            "the request says {sum}, order {} was booked for {}",
            order.payment_id, order.amount
        ))));
    }
    match command {
        Command::Confirm(_) => {
            if order.cancelled {
                return Err(Outcome::Refused(Refusal::PaidThenCancelled {
                    prv_txn: order.payment_id,
                }));
            }
            let account = Account::parse_by(&order.account, &system.account)
                .map_err(|e| Outcome::Refused(Refusal::BadAccount(e)))?;
            Ok((
                Command::Pay(Pay {
                    txn_id,
                    account,
                    sum: order.amount,
                    txn_date: TxnDate::received(now.naive_local()),
                }),
                order,
            ))
        }
        _ => {
            let paid = ledger::find(conn, &system.name, &txn_id).map_err(read)?;
            if let (Some(stored), false) = (&paid, r.reverses) {
                return Err(paid_stands(&order, stored.cancelled));
            }
            if paid.is_some() {
                return Ok((
                    Command::Cancel(CancelOrder {
                        prv_txn: None,
                        txn_id: Some(txn_id),
                        sum: None,
                    }),
                    order,
                ));
            }
            match ledger::drop_order(conn, &system.name, &order) {
                Ok(true) => Err(Outcome::Cancelled {
                    prv_txn: order.payment_id,
                    sum: order.amount,
                    repeat: order.cancelled,
                }),
                // Confirmed meanwhile: that payment stands, or is reversed.
                Ok(false) if !r.reverses => Err(paid_stands(&order, false)),
                Ok(false) => Ok((
                    Command::Cancel(CancelOrder {
                        prv_txn: None,
                        txn_id: Some(txn_id),
                        sum: None,
                    }),
                    order,
                )),
                Err(e) => Err(Outcome::Failed(Fault::DatabaseWrite(e.to_string()))),
            }
        }
    }
}

/// The answer to an unbooking that does not reverse (Click's): the order was paid, and the
/// payment stands — or it was reversed since by other means, and is as cancelled.
fn paid_stands(order: &ledger::Order, reversed: bool) -> Outcome {
    if reversed {
        return Outcome::Cancelled {
            prv_txn: order.payment_id,
            sum: order.amount,
            repeat: true,
        };
    }
    Outcome::Refused(Refusal::CancelUnknown(format!(
        "order {} is paid: this cancel abandons unpaid orders only, the payment stands",
        order.payment_id
    )))
}

/// A confirmation of a booked order paid in the statements of a terminal's pay
/// ([`ledger::confirm_order`]: the order read by the pay's first statement, not before it),
/// on a server that can (MariaDB 10.5 and later).
struct ConfirmAtOnce<'a> {
    system: &'a System,
    billing: &'a dyn Billing,
    config: &'a Config,
    caller: Option<IpAddr>,
    params: &'a [(String, String)],
    domain: Domain,
    now: DateTime<Local>,
    lifetime: Option<&'a Lifetime>,
}

impl ConfirmAtOnce<'_> {
    /// `Some` with the outcome (and the order, when it was paid now) when it was paid so
    /// or the database failed; `None` to resolve the confirmation the long way
    /// ([`resolve_order`]), which reads the order first: every confirmation that is not
    /// the plain pay of a booked order as booked, and a `[hooks] before_payment`, which is
    /// asked before the pay.
    fn run(
        &self,
        r: &OrderRef,
        conns: &mut Connections,
        notes: &mut Vec<String>,
    ) -> Option<(Outcome, Option<ledger::Order>)> {
        let config = self.config;
        if config.hooks.before_payment.is_some() {
            return None;
        }
        let (conn, node) = match conns.get_on(&config.database, db::Use::Write) {
            Ok(reached) => reached,
            Err(why) => return Some((Outcome::Failed(Fault::DatabaseWrite(why)), None)),
        };
        if !node.returning {
            return None;
        }
        let cluster = node.cluster;
        let (system, now) = (self.system, self.now);
        // The order was judged by today's limits when it was booked, and is judged again
        // as the pay it makes, as the long way does (policy::check of that pay).
        let admits = |pay: &Pay| policy::check(system, &Command::Pay(pay.clone()), &now).is_ok();
        let confirm = ledger::ConfirmPay {
            system,
            order: r,
            due_before: self.lifetime.map(|l| l.before.as_str()),
            domain: self.domain,
            txn_date: TxnDate::received(now.naive_local()),
            caller: self.caller,
            params: self.params,
            admits: &admits,
        };
        let confirmed = match ledger::confirm_order(conn, self.billing, &confirm) {
            Ok(Some(confirmed)) => confirmed,
            Ok(None) => return None,
            Err(e) => return Some((ledger_fault(e, cluster), None)),
        };
        Job::paid(
            self.billing,
            system,
            self.caller,
            self.domain,
            self.params,
            config,
        )
        .after_payment(
            &confirmed.pay,
            confirmed.prv_txn,
            conns,
            &config.database,
            notes,
        );
        let outcome = Outcome::Paid {
            prv_txn: confirmed.prv_txn,
            sum: confirmed.pay.sum,
            repeat: false,
        };
        Some((outcome, Some(confirmed.order)))
    }
}

/// A card provider's success paid in the statements of a terminal's pay
/// ([`ledger::pay_card_order`]: the order read by the pay's first statement, not before
/// it), on a server that can (MariaDB 10.5 and later): `Some` with the outcome when it was
/// paid so or the database failed; `None` to settle the word the long way ([`settle`]),
/// which reads the order first — every word that is not the plain success of an open
/// order of that sum, and a `[hooks] before_payment`, which is asked before the pay.
#[allow(clippy::too_many_arguments)]
fn pay_at_once(
    s: &Settlement,
    (system, billing): (&System, &dyn Billing),
    config: &Config,
    caller: Option<IpAddr>,
    echo: &mut Echo,
    now: DateTime<Local>,
    conns: &mut Connections,
    notes: &mut Vec<String>,
) -> Option<Outcome> {
    if s.state != CardState::Paid || config.hooks.before_payment.is_some() {
        return None;
    }
    let order_id = TxnId::parse_token(&s.order_id).ok()?;
    let (conn, node) = match conns.get_on(&config.database, db::Use::Write) {
        Ok(reached) => reached,
        Err(why) => return Some(Outcome::Failed(Fault::DatabaseWrite(why))),
    };
    if !node.returning {
        return None;
    }
    let cluster = node.cluster;
    let word = ledger::ProviderWord {
        status: s.status.clone(),
        provider_ref: s.provider_ref.clone(),
        at: s.at.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
    };
    let card = ledger::CardPay {
        system,
        order_id: &order_id,
        charged: s.amount,
        currency: &s.currency,
        // Monobank's webhook must be about the invoice made for the order (see settle).
        invoice: (system.protocol == ProtocolKind::Monobank).then_some(s.provider_ref.as_str()),
        txn_date: TxnDate::received(now.naive_local()),
        caller,
        params: &echo.params,
        word: &word,
    };
    let paid = match ledger::pay_card_order(conn, billing, &card) {
        Ok(Some(paid)) => paid,
        Ok(None) => return None,
        Err(e) => return Some(ledger_fault(e, cluster)),
    };
    echo.account = paid.account_text.clone();
    echo.command = PAY.into();
    Job::paid(billing, system, caller, paid.domain, &echo.params, config).after_payment(
        &paid.pay,
        paid.prv_txn,
        conns,
        &config.database,
        notes,
    );
    Some(Outcome::Paid {
        prv_txn: paid.prv_txn,
        sum: paid.pay.sum,
        repeat: false,
    })
}

/// A card provider's verified word on one of our orders: the pay of the order for a
/// success (with the order), or the answer already — no such order, an amount or currency
/// that differs from the order's (nothing credited, the order marked for the admin), a
/// failure or a payment in progress noted on the order.
fn settle(
    s: Settlement,
    system: &System,
    database: &config::DatabaseConfig,
    conns: &mut Connections,
    now: DateTime<Local>,
) -> Result<(Command, card::order::CardOrder, ledger::ProviderWord), Outcome> {
    let conn = conns
        .get(database, db::Use::Write)
        .map_err(|why| Outcome::Failed(Fault::DatabaseWrite(why)))?;
    let read = |e: mysql::Error| Outcome::Failed(Fault::DatabaseRead(e.to_string()));
    let write = |e: mysql::Error| Outcome::Failed(Fault::DatabaseWrite(e.to_string()));
    let order = card::order::find(conn, &system.name, &s.order_id)
        .map_err(read)?
        .ok_or(Outcome::Refused(Refusal::UnknownTxn))?;
    // Monobank: the webhook must be about the invoice we created for this order — checked
    // before the word may change anything on the order. Its key may not be ours alone, and
    // an invoice another merchant made with our order id as its reference, paid into that
    // merchant's account, must neither pay us nor mark our order.
    if system.protocol == ProtocolKind::Monobank {
        let ours = &order.provider_ref;
        if ours.is_empty() || *ours != s.provider_ref {
            return Err(Outcome::Refused(Refusal::BadSignature(format!(
                "invoice {} is not the one made for order {} ({}): nothing credited",
                s.provider_ref,
                order.order_id,
                if ours.is_empty() {
                    "none was recorded"
                } else {
                    ours.as_str()
                }
            ))));
        }
    }
    let pays = s.state == CardState::Paid;
    // An order marked for the admin stays with the admin: no later word pays it.
    let marked = order.state == "mismatch";
    if marked || s.currency != order.currency || (pays && s.amount != order.charged) {
        if marked {
            return Err(Outcome::Refused(Refusal::Conflict {
                prv_txn: order.id,
                account: format!("(order {} awaits the admin)", order.order_id),
                sum: order.charged,
            }));
        }
        let why = format!(
            "the provider says {} {} was paid ({}), the order is for {} {}: nothing credited",
            s.amount, s.currency, s.status, order.charged, order.currency
        );
        card::order::mismatch(conn, &order, &why).map_err(write)?;
        return Err(Outcome::Refused(Refusal::Conflict {
            prv_txn: order.id,
            account: order.account.clone(),
            sum: order.charged,
        }));
    }
    if !pays {
        card::order::note_and_close(
            conn,
            billing::of(database.billing),
            system,
            &order,
            s.state,
            &s.status,
            &s.provider_ref,
            s.at,
        )
        .map_err(write)?;
        return Err(Outcome::Noted {
            order: order.id,
            state: s.state,
        });
    }
    if order.cancelled {
        return Err(Outcome::Refused(Refusal::PaidThenCancelled {
            prv_txn: order.id,
        }));
    }
    // A success after the provider reversed the payment is older news: Monobank's
    // webhooks come out of order (a reversal dated later was delivered first), and LiqPay
    // and WayForPay date nothing, so their success after a reversal is a retry of the old
    // word. The money left again; nothing is credited or changed, and the provider is told
    // it was received. (The ledger looks again under the order's lock.)
    if order.state == CardState::Reversed.name() {
        return Err(Outcome::Noted {
            order: order.id,
            state: CardState::Reversed,
        });
    }
    // What we stored ourselves: it parsed when the order was made.
    let txn_id = TxnId::parse_token(&order.order_id)
        .map_err(|e| Outcome::Failed(Fault::Internal(format!("paysys_order {}: {e}", order.id))))?;
    let account = Account::parse_by(&order.account, &system.account)
        .map_err(|e| Outcome::Refused(Refusal::BadAccount(e)))?;
    let pay = Command::Pay(Pay {
        txn_id,
        account,
        sum: order.amount,
        txn_date: TxnDate::received(now.naive_local()),
    });
    // The provider's id of the payment and its word, for the admin: kept by the pay's own
    // UPDATE of the order, in its transaction, not in a round trip of their own.
    let word = ledger::ProviderWord {
        status: s.status,
        provider_ref: s.provider_ref,
        at: s.at.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
    };
    Ok((pay, order, word))
}

/// A provider's verified success that the billing refused to credit (the subscriber
/// deleted since, no bill, a hook's no): the money is taken, so the order is held for the
/// admin with the reason, and the provider is told it was received (it would only post
/// again). Any other outcome stands.
fn hold_refused(
    outcome: Outcome,
    order: u64,
    database: &config::DatabaseConfig,
    conns: &mut Connections,
) -> Outcome {
    let Outcome::Refused(refusal) = &outcome else {
        return outcome;
    };
    let why = format!(
        "paid at the provider, not credited: {}; credit it by hand or refund it",
        refusal.detail()
    );
    match conns.get(database, db::Use::Write) {
        Ok(conn) => match card::order::hold(conn, order, &why) {
            Ok(()) => Outcome::Noted {
                order,
                state: CardState::Held,
            },
            Err(e) => Outcome::Failed(Fault::DatabaseWrite(e.to_string())),
        },
        Err(why) => Outcome::Failed(Fault::DatabaseWrite(why)),
    }
}

/// The outcome of a pay the ledger has settled.
pub(crate) fn paid_outcome(paid: Paid, sum: Amount) -> Outcome {
    match paid {
        Paid::New { prv_txn } => Outcome::Paid {
            prv_txn,
            sum,
            repeat: false,
        },
        Paid::Repeat { prv_txn } => Outcome::Paid {
            prv_txn,
            sum,
            repeat: true,
        },
        Paid::Conflict {
            prv_txn,
            account,
            sum,
        } => Outcome::Refused(Refusal::Conflict {
            prv_txn,
            account,
            sum,
        }),
        Paid::Cancelled { prv_txn } => Outcome::Refused(Refusal::PaidThenCancelled { prv_txn }),
        Paid::Refused(refusal) => Outcome::Refused(refusal),
    }
}

/// A pay or cancel the ledger could not finish: temporary, and said for what it was. On a
/// Galera node, conflicts that outlasted the retries are named as cluster conflicts: the
/// admin then looks at how the load balancer spreads one terminal's retries over the
/// nodes, not for a lock in the billing.
fn ledger_fault(e: LedgerError, cluster: bool) -> Outcome {
    Outcome::Failed(match e {
        LedgerError::CommitUnknown(e) => Fault::CommitUnknown(e.to_string()),
        LedgerError::Deadlocked { attempts, last } if cluster => Fault::DatabaseWrite(format!(
            "cluster conflict: certification with another node's transaction failed \
             {attempts} times in a row (or a deadlock), rolled back each time, nothing \
             written; the terminal's retry pays it or finds it paid: {last}"
        )),
        e => Fault::DatabaseWrite(e.to_string()),
    })
}

/// The journal line for a served request.
pub fn log_line(
    request: &Request,
    served: &Served,
    at: DateTime<Local>,
    pid: u32,
    started: Instant,
) -> String {
    let ip = if request.remote_addr_text.is_empty() {
        "-"
    } else {
        &request.remote_addr_text
    };
    let ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0);
    let prv_txn = served
        .outcome
        .prv_txn()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let domain = match served.domain.id() {
        0 => String::new(),
        n => n.to_string(),
    };
    let mut line = Line::new(at, pid)
        .field("ip", ip)
        .field("system", served.system.as_deref().unwrap_or("-"))
        .field("test", if served.test { "1" } else { "" })
        .field("domain", &domain)
        .field("cmd", &served.echo.command)
        .field("txn", &served.echo.txn_id)
        .field("account", &served.echo.account)
        .field("sum", &served.echo.sum)
        .field("result", &served.reply.result)
        .field("prv_txn", &prv_txn)
        .field("ms", &ms)
        .field("db", served.db.as_deref().unwrap_or(""))
        .quoted("comment", &served.reply.comment);
    if let Some(detail) = served.outcome.detail() {
        line = line.quoted("detail", &detail);
    }
    if !served.notes.is_empty() {
        line = line.quoted("notes", &served.notes.join("; "));
    }
    // A caller no system admits is logged with its whole request: the admin adding a new
    // payment system needs to see what it sent.
    let unknown = matches!(served.outcome, Outcome::Refused(Refusal::CallerNotAllowed));
    if served.debug || unknown {
        line = line.quoted("request", &served.echo.dump);
    }
    line.finish()
}

/// [`serve`], with a panic turned into the temporary answer.
pub fn serve_safely(
    endpoint: &Endpoint,
    request: &Request,
    config_path: &Path,
    conns: &mut Connections,
) -> Served {
    let now = Local::now();
    catch_unwind(AssertUnwindSafe(|| {
        serve(endpoint, request, config_path, now, conns)
    }))
    .unwrap_or_else(|panic| {
        // Whatever the connection was doing when the panic struck, it is not to be trusted.
        conns.done(false);
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Served::unclaimed(
            endpoint,
            Echo::default(),
            Outcome::Failed(Fault::Internal(why)),
            (
                config::default_log_file(&config::base_of(config_path)),
                false,
                true,
            ),
            Vec::new(),
        )
    })
}

/// What follows the answer: the request's row in the request history (`[log] database`,
/// on the connection the request ended on, or a new one), then its log line — to the log
/// file; or, with `[log] file = false`, to stderr when the request history has no row of
/// the request (an unknown caller, a row that could not be written), and nowhere when it
/// has. A row that cannot be written is a note on the line; nothing here changes the
/// answer, which is already decided (and, where the caller allows, sent).
pub fn record(request: &Request, served: &mut Served, conns: &mut Connections, started: Instant) {
    if let Some(pending) = served.history.take() {
        // Masking reads the caller's text after the answer, outside `serve_safely`'s
        // guard: a fault there costs the row, never the log line.
        let Ok((database, entry)) = catch_unwind(AssertUnwindSafe(|| pending.finish(request)))
        else {
            served
                .notes
                .push("request not recorded: its text could not be masked".into());
            let line = log_line(request, served, Local::now(), std::process::id(), started);
            write_line(served, &line);
            return;
        };
        let written = match conns.after(&database) {
            Ok(conn) => history::write(conn, database.billing, &entry),
            Err(why) => Err(history::Unwritten {
                why,
                connection_lost: true,
            }),
        };
        // A row the server refused (its table missing, no grant) leaves the kept
        // connection as it was: only a connection that failed is dropped.
        conns.done(
            written
                .as_ref()
                .map_or_else(|e| !e.connection_lost, |()| true),
        );
        match written {
            Ok(()) => served.stored = true,
            Err(e) => served
                .notes
                .push(format!("request not recorded: {}", e.why)),
        }
    }
    if !served.to_file && served.stored {
        return;
    }
    let line = log_line(request, served, Local::now(), std::process::id(), started);
    write_line(served, &line);
}

fn write_line(served: &Served, line: &str) {
    if served.to_file {
        journal::record(&served.log_file, line);
    } else {
        journal::to_stderr(line);
    }
}

/// A card provider's word on one of our orders that did not come as a request — the
/// sweeper's answer from the provider's status API — settled exactly as a verified callback
/// is: the same [`settle`] (order looked up, amount and currency compared, a failure noted),
/// the same limits, ledger pay (exactly once by the order id, the order marked paid in the
/// pay's transaction) and hooks after a payment. Writes the one journal line a request
/// would, with `cmd=sweep`, and leaves `conns` as a request does (a connection after a
/// database error is not reused).
pub fn settle_order(
    config: &Config,
    system: &System,
    settlement: Settlement,
    conns: &mut Connections,
    now: DateTime<Local>,
) -> Outcome {
    let started = Instant::now();
    let billing = billing::of(config.database.billing);
    let mut echo = Echo {
        command: "sweep".into(),
        txn_id: settlement.order_id.clone(),
        sum: settlement.amount.to_string(),
        ..Echo::default()
    };
    let mut notes = Vec::new();
    let mut domain = Domain::default();
    let outcome = match settle(settlement, system, &config.database, conns, now) {
        Err(outcome) => outcome,
        Ok((command, order, word)) => {
            echo.account = order.account.clone();
            domain = order.domain;
            let job = Job {
                billing,
                system,
                caller: None,
                domain,
                params: &echo.params,
                hooks: &config.hooks,
                booked: Some(order.id),
                word: Some(word),
                pinned: order.subscriber_id,
                created: None,
                lifetime: None,
                one_call: config.database.procedure,
            };
            // Money already taken: today's limits are not judged again, as for a callback.
            job.run(
                &config.database,
                &command,
                Ok(()),
                Some(order.id),
                conns,
                &mut notes,
                &mut None,
            )
        }
    };
    // The callback's own words for the outcome (result and comment), so that the log reads
    // the same whichever way the word came.
    record_unrequested(config, system, echo, outcome, domain, notes, conns, started)
}

/// The one journal line of work no request asked for — the sweeper's settle of an order, a
/// statement's row — with `ip=-`, worded by `system`'s protocol as its requests would be;
/// leaves `conns` as a request does (a connection after a database error is not reused).
/// Returns the outcome.
#[allow(clippy::too_many_arguments)]
pub fn record_unrequested(
    config: &Config,
    system: &System,
    echo: Echo,
    outcome: Outcome,
    domain: Domain,
    notes: Vec<String>,
    conns: &mut Connections,
    started: Instant,
) -> Outcome {
    let reply = protocol::of(system.protocol, PAYSYS_CHECK_CGI.dialect).render(&echo, &outcome);
    let db = conns
        .node()
        .filter(|node| node.cluster || config.database.urls.len() > 1)
        .map(|node| node.address.clone());
    conns.done(!matches!(outcome, Outcome::Failed(_)));
    let served = Served {
        reply,
        outcome,
        echo,
        system: Some(system.name.clone()),
        test: false,
        domain,
        log_file: config.log.file.clone(),
        to_file: config.log.to_file,
        stored: false,
        history: None,
        debug: false,
        notes,
        db,
    };
    let request = Request {
        method: String::new(),
        remote_addr: None,
        remote_addr_text: String::new(),
        path_info: String::new(),
        query: Vec::new(),
        content_type: String::new(),
        x_sign: None,
        authorization: None,
        script_name: String::new(),
        host: String::new(),
        https: false,
        accept_language: String::new(),
        body: Ok(Vec::new()),
    };
    let line = log_line(&request, &served, Local::now(), std::process::id(), started);
    write_line(&served, &line);
    served.outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlocked() -> LedgerError {
        LedgerError::Deadlocked {
            attempts: 8,
            last: mysql::Error::MySqlError(mysql::MySqlError {
                state: "40001".into(),
                message: "Deadlock found when trying to get lock; try restarting transaction"
                    .into(),
                code: crate::db::ER_LOCK_DEADLOCK,
            }),
        }
    }

    #[test]
    fn conflicts_outlasting_the_retries_are_temporary_and_named_for_a_cluster() {
        let Outcome::Failed(Fault::DatabaseWrite(why)) = ledger_fault(deadlocked(), true) else {
            panic!("a temporary answer expected");
        };
        assert!(
            why.starts_with("cluster conflict:") && why.contains("8 times in a row"),
            "{why}"
        );
        let Outcome::Failed(Fault::DatabaseWrite(why)) = ledger_fault(deadlocked(), false) else {
            panic!("a temporary answer expected");
        };
        assert!(
            !why.contains("cluster") && why.contains("deadlock victim 8 times"),
            "{why}"
        );
    }
}
