//! A minimal HTTP/1.1 server and client over loopback, for the provider stand-ins and for
//! the test receivers that play paysys's callback URL.
//!
//! One request per connection (`Connection: close` both ways), `Content-Length` bodies only
//! on the way in (a chunked request is refused with 411), heads and bodies capped, every
//! socket with a timeout. The client speaks only `http://` to a loopback host: nothing in
//! these tests may leave the machine.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The largest request head (request line and headers) the server reads.
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body the server reads; a larger `Content-Length` is answered 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest answer the client reads.
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// How long a socket may wait for its peer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How many redirects [`Browser`] follows before it gives up.
pub const MAX_REDIRECTS: usize = 10;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A header's value (the first, if repeated); names compare case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as form fields, in order, repeats kept; empty when it is not a form.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }

    /// A form field (the first, if repeated).
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.into())
    }

    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "application/json", body.into())
    }

    /// `303 See Other` to `location`: the browser follows it with a GET.
    pub fn see_other(location: &str) -> Response {
        let mut r = Response::text(303, format!("see {location}\n"));
        r.headers.push(("Location".into(), location.into()));
        r
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A server on a free 127.0.0.1 port: one accept thread, one thread per connection.
/// Dropping it stops the accept loop and waits for it; a connection still being served
/// finishes on its own (every socket has a timeout).
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> HttpServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || serve(conn, &*handler));
            }
        });
        HttpServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`, no final slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut conn: TcpStream, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&mut conn) {
        Ok(request) => {
            // A handler that panics (a failed assertion in a test's receiver) still answers.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&request)))
                .unwrap_or_else(|_| Response::text(500, "handler panicked\n"))
        }
        Err((status, why)) => Response::text(status, format!("{why}\n")),
    };
    let _ = write_response(&mut conn, &response);
    let _ = conn.shutdown(Shutdown::Write);
    // Drain what the peer may still send so that closing does not reset the answer.
    let mut sink = [0u8; 1024];
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    for _ in 0..64 {
        match conn.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads one request; `Err((status, why))` for what the server answers instead.
fn read_request(conn: &mut TcpStream) -> Result<Request, (u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err((400, format!("request head longer than {MAX_HEAD} bytes")));
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Err((400, "connection closed inside the request head".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err((400, format!("reading the request head: {e}"))),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| (400, "request head is not UTF-8".to_string()))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((400, format!("bad request line '{request_line}'")));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err((400, format!("bad request line '{request_line}'")));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err((400, format!("bad header line '{line}'")));
        };
        if name.is_empty() || name.contains(' ') {
            return Err((400, format!("bad header name '{name}'")));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    if header(&headers, "Transfer-Encoding").is_some() {
        return Err((411, "send a Content-Length, not Transfer-Encoding".into()));
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_str())
        .collect();
    let length = match lengths.as_slice() {
        [] => 0,
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) && one.len() < 12 => {
            one.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return Err((400, format!("bad Content-Length {lengths:?}"))),
    };
    if length > MAX_BODY {
        return Err((413, format!("body of {length} bytes is over {MAX_BODY}")));
    }
    if header(&headers, "Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        let _ = conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut body = buf[head_end + 4..].to_vec();
    if body.len() > length {
        // A second request pipelined behind this one: ignored (one request per connection).
        body.truncate(length);
    }
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        match conn.read(&mut chunk[..want]) {
            Ok(0) => return Err((400, "connection closed inside the body".into())),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err((400, format!("reading the body: {e}"))),
        }
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body,
    })
}

fn write_response(conn: &mut TcpStream, response: &Response) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response.body);
    conn.write_all(&bytes)?;
    conn.flush()
}

/// What the client got back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `http://host:port/path?query` split into the address to connect to, the `Host` header
/// and the request target. Only loopback hosts.
fn split_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}': only http:// URLs (these tests stay on loopback)"))?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let target = target.split('#').next().unwrap_or("/").to_string();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("'{url}': bad port '{p}'"))?,
        ),
        _ => (authority, 80),
    };
    let ip = match host {
        "localhost" => Ipv4Addr::LOCALHOST.into(),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("'{url}': host '{h}' is not a loopback address"))?,
    };
    if !ip.is_loopback() {
        return Err(format!("'{url}': host '{host}' is not loopback"));
    }
    Ok((SocketAddr::new(ip, port), authority.to_string(), target))
}

/// One request, `Connection: close`; the whole answer read (capped at [`MAX_ANSWER`]).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer, String> {
    let (addr, host, target) = split_url(url)?;
    let mut conn = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("{method} {url}: connect: {e}"))?;
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    conn.write_all(&bytes)
        .map_err(|e| format!("{method} {url}: write: {e}"))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                if raw.len() > MAX_ANSWER {
                    return Err(format!("{method} {url}: answer over {MAX_ANSWER} bytes"));
                }
                if is_complete(&raw) {
                    // A server that keeps the connection open despite `Connection: close`
                    // does not make us wait for its timeout.
                    break;
                }
            }
            Err(e) => return Err(format!("{method} {url}: read: {e}")),
        }
    }
    parse_answer(&raw).map_err(|e| format!("{method} {url}: {e}"))
}

/// Whether `raw` holds a whole final answer with a `Content-Length` (an answer without one
/// ends when the server closes).
fn is_complete(raw: &[u8]) -> bool {
    match parse_answer(raw) {
        Ok(answer) => answer
            .header("Content-Length")
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|len| answer.body.len() == len),
        Err(_) => false,
    }
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let mut rest = raw;
    // Skip interim answers (100 Continue).
    loop {
        let end = find_head_end(rest).ok_or("no complete answer head")?;
        let head = std::str::from_utf8(&rest[..end]).map_err(|_| "answer head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line '{status_line}'"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        let body = &rest[end + 4..];
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let body = if header(&headers, "Transfer-Encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
        {
            dechunk(body)?
        } else if let Some(len) = header(&headers, "Content-Length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len}"))?;
            body.get(..len)
                .ok_or("answer shorter than its Content-Length")?
                .to_vec()
        } else {
            body.to_vec()
        };
        return Ok(Answer {
            status,
            headers,
            body,
        });
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line unterminated")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size '{size_text}'"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("chunk cut short")?);
        body = body.get(size + 2..).ok_or("chunk cut short")?;
    }
}

pub fn get(url: &str) -> Result<Answer, String> {
    request("GET", url, &[], b"")
}

pub fn form_body<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    serde_urlencoded::to_string(pairs).expect("form fields encode")
}

pub fn post_form<K: AsRef<str>, V: AsRef<str>>(
    url: &str,
    fields: &[(K, V)],
) -> Result<Answer, String> {
    request(
        "POST",
        url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form_body(fields).as_bytes(),
    )
}

pub fn post_json(url: &str, headers: &[(&str, &str)], body: &str) -> Result<Answer, String> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request("POST", url, &all, body.as_bytes())
}

/// Where a `Location` points, from the URL that answered with it.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin_end = base
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/'))
        .map(|i| i + "http://".len())
        .unwrap_or(base.len());
    let origin = &base[..origin_end];
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = base[origin_end..].split(['?', '#']).next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    format!("{origin}{dir}{location}")
}

/// What a browser did: every URL it asked for, with the status, and the last answer.
#[derive(Debug, Clone)]
pub struct Visit {
    pub hops: Vec<(String, u16)>,
    pub last: Answer,
    /// The URL of the last answer.
    pub url: String,
}

/// A browser reduced to what the card flows need: a form POST or a GET, then redirects
/// followed (303, 302 and 301 as a GET, 307 and 308 repeating the request), at most
/// [`MAX_REDIRECTS`]. No cookies, no scripts.
pub struct Browser;

impl Browser {
    pub fn get(url: &str) -> Result<Visit, String> {
        Browser::go("GET", url, &[], Vec::new())
    }

    pub fn post_form<K: AsRef<str>, V: AsRef<str>>(
        url: &str,
        fields: &[(K, V)],
    ) -> Result<Visit, String> {
        Browser::go(
            "POST",
            url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form_body(fields).into_bytes(),
        )
    }

    fn go(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Visit, String> {
        let mut method = method.to_string();
        let mut url = url.to_string();
        let mut headers: Vec<(&str, &str)> = headers.to_vec();
        let mut body = body;
        let mut hops = Vec::new();
        for _ in 0..=MAX_REDIRECTS {
            let answer = request(&method, &url, &headers, &body)?;
            hops.push((url.clone(), answer.status));
            let location = answer.header("Location").map(str::to_string);
            match (answer.status, location) {
                (301..=303, Some(location)) => {
                    url = resolve(&url, &location);
                    method = "GET".into();
                    headers.clear();
                    body.clear();
                }
                (307 | 308, Some(location)) => url = resolve(&url, &location),
                _ => {
                    return Ok(Visit {
                        hops,
                        last: answer,
                        url,
                    })
                }
            }
        }
        Err(format!("more than {MAX_REDIRECTS} redirects: {hops:?}"))
    }
}
