//! The test as a web server in front of the persistent (FastCGI) mode: the real executable
//! started with a listening socket as its standard input, as mod_fcgid, spawn-fcgi and
//! systemd do, and the records of a request written and read by hand.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Answer, Site};

/// The executable serving FastCGI on a socket of its own; killed on drop.
pub struct Responder {
    pub child: Child,
    pub socket: PathBuf,
    pub stderr: PathBuf,
}

impl Responder {
    pub fn start(site: &Site, workers: usize) -> Responder {
        let listener = UnixListener::bind(site.base.join("osmp.sock")).expect("bind socket");
        Responder::start_on(site, workers, OwnedFd::from(listener), &[])
    }

    /// The executable with `listener` as its standard input and `env` added to its
    /// environment. [`Responder::connect`] reaches it only when `listener` is the Unix
    /// socket `osmp.sock` in the site's base, as [`Responder::start`] binds it.
    pub fn start_on(
        site: &Site,
        workers: usize,
        listener: OwnedFd,
        env: &[(&str, &str)],
    ) -> Responder {
        Responder::start_exe(super::osmp_exe(), site, workers, listener, env)
    }

    /// [`Responder::start_on`] for the executable `exe`.
    pub fn start_exe(
        exe: &str,
        site: &Site,
        workers: usize,
        listener: OwnedFd,
        env: &[(&str, &str)],
    ) -> Responder {
        let socket = site.base.join("osmp.sock");
        let stderr = site.base.join("osmp.stderr");
        let child = Command::new(exe)
            .env_clear()
            .env("PAYSYS_CONFIG", site.config_path())
            .env("PAYSYS_WORKERS", workers.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::from(listener))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn osmp");
        Responder {
            child,
            socket,
            stderr,
        }
    }

    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// One request on a connection of its own, from 127.0.0.1.
    pub fn get(&self, query: &str) -> Answer {
        self.request(&[("REQUEST_METHOD", "GET"), ("QUERY_STRING", query)], b"")
    }

    pub fn request(&self, vars: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut s = self.connect();
        send(&mut s, 1, vars, body, false);
        let answer = receive(&mut s, 1);
        // Not keeping the connection: the responder closes it.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("read to end");
        assert!(rest.is_empty(), "bytes after END_REQUEST: {rest:?}");
        answer
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    assert!(content.len() <= 65535);
    out.extend_from_slice(&[1, kind]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(content);
}

pub fn pair(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
        }
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
}

/// A request as nginx sends it: BEGIN_REQUEST, PARAMS, STDIN. REMOTE_ADDR defaults to
/// 127.0.0.1 unless `vars` names it.
pub fn send(s: &mut impl Write, id: u16, vars: &[(&str, &str)], body: &[u8], keep: bool) {
    let mut out = Vec::new();
    record(&mut out, 1, id, &[0, 1, u8::from(keep), 0, 0, 0, 0, 0]);
    let mut params = Vec::new();
    pair(&mut params, "GATEWAY_INTERFACE", b"CGI/1.1");
    if !vars.iter().any(|(k, _)| *k == "REMOTE_ADDR") {
        pair(&mut params, "REMOTE_ADDR", b"127.0.0.1");
    }
    let length = body.len().to_string();
    if !body.is_empty() {
        pair(&mut params, "CONTENT_LENGTH", length.as_bytes());
        pair(
            &mut params,
            "CONTENT_TYPE",
            b"application/x-www-form-urlencoded",
        );
    }
    for (k, v) in vars {
        pair(&mut params, k, v.as_bytes());
    }
    record(&mut out, 4, id, &params);
    record(&mut out, 4, id, &[]);
    for chunk in body.chunks(65535) {
        record(&mut out, 5, id, chunk);
    }
    record(&mut out, 5, id, &[]);
    // A body the responder refuses early may meet a closed socket: that is its right.
    let _ = s.write_all(&out);
}

/// Reads STDOUT records up to END_REQUEST and parses them as a CGI answer.
pub fn receive(s: &mut impl Read, id: u16) -> Answer {
    let mut stdout = Vec::new();
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h)
            .expect("record header (no answer within the read timeout?)");
        assert_eq!(h[0], 1, "version");
        assert_eq!(u16::from_be_bytes([h[2], h[3]]), id, "request id");
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let mut content = vec![0u8; len + usize::from(h[6])];
        s.read_exact(&mut content).expect("record content");
        match h[1] {
            6 => stdout.extend_from_slice(&content[..len]),
            3 => {
                assert_eq!(&content[..5], &[0, 0, 0, 0, 0], "END_REQUEST status");
                return Answer::parse(Some(0), &stdout, b"");
            }
            other => panic!("unexpected record type {other}"),
        }
    }
}
