/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The user-space ABI these programs use: the kernel's fixed-width integer types
 * and the few BPF constants of <linux/bpf.h> they name, as the UAPI defines them
 * (stable ABI: values never change). Vendored so the programs include no host
 * header with an architecture in it (<linux/types.h> pulls <asm/types.h> from
 * /usr/include/<multiarch>/), so one x86_64 host builds them for arm64 too.
 */
#ifndef IMPRINT_UAPI_H
#define IMPRINT_UAPI_H

/* <asm-generic/int-ll64.h>, which every Linux architecture uses. */
typedef signed char __s8;
typedef unsigned char __u8;
typedef signed short __s16;
typedef unsigned short __u16;
typedef signed int __s32;
typedef unsigned int __u32;
typedef signed long long __s64;
typedef unsigned long long __u64;

/* <linux/types.h>: what libbpf's helper declarations name. */
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

/* <linux/bpf.h> */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_map_update_elem flags */
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

/* bpf_ringbuf_submit/discard flags */
enum {
	BPF_RB_NO_WAKEUP = (1ULL << 0),
	BPF_RB_FORCE_WAKEUP = (1ULL << 1),
};

/* bpf_ringbuf_query flags */
enum {
	BPF_RB_AVAIL_DATA = 0,
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#endif
