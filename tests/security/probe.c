/*
 * The escape probe: run inside a container, it tries each class of container
 * escape and prints one line per attempt:
 *
 *     <name> allowed|blocked <detail>
 *
 * "allowed" means the kernel let the step that an escape needs happen (the
 * permission check passed); "blocked" that it refused (seccomp, a missing
 * capability, a read-only or masked path, the device cgroup).
 *
 * It never harms the host: it opens control files for writing but never
 * writes them (sysrq-trigger, core_pattern, uevent_helper, release_agent), asks
 * kernel interfaces that change state with arguments the kernel rejects only
 * after its permission check (init_module, kexec_load, open_by_handle_at), opens
 * devices read-only and reads nothing, and undoes what it made (mounts,
 * namespaces live in a child that exits, fds are closed).
 *
 * Built static at test time (tests/security/test_escape_probe.py), so it runs
 * in an empty root filesystem under any engine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/kexec.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, int allowed, const char *detail)
{
	printf("%s %s %s\n", name, allowed ? "allowed" : "blocked", detail);
	fflush(stdout);
}

static void report_errno(const char *name, int allowed, const char *what, int err)
{
	char detail[256];
	if (allowed)
		snprintf(detail, sizeof detail, "%s", what);
	else
		snprintf(detail, sizeof detail, "%s: %s", what, strerror(err));
	report(name, allowed, detail);
}

/* an fd opened for writing, closed unwritten */
static void open_for_write(const char *name, const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		close(fd);
	report_errno(name, fd >= 0, path, err);
}

static char scratch[] = "/tmp/probe-XXXXXX";

static void probe_mount(void)
{
	int ok = mount("probe", scratch, "tmpfs", 0, "size=4k") == 0;
	int err = errno;
	if (ok)
		umount2(scratch, MNT_DETACH);
	report_errno("mount", ok, "mount a tmpfs", err);
}

static void probe_module(void)
{
	/* fd -1: EBADF once CAP_SYS_MODULE and seccomp let it through; nothing is loaded */
	long rc = syscall(SYS_finit_module, -1, "", 0);
	int err = errno;
	report_errno("load_module", rc == 0 || err == EBADF, "finit_module", err);
}

static void probe_kexec(void)
{
	/* an unknown flag: EINVAL after the CAP_SYS_BOOT check; nothing is loaded or unloaded */
	long rc = syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x8000UL);
	int err = errno;
	report_errno("kexec", rc == 0 || err == EINVAL, "kexec_load", err);
}

/* a block device: one the container has in /dev, else one made with mknod (loop0) */
static void probe_raw_disk(void)
{
	char path[300] = "";
	DIR *dev = opendir("/dev");
	struct dirent *entry;
	struct stat st;
	while (dev && (entry = readdir(dev)) != NULL) {
		snprintf(path, sizeof path, "/dev/%s", entry->d_name);
		if (stat(path, &st) == 0 && S_ISBLK(st.st_mode))
			break;
		path[0] = '\0';
	}
	if (dev)
		closedir(dev);
	char made[64];
	snprintf(made, sizeof made, "%s-blk", scratch);
	if (!path[0]) {
		if (mknod(made, S_IFBLK | 0600, makedev(7, 0)) != 0) {
			report_errno("raw_disk", 0, "mknod a block device", errno);
			return;
		}
		snprintf(path, sizeof path, "%s", made);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		close(fd);
	unlink(made);
	report_errno("raw_disk", fd >= 0, path, err);
}

static void probe_dev_mem(void)
{
	char made[64];
	const char *path = "/dev/mem";
	snprintf(made, sizeof made, "%s-mem", scratch);
	if (access(path, F_OK) != 0) {
		if (mknod(made, S_IFCHR | 0600, makedev(1, 1)) != 0) {
			report_errno("dev_mem", 0, "mknod /dev/mem", errno);
			return;
		}
		path = made;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		close(fd);
	unlink(made);
	report_errno("dev_mem", fd >= 0, "open /dev/mem", err);
}

static void probe_keyring(void)
{
	/* KEYCTL_GET_KEYRING_ID (0) of the user keyring (-4), not created */
	long rc = syscall(SYS_keyctl, 0, -4, 0);
	int err = errno;
	report_errno("keyring", rc >= 0, "keyctl", err);
}

static void probe_bpf(void)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
	int err = errno;
	if (fd >= 0)
		close((int)fd);
	report_errno("bpf", fd >= 0, "bpf map", err);
}

static void probe_perf(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr;
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.disabled = 1;
	/* kernel samples too: what an attacker wants, and what perf_event_paranoid guards */
	long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
	int err = errno;
	if (fd >= 0)
		close((int)fd);
	report_errno("perf", fd >= 0, "perf_event_open", err);
}

static void probe_open_by_handle(void)
{
	struct {
		struct file_handle handle;
		unsigned char bytes[128];
	} h;
	int mount_id;
	memset(&h, 0, sizeof h);
	h.handle.handle_bytes = sizeof h.bytes;
	if (name_to_handle_at(AT_FDCWD, "/", &h.handle, &mount_id, 0) != 0) {
		/* a made-up handle: the permission check comes before the handle is looked at */
		h.handle.handle_bytes = 8;
		h.handle.handle_type = 1;
	}
	int fd = open_by_handle_at(AT_FDCWD, &h.handle, O_RDONLY | O_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		close(fd);
	report_errno("open_by_handle", fd >= 0 || (err != EPERM && err != ENOSYS), "open_by_handle_at", err);
}

static void probe_proc_unmask(void)
{
	/* masked: /dev/null (a character device) or an empty tmpfs is mounted over it */
	umount2("/proc/kcore", MNT_DETACH);
	struct stat st;
	int real = stat("/proc/kcore", &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
	int fd = real ? open("/proc/kcore", O_RDONLY | O_CLOEXEC) : -1;
	int err = real ? errno : EACCES;
	if (fd >= 0)
		close(fd);
	report_errno("proc_unmask", fd >= 0, "/proc/kcore unmasked and readable", err);
}

static void probe_release_agent(void)
{
	char path[300];
	int ok = 0;
	int err = ENOENT;
	/* the host's hierarchies as the container sees them, then a fresh mount of one */
	const char *controllers[] = {"memory", "rdma", "pids", "cpu,cpuacct", "devices", NULL};
	for (int i = 0; controllers[i] && !ok; i++) {
		snprintf(path, sizeof path, "/sys/fs/cgroup/%s/release_agent", controllers[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			ok = 1;
		} else if (errno != ENOENT) {
			err = errno;
		}
	}
	for (int i = 0; controllers[i] && !ok; i++) {
		if (mount("cgroup", scratch, "cgroup", 0, controllers[i]) != 0) {
			err = errno;
			continue;
		}
		snprintf(path, sizeof path, "%s/release_agent", scratch);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			ok = 1;
		} else {
			err = errno;
		}
		umount2(scratch, MNT_DETACH);
	}
	report_errno("release_agent", ok, "a cgroup v1 release_agent writable", err);
}

static void probe_chroot(void)
{
	/* the classic double chroot, in a child: does ".." lead above the container's root? */
	struct stat before;
	stat("/", &before);
	pid_t pid = fork();
	if (pid == 0) {
		char inner[64];
		snprintf(inner, sizeof inner, "%s-chroot", scratch);
		mkdir(inner, 0700);
		int dirfd = open("/", O_RDONLY | O_DIRECTORY);
		if (chroot(inner) != 0)
			_exit(2);
		rmdir(inner);
		if (fchdir(dirfd) != 0)
			_exit(2);
		for (int i = 0; i < 64; i++)
			if (chdir("..") != 0)
				_exit(2);
		if (chroot(".") != 0)
			_exit(2);
		struct stat after;
		stat("/", &after);
		_exit(after.st_dev != before.st_dev || after.st_ino != before.st_ino ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	char inner[64];
	snprintf(inner, sizeof inner, "%s-chroot", scratch);
	rmdir(inner);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 3;
	report("chroot_escape", code == 0,
	       code == 2 ? "chroot refused" : code == 1 ? "chroot works but .. stops at the container's root"
							: "left the container's root");
}

static void probe_proc_root(void)
{
	/* a process whose root is not ours: /proc/<pid>/root leads into another filesystem */
	struct stat self;
	stat("/", &self);
	DIR *proc = opendir("/proc");
	struct dirent *entry;
	int found = 0;
	char path[300];
	while (proc && (entry = readdir(proc)) != NULL && !found) {
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
			continue;
		struct stat other;
		snprintf(path, sizeof path, "/proc/%s/root/", entry->d_name);
		if (stat(path, &other) == 0 && (other.st_dev != self.st_dev || other.st_ino != self.st_ino))
			found = 1;
	}
	if (proc)
		closedir(proc);
	report("proc_pid_root", found, found ? path : "every visible process shares the container's root");
}

static void probe_userns(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
	int status = 0;
	waitpid(pid, &status, 0);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
	report_errno("user_namespace", code == 0, "unshare(CLONE_NEWUSER)", code);
}

static void probe_ptrace(void)
{
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	long rc = ptrace(PTRACE_SEIZE, child, 0, 0);
	int err = errno;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	report_errno("ptrace", rc == 0, "ptrace a process of the container", err);
}

static void probe_io_uring(void)
{
	struct io_uring_params params;
	memset(&params, 0, sizeof params);
	long fd = syscall(SYS_io_uring_setup, 1, &params);
	int err = errno;
	if (fd >= 0)
		close((int)fd);
	report_errno("io_uring", fd >= 0, "io_uring_setup", err);
}

static void probe_userfaultfd(void)
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	int err = errno;
	if (fd < 0) /* user-mode-only faults need no capability since 5.11 */
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | 1);
	if (fd >= 0)
		close((int)fd);
	else
		err = errno;
	report_errno("userfaultfd", fd >= 0, "userfaultfd", err);
}

static void probe_socket(const char *name, int family, int type, int protocol, const char *what)
{
	int fd = socket(family, type | SOCK_CLOEXEC, protocol);
	int err = errno;
	if (fd >= 0)
		close(fd);
	report_errno(name, fd >= 0, what, err);
}

static void probe_ip_hdrincl(void)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd < 0) {
		report_errno("raw_ip_forge", 0, "raw ICMP socket", errno);
		return;
	}
	int one = 1;
	int rc = setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
	int err = errno;
	close(fd);
	report_errno("raw_ip_forge", rc == 0, "IP_HDRINCL on a raw socket", err);
}

static void probe_kernel_log(void)
{
	/* SYSLOG_ACTION_SIZE_BUFFER: reads nothing */
	long rc = syscall(SYS_syslog, 10, NULL, 0);
	int err = errno;
	report_errno("kernel_log", rc >= 0, "syslog", err);
}

int main(void)
{
	if (!mkdtemp(scratch)) {
		strcpy(scratch, "/probe-scratch");
		mkdir(scratch, 0700);
	}
	probe_mount();
	probe_module();
	probe_kexec();
	probe_raw_disk();
	probe_dev_mem();
	probe_keyring();
	probe_bpf();
	probe_perf();
	probe_open_by_handle();
	open_for_write("sysrq", "/proc/sysrq-trigger");
	open_for_write("core_pattern", "/proc/sys/kernel/core_pattern");
	probe_release_agent();
	open_for_write("uevent_helper", "/sys/kernel/uevent_helper");
	probe_proc_unmask();
	probe_chroot();
	probe_proc_root();
	probe_userns();
	probe_ptrace();
	probe_io_uring();
	probe_userfaultfd();
	probe_socket("raw_socket", AF_INET, SOCK_RAW, IPPROTO_TCP, "raw TCP socket");
	probe_socket("packet_socket", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), "packet socket");
	probe_socket("raw_icmpv6", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "raw ICMPv6 socket (router advertisements)");
	probe_ip_hdrincl();
	probe_kernel_log();
	rmdir(scratch);
	return 0;
}
