//! A Galera node's standing in its cluster: whether it can serve payments
//! ([`state`], read on every connect and before a kept connection is reused), and
//! `paysys check-db`'s report of every node with the settings payments depend on
//! ([`survey`]).

use mysql::prelude::Queryable;
use mysql::Conn;

use super::{describe_address, Node, Use};
use crate::config::DatabaseConfig;

/// Galera's `wsrep_local_state` of a node that serves clients: Synced.
const WSREP_SYNCED: &str = "4";

/// What a node says of itself (`SHOW GLOBAL STATUS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct State {
    /// `wsrep_local_state`: 4 is Synced.
    local_state: String,
    /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, Initialized, …
    comment: String,
    /// `wsrep_ready`: ON when it accepts queries.
    ready: bool,
    /// `wsrep_cluster_status`: Primary, or Non-Primary (cut off from the majority).
    status: String,
    size: u32,
}

impl State {
    /// Synced, ready, and in the Primary component: what it answers is the cluster's.
    pub(super) fn serves(&self) -> bool {
        self.local_state == WSREP_SYNCED && self.ready && self.status == "Primary"
    }

    /// Why it does not serve, and what that means for the admin.
    pub(super) fn why_not(&self) -> String {
        format!(
            "not a synced cluster member, so skipped until it is (wsrep_local_state {} {}, \
             wsrep_ready {}, wsrep_cluster_status {}): a node joining or donating catches up \
             by itself; paysys check-db shows every node",
            self.local_state,
            self.comment,
            if self.ready { "ON" } else { "OFF" },
            self.status
        )
    }
}

/// One round trip. `SHOW` does not wait for the causal barrier of `wsrep_sync_wait` 5, so
/// this answers at once even on a node that lags.
pub(super) fn state(conn: &mut Conn) -> Result<State, mysql::Error> {
    let rows: Vec<(String, String)> = conn.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', \
         'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_status', \
         'wsrep_cluster_size')",
    )?;
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(String::new(), |(_, v)| v.clone())
    };
    Ok(State {
        local_state: get("wsrep_local_state"),
        comment: get("wsrep_local_state_comment"),
        ready: get("wsrep_ready").eq_ignore_ascii_case("ON"),
        status: get("wsrep_cluster_status"),
        size: get("wsrep_cluster_size").parse().unwrap_or(0),
    })
}

/// What `paysys check-db` tells of one `[database] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSurvey {
    pub node: Node,
    /// Whether it can serve, and as what; why not otherwise.
    pub state: Result<Membership, String>,
}

/// A reachable server: plain, or a Galera node and how it stands in its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    Plain,
    Galera {
        /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, …
        state: String,
        synced: bool,
        /// `wsrep_cluster_status`: Primary, or Non-Primary (cut off from the majority).
        status: String,
        size: u32,
        /// Settings that do not suit us, one sentence each.
        problems: Vec<String>,
    },
}

/// Every `[database] url` in turn: reachable or not, plain or a cluster node, synced or
/// not, and the cluster settings payments depend on.
pub fn survey(config: &DatabaseConfig) -> Vec<NodeSurvey> {
    config
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let node = Node {
                index: i + 1,
                address: describe_address(url),
                cluster: false,
                returning: false,
            };
            let state = super::open(config, url, Use::Read).and_then(|(mut conn, session)| {
                if session.cluster {
                    membership(&mut conn, config).map_err(|e| format!("reading its state: {e}"))
                } else {
                    Ok(Membership::Plain)
                }
            });
            NodeSurvey {
                node: Node {
                    cluster: matches!(state, Ok(Membership::Galera { .. })),
                    ..node
                },
                state,
            }
        })
        .collect()
}

fn membership(conn: &mut Conn, config: &DatabaseConfig) -> Result<Membership, mysql::Error> {
    let state = state(conn)?;
    let settings: Option<(Option<String>, Option<u32>, Option<String>)> = conn.query_first(
        "SELECT @@global.binlog_format, @@global.innodb_autoinc_lock_mode, \
         @@global.wsrep_provider_options",
    )?;
    let mut problems = Vec::new();
    if let Some((binlog_format, autoinc, provider)) = settings {
        let binlog_format = binlog_format.unwrap_or_default();
        if !binlog_format.eq_ignore_ascii_case("ROW") {
            problems.push(format!(
                "binlog_format is {binlog_format}: Galera replicates rows only; set \
                 binlog_format=ROW in the [galera] section of my.cnf"
            ));
        }
        if let Some(autoinc) = autoinc.filter(|a| *a != 2) {
            problems.push(format!(
                "innodb_autoinc_lock_mode is {autoinc}: set innodb_autoinc_lock_mode=2, or \
                 concurrent payments through several nodes can deadlock on the table lock"
            ));
        }
        match causal_read_timeout(&provider.unwrap_or_default()) {
            Some(seconds) if seconds > f64::from(config.lock_timeout) => problems.push(format!(
                "repl.causal_read_timeout is {seconds} s: a node that cannot catch up keeps \
                 a status or repeat waiting that long; set it to at most lock_timeout \
                 ({} s), e.g. wsrep_provider_options=\"repl.causal_read_timeout=PT{}S\"",
                config.lock_timeout, config.lock_timeout
            )),
            _ => {}
        }
    }
    Ok(Membership::Galera {
        synced: state.serves(),
        state: state.comment,
        status: state.status,
        size: state.size,
        problems,
    })
}

/// `repl.causal_read_timeout` in seconds, from `wsrep_provider_options`
/// (`…; repl.causal_read_timeout = PT30S; …`, an ISO 8601 duration).
pub fn causal_read_timeout(provider_options: &str) -> Option<f64> {
    let value = provider_options.split(';').find_map(|item| {
        let (key, value) = item.split_once('=')?;
        (key.trim() == "repl.causal_read_timeout").then(|| value.trim().to_string())
    })?;
    iso_seconds(&value)
}

/// Seconds of an ISO 8601 duration of the kind Galera writes: `PT30S`, `PT1M30S`, `PT1.5S`,
/// `P1D`.
fn iso_seconds(text: &str) -> Option<f64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = 0.0;
    for (part, units) in [
        (date, &[('D', 86_400.0)][..]),
        (time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
            } else {
                let (_, factor) = units.iter().find(|(u, _)| *u == c)?;
                total += number.parse::<f64>().ok()? * factor;
                number.clear();
            }
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_read_timeout_is_read_from_provider_options() {
        let options = "base_dir = /var/lib/mysql/; repl.causal_read_timeout = PT30S; \
                       repl.commit_order = 3";
        assert_eq!(causal_read_timeout(options), Some(30.0));
        assert_eq!(
            causal_read_timeout("repl.causal_read_timeout = PT1M1.5S"),
            Some(61.5)
        );
        assert_eq!(
            causal_read_timeout("repl.causal_read_timeout = P1D"),
            Some(86_400.0)
        );
        assert_eq!(causal_read_timeout("repl.commit_order = 3"), None);
        assert_eq!(causal_read_timeout("repl.causal_read_timeout = 30"), None);
    }
}
