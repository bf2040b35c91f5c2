//! Payme's keys (`protocol = "payme"`): `key`, the cashbox's key from Payme's business
//! cabinet. Payme does not work without it: there is no `sign = "none"`.

use super::click::key;
use super::{Key, Keys, ProtocolSettings, ServiceSlot, SignHash, SignRule};
use crate::config::ConfigError;

/// `key`: Payme's merchant key, which every request's `Authorization` header carries.
pub(super) const KEY: Key = Key::new("key", |v| key(v).map(drop));

/// A Payme system's rule: the merchant key, compared with the one each request sends.
pub(super) fn settings(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
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
