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
	if (!e) {
		count(&drops, type);
		/* By cgroup too, so the loss is reported for the container it hit. */
		u64 cgroup_id = bpf_get_current_cgroup_id();
		u64 one = 1;
		u64 *n = bpf_map_lookup_elem(&drops_by_cgroup, &cgroup_id);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&drops_by_cgroup, &cgroup_id, &one, BPF_NOEXIST);
	}
	return e;
}

static __always_inline void submit(void *e)
{
	u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(e, waiting >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/*
 * The inode number of the current task's active pid namespace (the last of
 * thread_pid->numbers): it tells a container's process whose cgroup does not
 * name a container (one it moved itself to) from a host process.
 */
static __always_inline u32 task_pid_ns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	if (!pid)
		return 0;
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};
	u64 at = bpf_core_field_offset(struct pid, numbers) +
		 (u64)(level & 31) * bpf_core_type_size(struct upid);
	bpf_probe_read_kernel(&upid, sizeof(upid), (void *)pid + at);
	return upid.ns ? BPF_CORE_READ(upid.ns, ns.inum) : 0;
}

static __always_inline void fill_header(struct header *h, u32 type)
{
	u64 id = bpf_get_current_pid_tgid();
	h->type = type;
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->pid_ns = task_pid_ns();
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

/*
 * SipHash-2-4 (Aumasson and Bernstein), keyed with dedup_key: the standard
 * keyed hash against crafted collisions (the kernel's own hash tables use it).
 * An unkeyed or seeded-FNV hash of an attacker's path can be made to collide
 * with a sensitive one, and dedup would then hide it. The message is two words
 * then `len` bytes of `buf` (a 2 * PATH_LEN scratch buffer).
 */
#define SIP_ROTL(x, b) (u64)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3)                                              \
	do {                                                                   \
		v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
		v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;                     \
		v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;                     \
		v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); \
	} while (0)
#define SIP_WORD(m)                                                            \
	do {                                                                   \
		v3 ^= (m);                                                     \
		SIP_ROUND(v0, v1, v2, v3);                                     \
		SIP_ROUND(v0, v1, v2, v3);                                     \
		v0 ^= (m);                                                     \
	} while (0)

static __always_inline u64 keyed_hash(u64 a, u64 b, const char *buf, u32 len)
{
	u64 k0 = dedup_key[0], k1 = dedup_key[1];
	u64 v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	u64 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	if (len > 2 * PATH_LEN - 8)
		len = 2 * PATH_LEN - 8;
	SIP_WORD(a);
	SIP_WORD(b);
	u32 words = len / 8;
	for (int i = 0; i < 2 * PATH_LEN / 8 - 1; i++) {
		if (i >= words)
			break;
		u64 m;
		__builtin_memcpy(&m, buf + i * 8, 8);
		SIP_WORD(m);
	}
	u64 tail = (u64)((16 + len) & 0xff) << 56;
	u32 at = (words * 8) & (2 * PATH_LEN - 8);
	for (int j = 0; j < 7; j++) {
		if (j >= (int)(len & 7))
			break;
		tail |= (u64)(u8)buf[at + j] << (8 * j);
	}
	SIP_WORD(tail);
	v2 ^= 0xff;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The current executable: its inode's address and number. */
struct exe_id {
	u64 inode;
	u64 ino;
};

static __always_inline struct exe_id current_exe(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	struct exe_id id = { .inode = (u64)inode, .ino = 0 };
	if (inode)
		id.ino = BPF_CORE_READ(inode, i_ino);
	return id;
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

/* Whether (cgroup, hash, executable, type, aux) was sent recently; records it when not. */
static __always_inline int seen_recently_in(u64 cgroup_id, u64 epoch, u64 hash, u32 type, u32 aux)
{
	struct exe_id exe = current_exe();
	struct dedup_key key = {
		.cgroup_id = cgroup_id,
		.epoch = epoch,
		.hash = hash,
		.exe_inode = exe.inode,
		.exe_ino = exe.ino,
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

/* Components and mounts a path walk follows before it gives up (then it is a prefix). */
#define PATH_DEPTH 16
#define PATH_STEPS 24

static __always_inline struct mount *real_mount(struct vfsmount *m)
{
	return (struct mount *)((void *)m - bpf_core_field_offset(struct mount, mnt));
}

/* A path walk's state, shared by the bpf_loop callbacks below. */
struct walk {
	struct dentry *d;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root;
	struct vfsmount *root_mnt;
	const unsigned char *names[PATH_DEPTH];
	char *buf;
	u32 n;
	u32 off;
	int done;
	int whole;
};

/* One step up: to the parent dentry, or from a mount's root to its mount point. */
static long walk_up(u64 i, struct walk *w)
{
	/* Locals, not w->…: BPF_CORE_READ of w->field would relocate struct walk too. */
	struct dentry *d = w->d;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	if (d == w->root && vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	if (d == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
		if (!parent || parent == mnt) {
			w->done = 1; /* outside the task's root: up to the global root */
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = parent;
		w->vfsmnt = (struct vfsmount *)((void *)parent + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	if (w->n >= PATH_DEPTH)
		return 1;
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	w->names[w->n & (PATH_DEPTH - 1)] = BPF_CORE_READ(d, d_name.name);
	w->n++;
	if (!up || up == d) {
		w->done = 1; /* detached: a memfd's or pipe's dentry */
		return 1;
	}
	w->d = up;
	return 0;
}

/* Writes the i-th name from the top: "/" and the name. */
static long walk_write(u64 i, struct walk *w)
{
	if (i >= w->n)
		return 1;
	u32 at = w->n - 1 - (u32)i;
	u32 off = w->off;
	if (off >= PATH_LEN - 1) {
		w->whole = 0;
		return 1;
	}
	char *buf = w->buf;
	if (!buf)
		return 1;
	buf[off & (PATH_LEN - 1)] = '/';
	off++;
	long len = bpf_probe_read_kernel_str(buf + (off & (PATH_LEN - 1)), PATH_LEN,
					     w->names[at & (PATH_DEPTH - 1)]);
	if (len > 1)
		off += len - 1;
	w->off = off;
	return 0;
}

/*
 * The path of (vfsmnt, d) as the current task sees it, as d_path makes it:
 * from the dentry up to the task's root, crossing mounts to their mount
 * points. Writes "/a/b" (at most PATH_LEN - 1 bytes, "/" for the root) into
 * buf, which is 2 * PATH_LEN for the verifier, and returns its length. A
 * detached dentry (a memfd's) ends the walk with its name: "/memfd:name".
 * *whole is cleared when the walk gave up first. The loops are bpf_loop
 * callbacks: verified once, not unrolled into every caller.
 */
static __always_inline u32 task_path(struct vfsmount *vfsmnt, struct dentry *d, char *buf, int *whole)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walk w = {
		.d = d,
		.vfsmnt = vfsmnt,
		.mnt = real_mount(vfsmnt),
		.root = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.buf = buf,
		.whole = 1,
	};
	buf[0] = 0;
	*whole = 1;
	if (!d || !vfsmnt)
		return 0;
	bpf_loop(PATH_STEPS, walk_up, &w, 0);
	bpf_loop(PATH_DEPTH, walk_write, &w, 0);
	u32 off = w.off;
	*whole = w.done && w.whole;
	if (off == 0)
		buf[off++] = '/';
	if (off > PATH_LEN - 1) {
		off = PATH_LEN - 1;
		*whole = 0;
	}
	barrier_var(off);
	buf[off & (2 * PATH_LEN - 1)] = 0;
	return off;
}

/*
 * The executable's path, from mm->exe_file as the task sees it:
 * "/bin/busybox" inside a container, "/memfd:name" for a memfd. Tells what ran
 * when the exec'd name was /proc/self/exe or /dev/fd/N.
 */
static __always_inline void exe_path(struct task_struct *task, char *buf)
{
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	int whole;
	if (!exe) {
		buf[0] = 0;
		return;
	}
	task_path(BPF_CORE_READ(exe, f_path.mnt), BPF_CORE_READ(exe, f_path.dentry), buf, &whole);
}

#endif
