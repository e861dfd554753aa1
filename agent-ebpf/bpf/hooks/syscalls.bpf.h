/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The raw sys_enter hook: the per-cgroup syscall bitmap, and the dispatch of
 * the syscalls reported with their arguments to the other families' handlers.
 * Included last: it calls into all of them.
 */
#ifndef IMPRINT_HOOKS_SYSCALLS_H
#define IMPRINT_HOOKS_SYSCALLS_H

static __always_inline int reported_with_args(long nr)
{
	switch (nr) {
	case NR_CONNECT: case NR_ACCEPT: case NR_SENDTO: case NR_SENDMSG: case NR_BIND:
	case NR_PTRACE: case NR_LINKAT: case NR_SYMLINKAT:
	case NR_UNSHARE: case NR_ACCEPT4: case NR_SENDMMSG: case NR_SETNS:
	case NR_MEMFD_CREATE: case NR_BPF:
#ifdef NR_LINK
	case NR_LINK:
#endif
#ifdef NR_SYMLINK
	case NR_SYMLINK:
#endif
		return 1;
	}
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
		return on_memfd_create(args);
#ifdef NR_SYMLINK
	case NR_SYMLINK:
		return on_symlink(args);
#endif
	case NR_SYMLINKAT:
		return on_symlinkat(args);
#ifdef NR_LINK
	case NR_LINK:
		return on_link(args);
#endif
	case NR_LINKAT:
		return on_linkat(args);
	case NR_PTRACE:
		return on_ptrace(args);
	case NR_BPF:
		return on_bpf(args);
	case NR_UNSHARE:
		return on_unshare(args);
	case NR_SETNS:
		return on_setns(args);
	}
	return 0;
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
	/* Rare under their native numbers: checked for a 32-bit call at once. Opens
	 * and write are checked only when they would report something. */
	int rare = nr == NR_INIT_MODULE || nr == NR_FINIT_MODULE || nr == NR_EXECVE ||
		   nr == NR_EXECVEAT || reported_with_args(nr);
	if (rare && in_compat_syscall(regs))
		return 0;
	u64 cgroup_id = bpf_get_current_cgroup_id();
	if (nr == NR_INIT_MODULE || nr == NR_FINIT_MODULE)
		on_module_load(nr);
	if ((nr == NR_EXECVE || nr == NR_EXECVEAT) && is_runtime_init()) {
		bpf_map_delete_elem(&seen_by_cgroup, &cgroup_id);
		return 0;
	}
	if (reported_with_args(nr)) {
		unsigned long args[6] = {
			SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			SYSCALL_ARG(regs, 3), SYSCALL_ARG(regs, 4), SYSCALL_ARG(regs, 5),
		};
		on_syscall_with_args(nr, args);
	}
	struct seen *s = seen_for(cgroup_id);
	if (!s)
		return 0;
	if (nr == NR_OPENAT)
		emit_open(regs, cgroup_id, s->epoch, (int)SYSCALL_ARG(regs, 0),
			  (const char *)SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2));
#ifdef NR_OPEN
	else if (nr == NR_OPEN)
		emit_open(regs, cgroup_id, s->epoch, AT_FDCWD, (const char *)SYSCALL_ARG(regs, 0),
			  SYSCALL_ARG(regs, 1));
#endif
	else if (nr == NR_OPENAT2) {
		struct open_how_user how = {};
		bpf_probe_read_user(&how, sizeof(how), (void *)SYSCALL_ARG(regs, 2));
		emit_open(regs, cgroup_id, s->epoch, (int)SYSCALL_ARG(regs, 0),
			  (const char *)SYSCALL_ARG(regs, 1), how.flags);
	}
	else if (nr == NR_WRITE)
		dns_write(regs, SYSCALL_ARG(regs, 0), (const void *)SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2));
	u64 bit = 1ULL << (nr & 63);
	u64 *word = &s->syscalls[(nr >> 6) & (MAX_SYSCALLS / 64 - 1)];
	/* A plain read first: the atomic (a locked instruction) only on a first use. */
	if (*word & bit)
		return 0;
	if (!rare && in_compat_syscall(regs))
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

#endif
