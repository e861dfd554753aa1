/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reaching into the kernel and other processes: module loads, bpf(2), ptrace(2),
 * namespaces (unshare, setns) and memfd_create(2), each called from the raw
 * sys_enter hook with its syscall's arguments.
 */
#ifndef IMPRINT_HOOKS_KERNEL_H
#define IMPRINT_HOOKS_KERNEL_H

/*
 * init_module / finit_module: from sys_enter, because kernels built without
 * modules have no module tracepoints.
 */
static __always_inline void on_module_load(long nr)
{
	struct value_event *m = reserve(sizeof(*m), EV_MODULE);
	if (m) {
		fill_header(&m->h, EV_MODULE);
		m->a = nr == NR_FINIT_MODULE;
		m->b = 0;
		submit(m);
	}
}

/* ptrace(request, pid, addr, data) */
static __always_inline int on_ptrace(const unsigned long *args)
{
	return emit_value(EV_PTRACE, args[0], args[1]);
}

/* bpf(cmd, attr, size) */
static __always_inline int on_bpf(const unsigned long *args)
{
	return emit_value(EV_BPF, args[0], 0);
}

/* unshare(flags) */
static __always_inline int on_unshare(const unsigned long *args)
{
	return emit_value(EV_UNSHARE, args[0], 0);
}

/* setns(fd, nstype) */
static __always_inline int on_setns(const unsigned long *args)
{
	return emit_value(EV_SETNS, args[1], 0);
}

/* memfd_create(name, flags) */
static __always_inline int on_memfd_create(const unsigned long *args)
{
	return emit_paths(EV_MEMFD, (const char *)args[0], 0, args[1]);
}

#endif
