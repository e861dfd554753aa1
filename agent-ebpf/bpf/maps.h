/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every map of the sensor and the sizes that bound them. User space reads
 * `events`, `drops` and `deduped` by name (agent-ebpf/src/lib.rs).
 */
#ifndef IMPRINT_MAPS_H
#define IMPRINT_MAPS_H

#define RINGBUF_BYTES (8 << 20)
#define WAKEUP_BYTES (256 << 10)
#define DEDUP_ENTRIES 65536
#define MAX_CGROUPS 10240
#define MAX_SYSCALLS 512

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

/* Records lost because the ring buffer was full, by event type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

/* Records lost because the ring buffer was full, by cgroup (user space reads and clears it). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, u64);
	__type(value, u64);
} drops_by_cgroup SEC(".maps");

/* Records suppressed by in-kernel dedup, by event type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, u32);
	__type(value, u64);
} deduped SEC(".maps");

/*
 * hash is SipHash-2-4 of what the event names (a path, an address) under
 * dedup_key, a random key user space sets at each load, so a name crafted to
 * collide with another cannot hide it. exe_inode and exe_ino name the
 * executable (its inode's address and number): what one process opened first
 * does not hide the same open by another program.
 */
struct dedup_key {
	u64 cgroup_id;
	u64 epoch;
	u64 hash;
	u64 exe_inode;
	u64 exe_ino;
	u32 type;
	u32 aux;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEDUP_ENTRIES);
	__type(key, struct dedup_key);
	__type(value, u8);
} dedup SEC(".maps");

/*
 * Syscalls and capabilities seen per cgroup, and the epoch that scopes the
 * cgroup's dedup entries. The entry is dropped when a container runtime's init
 * execs the entrypoint, so what the runtime did while setting the container up
 * does not hide the container's own first uses.
 */
struct seen {
	u64 epoch;
	u64 syscalls[MAX_SYSCALLS / 64];
	u64 capabilities;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, u64);
	__type(value, struct seen);
} seen_by_cgroup SEC(".maps");

/* Sockets connected to port 53, by (pid << 32 | fd): DNS sent without an address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, struct sockaddr_any);
} dns_sockets SEC(".maps");

/* accept(2) peer buffers between enter and exit, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, u64);
} accept_peers SEC(".maps");

/* Per-CPU scratch for a path, so a deduplicated open never touches the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, char[2 * PATH_LEN]);
} path_scratch SEC(".maps");

/* The dedup hash's key: random, set by user space before load (agent/src/sensor.rs). */
const volatile u64 dedup_key[2] = {};

#endif
