/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every hook family uses: counting, reserving and submitting records,
 * their header, hashing and dedup, a descriptor's file or socket, the
 * executable's path, and the 32-bit syscall check.
 */
#ifndef IMPRINT_HELPERS_H
#define IMPRINT_HELPERS_H

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

/* A value_event: the events that are a number or two. */
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

/* A path_event with up to two user-space strings (NULL for none). */
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

/*
 * A 32-bit syscall numbers its calls differently (on x86_64, 101 is ioperm, not
 * ptrace): what is decoded by number is skipped for it, as syscall tracepoints
 * skip it. `regs` are the entering syscall's (arch.h says which it reads).
 */
static __always_inline int in_compat_syscall(struct pt_regs *regs)
{
	return ARCH_IN_COMPAT_SYSCALL(regs);
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

#endif
