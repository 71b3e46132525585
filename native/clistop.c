/* tslxc stop NAME without node (cli.c): signal init at once, wait for the monitor to end.
 *
 * Node's start-up before the signal was most of a stop's cost beyond the guest's own shutdown.
 * Everything here comes from RUN/containers/NAME/stop.args, which the start wrote
 * (lib/instance/stop.ts's writeStopArgs): the stop signal, the timeout, the lock, the config's
 * identity, the freeze marker and the run files a stop clears. The monitor does the rest as after
 * any end of init: its cgroups, its run files, the network's post-stop hook. Anything not plainly
 * so (a config written since the start, a lock held, a frozen or half-dead container, a monitor
 * that left its files) goes to node, which takes the lock again and does the whole stop. */
#include "helper.h"
#include "lock.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

enum {
  ARG_SIGNAL,
  ARG_TIMEOUT_MS,
  ARG_LOCK,
  ARG_CONFIG,
  ARG_CONFIG_ID,
  ARG_FREEZE_MARKER,
  ARG_CLEARED, /* and every line after it */
};

/* A pidfd for the process a pid file of the container names, while it lives (the rule of
 * layout.c's instance_init_alive); else -1. Opened before the start time is compared, so the
 * pidfd cannot name a process that reused the PID. */
static int open_live(const char *name, const char *file)
{
  char path[PATH_MAX], text[64];
  pid_t pid;
  unsigned long long recorded, now;
  if (!container_run_path(path, name, file))
    return -1;
  ssize_t n = read_small_file_at(AT_FDCWD, path, text, sizeof text);
  if (n <= 0 || strlen(text) != (size_t)n || !pid_ref_parse(text, &pid, &recorded))
    return -1;
  int fd = sys_pidfd_open(pid);
  if (fd >= 0 && (!proc_start_time(pid, &now) || now != recorded)) {
    close(fd);
    return -1;
  }
  return fd;
}

static long long monotonic_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the config is the file the start left ("INODE MTIME_NS"). */
static bool config_unchanged(const char *config, const char *id)
{
  struct stat st;
  char now[64];
  if (stat(config, &st) < 0)
    return false;
  snprintf(now, sizeof now, "%llu %llu", (unsigned long long)st.st_ino,
           (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
               (unsigned long long)st.st_mtim.tv_nsec);
  return strcmp(now, id) == 0;
}

/* Both pidfds readable (the processes ended) before the deadline. */
static bool wait_both(int init, int monitor, long long deadline)
{
  struct pollfd pfd[2] = { { .fd = init, .events = POLLIN }, { .fd = monitor, .events = POLLIN } };
  for (;;) {
    long long left = deadline - monotonic_ms();
    if (left < 0)
      left = 0;
    int n = poll(pfd, 2, (int)left);
    if (n < 0 && errno != EINTR)
      return false;
    for (int i = 0; i < 2; i++)
      if (pfd[i].revents)
        pfd[i].fd = -1; /* poll ignores it from now on */
    if (pfd[0].fd < 0 && pfd[1].fd < 0)
      return true;
    if (n == 0)
      return false;
  }
}

enum stop_result cli_stop(const char *name)
{
  char path[PATH_MAX];
  if (!container_run_path(path, name, LAYOUT_INSTANCE_RUN_STOP_ARGS))
    return STOP_ASK_NODE;
  size_t n = 0;
  char **args = read_list(path, &n);
  if (!args || n < ARG_CLEARED)
    return STOP_ASK_NODE;
  unsigned long sig, timeout_ms;
  if (!parse_ulong(args[ARG_SIGNAL], &sig) || sig == 0 || sig >= (unsigned long)NSIG ||
      !parse_ulong(args[ARG_TIMEOUT_MS], &timeout_ms))
    return STOP_ASK_NODE;

  const char *lock = args[ARG_LOCK];
  int lock_fd = lock_take(lock);
  if (lock_fd < 0)
    return STOP_ASK_NODE;
  enum stop_result result = STOP_ASK_NODE;
  autofd int init = -1, monitor = -1;
  if (!config_unchanged(args[ARG_CONFIG], args[ARG_CONFIG_ID]) ||
      access(args[ARG_FREEZE_MARKER], F_OK) == 0 ||
      !container_run_path(path, name, LAYOUT_INSTANCE_RUN_EXEC_CHECK) || !thawed(path))
    goto out;
  init = open_live(name, LAYOUT_INSTANCE_RUN_INIT_PID);
  monitor = open_live(name, LAYOUT_INSTANCE_RUN_MONITOR_PID);
  if (init < 0 || monitor < 0)
    goto out;

  if (sys_pidfd_send_signal(init, (int)sig) < 0)
    goto out;
  if (!wait_both(init, monitor, monotonic_ms() + (long long)timeout_ms)) {
    result = STOP_TIMED_OUT;
    goto out;
  }
  /* A monitor that ended without removing its pid files did not clean up: node does. */
  if (!container_run_path(path, name, LAYOUT_INSTANCE_RUN_MONITOR_PID) || access(path, F_OK) == 0)
    goto out;
  for (size_t i = ARG_CLEARED; i < n; i++)
    (void)unlink(args[i]);
  result = STOP_DONE;
out:
  lock_release(lock, lock_fd);
  return result;
}
