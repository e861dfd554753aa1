/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files: opens (deduplicated per cgroup, path and flags), links and symlinks,
 * each called from the raw sys_enter hook with its syscall's arguments.
 */
#ifndef IMPRINT_HOOKS_FILES_H
#define IMPRINT_HOOKS_FILES_H

static __always_inline int emit_open(struct pt_regs *regs, u64 cgroup_id, u64 epoch,
				     const char *filename, u64 flags)
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
	if (in_compat_syscall(regs))
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
