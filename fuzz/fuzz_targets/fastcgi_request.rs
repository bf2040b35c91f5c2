//! The FastCGI edge: `paysys::fastcgi::read_request` on whatever a peer may send, and
//! `fastcgi::response` read back.
//!
//! The input is the byte stream of one web-server connection, delivered in small pieces.
//! Every request read from it must respect the limits (a body of at most `MAX_BODY + 1`
//! bytes, at most `MAX_PARAMS` bytes of parameters); whatever the responder wrote back on
//! the way (management answers, refusals) must be well-formed records; and the answer to a
//! request, read back record by record, must give the same bytes.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use paysys::cgi::MAX_BODY;
use paysys::fastcgi::{read_request, response, MAX_PARAMS};

struct Conn<'a> {
    input: &'a [u8],
    chunk: usize,
    output: Vec<u8>,
}

impl Read for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Conn<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Splits `bytes` into records; every one must be complete, version 1 and 8-aligned when
/// padded. Returns (type, request id, content).
fn records(mut bytes: &[u8]) -> Vec<(u8, u16, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 8, "a cut record header");
        assert_eq!(bytes[0], 1, "version");
        let len = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        let pad = usize::from(bytes[6]);
        assert!(bytes.len() >= 8 + len + pad, "a cut record");
        out.push((
            bytes[1],
            u16::from_be_bytes([bytes[2], bytes[3]]),
            bytes[8..8 + len].to_vec(),
        ));
        bytes = &bytes[8 + len + pad..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut conn = Conn {
        input: data,
        chunk: 1 + data.first().map(|b| usize::from(*b)).unwrap_or(0) * 37,
        output: Vec::new(),
    };
    // A connection carries at most as many requests as it has bytes for.
    for _ in 0..64 {
        match read_request(&mut conn) {
            Ok(Some(r)) => {
                assert!(r.stdin.len() <= MAX_BODY + 1, "body of {}", r.stdin.len());
                let params: usize = r.params.iter().map(|(n, v)| n.len() + v.len()).sum();
                assert!(params <= MAX_PARAMS, "params of {params}");
                assert_ne!(r.id, 0, "a management id as a request");

                // The answer, read back.
                let body: Vec<u8> = r
                    .params
                    .iter()
                    .flat_map(|(n, v)| [n.clone(), v.clone()])
                    .flatten()
                    .collect();
                let back = records(&response(r.id, &body));
                let (end, rest) = back.split_last().expect("records");
                assert_eq!(end.0, 3, "END_REQUEST last");
                assert_eq!(rest.last().map(|r| (r.0, r.2.len())), Some((6, 0)));
                let stdout: Vec<u8> = rest.iter().flat_map(|r| r.2.clone()).collect();
                assert_eq!(stdout, body);
                assert!(back.iter().all(|rec| rec.1 == r.id));
            }
            Ok(None) | Err(_) => break,
        }
    }
    // What the responder wrote on its own: whole records only.
    for (kind, _, _) in records(&conn.output) {
        assert!(matches!(kind, 3 | 10 | 11), "record type {kind} written");
    }
});
