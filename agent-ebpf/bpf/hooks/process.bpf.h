/* SPDX-License-Identifier: Apache-2.0 */
/* Process lifecycle: the sched tracepoints for exec, fork and exit. */
#ifndef IMPRINT_HOOKS_PROCESS_H
#define IMPRINT_HOOKS_PROCESS_H

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_event *e = reserve(sizeof(*e), EV_EXEC);
	if (!e)
		return 0;
	fill_header(&e->h, EV_EXEC);
	unsigned int off = BPF_CORE_READ(ctx, __data_loc_filename) & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->parent_pid = BPF_CORE_READ(task, real_parent, tgid);
	exe_path(task, e->exe);

	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	u64 len = end > start ? end - start : 0;
	if (len > ARGS_LEN - 1)
		len = ARGS_LEN - 1;
	e->args_len = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len & (ARGS_LEN - 1), (void *)start) == 0)
		e->args_len = len;

	e->flags = 0;
	if (fd_is_socket(0))
		e->flags |= EXEC_STDIN_SOCKET;
	if (fd_is_socket(1))
		e->flags |= EXEC_STDOUT_SOCKET;
	e->reserved = 0;
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_fork")
int on_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	struct value_event *e = reserve(sizeof(*e), EV_FORK);
	if (!e)
		return 0;
	fill_header(&e->h, EV_FORK);
	e->a = BPF_CORE_READ(ctx, child_pid);
	e->b = 0;
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	/* Threads exit too: only the process (thread group leader) counts. */
	if ((id >> 32) != (u32)id)
		return 0;
	struct value_event *e = reserve(sizeof(*e), EV_EXIT);
	if (!e)
		return 0;
	fill_header(&e->h, EV_EXIT);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->a = BPF_CORE_READ(task, exit_code);
	e->b = 0;
	submit(e);
	return 0;
}

/* runc's init, about to exec the container's entrypoint (seen at execve's entry). */
static __always_inline int is_runtime_init(void)
{
	char comm[COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	return comm[0] == 'r' && comm[1] == 'u' && comm[2] == 'n' && comm[3] == 'c' && comm[4] == ':';
}

#endif
