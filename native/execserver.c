/* The exec server ("zygote"): one process per running container, forked by the monitor at each
 * boot, that sits in the container's cgroups and namespaces and forks the commands of attach. A
 * command forked there is born in the container's cgroups: no cgroup migration (whose first one
 * waits for an RCU grace period) on the exec path. See README.md, "The exec server". */
#include "exec.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#define MAX_KIDS 256

/* The running commands, each with the connection its exit status goes to. */
/* The container's user namespace, for an unprivileged container (-1 otherwise). */
static int userns_fd = -1;

static struct kid {
  pid_t pid;
  int conn;
} kids[MAX_KIDS];

static void server_die_hook(const char *line, int err)
{
  (void)err;
  debug("exec server: %s", line);
}

/* One request: its record and the command's fds (0-2, or with a pty none or its fd 2). A request
 * that is not well-formed gets 'E' (the client then falls back to the direct path) and nothing
 * runs. */
static void serve(int conn)
{
  struct ucred cred;
  socklen_t cl = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != 0) {
    exec_send_reply(conn, 'E', EPERM, -1);
    return;
  }
  /* The client sends its request right after connect; a stuck one cannot hold us for long. */
  struct timeval tv = { .tv_sec = 1 };
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  static char buf[EXEC_REQUEST_MAX]; /* only the pages a request touches become resident */
  int fds[3];
  ssize_t n = recv_with_fds(conn, buf, EXEC_REQUEST_MAX, fds, 3);

  static struct exec_spec spec;
  mode_t mask;
  struct exec_stdio st = { .conn = conn };
  size_t slot = 0;
  while (slot < MAX_KIDS && kids[slot].pid > 0)
    slot++;
  int refuse = 0;
  if (n <= 0 || !exec_request_decode(buf, n, &spec, &mask, &st.pty, &st.size))
    refuse = EINVAL;
  else if (st.pty ? fds[1] >= 0 : (fds[0] < 0 || fds[1] < 0 || fds[2] < 0))
    refuse = EINVAL; /* with a pty: at most the command's fd 2 */
  else if (slot == MAX_KIDS)
    refuse = EAGAIN;
  st.pty_stderr = st.pty && fds[0] < 0;

  pid_t pid = -1;
  if (!refuse) {
    pid = fork();
    if (pid < 0)
      refuse = errno;
  }
  if (pid == 0) {
    /* In the container's pid namespace now. Failures go to the client from here on. */
    exec_child_begin(&st);
    int in[3] = { fds[0], fds[1], fds[2] };
    if (st.pty) /* the one fd is the command's stderr */
      in[0] = in[1] = -1, in[2] = fds[0];
    for (int fd = 0; fd < 3; fd++)
      if (in[fd] >= 0 && dup2(in[fd], fd) < 0)
        die_with_error("dup2");
    umask(mask);
    if (userns_fd >= 0) {
      if (setns(userns_fd, CLONE_NEWUSER) < 0 || !try_become_userns_root())
        die_with_error("enter the container's user namespace");
    }
    exec_in_container(&spec, NULL, NULL, 0, &st);
  }
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  free(spec.argv);
  spec.argv = NULL;
  if (refuse) {
    debug("exec server: request refused: %s", strerror(refuse));
    exec_send_reply(conn, 'E', refuse, -1);
    return;
  }
  /* A pidfd taken before we could reap it names this very process: the client signals it
   * without any PID-reuse race. */
  autofd int pidfd = sys_pidfd_open(pid);
  exec_send_reply(conn, 'P', pid, pidfd);
  kids[slot].pid = pid;
  kids[slot].conn = fcntl(conn, F_DUPFD_CLOEXEC, 3);
}

static void reap(void)
{
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    for (size_t i = 0; i < MAX_KIDS; i++)
      if (kids[i].pid == pid) {
        if (kids[i].conn >= 0) {
          exec_send_reply(kids[i].conn, 'X', status, -1);
          close(kids[i].conn);
        }
        kids[i].pid = 0;
        kids[i].conn = -1;
        break;
      }
}

/* The server proper, in the child of the monitor. Never returns. */
static __attribute__((noreturn)) void run_exec_server(int listen_fd, pid_t monitor, pid_t init,
                                                      const char *const *cgroups, size_t n_cgroups)
{
  die_hook = server_die_hook;
  die_status = 1;
  /* Dies with the monitor (which also kills it when init ends, before removing the cgroups). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != monitor)
    _exit(1);
  prctl(PR_SET_NAME, "tslxc-exec");
  /* Non-dumpable before it enters any namespace (as runc's init): its children, visible inside
   * until they exec, inherit it, so the container's root cannot ptrace them or open their
   * /proc/PID/fd, /exe or /mem (that needs CAP_SYS_PTRACE over the host's user namespace). */
  if (prctl(PR_SET_DUMPABLE, 0) < 0)
    die_with_error("prctl PR_SET_DUMPABLE");
  /* The monitor ignores SIGTERM & co.; our children must not inherit that (SIG_IGN survives
   * exec). SIGCHLD stays blocked for the signalfd. */
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_SETMASK, &mask, NULL);
  /* Nothing of the monitor's stays open (the console pty, its sockets, its log): 0-2 are its
   * /dev/null or monitor.log, replaced in every child. */
  int keep[] = { listen_fd };
  close_all_but(keep, N_ELEMENTS(keep));

  /* The container's cgroups, by host paths, before the mount namespace changes. On a pure v2
   * host a process may not sit in the container's cgroup itself once systemd inside delegates
   * controllers there: the server goes to the attach leaf, as attach does. */
  struct statfs sfs;
  bool v2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
  for (size_t i = 0; i < n_cgroups; i++) {
    char path[PATH_MAX];
    if (v2) {
      xsnprintf(path, sizeof path, "%s/%s", cgroups[i], EXEC_CGROUP_LEAF);
      if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die_with_error("mkdir %s", path);
      xsnprintf(path, sizeof path, "%s/%s/cgroup.procs", cgroups[i], EXEC_CGROUP_LEAF);
    } else
      xsnprintf(path, sizeof path, "%s/cgroup.procs", cgroups[i]);
    if (write_file_at(AT_FDCWD, path, "0") < 0)
      die_with_error("join %s", path);
  }

  /* Then init's namespaces. Entering its pid namespace changes only that of our children: the
   * server stays in the host's, invisible from inside. Once in the mount namespace, the server
   * itself reads nothing there: the children do (the user lookup), after fork. */
  autofd int pidfd = sys_pidfd_open(init);
  if (pidfd < 0)
    die_with_error("open process %d", (int)init);
  /* An unprivileged container: the server stays in the host's user namespace (SO_PEERCRED must
   * keep meaning host uid 0), each child enters the container's before it runs anything. */
  if (in_other_userns(init)) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)init);
    userns_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (userns_fd < 0)
      die_with_error("open %s", path);
  }
  if (setns(pidfd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                       CLONE_NEWCGROUP) < 0)
    die_with_error("enter the namespaces of process %d", (int)init);
  close(steal_fd(&pidfd));

  autofd int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    die_with_error("signalfd");
  for (size_t i = 0; i < MAX_KIDS; i++)
    kids[i].conn = -1;
  debug("exec server ready for init %d", (int)init);

  for (;;) {
    struct pollfd pfd[2] = {
      { .fd = sigfd, .events = POLLIN },
      { .fd = listen_fd, .events = POLLIN },
    };
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("poll");
    }
    if (pfd[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si)
        ;
      reap();
    }
    if (pfd[1].revents & POLLIN) {
      autofd int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (conn >= 0)
        serve(conn);
    }
  }
}

pid_t exec_server_start(int run_dir_fd, pid_t init, const char *const *cgroups, size_t n_cgroups)
{
  /* Bound on the host, in the 0700 run dir, before the server enters the container's mount
   * namespace: nothing inside can see or reach it. */
  autofd int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    debug("exec server: socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/" LAYOUT_INSTANCE_RUN_EXEC_SOCKET,
           run_dir_fd);
  unlinkat(run_dir_fd, LAYOUT_INSTANCE_RUN_EXEC_SOCKET, 0);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
      fchmodat(run_dir_fd, LAYOUT_INSTANCE_RUN_EXEC_SOCKET, 0600, 0) < 0 || listen(fd, 64) < 0) {
    debug("exec server: bind exec.sock: %s", strerror(errno));
    unlinkat(run_dir_fd, LAYOUT_INSTANCE_RUN_EXEC_SOCKET, 0);
    return -1;
  }
  pid_t monitor = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    debug("exec server: fork: %s", strerror(errno));
    unlinkat(run_dir_fd, LAYOUT_INSTANCE_RUN_EXEC_SOCKET, 0);
    return -1;
  }
  if (pid == 0)
    run_exec_server(fd, monitor, init, cgroups, n_cgroups);
  debug("exec server %d started", (int)pid);
  return pid;
}
