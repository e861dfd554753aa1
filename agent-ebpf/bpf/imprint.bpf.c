// SPDX-License-Identifier: Apache-2.0
/*
 * imprint's sensor: tracepoints only (no kprobes, fentry or LSM), CO-RE.
 *
 * Every event carries the cgroup v2 id of the task; user space maps it to a
 * container. Steady workloads send almost nothing: opens, connects and binds
 * pass an LRU of (cgroup, hash, flags) first, syscalls and capabilities a
 * per-cgroup bitmap, so only the first occurrence reaches user space. The ring
 * buffer is woken only once enough data is waiting (user space also polls on a
 * short timeout), and every record that does not fit is counted in `drops`.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define RINGBUF_BYTES (8 << 20)
#define WAKEUP_BYTES (256 << 10)
#define DEDUP_ENTRIES 65536
#define MAX_CGROUPS 10240
#define MAX_SYSCALLS 512

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

/* Records lost because the ring buffer was full, by event type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

/* Records suppressed by in-kernel dedup, by event type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, u32);
	__type(value, u64);
} deduped SEC(".maps");

struct dedup_key {
	u64 cgroup_id;
	u64 epoch;
	u64 hash;
	u32 type;
	u32 aux;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEDUP_ENTRIES);
	__type(key, struct dedup_key);
	__type(value, u8);
} dedup SEC(".maps");

/*
 * Syscalls and capabilities seen per cgroup, and the epoch that scopes the
 * cgroup's dedup entries. The entry is dropped when a container runtime's init
 * execs the entrypoint, so what the runtime did while setting the container up
 * does not hide the container's own first uses.
 */
struct seen {
	u64 epoch;
	u64 syscalls[MAX_SYSCALLS / 64];
	u64 capabilities;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, u64);
	__type(value, struct seen);
} seen_by_cgroup SEC(".maps");

/* Sockets connected to port 53, by (pid << 32 | fd): DNS sent without an address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, struct sockaddr_any);
} dns_sockets SEC(".maps");

/* accept(2) peer buffers between enter and exit, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, u64);
} accept_peers SEC(".maps");


static __always_inline void count(void *map, u32 type)
{
	u64 *n = bpf_map_lookup_elem(map, &type);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void *reserve(u64 size, u32 type)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count(&drops, type);
	return e;
}

static __always_inline void submit(void *e)
{
	u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(e, waiting >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void fill_header(struct header *h, u32 type)
{
	u64 id = bpf_get_current_pid_tgid();
	h->type = type;
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->reserved = 0;
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->time_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* FNV-1a over a NUL-terminated buffer of at most PATH_LEN bytes. */
static __always_inline u64 hash_path(const char *s)
{
	u64 h = 14695981039346656037ULL;
	for (int i = 0; i < PATH_LEN; i++) {
		char c = s[i];
		if (!c)
			break;
		h ^= (u8)c;
		h *= 1099511628211ULL;
	}
	return h;
}

static __always_inline struct seen *seen_for(u64 cgroup_id)
{
	struct seen *s = bpf_map_lookup_elem(&seen_by_cgroup, &cgroup_id);
	if (s)
		return s;
	struct seen fresh = {};
	fresh.epoch = bpf_ktime_get_ns();
	bpf_map_update_elem(&seen_by_cgroup, &cgroup_id, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&seen_by_cgroup, &cgroup_id);
}

/* Whether (cgroup, hash, type, aux) was sent recently; records it when not. */
static __always_inline int seen_recently_in(u64 cgroup_id, u64 epoch, u64 hash, u32 type, u32 aux)
{
	struct dedup_key key = {
		.cgroup_id = cgroup_id,
		.epoch = epoch,
		.hash = hash,
		.type = type,
		.aux = aux,
	};
	u8 one = 1;
	if (bpf_map_lookup_elem(&dedup, &key)) {
		count(&deduped, type);
		return 1;
	}
	bpf_map_update_elem(&dedup, &key, &one, BPF_ANY);
	return 0;
}

static __always_inline int seen_recently(u64 cgroup_id, u64 hash, u32 type, u32 aux)
{
	struct seen *s = seen_for(cgroup_id);
	return seen_recently_in(cgroup_id, s ? s->epoch : 0, hash, type, aux);
}


/* thread_info.status: the task is in a 32-bit (int 0x80) syscall. */
#define TS_COMPAT 0x0002

/*
 * A 32-bit syscall numbers its calls differently (101 is ioperm, not ptrace):
 * what is decoded by number is skipped for it, as syscall tracepoints skip it.
 */
static __always_inline int in_compat_syscall(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}

/* The open file behind a descriptor of the current task, or NULL. */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline int fd_is_socket(int fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	return (mode & S_IFMT) == S_IFSOCK;
}

/* The socket behind a descriptor of the current task (the caller knows it is one). */
static __always_inline struct socket *fd_socket(int fd)
{
	struct file *f = fd_file(fd);
	return f ? BPF_CORE_READ(f, private_data) : 0;
}

/*
 * The executable's path, from the dentries of mm->exe_file up to its mount's
 * root: "/bin/busybox" inside a container's root filesystem, "/memfd:name" for
 * a memfd. Tells what ran when the exec'd name was /proc/self/exe or /dev/fd/N.
 */
static __always_inline void exe_path(struct task_struct *task, char *buf)
{
	const unsigned char *names[EXE_DEPTH] = {};
	struct dentry *d = BPF_CORE_READ(task, mm, exe_file, f_path.dentry);
	buf[0] = 0;
	if (!d)
		return;
	int n = 0;
	for (int i = 0; i < EXE_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (i > 0 && parent == d)
			break;
		names[i] = BPF_CORE_READ(d, d_name.name);
		n = i + 1;
		if (parent == d || !parent)
			break;
		d = parent;
	}
	u32 off = 0;
	for (int i = EXE_DEPTH - 1; i >= 0; i--) {
		if (i >= n)
			continue;
		if (off >= PATH_LEN - 1)
			break;
		barrier_var(off);
		buf[off & (PATH_LEN - 1)] = '/';
		off++;
		barrier_var(off);
		long len = bpf_probe_read_kernel_str(buf + (off & (PATH_LEN - 1)), PATH_LEN, names[i]);
		if (len > 1)
			off += len - 1;
	}
	barrier_var(off);
	buf[off & (2 * PATH_LEN - 1)] = 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_event *e = reserve(sizeof(*e), EV_EXEC);
	if (!e)
		return 0;
	fill_header(&e->h, EV_EXEC);
	unsigned int off = BPF_CORE_READ(ctx, __data_loc_filename) & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->parent_pid = BPF_CORE_READ(task, real_parent, tgid);
	exe_path(task, e->exe);

	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	u64 len = end > start ? end - start : 0;
	if (len > ARGS_LEN - 1)
		len = ARGS_LEN - 1;
	e->args_len = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len & (ARGS_LEN - 1), (void *)start) == 0)
		e->args_len = len;

	e->flags = 0;
	if (fd_is_socket(0))
		e->flags |= EXEC_STDIN_SOCKET;
	if (fd_is_socket(1))
		e->flags |= EXEC_STDOUT_SOCKET;
	e->reserved = 0;
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_fork")
int on_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	struct value_event *e = reserve(sizeof(*e), EV_FORK);
	if (!e)
		return 0;
	fill_header(&e->h, EV_FORK);
	e->a = BPF_CORE_READ(ctx, child_pid);
	e->b = 0;
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	/* Threads exit too: only the process (thread group leader) counts. */
	if ((id >> 32) != (u32)id)
		return 0;
	struct value_event *e = reserve(sizeof(*e), EV_EXIT);
	if (!e)
		return 0;
	fill_header(&e->h, EV_EXIT);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->a = BPF_CORE_READ(task, exit_code);
	e->b = 0;
	submit(e);
	return 0;
}

/* Per-CPU scratch for a path, so a deduplicated open never touches the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, char[PATH_LEN]);
} path_scratch SEC(".maps");

static __always_inline int emit_open(u64 cgroup_id, u64 epoch, const char *filename, u64 flags)
{
	u32 zero = 0;
	char *path = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!path)
		return 0;
	if (bpf_probe_read_user_str(path, PATH_LEN, filename) <= 0)
		return 0;
	struct dedup_key key = {
		.cgroup_id = cgroup_id,
		.epoch = epoch,
		.hash = hash_path(path),
		.type = EV_OPEN,
		.aux = (u32)flags,
	};
	if (bpf_map_lookup_elem(&dedup, &key)) {
		count(&deduped, EV_OPEN);
		return 0;
	}
	/* Only now, off the steady state's path: a 32-bit call must not even seed dedup. */
	if (in_compat_syscall())
		return 0;
	u8 one = 1;
	bpf_map_update_elem(&dedup, &key, &one, BPF_ANY);
	struct path_event *e = reserve(sizeof(*e), EV_OPEN);
	if (!e)
		return 0;
	fill_header(&e->h, EV_OPEN);
	e->flags = flags;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	e->path2[0] = 0;
	submit(e);
	return 0;
}

/* Syscall numbers (x86_64) of the events raw sys_enter reports itself. */
#define NR_INIT_MODULE 175
#define NR_FINIT_MODULE 313
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define NR_WRITE 1
#define NR_OPEN 2
#define NR_OPENAT 257
#define NR_OPENAT2 437

#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_BIND 49
#define NR_LINK 86
#define NR_SYMLINK 88
#define NR_PTRACE 101
#define NR_LINKAT 265
#define NR_SYMLINKAT 266
#define NR_UNSHARE 272
#define NR_ACCEPT4 288
#define NR_SENDMMSG 307
#define NR_SETNS 308
#define NR_MEMFD_CREATE 319
#define NR_BPF 321

static __always_inline int dns_write(u32 fd, const void *buf, u64 len);
static __noinline int on_syscall_with_args(long nr, const unsigned long *args);

static __always_inline int reported_with_args(long nr)
{
	switch (nr) {
	case NR_CONNECT: case NR_ACCEPT: case NR_SENDTO: case NR_SENDMSG: case NR_BIND:
	case NR_LINK: case NR_SYMLINK: case NR_PTRACE: case NR_LINKAT: case NR_SYMLINKAT:
	case NR_UNSHARE: case NR_ACCEPT4: case NR_SENDMMSG: case NR_SETNS:
	case NR_MEMFD_CREATE: case NR_BPF:
		return 1;
	}
	return 0;
}

/* runc's init, about to exec the container's entrypoint. */
static __always_inline int is_runtime_init(void)
{
	char comm[COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	return comm[0] == 'r' && comm[1] == 'u' && comm[2] == 'n' && comm[3] == 'c' && comm[4] == ':';
}

/*
 * Every syscall entry, as a raw tracepoint: one hook (the cheapest, no argument
 * marshalling) for the per-cgroup syscall bitmap, the opens, module loads and
 * every other syscall reported with its arguments. Each syscall tracepoint
 * would add its own cost to every syscall of the machine.
 */
SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = ctx->args[1];
	if (nr < 0 || nr >= MAX_SYSCALLS)
		return 0;
	/* Rare under their x86_64 numbers: checked for a 32-bit call at once. Opens
	 * and write are checked only when they would report something. */
	int rare = nr == NR_INIT_MODULE || nr == NR_FINIT_MODULE || nr == NR_EXECVE ||
		   nr == NR_EXECVEAT || reported_with_args(nr);
	if (rare && in_compat_syscall())
		return 0;
	u64 cgroup_id = bpf_get_current_cgroup_id();
	/* Module loads, here because kernels without modules have no such tracepoints. */
	if (nr == NR_INIT_MODULE || nr == NR_FINIT_MODULE) {
		struct value_event *m = reserve(sizeof(*m), EV_MODULE);
		if (m) {
			fill_header(&m->h, EV_MODULE);
			m->a = nr == NR_FINIT_MODULE;
			m->b = 0;
			submit(m);
		}
	}
	if ((nr == NR_EXECVE || nr == NR_EXECVEAT) && is_runtime_init()) {
		bpf_map_delete_elem(&seen_by_cgroup, &cgroup_id);
		return 0;
	}
	if (reported_with_args(nr)) {
		unsigned long args[6] = {
			BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx),
			BPF_CORE_READ(regs, r10), BPF_CORE_READ(regs, r8), BPF_CORE_READ(regs, r9),
		};
		on_syscall_with_args(nr, args);
	}
	struct seen *s = seen_for(cgroup_id);
	if (!s)
		return 0;
	if (nr == NR_OPENAT)
		emit_open(cgroup_id, s->epoch, (const char *)BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx));
	else if (nr == NR_OPEN)
		emit_open(cgroup_id, s->epoch, (const char *)BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si));
	else if (nr == NR_OPENAT2) {
		struct open_how_user how = {};
		bpf_probe_read_user(&how, sizeof(how), (void *)BPF_CORE_READ(regs, dx));
		emit_open(cgroup_id, s->epoch, (const char *)BPF_CORE_READ(regs, si), how.flags);
	}
	else if (nr == NR_WRITE)
		dns_write(BPF_CORE_READ(regs, di), (const void *)BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx));
	u64 bit = 1ULL << (nr & 63);
	u64 *word = &s->syscalls[(nr >> 6) & (MAX_SYSCALLS / 64 - 1)];
	/* A plain read first: the atomic (a locked instruction) only on a first use. */
	if (*word & bit)
		return 0;
	if (!rare && in_compat_syscall())
		return 0;
	u64 old = __sync_fetch_and_or(word, bit);
	if (old & bit)
		return 0;
	struct value_event *e = reserve(sizeof(*e), EV_SYSCALL);
	if (!e)
		return 0;
	fill_header(&e->h, EV_SYSCALL);
	e->a = nr;
	e->b = 0;
	submit(e);
	return 0;
}

SEC("tracepoint/capability/cap_capable")
int on_cap_capable(struct cap_capable_ctx *ctx)
{
	int cap = ctx->cap;
	if (cap < 0 || cap > 63)
		return 0;
	struct seen *s = seen_for(bpf_get_current_cgroup_id());
	if (!s)
		return 0;
	u64 bit = 1ULL << cap;
	u64 old = __sync_fetch_and_or(&s->capabilities, bit);
	if (old & bit)
		return 0;
	struct value_event *e = reserve(sizeof(*e), EV_CAPABILITY);
	if (!e)
		return 0;
	fill_header(&e->h, EV_CAPABILITY);
	e->a = cap;
	e->b = ctx->ret;
	submit(e);
	return 0;
}

/* Reads a user sockaddr; returns 0 when it is not AF_INET/AF_INET6. */
static __always_inline int read_sockaddr(struct sockaddr_any *sa, const void *user, u64 len)
{
	if (!user || len < 8)
		return 0;
	if (bpf_probe_read_user(sa, sizeof(*sa) < len ? sizeof(*sa) : 8, user) != 0)
		return 0;
	if (sa->family == AF_INET6 && len < 24)
		return 0;
	return sa->family == AF_INET || sa->family == AF_INET6;
}

/* SOCK_STREAM (1), SOCK_DGRAM (2)... of a socket fd of the current task; 0 if unknown. */
static __always_inline u32 socket_type(int fd)
{
	struct socket *sock = fd_socket(fd);
	return sock ? BPF_CORE_READ(sock, type) : 0;
}

/* The local port of a socket fd of the current task (0 when unknown). */
static __always_inline u16 socket_local_port(int fd)
{
	struct socket *sock = fd_socket(fd);
	return sock ? BPF_CORE_READ(sock, sk, __sk_common.skc_num) : 0;
}

static __always_inline int emit_net(u32 type, struct sockaddr_any *sa, int fd)
{
	u16 port = __builtin_bswap16(sa->port);
	/* An accept is reported with the peer's address and the local port. */
	if (type == EV_ACCEPT)
		port = socket_local_port(fd);
	u64 hash = sa->v4;
	if (sa->family == AF_INET6) {
		u64 lo = 0, hi = 0;
		__builtin_memcpy(&lo, sa->v6, 8);
		__builtin_memcpy(&hi, sa->v6 + 8, 8);
		hash = lo ^ (hi * 1099511628211ULL);
	}
	if (seen_recently(bpf_get_current_cgroup_id(), hash, type, port))
		return 0;
	struct net_event *e = reserve(sizeof(*e), type);
	if (!e)
		return 0;
	fill_header(&e->h, type);
	e->family = sa->family;
	e->port = port;
	e->socket_type = socket_type(fd);
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (sa->family == AF_INET)
		__builtin_memcpy(e->addr, &sa->v4, 4);
	else
		__builtin_memcpy(e->addr, sa->v6, 16);
	submit(e);
	return 0;
}

static __always_inline int on_connect(const unsigned long *args)
{
	struct sockaddr_any sa = {};
	if (!read_sockaddr(&sa, (const void *)args[1], args[2]))
		return 0;
	if (__builtin_bswap16(sa.port) == 53) {
		u64 key = (bpf_get_current_pid_tgid() & 0xFFFFFFFF00000000ULL) | (u32)args[0];
		bpf_map_update_elem(&dns_sockets, &key, &sa, BPF_ANY);
	}
	return emit_net(EV_CONNECT, &sa, args[0]);
}

static __always_inline int on_bind(const unsigned long *args)
{
	struct sockaddr_any sa = {};
	if (!read_sockaddr(&sa, (const void *)args[1], args[2]))
		return 0;
	return emit_net(EV_BIND, &sa, args[0]);
}

static __always_inline int accept_enter(const unsigned long *args)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 peer = args[1];
	if (peer)
		bpf_map_update_elem(&accept_peers, &tid, &peer, BPF_ANY);
	return 0;
}

/* The peer of a connected socket fd of the current task, from its struct sock. */
static __always_inline int socket_peer(int fd, struct sockaddr_any *sa)
{
	struct socket *sock = fd_socket(fd);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	sa->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	sa->port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (sa->family == AF_INET)
		sa->v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	else if (sa->family == AF_INET6)
		BPF_CORE_READ_INTO(&sa->v6, sk, __sk_common.skc_v6_daddr);
	else
		return 0;
	return 1;
}

static __always_inline int accept_exit(struct syscall_exit_ctx *ctx)
{
	long ret = ctx->ret;
	barrier_var(ret);
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *peer = bpf_map_lookup_elem(&accept_peers, &tid);
	u64 user = peer ? *peer : 0;
	if (peer)
		bpf_map_delete_elem(&accept_peers, &tid);
	if (ret < 0)
		return 0;
	struct sockaddr_any sa = {};
	/* accept(fd, NULL, NULL) is common: then the peer comes from the socket. */
	if (!read_sockaddr(&sa, (const void *)user, sizeof(sa)) && !socket_peer(ret, &sa))
		return 0;
	return emit_net(EV_ACCEPT, &sa, ret);
}

/* The peer is known at exit only: these two stay syscall tracepoints. */
SEC("tracepoint/syscalls/sys_exit_accept")
int on_accept_exit(struct syscall_exit_ctx *ctx) { return accept_exit(ctx); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int on_accept4_exit(struct syscall_exit_ctx *ctx) { return accept_exit(ctx); }

static __always_inline int emit_dns(struct sockaddr_any *sa, const void *buf, u64 len)
{
	if (!buf || len < 12)
		return 0;
	struct dns_event *e = reserve(sizeof(*e), EV_DNS);
	if (!e)
		return 0;
	fill_header(&e->h, EV_DNS);
	e->family = sa->family;
	e->port = 53;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (sa->family == AF_INET)
		__builtin_memcpy(e->addr, &sa->v4, 4);
	else
		__builtin_memcpy(e->addr, sa->v6, 16);
	u32 n = len > DNS_LEN ? DNS_LEN : (u32)len;
	e->len = n;
	if (bpf_probe_read_user(e->payload, n, buf) != 0) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	submit(e);
	return 0;
}

/* The destination of a send: its address argument, or the socket's connect(2). */
static __always_inline int dns_destination(struct sockaddr_any *sa, u32 fd, const void *addr, u64 addrlen)
{
	if (addr)
		return read_sockaddr(sa, addr, addrlen) && __builtin_bswap16(sa->port) == 53;
	u64 key = (bpf_get_current_pid_tgid() & 0xFFFFFFFF00000000ULL) | fd;
	struct sockaddr_any *known = bpf_map_lookup_elem(&dns_sockets, &key);
	if (!known)
		return 0;
	*sa = *known;
	return 1;
}

/* write(2) on a socket connected to port 53 (busybox and some resolvers do this). */
static __always_inline int dns_write(u32 fd, const void *buf, u64 len)
{
	u64 key = (bpf_get_current_pid_tgid() & 0xFFFFFFFF00000000ULL) | fd;
	struct sockaddr_any *known = bpf_map_lookup_elem(&dns_sockets, &key);
	if (!known || in_compat_syscall())
		return 0;
	struct sockaddr_any sa = *known;
	return emit_dns(&sa, buf, len);
}

static __always_inline int on_sendto(const unsigned long *args)
{
	struct sockaddr_any sa = {};
	if (!dns_destination(&sa, args[0], (const void *)args[4], args[5]))
		return 0;
	return emit_dns(&sa, (const void *)args[1], args[2]);
}

static __always_inline int dns_from_msghdr(u32 fd, const struct msghdr_user *user)
{
	struct msghdr_user m = {};
	if (bpf_probe_read_user(&m, sizeof(m), user) != 0)
		return 0;
	struct sockaddr_any sa = {};
	if (!dns_destination(&sa, fd, m.name, m.namelen))
		return 0;
	struct iovec_user iov = {};
	if (!m.iov || m.iovlen < 1 || bpf_probe_read_user(&iov, sizeof(iov), m.iov) != 0)
		return 0;
	return emit_dns(&sa, iov.base, iov.len);
}



static __always_inline int emit_paths(u32 type, const char *a, const char *b, u64 flags)
{
	struct path_event *e = reserve(sizeof(*e), type);
	if (!e)
		return 0;
	fill_header(&e->h, type);
	e->flags = flags;
	e->path[0] = 0;
	e->path2[0] = 0;
	if (a)
		bpf_probe_read_user_str(e->path, sizeof(e->path), a);
	if (b)
		bpf_probe_read_user_str(e->path2, sizeof(e->path2), b);
	submit(e);
	return 0;
}

static __always_inline int emit_value(u32 type, u64 a, u64 b)
{
	struct value_event *e = reserve(sizeof(*e), type);
	if (!e)
		return 0;
	fill_header(&e->h, type);
	e->a = a;
	e->b = b;
	submit(e);
	return 0;
}

/*
 * The syscalls reported with their arguments, from the one raw sys_enter hook:
 * a syscall tracepoint each would put perf's per-syscall dispatch on every
 * syscall of the machine (measured: +8 % on an open/close loop for these alone).
 * A subprogram, so its stack and branches stay apart from the hot path's.
 */
static __noinline int on_syscall_with_args(long nr, const unsigned long *args)
{
	switch (nr) {
	case NR_CONNECT:
		return on_connect(args);
	case NR_BIND:
		return on_bind(args);
	case NR_ACCEPT:
	case NR_ACCEPT4:
		return accept_enter(args);
	case NR_SENDTO:
		return on_sendto(args);
	case NR_SENDMSG:
	/* sendmmsg: the first message (struct mmsghdr starts with a msghdr). */
	case NR_SENDMMSG:
		return dns_from_msghdr(args[0], (const struct msghdr_user *)args[1]);
	case NR_MEMFD_CREATE:
		return emit_paths(EV_MEMFD, (const char *)args[0], 0, args[1]);
	case NR_SYMLINK:
		return emit_paths(EV_SYMLINK, (const char *)args[0], (const char *)args[1], 0);
	case NR_SYMLINKAT:
		return emit_paths(EV_SYMLINK, (const char *)args[0], (const char *)args[2], 0);
	case NR_LINK:
		return emit_paths(EV_LINK, (const char *)args[0], (const char *)args[1], 0);
	case NR_LINKAT:
		return emit_paths(EV_LINK, (const char *)args[1], (const char *)args[3], 0);
	case NR_PTRACE:
		return emit_value(EV_PTRACE, args[0], args[1]);
	case NR_BPF:
		return emit_value(EV_BPF, args[0], 0);
	case NR_UNSHARE:
		return emit_value(EV_UNSHARE, args[0], 0);
	case NR_SETNS:
		return emit_value(EV_SETNS, args[1], 0);
	}
	return 0;
}
