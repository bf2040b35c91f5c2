//! EasyPay's keys: `certificate`, `private_key`, and the signed protocols' `sign` and
//! `service_id`.

use std::path::PathBuf;

use toml::Value;

use super::{string, Key, Keys, ProtocolSettings, SignHash, SERVICE_ID, SIGN};
use crate::config::ConfigError;

/// `certificate`: the file of the certificate EasySoft gave, whose key verifies requests.
pub(super) const CERTIFICATE: Key = Key::new("certificate", |v| file(v).map(drop));

/// `private_key`: the file of our key, which signs the answers.
pub(super) const PRIVATE_KEY: Key = Key::new("private_key", |v| file(v).map(drop));

/// The keys an EasyPay system may set.
const OWNS: &[Key] = &[SIGN, SERVICE_ID, CERTIFICATE, PRIVATE_KEY];

/// An RSA-signed protocol's keys (EasyPay): the payment system's certificate, whose public
/// key verifies each request, and, optionally, our private key, which signs each answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaRule {
    pub certificate: PathBuf,
    pub private_key: Option<PathBuf>,
    /// SHA-1 unless `sign = "sha256"`.
    pub hash: SignHash,
    /// `service_id = "…"`: the `ServiceId` every request must name. EasySoft signs for
    /// every provider with one key, so its signature alone does not say the request was
    /// meant for this one.
    pub service_id: Option<String>,
}

/// A file's path, not empty.
fn file(v: &Value) -> Result<String, String> {
    let path = string(v)?;
    if path.is_empty() {
        return Err("a file's path, not empty".into());
    }
    Ok(path)
}

/// An EasyPay system's [`RsaRule`], or none with `sign = "none"`.
pub(super) fn settings(keys: &Keys) -> Result<ProtocolSettings, ConfigError> {
    let hint = "sign = \"sha1\" or \"sha256\" (md5 is 24NonStop's)";
    let sign = keys.signed(OWNS, SignHash::Md5, hint)?;
    match keys.read("certificate", file)? {
        _ if sign == Some(None) => Ok(ProtocolSettings::None),
        Some(cert) => Ok(ProtocolSettings::Easypay(RsaRule {
            certificate: keys.file(&cert.value),
            private_key: keys.read("private_key", file)?.map(|k| keys.file(&k.value)),
            hash: sign.flatten().unwrap_or(SignHash::Sha1),
            service_id: keys.read("service_id", super::service_id)?.map(|v| v.value),
        })),
        None => {
            Err(keys
                .unsigned("certificate = \"etc/easypay.cer\" (the certificate EasySoft gave you)"))
        }
    }
}
