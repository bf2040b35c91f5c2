//! Who is calling: the caller's address against each system's allow lists.
//!
//! The first system (in config order) whose `allow` admits the address is the caller; if
//! none does, the first whose `test_allow` admits it, in test mode (an admin's desk trying
//! a deployment, like ABillS's `PAYSYS_TEST_SYSTEM`). An endpoint may consider only some
//! systems (`osmp.cgi`: those speaking OSMP).

use std::net::IpAddr;

use crate::config::System;

/// The system a caller was identified as.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub system: &'a System,
    /// Admitted by `test_allow` (or the system has `test = true`): `txn_date=now` accepted,
    /// and the log line says `test=1`.
    pub test: bool,
}

/// The system calling from `addr`, among those `accepts` (an endpoint speaking only OSMP
/// offers only OSMP systems): the first whose `allow` admits it, else the first whose
/// `test_allow` does, in test mode. Config order decides between overlapping lists
/// (`paysys check-config` points them out).
pub fn identify(
    systems: &[System],
    addr: Option<IpAddr>,
    accepts: impl Fn(&System) -> bool,
) -> Option<Caller<'_>> {
    let addr = addr?;
    let offered = || systems.iter().filter(|s| accepts(s));
    if let Some(system) = offered().find(|s| s.allow.allows(addr)) {
        return Some(Caller {
            system,
            test: system.test,
        });
    }
    offered()
        .find(|s| s.test_allow.allows(addr))
        .map(|system| Caller { system, test: true })
}
