/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network: connect, bind and accept (the peer, at accept's exit), and DNS
 * queries sent to port 53 (sendto, sendmsg, sendmmsg, and write on a socket
 * connected to port 53). The entry handlers are called from the raw sys_enter
 * hook with their syscall's arguments.
 */
#ifndef IMPRINT_HOOKS_NETWORK_H
#define IMPRINT_HOOKS_NETWORK_H

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
	u64 lo = sa->v4, hi = 0;
	if (sa->family == AF_INET6) {
		__builtin_memcpy(&lo, sa->v6, 8);
		__builtin_memcpy(&hi, sa->v6 + 8, 8);
	}
	u32 zero = 0;
	char *scratch = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!scratch)
		return 0;
	u64 hash = keyed_hash(lo, hi, scratch, 0);
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
static __always_inline int dns_write(struct pt_regs *regs, u32 fd, const void *buf, u64 len)
{
	u64 key = (bpf_get_current_pid_tgid() & 0xFFFFFFFF00000000ULL) | fd;
	struct sockaddr_any *known = bpf_map_lookup_elem(&dns_sockets, &key);
	if (!known || in_compat_syscall(regs))
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

#endif
