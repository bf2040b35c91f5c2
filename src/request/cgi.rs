//! The CGI edge: environment + stdin in, one response out.
//!
//! Nothing here can fail the process. A bad body (too long, shorter than `CONTENT_LENGTH`
//! claims, a length that is not a number) is kept as a [`BadRequest`] inside the request so
//! that the caller can still be identified and answered in its own protocol.
//!
//! # Where the body ends
//!
//! * `CONTENT_LENGTH` set (not empty): exactly that many bytes of stdin, at most
//!   [`MAX_BODY`]; fewer is a short body, refused.
//! * `CONTENT_LENGTH` absent or empty and the method is `POST`: stdin up to EOF, at most
//!   [`MAX_BODY`]; more is refused like a too-long `CONTENT_LENGTH`. This is a chunked
//!   POST (`Transfer-Encoding: chunked`): Apache's mod_cgid passes it with no
//!   `CONTENT_LENGTH`, the de-chunked body on stdin, and EOF after it (it shuts down its
//!   side of the socket); nginx reads the whole body first and passes its length, and
//!   fcgiwrap closes the pipe after the body. In FastCGI mode stdin is the `STDIN` records
//!   already collected, so EOF is the end of the bytes. A POST that has no body at all gets
//!   EOF at once from all of them.
//! * Any other method without `CONTENT_LENGTH` (a GET): no body, and stdin is not touched,
//!   since nothing promises an EOF on it.
//!
//! A body without a length cannot be checked for truncation here: should the client's
//! upload break off, the web server answers the client with an error, but the CGI sees EOF
//! after what did arrive. A terminal that sends `Content-Length` is safer.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::IpAddr;

use crate::allow;

/// Largest body we read. OSMP requests are a few hundred bytes; anything near this is not a
/// payment terminal.
pub const MAX_BODY: usize = 64 * 1024;

/// A request that cannot be read as a form: what was wrong, for the log and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// The request as the web server handed it over.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// `REMOTE_ADDR`, parsed; IPv4-mapped IPv6 is already IPv4. `None`: missing or garbage.
    pub remote_addr: Option<IpAddr>,
    /// `REMOTE_ADDR` as sent, for the log when it did not parse.
    pub remote_addr_text: String,
    pub path_info: String,
    pub query: Vec<u8>,
    pub content_type: String,
    /// The `X-Sign` header (`HTTP_X_SIGN`): Monobank's signature over the body.
    pub x_sign: Option<String>,
    /// The `Authorization` header, as the web server passes it (`HTTP_AUTHORIZATION`: the
    /// shipped nginx and Apache snippets set it): Payme's merchant key, and nothing else's.
    /// Never the caller's identity: the allow list picks the system first.
    pub authorization: Option<String>,
    /// What the subscriber's page needs to build its own address when the config has no
    /// `[page] public_url` (`SCRIPT_NAME`, `HTTP_HOST`, `HTTPS`), and to pick a language
    /// (`HTTP_ACCEPT_LANGUAGE`). Never used to identify a caller.
    pub script_name: String,
    pub host: String,
    pub https: bool,
    pub accept_language: String,
    /// The body, or why it could not be read.
    pub body: Result<Vec<u8>, BadRequest>,
}

/// Form parameters (query string and, for a form POST, the body), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes `application/x-www-form-urlencoded` bytes. Invalid UTF-8 after percent
    /// decoding becomes U+FFFD, which no domain parser accepts: a clean refusal, not a panic.
    pub fn decode(bytes: &[u8]) -> Form {
        Form(serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default())
    }

    /// The value of `key`. A key sent twice with different values is refused: which one a
    /// proxy, the web server and we would each pick is exactly what parameter-pollution
    /// tricks rely on.
    pub fn get(&self, key: &str) -> Result<Option<&str>, BadRequest> {
        let mut found: Option<&str> = None;
        for (k, v) in &self.0 {
            if k == key {
                match found {
                    Some(prev) if prev != v => {
                        return Err(BadRequest(format!(
                            "parameter '{key}' is given twice with different values"
                        )))
                    }
                    _ => found = Some(v),
                }
            }
        }
        Ok(found)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Parameters a protocol read from elsewhere than a form (an XML body's elements).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Form {
        Form(pairs)
    }
}

fn lossy(value: Option<OsString>) -> String {
    value
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Request {
    /// Reads the CGI environment through `var` and at most [`MAX_BODY`] bytes of `stdin`.
    pub fn read(var: impl Fn(&str) -> Option<OsString>, stdin: &mut dyn Read) -> Request {
        let method = lossy(var("REQUEST_METHOD")).to_ascii_uppercase();
        let remote_addr_text = lossy(var("REMOTE_ADDR"));
        let remote_addr = allow::parse_remote_addr(Some(&remote_addr_text));
        let query = var("QUERY_STRING")
            .map(|q| q.into_encoded_bytes())
            .unwrap_or_default();
        let content_length = var("CONTENT_LENGTH").map(|v| v.to_string_lossy().trim().to_string());
        let body = read_body(&method, content_length.as_deref(), stdin);
        Request {
            method,
            remote_addr,
            remote_addr_text,
            path_info: lossy(var("PATH_INFO")),
            query,
            content_type: lossy(var("CONTENT_TYPE")),
            x_sign: var("HTTP_X_SIGN").map(|v| v.to_string_lossy().into_owned()),
            authorization: var("HTTP_AUTHORIZATION").map(|v| v.to_string_lossy().into_owned()),
            script_name: lossy(var("SCRIPT_NAME")),
            host: lossy(var("HTTP_HOST")),
            https: matches!(
                lossy(var("HTTPS")).to_ascii_lowercase().as_str(),
                "on" | "1"
            ),
            accept_language: lossy(var("HTTP_ACCEPT_LANGUAGE")),
            body,
        }
    }

    /// Reads the real process environment and stdin.
    pub fn from_process() -> Request {
        Request::read(|k| std::env::var_os(k), &mut io::stdin().lock())
    }

    /// The request as received, for the log (the journal escapes it): method, query
    /// string, and up to 4 KiB of the body or why it could not be read.
    pub fn dump(&self) -> String {
        let mut text = format!("{} {}", self.method, String::from_utf8_lossy(&self.query));
        match &self.body {
            Ok(body) if !body.is_empty() => {
                text.push_str(" body=");
                text.push_str(&String::from_utf8_lossy(&body[..body.len().min(4096)]));
            }
            Ok(_) => {}
            Err(e) => {
                text.push_str(" body-error=");
                text.push_str(&e.0);
            }
        }
        text
    }

    /// The query string and, for a form POST, the body, as one form. An unreadable body
    /// makes the whole request unreadable: half a request is not something to act on.
    pub fn form(&self) -> Result<Form, BadRequest> {
        let body = self.body.as_ref().map_err(Clone::clone)?;
        let mut bytes = self.query.clone();
        let is_form = self.content_type.is_empty()
            || self
                .content_type
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded");
        if !body.is_empty() {
            if !is_form {
                return Err(BadRequest(format!(
                    "a body of type '{}' is not a form",
                    self.content_type
                )));
            }
            if !bytes.is_empty() {
                bytes.push(b'&');
            }
            bytes.extend_from_slice(body);
        }
        Ok(Form::decode(&bytes))
    }
}

/// The body, as the module docs ("Where the body ends") say. `method` is upper case.
fn read_body(
    method: &str,
    content_length: Option<&str>,
    stdin: &mut dyn Read,
) -> Result<Vec<u8>, BadRequest> {
    let len = match content_length {
        None | Some("") if method == "POST" => return read_to_eof(stdin),
        None | Some("") => return Ok(Vec::new()),
        Some(text) => match text.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return Err(BadRequest(format!(
                    "CONTENT_LENGTH '{text}' is not a length"
                )))
            }
        },
    };
    if len > MAX_BODY as u64 {
        // Not read at all: the web server discards the rest.
        return Err(BadRequest(format!(
            "body of {len} bytes is over the {MAX_BODY}-byte limit"
        )));
    }
    let mut body = Vec::with_capacity(len as usize);
    match stdin.take(len).read_to_end(&mut body) {
        Ok(n) if n as u64 == len => Ok(body),
        Ok(n) => Err(BadRequest(format!(
            "body is {n} bytes, CONTENT_LENGTH said {len}"
        ))),
        Err(e) => Err(BadRequest(format!("body could not be read: {e}"))),
    }
}

/// A body of unknown length: stdin to EOF. One byte past [`MAX_BODY`] is enough to know it
/// is too long; the rest is left unread, for the web server to discard.
fn read_to_eof(stdin: &mut dyn Read) -> Result<Vec<u8>, BadRequest> {
    let mut body = Vec::new();
    match stdin.take(MAX_BODY as u64 + 1).read_to_end(&mut body) {
        Ok(n) if n > MAX_BODY => Err(BadRequest(format!(
            "body without CONTENT_LENGTH is over the {MAX_BODY}-byte limit"
        ))),
        Ok(_) => Ok(body),
        Err(e) => Err(BadRequest(format!(
            "body without CONTENT_LENGTH could not be read: {e}"
        ))),
    }
}

/// What goes back to the web server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// More header lines (`Location`, the page's `Content-Security-Policy`, …): names are
    /// ours, values must hold no CR or LF (the page's builder makes sure).
    pub headers: Headers,
}

/// A response's further header lines (none for most answers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(&'static str, String)>);

impl Headers {
    pub fn push(&mut self, line: (&'static str, String)) {
        self.0.push(line);
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.0.iter()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl From<Vec<(&'static str, String)>> for Headers {
    fn from(lines: Vec<(&'static str, String)>) -> Headers {
        Headers(lines)
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            303 => "See Other",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "",
        };
        let mut head = format!(
            "Status: {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        for (name, value) in self.headers.iter() {
            // A value with a line break would start a header of its own: never written.
            if !value.contains(['\r', '\n']) {
                head.push_str(name);
                head.push_str(": ");
                head.push_str(value);
                head.push_str("\r\n");
            }
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }

    /// One write, so the web server never sees half a response from us.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.to_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn request(vars: &[(&str, &str)], stdin: &[u8]) -> Request {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Request::read(|k| map.get(k).cloned(), &mut &stdin[..])
    }

    #[test]
    fn get_query_becomes_a_form() {
        let r = request(
            &[
                ("REQUEST_METHOD", "GET"),
                ("QUERY_STRING", "command=check&account=59071&sum=10.25"),
                ("REMOTE_ADDR", "127.0.0.1"),
            ],
            b"",
        );
        let f = r.form().unwrap();
        assert_eq!(f.get("command").unwrap(), Some("check"));
        assert_eq!(f.get("sum").unwrap(), Some("10.25"));
        assert_eq!(f.get("txn_id").unwrap(), None);
        assert_eq!(r.remote_addr, Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn post_body_is_read_exactly() {
        let r = request(
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_LENGTH", "13"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ],
            b"command=checkEXTRA",
        );
        assert_eq!(r.form().unwrap().get("command").unwrap(), Some("check"));
    }

    #[test]
    fn body_problems_are_values() {
        let short = request(&[("CONTENT_LENGTH", "100")], b"command=pay");
        assert!(short
            .form()
            .unwrap_err()
            .0
            .contains("CONTENT_LENGTH said 100"));
        let negative = request(&[("CONTENT_LENGTH", "-1")], b"");
        assert!(negative.form().is_err());
        let huge = request(&[("CONTENT_LENGTH", "10485760")], b"x");
        assert!(huge.form().unwrap_err().0.contains("limit"));
        let xml = request(
            &[("CONTENT_LENGTH", "3"), ("CONTENT_TYPE", "text/xml")],
            b"<a/",
        );
        assert!(xml.form().is_err());
    }

    /// A reader that fails the test if it is read at all: where stdin must not be touched.
    struct Untouchable;

    impl Read for Untouchable {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("stdin was read")
        }
    }

    #[test]
    fn without_content_length_only_a_post_reads_to_eof() {
        let form = b"command=pay&txn_id=7&account=59071".to_vec();
        let full = vec![b'a'; MAX_BODY];
        let over = vec![b'a'; MAX_BODY + 1];
        // (method, CONTENT_LENGTH, stdin, the body or a word of the refusal)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            &'a [u8],
            Result<&'a [u8], &'a str>,
        );
        let cases: Vec<Case> = vec![
            ("POST", None, &form, Ok(&form)),
            ("POST", Some(""), &form, Ok(&form)),
            ("POST", Some("  "), &form, Ok(&form)),
            ("post", None, &form, Ok(&form)),
            ("POST", None, b"", Ok(b"")),
            ("POST", None, &full, Ok(&full)),
            ("POST", None, &over, Err("over the 65536-byte limit")),
            // With a length, the length still rules.
            ("POST", Some("11"), &form, Ok(b"command=pay")),
        ];
        for (method, length, stdin, expected) in cases {
            let mut vars = vec![("REQUEST_METHOD", method)];
            if let Some(l) = length {
                vars.push(("CONTENT_LENGTH", l));
            }
            let body = request(&vars, stdin).body;
            let what = format!("{method} {length:?} {} bytes", stdin.len());
            match expected {
                Ok(b) => assert_eq!(body.as_deref(), Ok(b), "{what}"),
                Err(word) => assert!(
                    body.as_ref().is_err_and(|e| e.0.contains(word)),
                    "{what}: {body:?}"
                ),
            }
        }
        // Any other method has no body without a length; its stdin may never see EOF.
        for method in ["GET", "HEAD", "PUT", ""] {
            let map = [
                ("REQUEST_METHOD", method),
                ("QUERY_STRING", "command=check"),
            ];
            let r = Request::read(
                |k| {
                    map.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| OsString::from(v))
                },
                &mut Untouchable,
            );
            assert_eq!(r.body, Ok(Vec::new()), "{method:?}");
        }
    }

    #[test]
    fn a_chunked_post_is_a_form() {
        // What Apache hands over for `Transfer-Encoding: chunked`.
        let r = request(
            &[
                ("REQUEST_METHOD", "POST"),
                ("HTTP_TRANSFER_ENCODING", "chunked"),
                ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
                ("QUERY_STRING", "prv_id=1"),
            ],
            b"command=pay&txn_id=7",
        );
        let f = r.form().unwrap();
        assert_eq!(f.get("command").unwrap(), Some("pay"));
        assert_eq!(f.get("txn_id").unwrap(), Some("7"));
        assert_eq!(f.get("prv_id").unwrap(), Some("1"));
    }

    #[test]
    fn repeated_keys_must_agree() {
        let same = Form::decode(b"txn_id=1&txn_id=1");
        assert_eq!(same.get("txn_id").unwrap(), Some("1"));
        let differ = Form::decode(b"txn_id=1&txn_id=2");
        assert!(differ.get("txn_id").is_err());
    }

    #[test]
    fn non_utf8_is_replaced_not_panicked_on() {
        let f = Form::decode(b"account=%FF%FE1&x=\xff");
        assert_eq!(f.get("account").unwrap(), Some("\u{FFFD}\u{FFFD}1"));
        let r = Request::read(
            |k| match k {
                "QUERY_STRING" => {
                    use std::os::unix::ffi::OsStringExt;
                    Some(OsString::from_vec(b"command=\xffcheck".to_vec()))
                }
                "REMOTE_ADDR" => Some(OsString::from("not an ip")),
                _ => None,
            },
            &mut &b""[..],
        );
        assert!(r.form().unwrap().get("command").unwrap().is_some());
        assert_eq!(r.remote_addr, None);
    }

    #[test]
    fn response_is_one_block_with_length() {
        let r = Response {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            body: "<a/>".into(),
            headers: Headers::default(),
        };
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with(
            "Status: 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 4\r\n"
        ));
        assert!(text.ends_with("\r\n\r\n<a/>"));
    }
}
