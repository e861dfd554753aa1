//! Syslog: RFC 5424 messages over UDP (RFC 5426), TCP with octet counting
//! (RFC 6587) or TLS (RFC 5425, octet counting over TLS 1.2/1.3, rustls).
//!
//! A TLS receiver is checked against the CA file given (`--syslog-ca`), or the
//! system's roots when none is; a client certificate (`--syslog-cert`,
//! `--syslog-key`) serves receivers that authenticate senders (rsyslog's
//! `x509/certvalid`). Everything is read and checked when the output is built,
//! so a bad file stops the agent at start, not at the first alert.
//!
//! Delivery is at least once: a batch that fails part way is sent again whole.
//! Syslog has no acknowledgement, so a receiver that takes the connection and
//! then drops the messages without a TLS alert (rather than refusing the
//! handshake) cannot be told apart from one that kept them.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use imprint_engine::Alert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// How long a connection or a write may take before the batch is retried.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS receiver has to refuse us after the batch was written.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// RFC 5424's APP-NAME of every message.
const APP_NAME: &str = "imprint-agent";
/// RFC 5424's bounds on HOSTNAME and MSGID, in characters (printable US-ASCII).
const HOSTNAME_MAX: usize = 255;
const MSGID_MAX: usize = 32;

/// An RFC 5424 syslog message for an alert (facility security/authorization, 4).
///
/// What an alert says comes from the attacked container (a file named
/// `x\n<13>1 … forged`), so no character of it reaches the wire that could end
/// a line or mislead a reader: in MSG and in structured-data values every
/// control character is escaped (the form is `push_escaped`'s), and HOSTNAME and MSGID are
/// printable US-ASCII within their lengths (anything else becomes `_`).
pub fn syslog_message(alert: &Alert, host: &str) -> String {
    let severity = match alert.severity {
        imprint_engine::Severity::Critical => 2,
        imprint_engine::Severity::High => 3,
        imprint_engine::Severity::Medium => 4,
        imprint_engine::Severity::Low => 5,
    };
    let pid = alert.pid.to_string();
    let image = alert.image_digest.as_ref().map_or("", |d| d.as_str());
    let mut data = String::from("[imprint@32473");
    for (name, value) in [
        ("rule", Some(alert.rule.as_str())),
        ("container", Some(alert.container_id.as_str())),
        ("image", Some(image)),
        ("pid", Some(pid.as_str())),
        ("subject", Some(alert.subject.as_str())),
        ("comm", alert.comm.as_deref()),
    ] {
        if let Some(value) = value {
            data.push_str(&format!(" {name}=\""));
            for c in value.chars() {
                // RFC 5424 6.3.3: `"`, `\` and `]` are escaped in a PARAM-VALUE.
                if matches!(c, '"' | ']') {
                    data.push('\\');
                }
                push_escaped(&mut data, c);
            }
            data.push('"');
        }
    }
    data.push(']');
    let mut message = String::with_capacity(alert.message.len());
    for c in alert.message.chars() {
        push_escaped(&mut message, c);
    }
    format!(
        "<{}>1 {} {} {APP_NAME} - {} {data} {message}",
        4 * 8 + severity,
        timestamp(alert.time),
        header_field(host, HOSTNAME_MAX),
        header_field(&alert.rule, MSGID_MAX),
    )
}

/// Writes `c` as a message carries it. The escape form:
///
/// - `\` as `\\`, so every other escape is unambiguous on the wire;
/// - newline, carriage return and tab as `\n`, `\r`, `\t`;
/// - other C0 controls and DEL as `\xNN` (two lower-case hex digits);
/// - C1 controls (U+0080–U+009F), the line and paragraph separators
///   (U+2028, U+2029), the bidirectional controls (U+200E, U+200F,
///   U+202A–U+202E, U+2066–U+2069) and U+FEFF (a BOM) as `\u{NNNN}`.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        '\u{80}'..='\u{9f}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}' => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// A header field (HOSTNAME, MSGID): printable US-ASCII (`!` to `~`) only, the
/// rest as `_`, at most `max` characters; nothing is the NILVALUE `-`.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if field.is_empty() { "-".into() } else { field }
}

/// RFC 5424's TIMESTAMP: RFC 3339 in UTC, at most six fractional digits.
fn timestamp(time: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(time.as_microsecond()).unwrap_or(time)
}

/// TLS files for a `tls://` receiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFiles {
    /// PEM CA certificates the receiver's chain must end in (default: system roots).
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain, for receivers that authenticate senders.
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key: Option<PathBuf>,
}

/// Why a syslog output cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// The URL is not `udp://`, `tcp://` or `tls://HOST:PORT` (shown redacted:
    /// a mistaken URL may carry credentials).
    #[error("{:?}: expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT", imprint_oci::redact::redact_url(.0))]
    Url(String),
    /// TLS files given for a transport without TLS.
    #[error("{0:?}: a CA, certificate or key is only used with tls://")]
    TlsFilesWithoutTls(String),
    /// A certificate without its key, or the other way round.
    #[error("a syslog client certificate needs its key, and a key its certificate")]
    HalfAClientIdentity,
    /// A file cannot be read, or holds no usable PEM.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a batch did not (all) reach the syslog receiver.
#[derive(Debug, thiserror::Error)]
pub enum SyslogSendError {
    /// Resolving, connecting, writing or closing failed.
    #[error("{url}: {source}")]
    Io {
        /// The receiver's URL.
        url: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The receiver's name resolves to no address.
    #[error("{url}: the name resolves to no address")]
    NoAddress {
        /// The receiver's URL.
        url: String,
    },
    /// rustls could not start a TLS connection.
    #[error("{url}: {source}")]
    Tls {
        /// The receiver's URL.
        url: String,
        /// rustls's error.
        source: rustls::Error,
    },
}

/// A syslog receiver.
#[derive(Clone)]
pub struct SyslogTarget {
    url: String,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Udp(String),
    Tcp(String),
    Tls {
        address: String,
        server_name: ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
    },
}

impl std::fmt::Debug for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SyslogTarget").field(&self.url).finish()
    }
}

impl SyslogTarget {
    /// Reads the URL (and, for `tls://`, the files), checking all of it.
    pub fn new(url: &str, tls: &TlsFiles) -> Result<SyslogTarget, SyslogError> {
        let bad_url = || SyslogError::Url(url.to_string());
        let (scheme, address) = url.split_once("://").ok_or_else(bad_url)?;
        let (host, port) = address.rsplit_once(':').ok_or_else(bad_url)?;
        // An IPv6 address needs its brackets (`tcp://[::1]:601`), or the port is ambiguous.
        let unbracketed_v6 = host.contains(':') && !(host.starts_with('[') && host.ends_with(']'));
        // Syslog has no userinfo: `tcp://user@host:601` is a mistake, not a login.
        if host.is_empty() || unbracketed_v6 || host.contains('@') || port.parse::<u16>().is_err() {
            return Err(bad_url());
        }
        let transport = match scheme {
            "udp" | "tcp" if *tls != TlsFiles::default() => {
                return Err(SyslogError::TlsFilesWithoutTls(url.to_string()));
            }
            "udp" => Transport::Udp(address.to_string()),
            "tcp" => Transport::Tcp(address.to_string()),
            "tls" => {
                let name = host.trim_start_matches('[').trim_end_matches(']');
                Transport::Tls {
                    address: address.to_string(),
                    server_name: ServerName::try_from(name.to_string()).map_err(|_| bad_url())?,
                    config: Arc::new(client_config(tls)?),
                }
            }
            _ => return Err(bad_url()),
        };
        Ok(SyslogTarget {
            url: url.to_string(),
            transport,
        })
    }

    /// The URL it was built from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends messages; an error means none or only some arrived, so the caller
    /// keeps the batch.
    pub fn send(&self, messages: &[String]) -> Result<(), SyslogSendError> {
        let io = |source: std::io::Error| SyslogSendError::Io {
            url: self.url.clone(),
            source,
        };
        match &self.transport {
            Transport::Udp(address) => {
                let to = address
                    .to_socket_addrs()
                    .map_err(io)?
                    .next()
                    .ok_or_else(|| SyslogSendError::NoAddress {
                        url: self.url.clone(),
                    })?;
                let local = if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
                let socket = UdpSocket::bind(local).map_err(io)?;
                for m in messages {
                    socket.send_to(m.as_bytes(), to).map_err(io)?;
                }
                Ok(())
            }
            Transport::Tcp(address) => {
                let mut stream = connect(address).map_err(io)?;
                write_framed(&mut stream, messages).map_err(io)
            }
            Transport::Tls {
                address,
                server_name,
                config,
            } => {
                let connection = rustls::ClientConnection::new(config.clone(), server_name.clone())
                    .map_err(|source| SyslogSendError::Tls {
                        url: self.url.clone(),
                        source,
                    })?;
                let mut stream =
                    rustls::StreamOwned::new(connection, connect(address).map_err(io)?);
                // The handshake runs on the first write; a refused server certificate ends here.
                write_framed(&mut stream, messages).map_err(io)?;
                stream.conn.send_close_notify();
                stream.flush().map_err(io)?;
                // With TLS 1.3 a receiver refuses a client certificate only after our
                // data left: read to the end, so its alert turns into a retry, not a loss.
                // A receiver that neither closes nor objects in time took it.
                stream.sock.set_read_timeout(Some(CLOSE_WAIT)).map_err(io)?;
                let mut rest = Vec::new();
                match std::io::Read::read_to_end(&mut stream, &mut rest) {
                    Ok(_) => Ok(()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::UnexpectedEof
                                | std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(io(e)),
                }
            }
        }
    }
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for a in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name resolves to no address")))
}

/// RFC 6587 octet counting, which RFC 5425 prescribes for TLS too.
fn write_framed(stream: &mut impl Write, messages: &[String]) -> std::io::Result<()> {
    for m in messages {
        write!(stream, "{} {}", m.len(), m)?;
    }
    stream.flush()
}

fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, SyslogError> {
    let file_error = |path: &Path, message: String| SyslogError::File {
        path: path.to_path_buf(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(path) => {
            let certs = read_certificates(path)?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(file_error(path, "no usable CA certificate".into()));
            }
        }
        None => {
            // The system's roots; ones that fail to load are skipped, none at all is an error.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(file_error(
                    Path::new("(system roots)"),
                    "no CA certificates found; give --syslog-ca".into(),
                ));
            }
        }
    }
    // aws-lc-rs explicitly: beside kube and reqwest, the process-wide default is ambiguous.
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    Ok(match (&files.cert, &files.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_error(key, format!("no PEM private key: {e}")))?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => return Err(SyslogError::HalfAClientIdentity),
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SyslogError> {
    let file_error = |message: String| SyslogError::File {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error("no PEM certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let none = TlsFiles::default();
        for good in ["udp://127.0.0.1:514", "tcp://syslog:601", "tcp://[::1]:601"] {
            SyslogTarget::new(good, &none).unwrap();
        }
        for bad in [
            "syslog:514",
            "http://h:1",
            "udp://h",
            "tcp://:514",
            "tcp://h:port",
            "tls://::1:6514",
        ] {
            let e = SyslogTarget::new(bad, &none).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("tls://HOST:PORT"), "{e}");
        }
        // A URL with credentials in it is refused without showing them.
        let e = SyslogTarget::new("tcp://user:secret@h:601", &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tcp://***@h:601") && !e.contains("secret"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_are_checked_when_built() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let with_ca = |ca: &Path| TlsFiles {
            ca: Some(ca.to_path_buf()),
            ..TlsFiles::default()
        };
        let e = SyslogTarget::new("tls://h:6514", &with_ca(&missing))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let e = SyslogTarget::new("tls://h:6514", &with_ca(&garbage))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("garbage.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = SyslogTarget::new("udp://h:514", &with_ca(&garbage))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only used with tls://"), "{e}");
        let half = TlsFiles {
            cert: Some(garbage.clone()),
            ..TlsFiles::default()
        };
        assert!(matches!(
            SyslogTarget::new("tls://h:6514", &half),
            Err(SyslogError::HalfAClientIdentity)
        ));
    }

    #[test]
    fn a_refused_connection_names_the_receiver() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let target = SyslogTarget::new(&url, &TlsFiles::default()).unwrap();
        let e = target.send(&["<34>1 a".into()]).unwrap_err();
        assert!(
            matches!(&e, SyslogSendError::Io { url: u, .. } if *u == url),
            "{e:?}"
        );
        assert!(e.to_string().starts_with(&format!("{url}: ")), "{e}");
    }

    fn hostile_alert() -> Alert {
        Alert {
            rule: "anomaly.open".into(),
            source: imprint_engine::Source::Anomaly,
            severity: imprint_engine::Severity::High,
            mitre: vec![],
            message: "opened /tmp/x\n<13>1 2026-01-01T00:00:00Z h forged - - - root logged in\r\u{85}\u{2028}\u{202e}\x1b[2J\x7f\\n\t\0".into(),
            subject: "/tmp/x\n<13>1 forged\"] [x@1 a=\"b".into(),
            time: "2026-11-26T12:00:00.123456789Z".parse().unwrap(),
            container_id: "c0ffee".into(),
            image_digest: None,
            node: None,
            pid: 7,
            comm: Some("sh\n]\\".into()),
        }
    }

    /// The bytes a receiver may take as ending a line, or as terminal or
    /// text-direction controls.
    fn has_unsafe_character(text: &str) -> bool {
        text.chars().any(|c| {
            c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{feff}'
                )
        })
    }

    #[test]
    fn hostile_text_is_escaped_on_the_wire() {
        let m = syslog_message(&hostile_alert(), "node-1");
        assert!(!has_unsafe_character(&m), "{m:?}");
        assert_eq!(m.lines().count(), 1);
        // MSG: each escape as documented; a backslash is doubled, so the
        // literal `\n` in the name is told from a newline.
        assert!(
            m.ends_with(
                " opened /tmp/x\\n<13>1 2026-01-01T00:00:00Z h forged - - - root logged in\\r\\u{0085}\\u{2028}\\u{202e}\\x1b[2J\\x7f\\\\n\\t\\x00"
            ),
            "{m}"
        );
        // Structured data: `"`, `\` and `]` escaped too (RFC 5424 6.3.3), so the
        // subject cannot close the element and open one of its own.
        assert!(
            m.contains(
                " subject=\"/tmp/x\\n<13>1 forged\\\"\\] [x@1 a=\\\"b\" comm=\"sh\\n\\]\\\\\"]"
            ),
            "{m}"
        );
        // Microseconds at most (TIME-SECFRAC is 1*6DIGIT).
        assert!(m.starts_with("<35>1 2026-11-26T12:00:00.123456Z node-1 imprint-agent - anomaly.open [imprint@32473 "), "{m}");
        // The frame counts the bytes of exactly this message.
        let mut wire = Vec::new();
        write_framed(&mut wire, std::slice::from_ref(&m)).unwrap();
        assert_eq!(wire, format!("{} {m}", m.len()).into_bytes());
    }

    #[test]
    fn header_fields_are_printable_ascii_within_their_lengths() {
        let long_rule = format!("rule\n{}", "r".repeat(40));
        let alert = Alert {
            rule: long_rule,
            ..hostile_alert()
        };
        let host = format!("évil host\n{}", "h".repeat(300));
        let m = syslog_message(&alert, &host);
        let fields: Vec<&str> = m.splitn(7, ' ').collect();
        let (hostname, app, msgid) = (fields[2], fields[3], fields[5]);
        assert_eq!(hostname.len(), 255, "{hostname}");
        assert!(hostname.starts_with("_vil_host_hhh"), "{hostname}");
        assert_eq!(app, "imprint-agent");
        assert_eq!(msgid, format!("rule_{}", "r".repeat(27)));
        for field in [hostname, app, msgid] {
            assert!(field.bytes().all(|b| b.is_ascii_graphic()), "{field}");
        }
        // No host: the NILVALUE.
        assert_eq!(syslog_message(&alert, "").split(' ').nth(2), Some("-"));
    }

    #[test]
    fn messages_are_octet_counted() {
        let mut out = Vec::new();
        write_framed(&mut out, &["<34>1 a".into(), "<34>1 bé".into()]).unwrap();
        assert_eq!(out, "7 <34>1 a9 <34>1 bé".as_bytes());
    }
}
