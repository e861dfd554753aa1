/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The records the kernel programs put in the ring buffer. The Rust side
 * (agent-ebpf/src/lib.rs) decodes them by these offsets; a test there checks the
 * sizes against the object's BTF-free constants below.
 */
#ifndef IMPRINT_EVENTS_H
#define IMPRINT_EVENTS_H

#define COMM_LEN 16
#define PATH_LEN 256
#define ARGS_LEN 512
#define DNS_LEN 256

enum event_type {
	EV_EXEC = 1,
	EV_FORK = 2,
	EV_EXIT = 3,
	EV_OPEN = 4,
	EV_SYSCALL = 5,
	EV_CAPABILITY = 6,
	EV_CONNECT = 7,
	EV_ACCEPT = 8,
	EV_BIND = 9,
	EV_DNS = 10,
	EV_MEMFD = 11,
	EV_PTRACE = 12,
	EV_MODULE = 13,
	EV_BPF = 14,
	EV_UNSHARE = 15,
	EV_SETNS = 16,
	EV_SYMLINK = 17,
	EV_LINK = 18,
};

/* 48 bytes, first in every record. */
struct header {
	u32 type;
	u32 pid;       /* thread group id (the process) */
	u32 tid;
	u32 pid_ns;    /* inode number of the task's active pid namespace */
	u64 cgroup_id; /* cgroup v2 id: the inode of the cgroup directory */
	u64 time_ns;   /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	char comm[COMM_LEN];
};

/* EV_EXEC */
struct exec_event {
	struct header h;
	u32 parent_pid;
	u32 flags;        /* EXEC_STDIN_SOCKET | EXEC_STDOUT_SOCKET */
	u32 args_len;     /* bytes of NUL-separated argv in args */
	u32 reserved;
	char filename[PATH_LEN];
	char args[ARGS_LEN];
	/* The executable's path as the task sees it, from its dentries (at most
	 * PATH_DEPTH components; the buffer is twice PATH_LEN for the verifier). */
	char exe[2 * PATH_LEN];
};
#define EXEC_STDIN_SOCKET 1
#define EXEC_STDOUT_SOCKET 2

/*
 * EV_OPEN: the path made absolute against the working directory or the
 * directory fd, as the task sees it (its root, mounts crossed); the size of a
 * path_event.
 */
struct open_event {
	struct header h;
	u32 flags;
	u32 info;         /* OPEN_* below */
	char path[2 * PATH_LEN];
};
#define OPEN_RELATIVE 1     /* the name given was relative: path starts with its base */
#define OPEN_TRUNCATED 2    /* the name or the base did not fit: path is a prefix */

/* EV_MEMFD (name, flags), EV_SYMLINK and EV_LINK (target, link) */
struct path_event {
	struct header h;
	u64 flags;
	char path[PATH_LEN];
	char path2[PATH_LEN];
};

/* EV_CONNECT, EV_ACCEPT, EV_BIND */
struct net_event {
	struct header h;
	u16 family;
	u16 port;         /* host order */
	u32 socket_type;  /* SOCK_STREAM 1, SOCK_DGRAM 2, 0 unknown */
	u8 addr[16];      /* IPv4 in the first 4 bytes */
};

/* EV_DNS: a UDP payload sent to port 53 */
struct dns_event {
	struct header h;
	u16 family;
	u16 port;
	u32 len;
	u8 addr[16];
	u8 payload[DNS_LEN];
};

/*
 * EV_FORK (a = child pid), EV_EXIT (a = exit code), EV_SYSCALL (a = number),
 * EV_CAPABILITY (a = capability, b = verdict), EV_PTRACE (a = request, b = target),
 * EV_MODULE (a = 0 init_module / 1 finit_module), EV_BPF (a = command),
 * EV_UNSHARE (a = flags), EV_SETNS (a = nstype)
 */
struct value_event {
	struct header h;
	u64 a;
	u64 b;
};

#endif
