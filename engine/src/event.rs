//! The event stream: what the sensor observed, one JSON object per line.
//!
//! Every event carries the same header (`time`, `containerId`, `imageDigest`, `pid`
//! and optional context) and a `type` that selects the payload fields. The stream's
//! JSON Schema is published as `schema/events.v1.schema.json`; [`json_schema`]
//! generates it and a test keeps the two equal.
//!
//! ```json
//! {"time":"2026-11-26T10:00:00Z","containerId":"3f2a…","imageDigest":"sha256:…","pid":42,"type":"exec","path":"/bin/cat","argv":["cat","/etc/passwd"],"parent":{"pid":1,"path":"/bin/sh"}}
//! {"time":"2026-11-26T10:00:00Z","containerId":"3f2a…","imageDigest":"sha256:…","pid":42,"type":"open","path":"/etc/passwd","flags":["O_RDONLY"]}
//! ```
//!
//! Unknown fields are ignored, so a newer sensor's stream still replays.

use std::io::BufRead;
use std::net::IpAddr;

use imprint_schema::Digest;
use imprint_schema::OpenFlags;
use imprint_schema::Protocol;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When it happened (RFC 3339).
    pub time: Timestamp,
    /// The container's full id, as the runtime names it.
    pub container_id: String,
    /// The image manifest digest of the container, when attribution found one
    /// (a container whose image is not known yet still meets the behaviour rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<Digest>,
    /// The image reference the container was started from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// The node (host name) the event was observed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The Kubernetes namespace of the container's pod, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod's name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The acting process id (in the host's pid namespace).
    #[serde(default)]
    pub pid: u32,
    /// The acting process's command name (`comm`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A process, as the parent of an exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRef {
    /// Its pid.
    pub pid: u32,
    /// Its executable path, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The payload of an event, selected by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum EventKind {
    /// The container's first process started; events before it were seen, so the
    /// container was observed from its start.
    ContainerStart,
    /// A program was executed (execve/execveat succeeded).
    Exec {
        /// The executable's path as the kernel resolved it.
        path: String,
        /// The argument vector, `argv[0]` first, bounded by the sensor.
        #[serde(default)]
        argv: Vec<String>,
        /// The process that called exec.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ProcessRef>,
        /// Whether fd 0 was a socket at exec (a reverse-shell signal).
        #[serde(default, skip_serializing_if = "is_false")]
        stdin_socket: bool,
        /// Whether fd 1 was a socket at exec.
        #[serde(default, skip_serializing_if = "is_false")]
        stdout_socket: bool,
    },
    /// A file was opened (open, openat, openat2).
    Open {
        /// The path, absolute when the sensor could resolve it.
        path: String,
        /// The open flags by name.
        flags: OpenFlags,
    },
    /// A syscall was used (reported once per syscall and container by the sensor).
    Syscall {
        /// Its name.
        name: String,
    },
    /// A capability was checked.
    Capability {
        /// Its name, without `CAP_`.
        name: String,
    },
    /// An outbound connection: `address` and `port` are the remote end.
    Connect {
        /// The remote address.
        address: IpAddr,
        /// The remote port.
        port: u16,
        /// The transport.
        protocol: Protocol,
    },
    /// An accepted inbound connection: `address` is the peer, `port` the local port.
    Accept {
        /// The peer's address.
        address: IpAddr,
        /// The local port.
        port: u16,
        /// The transport.
        protocol: Protocol,
    },
    /// A socket was bound to a local address and port.
    Bind {
        /// The local address.
        address: IpAddr,
        /// The local port.
        port: u16,
        /// The transport.
        protocol: Protocol,
    },
    /// A DNS question was sent.
    Dns {
        /// The name asked for.
        name: String,
        /// The query type (`A`, `AAAA`…), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qtype: Option<String>,
    },
    /// An anonymous memory file was created (memfd_create).
    MemfdCreate {
        /// The name given to it.
        name: String,
    },
    /// ptrace was called.
    Ptrace {
        /// The request (`PTRACE_ATTACH`…) or its number.
        request: String,
        /// The traced process.
        target_pid: u32,
    },
    /// A kernel module was loaded (init_module, finit_module).
    ModuleLoad {
        /// The syscall used.
        syscall: String,
        /// The module's name or file, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The bpf syscall was called.
    Bpf {
        /// The command (`BPF_PROG_LOAD`…).
        command: String,
    },
    /// New namespaces were created (unshare or clone flags).
    Unshare {
        /// The `CLONE_NEW*` flags by name.
        flags: Vec<String>,
    },
    /// A namespace was joined.
    Setns {
        /// The namespace type (`CLONE_NEWNET`…), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nstype: Option<String>,
    },
    /// A symbolic link was created: `link_path` → `target`.
    Symlink {
        /// What the link points at.
        target: String,
        /// The new link.
        link_path: String,
    },
    /// A hard link was created: `link_path` names `target`'s inode.
    Link {
        /// The existing file.
        target: String,
        /// The new name.
        link_path: String,
    },
    /// A process forked.
    Fork {
        /// The child's pid.
        child_pid: u32,
    },
    /// A process exited.
    Exit {
        /// Its exit code.
        code: i32,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl EventKind {
    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ContainerStart => "container_start",
            EventKind::Exec { .. } => "exec",
            EventKind::Open { .. } => "open",
            EventKind::Syscall { .. } => "syscall",
            EventKind::Capability { .. } => "capability",
            EventKind::Connect { .. } => "connect",
            EventKind::Accept { .. } => "accept",
            EventKind::Bind { .. } => "bind",
            EventKind::Dns { .. } => "dns",
            EventKind::MemfdCreate { .. } => "memfd_create",
            EventKind::Ptrace { .. } => "ptrace",
            EventKind::ModuleLoad { .. } => "module_load",
            EventKind::Bpf { .. } => "bpf",
            EventKind::Unshare { .. } => "unshare",
            EventKind::Setns { .. } => "setns",
            EventKind::Symlink { .. } => "symlink",
            EventKind::Link { .. } => "link",
            EventKind::Fork { .. } => "fork",
            EventKind::Exit { .. } => "exit",
        }
    }
}

/// The JSON Schema of one event line, generated from [`Event`].
pub fn json_schema() -> serde_json::Value {
    imprint_schema::json_schema_for::<Event>("https://imprint.dev/schemas/events.v1.schema.json")
}

/// Longest event line accepted (1 MiB): a sensor bounds argv and paths far below this.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why an event line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Reading failed.
    #[error("line {line}: {source}")]
    Io {
        /// 1-based line number.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The line exceeds [`MAX_LINE_BYTES`].
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
    },
    /// The line is not UTF-8.
    #[error("line {line}, column {column}: invalid UTF-8")]
    Utf8 {
        /// 1-based line number.
        line: u64,
        /// 1-based byte column.
        column: usize,
    },
    /// The line is not a valid event.
    #[error("line {line}, column {column}: {}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Invalid {
        /// 1-based line number.
        line: u64,
        /// 1-based column.
        column: usize,
        /// The field path, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// Parses one event line (no trailing newline needed). `line` is used in errors.
pub fn parse_line(bytes: &[u8], line: u64) -> Result<Event, EventError> {
    let text = std::str::from_utf8(bytes).map_err(|e| EventError::Utf8 {
        line,
        column: e.valid_up_to() + 1,
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let event: Event = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        // Inside the flattened, tagged payload serde loses the path (it buffers);
        // line and column still locate the problem.
        let field = (field != ".").then_some(field);
        invalid(line, &inner, field)
    })?;
    de.end().map_err(|e| invalid(line, &e, None))?;
    Ok(event)
}

fn invalid(line: u64, e: &serde_json::Error, field: Option<String>) -> EventError {
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    EventError::Invalid {
        line,
        column: e.column(),
        field,
        message,
    }
}

/// Reads a JSON-lines event stream lazily, with bounded memory per line. Blank
/// lines and lines starting with `#` are skipped.
pub struct EventReader<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl<R: BufRead> EventReader<R> {
    /// Wraps a buffered reader.
    pub fn new(reader: R) -> Self {
        EventReader {
            reader,
            line: 0,
            buf: Vec::with_capacity(512),
            failed: false,
        }
    }

    /// Reads one line into `buf`, stopping past the bound. Returns false at EOF.
    fn read_line(&mut self) -> Result<bool, EventError> {
        self.buf.clear();
        let line = self.line;
        loop {
            let chunk = self
                .reader
                .fill_buf()
                .map_err(|source| EventError::Io { line, source })?;
            if chunk.is_empty() {
                return Ok(!self.buf.is_empty());
            }
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() + take > MAX_LINE_BYTES + 1 {
                return Err(EventError::LineTooLong { line });
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if done {
                return Ok(true);
            }
        }
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<Event, EventError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.line += 1;
            match self.read_line() {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    // The stream position is lost inside an over-long line: stop.
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            let trimmed = self.buf.trim_ascii();
            if trimmed.is_empty() || trimmed.starts_with(b"#") {
                continue;
            }
            return Some(parse_line(trimmed, self.line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#""time":"2026-11-26T10:00:00Z","containerId":"c1","imageDigest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","pid":7"#;

    #[test]
    fn every_kind_round_trips() {
        let lines = [
            r#""type":"container_start""#,
            r#""type":"exec","path":"/bin/cat","argv":["cat","/etc/passwd"],"parent":{"pid":1,"path":"/bin/sh"},"stdinSocket":true"#,
            r#""type":"open","path":"/etc/passwd","flags":["O_RDONLY","O_CLOEXEC"]"#,
            r#""type":"syscall","name":"openat""#,
            r#""type":"capability","name":"NET_ADMIN""#,
            r#""type":"connect","address":"10.0.0.1","port":443,"protocol":"TCP""#,
            r#""type":"accept","address":"10.0.0.2","port":8080,"protocol":"TCP""#,
            r#""type":"bind","address":"0.0.0.0","port":8080,"protocol":"TCP""#,
            r#""type":"dns","name":"example.com","qtype":"A""#,
            r#""type":"memfd_create","name":"x""#,
            r#""type":"ptrace","request":"PTRACE_ATTACH","targetPid":9"#,
            r#""type":"module_load","syscall":"finit_module""#,
            r#""type":"bpf","command":"BPF_PROG_LOAD""#,
            r#""type":"unshare","flags":["CLONE_NEWUSER"]"#,
            r#""type":"setns","nstype":"CLONE_NEWNET""#,
            r#""type":"symlink","target":"/etc/shadow","linkPath":"/tmp/s""#,
            r#""type":"link","target":"/etc/shadow","linkPath":"/tmp/h""#,
            r#""type":"fork","childPid":8"#,
            r#""type":"exit","code":0"#,
        ];
        for (i, body) in lines.iter().enumerate() {
            let text = format!("{{{HEAD},{body}}}");
            let event = parse_line(text.as_bytes(), 1).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again: Event =
                serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            assert_eq!(event, again, "line {i}");
            assert!(text.contains(&format!("\"type\":\"{}\"", event.kind.type_name())));
        }
    }

    #[test]
    fn bad_lines_are_located() {
        let err = parse_line(
            format!("{{{HEAD},\"type\":\"open\",\"path\":\"/x\",\"flags\":[\"O_NOPE\"]}}")
                .as_bytes(),
            4,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("line 4, column"), "{err}");
        assert!(err.contains("open flag \"O_NOPE\""), "{err}");

        let err = parse_line(br#"{"time":"2026-11-26T10:00:00Z","containerId":"c","imageDigest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","type":"teleport"}"#, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("teleport"), "{err}");

        let err = parse_line(
            br#"{"time":"yesterday","containerId":"c","imageDigest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","type":"exit","code":0}"#,
            3,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("time"), "{err}");

        let err = parse_line(
            br#"{"time":"2026-11-26T10:00:00Z","containerId":"c","imageDigest":"sha256:AA","type":"exit","code":0}"#,
            7,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("line 7") && err.contains("not a digest"),
            "{err}"
        );

        let err = parse_line(
            b"{\"time\":\"2026-11-26T10:00:00Z\",\"containerId\":\"\xff\"}",
            5,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                EventError::Utf8 {
                    line: 5,
                    column: 47
                }
            ),
            "{err}"
        );

        let err = parse_line(br#"{"time":"2026-11-26T10:00:00Z","#, 6)
            .unwrap_err()
            .to_string();
        assert!(err.contains("EOF"), "{err}");
    }

    #[test]
    fn reader_skips_blank_and_comment_lines_and_bounds_lines() {
        let text = format!("# recorded\n\n{{{HEAD},\"type\":\"exit\",\"code\":1}}\n");
        let events: Vec<_> = EventReader::new(text.as_bytes()).collect();
        assert_eq!(events.len(), 1);
        assert!(events[0].is_ok());

        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut r = EventReader::new(&long[..]);
        assert!(matches!(
            r.next(),
            Some(Err(EventError::LineTooLong { line: 1 }))
        ));
        assert!(r.next().is_none());
    }
}
