//! imprint's kernel programs and the records they emit.
//!
//! The programs (C, CO-RE, tracepoints only) are compiled by `build/main.rs` with
//! clang into one object for the target's architecture and embedded as
//! [`OBJECT`]. [`decode`] reads the ring-buffer records they write, whose layout
//! `bpf/events.h` defines; nothing here is unsafe: records are parsed by offset,
//! and a short or unknown record is an error, not a guess. [`arch::syscall_name`]
//! names the syscall numbers they report.
//!
//! The kernel side, under `bpf/`:
//! - `imprint.bpf.c`: the one translation unit, including the rest (one object, one set of maps).
//! - `uapi.h`: the integer types and BPF constants of the kernel's UAPI, vendored (no host headers).
//! - `arch.h`: picks `arch/x86_64.h` or `arch/arm64.h` (syscall numbers, argument registers,
//!   the 32-bit syscall check, `pt_regs`); any other architecture is an `#error`.
//! - `kernel_types.h`: the few kernel structures read, declared minimally for CO-RE.
//! - `events.h`: the records, shared with this crate's decoder.
//! - `maps.h`: every map and the sizes that bound them.
//! - `helpers.h`: reserve/submit, record headers, hashing and dedup, fd → file or socket,
//!   the executable's path, the compat check.
//! - `hooks/process.bpf.h`: sched exec, fork and exit.
//! - `hooks/capabilities.bpf.h`: cap_capable.
//! - `hooks/files.bpf.h`: opens, links and symlinks.
//! - `hooks/network.bpf.h`: connect, bind, accept (its exit tracepoints) and DNS sends.
//! - `hooks/kernel.bpf.h`: module loads, bpf, ptrace, unshare, setns, memfd_create.
//! - `hooks/syscalls.bpf.h`: the raw `sys_enter` hook, the syscall bitmap and the dispatch to the above.
//!
//! `build/compile.rs` holds the clang invocation, shared with `tests/architectures.rs`,
//! which compiles the programs for x86_64 and arm64 on any host.

pub mod arch;

/// The compiled BPF object, when clang was available at build time.
#[cfg(imprint_bpf_object)]
pub const OBJECT: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/imprint.bpf.o")));
/// The compiled BPF object, when clang was available at build time.
#[cfg(not(imprint_bpf_object))]
pub const OBJECT: Option<&[u8]> = None;

/// Every tracepoint program in the object: (program name, category, tracepoint).
/// A tracepoint the running kernel lacks is skipped at attach time.
pub const TRACEPOINTS: &[(&str, &str, &str)] = &[
    ("on_exec", "sched", "sched_process_exec"),
    ("on_fork", "sched", "sched_process_fork"),
    ("on_exit", "sched", "sched_process_exit"),
    ("on_cap_capable", "capability", "cap_capable"),
    ("on_accept_exit", "syscalls", "sys_exit_accept"),
    ("on_accept4_exit", "syscalls", "sys_exit_accept4"),
];

/// Raw tracepoint programs: (program name, tracepoint). `on_sys_enter` sees every
/// syscall entry: the per-cgroup syscall bitmap, opens (open, openat, openat2),
/// module loads, and the syscalls reported with their arguments (connect, bind,
/// accept, DNS sends, memfd_create, symlink, link, ptrace, bpf, unshare, setns):
/// one hook instead of a syscall tracepoint each, which would each put perf's
/// dispatch on every syscall.
pub const RAW_TRACEPOINTS: &[(&str, &str)] = &[("on_sys_enter", "sys_enter")];

/// Name of the ring buffer map.
pub const RING_BUFFER: &str = "events";
/// Name of the per-CPU array of records lost to a full ring buffer, by type.
pub const DROPS: &str = "drops";
/// Name of the per-CPU array of records suppressed by in-kernel dedup, by type.
pub const DEDUPED: &str = "deduped";
/// Name of the hash of records lost to a full ring buffer, by cgroup id.
pub const DROPS_BY_CGROUP: &str = "drops_by_cgroup";
/// Name of the in-kernel dedup map.
pub const DEDUP: &str = "dedup";
/// Name of the global holding the dedup hash's 128-bit key (two `u64`), which
/// the loader must set to random bytes.
pub const DEDUP_KEY: &str = "dedup_key";

const COMM_LEN: usize = 16;
const PATH_LEN: usize = 256;
const ARGS_LEN: usize = 512;
const DNS_LEN: usize = 256;
const HEADER_LEN: usize = 48;
const OPEN_RELATIVE: u32 = 1;
const OPEN_TRUNCATED: u32 = 2;

/// The size of each record type, as `bpf/events.h` lays it out.
pub mod sizes {
    use super::*;
    /// `struct exec_event`.
    pub const EXEC: usize = HEADER_LEN + 16 + PATH_LEN + ARGS_LEN + 2 * PATH_LEN;
    /// `struct path_event`.
    pub const PATH: usize = HEADER_LEN + 8 + 2 * PATH_LEN;
    /// `struct net_event`.
    pub const NET: usize = HEADER_LEN + 8 + 16;
    /// `struct dns_event`.
    pub const DNS: usize = HEADER_LEN + 8 + 16 + DNS_LEN;
    /// `struct value_event`.
    pub const VALUE: usize = HEADER_LEN + 16;
}

/// What every record starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The process (thread group id).
    pub pid: u32,
    /// The thread.
    pub tid: u32,
    /// The inode number of the task's active pid namespace (0 when unknown):
    /// tells a container's process in a cgroup that names no container from a
    /// host process.
    pub pid_ns: u32,
    /// The cgroup v2 id (the cgroup directory's inode).
    pub cgroup_id: u64,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub time_ns: u64,
    /// The task's command name.
    pub comm: String,
}

/// An IP address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The address.
    pub ip: std::net::IpAddr,
    /// The port.
    pub port: u16,
}

/// A socket's type, as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// `SOCK_STREAM` (TCP for inet sockets).
    Stream,
    /// `SOCK_DGRAM` (UDP).
    Datagram,
    /// Anything else, or unknown.
    Other(u32),
}

impl SocketType {
    fn from_raw(raw: u32) -> SocketType {
        match raw {
            1 => SocketType::Stream,
            2 => SocketType::Datagram,
            other => SocketType::Other(other),
        }
    }
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A program was executed.
    Exec {
        /// The path given to execve.
        filename: String,
        /// The executable's path within its mount, from the kernel's dentries
        /// (`/bin/busybox`; `/memfd:…` for a memfd).
        exe: String,
        /// argv (bounded).
        argv: Vec<String>,
        /// The parent process.
        parent_pid: u32,
        /// fd 0 is a socket.
        stdin_socket: bool,
        /// fd 1 is a socket.
        stdout_socket: bool,
    },
    /// A process forked.
    Fork {
        /// The child.
        child_pid: u32,
    },
    /// A process exited.
    Exit {
        /// Its exit code (wait status).
        code: u64,
    },
    /// A file was opened (first time per cgroup, executable, path and flags).
    Open {
        /// The path: as given when absolute, else joined to the working
        /// directory or directory fd it was resolved from (as the task sees
        /// it). `..` and `.` are left as given.
        path: String,
        /// `O_*` flags.
        flags: u64,
        /// The name given was relative.
        relative: bool,
        /// The name or its base did not fit: `path` is only a prefix.
        truncated: bool,
    },
    /// A syscall was used for the first time in the cgroup.
    Syscall {
        /// Its number, as the running architecture numbers it ([`arch::syscall_name`]).
        nr: u64,
    },
    /// A capability was checked for the first time in the cgroup.
    Capability {
        /// `CAP_*` number.
        cap: u64,
        /// 0 when granted.
        verdict: i64,
    },
    /// connect(2): the remote end.
    Connect(Endpoint, SocketType),
    /// accept(2): the peer.
    Accept(Endpoint, SocketType),
    /// bind(2): the local address.
    Bind(Endpoint, SocketType),
    /// A UDP payload sent to port 53.
    Dns {
        /// The server.
        server: Endpoint,
        /// The payload (bounded).
        payload: Vec<u8>,
    },
    /// memfd_create(2).
    MemfdCreate {
        /// The name.
        name: String,
        /// `MFD_*` flags.
        flags: u64,
    },
    /// ptrace(2).
    Ptrace {
        /// The request.
        request: u64,
        /// The target pid.
        target: u64,
    },
    /// init_module / finit_module.
    ModuleLoad {
        /// finit_module (from a file descriptor).
        from_fd: bool,
    },
    /// bpf(2).
    Bpf {
        /// The command.
        command: u64,
    },
    /// unshare(2).
    Unshare {
        /// `CLONE_*` flags.
        flags: u64,
    },
    /// setns(2).
    Setns {
        /// The namespace type.
        nstype: u64,
    },
    /// symlink(2)/symlinkat(2).
    Symlink {
        /// What the link points to.
        target: String,
        /// The link.
        link: String,
    },
    /// link(2)/linkat(2).
    Link {
        /// The existing file.
        target: String,
        /// The new name.
        link: String,
    },
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its type requires.
    #[error("record of type {kind} is {got} bytes, expected at least {want}")]
    Short {
        /// The type.
        kind: u32,
        /// Its length.
        got: usize,
        /// The length required.
        want: usize,
    },
    /// An unknown type.
    #[error("unknown record type {0}")]
    UnknownType(u32),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A NUL-terminated string in a fixed field (lossy UTF-8).
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn endpoint(family: u16, port: u16, addr: &[u8]) -> Endpoint {
    let ip = if family == 10 {
        let octets: [u8; 16] = addr[..16].try_into().expect("16 bytes");
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(octets))
    } else {
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    };
    Endpoint { ip, port }
}

/// Decodes one ring-buffer record.
pub fn decode(b: &[u8]) -> Result<(Header, Record), DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Short {
            kind: 0,
            got: b.len(),
            want: HEADER_LEN,
        });
    }
    let kind = u32_at(b, 0);
    let header = Header {
        pid: u32_at(b, 4),
        tid: u32_at(b, 8),
        pid_ns: u32_at(b, 12),
        cgroup_id: u64_at(b, 16),
        time_ns: u64_at(b, 24),
        comm: c_string(&b[32..32 + COMM_LEN]),
    };
    let want = match kind {
        1 => sizes::EXEC,
        4 | 11 | 17 | 18 => sizes::PATH,
        7..=9 => sizes::NET,
        10 => sizes::DNS,
        2 | 3 | 5 | 6 | 12..=16 => sizes::VALUE,
        other => return Err(DecodeError::UnknownType(other)),
    };
    if b.len() < want {
        return Err(DecodeError::Short {
            kind,
            got: b.len(),
            want,
        });
    }
    let body = &b[HEADER_LEN..];
    let (a, v) = (|| u64_at(body, 0), || u64_at(body, 8));
    let path = || c_string(&body[8..8 + PATH_LEN]);
    let path2 = || c_string(&body[8 + PATH_LEN..8 + 2 * PATH_LEN]);
    let record = match kind {
        1 => {
            let flags = u32_at(body, 4);
            let args_len = (u32_at(body, 8) as usize).min(ARGS_LEN);
            let args = &body[16 + PATH_LEN..16 + PATH_LEN + args_len];
            let mut argv: Vec<String> = args
                .split(|&c| c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            // The region ends with NUL: drop the empty piece after it.
            if argv.last().is_some_and(String::is_empty) {
                argv.pop();
            }
            let exe_at = 16 + PATH_LEN + ARGS_LEN;
            Record::Exec {
                filename: c_string(&body[16..16 + PATH_LEN]),
                exe: c_string(&body[exe_at..exe_at + 2 * PATH_LEN]),
                argv,
                parent_pid: u32_at(body, 0),
                stdin_socket: flags & 1 != 0,
                stdout_socket: flags & 2 != 0,
            }
        }
        2 => Record::Fork {
            child_pid: a() as u32,
        },
        3 => Record::Exit { code: a() },
        4 => Record::Open {
            path: c_string(&body[8..8 + 2 * PATH_LEN]),
            flags: u64::from(u32_at(body, 0)),
            relative: u32_at(body, 4) & OPEN_RELATIVE != 0,
            truncated: u32_at(body, 4) & OPEN_TRUNCATED != 0,
        },
        5 => Record::Syscall { nr: a() },
        6 => Record::Capability {
            cap: a(),
            verdict: v() as i64,
        },
        7..=9 => {
            let e = endpoint(u16_at(body, 0), u16_at(body, 2), &body[8..24]);
            let t = SocketType::from_raw(u32_at(body, 4));
            match kind {
                7 => Record::Connect(e, t),
                8 => Record::Accept(e, t),
                _ => Record::Bind(e, t),
            }
        }
        10 => {
            let len = (u32_at(body, 4) as usize).min(DNS_LEN);
            Record::Dns {
                server: endpoint(u16_at(body, 0), u16_at(body, 2), &body[8..24]),
                payload: body[24..24 + len].to_vec(),
            }
        }
        11 => Record::MemfdCreate {
            name: path(),
            flags: a(),
        },
        12 => Record::Ptrace {
            request: a(),
            target: v(),
        },
        13 => Record::ModuleLoad { from_fd: a() == 1 },
        14 => Record::Bpf { command: a() },
        15 => Record::Unshare { flags: a() },
        16 => Record::Setns { nstype: a() },
        17 => Record::Symlink {
            target: path(),
            link: path2(),
        },
        _ => Record::Link {
            target: path(),
            link: path2(),
        },
    };
    Ok((header, record))
}

#[cfg(test)]
mod tests;
