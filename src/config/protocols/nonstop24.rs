//! 24NonStop's keys (also 2click's): `secret`, `sign`, `sign_amount`, `service_id`,
//! `sign_service_id`.

use toml::Value;

use super::{boolean, string, Key, Keys, ProtocolSettings, SignHash, SERVICE_ID, SIGN};
use crate::config::{ConfigError, Set};

/// `secret`: the key the payment system gave, which every `SIGN` hashes.
pub(super) const SECRET: Key = Key::new("secret", |v| secret(v).map(drop));

/// `sign_amount = true`: a pay's `SIGN` covers `PAY_AMOUNT` (2click 2.30).
pub(super) const SIGN_AMOUNT: Key = Key::new("sign_amount", |v| boolean(v).map(drop));

/// `sign_service_id = false`: the `SIGN` has no `SERVICE_ID` slot (24NonStop 2.10).
pub(super) const SIGN_SERVICE_ID: Key = Key::new("sign_service_id", |v| boolean(v).map(drop));

/// The keys a 24NonStop system may set.
const OWNS: &[Key] = &[SECRET, SIGN, SIGN_AMOUNT, SERVICE_ID, SIGN_SERVICE_ID];

/// A signed protocol's rule: the shared secret, the hash, (24NonStop) whether a pay's
/// signature covers `PAY_AMOUNT` (2click 2.30) or not (24NonStop 2.20), and what fills
/// its `SERVICE_ID` slot.
#[derive(Clone, PartialEq, Eq)]
pub struct SignRule {
    pub secret: String,
    pub hash: SignHash,
    pub amount: bool,
    pub service: ServiceSlot,
}

/// 24NonStop's `SERVICE_ID` slot in the signed text. The config fixes it, never the request:
/// were it in only when a request carries `SERVICE_ID`, one `SIGN` would sign two requests
/// (`4_1_Internet_G` is also `PAY_ID=Internet_G` without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSlot {
    /// No `service_id` set (24NonStop 2.20 and later, 2click; the default): the slot holds
    /// the request's `SERVICE_ID`, which must be sent.
    Sent,
    /// `service_id = "…"`: the slot always holds this value; a request's `SERVICE_ID`, if
    /// sent, must be exactly it.
    Fixed(String),
    /// `sign_service_id = false` (24NonStop 2.10): no slot; a request that carries
    /// `SERVICE_ID` is refused, since its `SIGN` cannot cover it.
    Absent,
}

impl std::fmt::Debug for SignRule {
    // The secret stays out of every debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRule")
            .field("secret", &"***")
            .field("hash", &self.hash)
            .field("amount", &self.amount)
            .field("service", &self.service)
            .finish()
    }
}

fn secret(v: &Value) -> Result<String, String> {
    let secret = string(v)?;
    if secret.is_empty() || secret.chars().any(char::is_control) {
        return Err("the key the payment system gave you: one line, not empty".into());
    }
    Ok(secret)
}

/// A 24NonStop system's [`SignRule`], or none with `sign = "none"`.
pub(super) fn settings(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    let hint = "sign = \"md5\" or \"sha1\" (sha256 is EasyPay's)";
    let sign = keys.signed(OWNS, SignHash::Sha256, hint)?;
    // The SERVICE_ID slot: fixed here, never by what a request carries.
    let service_id = keys.read("service_id", super::service_id)?;
    let signs_service = keys.read("sign_service_id", boolean)?;
    let service = match (service_id, signs_service) {
        (Some(id), Some(Set { value: false, .. })) => {
            return Err(ConfigError::Invalid {
                path: id.path,
                line: Some(id.line),
                why: format!(
                    "system '{}': service_id and sign_service_id = false: a \
                     SIGN without a SERVICE_ID slot (24NonStop 2.10) signs no \
                     service id; keep one of the two",
                    keys.system
                ),
            })
        }
        (Some(id), _) => ServiceSlot::Fixed(id.value),
        (None, Some(Set { value: false, .. })) => ServiceSlot::Absent,
        (None, _) => ServiceSlot::Sent,
    };
    match keys.read("secret", secret)? {
        _ if sign == Some(None) => Ok(ProtocolSettings::None),
        Some(secret) => Ok(ProtocolSettings::Nonstop24(SignRule {
            secret: secret.value,
            hash: sign.flatten().unwrap_or(SignHash::Md5),
            amount: keys.read("sign_amount", boolean)?.is_some_and(|a| a.value),
            service,
        })),
        None => Err(keys.unsigned("secret = \"…\" (the key the payment system gave you)")),
    }
}
