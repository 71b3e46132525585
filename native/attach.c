/* tslxc-helper attach: run a command inside a running container. */
#include "exec.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>

struct attach_opts {
  pid_t pid;
  const char *cgroups[MAX_LIST];
  size_t n_cgroups;
  const char *exec_socket;
  bool pty;
  struct winsize pty_size;  /* --pty-size: for a caller without a terminal (ptyctl.c) */
  int control_fd;           /* --control-fd: its later sizes and signals; -1 without */
  struct exec_spec spec;
};

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

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
      if (o->spec.n_env >= MAX_LIST)
        die("too many --env options");
      o->spec.env[o->spec.n_env++] = val;
    } else if (strcmp(opt, "--cwd") == 0)
      o->spec.cwd = val;
    else if (strcmp(opt, "--user") == 0)
      o->spec.user = val;
    else if (strcmp(opt, "--exec-socket") == 0)
      o->exec_socket = val;
    else if (strcmp(opt, "--pty-size") == 0) {
      if (!pty_parse_size(val, &o->pty_size))
        die("--pty-size %s: expected ROWSxCOLS", val);
    } else if (strcmp(opt, "--control-fd") == 0) {
      if (!parse_ulong(val, &n) || n < 3 || n > INT32_MAX || fcntl((int)n, F_GETFD) < 0)
        die("--control-fd %s: expected an open fd above 2", val);
      o->control_fd = n; /* kept across the sealed re-exec; the command never gets it (exec.c) */
    }
    else if (strcmp(opt, "--cap-drop") == 0) {
      int cap = cap_from_name(val);
      if (cap < 0)
        die("--cap-drop %s: unknown capability", val);
      if (o->spec.n_caps >= MAX_LIST)
        die("too many --cap-drop options");
      o->spec.caps[o->spec.n_caps++] = cap;
    } else if (strcmp(opt, "--seccomp-deny") == 0 || strcmp(opt, "--seccomp-allow") == 0)
      seccomp_policy_add(&o->spec.seccomp, opt[10] == 'd', val);
    else
      die("attach: unknown option %s", opt);
  }
  if (i + 1 >= argc)
    die("attach: missing -- CMD [ARGS...]");
  if (o->pid == 0)
    die("attach: --pid is required");
  o->spec.argv = argv + i + 1;
  o->spec.term = getenv("TERM");
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

static int connect_exec_socket(const char *path)
{
  autofd int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  autofd int dirfd = -1;
  if (strlen(path) < sizeof addr.sun_path) {
    memcpy(addr.sun_path, path, strlen(path) + 1);
  } else { /* too long for sun_path: by its directory's fd */
    const char *slash = strrchr(path, '/');
    autofree char *dir = slash ? strndup(path, slash - path + 1) : NULL;
    if (!dir || (dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
      return -1;
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1) >=
        (int)sizeof addr.sun_path)
      return -1;
  }
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    return -1;
  return steal_fd(&fd);
}

/* Receives one reply; false on EOF or error. A 'P' carries a pidfd. */
static bool recv_reply(int sock, struct exec_reply *r, int *pidfd)
{
  int fd;
  if (recv_with_fds(sock, r, sizeof *r, &fd, 1) != (ssize_t)sizeof *r) {
    if (fd >= 0)
      close(fd);
    return false;
  }
  if (fd >= 0)
    *pidfd = fd;
  return true;
}

/* The command's exit code, or -1 when the server cannot be used (nothing was run: fall back). */
static int attach_via_server(const struct attach_opts *o)
{
  for (int fd = 0; fd < 3; fd++) /* the command gets them: they must exist */
    if (fcntl(fd, F_GETFD) < 0)
      return -1;
  size_t len;
  mode_t mask = umask(022); /* the command gets ours, as on the direct path */
  umask(mask);
  autofree char *req = exec_request_encode(&o->spec, mask, &len);
  if (len > EXEC_REQUEST_MAX)
    return -1;
  autofd int sock = connect_exec_socket(o->exec_socket);
  if (sock < 0) {
    debug("exec server %s: %s", o->exec_socket, strerror(errno));
    return -1;
  }

  /* Signals wait in the signalfd until the command's pidfd is there to take them. */
  sigset_t sigs;
  sigemptyset(&sigs);
  for (size_t i = 0; i < N_ELEMENTS(forwarded_signals); i++)
    sigaddset(&sigs, forwarded_signals[i]);
  sigset_t old;
  if (sigprocmask(SIG_BLOCK, &sigs, &old) < 0)
    die_with_error("sigprocmask");
  autofd int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    die_with_error("signalfd");

  int fds[3] = { 0, 1, 2 };
  struct exec_reply r;
  autofd int pidfd = -1;
  if (send_with_fds(sock, req, len, fds, 3, 0) < 0 || !recv_reply(sock, &r, &pidfd) || r.type != 'P' ||
      pidfd < 0) {
    /* Refused ('E'), or the server died before its fork (then nothing ran either). */
    debug("exec server %s: no command started", o->exec_socket);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  pid_t cmd = r.value; /* in our pid namespace (the host's) */
  debug("exec server started %d", (int)cmd);

  for (;;) {
    struct pollfd pfd[2] = {
      { .fd = sigfd, .events = POLLIN },
      { .fd = sock >= 0 ? sock : pidfd, .events = POLLIN },
    };
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("poll");
    }
    if (pfd[0].revents & POLLIN) {
      /* The command runs in a session of its own, so what the terminal sent to our process
       * group (^C: SI_KERNEL) has not reached it: it goes to the command's process group, as
       * the terminal would have sent it, while its leader lives (its PID cannot be reused
       * then). Other signals go to the command alone, as on the direct path. */
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
        bool ended = poll(&(struct pollfd){ .fd = pidfd, .events = POLLIN }, 1, 0) == 1;
        if (si.ssi_code == SI_KERNEL && !ended)
          kill(-cmd, si.ssi_signo);
        else
          sys_pidfd_send_signal(pidfd, si.ssi_signo);
      }
    }
    if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    if (sock < 0) /* the pidfd: the command ended, its status went with the server */
      die("the exec server ended before the command; its exit status is lost");
    if (recv_reply(sock, &r, &(int){ -1 }) && r.type == 'X')
      return exit_code(r.value);
    close(steal_fd(&sock)); /* the server died (killed): wait for the command itself */
  }
}

int main_attach(int argc, char **argv)
{
  die_status = 125;
  static struct attach_opts opts = { .control_fd = -1 };
  parse_attach_options(argc, argv, &opts);

  /* The container's exec server forks the command where it is already in the container's
   * cgroups (no migration, ~6 ms saved). Unreachable or refusing: the direct path below. */
  if (opts.exec_socket && !opts.pty) {
    int code = attach_via_server(&opts);
    if (code >= 0)
      return code;
  }

  /* The direct path: our child is visible inside before it execs, so it must not run the host's
   * binary (sealed.c). Re-executed, we come back here (the server is asked again: cheap). */
  reexec_sealed(helper_argv);

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

  /* An unprivileged container: its user namespace too (setns enters it first, so the others,
   * owned by it, are entered with its credentials), then we become its root: files we make are
   * the container's root's, and we hold no capability over the host any more. */
  int userns = in_other_userns(opts.pid) ? CLONE_NEWUSER : 0;
  if (setns(pidfd, userns | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                       CLONE_NEWCGROUP) < 0)
    die_with_error("enter the namespaces of process %d", (int)opts.pid);
  if (userns)
    become_userns_root();

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
    if (opts.pty_size.ws_row)
      ioctl(slave, TIOCSWINSZ, &opts.pty_size);
    else if (isatty(0))
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
    exec_in_container(&opts.spec, opts.cgroups, cgroup_fds, opts.n_cgroups, slave);
  for (size_t i = 0; i < opts.n_cgroups; i++)
    close(cgroup_fds[i]);

  bool stdin_open = opts.pty;
  struct pty_control control = { .fd = opts.pty ? opts.control_fd : -1 };
  if (opts.pty) {
    close(steal_fd(&slave));
    tty_make_raw(0);
  }

  for (;;) {
    struct pollfd pfd[4] = {
      { .fd = sigfd, .events = POLLIN },
      { .fd = master, .events = POLLIN },
      { .fd = stdin_open ? 0 : -1, .events = POLLIN },
      { .fd = control.fd, .events = POLLIN },
    };
    if (poll(pfd, 4, -1) < 0) {
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
    if ((pfd[3].revents & (POLLIN | POLLHUP | POLLERR)) && !pty_control_read(&control, master, child))
      control.fd = -1; /* closed with the rest when we exit */
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
