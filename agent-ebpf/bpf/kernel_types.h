/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel structures imprint's programs read, declared minimally and
 * marked for CO-RE: libbpf/aya relocate each field access against the running
 * kernel's BTF, so this header needs no kernel-specific layout. Only the fields
 * named here are read. The ones whose shape differs by architecture (thread_info,
 * pt_regs) are in arch/<arch>.h; nothing here includes a host header.
 */
#ifndef IMPRINT_KERNEL_TYPES_H
#define IMPRINT_KERNEL_TYPES_H

#include "uapi.h"
/* struct thread_info and struct pt_regs, whose shapes differ by architecture. */
#include "arch.h"

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef unsigned short umode_t;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct super_block {
	u32 s_dev;
};

struct inode {
	umode_t i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
};

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
};

struct vfsmount {
	struct dentry *mnt_root;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

/* A mount: the vfsmount a path names is its `mnt` member (container_of). */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

struct ns_common {
	unsigned int inum;
};

struct pid_namespace {
	struct ns_common ns;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

/* numbers[] has level + 1 entries: the task's pid in each namespace up to its own. */
struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	void *private_data;
};

struct in6_addr {
	u8 s6_addr[16];
};

/* Fields inside anonymous unions in the kernel; CO-RE finds them by name. */
struct sock_common {
	u32 skc_daddr;
	u16 skc_dport;
	u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
};

struct sock {
	struct sock_common __sk_common;
};

struct socket {
	short type;
	struct sock *sk;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
};

struct task_struct {
	struct thread_info thread_info; /* arch.h */
	int pid;
	int tgid;
	int exit_code;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct files_struct *files;
	struct fs_struct *fs;
	struct pid *thread_pid;
};

/*
 * Tracepoint records whose layout changed across kernels (sched_process_fork's
 * comms became __data_loc in 6.x): read through their BTF names, so CO-RE finds
 * each field wherever the running kernel put it.
 */
struct trace_event_raw_sched_process_fork {
	int parent_pid;
	int child_pid;
};

struct trace_event_raw_sched_process_exec {
	unsigned int __data_loc_filename;
	int pid;
	int old_pid;
};

#pragma clang attribute pop

/* Tracepoint contexts, as /sys/kernel/tracing/events/<category>/<name>/format gives them. */

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

/* syscalls/sys_enter_* and raw_syscalls/sys_enter */
struct syscall_enter_ctx {
	struct trace_entry ent;
	long id;
	unsigned long args[6];
};

/* syscalls/sys_exit_* */
struct syscall_exit_ctx {
	struct trace_entry ent;
	long id;
	long ret;
};

/* capability/cap_capable */
struct cap_capable_ctx {
	struct trace_entry ent;
	const void *cred;
	void *target_ns;
	const void *capable_ns;
	int cap;
	int ret;
};

/* User-space layouts (UAPI, stable). */
struct sockaddr_any {
	u16 family;
	u16 port; /* network order */
	union {
		u32 v4;          /* AF_INET: offset 4 */
		struct {
			u32 flowinfo;  /* AF_INET6: offset 4 */
			u8 v6[16];     /* AF_INET6: offset 8 */
		};
	};
};

struct open_how_user {
	u64 flags;
	u64 mode;
	u64 resolve;
};

struct iovec_user {
	void *base;
	unsigned long len;
};

struct msghdr_user {
	void *name;
	int namelen;
	struct iovec_user *iov;
	unsigned long iovlen;
};

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define AT_FDCWD -100

#endif
