/* SPDX-License-Identifier: Apache-2.0 */
/* Capabilities: each one's first check per cgroup, from capability/cap_capable. */
#ifndef IMPRINT_HOOKS_CAPABILITIES_H
#define IMPRINT_HOOKS_CAPABILITIES_H

SEC("tracepoint/capability/cap_capable")
int on_cap_capable(struct cap_capable_ctx *ctx)
{
	int cap = ctx->cap;
	if (cap < 0 || cap > 63)
		return 0;
	struct seen *s = seen_for(bpf_get_current_cgroup_id());
	if (!s)
		return 0;
	u64 bit = 1ULL << cap;
	u64 old = __sync_fetch_and_or(&s->capabilities, bit);
	if (old & bit)
		return 0;
	struct value_event *e = reserve(sizeof(*e), EV_CAPABILITY);
	if (!e)
		return 0;
	fill_header(&e->h, EV_CAPABILITY);
	e->a = cap;
	e->b = ctx->ret;
	submit(e);
	return 0;
}

#endif
