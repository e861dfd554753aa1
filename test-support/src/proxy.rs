//! An HTTP proxy in front of a real registry that injects faults by request.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fault-injecting proxy does with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Pass it to the registry.
    Forward,
    /// Answer with this status instead.
    Status(u16),
    /// Close the connection without answering (the registry went away).
    Drop,
    /// Redirect to the same URL, forever.
    RedirectLoop,
    /// A 404 with an HTML body, as a web server in front of a registry sends it.
    Html404,
    /// A 200 with this content type and body instead of the registry's.
    Serve(&'static str, fn() -> Vec<u8>),
    /// A 200 with this content type, no length, and a body that does not end.
    Endless(&'static str),
    /// Pass it to the registry, and the registry's answer back: its head at once,
    /// then its body one byte every `every` (a registry that never quite stops
    /// sending, so no read timeout fires).
    Drip {
        /// The pause before each byte of the body.
        every: Duration,
    },
    /// Answer with this status, these headers and this body (its
    /// `Content-Length` is added) instead of the registry's.
    Respond {
        /// The status code.
        status: u16,
        /// Header names and values.
        headers: Vec<(String, String)>,
        /// The body, shared between the requests it answers.
        body: Arc<[u8]>,
    },
}

/// The rule a proxy judges each request by: the request line and its number (from 0).
type Rule = dyn Fn(&str, usize) -> Fault + Send + Sync;

/// An HTTP proxy in front of a real registry that injects faults by request. It
/// handles one request per connection (it answers with `Connection: close`), so each
/// request can be judged on its own.
pub struct FaultProxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    stop: Arc<AtomicBool>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`; `rule` gets the request line and the request's
    /// number (from 0).
    pub fn start(
        upstream: &str,
        rule: impl Fn(&str, usize) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (stopped, recorded) = (stop.clone(), heads.clone());
        let (upstream, rule): (String, Arc<Rule>) = (upstream.to_string(), Arc::new(rule));
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let (upstream, rule, count) = (upstream.clone(), rule.clone(), count.clone());
                let recorded = recorded.clone();
                std::thread::spawn(move || {
                    serve_one(client, &upstream, &*rule, &count, &recorded);
                });
            }
        });
        FaultProxy { addr, stop, heads }
    }

    /// The heads of the requests seen so far (request line and headers).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the stop.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Reads one request, records its head, and answers as the rule says.
fn serve_one(
    mut client: TcpStream,
    upstream: &str,
    rule: &Rule,
    count: &AtomicUsize,
    recorded: &Mutex<Vec<String>>,
) {
    let Some((head, body)) = read_request(&mut client) else {
        return;
    };
    recorded.lock().unwrap().push(head.clone());
    let line = head.lines().next().unwrap_or("").to_string();
    let fault = rule(&line, count.fetch_add(1, Ordering::SeqCst));
    // Write errors mean the client hung up: nothing more to do for it.
    let _ = match fault {
        Fault::Drop => Ok(()),
        Fault::Status(code) => client.write_all(
            format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        Fault::RedirectLoop => {
            let path = line.split(' ').nth(1).unwrap_or("/");
            client.write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
        }
        Fault::Html404 => {
            let body = "<html><body><h1>404 Not Found</h1></body></html>";
            client.write_all(
                format!("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .as_bytes(),
            )
        }
        Fault::Serve(content_type, body) => {
            let body = body();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            client
                .write_all(head.as_bytes())
                .and_then(|()| client.write_all(&body))
        }
        Fault::Endless(content_type) => serve_endless(&mut client, content_type),
        Fault::Forward => {
            ask_upstream(upstream, &head, &body).and_then(|response| client.write_all(&response))
        }
        Fault::Drip { every } => ask_upstream(upstream, &head, &body)
            .and_then(|response| drip(&mut client, &response, every)),
        Fault::Respond {
            status,
            headers,
            body,
        } => respond(&mut client, status, &headers, &body),
    };
}

/// A 200 whose body does not end: until the client hangs up (or 1 GiB, to bound a
/// broken test).
fn serve_endless(client: &mut TcpStream, content_type: &str) -> std::io::Result<()> {
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
    client.write_all(head.as_bytes())?;
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..16 * 1024 {
        client.write_all(&chunk)?;
    }
    Ok(())
}

/// A canned answer: `status`, `headers`, and `body` with its length.
fn respond(
    client: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} Injected\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    client.write_all(head.as_bytes())?;
    client.write_all(body)
}

/// Writes `response`'s head at once and its body one byte every `every`, until
/// it is all sent or the client hangs up.
fn drip(client: &mut TcpStream, response: &[u8], every: Duration) -> std::io::Result<()> {
    let body_start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    let (head, body) = response.split_at(body_start);
    client.write_all(head)?;
    for byte in body {
        std::thread::sleep(every);
        client.write_all(std::slice::from_ref(byte))?;
        client.flush()?;
    }
    Ok(())
}

/// Passes the request to `upstream` and returns its response, both marked
/// `Connection: close` (one request per connection).
fn ask_upstream(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    let head =
        without_connection_header(head).trim_end().to_string() + "\r\nConnection: close\r\n\r\n";
    // An upstream that answers before reading it all still has its answer passed on.
    let _ = up.write_all(head.as_bytes());
    let _ = up.write_all(body);
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    // Tell the client this connection ends with the response.
    Ok(match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => {
            let (h, rest) = response.split_at(i);
            let h =
                without_connection_header(&String::from_utf8_lossy(h)) + "\r\nConnection: close";
            [h.as_bytes(), rest].concat()
        }
        None => response,
    })
}

/// A message head without its `Connection:` header lines.
fn without_connection_header(head: &str) -> String {
    head.split("\r\n")
        .filter(|h| !h.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Reads one request's head and its Content-Length body.
fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).ok()?;
    Some((head, body))
}
