//! Monobank's webhook key when the config sets no `pubkey`: the copy cached under the
//! install base (`var/cache/monobank-<system>.pubkey`, the base64 text Monobank gave), and
//! `GET {api_url}/api/merchant/pubkey` when there is no copy or the copy does not verify a
//! webhook's `X-Sign` (Monobank may rotate its key; it says nothing when it does).
//!
//! Where this lives, and why. A protocol's parse stage
//! ([`crate::protocol::Protocol::parse`]) does no I/O, and [`crate::card::monobank`] is
//! pure wire code; fetching a key is I/O (a file, an HTTPS request), and a failed fetch is
//! a temporary answer (503: Monobank posts again later), which a parse cannot give — it
//! either makes a command or refuses. So the pipeline calls [`for_webhook`] for a Monobank
//! system before the parse, and hands what it resolved to the parse through
//! [`crate::protocol::ParseContext::monobank_key`]; the parse then verifies the webhook
//! with that key exactly as with a configured one. [`for_webhook`] checks the `X-Sign` too,
//! only to learn whether the cached key is still Monobank's (a failed verification is the
//! only sign of a rotation); the check that lets money move is the parse's.
//!
//! Rules: a configured `pubkey` is never overridden (nothing here runs for it); at most one
//! fetch per request, and none within [`REFETCH_AFTER`] of the last (answered 503 meanwhile,
//! so a genuine webhook comes again); an unsigned request fetches nothing; a fetched key is cached only if
//! it parses; a fetch that fails is [`Fault::Provider`], never a credit.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::card::monobank::{self, PublicKey};
use crate::card::{Error, MAX_BODY};
use crate::cgi::Request;
use crate::config::{Credentials, System};
use crate::outcome::Fault;

/// The least time between two fetches of the key (the cache file's age says when the last
/// was): a flood of forged webhooks, each failing to verify, must not become a flood of
/// requests to Monobank's API. A genuine webhook signed with a key rotated within this
/// time is answered 503, and Monobank posts it again.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// How long one fetch of the key may take, all of it (connect, TLS, answer): Monobank waits
/// for our answer to its webhook meanwhile.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the key of `system` is cached, under the install base.
pub fn cache_path(base: &Path, system: &str) -> PathBuf {
    // System names are letters, digits, `_` and `-` (the config refuses others): safe as
    // a file name.
    base.join("var/cache")
        .join(format!("monobank-{system}.pubkey"))
}

/// The key to verify this request's webhook with, for a Monobank system whose config has
/// no `pubkey`; `Ok(None)` for every other system, and for a request with no `X-Sign` or
/// no body (the parse refuses those, and nothing is fetched for them). `notes` tell the
/// log when the key was fetched or rotated.
pub fn for_webhook(
    system: &System,
    base: &Path,
    request: &Request,
    notes: &mut Vec<String>,
) -> Result<Option<PublicKey>, Fault> {
    let Some(card) = system.card() else {
        return Ok(None);
    };
    let Credentials::Monobank {
        token,
        pubkey: None,
    } = &card.credentials
    else {
        return Ok(None);
    };
    let x_sign = match request.x_sign.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => return Ok(None),
    };
    let Ok(body) = request.body.as_deref() else {
        return Ok(None);
    };
    let url = format!("{}/api/merchant/pubkey", card.api_url);
    resolve(
        &cache_path(base, &system.name),
        &url,
        |key| verifies(key, x_sign, body),
        || get(&url, token),
        notes,
    )
    .map(Some)
}

/// Whether `key` is the one the webhook was signed with. A body too large to verify is no
/// question of keys: the parse refuses it whatever the key.
fn verifies(key: &PublicKey, x_sign: &str, body: &[u8]) -> bool {
    !matches!(
        monobank::verify_webhook(key, Some(x_sign), body),
        Err(Error::Forged { .. })
    )
}

/// The cached key if it `verifies`, else the one `fetch` brings (once), cached if it parses.
fn resolve(
    cache: &Path,
    url: &str,
    verifies: impl Fn(&PublicKey) -> bool,
    fetch: impl FnOnce() -> Result<(u16, Vec<u8>), String>,
    notes: &mut Vec<String>,
) -> Result<PublicKey, Fault> {
    let cached = match read_cache(cache) {
        Ok(None) => None,
        Ok(Some(text)) => match PublicKey::parse(&text) {
            Ok(key) => Some(key),
            Err(e) => {
                notes.push(format!(
                    "Monobank's key cached in {} cannot be read ({e}): fetched again",
                    cache.display()
                ));
                None
            }
        },
        Err(why) => {
            notes.push(format!("{why}: fetched again"));
            None
        }
    };
    // No cache to date the last fetch by (var/cache not writable): this process's memory
    // spaces the fetches instead, which is what a persistent worker needs.
    if cached.as_ref().is_none_or(|key| !verifies(key)) {
        if let Some(age) = uncached_fetch_age().filter(|age| *age < REFETCH_AFTER) {
            return Err(Fault::Provider(format!(
                "Monobank's key was fetched {} s ago and could not be cached in {}; not \
                 fetched again before {} s have passed: answered 503, Monobank posts again \
                 (make var/cache writable for the web server's user)",
                age.as_secs(),
                cache.display(),
                REFETCH_AFTER.as_secs()
            )));
        }
    }
    if let Some(key) = &cached {
        if verifies(key) {
            return Ok(key.clone());
        }
        if let Some(age) = fetched_ago(cache).filter(|age| *age < REFETCH_AFTER) {
            return Err(Fault::Provider(format!(
                "the X-Sign does not verify with Monobank's key, fetched {} s ago into {}; \
                 not fetched again before {} s have passed (a forged webhook, or a key \
                 rotated just now): answered 503, Monobank posts again",
                age.as_secs(),
                cache.display(),
                REFETCH_AFTER.as_secs()
            )));
        }
    }
    let unavailable = |why: String| {
        Fault::Provider(format!(
            "Monobank's key (no pubkey in the config) could not be fetched: GET {url}: {why}; \
             check api_url and token, or set pubkey (answered 503: Monobank posts again)"
        ))
    };
    let (status, answer) = fetch().map_err(unavailable)?;
    let (text, key) = monobank::parse_pubkey_answer_text(&answer)
        .map_err(|e| unavailable(format!("HTTP {status}: {e}")))?;
    // Written again even when it is the key cached already: the file's age is when the
    // key was last fetched, which spaces the fetches.
    let stored = match write_cache(cache, &text) {
        Ok(()) => format!("cached in {}", cache.display()),
        Err(why) => {
            note_uncached_fetch();
            format!("not cached ({why}): fetched again next time, at most once a minute")
        }
    };
    let note = match &cached {
        None => format!("Monobank's public key fetched from {url}, {stored}"),
        Some(old) if *old == key => format!(
            "the cached Monobank key does not verify the X-Sign, and {url} gives the same key: \
             the webhook is not signed by Monobank"
        ),
        Some(_) => format!(
            "the cached Monobank key does not verify the X-Sign: Monobank's key has rotated; \
             the new one fetched from {url}, {stored}"
        ),
    };
    notes.push(note);
    if cached.as_ref() != Some(&key) && !verifies(&key) {
        notes.push("the X-Sign does not verify with the key Monobank gives now either".into());
    }
    Ok(key)
}

/// When this process last fetched a key it could not cache.
static UNCACHED_FETCH: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

fn note_uncached_fetch() {
    if let Ok(mut last) = UNCACHED_FETCH.lock() {
        *last = Some(std::time::Instant::now());
    }
}

fn uncached_fetch_age() -> Option<Duration> {
    UNCACHED_FETCH.lock().ok()?.map(|at| at.elapsed())
}

/// How long ago the cached key was fetched (the file's modification time); `None` when it
/// cannot be told (no file, a clock set back).
fn fetched_ago(path: &Path) -> Option<Duration> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    std::time::SystemTime::now().duration_since(modified).ok()
}

/// The cached key's text; `Ok(None)` when there is no cache yet.
fn read_cache(path: &Path) -> Result<Option<String>, String> {
    let unreadable = |e: std::io::Error| {
        format!(
            "Monobank's key cached in {} cannot be read: {e}",
            path.display()
        )
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let mut text = String::new();
    file.take(MAX_BODY as u64)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    Ok(Some(text))
}

/// Writes `text` to `path` whole or not at all (a temporary file beside it, renamed over
/// it), readable by all (0644: a public key, and the admin may want to read it).
fn write_cache(path: &Path, text: &str) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let failed = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    fs::create_dir_all(dir).map_err(|e| failed("cannot create the directory of", e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("pubkey");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        // The umask may have taken bits away: the mode is what we say.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(failed("cannot write", e));
    }
    Ok(())
}

/// `GET url` with Monobank's `X-Token`: the answer's status and body, whatever the status
/// (Monobank answers its refusals as JSON with an error status). As invoice/create and the
/// sweeper ask: redirects not followed, a bounded time, the body capped.
#[cfg(feature = "card-api")]
fn get(url: &str, token: &str) -> Result<(u16, Vec<u8>), String> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(FETCH_TIMEOUT))
        .user_agent(concat!("paysys/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut answer = agent
        .get(url)
        .header("X-Token", token)
        .call()
        .map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_BODY as u64 + 1)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

#[cfg(not(feature = "card-api"))]
fn get(_url: &str, _token: &str) -> Result<(u16, Vec<u8>), String> {
    Err("this build has no HTTP client (feature card-api)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A P-256 public key's PEM, from a fixed scalar (not Monobank's).
    fn pem(seed: u8) -> String {
        use p256::pkcs8::{EncodePublicKey as _, LineEnding};
        let secret = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        p256::PublicKey::from(secret.verifying_key())
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    fn answer(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        format!("{{\"key\":\"{b64}\"}}").into_bytes()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("paysys-pubkey-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_fetched_key_is_cached_whole_and_readable_by_all() {
        let base = dir("cache");
        let path = cache_path(&base, "mono");
        let mut notes = Vec::new();
        let fetches = Cell::new(0);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok((200, answer(&pem(7))))
        };
        let key = resolve(&path, "u", |_| true, fetch, &mut notes).unwrap();
        assert_eq!(fetches.get(), 1);
        assert!(notes[0].contains("fetched"), "{notes:?}");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(PublicKey::parse(&text).unwrap(), key);
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        // The cache serves the next request; nothing is fetched.
        let again = resolve(&path, "u", |_| true, || panic!("fetched"), &mut notes).unwrap();
        assert_eq!(again, key);
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_failed_fetch_is_a_fault_and_nothing_is_cached() {
        let base = dir("down");
        let path = cache_path(&base, "mono");
        let mut notes = Vec::new();
        let down = resolve(&path, "u", |_| true, || Err("refused".into()), &mut notes);
        assert!(matches!(down, Err(Fault::Provider(_))), "{down:?}");
        let garbage = resolve(
            &path,
            "u",
            |_| true,
            || Ok((502, b"<html>".to_vec())),
            &mut notes,
        );
        assert!(matches!(garbage, Err(Fault::Provider(_))), "{garbage:?}");
        let refused = resolve(
            &path,
            "u",
            |_| true,
            || Ok((403, br#"{"errCode":"1","errText":"forbidden"}"#.to_vec())),
            &mut notes,
        );
        let Err(Fault::Provider(why)) = refused else {
            panic!("{refused:?}")
        };
        assert!(why.contains("token"), "{why}");
        assert!(!path.exists());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn an_unreadable_cache_is_fetched_again() {
        let base = dir("broken");
        let path = cache_path(&base, "mono");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "not a key").unwrap();
        let mut notes = Vec::new();
        let fetch = || Ok((200, answer(&pem(7))));
        resolve(&path, "u", |_| true, fetch, &mut notes).unwrap();
        assert!(notes[0].contains("cannot be read"), "{notes:?}");
        assert!(PublicKey::parse(&fs::read_to_string(&path).unwrap()).is_ok());
        let _ = fs::remove_dir_all(&base);
    }

    /// Makes the cached key look fetched long ago.
    fn age(path: &Path) {
        let long_ago = std::time::SystemTime::now() - REFETCH_AFTER * 2;
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }

    #[test]
    fn a_cached_key_that_does_not_verify_is_fetched_once() {
        use base64::Engine as _;
        let base = dir("rotate");
        let path = cache_path(&base, "mono");
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        write_cache(&path, &b64(&pem(7))).unwrap();
        age(&path);
        let old = PublicKey::parse(&pem(7)).unwrap();
        let new = PublicKey::parse(&pem(8)).unwrap();
        let mut notes = Vec::new();
        let fetches = Cell::new(0);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok((200, answer(&pem(8))))
        };
        let key = resolve(&path, "u", |k| *k != old, fetch, &mut notes).unwrap();
        assert_eq!((key.clone(), fetches.get()), (new.clone(), 1));
        assert!(notes[0].contains("rotated"), "{notes:?}");
        assert_eq!(
            PublicKey::parse(&fs::read_to_string(&path).unwrap()).unwrap(),
            new
        );
        // A signature no key verifies, right after: not fetched again yet, a fault.
        let mut notes = Vec::new();
        let soon = resolve(&path, "u", |_| false, || panic!("fetched"), &mut notes);
        assert!(
            matches!(&soon, Err(Fault::Provider(why)) if why.contains("not fetched again")),
            "{soon:?}"
        );
        // Later: one fetch, which gives the key already cached.
        age(&path);
        let mut notes = Vec::new();
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok((200, answer(&pem(8))))
        };
        let key = resolve(&path, "u", |_| false, fetch, &mut notes).unwrap();
        assert_eq!((key, fetches.get()), (new, 2));
        assert!(notes[0].contains("same key"), "{notes:?}");
        let _ = fs::remove_dir_all(&base);
    }
}
