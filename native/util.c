/* Errors, I/O and syscall helpers shared by every mode. */
#include "helper.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

bool opt_debug;
int die_status = 1;

static void default_die_hook(const char *line, int err)
{
  (void)err;
  char buf[1100];
  int n = snprintf(buf, sizeof buf, "%s\n", line);
  if (n > (int)sizeof buf - 1)
    n = sizeof buf - 1;
  (void)write_all(2, buf, n);
}

void (*die_hook)(const char *line, int err) = default_die_hook;

static __attribute__((noreturn)) void vdie(int err, const char *fmt, va_list ap)
{
  char line[1024];
  int n = snprintf(line, sizeof line, "tslxc-helper: ");
  vsnprintf(line + n, sizeof line - n, fmt, ap);
  if (err) {
    size_t len = strlen(line);
    snprintf(line + len, sizeof line - len, ": %s", strerror(err));
  }
  tty_restore();
  die_hook(line, err);
  _exit(die_status);
}

void die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vdie(0, fmt, ap);
}

void die_with_error(const char *fmt, ...)
{
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  vdie(err, fmt, ap);
}

void die_oom(void)
{
  die("out of memory");
}

void debug(const char *fmt, ...)
{
  if (!opt_debug)
    return;
  int errsv = errno;
  char line[512];
  int n = snprintf(line, sizeof line, "tslxc-helper[%d]: ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  size_t len = strlen(line);
  line[len++] = '\n';
  (void)write_all(2, line, len);
  errno = errsv;
}

void *xcalloc(size_t n, size_t size)
{
  void *p = calloc(n, size);
  if (!p)
    die_oom();
  return p;
}

char *xstrdup(const char *s)
{
  char *p = strdup(s);
  if (!p)
    die_oom();
  return p;
}

void *xrealloc(void *p, size_t size)
{
  void *q = realloc(p, size);
  if (!q)
    die_oom();
  return q;
}

char *xasprintf(const char *fmt, ...)
{
  char *p;
  va_list ap;
  va_start(ap, fmt);
  int r = vasprintf(&p, fmt, ap);
  va_end(ap);
  if (r < 0)
    die_oom();
  return p;
}

void xsnprintf(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  if (r < 0 || (size_t)r >= size)
    die("path too long: %s", buf);
}

int write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= n;
  }
  return 0;
}

ssize_t read_retry(int fd, void *buf, size_t len)
{
  ssize_t n;
  do
    n = read(fd, buf, len);
  while (n < 0 && errno == EINTR);
  return n;
}

/* ---- fds over unix sockets (SCM_RIGHTS): the one implementation every mode uses ---- */

union fd_control {
  char buf[CMSG_SPACE(MAX_PASSED_FDS * sizeof(int))];
  struct cmsghdr align;
};

ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds,
                      int flags)
{
  if (n_fds > MAX_PASSED_FDS)
    die("send_with_fds: %zu fds, at most %d", n_fds, MAX_PASSED_FDS);
  struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
  union fd_control u = { 0 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (n_fds > 0) {
    msg.msg_control = u.buf;
    msg.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
  }
  ssize_t n;
  while ((n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;
  return n;
}

ssize_t recv_with_fds(int sock, void *data, size_t len, int *fds, size_t max_fds)
{
  if (max_fds > MAX_PASSED_FDS)
    die("recv_with_fds: %zu fds, at most %d", max_fds, MAX_PASSED_FDS);
  for (size_t i = 0; i < max_fds; i++)
    fds[i] = -1;
  struct iovec iov = { .iov_base = data, .iov_len = len };
  union fd_control u;
  struct msghdr msg = {
    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf
  };
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    size_t got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < got; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (i < max_fds)
        fds[i] = fd;
      else
        close(fd); /* more than asked for: not ours to keep */
    }
  }
  if (n >= 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    /* Cut short: a message the caller cannot trust (nor its fds). */
    for (size_t i = 0; i < max_fds; i++)
      if (fds[i] >= 0) {
        close(fds[i]);
        fds[i] = -1;
      }
    errno = EMSGSIZE;
    return -1;
  }
  return n;
}

ssize_t read_small_file_at(int dirfd, const char *path, char *buf, size_t size)
{
  autofd int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -1;
  size_t total = 0;
  while (total < size - 1) {
    ssize_t n = read_retry(fd, buf + total, size - 1 - total);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    total += n;
  }
  buf[total] = '\0';
  return total;
}

int write_file_at(int dirfd, const char *path, const char *content)
{
  autofd int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -1;
  return write_all(fd, content, strlen(content));
}

int write_file_atomic(int dirfd, const char *name, const char *content)
{
  char tmp[256];
  xsnprintf(tmp, sizeof tmp, ".%s.tmp", name);
  autofd int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -1;
  if (write_all(fd, content, strlen(content)) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
    int errsv = errno;
    unlinkat(dirfd, tmp, 0);
    errno = errsv;
    return -1;
  }
  return 0;
}

bool parse_ulong(const char *s, unsigned long *out)
{
  if (!s || *s < '0' || *s > '9')
    return false;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end)
    return false;
  *out = v;
  return true;
}

bool proc_start_time(pid_t pid, unsigned long long *out)
{
  char path[64], buf[1024];
  xsnprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (pid <= 0 || read_small_file_at(AT_FDCWD, path, buf, sizeof buf) < 0)
    return false;
  /* comm may hold spaces and parentheses: fields restart after the last ')'. */
  char *p = strrchr(buf, ')');
  if (!p || !p[1] || !p[2])
    return false;
  /* p+2 is field 3 (state): a zombie, killed but not yet reaped, is as good as dead. */
  p += 2;
  if (*p == 'Z' || *p == 'X')
    return false;
  /* Field 22 is 19 fields further on. */
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p)
      return false;
    p++;
  }
  char *end;
  errno = 0;
  *out = strtoull(p, &end, 10);
  return errno == 0 && end != p;
}

unsigned long long proc_starttime(pid_t pid)
{
  unsigned long long start;
  return proc_start_time(pid, &start) ? start : 0;
}

int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
  struct open_how how = { .flags = flags, .resolve = resolve };
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int sys_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t attr_set,
                      uint64_t attr_clr)
{
  struct mount_attr attr = { .attr_set = attr_set, .attr_clr = attr_clr };
  return syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr);
}

int sys_pidfd_open(pid_t pid)
{
  return syscall(SYS_pidfd_open, pid, 0);
}

int sys_pidfd_send_signal(int pidfd, int sig)
{
  return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int sys_close_range(unsigned int first, unsigned int last, unsigned int flags)
{
  return syscall(SYS_close_range, first, last, flags);
}

/* fork() with namespace flags: the child runs on a copy of the parent's stack (as bubblewrap). */
pid_t raw_clone(unsigned long flags)
{
  return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

static bool same_key(const char *a, const char *b)
{
  size_t ka = strcspn(a, "="), kb = strcspn(b, "=");
  return ka == kb && memcmp(a, b, ka) == 0;
}

char **build_env(const char *const *base, size_t n_base, const char *const *extra, size_t n_extra)
{
  char **env = xcalloc(n_base + n_extra + 1, sizeof *env);
  size_t n = 0;
  for (size_t i = 0; i < n_base; i++)
    if (base[i])
      env[n++] = (char *)base[i];
  for (size_t i = 0; i < n_extra; i++) {
    size_t j = 0;
    while (j < n && !same_key(env[j], extra[i]))
      j++;
    env[j] = (char *)extra[i];
    if (j == n)
      n++;
  }
  env[n] = NULL;
  return env;
}

char *read_whole_file(const char *path)
{
  /* O_NONBLOCK and S_ISREG: a FIFO planted by a container must not hang us. */
  autofd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return NULL;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return NULL;
  }
  size_t size = 16384, len = 0;
  char *buf = malloc(size);
  for (;;) {
    if (!buf)
      die_oom();
    ssize_t n = read_retry(fd, buf + len, size - len - 1);
    if (n < 0) {
      int errsv = errno;
      free(buf);
      errno = errsv;
      return NULL;
    }
    if (n == 0)
      break;
    len += n;
    if (len == size - 1)
      buf = realloc(buf, size *= 2);
  }
  buf[len] = '\0';
  return buf;
}

static int compare_int(const void *a, const void *b)
{
  return *(const int *)a - *(const int *)b;
}

void close_all_but(int *keep, size_t n)
{
  qsort(keep, n, sizeof *keep, compare_int);
  unsigned int from = 3;
  for (size_t i = 0; i < n; i++) {
    if (keep[i] < (int)from)
      continue;
    if ((unsigned int)keep[i] > from)
      sys_close_range(from, keep[i] - 1, 0);
    from = keep[i] + 1;
  }
  sys_close_range(from, ~0U, 0);
}
