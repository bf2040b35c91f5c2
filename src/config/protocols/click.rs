//! Click's keys (`protocol = "click"`): `service_id` and `secret_key`, both given in Click's
//! merchant cabinet; Payme's (`protocol = "payme"`): `key`, the merchant key from Payme's
//! business cabinet. Neither protocol works unsigned: there is no `sign = "none"`.

use toml::Value;

use super::card::SECRET_KEY;
use super::{string, Key, Keys, ProtocolSettings, ServiceSlot, SignHash, SignRule, SERVICE_ID};
use crate::config::ConfigError;

/// `key`: Payme's merchant key, which every request's `Authorization` header carries.
pub(super) const KEY: Key = Key::new("key", |v| key(v).map(drop));

/// A key as a cabinet shows it: one line, not empty, no spaces at its ends (a copied
/// line's blank would make every request fail its check).
fn key(v: &Value) -> Result<String, String> {
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

/// A Payme system's rule: the merchant key, compared with the one each request sends.
pub(super) fn payme(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    keys.only(&[KEY])?;
    let secret = keys
        .read("key", key)?
        .ok_or_else(|| keys.missing("key = \"…\" (the merchant key of Payme's cabinet)"))?;
    Ok(ProtocolSettings::Payme(SignRule {
        secret: secret.value,
        hash: SignHash::Md5,
        amount: false,
        service: ServiceSlot::Absent,
    }))
}
