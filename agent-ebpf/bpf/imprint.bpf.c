// SPDX-License-Identifier: Apache-2.0
/*
 * imprint's sensor: tracepoints only (no kprobes, fentry or LSM), CO-RE.
 *
 * Every event carries the cgroup v2 id of the task; user space maps it to a
 * container. Steady workloads send almost nothing: opens, connects and binds
 * pass an LRU of (cgroup, hash, flags) first, syscalls and capabilities a
 * per-cgroup bitmap, so only the first occurrence reaches user space. The ring
 * buffer is woken only once enough data is waiting (user space also polls on a
 * short timeout), and every record that does not fit is counted in `drops`.
 *
 * This file is the one translation unit: the headers below hold the maps, the
 * shared helpers and one hook family each, and are compiled together into one
 * object, so there is one set of maps that every program shares, and no static
 * linking step (bpftool gen object) whose output the loader would have to
 * accept. Their order matters only in that a header uses what the ones before
 * it define; hooks/syscalls.bpf.h, which dispatches to the other families,
 * comes last. What differs by architecture is in arch.h.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "events.h"
#include "maps.h"
#include "helpers.h"

#include "hooks/process.bpf.h"
#include "hooks/capabilities.bpf.h"
#include "hooks/files.bpf.h"
#include "hooks/network.bpf.h"
#include "hooks/kernel.bpf.h"
#include "hooks/syscalls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
