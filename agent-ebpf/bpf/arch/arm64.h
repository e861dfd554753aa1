/* SPDX-License-Identifier: Apache-2.0 */
/* arm64 (aarch64): see arch.h for what each name means. */
#ifndef IMPRINT_ARCH_ARM64_H
#define IMPRINT_ARCH_ARM64_H

/*
 * The first member of task_struct (CONFIG_THREAD_INFO_IN_TASK), declared for
 * task_struct's shape; nothing here reads it (the compat check uses pstate).
 */
struct thread_info {
	unsigned long flags;
} __attribute__((preserve_access_index));

/*
 * struct pt_regs begins with the UAPI's user_pt_regs (in a union): x0..x30, sp,
 * pc, pstate. Read through it, as libbpf's PT_REGS macros do for arm64, so no
 * field inside the kernel's anonymous union is named.
 */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));

/* Arguments 0..5 are x0..x5 at syscall entry (the syscall wrappers read them there). */
#define SYSCALL_ARG(r, n) BPF_CORE_READ((struct user_pt_regs *)(r), regs[n])

/*
 * An AArch32 task's saved pstate has M[4] (PSR_MODE32_BIT) set: architectural,
 * unlike the TIF_32BIT flag's bit number. Its syscalls are numbered as on arm.
 */
#define PSR_MODE32_BIT 0x10
#define ARCH_IN_COMPAT_SYSCALL(r) (BPF_CORE_READ((struct user_pt_regs *)(r), pstate) & PSR_MODE32_BIT)

/*
 * include/uapi/asm-generic/unistd.h: only the *at forms exist, so NR_OPEN,
 * NR_LINK and NR_SYMLINK stay undefined.
 */
#define NR_SYMLINKAT 36
#define NR_LINKAT 37
#define NR_OPENAT 56
#define NR_WRITE 64
#define NR_UNSHARE 97
#define NR_INIT_MODULE 105
#define NR_PTRACE 117
#define NR_BIND 200
#define NR_ACCEPT 202
#define NR_CONNECT 203
#define NR_SENDTO 206
#define NR_SENDMSG 211
#define NR_EXECVE 221
#define NR_ACCEPT4 242
#define NR_SETNS 268
#define NR_SENDMMSG 269
#define NR_FINIT_MODULE 273
#define NR_MEMFD_CREATE 279
#define NR_BPF 280
#define NR_EXECVEAT 281
#define NR_OPENAT2 437

#endif
