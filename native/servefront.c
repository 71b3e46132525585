/* tslxc-helper serve-front -- CMD...: `tslxc serve` as socket activation does it (systemd's
 * sockets, cockpit-ws): this small process holds the server's listening sockets and its serve
 * lock for the server's whole life; the node worker (CMD, bin/tslxc's serve line) runs while
 * there are clients and hands the sockets back when it has been idle. A connection that comes
 * while no worker runs waits in the listen backlog (never refused) until a new worker takes it.
 *
 * The worker gets its end of a control socket in TSLXC_SERVE_FRONT and says, one line each,
 * fields separated by tabs (lib/api/front.ts is the other side and decides everything):
 *   ready LOCK-FD LOCK-PATH SOCKET-PATH ADDRESSES-PATH LISTEN-FD...
 *       it listens: the front copies the fds (pidfd_getfd) unless it holds them already and
 *       answers "ok" ("no": it cannot, the worker then never goes idle);
 *   idle WAKE-MS
 *            it closed its listeners (the front's copies keep the sockets) and ends; if no client
 *            comes within WAKE-MS (0: never), the front starts a worker for its housekeeping, with
 *            TSLXC_SERVE_WAKE=1;
 *   stop     it is ending as a server ends (lock released, socket removed): the front ends too.
 * A worker started by the front inherits the copies; TSLXC_SERVE_FDS names them (the lock, then
 * the listeners in the order of its ready line), and it listens on them instead of binding.
 *
 * SIGTERM and SIGINT go to the worker, and the front exits with its status; with no worker, the
 * front closes as the worker would (the listeners, the socket and addresses files, the lock).
 * A worker dies with the front (PR_SET_PDEATHSIG); one that crashes is started again at the next
 * connection. Containers are not the front's business: killing it stops none. */
#include "helper.h"
#include "lock.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_LISTENERS 32
#define MAX_WORKERS 8
#define CTL_LINE_MAX 8192

struct worker {
  pid_t pid;
  int pidfd, ctl;
  bool ready;    /* said "ready" */
  bool retiring; /* said "idle": no longer listening, ending */
  bool stopping; /* said "stop": ending as a server ends */
  size_t len;
  char buf[CTL_LINE_MAX];
};

static struct {
  char **cmd;
  sigset_t old_mask;
  int lock_fd;
  char *lock_path, *socket_path, *addresses_path;
  int listeners[MAX_LISTENERS];
  size_t n_listeners;
  bool have_fds;
  bool stopping; /* a signal came: end once the workers have */
  struct worker *workers[MAX_WORKERS];
  struct worker *active; /* the worker that listens; NULL: the front polls */
  long long wake_at;     /* CLOCK_MONOTONIC ms when a worker is due for housekeeping; 0: never */
  int status;            /* the exit status of the front */
} front = { .lock_fd = -1, .active = NULL };

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logline(const char *fmt, ...)
{
  char msg[512], stamp[64];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s.%03ldZ %s\n", stamp, ts.tv_nsec / 1000000, msg);
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sys_pidfd_getfd(int pidfd, int fd)
{
  return syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

static void spawn_worker(bool woken)
{
  size_t slot = 0;
  while (slot < MAX_WORKERS && front.workers[slot])
    slot++;
  if (slot == MAX_WORKERS)
    die("serve: too many workers still ending");
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
    die_with_error("serve: socketpair");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    die_with_error("serve: fork");
  if (pid == 0) {
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    sigprocmask(SIG_SETMASK, &front.old_mask, NULL);
    close(sp[0]);
    /* Only the fds the worker is told about cross the exec. */
    char num[32], fds[MAX_LISTENERS * 12 + 16];
    if (fcntl(sp[1], F_SETFD, 0) < 0)
      die_with_error("serve: fcntl");
    xsnprintf(num, sizeof num, "%d", sp[1]);
    setenv("TSLXC_SERVE_FRONT", num, 1);
    unsetenv("TSLXC_SERVE_FDS");
    if (woken)
      setenv("TSLXC_SERVE_WAKE", "1", 1);
    else
      unsetenv("TSLXC_SERVE_WAKE");
    if (front.have_fds) {
      size_t off = 0;
      int all[MAX_LISTENERS + 1];
      all[0] = front.lock_fd;
      for (size_t i = 0; i < front.n_listeners; i++)
        all[i + 1] = front.listeners[i];
      for (size_t i = 0; i <= front.n_listeners; i++) {
        if (fcntl(all[i], F_SETFD, 0) < 0)
          die_with_error("serve: fcntl");
        off += snprintf(fds + off, sizeof fds - off, "%s%d", i ? "," : "", all[i]);
      }
      setenv("TSLXC_SERVE_FDS", fds, 1);
    }
    execvp(front.cmd[0], front.cmd);
    die_with_error("serve: cannot run %s", front.cmd[0]);
  }
  close(sp[1]);
  struct worker *w = xcalloc(1, sizeof *w);
  w->pid = pid;
  w->ctl = sp[0];
  w->pidfd = sys_pidfd_open(pid); /* our unreaped child: it names this process */
  if (w->pidfd < 0)
    die_with_error("serve: pidfd_open");
  front.workers[slot] = w;
  front.active = w;
  front.wake_at = 0;
}

/* What a server's close does, for a front that ends with no worker (the order of server.ts's). */
static void close_server(void)
{
  for (size_t i = 0; i < front.n_listeners; i++)
    close(front.listeners[i]);
  front.n_listeners = 0;
  if (!front.have_fds)
    return;
  front.have_fds = false;
  (void)unlink(front.addresses_path);
  (void)unlink(front.socket_path);
  lock_release(front.lock_path, front.lock_fd);
  front.lock_fd = -1;
}

static void reply(struct worker *w, const char *text)
{
  (void)send(w->ctl, text, strlen(text), MSG_NOSIGNAL);
}

/* "ready LOCK-FD LOCK-PATH SOCKET-PATH ADDRESSES-PATH LISTEN-FD...": the worker listens. */
static void take_fds(struct worker *w, char *fields[], size_t n)
{
  w->ready = true;
  if (front.have_fds) {
    reply(w, "ok\n");
    return;
  }
  unsigned long fd;
  if (n < 6 || n - 5 > MAX_LISTENERS || !parse_ulong(fields[1], &fd)) {
    reply(w, "no\n");
    return;
  }
  int got[MAX_LISTENERS + 1];
  size_t n_got = 0;
  errno = 0;
  for (size_t i = 0; i < n - 4; i++) {
    if ((i > 0 && !parse_ulong(fields[4 + i], &fd)) || fd > INT_MAX ||
        (got[n_got] = sys_pidfd_getfd(w->pidfd, (int)fd)) < 0) {
      logline("the front cannot hold the server's sockets (%s): it stays up",
              errno ? strerror(errno) : "malformed ready line");
      while (n_got > 0)
        close(got[--n_got]);
      reply(w, "no\n");
      return;
    }
    n_got++;
  }
  front.lock_fd = got[0];
  for (size_t i = 1; i < n_got; i++)
    front.listeners[front.n_listeners++] = got[i];
  front.lock_path = xstrdup(fields[2]);
  front.socket_path = xstrdup(fields[3]);
  front.addresses_path = xstrdup(fields[4]);
  front.have_fds = true;
  reply(w, "ok\n");
}

static void handle_line(struct worker *w, char *line)
{
  char *fields[MAX_LISTENERS + 8];
  size_t n = 0;
  for (char *save = NULL, *f = strtok_r(line, "\t", &save); f && n < N_ELEMENTS(fields);
       f = strtok_r(NULL, "\t", &save))
    fields[n++] = f;
  if (n == 0)
    return;
  if (strcmp(fields[0], "ready") == 0) {
    take_fds(w, fields, n);
  } else if (strcmp(fields[0], "idle") == 0 && front.have_fds) {
    unsigned long wake;
    front.wake_at =
        n > 1 && parse_ulong(fields[1], &wake) && wake > 0 ? now_ms() + (long long)wake : 0;
    w->retiring = true;
    if (front.active == w)
      front.active = NULL;
  } else if (strcmp(fields[0], "stop") == 0) {
    /* It releases the lock and removes the socket: the front's copies hold nothing worth keeping. */
    w->stopping = true;
    front.stopping = true;
    for (size_t i = 0; i < front.n_listeners; i++)
      close(front.listeners[i]);
    front.n_listeners = 0;
    front.have_fds = false;
  }
}

static void read_ctl(struct worker *w)
{
  ssize_t r = read(w->ctl, w->buf + w->len, sizeof w->buf - 1 - w->len);
  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (r <= 0) {
    close(w->ctl);
    w->ctl = -1;
    return;
  }
  w->len += r;
  w->buf[w->len] = '\0';
  char *start = w->buf, *nl;
  while ((nl = strchr(start, '\n'))) {
    *nl = '\0';
    handle_line(w, start);
    start = nl + 1;
  }
  w->len -= start - w->buf;
  memmove(w->buf, start, w->len);
  if (w->len == sizeof w->buf - 1) /* a line longer than any the worker writes */
    w->len = 0;
}

static int exit_code(int status)
{
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool any_worker(void)
{
  for (size_t i = 0; i < MAX_WORKERS; i++)
    if (front.workers[i])
      return true;
  return false;
}

static void reap(void)
{
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    struct worker *w = NULL;
    size_t i;
    for (i = 0; i < MAX_WORKERS; i++)
      if (front.workers[i] && front.workers[i]->pid == pid) {
        w = front.workers[i];
        break;
      }
    if (!w)
      continue;
    front.workers[i] = NULL;
    if (w == front.active) {
      front.active = NULL;
      if (w->stopping || front.stopping || !front.have_fds) {
        /* It ended as a server ends, or it could not start: so does the front. */
        front.stopping = true;
        front.status = exit_code(status);
      } else if (!w->ready) {
        logline("serve: the worker started for a connection ended (%s %d) before listening: "
                "serve ends",
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        front.stopping = true;
        front.status = 1;
        close_server();
      } else {
        logline("serve: worker %d ended (%s %d); another starts at the next connection", pid,
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      }
    }
    if (w->ctl >= 0)
      close(w->ctl);
    close(w->pidfd);
    free(w);
  }
}

static void on_signal(int sig)
{
  front.stopping = true;
  for (size_t i = 0; i < MAX_WORKERS; i++)
    if (front.workers[i])
      (void)sys_pidfd_send_signal(front.workers[i]->pidfd,
                                  front.workers[i]->retiring ? SIGKILL : sig);
  if (!front.active && front.have_fds) {
    logline("%s: closing", sig == SIGINT ? "SIGINT" : "SIGTERM");
    close_server();
    logline("stopped");
  }
}

int main_serve_front(int argc, char **argv)
{
  if (argc < 3 || strcmp(argv[1], "--") != 0)
    die("usage: tslxc-helper serve-front -- CMD [ARGS...]");
  front.cmd = argv + 2;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, &front.old_mask) < 0)
    die_with_error("serve: sigprocmask");
  autofd int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    die_with_error("serve: signalfd");

  spawn_worker(false);
  for (;;) {
    if (front.stopping && !any_worker()) {
      close_server();
      return front.status;
    }
    struct pollfd p[1 + MAX_WORKERS + MAX_LISTENERS];
    struct worker *owner[1 + MAX_WORKERS + MAX_LISTENERS] = { NULL };
    nfds_t n = 0;
    p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
    for (size_t i = 0; i < MAX_WORKERS; i++)
      if (front.workers[i] && front.workers[i]->ctl >= 0) {
        owner[n] = front.workers[i];
        p[n++] = (struct pollfd){ .fd = front.workers[i]->ctl, .events = POLLIN };
      }
    nfds_t first_listener = n;
    bool waiting = front.have_fds && !front.active && !front.stopping;
    if (waiting)
      for (size_t i = 0; i < front.n_listeners; i++)
        p[n++] = (struct pollfd){ .fd = front.listeners[i], .events = POLLIN };
    int timeout = -1;
    if (waiting && front.wake_at) {
      long long left = front.wake_at - now_ms();
      timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    }
    int ready = poll(p, n, timeout);
    if (ready < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("serve: poll");
    }
    if (ready == 0 && waiting && front.wake_at && now_ms() >= front.wake_at) {
      spawn_worker(true);
      continue;
    }
    for (nfds_t i = 1; i < first_listener; i++)
      if (p[i].revents)
        read_ctl(owner[i]);
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD)
          reap();
        else if (!front.stopping || front.active)
          on_signal((int)si.ssi_signo);
      }
      reap();
    }
    for (nfds_t i = first_listener; i < n; i++)
      if (p[i].revents && !front.active && front.have_fds && !front.stopping) {
        spawn_worker(false);
        break;
      }
  }
}
