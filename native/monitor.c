/* The monitor: one small detached process per running container. It boots the container (again
 * after a reboot), keeps the console pty, logs it, serves console.sock, reaps init and cleans up. */
#include "helper.h"
#include "exec.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#define CONSOLE_BUF 4096

/* An init that ends this soon after its exec failed to boot (systemd that cannot make its manager,
 * a missing library, an init script that exits): `start` reports it as a failed start instead of
 * a started container. */
#define SETTLE_MS 300

/* What the die hook needs to leave nothing behind. */
static struct {
  struct start_opts *opts;
  int status_fd;  /* pipe to `start`, until the first boot is reported */
  int run_dir_fd; /* O_PATH fd of --run-dir */
  pid_t child;    /* the container's init (or the child being booted) */
  pid_t server;   /* this boot's exec server (execserver.c), or -1 */
  bool booted_once;
} M = { .status_fd = -1, .run_dir_fd = -1, .child = -1, .server = -1 };

static void report_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report_status(const char *fmt, ...)
{
  if (M.status_fd < 0)
    return;
  char buf[1200];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1)
    n = sizeof buf - 1;
  (void)write_all(M.status_fd, buf, n);
  close(M.status_fd);
  M.status_fd = -1;
}

static long long monotonic_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* SIGKILLs the processes still in the cgroup DIRFD: ones outside the container's pid namespace
 * (an attach that entered its cgroups) do not end with init, and would keep the cgroup busy. */
static void kill_cgroup_procs(int dirfd)
{
  autofd int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  char buf[4096];
  ssize_t n = read_retry(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return;
  buf[n] = '\0';
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    long pid = strtol(line, NULL, 10);
    if (pid > 0 && pid != getpid())
      kill((pid_t)pid, SIGKILL);
  }
}

/* Removes DIR and its sub-cgroups, depth first. Tasks of a dead pid namespace may take a moment
 * to leave, so EBUSY is retried for up to about two seconds, after a kill of what is left. */
static void remove_cgroup_tree(const char *dir, int depth)
{
  autofd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  if (depth < 32) {
    char buf[2048];
    for (;;) {
      long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0)
        break;
      for (long off = 0; off < n;) {
        struct kernel_dirent64 {
          uint64_t d_ino;
          int64_t d_off;
          unsigned short d_reclen;
          unsigned char d_type;
          char d_name[];
        } *de = (void *)(buf + off);
        off += de->d_reclen;
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
          continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) < (int)sizeof sub)
          remove_cgroup_tree(sub, depth + 1);
      }
    }
  }
  int tries = 0;
  while (rmdir(dir) < 0 && errno == EBUSY && tries++ < 200) {
    if (tries == 1)
      kill_cgroup_procs(fd);
    sleep_ms(10);
  }
  if (tries)
    debug("rmdir %s: %d retries", dir, tries);
}

static void remove_run_files(void)
{
  static const char *const files[] = { LAYOUT_INSTANCE_RUN_INIT_PID,
                                       LAYOUT_INSTANCE_RUN_CONSOLE_SOCKET,
                                       LAYOUT_INSTANCE_RUN_CONSOLE_CONTROL,
                                       LAYOUT_INSTANCE_RUN_EXEC_SOCKET,
                                       LAYOUT_INSTANCE_RUN_MONITOR_PID };
  for (size_t i = 0; i < N_ELEMENTS(files); i++)
    unlinkat(M.run_dir_fd, files[i], 0);
}

/* The exec server sits in the container's cgroups: it goes before they are removed, and with
 * each boot (a new one serves the next). */
static void stop_exec_server(void)
{
  if (M.server > 0) {
    kill(M.server, SIGKILL);
    while (waitpid(M.server, NULL, 0) < 0 && errno == EINTR)
      ;
    M.server = -1;
  }
  unlinkat(M.run_dir_fd, LAYOUT_INSTANCE_RUN_EXEC_SOCKET, 0);
}

static void kill_child(void)
{
  if (M.run_dir_fd >= 0)
    stop_exec_server();
  if (M.child > 0) {
    kill(M.child, SIGKILL);
    while (waitpid(M.child, NULL, 0) < 0 && errno == EINTR)
      ;
    M.child = -1;
  }
}

/* Any failure: kill what we booted, remove our files, tell `start` (during the first boot) or
 * log it and record it in `exit` (after a reboot), then exit. */
static void monitor_die_hook(const char *line, int err)
{
  (void)err;
  kill_child();
  debug("%s", line);
  if (M.booted_once) {
    char content[1100];
    snprintf(content, sizeof content, "failed %s\n", line);
    if (M.run_dir_fd >= 0)
      write_file_atomic(M.run_dir_fd, LAYOUT_INSTANCE_RUN_EXIT, content);
    for (size_t i = 0; i < M.opts->n_cgroups; i++)
      remove_cgroup_tree(M.opts->cgroups[i], 0);
  }
  if (M.run_dir_fd >= 0)
    remove_run_files();
  report_status("ERR %s\n", line);
}

/* Runs a hook with the monitor's environment plus TSLXC_NAME and KEY=VALUE; dies when it fails.
 * Its stderr is collected so that the last line can explain a failure. */
static void run_hook(const char *what, const char *path, const char *key, const char *value,
                     bool fatal)
{
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0)
    die_with_error("%s: pipe", what);
  pid_t pid = fork();
  if (pid < 0)
    die_with_error("%s: fork", what);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
      signal(sig, SIG_DFL);
    dup2(errpipe[1], 2);
    setenv("TSLXC_NAME", M.opts->name, 1);
    setenv(key, value, 1);
    execl(path, path, (char *)NULL);
    dprintf(2, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(errpipe[1]);
  char buf[512];
  size_t len = 0;
  for (;;) {
    char chunk[256];
    ssize_t n = read_retry(errpipe[0], chunk, sizeof chunk);
    if (n <= 0)
      break;
    (void)write_all(2, chunk, n); /* monitor.log with --debug */
    /* keep the tail */
    if (len + n > sizeof buf - 1) {
      size_t drop = len + n - (sizeof buf - 1);
      if (drop > len)
        drop = len;
      memmove(buf, buf + drop, len - drop);
      len -= drop;
    }
    size_t take = (size_t)n < sizeof buf - 1 - len ? (size_t)n : sizeof buf - 1 - len;
    memcpy(buf + len, chunk + n - take, take);
    len += take;
  }
  close(errpipe[0]);
  buf[len] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (status == 0)
    return;
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    buf[--len] = '\0';
  char *last = strrchr(buf, '\n');
  last = last ? last + 1 : buf;
  char why[64];
  if (WIFSIGNALED(status))
    snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
  else
    snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
  if (fatal)
    die("%s %s failed (%s)%s%s", what, path, why, *last ? ": " : "", last);
  debug("%s %s failed (%s): %s", what, path, why, last);
}

/* ---- console: pty master -> console.log (+ client), client -> pty master ---- */

struct console {
  int master; /* of the current boot's console pty, -1 between boots */
  int slave;  /* held too, so the master never reads EIO while init lives */
  int log_fd;
  unsigned long log_size;
  int listen_fd;
  int client;
  char pending[CONSOLE_BUF]; /* client input the pty did not take yet */
  size_t n_pending;
  /* console.ctl: a console client's window size, as attach's --control-fd lines ("w ROWS COLS") */
  int ctl_listen_fd;
  struct pty_control ctl;
  struct winsize size; /* the last one set (ws_row 0: none), given to the next boot's pty too */
};

static void console_open_log(struct console *c, bool truncate)
{
  if (c->log_fd >= 0)
    close(c->log_fd);
  c->log_fd = openat(
      M.run_dir_fd, LAYOUT_INSTANCE_RUN_CONSOLE_LOG,
      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (truncate ? O_TRUNC : 0), 0600);
  struct stat st;
  c->log_size = (c->log_fd >= 0 && fstat(c->log_fd, &st) == 0) ? st.st_size : 0;
}

static void console_log(struct console *c, const char *buf, size_t n)
{
  unsigned long bound = M.opts->console_log_size;
  if (bound == 0 || c->log_fd < 0)
    return;
  if (c->log_size + n > bound) {
    renameat(M.run_dir_fd, LAYOUT_INSTANCE_RUN_CONSOLE_LOG, M.run_dir_fd,
             LAYOUT_INSTANCE_RUN_CONSOLE_LOG_OLD);
    console_open_log(c, true);
    if (c->log_fd < 0)
      return;
  }
  if (write_all(c->log_fd, buf, n) == 0)
    c->log_size += n;
}

/* A boot's console arrives from the container child (a pty of its own devpts). */
static void console_attach(struct console *c, int master)
{
  int flags = fcntl(master, F_GETFL);
  fcntl(master, F_SETFL, flags | O_NONBLOCK);
  fcntl(master, F_SETFD, FD_CLOEXEC);
  c->master = master;
  c->slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (c->size.ws_row)
    ioctl(master, TIOCSWINSZ, &c->size);
}

static void console_detach(struct console *c)
{
  if (c->master >= 0)
    close(c->master);
  if (c->slave >= 0)
    close(c->slave);
  c->master = c->slave = -1;
  c->n_pending = 0;
}

static void console_drop_client(struct console *c)
{
  if (c->client >= 0)
    close(c->client);
  c->client = -1;
  c->n_pending = 0;
}

/* false when nothing could be read */
static bool console_from_pty(struct console *c)
{
  char buf[CONSOLE_BUF];
  ssize_t n = read(c->master, buf, sizeof buf);
  if (n <= 0)
    return false;
  console_log(c, buf, n);
  /* A client that does not keep up loses output rather than stalling the container. */
  if (c->client >= 0 && send(c->client, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
      errno != EAGAIN && errno != EINTR)
    console_drop_client(c);
  return true;
}

static void console_flush_pending(struct console *c)
{
  if (c->master < 0) { /* between boots: nobody to type to */
    c->n_pending = 0;
    return;
  }
  ssize_t n = write(c->master, c->pending, c->n_pending);
  if (n > 0) {
    memmove(c->pending, c->pending + n, c->n_pending - n);
    c->n_pending -= n;
  }
}

static void console_from_client(struct console *c)
{
  if (c->n_pending) { /* only a hangup is reported while we wait for the pty */
    console_drop_client(c);
    return;
  }
  ssize_t n = read(c->client, c->pending, sizeof c->pending);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    console_drop_client(c);
    return;
  }
  if (n > 0) {
    c->n_pending = n;
    console_flush_pending(c);
  }
}

static void console_accept(struct console *c)
{
  int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  if (c->client >= 0) {
    static const char busy[] = "console busy\n";
    (void)send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
    return;
  }
  c->client = fd;
  debug("console client attached");
}

/* The newest control connection is the one that counts: a client that attaches after another
 * detached (or vanished) must not find the size controls taken. */
static void console_ctl_drop(struct console *c)
{
  if (c->ctl.fd >= 0)
    close(c->ctl.fd);
  c->ctl = (struct pty_control){ .fd = -1 };
}

static void console_ctl_accept(struct console *c)
{
  int fd = accept4(c->ctl_listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  console_ctl_drop(c);
  c->ctl.fd = fd;
}

/* A size sets the pty's (the kernel sends SIGWINCH to its foreground group); signals are not
 * the console's to send (no pidfd). */
static void console_ctl_read(struct console *c)
{
  if (!pty_control_read(&c->ctl, c->master, -1))
    console_ctl_drop(c);
  else if (c->master >= 0)
    ioctl(c->master, TIOCGWINSZ, &c->size);
}

/* An unprivileged child cannot idmap a mount (only real root can, for a host filesystem) nor
 * reach host paths below root's 0700 dirs once it is the namespace's root: the monitor makes the
 * rootfs and each --bind source a detached mount (idmapped to the child's user namespace when
 * asked, read-only when asked) and passes them; the child moves them into place. */
static void send_mounts(int sync_fd, pid_t child)
{
  const struct start_opts *o = M.opts;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)child);
  autofd int userns = open(path, O_RDONLY | O_CLOEXEC);
  if (userns < 0)
    die_with_error("open %s", path);
  autofd int root = -1;
  if (o->overlay.n_lowers) {
    root = detached_overlay(&o->overlay, o->rootfs_idmap ? userns : -1, mapped_root_uid(&o->uidmap),
                            mapped_root_gid(&o->gidmap));
  } else {
    root = detached_tree(o->rootfs, false, o->rootfs_idmap ? userns : -1, false);
  }
  send_tagged_fd(sync_fd, 'r', root);
  for (size_t i = 0; i < o->n_binds; i++) {
    static struct bind_spec b;
    parse_bind_spec(o->binds[i], &b);
    /* An optional source that cannot be reached (lxcfs died: ENOTCONN) is left out of this boot:
     * its message carries no fd, and the child skips it. */
    autofd int tree = b.optional && access(b.src, F_OK) < 0
                          ? -1
                          : detached_tree(b.src, true, b.idmap ? userns : -1, b.ro);
    send_tagged_fd(sync_fd, 'b', tree);
  }
}

/* The --on-exit program, in a child of its own that outlives us: a caller waiting for the
 * monitor's end (a stop) must not wait for it too, nor kill it as a stuck monitor. The monitor's
 * files are gone by now, so what it runs finds the container stopped. Its failure changes
 * nothing: the container stays as it is, stopped. */
static void run_on_exit(const char *path)
{
  pid_t pid = fork();
  if (pid < 0) {
    debug("on-exit: fork: %s", strerror(errno));
    return;
  }
  if (pid > 0)
    return;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  setenv("TSLXC_NAME", M.opts->name, 1);
  execl(path, path, (char *)NULL);
  debug("exec %s: %s", path, strerror(errno));
  _exit(127);
}

/* One boot: clone the init child, place it in its cgroups, run the start-host hook, let it go
 * and wait until it has exec'ed init (EOF on the sync socket) or reported a failure. */
static pid_t boot(struct console *con)
{
  const struct start_opts *o = M.opts;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    die_with_error("socketpair");

  /* An unprivileged container: a new user namespace too, which owns every other namespace
   * cloned with it (so the child may mount proc, sysfs, cgroupfs and devpts there). */
  bool userns = o->uidmap.n > 0;
  pid_t pid = raw_clone(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                        (userns ? CLONE_NEWUSER : 0));
  if (pid < 0)
    die_with_error("clone the container's init");
  if (pid == 0) {
    close(sv[0]);
    container_child(o, sv[1]);
  }
  M.child = pid;
  close(sv[1]);
  autofd int sync_fd = sv[0];
  debug("cloned init %d", (int)pid);

  if (userns)
    write_id_maps(pid, &o->uidmap, &o->gidmap);

  char pidstr[32];
  snprintf(pidstr, sizeof pidstr, "%d\n", (int)pid);
  for (size_t i = 0; i < o->n_cgroups; i++) {
    char path[PATH_MAX];
    xsnprintf(path, sizeof path, "%s/cgroup.procs", o->cgroups[i]);
    if (write_file_at(AT_FDCWD, path, pidstr) < 0)
      die_with_error("cgroup: add init to %s", path);
  }

  if (o->start_host_hook) {
    char pidval[32];
    snprintf(pidval, sizeof pidval, "%d", (int)pid);
    run_hook("start-host hook", o->start_host_hook, "TSLXC_INIT_PID", pidval, true);
  }

  if (userns)
    send_mounts(sync_fd, pid);
  /* Device nodes, for every container: made by real root in the host's namespaces (unixdev.c). */
  for (size_t i = 0; i < o->n_nodes; i++) {
    static struct node_spec n;
    parse_node_spec(o->nodes[i], &n);
    autofd int tree = detached_node(&n);
    send_tagged_fd(sync_fd, 'n', tree);
  }
  send_tagged_fd(sync_fd, 'g', -1);

  /* Records until EOF: the console's master (step 0), "exec comes next", or a failure. */
  bool exec_next = false;
  for (;;) {
    static struct child_report report;
    int master;
    ssize_t n = recv_with_fds(sync_fd, &report, sizeof report, &master, 1);
    if (n < 0)
      die_with_error("read the child's sync socket");
    if (n == 0)
      break;
    if (report.step == 0 && master >= 0) {
      console_attach(con, master);
      continue;
    }
    if (report.step == CHILD_REPORT_EXEC && master < 0) {
      exec_next = true;
      continue;
    }
    if (master >= 0)
      close(master);
    report.msg[sizeof report.msg - 1] = '\0';
    kill_child();
    /* The child's line is complete (step, message, strerror): pass it on as is. */
    monitor_die_hook(report.msg, report.err);
    _exit(1);
  }

  /* EOF before "exec comes next": the child died on its way (the OOM killer, say). After it, init
   * ran, and an init that already ended is left to the end of the monitor's loop, which reports its
   * status and the console as for any init that ends. */
  if (!exec_next) {
    int status;
    if (waitpid(pid, &status, 0) == pid) {
      M.child = -1;
      if (WIFSIGNALED(status))
        die("start the container: its process was killed by signal %d before init ran",
            WTERMSIG(status));
      die("start the container: its process exited with status %d before init ran",
          WEXITSTATUS(status));
    }
  }

  char content[64];
  snprintf(content, sizeof content, LAYOUT_PID_REF_FORMAT, (int)pid, proc_starttime(pid));
  if (write_file_atomic(M.run_dir_fd, LAYOUT_INSTANCE_RUN_INIT_PID, content) < 0)
    die_with_error("write init.pid");
  debug("init %d running", (int)pid);
  return pid;
}

static int console_listen(const char *name)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    die_with_error("console socket");
  /* bind by a name relative to the run dir: its full path may not fit sun_path. */
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  xsnprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", M.run_dir_fd, name);
  unlinkat(M.run_dir_fd, name, 0);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    die_with_error("bind %s", name);
  if (listen(fd, 4) < 0)
    die_with_error("listen on %s", name);
  return fd;
}

/* ---- init's end ---- */

enum end { END_STOP, END_REBOOT, END_CRASH };

static enum end classify_end(int status, char *text, size_t size)
{
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP) {
    snprintf(text, size, "reboot\n");
    return END_REBOOT;
  }
  if ((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) ||
      (WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    snprintf(text, size, "stop\n");
    return END_STOP;
  }
  if (WIFSIGNALED(status))
    snprintf(text, size, "crash signal %d\n", WTERMSIG(status));
  else
    snprintf(text, size, "crash status %d\n", WEXITSTATUS(status));
  return END_CRASH;
}

void run_monitor(struct start_opts *opts, int status_fd)
{
  M.opts = opts;
  M.status_fd = status_fd;
  die_hook = monitor_die_hook;

  if (chdir("/") < 0)
    die_with_error("chdir /");
  umask(077);
  M.run_dir_fd = open(opts->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (M.run_dir_fd < 0)
    die_with_error("open --run-dir %s", opts->run_dir);

  /* stdio: /dev/null, or monitor.log with --debug. Nothing of the caller's stays open (a Node
   * caller would otherwise wait for EOF on its pipes forever). */
  autofd int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0)
    die_with_error("open /dev/null");
  int out = devnull;
  autofd int logfd = -1;
  if (opt_debug) {
    logfd = openat(M.run_dir_fd, "monitor.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd >= 0)
      out = logfd;
  }
  if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
    die_with_error("dup2");
  /* Everything else inherited from the caller goes. */
  int keep[] = { M.status_fd, M.run_dir_fd, devnull, logfd };
  close_all_but(keep, N_ELEMENTS(keep));

  /* PID and start time, like init.pid: the CLI tells a live monitor from a reused PID by both. */
  char pidline[48];
  snprintf(pidline, sizeof pidline, LAYOUT_PID_REF_FORMAT, (int)getpid(), proc_starttime(getpid()));
  if (write_file_atomic(M.run_dir_fd, LAYOUT_INSTANCE_RUN_MONITOR_PID, pidline) < 0)
    die_with_error("write monitor.pid");

  /* SIGTERM/SIGINT are for init, not for us: the CLI stops a container by signalling init. */
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
    die_with_error("block SIGCHLD");
  autofd int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    die_with_error("signalfd");

  static struct console con = {
    .master = -1, .slave = -1, .log_fd = -1, .client = -1, .ctl = { .fd = -1 }
  };
  console_open_log(&con, false);
  con.listen_fd = console_listen(LAYOUT_INSTANCE_RUN_CONSOLE_SOCKET);
  con.ctl_listen_fd = console_listen(LAYOUT_INSTANCE_RUN_CONSOLE_CONTROL);

  pid_t init = boot(&con);
  long long exec_at = monotonic_ms();
  M.booted_once = true;
  /* The server is ready by the time `start` returns; the verdict waits until init has lived
   * SETTLE_MS (status_fd open until then). */
  M.server = exec_server_start(M.run_dir_fd, init, opts->cgroups, opts->n_cgroups);

  for (;;) {
    int timeout = -1;
    if (M.status_fd >= 0) {
      long long left = exec_at + SETTLE_MS - monotonic_ms();
      if (left <= 0) {
        report_status("OK %d %d\n", (int)init, (int)getpid());
        continue;
      }
      timeout = (int)left;
    }
    struct pollfd pfd[6] = {
      { .fd = sigfd, .events = POLLIN },
      { .fd = con.master, .events = POLLIN | (con.n_pending ? POLLOUT : 0) },
      { .fd = con.listen_fd, .events = POLLIN },
      { .fd = con.client, .events = con.n_pending ? 0 : POLLIN },
      { .fd = con.ctl_listen_fd, .events = POLLIN },
      { .fd = con.ctl.fd, .events = POLLIN },
    };
    if (poll(pfd, N_ELEMENTS(pfd), timeout) < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("poll");
    }
    if (pfd[1].revents & POLLIN)
      console_from_pty(&con);
    if ((pfd[1].revents & POLLOUT) && con.n_pending)
      console_flush_pending(&con);
    if (pfd[2].revents & POLLIN)
      console_accept(&con);
    if (con.client >= 0 && pfd[3].fd == con.client &&
        (pfd[3].revents & (POLLIN | POLLHUP | POLLERR)))
      console_from_client(&con);
    if (pfd[4].revents & POLLIN)
      console_ctl_accept(&con);
    else if (con.ctl.fd >= 0 && pfd[5].fd == con.ctl.fd &&
             (pfd[5].revents & (POLLIN | POLLHUP | POLLERR)))
      console_ctl_read(&con);
    if (!(pfd[0].revents & POLLIN))
      continue;

    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) == sizeof si)
      ;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == M.server) { /* killed: attach falls back to its direct path */
        debug("exec server %d ended", (int)pid);
        M.server = -1;
        unlinkat(M.run_dir_fd, LAYOUT_INSTANCE_RUN_EXEC_SOCKET, 0);
      }
      if (pid != init)
        continue;
      long long lived_ms = monotonic_ms() - exec_at;
      M.child = -1;
      stop_exec_server();
      /* Whatever init wrote last is still in the pty: log it before moving on. */
      while (con.master >= 0 &&
             poll(&(struct pollfd){ .fd = con.master, .events = POLLIN }, 1, 0) == 1)
        if (!console_from_pty(&con))
          break;
      console_detach(&con);
      char text[64];
      enum end end = classify_end(status, text, sizeof text);
      debug("init %d ended: %.*s", (int)init, (int)strcspn(text, "\n"), text);
      write_file_atomic(M.run_dir_fd, LAYOUT_INSTANCE_RUN_EXIT, text);
      unlinkat(M.run_dir_fd, LAYOUT_INSTANCE_RUN_INIT_PID, 0);
      if (opts->post_stop_hook)
        run_hook("post-stop hook", opts->post_stop_hook, "TSLXC_REASON",
                 end == END_REBOOT ? "reboot"
                 : end == END_STOP ? "stop"
                                   : "crash",
                 false);
      if (end == END_REBOOT) {
        load_binds(opts);
        load_nodes(opts);
        init = boot(&con);
        M.server = exec_server_start(M.run_dir_fd, init, opts->cgroups, opts->n_cgroups);
        continue;
      }
      for (size_t i = 0; i < opts->n_cgroups; i++)
        remove_cgroup_tree(opts->cgroups[i], 0);
      remove_run_files();
      console_drop_client(&con);
      console_ctl_drop(&con);
      /* Still settling: the start failed (the caller reads console.log for why, and undoes
       * the start: no on-exit then). */
      if (M.status_fd >= 0) {
        text[strcspn(text, "\n")] = '\0';
        report_status("ERR tslxc-helper: init: the container's init ended %lld ms after it was "
                      "started (%s)\n",
                      lived_ms, text);
      } else if (opts->on_exit)
        run_on_exit(opts->on_exit);
      _exit(0);
    }
  }
}
