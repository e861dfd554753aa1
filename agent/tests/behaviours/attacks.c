/*
 * Attack behaviours busybox cannot perform, for the behaviour-rule tests: run from
 * inside a container, each one does the real thing (and may be refused by the
 * kernel afterwards, which is fine: the attempt is what the rules see).
 *
 *   attacks memfd   copy /bin/busybox into a memfd and execute it from there
 *   attacks ptrace  attach to a child process with ptrace
 *   attacks bpf     load a minimal eBPF program
 *   attacks setns   join a UTS namespace by setns(2) (busybox's nsenter may not
 *                   pass the namespace type the rule reports)
 *
 * Built statically by the test with the clang that builds the sensor.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int memfd_exec(void)
{
	int src = open("/bin/busybox", O_RDONLY);
	int fd = memfd_create("payload", 0);
	char buf[65536];
	ssize_t n;
	if (src < 0 || fd < 0)
		return 1;
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (write(fd, buf, n) != n)
			return 1;
	char *argv[] = {"true", NULL};
	char *envp[] = {NULL};
	fexecve(fd, argv, envp);
	perror("fexecve");
	return 1;
}

static int ptrace_child(void)
{
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	long r = ptrace(PTRACE_ATTACH, child, 0, 0);
	if (r == 0)
		waitpid(child, NULL, 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}

static int bpf_load(void)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (unsigned long)insns;
	attr.insn_cnt = 2;
	attr.license = (unsigned long)"GPL";
	long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd >= 0)
		close(fd);
	return 0;
}

static int setns_join(void)
{
	int fd = open("/proc/1/ns/uts", O_RDONLY);
	if (fd < 0)
		return 1;
	/* Refused without CAP_SYS_ADMIN; the attempt is what is seen. */
	setns(fd, CLONE_NEWUTS);
	close(fd);
	return 0;
}

/*
 * 32-bit syscalls from a 64-bit process (int 0x80): numbered as on i386, where
 * 101 is ioperm (ptrace on x86_64) and 272 fadvise64_64 (unshare on x86_64).
 * Neither is what its x86_64 number says, and neither may be reported as such.
 */
static int compat_calls(const char *path)
{
#if defined(__x86_64__)
	long ret;
	/* i386's 257 (remap_file_pages, which fails here) with openat's x86_64
	 * argument registers set: must neither report an open nor seed dedup. */
	register long rsi __asm__("rsi") = (long)path;
	register long rdx __asm__("rdx") = 0;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(257L), "b"(0L), "c"(0L), "r"(rsi), "r"(rdx)
			 : "memory", "r8", "r9", "r10", "r11");
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(101L), "b"(0L), "c"(0L), "d"(0L)
			 : "memory", "r8", "r9", "r10", "r11");
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(272L), "b"(-1L), "c"(0L), "d"(0L)
			 : "memory", "r8", "r9", "r10", "r11");
	return 0;
#else
	/* int 0x80 is x86's; elsewhere the test that runs this skips. */
	(void)path;
	return 2;
#endif
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "memfd"))
		return memfd_exec();
	if (!strcmp(argv[1], "ptrace"))
		return ptrace_child();
	if (!strcmp(argv[1], "bpf"))
		return bpf_load();
	if (!strcmp(argv[1], "setns"))
		return setns_join();
	if (!strcmp(argv[1], "compat"))
		return compat_calls(argc > 2 ? argv[2] : "/nonexistent");
	return 2;
}
