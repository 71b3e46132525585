/* Escape-test probe, pushed into a busybox container: makes one syscall with arguments that can
 * never do anything (bad flags, bad fds, missing paths) and prints the errno name, or "ok".
 *   probe NAME [ARG]   (NAME as in the table below; ABI prefixes "i386:" and "x32:") */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* For SECONDS, looks for processes running the tslxc helper (their exe link names it), opens
 * their exe read-only and tries to reopen that for writing (never writing, never truncating).
 * Prints one line per process caught: "caught LINK: RESULT" (WRITABLE, or the errno name). */
static int catch_exe(int seconds)
{
  time_t end = time(NULL) + seconds;
  int caught = 0;
  pid_t self = getpid();
  while (time(NULL) < end && caught < 5) {
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
      int pid = atoi(de->d_name);
      if (pid <= 1 || pid == self)
        continue;
      char path[64], link[4096];
      snprintf(path, sizeof path, "/proc/%d/exe", pid);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      char fdpath[64];
      snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
      ssize_t n = readlink(fdpath, link, sizeof link - 1);
      link[n > 0 ? n : 0] = '\0';
      if (!strstr(link, "tslxc-helper")) {
        close(fd);
        continue;
      }
      /* As the attack goes: wait until the process is gone (nothing executes the file any
       * more, so no ETXTBSY), then reopen its exe for writing. Only a sealed memfd copy is ever
       * written to (one byte, which its seals refuse); the host's binary never is. */
      for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
        usleep(10000);
      int w = open(fdpath, O_WRONLY | O_CLOEXEC);
      const char *res = w >= 0 ? "WRITABLE" : strerrorname_np(errno);
      if (w >= 0 && strncmp(link, "/memfd:", 7) == 0)
        res = write(w, "x", 1) == 1 ? "WRITTEN" : strerrorname_np(errno);
      printf("caught %s: %s\n", link, res);
      fflush(stdout);
      if (w >= 0)
        close(w);
      close(fd);
      caught++;
    }
    if (d)
      closedir(d);
  }
  return 0;
}

static long i386_call(long nr, long a, long b, long c, long d)
{
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
  if (ret < 0 && ret > -4096) {
    errno = -ret;
    return -1;
  }
  return ret;
}

int main(int argc, char **argv)
{
  if (argc < 2)
    return 2;
  const char *n = argv[1];
  const char *arg = argc > 2 ? argv[2] : "/nonexistent-tslxc";
  long r;
  errno = 0;
  if (!strcmp(n, "catch_exe"))
    return catch_exe(argc > 2 ? atoi(argv[2]) : 5);
  if (!strcmp(n, "kexec_load")) /* flags outside KEXEC_FLAGS: EINVAL at best */
    r = syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL);
  else if (!strcmp(n, "kexec_file_load")) /* bad fds and flags */
    r = syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xdead0000UL);
  else if (!strcmp(n, "init_module")) /* no image */
    r = syscall(SYS_init_module, NULL, 0, "");
  else if (!strcmp(n, "finit_module")) /* bad fd */
    r = syscall(SYS_finit_module, -1, "", 0);
  else if (!strcmp(n, "delete_module")) /* no such module */
    r = syscall(SYS_delete_module, "tslxc_no_such_module", O_NONBLOCK);
  else if (!strcmp(n, "open_by_handle_at")) /* bad fd, no handle */
    r = syscall(SYS_open_by_handle_at, -1, NULL, 0);
  else if (!strcmp(n, "bpf")) /* no such command */
    r = syscall(SYS_bpf, 9999, NULL, 0);
  else if (!strcmp(n, "keyctl")) /* no such operation */
    r = syscall(SYS_keyctl, 9999, 0, 0, 0, 0);
  else if (!strcmp(n, "umount2_force")) /* a path that does not exist */
    r = syscall(SYS_umount2, arg, MNT_FORCE);
  else if (!strcmp(n, "umount2")) /* without MNT_FORCE */
    r = syscall(SYS_umount2, arg, 0);
  else if (!strcmp(n, "swapoff"))
    r = syscall(SYS_swapoff, arg);
  else if (!strcmp(n, "i386:getpid")) /* is the i386 ABI there at all? */
    r = i386_call(20, 0, 0, 0, 0);
  else if (!strcmp(n, "i386:kexec_load"))
    r = i386_call(283, 0, 0, 0, 0xdead0000L);
  else if (!strcmp(n, "i386:finit_module"))
    r = i386_call(350, -1, 0, 0, 0);
  else if (!strcmp(n, "x32:kexec_load"))
    r = syscall(0x40000000L + 528, 0, 0, NULL, 0xdead0000UL);
  else if (!strcmp(n, "ptrace")) /* attach, detach at once if it ever worked */
  {
    r = ptrace(PTRACE_ATTACH, atoi(arg), NULL, NULL);
    if (r == 0)
      ptrace(PTRACE_DETACH, atoi(arg), NULL, NULL);
  } else if (!strcmp(n, "open_ro")) /* open a device node read-only, read nothing */
    r = open(arg, O_RDONLY);
  else if (!strcmp(n, "write_exe")) { /* open a process's exe for writing, never write */
    r = open(arg, O_WRONLY);
  } else {
    fprintf(stderr, "probe: unknown %s\n", n);
    return 2;
  }
  if (r < 0) {
    printf("%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
    return 1;
  }
  printf("ok\n");
  return 0;
}
