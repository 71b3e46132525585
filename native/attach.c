/* tslxc-helper attach: run a command inside a running container. */
#include "helper.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/signalfd.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>

struct attach_opts {
  pid_t pid;
  const char *cgroups[MAX_LIST];
  size_t n_cgroups;
  const char *env[MAX_LIST];
  size_t n_env;
  const char *cwd;
  const char *user;
  bool pty;
  int caps[MAX_LIST];
  size_t n_caps;
  char **argv;
};

struct user {
  uid_t uid;
  gid_t gid;
  gid_t groups[MAX_LIST];
  size_t n_groups;
  char name[64];
  char home[PATH_MAX];
};

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

/* The child reports its own failures on a copy of the caller's stderr (its own fd 2 may be the
 * pty by then). */
static int err_fd = 2;
static void attach_die_hook(const char *line, int err)
{
  (void)err;
  dprintf(err_fd, "%s\n", line);
}

static void parse_attach_options(int argc, char **argv, struct attach_opts *o)
{
  int i;
  for (i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--") == 0)
      break;
    if (strcmp(opt, "--pty") == 0) {
      o->pty = true;
      continue;
    }
    if (strcmp(opt, "--debug") == 0) {
      opt_debug = true;
      continue;
    }
    if (i + 1 >= argc)
      die("option %s needs a value", opt);
    const char *val = argv[++i];
    unsigned long n;
    if (strcmp(opt, "--pid") == 0) {
      if (!parse_ulong(val, &n) || n == 0 || n > INT32_MAX)
        die("--pid %s: expected a process id", val);
      o->pid = n;
    } else if (strcmp(opt, "--cgroup") == 0) {
      if (o->n_cgroups >= MAX_LIST)
        die("too many --cgroup options");
      o->cgroups[o->n_cgroups++] = val;
    } else if (strcmp(opt, "--env") == 0) {
      if (!strchr(val, '='))
        die("--env %s: expected K=V", val);
      if (o->n_env >= MAX_LIST)
        die("too many --env options");
      o->env[o->n_env++] = val;
    } else if (strcmp(opt, "--cwd") == 0)
      o->cwd = val;
    else if (strcmp(opt, "--user") == 0)
      o->user = val;
    else if (strcmp(opt, "--cap-drop") == 0) {
      int cap = cap_from_name(val);
      if (cap < 0)
        die("--cap-drop %s: unknown capability", val);
      if (o->n_caps >= MAX_LIST)
        die("too many --cap-drop options");
      o->caps[o->n_caps++] = cap;
    } else
      die("attach: unknown option %s", opt);
  }
  if (i + 1 >= argc)
    die("attach: missing -- CMD [ARGS...]");
  if (o->pid == 0)
    die("attach: --pid is required");
  o->argv = argv + i + 1;
}

/* Splits a colon-separated line into at most max fields, in place. */
static size_t split_colons(char *line, char **fields, size_t max)
{
  size_t n = 0;
  fields[n++] = line;
  for (char *p = line; *p && n < max; p++)
    if (*p == ':') {
      *p = '\0';
      fields[n++] = p + 1;
    }
  return n;
}

/* Looks the user up in the container's /etc/passwd and /etc/group (we are in its mount
 * namespace already; NSS is never used: it would load the host's modules into the container). */
static void lookup_user(const char *spec, struct user *u)
{
  unsigned long want_uid;
  bool numeric = parse_ulong(spec, &want_uid);
  bool found = false;
  autofree char *passwd = read_whole_file("/etc/passwd");
  char *save = NULL;
  for (char *line = passwd ? strtok_r(passwd, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[7];
    unsigned long uid, gid;
    if (split_colons(line, f, 7) < 7 || !parse_ulong(f[2], &uid) || !parse_ulong(f[3], &gid))
      continue;
    if (numeric ? uid != want_uid : strcmp(f[0], spec) != 0)
      continue;
    u->uid = uid;
    u->gid = gid;
    snprintf(u->name, sizeof u->name, "%s", f[0]);
    snprintf(u->home, sizeof u->home, "%s", f[5][0] ? f[5] : "/");
    found = true;
    break;
  }
  if (!found) {
    if (!numeric)
      die("user %s: not found in the container's /etc/passwd", spec);
    /* A uid with no passwd entry is still a valid identity. */
    u->uid = u->gid = want_uid;
    snprintf(u->name, sizeof u->name, "%lu", want_uid);
    snprintf(u->home, sizeof u->home, "/");
  }

  u->groups[u->n_groups++] = u->gid;
  autofree char *group = read_whole_file("/etc/group");
  save = NULL;
  for (char *line = group ? strtok_r(group, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[4];
    unsigned long gid;
    if (split_colons(line, f, 4) < 4 || !parse_ulong(f[2], &gid) || gid == u->gid)
      continue;
    char *msave = NULL;
    for (char *m = strtok_r(f[3], ",", &msave); m; m = strtok_r(NULL, ",", &msave))
      if (strcmp(m, u->name) == 0 && u->n_groups < MAX_LIST)
        u->groups[u->n_groups++] = gid;
  }
}

/* In the container's pid namespace (we are its child): become the process to run and exec. */
static __attribute__((noreturn)) void attach_child(const struct attach_opts *o,
                                                   const struct user *u, const int *cgroup_fds,
                                                   int pty_slave)
{
  err_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (err_fd < 0)
    err_fd = 2;
  die_hook = attach_die_hook;

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  /* "0" moves the writer itself; the fds were opened on the host before setns. */
  for (size_t i = 0; i < o->n_cgroups; i++) {
    if (write_all(cgroup_fds[i], "0", 1) == 0)
      continue;
    if (errno == EBUSY) /* cgroup v2: no processes in a cgroup that delegates controllers */
      die_with_error("join cgroup %s (on cgroup v2, attach to a leaf cgroup)", o->cgroups[i]);
    die_with_error("join cgroup %s", o->cgroups[i]);
  }

  if (pty_slave >= 0) {
    if (setsid() < 0)
      die_with_error("setsid");
    if (ioctl(pty_slave, TIOCSCTTY, 0) < 0)
      die_with_error("make the pty the controlling terminal");
    for (int fd = 0; fd < 3; fd++)
      if (dup2(pty_slave, fd) < 0)
        die_with_error("dup2 the pty");
  }

  install_mount_guard(); /* as init got it: the command must not remount the host's filesystems */
  drop_caps_bounding(o->caps, o->n_caps);
  if (setgroups(u->n_groups, u->groups) < 0)
    die_with_error("setgroups");
  if (setgid(u->gid) < 0)
    die_with_error("setgid %d", (int)u->gid);
  if (setuid(u->uid) < 0)
    die_with_error("setuid %d", (int)u->uid);
  drop_caps_sets(o->caps, o->n_caps);

  if (o->cwd) {
    if (chdir(o->cwd) < 0)
      die_with_error("chdir %s", o->cwd);
  } else if (chdir(u->home) < 0 && chdir("/") < 0)
    die_with_error("chdir /");

  char *home = xasprintf("HOME=%s", u->home);
  char *user = xasprintf("USER=%s", u->name);
  char *logname = xasprintf("LOGNAME=%s", u->name);
  const char *term = getenv("TERM");
  char *termvar = term ? xasprintf("TERM=%s", term) : NULL;
  const char *base[] = { "PATH=" DEFAULT_PATH, home, user, logname, "container=tslxc", termvar };
  char **envp = build_env(base, N_ELEMENTS(base), o->env, o->n_env);

  if (sys_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    die_with_error("close_range");
  environ = envp; /* execvp searches the container's PATH, not ours */
  execvp(o->argv[0], o->argv);
  /* As env(1): 127 when the command is not found, 126 when it cannot run. */
  die_status = errno == ENOENT ? 127 : 126;
  die_with_error("exec %s", o->argv[0]);
}

static void copy_winsize(int from, int to)
{
  struct winsize ws;
  if (ioctl(from, TIOCGWINSZ, &ws) == 0)
    ioctl(to, TIOCSWINSZ, &ws);
}

static int exit_code(int status)
{
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Copies what is readable on from to to; false on EOF or error. */
static bool relay(int from, int to)
{
  char buf[8192];
  ssize_t n = read(from, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return true;
  if (n <= 0)
    return false;
  return write_all(to, buf, n) == 0;
}

int main_attach(int argc, char **argv)
{
  die_status = 125;
  static struct attach_opts opts;
  parse_attach_options(argc, argv, &opts);

  autofd int pidfd = sys_pidfd_open(opts.pid);
  if (pidfd < 0)
    die_with_error("open process %d", (int)opts.pid);

  /* Opened on the host: the paths mean nothing once we are in the container's mount ns. */
  int cgroup_fds[MAX_LIST];
  for (size_t i = 0; i < opts.n_cgroups; i++) {
    char path[PATH_MAX];
    xsnprintf(path, sizeof path, "%s/cgroup.procs", opts.cgroups[i]);
    cgroup_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
    if (cgroup_fds[i] < 0)
      die_with_error("open %s", path);
  }

  if (setns(pidfd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                       CLONE_NEWCGROUP) < 0)
    die_with_error("enter the namespaces of process %d", (int)opts.pid);

  static struct user user;
  lookup_user(opts.user ? opts.user : "0", &user);

  /* The pty comes from the container's own devpts, so `tty` inside names /dev/pts/N. */
  autofd int master = -1;
  autofd int slave = -1;
  if (opts.pty) {
    /* The devpts instance's own ptmx, checked to be on a devpts: the container owns its /dev
     * and could put anything at /dev/ptmx. */
    master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    struct statfs sfs;
    if (master < 0 || fstatfs(master, &sfs) < 0)
      die_with_error("open the container's /dev/pts/ptmx");
    if (sfs.f_type != DEVPTS_SUPER_MAGIC)
      die("the container's /dev/pts/ptmx is not on a devpts");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
      die_with_error("unlock the pty");
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
      die_with_error("open the pty slave");
    if (isatty(0))
      copy_winsize(0, slave);
    else if (isatty(1))
      copy_winsize(1, slave);
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  for (size_t i = 0; i < N_ELEMENTS(forwarded_signals); i++)
    sigaddset(&mask, forwarded_signals[i]);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
    die_with_error("sigprocmask");
  autofd int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0)
    die_with_error("signalfd");

  pid_t child = fork(); /* the first process of ours in the container's pid namespace */
  if (child < 0)
    die_with_error("fork into the container");
  if (child == 0)
    attach_child(&opts, &user, cgroup_fds, slave);
  for (size_t i = 0; i < opts.n_cgroups; i++)
    close(cgroup_fds[i]);

  bool stdin_open = opts.pty;
  if (opts.pty) {
    close(steal_fd(&slave));
    tty_make_raw(0);
  }

  for (;;) {
    struct pollfd pfd[3] = {
      { .fd = sigfd, .events = POLLIN },
      { .fd = master, .events = POLLIN },
      { .fd = stdin_open ? 0 : -1, .events = POLLIN },
    };
    if (poll(pfd, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("poll");
    }
    if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
      if (!relay(master, 1))
        close(steal_fd(&master)); /* EIO: no one holds the slave any more */
    if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!relay(0, master)) {
        stdin_open = false;
        /* Input ended: pass it on as end-of-file to the pty's reader. */
        if (master >= 0 && !isatty(0))
          (void)write_all(master, "\x04", 1);
      }
    }
    if (!(pfd[0].revents & POLLIN))
      continue;

    struct signalfd_siginfo si;
    if (read(sigfd, &si, sizeof si) != sizeof si)
      continue;
    if (si.ssi_signo == SIGWINCH && master >= 0) {
      copy_winsize(isatty(0) ? 0 : 1, master);
      continue;
    }
    if (si.ssi_signo != SIGCHLD) {
      /* A signal the terminal sent to its foreground group reached the command already. */
      if (si.ssi_code != SI_KERNEL)
        kill(child, si.ssi_signo);
      continue;
    }
    int status;
    if (waitpid(child, &status, WNOHANG) != child)
      continue;
    /* Output written just before exit is still in the pty. */
    while (master >= 0 && relay(master, 1))
      if (poll(&(struct pollfd){ .fd = master, .events = POLLIN }, 1, 0) != 1)
        break;
    tty_restore();
    return exit_code(status);
  }
}
