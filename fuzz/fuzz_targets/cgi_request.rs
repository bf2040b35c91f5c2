//! The CGI edge: `paysys::cgi::Request::read`, `Request::form`, `Form::get`, `Response::to_bytes`.
//!
//! Input layout (NUL-separated, so that hand-written seeds stay readable and, as in a real
//! environment, no variable can contain NUL):
//!
//! ```text
//! REQUEST_METHOD \0 QUERY_STRING \0 CONTENT_LENGTH \0 CONTENT_TYPE \0 REMOTE_ADDR \0 PATH_INFO \0 stdin…
//! ```
//!
//! A variable whose piece is missing (fewer separators) is unset; an empty piece is set to
//! the empty string. Values are raw bytes (non-UTF-8 allowed). Everything after the sixth NUL
//! is stdin, NULs included. The whole input also serves as the body of a `Response`.
#![no_main]

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use paysys::cgi::{Request, Response, MAX_BODY};

const VARS: [&str; 6] = [
    "REQUEST_METHOD",
    "QUERY_STRING",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "REMOTE_ADDR",
    "PATH_INFO",
];

/// Keys the protocols read, plus the empty key.
const KEYS: [&str; 7] = [
    "command", "txn_id", "account", "sum", "txn_date", "prv_txn", "",
];

/// stdin as a pipe delivers it: in small pieces, interrupted once by a signal.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    interrupted: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut pieces = data.splitn(VARS.len() + 1, |&b| b == 0);
    let mut env: Vec<(&str, &[u8])> = Vec::new();
    for name in VARS {
        match pieces.next() {
            Some(value) => env.push((name, value)),
            None => break,
        }
    }
    let stdin: &[u8] = pieces.next().unwrap_or(&[]);
    let var = |k: &str| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| OsString::from_vec(v.to_vec()))
    };

    let mut reader = Trickle {
        data: stdin,
        chunk: 1 + stdin.len() % 7,
        interrupted: false,
    };
    let request = Request::read(var, &mut reader);

    // The environment arrives unchanged where it is kept as bytes.
    let query = var("QUERY_STRING")
        .map(OsString::into_vec)
        .unwrap_or_default();
    assert_eq!(request.query, query);
    assert!(!request.method.bytes().any(|b| b.is_ascii_lowercase()));
    if let Some(std::net::IpAddr::V6(v6)) = request.remote_addr {
        assert!(
            v6.to_ipv4_mapped().is_none(),
            "IPv4-mapped address not normalized: {v6}"
        );
    }

    // The body: never more than MAX_BODY, always exactly what CONTENT_LENGTH announced and
    // a prefix of stdin; a sane length with enough stdin is always read. Without a length,
    // a POST's body is all of stdin (up to MAX_BODY) and any other method has none.
    let post = request.method == "POST";
    let declared = var("CONTENT_LENGTH").map(|v| v.to_string_lossy().trim().to_string());
    let declared_len = declared.as_deref().and_then(|t| t.parse::<u64>().ok());
    match &request.body {
        Ok(body) => {
            assert!(body.len() <= MAX_BODY, "body of {} bytes", body.len());
            assert!(stdin.starts_with(body), "body is not what stdin held");
            match declared.as_deref() {
                None | Some("") if post => assert_eq!(body.as_slice(), stdin),
                None | Some("") => assert!(body.is_empty()),
                Some(_) => assert_eq!(Some(body.len() as u64), declared_len),
            }
        }
        Err(_) => {
            let readable = match (declared.as_deref(), declared_len) {
                (None | Some(""), _) => !post || stdin.len() <= MAX_BODY,
                (_, Some(n)) => n <= MAX_BODY as u64 && n <= stdin.len() as u64,
                (_, None) => false,
            };
            assert!(!readable, "a readable body was refused: {:?}", request.body);
        }
    }

    // The form: an unreadable body makes it unreadable; `get` agrees with the pairs.
    match request.form() {
        Err(_) => {
            let body_ok = request.body.as_ref().map(|b| b.is_empty()).unwrap_or(false);
            if body_ok {
                panic!("form refused with an empty, readable body");
            }
        }
        Ok(form) => {
            assert!(request.body.is_ok());
            let first_key = form.pairs().first().map(|(k, _)| k.clone());
            for key in KEYS.iter().copied().chain(first_key.as_deref()) {
                let values: Vec<&str> = form
                    .pairs()
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .collect();
                match form.get(key) {
                    Ok(None) => assert!(values.is_empty()),
                    Ok(Some(v)) => assert!(!values.is_empty() && values.iter().all(|x| *x == v)),
                    Err(_) => assert!(values.windows(2).any(|w| w[0] != w[1])),
                }
            }
        }
    }

    // A response: Content-Length is the body's length in bytes, and the body follows the
    // header block unchanged.
    let status = u16::from_le_bytes([
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    ]);
    for status in [200, 403, 503, status] {
        // A header value made of the input too: a line break in it must never start a
        // header of its own.
        let mut headers = paysys::cgi::Headers::default();
        headers.push(("Location", String::from_utf8_lossy(data).into_owned()));
        let response = Response {
            status,
            content_type: "text/xml; charset=utf-8",
            body: String::from_utf8_lossy(data).into_owned(),
            headers,
        };
        let bytes = response.to_bytes();
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no end of header block");
        let head = std::str::from_utf8(&bytes[..end]).expect("header is not UTF-8");
        let tail = &bytes[end + 4..];
        assert_eq!(tail, response.body.as_bytes());
        assert!(head.starts_with(&format!("Status: {status}")));
        let lengths: Vec<&str> = head
            .split("\r\n")
            .filter_map(|line| line.strip_prefix("Content-Length: "))
            .collect();
        assert_eq!(lengths, [tail.len().to_string()], "{head:?}");
        for line in head.split("\r\n") {
            assert!(
                [
                    "Status: ",
                    "Content-Type: ",
                    "Content-Length: ",
                    "Cache-Control: ",
                    "Location: "
                ]
                .iter()
                .any(|p| line.starts_with(p)),
                "a header line of the input's: {line:?}"
            );
        }
    }
});
