//! Click's keys (`protocol = "click"`): `service_id` and `secret_key`, both given in Click's
//! merchant cabinet. Click does not work unsigned: there is no `sign = "none"`.

use toml::Value;

use super::card::SECRET_KEY;
use super::{string, Keys, ProtocolSettings, ServiceSlot, SignHash, SignRule, SERVICE_ID};
use crate::config::ConfigError;

/// A key as a cabinet shows it: one line, not empty, no spaces at its ends (a copied
/// line's blank would make every request fail its check).
pub(super) fn key(v: &Value) -> Result<String, String> {
    let k = string(v)?;
    if k.is_empty() || k.trim() != k || k.chars().any(char::is_control) {
        return Err(
            "the key the payment system gave you: one line, not empty, no \
                    spaces around it"
                .into(),
        );
    }
    Ok(k)
}

/// A Click system's rule: `sign_string` is MD5 with `secret_key`, for the one
/// `service_id` Click gave.
pub(super) fn click(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    keys.only(&[SERVICE_ID, SECRET_KEY])?;
    let secret = keys
        .read("secret_key", key)?
        .ok_or_else(|| keys.missing("secret_key = \"…\" (Click's SECRET_KEY)"))?;
    let service = keys
        .read("service_id", super::service_id)?
        .ok_or_else(|| keys.missing("service_id = \"…\" (Click's service_id)"))?;
    Ok(ProtocolSettings::Click(SignRule {
        secret: secret.value,
        hash: SignHash::Md5,
        amount: true,
        service: ServiceSlot::Fixed(service.value),
    }))
}
