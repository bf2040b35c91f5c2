//! FastCGI, the responder role: the persistent mode of the CGI executables.
//!
//! A FastCGI program is started with a *listening* socket as its standard input (Apache's
//! mod_fcgid, spawn-fcgi and systemd socket units with `StandardInput=socket` all do this),
//! accepts the web server's connections on it and reads requests as records: the CGI
//! variables as `PARAMS`, the body as `STDIN`; the answer goes back as `STDOUT` records and
//! an `END_REQUEST`. [`Listener::from_stdin`] tells the two modes apart, so one executable
//! serves both, and the rest of the crate sees the same [`crate::cgi::Request`] either way.
//!
//! What this implementation does and does not do (FastCGI 1.0 specification):
//! - one request at a time per connection (`FCGI_MPXS_CONNS=0`); a second `BEGIN_REQUEST`
//!   while one is open is answered `FCGI_CANT_MPX_CONN`, other roles `FCGI_UNKNOWN_ROLE`;
//! - `FCGI_GET_VALUES` is answered, unknown management records get `FCGI_UNKNOWN_TYPE`;
//! - the parameters are capped at [`MAX_PARAMS`] bytes (a protocol error beyond: the
//!   connection is closed), the body is kept up to [`crate::cgi::MAX_BODY`]` + 1` bytes,
//!   and at most [`MAX_DRAIN`] bytes are read in all, so a huge body costs bounded memory
//!   and is refused by the same rule as in CGI mode;
//! - the requests of a connection are read one after the other, but a connection is not
//!   tied to a worker: between requests it waits in the [`poller`] with every other idle
//!   one, so connections a web server keeps open (`fastcgi_keep_conn on`) cost a file
//!   descriptor each, not a worker;
//! - who may connect decides `REMOTE_ADDR` and `PAYSYS_CONFIG`, so only the web server may:
//!   a Unix socket is guarded by its file's permissions (the shipped set-ups all use one);
//!   a TCP listener admits exactly the addresses in `FCGI_WEB_SERVER_ADDRS` when it is set,
//!   as other FastCGI applications do, and only loopback peers when it is not
//!   ([`admits`]); a refused peer is logged and closed.

pub mod poller;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use crate::cgi::MAX_BODY;

const VERSION_1: u8 = 1;

const BEGIN_REQUEST: u8 = 1;
const ABORT_REQUEST: u8 = 2;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const GET_VALUES: u8 = 9;
const GET_VALUES_RESULT: u8 = 10;
const UNKNOWN_TYPE: u8 = 11;

const RESPONDER: u16 = 1;
const KEEP_CONN: u8 = 1;

const REQUEST_COMPLETE: u8 = 0;
const CANT_MPX_CONN: u8 = 1;
const UNKNOWN_ROLE: u8 = 3;

/// Most bytes of `PARAMS` we accept for one request. A web server sends one or two KB.
pub const MAX_PARAMS: usize = 256 * 1024;
/// Most bytes of `STDIN` we read for one request before giving up on the connection.
pub const MAX_DRAIN: usize = 16 * 1024 * 1024;
/// Largest content of one record (the length field is 16 bits).
const MAX_CONTENT: usize = 65535;

/// A CGI variable as sent: name, value.
pub type Param = (Vec<u8>, Vec<u8>);

/// One request as the web server sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FcgiRequest {
    pub id: u16,
    /// The CGI variables, in the order sent.
    pub params: Vec<Param>,
    /// The body, at most `MAX_BODY + 1` bytes of it.
    pub stdin: Vec<u8>,
    /// The web server wants to send more requests on this connection.
    pub keep_conn: bool,
}

impl FcgiRequest {
    /// The value of a CGI variable. A name sent twice takes its last value, as it would in
    /// the environment of a CGI started by fcgiwrap.
    pub fn var(&self, name: &str) -> Option<OsString> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| OsString::from_vec(v.clone()))
    }
}

/// Why a connection cannot go on.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The peer does not speak FastCGI as we understand it.
    Protocol(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "reading from the web server: {e}"),
            ReadError::Protocol(why) => write!(f, "FastCGI protocol error: {why}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

struct Header {
    kind: u8,
    id: u16,
    content: usize,
    padding: usize,
}

/// Reads a header; `Ok(None)` on a clean end of stream before its first byte.
fn read_header(r: &mut dyn Read) -> Result<Option<Header>, ReadError> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < h.len() {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(ReadError::Protocol(
                    "connection closed inside a record".into(),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if h[0] != VERSION_1 {
        return Err(ReadError::Protocol(format!(
            "version {} (expected 1)",
            h[0]
        )));
    }
    Ok(Some(Header {
        kind: h[1],
        id: u16::from_be_bytes([h[2], h[3]]),
        content: usize::from(u16::from_be_bytes([h[4], h[5]])),
        padding: usize::from(h[6]),
    }))
}

/// Appends one record (content ≤ 65535 bytes, padded to a multiple of 8) to `out`.
fn push_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    debug_assert!(content.len() <= MAX_CONTENT);
    let len = content.len().min(MAX_CONTENT);
    let padding = (8 - len % 8) % 8;
    out.extend_from_slice(&[VERSION_1, kind]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&[padding as u8, 0]);
    out.extend_from_slice(&content[..len]);
    out.extend_from_slice(&[0u8; 8][..padding]);
}

fn end_request(id: u16, app_status: u32, protocol_status: u8) -> Vec<u8> {
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&app_status.to_be_bytes());
    body[4] = protocol_status;
    let mut out = Vec::with_capacity(16);
    push_record(&mut out, END_REQUEST, id, &body);
    out
}

/// Decodes FastCGI name-value pairs.
pub fn decode_pairs(mut b: &[u8]) -> Result<Vec<Param>, String> {
    fn length(b: &mut &[u8]) -> Result<usize, String> {
        match b.first() {
            None => Err("a name-value pair is cut short".into()),
            Some(&first) if first & 0x80 == 0 => {
                *b = &b[1..];
                Ok(usize::from(first))
            }
            Some(_) if b.len() < 4 => Err("a name-value pair length is cut short".into()),
            Some(_) => {
                let n = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
                *b = &b[4..];
                usize::try_from(n).map_err(|_| "a name-value pair is too long".to_string())
            }
        }
    }
    let mut pairs = Vec::new();
    while !b.is_empty() {
        let name_len = length(&mut b)?;
        let value_len = length(&mut b)?;
        let total = name_len
            .checked_add(value_len)
            .filter(|&t| t <= b.len())
            .ok_or_else(|| "a name-value pair is longer than its record".to_string())?;
        let (pair, rest) = b.split_at(total);
        let (name, value) = pair.split_at(name_len);
        pairs.push((name.to_vec(), value.to_vec()));
        b = rest;
    }
    Ok(pairs)
}

fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// The request being assembled.
struct Open {
    id: u16,
    keep_conn: bool,
    params: Vec<u8>,
    params_done: bool,
    stdin: Vec<u8>,
    stdin_seen: usize,
    stdin_done: bool,
}

/// What the next records on a connection came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole request, to be served.
    Request(FcgiRequest),
    /// Records that left no request open (`FCGI_GET_VALUES`, an aborted request on a kept
    /// connection, the records of a refused request): the web server may send the next
    /// request whenever it likes.
    Idle,
    /// The web server closed the connection between requests, or asked for it to be closed.
    Closed,
}

/// Reads the next request on a connection, answering management records and refusing what
/// a responder cannot do on the way. `Ok(None)`: the web server closed the connection
/// between requests. (A connection that goes idle on the way is read on: this is for a
/// reader that owns the connection; a server that waits on many uses [`read_next`].)
pub fn read_request<S: Read + Write>(conn: &mut S) -> Result<Option<FcgiRequest>, ReadError> {
    loop {
        match read_next(conn)? {
            Next::Request(r) => return Ok(Some(r)),
            Next::Idle => {}
            Next::Closed => return Ok(None),
        }
    }
}

/// Reads records up to the end of the next request, or up to a point where the connection
/// is idle again, answering management records and refusing what a responder cannot do on
/// the way.
///
/// It reads exactly the bytes of the records it handles (a header, then that record's
/// content and padding) and never ahead. So when it returns, nothing of the connection is
/// buffered on our side: the connection can wait in [`poller`] for its next request and go
/// to whichever worker is free, with no bytes left behind in the one before.
pub fn read_next<S: Read + Write>(conn: &mut S) -> Result<Next, ReadError> {
    let mut open: Option<Open> = None;
    // Grown to the largest record seen, not allocated at its maximum for every request.
    let mut content = Vec::new();
    loop {
        let Some(h) = read_header(conn)? else {
            return match open {
                None => Ok(Next::Closed),
                Some(_) => Err(ReadError::Protocol(
                    "connection closed in the middle of a request".into(),
                )),
            };
        };
        content.resize(h.content + h.padding, 0);
        let body = content.as_mut_slice();
        read_exact(conn, body)?;
        let body = &body[..h.content];

        if h.id == 0 {
            // Management records.
            let mut out = Vec::new();
            if h.kind == GET_VALUES {
                let mut values = Vec::new();
                for (name, _) in decode_pairs(body).map_err(ReadError::Protocol)? {
                    let value: &[u8] = match name.as_slice() {
                        b"FCGI_MAX_CONNS" | b"FCGI_MAX_REQS" => b"1",
                        b"FCGI_MPXS_CONNS" => b"0",
                        _ => continue,
                    };
                    encode_pair(&mut values, &name, value);
                }
                push_record(&mut out, GET_VALUES_RESULT, 0, &values);
            } else {
                push_record(&mut out, UNKNOWN_TYPE, 0, &[h.kind, 0, 0, 0, 0, 0, 0, 0]);
            }
            conn.write_all(&out)?;
            if open.is_none() {
                return Ok(Next::Idle);
            }
            continue;
        }

        match h.kind {
            BEGIN_REQUEST => {
                if body.len() < 8 {
                    return Err(ReadError::Protocol(
                        "BEGIN_REQUEST shorter than 8 bytes".into(),
                    ));
                }
                let role = u16::from_be_bytes([body[0], body[1]]);
                if open.as_ref().is_some_and(|o| o.id != h.id) {
                    conn.write_all(&end_request(h.id, 0, CANT_MPX_CONN))?;
                } else if role != RESPONDER {
                    conn.write_all(&end_request(h.id, 0, UNKNOWN_ROLE))?;
                } else {
                    open = Some(Open {
                        id: h.id,
                        keep_conn: body[2] & KEEP_CONN != 0,
                        params: Vec::new(),
                        params_done: false,
                        stdin: Vec::new(),
                        stdin_seen: 0,
                        stdin_done: false,
                    });
                }
            }
            ABORT_REQUEST if open.as_ref().is_some_and(|o| o.id == h.id) => {
                let keep = open.take().is_some_and(|o| o.keep_conn);
                conn.write_all(&end_request(h.id, 0, REQUEST_COMPLETE))?;
                return Ok(if keep { Next::Idle } else { Next::Closed });
            }
            PARAMS => {
                if let Some(o) = open.as_mut().filter(|o| o.id == h.id && !o.params_done) {
                    if body.is_empty() {
                        o.params_done = true;
                    } else if o.params.len() + body.len() > MAX_PARAMS {
                        return Err(ReadError::Protocol(format!(
                            "more than {MAX_PARAMS} bytes of parameters"
                        )));
                    } else {
                        o.params.extend_from_slice(body);
                    }
                }
            }
            STDIN => {
                if let Some(o) = open.as_mut().filter(|o| o.id == h.id && !o.stdin_done) {
                    if body.is_empty() {
                        o.stdin_done = true;
                    } else {
                        o.stdin_seen += body.len();
                        let room = (MAX_BODY + 1).saturating_sub(o.stdin.len());
                        o.stdin.extend_from_slice(&body[..body.len().min(room)]);
                        if o.stdin_seen > MAX_DRAIN {
                            // Answer with what we have (the body is refused as too long
                            // anyway) and close the connection rather than read on.
                            o.stdin_done = true;
                            o.keep_conn = false;
                        }
                    }
                }
            }
            // DATA (filter role only), records of requests we refused or aborted, unknown
            // types for a request id: nothing to do.
            _ => {}
        }

        if let Some(o) = open.take_if(|o| o.params_done && o.stdin_done) {
            return Ok(Next::Request(FcgiRequest {
                id: o.id,
                params: decode_pairs(&o.params).map_err(ReadError::Protocol)?,
                stdin: o.stdin,
                keep_conn: o.keep_conn,
            }));
        }
        if open.is_none() {
            // Between requests (after a refused one's records, say): whatever comes next
            // may come much later.
            return Ok(Next::Idle);
        }
    }
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8]) -> Result<(), ReadError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            ReadError::Protocol("connection closed inside a record".into())
        }
        _ => ReadError::Io(e),
    })
}

/// The answer to request `id`: `stdout` (the CGI response, headers and body) as `STDOUT`
/// records, the closing empty one and `END_REQUEST`, in one write.
pub fn response(id: u16, stdout: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stdout.len() + 48);
    for chunk in stdout.chunks(MAX_CONTENT - MAX_CONTENT % 8) {
        push_record(&mut out, STDOUT, id, chunk);
    }
    push_record(&mut out, STDOUT, id, &[]);
    out.extend_from_slice(&end_request(id, 0, REQUEST_COMPLETE));
    out
}

/// A connection from the web server.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// What a connection that `poll` reported has to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Bytes to read: the start of a request (or of a management record).
    Data,
    /// The web server closed it (or it failed): nothing more will come.
    Closed,
    /// Nothing after all.
    Nothing,
}

impl Stream {
    /// Looks, without reading or waiting, whether the connection has bytes for us or has
    /// been closed, so that a connection the web server closed is not handed to a worker
    /// just to find that out.
    pub fn readiness(&self) -> Readiness {
        let mut byte = 0u8;
        // SAFETY: the buffer is one valid, writable byte; MSG_PEEK leaves the byte in the
        // socket for the reader, MSG_DONTWAIT makes the call return at once.
        let n = unsafe {
            libc::recv(
                self.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            1.. => Readiness::Data,
            0 => Readiness::Closed,
            _ => match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Readiness::Nothing,
                _ => Readiness::Closed,
            },
        }
    }

    /// Bounds every read and write, so that a web server that stops talking mid-request
    /// cannot hold a worker forever.
    pub fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// The listening socket the web server (or its process manager) handed us.
pub enum Listener {
    Unix(UnixListener),
    Tcp {
        listener: TcpListener,
        /// `FCGI_WEB_SERVER_ADDRS`: the only peers admitted, when set; else loopback only.
        allowed: Option<Vec<IpAddr>>,
    },
}

impl Listener {
    /// fd 0 as a listener, if it is a listening socket: the FastCGI convention. A CGI's
    /// standard input is a pipe, a file or a *connected* socket (mod_cgid), never listening.
    pub fn from_stdin() -> Option<Listener> {
        let accepting = sockopt(0, libc::SO_ACCEPTCONN)?;
        if accepting == 0 {
            return None;
        }
        let domain = sockopt(0, libc::SO_DOMAIN)?;
        // SAFETY: fd 0 is open (getsockopt just succeeded on it) and from here on only the
        // listener uses it; nothing else in the process reads standard input in this mode.
        let fd = unsafe { OwnedFd::from_raw_fd(0) };
        match domain {
            libc::AF_UNIX => Some(Listener::Unix(UnixListener::from(fd))),
            libc::AF_INET | libc::AF_INET6 => Some(Listener::Tcp {
                listener: TcpListener::from(fd),
                allowed: std::env::var("FCGI_WEB_SERVER_ADDRS")
                    .ok()
                    .and_then(|list| web_server_addrs(&list)),
            }),
            _ => None,
        }
    }

    /// A listener for tests and for whoever holds one already.
    pub fn unix(listener: UnixListener) -> Listener {
        Listener::Unix(listener)
    }

    /// Whether [`Listener::accept`] waits for a connection (`false`) or answers
    /// `WouldBlock` when none is waiting (`true`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Listener::Unix(l) => l.set_nonblocking(nonblocking),
            Listener::Tcp { listener, .. } => listener.set_nonblocking(nonblocking),
        }
    }

    /// Takes the next connection. `Ok(None)`: it came from a peer that is not admitted
    /// ([`admits`]); it has been closed and logged. The connection is blocking whatever the
    /// listener is (on Linux an accepted socket never inherits `O_NONBLOCK`, on the BSDs
    /// it does): its reader relies on timeouts, not on polling.
    pub fn accept(&self) -> io::Result<Option<Stream>> {
        match self {
            Listener::Unix(l) => {
                let (stream, _) = l.accept()?;
                stream.set_nonblocking(false)?;
                Ok(Some(Stream::Unix(stream)))
            }
            Listener::Tcp { listener, allowed } => {
                let (stream, peer) = listener.accept()?;
                if !admits(allowed.as_deref(), peer.ip()) {
                    match allowed {
                        None => log::warn!(
                            "FastCGI connection from {peer} refused: without FCGI_WEB_SERVER_ADDRS \
                             only loopback peers are admitted; set FCGI_WEB_SERVER_ADDRS to the \
                             web servers' addresses (comma-separated) to admit others"
                        ),
                        Some(_) => log::warn!(
                            "FastCGI connection from {peer} refused: not in FCGI_WEB_SERVER_ADDRS"
                        ),
                    }
                    return Ok(None);
                }
                stream.set_nonblocking(false)?;
                Ok(Some(Stream::Tcp(stream)))
            }
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp { listener, .. } => listener.as_raw_fd(),
        }
    }
}

/// Whether a TCP peer may speak FastCGI to us. Whoever may connect sets `REMOTE_ADDR` and
/// `PAYSYS_CONFIG` for the requests they send, so past this point the payment systems'
/// allow lists mean nothing: only the web server may connect. With `allowed` (the
/// addresses of `FCGI_WEB_SERVER_ADDRS`), exactly those; without, the loopback addresses
/// alone (127.0.0.0/8, ::1, and 127.x as IPv4-mapped IPv6), that is, a web server on this
/// host. A listener on a Unix socket is guarded by the socket file's permissions instead.
pub fn admits(allowed: Option<&[IpAddr]>, peer: IpAddr) -> bool {
    let peer = crate::allow::normalize(peer);
    match allowed {
        None => peer.is_loopback(),
        Some(list) => list.contains(&peer),
    }
}

/// The addresses of `FCGI_WEB_SERVER_ADDRS` (comma-separated, as other FastCGI
/// applications read it). An entry that is not an IP address is logged and left out, so
/// a typo admits less, never more. `None` for a value with no entries at all: as if unset.
fn web_server_addrs(list: &str) -> Option<Vec<IpAddr>> {
    let entries: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return None;
    }
    let mut addrs = Vec::new();
    for entry in entries {
        match crate::allow::parse_remote_addr(Some(entry)) {
            Some(ip) => addrs.push(ip),
            None => log::error!(
                "FCGI_WEB_SERVER_ADDRS: '{entry}' is not an IP address (networks and host \
                 names are not accepted); ignored, so no peer is admitted by it: write the \
                 web server's address"
            ),
        }
    }
    Some(addrs)
}

/// An integer socket option of `fd` at `SOL_SOCKET`; `None` if `fd` is not a socket.
fn sockopt(fd: i32, name: i32) -> Option<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes passed; getsockopt does not
    // keep the pointers.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A connection: what the web server sent, and what we wrote back.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn duplex(input: Vec<u8>) -> Duplex {
        Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        }
    }

    fn begin(out: &mut Vec<u8>, id: u16, role: u16, flags: u8) {
        let r = role.to_be_bytes();
        push_record(out, BEGIN_REQUEST, id, &[r[0], r[1], flags, 0, 0, 0, 0, 0]);
    }

    fn params(out: &mut Vec<u8>, id: u16, pairs: &[(&str, &str)]) {
        let mut body = Vec::new();
        for (n, v) in pairs {
            encode_pair(&mut body, n.as_bytes(), v.as_bytes());
        }
        push_record(out, PARAMS, id, &body);
        push_record(out, PARAMS, id, &[]);
    }

    fn request(id: u16, pairs: &[(&str, &str)], stdin: &[u8], flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        begin(&mut out, id, RESPONDER, flags);
        params(&mut out, id, pairs);
        for chunk in stdin.chunks(MAX_CONTENT) {
            push_record(&mut out, STDIN, id, chunk);
        }
        push_record(&mut out, STDIN, id, &[]);
        out
    }

    #[test]
    fn reads_a_request_and_its_variables() {
        let bytes = request(
            7,
            &[
                ("QUERY_STRING", "command=check"),
                ("REMOTE_ADDR", "10.0.0.1"),
            ],
            b"a=1",
            KEEP_CONN,
        );
        let mut c = duplex(bytes);
        let r = read_request(&mut c).unwrap().unwrap();
        assert_eq!(r.id, 7);
        assert!(r.keep_conn);
        assert_eq!(r.var("QUERY_STRING"), Some("command=check".into()));
        assert_eq!(r.var("REMOTE_ADDR"), Some("10.0.0.1".into()));
        assert_eq!(r.var("PATH_INFO"), None);
        assert_eq!(r.stdin, b"a=1");
        assert!(c.output.is_empty());
        // Then the web server closes the connection.
        assert!(read_request(&mut c).unwrap().is_none());
    }

    #[test]
    fn a_name_sent_twice_takes_its_last_value() {
        let bytes = request(
            1,
            &[("REMOTE_ADDR", "1.1.1.1"), ("REMOTE_ADDR", "2.2.2.2")],
            b"",
            0,
        );
        let r = read_request(&mut duplex(bytes)).unwrap().unwrap();
        assert_eq!(r.var("REMOTE_ADDR"), Some("2.2.2.2".into()));
    }

    #[test]
    fn long_names_and_values_use_four_byte_lengths() {
        let long = "x".repeat(300);
        let mut body = Vec::new();
        encode_pair(&mut body, long.as_bytes(), long.as_bytes());
        assert_eq!(body.len(), 8 + 600);
        let pairs = decode_pairs(&body).unwrap();
        assert_eq!(pairs, vec![(long.clone().into_bytes(), long.into_bytes())]);
    }

    #[test]
    fn broken_pairs_are_errors_not_panics() {
        for bad in [
            &[5u8][..],
            &[0x80, 0],
            &[3, 3, b'a'],
            &[0xff, 0xff, 0xff, 0xff, 0],
        ] {
            assert!(decode_pairs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_body_is_kept_up_to_one_byte_past_the_cgi_limit() {
        let big = vec![b'a'; MAX_BODY * 3];
        let r = read_request(&mut duplex(request(1, &[], &big, 0)))
            .unwrap()
            .unwrap();
        assert_eq!(r.stdin.len(), MAX_BODY + 1);
    }

    #[test]
    fn a_second_request_id_on_the_connection_is_refused() {
        let mut bytes = Vec::new();
        begin(&mut bytes, 1, RESPONDER, 0);
        begin(&mut bytes, 2, RESPONDER, 0);
        params(&mut bytes, 1, &[("A", "b")]);
        push_record(&mut bytes, STDIN, 1, &[]);
        let mut c = duplex(bytes);
        let r = read_request(&mut c).unwrap().unwrap();
        assert_eq!(r.id, 1);
        assert_eq!(c.output, end_request(2, 0, CANT_MPX_CONN));
    }

    #[test]
    fn other_roles_are_refused_and_the_next_request_served() {
        let mut bytes = Vec::new();
        begin(&mut bytes, 1, 2, KEEP_CONN); // FCGI_AUTHORIZER
        bytes.extend(request(2, &[("A", "b")], b"", 0));
        let mut c = duplex(bytes);
        let r = read_request(&mut c).unwrap().unwrap();
        assert_eq!(r.id, 2);
        assert_eq!(c.output, end_request(1, 0, UNKNOWN_ROLE));
    }

    #[test]
    fn get_values_is_answered() {
        let mut body = Vec::new();
        for n in ["FCGI_MPXS_CONNS", "FCGI_MAX_REQS", "OTHER"] {
            encode_pair(&mut body, n.as_bytes(), b"");
        }
        let mut bytes = Vec::new();
        push_record(&mut bytes, GET_VALUES, 0, &body);
        let mut c = duplex(bytes);
        assert!(read_request(&mut c).unwrap().is_none());
        assert_eq!(c.output[1], GET_VALUES_RESULT);
        let len = usize::from(u16::from_be_bytes([c.output[4], c.output[5]]));
        let pairs = decode_pairs(&c.output[8..8 + len]).unwrap();
        assert_eq!(
            pairs,
            vec![
                (b"FCGI_MPXS_CONNS".to_vec(), b"0".to_vec()),
                (b"FCGI_MAX_REQS".to_vec(), b"1".to_vec())
            ]
        );
    }

    #[test]
    fn an_aborted_request_is_not_returned() {
        let mut bytes = Vec::new();
        begin(&mut bytes, 1, RESPONDER, KEEP_CONN);
        push_record(&mut bytes, ABORT_REQUEST, 1, &[]);
        bytes.extend(request(3, &[("A", "b")], b"", 0));
        let mut c = duplex(bytes);
        assert_eq!(read_request(&mut c).unwrap().unwrap().id, 3);
        assert_eq!(c.output, end_request(1, 0, REQUEST_COMPLETE));
    }

    #[test]
    fn a_cut_connection_or_wrong_version_is_an_error() {
        let full = request(1, &[("A", "b")], b"body", 0);
        for cut in [3, 8, 12, full.len() - 8] {
            assert!(
                read_request(&mut duplex(full[..cut].to_vec())).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = full.clone();
        bad[0] = 2;
        assert!(read_request(&mut duplex(bad)).is_err());
    }

    #[test]
    fn too_many_parameters_are_an_error() {
        let mut bytes = Vec::new();
        begin(&mut bytes, 1, RESPONDER, 0);
        let chunk = vec![b'x'; 60000];
        for _ in 0..(MAX_PARAMS / chunk.len() + 1) {
            push_record(&mut bytes, PARAMS, 1, &chunk);
        }
        assert!(matches!(
            read_request(&mut duplex(bytes)),
            Err(ReadError::Protocol(_))
        ));
    }

    #[test]
    fn the_response_is_stdout_records_then_end_request() {
        let body = vec![b'z'; 70000];
        let out = response(9, &body);
        // Walk the records back.
        let mut c = Cursor::new(out);
        let mut stdout = Vec::new();
        let mut kinds = Vec::new();
        while let Some(h) = read_header(&mut c).unwrap() {
            assert_eq!(h.id, 9);
            assert_eq!((h.content + h.padding) % 8, 0);
            let mut b = vec![0; h.content + h.padding];
            c.read_exact(&mut b).unwrap();
            if h.kind == STDOUT {
                stdout.extend_from_slice(&b[..h.content]);
            }
            kinds.push((h.kind, h.content));
        }
        assert_eq!(stdout, body);
        assert_eq!(kinds.last(), Some(&(END_REQUEST, 8)));
        assert_eq!(kinds[kinds.len() - 2], (STDOUT, 0));
    }

    #[test]
    fn a_request_is_read_to_its_last_byte_and_no_further() {
        // What lets a kept connection wait in the poller and go to another worker: the
        // next request's bytes are all still in the connection.
        let first = request(1, &[("A", "b")], b"body", KEEP_CONN);
        let mut bytes = first.clone();
        bytes.extend(request(2, &[("C", "d")], b"", KEEP_CONN));
        let mut c = duplex(bytes);
        assert!(matches!(read_next(&mut c), Ok(Next::Request(r)) if r.id == 1));
        assert_eq!(c.input.position(), first.len() as u64);
        assert!(matches!(read_next(&mut c), Ok(Next::Request(r)) if r.id == 2));
        assert!(matches!(read_next(&mut c), Ok(Next::Closed)));
    }

    #[test]
    fn records_that_leave_no_request_open_leave_the_connection_idle() {
        let mut get_values = Vec::new();
        push_record(&mut get_values, GET_VALUES, 0, &[]);
        let mut aborted = Vec::new();
        begin(&mut aborted, 1, RESPONDER, KEEP_CONN);
        push_record(&mut aborted, ABORT_REQUEST, 1, &[]);
        let mut aborted_closing = Vec::new();
        begin(&mut aborted_closing, 1, RESPONDER, 0);
        push_record(&mut aborted_closing, ABORT_REQUEST, 1, &[]);
        let mut other_role = Vec::new();
        begin(&mut other_role, 1, 2, KEEP_CONN);
        for (bytes, expected) in [
            (get_values, Next::Idle),
            (aborted, Next::Idle),
            (aborted_closing, Next::Closed),
            (other_role, Next::Idle),
        ] {
            let len = bytes.len() as u64;
            let mut c = duplex(bytes);
            assert_eq!(read_next(&mut c).unwrap(), expected);
            assert_eq!(c.input.position(), len);
            assert!(!c.output.is_empty(), "{expected:?} is answered");
        }
    }

    #[test]
    fn tcp_peers_are_loopback_or_the_named_web_servers() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let named = [ip("10.0.0.5")];
        for (allowed, peer, admitted) in [
            (None, "10.0.0.5", false),
            (None, "192.168.1.1", false),
            (None, "::ffff:10.0.0.5", false),
            (None, "127.0.0.1", true),
            (None, "127.1.2.3", true),
            (None, "::1", true),
            (None, "::ffff:127.0.0.1", true),
            (Some(&named[..]), "10.0.0.5", true),
            (Some(&named[..]), "::ffff:10.0.0.5", true),
            (Some(&named[..]), "10.0.0.6", false),
            (Some(&named[..]), "127.0.0.1", false),
            (Some(&named[..]), "::1", false),
            (Some(&[][..]), "127.0.0.1", false),
        ] {
            assert_eq!(admits(allowed, ip(peer)), admitted, "{allowed:?} + {peer}");
        }
    }

    #[test]
    fn fcgi_web_server_addrs_is_a_list_of_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (text, expected) in [
            ("10.0.0.5", Some(vec![ip("10.0.0.5")])),
            (
                " 10.0.0.5 , ::ffff:10.0.0.6,::1",
                Some(vec![ip("10.0.0.5"), ip("10.0.0.6"), ip("::1")]),
            ),
            // Bad entries are logged and admit nobody; the good ones still count.
            ("10.0.0.0/8,10.0.0.5", Some(vec![ip("10.0.0.5")])),
            ("web1", Some(vec![])),
            // No entries at all: as if unset.
            ("", None),
            (" , ", None),
        ] {
            assert_eq!(web_server_addrs(text), expected, "{text:?}");
        }
    }

    #[test]
    fn a_pipe_is_not_a_listener() {
        // The test harness's stdin is not a listening socket.
        assert_eq!(sockopt(-1, libc::SO_ACCEPTCONN), None);
    }
}
