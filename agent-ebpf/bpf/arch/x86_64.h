/* SPDX-License-Identifier: Apache-2.0 */
/* x86_64: see arch.h for what each name means. */
#ifndef IMPRINT_ARCH_X86_64_H
#define IMPRINT_ARCH_X86_64_H

/* The first member of task_struct (CONFIG_THREAD_INFO_IN_TASK). */
struct thread_info {
	__u32 status;
} __attribute__((preserve_access_index));

/* Syscall argument registers (args 0..5: di, si, dx, r10, r8, r9). */
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long r9;
} __attribute__((preserve_access_index));

#define SYSCALL_ARG_REG_0 di
#define SYSCALL_ARG_REG_1 si
#define SYSCALL_ARG_REG_2 dx
#define SYSCALL_ARG_REG_3 r10
#define SYSCALL_ARG_REG_4 r8
#define SYSCALL_ARG_REG_5 r9
#define SYSCALL_ARG(r, n) BPF_CORE_READ((r), SYSCALL_ARG_REG_##n)

/*
 * thread_info.status: the task is in a 32-bit (int 0x80) syscall, which a
 * 64-bit task may make at any time. Read from the task, not the registers.
 */
#define TS_COMPAT 0x0002
#define ARCH_IN_COMPAT_SYSCALL(r) \
	(BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), thread_info.status) & TS_COMPAT)

/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_WRITE 1
#define NR_OPEN 2
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_BIND 49
#define NR_EXECVE 59
#define NR_LINK 86
#define NR_SYMLINK 88
#define NR_PTRACE 101
#define NR_INIT_MODULE 175
#define NR_OPENAT 257
#define NR_LINKAT 265
#define NR_SYMLINKAT 266
#define NR_UNSHARE 272
#define NR_ACCEPT4 288
#define NR_SENDMMSG 307
#define NR_SETNS 308
#define NR_FINIT_MODULE 313
#define NR_MEMFD_CREATE 319
#define NR_BPF 321
#define NR_EXECVEAT 322
#define NR_OPENAT2 437

#endif
