/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files: opens (deduplicated per cgroup, path and flags), links and symlinks,
 * each called from the raw sys_enter hook with its syscall's arguments.
 */
#ifndef IMPRINT_HOOKS_FILES_H
#define IMPRINT_HOOKS_FILES_H

/*
 * Where a relative name is resolved from: the working directory for AT_FDCWD,
 * else the directory fd's file. Written into buf as the task sees it; returns
 * its length, 0 when there is none (a bad fd: the open fails anyway).
 */
static __always_inline u32 open_base(int dirfd, char *buf, int *whole)
{
	if (dirfd == AT_FDCWD) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		return task_path(BPF_CORE_READ(task, fs, pwd.mnt), BPF_CORE_READ(task, fs, pwd.dentry),
				 buf, whole);
	}
	struct file *f = fd_file(dirfd);
	if (!f)
		return 0;
	return task_path(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), buf, whole);
}

/*
 * An open, judged by the name resolved at entry. A relative name is joined to
 * its base (the working directory or the directory fd, read from the kernel's
 * dentries, so a symlinked or chdir'd base is what the kernel holds); `..` and
 * symlinks in the name itself are left for user space and the rules (a
 * symlink is its own event). Failed opens are seen too: an exit hook would see
 * only the ones that succeeded, and would put a second program on every
 * syscall of the machine. The dedup key is the keyed hash of the whole path
 * with the executable, so `etc/shadow` from `/app` does not hide `/etc/shadow`.
 */
static __always_inline int emit_open(struct pt_regs *regs, u64 cgroup_id, u64 epoch, int dirfd,
				     const char *filename, u64 flags)
{
	u32 zero = 0;
	char *path = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!path)
		return 0;
	char first = 0;
	bpf_probe_read_user(&first, 1, filename);
	u32 info = 0, off = 0;
	long got;
	if (first != '/') {
		int whole = 1;
		off = open_base(dirfd, path, &whole);
		if (!whole)
			info |= OPEN_TRUNCATED;
		info |= OPEN_RELATIVE;
		if (off > 1 && off < PATH_LEN) {
			path[off & (PATH_LEN - 1)] = '/';
			off++;
		}
		if (off >= PATH_LEN) {
			off = PATH_LEN - 1;
			info |= OPEN_TRUNCATED;
		}
		barrier_var(off);
		got = bpf_probe_read_user_str(path + (off & (PATH_LEN - 1)), PATH_LEN, filename);
	} else {
		got = bpf_probe_read_user_str(path, PATH_LEN, filename);
	}
	if (got <= 0)
		return 0;
	if (got == PATH_LEN)
		info |= OPEN_TRUNCATED;
	u32 len = off + (u32)got - 1;
	struct exe_id exe = current_exe();
	struct dedup_key key = {
		.cgroup_id = cgroup_id,
		.epoch = epoch,
		.hash = keyed_hash(0, 0, path, len),
		.exe_inode = exe.inode,
		.exe_ino = exe.ino,
		.type = EV_OPEN,
		.aux = (u32)flags,
	};
	/* A prefix names more than one file: never deduplicated. */
	if (!(info & OPEN_TRUNCATED) && bpf_map_lookup_elem(&dedup, &key)) {
		count(&deduped, EV_OPEN);
		return 0;
	}
	/* Only now, off the steady state's path: a 32-bit call must not even seed dedup. */
	if (in_compat_syscall(regs))
		return 0;
	u8 one = 1;
	if (!(info & OPEN_TRUNCATED))
		bpf_map_update_elem(&dedup, &key, &one, BPF_ANY);
	struct open_event *e = reserve(sizeof(*e), EV_OPEN);
	if (!e)
		return 0;
	fill_header(&e->h, EV_OPEN);
	e->flags = (u32)flags;
	e->info = info;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	submit(e);
	return 0;
}

#ifdef NR_SYMLINK
/* symlink(target, linkpath) */
static __always_inline int on_symlink(const unsigned long *args)
{
	return emit_paths(EV_SYMLINK, (const char *)args[0], (const char *)args[1], 0);
}
#endif

/* symlinkat(target, newdirfd, linkpath) */
static __always_inline int on_symlinkat(const unsigned long *args)
{
	return emit_paths(EV_SYMLINK, (const char *)args[0], (const char *)args[2], 0);
}

#ifdef NR_LINK
/* link(oldpath, newpath) */
static __always_inline int on_link(const unsigned long *args)
{
	return emit_paths(EV_LINK, (const char *)args[0], (const char *)args[1], 0);
}
#endif

/* linkat(olddirfd, oldpath, newdirfd, newpath, flags) */
static __always_inline int on_linkat(const unsigned long *args)
{
	return emit_paths(EV_LINK, (const char *)args[1], (const char *)args[3], 0);
}

#endif
