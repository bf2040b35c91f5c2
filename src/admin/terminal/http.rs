//! One HTTP(S) exchange as a terminal makes it: the request goes out exactly as built, the
//! answer comes back whatever its status, and a failure says whether asking again could
//! help.
//!
//! The client is `ureq` with rustls: pure Rust, so `paysys` stays one static executable on
//! the ISP's box, and HTTPS works without OpenSSL. Certificates are checked against the
//! Mozilla roots built in, or against `--cacert FILE` (the ISP's own CA or a self-signed
//! certificate); proxies from the environment are not used — the point is to reach the
//! endpoint the way a terminal does — and redirects are shown, not followed.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::paypro::{HttpRequest, Method};

/// How to reach the endpoint.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per request: connect, send, answer.
    pub timeout: Duration,
    /// PEM file of the certificates to trust instead of the built-in roots.
    pub cacert: Option<std::path::PathBuf>,
    /// Do not check the server's certificate at all.
    pub insecure: bool,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    /// The body as text (UTF-8, else Windows-1251, as Russian endpoints answer), at most
    /// [`BODY_MAX`] bytes of it.
    pub body: String,
    pub elapsed: Duration,
}

/// Bodies longer than this are cut: an OSMP answer is a few hundred bytes.
pub const BODY_MAX: u64 = 1 << 20;

/// Why no answer came.
#[derive(Debug, Clone)]
pub enum SendError {
    /// The endpoint could not be reached or did not answer in time: a terminal tries again.
    /// For a pay it is unknown whether the request arrived.
    NoAnswer(String),
    /// Asking again cannot help (a bad URL, a certificate that is not trusted): fix the
    /// command. Nothing reached the endpoint's program.
    Unusable(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NoAnswer(why) | SendError::Unusable(why) => f.write_str(why),
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(options: &ClientOptions) -> Result<Client, String> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &options.cacert {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&read_pem(path)?));
        }
        if options.insecure {
            tls = tls.disable_verification(true);
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(options.timeout))
            .user_agent(concat!("paysys-terminal/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// Sends `request` once and reads the whole answer.
    pub fn send(&self, request: &HttpRequest) -> Result<Reply, SendError> {
        let started = Instant::now();
        let auth = request
            .basic_auth
            .as_ref()
            .map(|(user, password)| basic_auth(user, password));
        let result = match request.method {
            Method::Get => {
                let mut r = self.agent.get(&request.url);
                if let Some(auth) = &auth {
                    r = r.header("Authorization", auth);
                }
                r.call()
            }
            Method::Post => {
                let mut r = self.agent.post(&request.url);
                if let Some(auth) = &auth {
                    r = r.header("Authorization", auth);
                }
                let content_type = request
                    .content_type
                    .as_deref()
                    .unwrap_or("application/x-www-form-urlencoded");
                r.content_type(content_type)
                    .send(request.body.as_deref().unwrap_or("").as_bytes())
            }
        };
        let mut response = result.map_err(|e| classify(&request.url, e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_MAX)
            .read_to_vec()
            .map_err(|e| classify(&request.url, e))?;
        Ok(Reply {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            content_type,
            body: crate::paypro::decode(&bytes).0,
            elapsed: started.elapsed(),
        })
    }
}

fn classify(url: &str, e: ureq::Error) -> SendError {
    use ureq::Error as E;
    match e {
        E::BadUri(why) => SendError::Unusable(format!("{url}: not a usable URL: {why}")),
        E::Http(why) => SendError::Unusable(format!("{url}: not a usable URL: {why}")),
        E::Tls(why) => SendError::Unusable(format!("TLS: {why}")),
        E::Rustls(why) => {
            let text = why.to_string();
            SendError::Unusable(format!("TLS: {text}{}", tls_hint(&format!("{why:?}"))))
        }
        E::Pem(why) => SendError::Unusable(format!("TLS: {why}")),
        E::HostNotFound => SendError::NoAnswer(format!("{url}: host not found")),
        E::ConnectionFailed => SendError::NoAnswer(format!("{url}: connection failed")),
        E::Timeout(what) => SendError::NoAnswer(format!("no answer in time ({what})")),
        // rustls reports a failed handshake (an untrusted certificate) as an I/O error of
        // kind InvalidData: asking again cannot help.
        E::Io(io)
            if io.kind() == std::io::ErrorKind::InvalidData
                && url.to_ascii_lowercase().starts_with("https://") =>
        {
            SendError::Unusable(format!("TLS: {io}{}", tls_hint(&io.to_string())))
        }
        E::Io(io) => SendError::NoAnswer(format!("{io}")),
        other => SendError::NoAnswer(other.to_string()),
    }
}

/// What to do about a certificate rustls refused, from its error's text.
fn tls_hint(error: &str) -> &'static str {
    if error.contains("UnknownIssuer") {
        " (a self-signed certificate or a private CA: trust it with --cacert FILE.pem)"
    } else if error.contains("CaUsedAsEndEntity") {
        " (the server's certificate is itself a CA certificate, as `openssl req -x509` makes \
         them by default, which TLS clients refuse even with --cacert: give the server one made \
         with -addext basicConstraints=CA:FALSE, or try with --insecure)"
    } else if error.contains("NotValidForName") {
        " (the certificate is for another name than the URL's host)"
    } else if error.contains("Expired") {
        " (the server's certificate has expired)"
    } else {
        " (--cacert FILE.pem trusts a private certificate; --insecure skips the check)"
    }
}

/// The certificates of a PEM file, for `--cacert`.
fn read_pem(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--cacert {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("--cacert {}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "--cacert {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// `Authorization: Basic …` for a login and password.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc_7617() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64("кот".as_bytes()), "0LrQvtGC");
    }
}
