//! Tests of the web-server harness (tests/webserver) and of the production snippets
//! etc/apache/paysys.conf and etc/nginx/paysys.conf, with a shell CGI that echoes its
//! environment. Each test starts its own real server on a free 127.0.0.1 port; a server
//! that is not installed makes the test print "skipped: …" (an error with
//! PAYSYS_REQUIRE_WEB=1).

#[macro_use]
mod webserver;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use webserver::{Kind, Options, TempPrefix, WebServer};

/// Prints its CGI environment as KEY=value lines, then the request body (exactly
/// CONTENT_LENGTH bytes, as a CGI must read it), then tries to append to var/log.
const ECHO_CGI: &str = r#"#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
for v in REMOTE_ADDR PATH_INFO QUERY_STRING REQUEST_METHOD CONTENT_LENGTH CONTENT_TYPE \
         HTTP_X_FORWARDED_FOR PAYSYS_CONFIG PAYSYS_TEST_EXTRA REMOTE_USER HTTP_AUTHORIZATION \
         HTTP_PROXY SCRIPT_NAME GATEWAY_INTERFACE; do
    eval "printf '%s=%s\n' $v \"\$$v\""
done
printf 'USER=%s\n' "$(id -un)"
if [ -n "$CONTENT_LENGTH" ]; then
    printf 'BODY='
    head -c "$CONTENT_LENGTH"
    printf '\n'
fi
if printf '%s\n' "$REQUEST_METHOD $QUERY_STRING" >> "@PREFIX@/var/log/echo.log"; then
    printf 'LOG=ok\n'
else
    printf 'LOG=failed\n'
fi
"#;

/// Reads its stdin to EOF, as osmp.cgi does for a POST without CONTENT_LENGTH, and says
/// whether EOF came (`timeout` exits 124 when it did not within 5 s) and what was read.
const STDIN_CGI: &str = r#"#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'CONTENT_LENGTH=%s\n' "${CONTENT_LENGTH-unset}"
printf 'HTTP_TRANSFER_ENCODING=%s\n' "${HTTP_TRANSFER_ENCODING-unset}"
body=$(timeout 5 cat)
printf 'EOF=%s\nBODY=%s\n' "$?" "$body"
"#;

const SLEEP_CGI: &str =
    "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslept\\n'\n";

/// A prepared prefix with echo.cgi and sleep.cgi, and a server in front of it. Fields drop
/// in order: the server stops before the prefix is removed.
struct Fixture {
    web: WebServer,
    prefix: TempPrefix,
}

fn fixture(kind: Kind, tag: &str, opts: &Options) -> Option<Fixture> {
    let prefix = TempPrefix(webserver::temp_prefix(&format!("{tag}-{kind}")).expect("temp prefix"));
    let p = prefix.0.as_path();
    webserver::prepare_prefix(p).expect("prepare_prefix");
    let echo = ECHO_CGI.replace("@PREFIX@", p.to_str().expect("utf-8 temp dir"));
    webserver::write_cgi_script(p, "echo.cgi", &echo).expect("echo.cgi");
    webserver::write_cgi_script(p, "sleep.cgi", SLEEP_CGI).expect("sleep.cgi");
    webserver::write_cgi_script(p, "stdin.cgi", STDIN_CGI).expect("stdin.cgi");
    fs::write(p.join("cgi-bin/not-a-cgi.txt"), "plain file\n").expect("not-a-cgi.txt");
    match WebServer::start(kind, p, opts).expect("start web server") {
        Some(web) => Some(Fixture { web, prefix }),
        None => {
            let what = match kind {
                Kind::Nginx => "nginx or fcgiwrap",
                Kind::Apache => "apache2 or its mod_cgid",
            };
            eprintln!("skipped: {what} is not installed");
            None
        }
    }
}

fn vars(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn var<'a>(vars: &'a HashMap<String, String>, name: &str) -> &'a str {
    vars.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{name} missing in {vars:?}"))
}

fn config_path(prefix: &Path) -> String {
    prefix
        .join("etc/paysys.toml")
        .to_str()
        .expect("utf-8")
        .to_string()
}

fn get_query_and_path_info(kind: Kind) {
    let Some(f) = fixture(kind, "get", &Options::default()) else {
        return;
    };
    let r = f
        .web
        .get(
            "/cgi-bin/echo.cgi/3?command=check&txn_id=1&account=59071&sum=10.25",
            &[],
        )
        .expect("GET");
    assert_eq!(r.status, 200, "{r:?}\n{}", f.web.error_log());
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{r:?}"
    );
    let v = vars(&r.body);
    assert_eq!(var(&v, "PATH_INFO"), "/3");
    assert_eq!(
        var(&v, "QUERY_STRING"),
        "command=check&txn_id=1&account=59071&sum=10.25"
    );
    assert_eq!(var(&v, "REQUEST_METHOD"), "GET");
    assert_eq!(var(&v, "REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(var(&v, "SCRIPT_NAME"), "/cgi-bin/echo.cgi");
    assert_eq!(var(&v, "GATEWAY_INTERFACE"), "CGI/1.1");
    // The snippet's PAYSYS_CONFIG, with @PREFIX@ replaced.
    assert_eq!(var(&v, "PAYSYS_CONFIG"), config_path(&f.prefix.0));

    let r = f
        .web
        .get("/cgi-bin/echo.cgi?x=1", &[])
        .expect("GET without PATH_INFO");
    assert_eq!(r.status, 200, "{r:?}");
    let v = vars(&r.body);
    assert_eq!(v.get("PATH_INFO").map(String::as_str).unwrap_or(""), "");
    assert_eq!(var(&v, "QUERY_STRING"), "x=1");

    let r = f
        .web
        .get("/cgi-bin/echo.cgi/7/extra", &[])
        .expect("GET deeper PATH_INFO");
    assert_eq!(var(&vars(&r.body), "PATH_INFO"), "/7/extra");
}
both!(get_query_and_path_info);

fn post_form_body_on_stdin(kind: Kind) {
    let Some(f) = fixture(kind, "post", &Options::default()) else {
        return;
    };
    let body = "command=pay&txn_id=1234567&account=59071&sum=10.25&txn_date=20261122100001";
    let r = f
        .web
        .post_form("/cgi-bin/echo.cgi", body, &[])
        .expect("POST");
    assert_eq!(r.status, 200, "{r:?}\n{}", f.web.error_log());
    let v = vars(&r.body);
    assert_eq!(var(&v, "REQUEST_METHOD"), "POST");
    assert_eq!(var(&v, "CONTENT_LENGTH"), body.len().to_string());
    assert_eq!(var(&v, "CONTENT_TYPE"), "application/x-www-form-urlencoded");
    // vars() splits at the first '=': BODY's value is the whole body.
    assert_eq!(var(&v, "BODY"), body);
    assert_eq!(var(&v, "QUERY_STRING"), "");

    // POST to a PATH_INFO URL with a query string too (ABillS systems do that).
    let r = f
        .web
        .post_form("/cgi-bin/echo.cgi/3?a=b", "x=y", &[])
        .expect("POST");
    let v = vars(&r.body);
    assert_eq!(
        (
            var(&v, "PATH_INFO"),
            var(&v, "QUERY_STRING"),
            var(&v, "BODY")
        ),
        ("/3", "a=b", "x=y")
    );
}
both!(post_form_body_on_stdin);

/// A chunked POST reaches the CGI de-chunked on stdin, followed by EOF. osmp.cgi relies on
/// both when it reads a POST that has no CONTENT_LENGTH to EOF: without the EOF it would
/// hang until the server's timeout. Apache (mod_cgid) passes no CONTENT_LENGTH for it;
/// nginx reads the whole body first and passes its length.
fn chunked_post_body_on_stdin_then_eof(kind: Kind) {
    let Some(f) = fixture(kind, "chunked", &Options::default()) else {
        return;
    };
    let started = Instant::now();
    let r = f
        .web
        .post_chunked("/cgi-bin/stdin.cgi", &[b"command=pay&", b"txn_id=7"], &[])
        .expect("chunked POST");
    assert_eq!(r.status, 200, "{r:?}\n{}", f.web.error_log());
    let v = vars(&r.body);
    // vars() splits at the first '=': BODY's value is the whole body.
    assert_eq!(
        (var(&v, "EOF"), var(&v, "BODY")),
        ("0", "command=pay&txn_id=7"),
        "{r:?}"
    );
    let length = var(&v, "CONTENT_LENGTH");
    match kind {
        Kind::Apache => assert_eq!(
            (length, var(&v, "HTTP_TRANSFER_ENCODING")),
            ("unset", "chunked"),
            "{r:?}"
        ),
        Kind::Nginx => assert!(length == "unset" || length == "20", "{r:?}"),
    }

    // A POST with no body at all (neither Content-Length nor Transfer-Encoding): EOF at
    // once, not a CGI left waiting for a body that never comes.
    let r = f
        .web
        .request("POST", "/cgi-bin/stdin.cgi?a=1", &[], None)
        .expect("POST without a body");
    let v = vars(&r.body);
    assert_eq!((var(&v, "EOF"), var(&v, "BODY")), ("0", ""), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "EOF came late: {:?}",
        started.elapsed()
    );
}
both!(chunked_post_body_on_stdin_then_eof);

fn remote_addr_is_the_peer_not_forwarded_for(kind: Kind) {
    let Some(f) = fixture(kind, "xff", &Options::default()) else {
        return;
    };
    let r = f
        .web
        .get(
            "/cgi-bin/echo.cgi?command=check",
            &[
                ("X-Forwarded-For", "10.9.9.9"),
                ("Proxy", "http://10.9.9.9:3128"),
            ],
        )
        .expect("GET");
    assert_eq!(r.status, 200, "{r:?}");
    let v = vars(&r.body);
    assert_eq!(var(&v, "REMOTE_ADDR"), "127.0.0.1");
    // The header reaches the CGI as HTTP_X_FORWARDED_FOR; the CGI must not believe it.
    assert_eq!(var(&v, "HTTP_X_FORWARDED_FOR"), "10.9.9.9");
    // httpoxy: a client's Proxy header never becomes HTTP_PROXY.
    assert_eq!(var(&v, "HTTP_PROXY"), "");
}
both!(remote_addr_is_the_peer_not_forwarded_for);

fn basic_auth(kind: Kind) {
    let opts = Options {
        basic_auth: Some(("osmp".to_string(), "s3cret:with colon".to_string())),
        ..Options::default()
    };
    let Some(f) = fixture(kind, "auth", &opts) else {
        return;
    };
    let r = f
        .web
        .get("/cgi-bin/echo.cgi?command=check", &[])
        .expect("GET without auth");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{r:?}"
    );
    assert!(
        !r.body.contains("REMOTE_ADDR="),
        "the CGI must not run: {r:?}"
    );

    let wrong = webserver::basic_auth_header("osmp", "wrong");
    let r = f
        .web
        .get("/cgi-bin/echo.cgi", &[("Authorization", &wrong)])
        .expect("GET wrong password");
    assert_eq!(r.status, 401, "{r:?}");

    let right = webserver::basic_auth_header("osmp", "s3cret:with colon");
    let r = f
        .web
        .get("/cgi-bin/echo.cgi/3?x=1", &[("Authorization", &right)])
        .expect("GET with auth");
    assert_eq!(r.status, 200, "{r:?}\n{}", f.web.error_log());
    let v = vars(&r.body);
    assert_eq!(var(&v, "REMOTE_USER"), "osmp");
    assert_eq!(var(&v, "PATH_INFO"), "/3");
    // The password itself is not handed to the CGI.
    assert_eq!(
        v.get("HTTP_AUTHORIZATION")
            .map(String::as_str)
            .unwrap_or(""),
        ""
    );

    let r = f
        .web
        .post_form("/cgi-bin/echo.cgi", "a=1", &[("Authorization", &right)])
        .expect("POST with auth");
    assert_eq!((r.status, var(&vars(&r.body), "BODY")), (200, "a=1"));
}
both!(basic_auth);

/// Without the web server's own basic auth, the Authorization header reaches the CGI as
/// HTTP_AUTHORIZATION (Payme's merchant key).
fn authorization_reaches_the_cgi_as_http_authorization(kind: Kind) {
    {
        let Some(f) = fixture(kind, "authz", &Options::default()) else {
            return;
        };
        let key = webserver::basic_auth_header("Paycom", "k3y&x");
        let r = f
            .web
            .post_form("/cgi-bin/echo.cgi", "a=1", &[("Authorization", &key)])
            .expect("POST with Authorization");
        assert_eq!(r.status, 200, "{r:?}\n{}", f.web.error_log());
        assert_eq!(var(&vars(&r.body), "HTTP_AUTHORIZATION"), key);
        let r = f.web.get("/cgi-bin/echo.cgi", &[]).expect("GET");
        assert_eq!(var(&vars(&r.body), "HTTP_AUTHORIZATION"), "");
    }
}
both!(authorization_reaches_the_cgi_as_http_authorization);

fn extra_env_reaches_the_cgi(kind: Kind) {
    let opts = Options {
        env: vec![
            (
                "PAYSYS_CONFIG".to_string(),
                "/elsewhere/paysys.toml".to_string(),
            ),
            ("PAYSYS_TEST_EXTRA".to_string(), "hello world".to_string()),
        ],
        ..Options::default()
    };
    let Some(f) = fixture(kind, "env", &opts) else {
        return;
    };
    let r = f.web.get("/cgi-bin/echo.cgi", &[]).expect("GET");
    assert_eq!(r.status, 200, "{r:?}");
    let v = vars(&r.body);
    assert_eq!(var(&v, "PAYSYS_CONFIG"), "/elsewhere/paysys.toml");
    assert_eq!(var(&v, "PAYSYS_TEST_EXTRA"), "hello world");
}
both!(extra_env_reaches_the_cgi);

fn cgi_runs_as_worker_and_writes_var_log(kind: Kind) {
    let Some(f) = fixture(kind, "log", &Options::default()) else {
        return;
    };
    let r = f.web.get("/cgi-bin/echo.cgi?first", &[]).expect("GET");
    let v = vars(&r.body);
    assert_eq!(var(&v, "LOG"), "ok", "{r:?}");
    let running_as_root =
        fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if running_as_root.unwrap_or(false)
        && fs::read_to_string("/etc/passwd").is_ok_and(|p| p.contains("\nwww-data:"))
    {
        assert_eq!(
            var(&v, "USER"),
            "www-data",
            "as root, CGIs run as www-data like in production"
        );
    }
    f.web.get("/cgi-bin/echo.cgi?second", &[]).expect("GET");
    let log = fs::read_to_string(f.prefix.0.join("var/log/echo.log")).expect("var/log/echo.log");
    assert_eq!(log, "GET first\nGET second\n");
}
both!(cgi_runs_as_worker_and_writes_var_log);

fn unknown_paths_do_not_run_anything(kind: Kind) {
    let Some(f) = fixture(kind, "404", &Options::default()) else {
        return;
    };
    for path in [
        "/cgi-bin/missing.cgi",
        "/cgi-bin/missing.cgi/3",
        "/",
        "/cgi-bin/../etc/paysys.toml",
    ] {
        let r = f.web.get(path, &[]).expect("GET");
        assert!(matches!(r.status, 400 | 403 | 404), "{path}: {r:?}");
    }
    // A non-.cgi file in cgi-bin is never served as a file.
    let r = f.web.get("/cgi-bin/not-a-cgi.txt", &[]).expect("GET");
    assert!(!r.body.contains("plain file"), "{r:?}");
    assert_ne!(r.status, 200, "{r:?}");
}
both!(unknown_paths_do_not_run_anything);

fn requests_run_concurrently(kind: Kind) {
    let Some(f) = fixture(kind, "par", &Options::default()) else {
        return;
    };
    let started = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| f.web.get("/cgi-bin/sleep.cgi", &[]).expect("GET sleep.cgi")))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let r = h.join().expect("request thread");
                assert_eq!(r.body, "slept\n");
                r.status
            })
            .collect()
    });
    let elapsed = started.elapsed();
    assert_eq!(statuses, vec![200; 8]);
    // Eight 1-second CGIs one after the other would take 8 s.
    assert!(
        elapsed < Duration::from_secs(5),
        "8 requests took {elapsed:?}: not concurrent"
    );
}
both!(requests_run_concurrently);

#[test]
fn many_servers_at_once() {
    // Parallel instances of both kinds, each with its own port and state.
    let fixtures: Vec<Fixture> = (0..3)
        .flat_map(|i| Kind::ALL.map(|k| (i, k)))
        .filter_map(|(i, kind)| fixture(kind, &format!("many{i}"), &Options::default()))
        .collect();
    let mut ports: Vec<u16> = fixtures.iter().map(|f| f.web.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), fixtures.len());
    for f in &fixtures {
        let r = f.web.get("/cgi-bin/echo.cgi/1", &[]).expect("GET");
        assert_eq!(
            var(&vars(&r.body), "PAYSYS_CONFIG"),
            config_path(&f.prefix.0)
        );
    }
}

#[test]
fn stopping_leaves_no_process_behind() {
    for kind in Kind::ALL {
        let Some(f) = fixture(kind, "stop", &Options::default()) else {
            continue;
        };
        let port = f.web.port();
        let state = f.web.state_dir().to_path_buf();
        drop(f);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{kind} still listening on {port} after drop"
        );
        if std::env::var("PAYSYS_KEEP_WEB").as_deref() != Ok("1") {
            assert!(
                !state.exists(),
                "{kind}: state dir {} left behind",
                state.display()
            );
        }
    }
}

#[test]
fn sha1_and_base64() {
    let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(webserver::sha1(b"")),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
    assert_eq!(
        hex(webserver::sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        hex(webserver::sha1(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    assert_eq!(webserver::base64(b""), "");
    assert_eq!(webserver::base64(b"f"), "Zg==");
    assert_eq!(webserver::base64(b"fo"), "Zm8=");
    assert_eq!(webserver::base64(b"foo"), "Zm9v");
    assert_eq!(webserver::base64(b"foob"), "Zm9vYg==");
    assert_eq!(
        webserver::basic_auth_header("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    // Same as `htpasswd -nbs osmp secret`.
    assert_eq!(
        webserver::htpasswd_sha_line("osmp", "secret"),
        "osmp:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"
    );
}
