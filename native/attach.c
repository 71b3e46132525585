/* tslxc-helper attach: run a command inside a running container.
 *
 * The caller's terminal never enters the container. A terminal among the caller's fds 0-2 is
 * replaced by a pipe (or, with --pty, the container's own pty takes fds 0 and 1, and 2) that this
 * process relays on the host, and only while the command runs; fds that are no terminal (files,
 * pipes, /dev/null) are passed as they are. The command is forked by the container's exec server
 * or, when that is not there or refuses (a container at its process limit), by a one-shot process
 * of ours that speaks the server's protocol (exec.h): one relay serves both. See README.md. */
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
#include <sys/prctl.h>
#include <sys/un.h>
#include <time.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>

struct attach_opts {
  pid_t pid;
  const char *cgroups[MAX_LIST];
  size_t n_cgroups;
  const char *exec_socket;
  bool pty;
  struct winsize pty_size; /* --pty-size: for a caller without a terminal (ptyctl.c) */
  int control_fd;          /* --control-fd: later sizes (with a pty) and signals; -1 without */
  struct exec_spec spec;
};

static const int forwarded_signals[] = { SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                         SIGUSR1, SIGUSR2, SIGWINCH };

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
    else if (strcmp(opt, "--group") == 0)
      o->spec.group = val;
    else if (strcmp(opt, "--exec-socket") == 0)
      o->exec_socket = val;
    else if (strcmp(opt, "--pty-size") == 0) {
      if (!pty_parse_size(val, &o->pty_size))
        die("--pty-size %s: expected ROWSxCOLS", val);
    } else if (strcmp(opt, "--control-fd") == 0) {
      if (!parse_ulong(val, &n) || n < 3 || n > INT32_MAX || fcntl((int)n, F_GETFD) < 0)
        die("--control-fd %s: expected an open fd above 2", val);
      o->control_fd = n; /* kept across the sealed re-exec; the command never gets it (exec.c) */
    } else if (strcmp(opt, "--cap-drop") == 0) {
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

static int exit_code(int status)
{
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static bool fd_open(int fd)
{
  return fcntl(fd, F_GETFD) >= 0;
}

/* What the command gets as its fds 0-2, and our ends of the relay. */
struct stdio_plan {
  int give[3];     /* a caller's fd that is no terminal, a pipe's end, or -1 (the pty) */
  bool ours[3];    /* give[i] is a pipe's end of ours: closed once handed over */
  int to_cmd;      /* our end of the pipe to its stdin, or -1 */
  int from_cmd[3]; /* [1], [2]: our ends of the pipes from its stdout and stderr, or -1 */
  int term_fd;     /* the caller's terminal (its window size), or -1 */
};

/* fds 0-2 are open (main_attach saw to it). */
static void plan_stdio(const struct attach_opts *o, struct stdio_plan *p)
{
  bool tty[3];
  p->to_cmd = -1;
  p->term_fd = -1;
  for (int fd = 2; fd >= 0; fd--) {
    p->give[fd] = p->from_cmd[fd] = -1;
    p->ours[fd] = false;
    tty[fd] = isatty(fd);
    if (tty[fd])
      p->term_fd = fd;
  }
  if (o->pty) {
    /* fds 0 and 1 on the pty; fd 2 too, unless the caller's fd 2 is no terminal (2>file, a
     * pipe): that is passed as it is, so stdout and stderr stay apart. With --pty-size (the
     * gateway, whose fds are all pipes) all three are on the pty, as sshd does. */
    if (!o->pty_size.ws_row && !tty[2])
      p->give[2] = 2;
    return;
  }
  for (int fd = 0; fd < 3; fd++) {
    if (!tty[fd]) {
      p->give[fd] = fd;
    } else {
      int pp[2];
      if (pipe2(pp, O_CLOEXEC) < 0)
        die_with_error("pipe");
      int mine = fd == 0 ? pp[1] : pp[0];
      fcntl(mine, F_SETFL, O_NONBLOCK);
      p->give[fd] = fd == 0 ? pp[0] : pp[1];
      p->ours[fd] = true;
      if (fd == 0)
        p->to_cmd = mine;
      else
        p->from_cmd[fd] = mine;
    }
  }
}

/* Once the command's side holds them, our copies of its ends go (its EOF must not wait for us). */
static void close_given(struct stdio_plan *p)
{
  for (int fd = 0; fd < 3; fd++)
    if (p->ours[fd]) {
      close(p->give[fd]);
      p->give[fd] = -1;
      p->ours[fd] = false;
    }
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies what is readable on from to to; false on EOF or error (EIO: no one holds the slave). */
static bool relay_out(int from, int to)
{
  char buf[8192];
  ssize_t n = read(from, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return true;
  if (n <= 0)
    return false;
  return write_all(to, buf, n) == 0;
}

/* After the command ended: what it wrote before is read for at most this long, without waiting
 * for processes it left behind (they may hold its pipes or pty for ever). */
#define DRAIN_QUIET_MS 50
#define DRAIN_MAX_MS 1000

/* Serves one command over sock (the exec server's connection, or our direct child's): takes its
 * PID, pty and status, relays the caller's fds, forwards signals. Returns its exit code, or -1 when
 * nothing was started (the caller may fall back). */
static int run_command(const struct attach_opts *o, int sock_in, struct stdio_plan *p, int sigfd)
{
  autofd int sock = sock_in;
  autofd int pidfd = -1;
  autofd int master = -1;
  pid_t cmd = 0;
  bool started = false, ended = false;
  int status = 0;
  char message[EXEC_MESSAGE_MAX + 1] = "";
  struct pty_control control = { .fd = o->control_fd };
  /* The caller's input: to the stdin pipe or the pty, a buffer at a time. */
  bool stdin_open = o->pty || p->to_cmd >= 0;
  char in_buf[4096];
  size_t in_len = 0, in_off = 0;
  int64_t drain_end = 0;

  for (;;) {
    int in_dst = o->pty ? master : p->to_cmd;
    struct pollfd pfd[8] = {
      { .fd = pidfd >= 0 ? sigfd : -1, .events = POLLIN },
      { .fd = sock >= 0 ? sock : (!ended ? pidfd : -1), .events = POLLIN },
      { .fd = !ended && stdin_open && in_len == 0 && in_dst >= 0 ? 0 : -1, .events = POLLIN },
      { .fd = !ended && in_len > 0 ? in_dst : -1, .events = POLLOUT },
      { .fd = master, .events = POLLIN },
      { .fd = p->from_cmd[1], .events = POLLIN },
      { .fd = p->from_cmd[2], .events = POLLIN },
      { .fd = pidfd >= 0 && !ended ? control.fd : -1, .events = POLLIN },
    };
    int timeout = -1;
    if (ended) {
      if (master < 0 && p->from_cmd[1] < 0 && p->from_cmd[2] < 0)
        break;
      int64_t left = drain_end - now_ms();
      if (left <= 0)
        break;
      timeout = left < DRAIN_QUIET_MS ? (int)left : DRAIN_QUIET_MS;
    }
    int n = poll(pfd, N_ELEMENTS(pfd), timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("poll");
    }
    if (n == 0) /* drained: nothing more came for a while */
      break;

    /* The command's output first: what it wrote before it ended is shown before we leave. */
    int *outs[3] = { &master, &p->from_cmd[1], &p->from_cmd[2] };
    for (int i = 0; i < 3; i++)
      if ((pfd[4 + i].revents & (POLLIN | POLLHUP | POLLERR)) &&
          !relay_out(*outs[i], i == 2 ? 2 : 1)) {
        close(*outs[i]);
        *outs[i] = -1;
      }

    if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(0, in_buf, sizeof in_buf);
      if (r > 0) {
        in_len = r;
        in_off = 0;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        stdin_open = false;
        if (o->pty) { /* input ended: the pty's reader gets it as end-of-file */
          if (!isatty(0))
            (void)write(master, "\x04", 1);
        } else {
          close(p->to_cmd);
          p->to_cmd = -1;
        }
      }
    }
    if (pfd[3].revents & (POLLOUT | POLLHUP | POLLERR)) {
      ssize_t w = write(in_dst, in_buf + in_off, in_len - in_off);
      if (w > 0) {
        in_off += w;
        if (in_off == in_len)
          in_len = in_off = 0;
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        in_len = in_off = 0; /* the command closed its input: ours no longer matters */
        stdin_open = false;
      }
    }

    if ((pfd[7].revents & (POLLIN | POLLHUP | POLLERR)) &&
        !pty_control_read(&control, master, pidfd))
      control.fd = -1; /* closed with the rest when we exit */

    if (pfd[0].revents & POLLIN) {
      /* The command runs in a session of its own, so what the terminal sent to our process
       * group (^C: SI_KERNEL) has not reached it: it goes to the command's process group, as
       * the terminal would have sent it, while its leader lives (its PID cannot be reused
       * then). Other signals go to the command alone. A window size goes to its pty. */
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGWINCH && o->pty) {
          struct winsize ws;
          if (master >= 0 && p->term_fd >= 0 && ioctl(p->term_fd, TIOCGWINSZ, &ws) == 0)
            ioctl(master, TIOCSWINSZ, &ws);
          continue;
        }
        bool gone = poll(&(struct pollfd){ .fd = pidfd, .events = POLLIN }, 1, 0) == 1;
        if (si.ssi_code == SI_KERNEL && !gone)
          kill(-cmd, si.ssi_signo);
        else
          sys_pidfd_send_signal(pidfd, si.ssi_signo);
      }
    }

    if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    if (sock < 0) /* the pidfd: the command ended, its status went with the server */
      die("the exec server ended before the command; its exit status is lost");
    char rec[sizeof(struct exec_reply) + EXEC_MESSAGE_MAX];
    struct exec_reply r;
    int fd;
    ssize_t got = recv_with_fds(sock, rec, sizeof rec, &fd, 1);
    if (got < (ssize_t)sizeof r) {
      if (fd >= 0)
        close(fd);
      close(steal_fd(&sock));
      if (ended)
        continue;
      if (message[0]) { /* the command's process failed before its exec */
        const char *prefix = "tslxc-helper: ";
        die("%s",
            strncmp(message, prefix, strlen(prefix)) == 0 ? message + strlen(prefix) : message);
      }
      if (!started)
        return -1; /* the server died before its fork: nothing ran */
      if (pidfd < 0)
        die("the exec server ended before the command started");
      continue; /* the server was killed while the command runs: wait for it on the pidfd */
    }
    memcpy(&r, rec, sizeof r);
    switch (r.type) {
    case 'P':
      if (fd < 0 || pidfd >= 0)
        die("the exec server sent a malformed reply");
      pidfd = fd;
      cmd = r.value;
      started = true;
      close_given(p);
      debug("command %d started", (int)cmd);
      break;
    case 'T':
      if (fd < 0 || !o->pty || master >= 0)
        die("the exec server sent a malformed reply");
      master = fd;
      started = true;
      close_given(p);
      if (!o->pty_size.ws_row && p->term_fd >= 0) {
        struct winsize ws;
        if (ioctl(p->term_fd, TIOCGWINSZ, &ws) == 0)
          ioctl(master, TIOCSWINSZ, &ws);
      }
      tty_make_raw(0);
      break;
    case 'M':
      if (fd >= 0)
        close(fd);
      started = true;
      if (r.value >= 0 && (size_t)r.value <= (size_t)got - sizeof r) {
        memcpy(message, rec + sizeof r, r.value);
        message[r.value] = '\0';
      }
      break;
    case 'X':
      ended = true;
      status = r.value;
      drain_end = now_ms() + DRAIN_MAX_MS;
      /* The command ended: nothing read from the caller's terminal from now on reaches what
       * it left behind. Its output so far is still read, briefly. */
      if (p->to_cmd >= 0) {
        close(p->to_cmd);
        p->to_cmd = -1;
      }
      stdin_open = false;
      break;
    case 'E':
      if (fd >= 0)
        close(fd);
      if (!started) {
        debug("exec server refused: %s", strerror(r.value));
        return -1;
      }
      break;
    default:
      if (fd >= 0)
        close(fd);
    }
  }
  tty_restore();
  if (message[0])
    dprintf(2, "%s\n", message);
  return exit_code(status);
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

/* The pty's first size: --pty-size, or the caller's terminal's. */
static struct winsize first_size(const struct attach_opts *o, const struct stdio_plan *p)
{
  struct winsize ws = o->pty_size;
  if (!ws.ws_row && (p->term_fd < 0 || ioctl(p->term_fd, TIOCGWINSZ, &ws) < 0))
    ws = (struct winsize){ 0 };
  return ws;
}

/* The command's exit code, or -1 when the server cannot be used (nothing was run: fall back). */
static int attach_via_server(const struct attach_opts *o, struct stdio_plan *p, int sigfd)
{
  size_t len;
  mode_t mask = umask(022); /* the command gets ours, as on the direct path */
  umask(mask);
  struct winsize size = first_size(o, p);
  autofree char *req = exec_request_encode(&o->spec, mask, o->pty ? &size : NULL, &len);
  if (len > EXEC_REQUEST_MAX)
    return -1;
  autofd int sock = connect_exec_socket(o->exec_socket);
  if (sock < 0) {
    debug("exec server %s: %s", o->exec_socket, strerror(errno));
    return -1;
  }
  /* Never a terminal: plan_stdio put pipes in their place, or the pty takes them. */
  int fds[3];
  size_t n_fds = 0;
  for (int fd = 0; fd < 3; fd++)
    if (p->give[fd] >= 0)
      fds[n_fds++] = p->give[fd];
  if (send_with_fds(sock, req, len, fds, n_fds, MSG_NOSIGNAL) < 0) {
    debug("exec server %s: send: %s", o->exec_socket, strerror(errno));
    return -1;
  }
  return run_command(o, steal_fd(&sock), p, sigfd);
}

/* The direct path's one-shot server: forked on the host, it drops the caller's fds before it
 * enters anything, becomes non-dumpable, enters the container and forks the command there (from
 * the host's cgroups: a container at its process limit cannot refuse that fork; the command then
 * migrates, which no pids limit refuses), reports 'P' and 'X' as the exec server does. */
static __attribute__((noreturn)) void direct_server(const struct attach_opts *o,
                                                    const struct stdio_plan *p, int conn)
{
  struct exec_stdio st = {
    .conn = conn, .pty = o->pty, .pty_stderr = o->pty && p->give[2] < 0, .size = first_size(o, p)
  };
  exec_child_begin(&st);
  /* Out of the caller's session (no controlling terminal for anything forked from here on) and
   * its terminal off fds 0-2, while still on the host where nothing of the container sees us. */
  if (setsid() < 0)
    die_with_error("setsid");
  autofd int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0)
    die_with_error("open /dev/null");
  for (int fd = 0; fd < 3; fd++)
    if (dup2(p->give[fd] >= 0 ? p->give[fd] : null, fd) < 0)
      die_with_error("dup2");
  /* Nothing else of attach's (the control pipe, our relay's ends) goes in. */
  if (dup2(conn, 3) < 0 || sys_close_range(4, ~0U, 0) < 0)
    die_with_error("close the caller's fds");
  conn = st.conn = 3;
  fcntl(conn, F_SETFD, FD_CLOEXEC);
  exec_child_begin(&st);
  null = -1;
  if (prctl(PR_SET_DUMPABLE, 0) < 0)
    die_with_error("prctl PR_SET_DUMPABLE");

  autofd int pidfd = sys_pidfd_open(o->pid);
  if (pidfd < 0)
    die_with_error("open process %d", (int)o->pid);
  /* Opened on the host: the paths mean nothing once we are in the container's mount ns. */
  int cgroup_fds[MAX_LIST];
  for (size_t i = 0; i < o->n_cgroups; i++) {
    char path[PATH_MAX];
    xsnprintf(path, sizeof path, "%s/cgroup.procs", o->cgroups[i]);
    cgroup_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
    if (cgroup_fds[i] < 0)
      die_with_error("open %s", path);
  }
  /* An unprivileged container: its user namespace too (setns enters it first, so the others,
   * owned by it, are entered with its credentials), then we become its root: files we make are
   * the container's root's, and we hold no capability over the host any more. */
  int userns = in_other_userns(o->pid) ? CLONE_NEWUSER : 0;
  if (setns(pidfd, userns | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                       CLONE_NEWNET | CLONE_NEWCGROUP) < 0)
    die_with_error("enter the namespaces of process %d", (int)o->pid);
  if (userns)
    become_userns_root();

  pid_t cmd = fork(); /* the first process of ours in the container's pid namespace */
  if (cmd < 0)
    die_with_error("fork into the container");
  if (cmd == 0)
    exec_in_container(&o->spec, o->cgroups, cgroup_fds, o->n_cgroups, &st);
  for (size_t i = 0; i < o->n_cgroups; i++)
    close(cgroup_fds[i]);
  for (int fd = 0; fd < 3; fd++)
    close(fd);
  autofd int cmd_pidfd = sys_pidfd_open(cmd);
  exec_send_reply(conn, 'P', cmd, cmd_pidfd);
  int status;
  while (waitpid(cmd, &status, 0) < 0)
    if (errno != EINTR)
      _exit(125);
  exec_send_reply(conn, 'X', status, -1);
  _exit(0);
}

static int attach_direct(const struct attach_opts *o, struct stdio_plan *p, int sigfd)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    die_with_error("socketpair");
  pid_t server = fork();
  if (server < 0)
    die_with_error("fork");
  if (server == 0) {
    close(sv[0]);
    direct_server(o, p, sv[1]);
  }
  close(sv[1]);
  int code = run_command(o, sv[0], p, sigfd);
  while (waitpid(server, NULL, 0) < 0 && errno == EINTR)
    ;
  if (code < 0)
    die("the command could not be started");
  return code;
}

int main_attach(int argc, char **argv)
{
  die_status = 125;
  static struct attach_opts opts = { .control_fd = -1 };
  parse_attach_options(argc, argv, &opts);

  /* A closed fd 0-2 becomes /dev/null: nothing we open later may take its number. */
  for (int fd = 0; fd < 3; fd++)
    if (!fd_open(fd) && open("/dev/null", O_RDWR) != fd)
      die_with_error("open /dev/null");
  static struct stdio_plan plan;
  plan_stdio(&opts, &plan);
  /* A caller's stdout that went away must not kill the relay (the command's processes reset it). */
  signal(SIGPIPE, SIG_IGN);
  /* Signals wait in the signalfd until the command's pidfd is there to take them. */
  sigset_t sigs;
  sigemptyset(&sigs);
  for (size_t i = 0; i < N_ELEMENTS(forwarded_signals); i++)
    sigaddset(&sigs, forwarded_signals[i]);
  if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0)
    die_with_error("sigprocmask");
  autofd int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    die_with_error("signalfd");

  /* The container's exec server forks the command where it is already in the container's
   * cgroups (no migration and its RCU grace period). Unreachable or refusing (its fork failed: the
   * container is at its process limit): the direct path below. */
  if (opts.exec_socket) {
    int code = attach_via_server(&opts, &plan, sigfd);
    if (code >= 0)
      return code;
  }

  /* The direct path: our child is visible inside before it execs, so it must not run the host's
   * binary (sealed.c). Re-executed, we come back here (the server is asked again: cheap). */
  reexec_sealed(helper_argv);
  return attach_direct(&opts, &plan, sigfd);
}
