/* tslxc-helper host-limits --run-dir DIR [--need KEY=N]...: the start's check of the host
 * limits all containers share, alone (start runs the same check before it boots).
 *
 * Every container's user namespace is owned by host root, so what systemd and its services take
 * inside (inotify instances and watches) is charged to root in the host's user namespace, and
 * every console is a pty of the one global pty count. A container that finds the limit reached
 * dies at boot, so the check runs before the clone and says so in one line while there is still
 * room: when this container does not fit, and when it fits but the next one like it would not.
 *
 * It must stay cheap (it runs on every start, the plan replay included): a few small /proc/sys
 * reads, one readdir of the run dir's siblings, and for inotify instances a probe of the kernel
 * itself (open up to a few dozen instances and close them), which counts every user of root's
 * instances (other tslxc installations, LXC, the host's own daemons), not only ours. */
#include "helper.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>

/* A container whose monitor started this recently may not have made its inotify instances yet
 * (systemd and its services make them while booting): the probe cannot see them, so they are
 * counted as the caller says a container takes. */
#define BOOTING_SECONDS 60

char host_limits_warning[2048];

bool parse_host_need(const char *val, struct host_need *need)
{
  static const struct {
    const char *key;
    size_t offset;
  } keys[] = {
    { "inotify-instances=", offsetof(struct host_need, inotify_instances) },
    { "inotify-watches=", offsetof(struct host_need, inotify_watches) },
    { "ptys=", offsetof(struct host_need, ptys) },
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    size_t n = strlen(keys[i].key);
    if (strncmp(val, keys[i].key, n) == 0) {
      unsigned long v;
      if (!parse_ulong(val + n, &v) || v > 1000000)
        return false;
      *(unsigned long *)((char *)need + keys[i].offset) = v;
      need->given = true;
      return true;
    }
  }
  return false;
}

/* TSLXC_TEST_SYSCTL_ROOT (tests only): a fake /proc/sys, so tests can set low limits without
 * touching the host's. The kernel knows nothing of those, so it is not probed then. */
static const char *sysctl_root(bool *real)
{
  const char *r = getenv("TSLXC_TEST_SYSCTL_ROOT");
  *real = !(r && r[0] == '/');
  return *real ? "/proc/sys" : r;
}

static bool read_sysctl(const char *root, const char *key_path, unsigned long *out)
{
  char path[PATH_MAX], buf[64];
  xsnprintf(path, sizeof path, "%s/%s", root, key_path);
  if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
    return false;
  buf[strcspn(buf, "\n")] = '\0';
  return parse_ulong(buf, out);
}

/* The other containers of this installation with a monitor (siblings of run_dir holding a
 * monitor.pid), and how many of them were started within BOOTING_SECONDS. */
static void count_siblings(const char *run_dir, unsigned long *running, unsigned long *booting)
{
  *running = *booting = 0;
  char parent[PATH_MAX];
  xsnprintf(parent, sizeof parent, "%s", run_dir);
  char *slash = strrchr(parent, '/');
  if (!slash || slash == parent)
    return;
  const char *self = slash + 1;
  *slash = '\0';
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (struct dirent *e; (e = readdir(dir));) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
      continue;
    char pidfile[NAME_MAX + 16];
    xsnprintf(pidfile, sizeof pidfile, "%s/" LAYOUT_INSTANCE_RUN_MONITOR_PID, e->d_name);
    struct stat st;
    if (fstatat(dirfd(dir), pidfile, &st, 0) < 0)
      continue;
    (*running)++;
    if (now.tv_sec - st.st_mtim.tv_sec < BOOTING_SECONDS)
      (*booting)++;
  }
  closedir(dir);
}

/* fs.file-nr: "ALLOCATED FREE MAX", the open files of the whole host. */
static bool read_file_count(const char *root, unsigned long *out)
{
  char path[PATH_MAX], buf[96];
  xsnprintf(path, sizeof path, "%s/fs/file-nr", root);
  if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
    return false;
  buf[strcspn(buf, " \t\n")] = '\0';
  return parse_ulong(buf, out);
}

/* How many more inotify instances root can make, counted up to cap: opened, then closed. */
static unsigned long probe_inotify_instances(unsigned long cap)
{
  int fds[512];
  if (cap > sizeof fds / sizeof fds[0])
    cap = sizeof fds / sizeof fds[0];
  unsigned long n = 0;
  while (n < cap) {
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0)
      break;
    fds[n++] = fd;
  }
  for (unsigned long i = 0; i < n; i++)
    close(fds[i]);
  return n;
}

static void warn_line(const char *name, const char *key, unsigned long value, unsigned long room,
                      unsigned long need, const char *what, const char *raise)
{
  size_t len = strlen(host_limits_warning);
  if (room < need)
    snprintf(host_limits_warning + len, sizeof host_limits_warning - len,
             "Warning: %s is %lu and leaves room for about %lu more %s (all containers share "
             "them): \"%s\" needs about %lu and may fail to boot; run \"tslxc admin init "
             "--limits-only\" or \"sysctl -w %s=%s\"\n",
             key, value, room, what, name, need, key, raise);
  else
    snprintf(host_limits_warning + len, sizeof host_limits_warning - len,
             "Warning: %s is %lu and leaves room for about %lu more %s once \"%s\" runs (all "
             "containers share them): the next container like it (about %lu) may fail to boot; "
             "run \"tslxc admin init --limits-only\" or \"sysctl -w %s=%s\"\n",
             key, value, room - need, what, name, need, key, raise);
}

const char *host_limits_check(const char *name, const char *run_dir, const struct host_need *need)
{
  host_limits_warning[0] = '\0';
  bool real;
  const char *root = sysctl_root(&real);
  unsigned long running, booting, limit;
  count_siblings(run_dir, &running, &booting);

  /* Room for this container and one more like it: 2 * need. */
  if (need->inotify_instances > 0 && read_sysctl(root, "fs/inotify/max_user_instances", &limit)) {
    unsigned long n = need->inotify_instances, used = running * n, room;
    unsigned long files;
    if (real && read_file_count(root, &files) && limit > files &&
        limit - files >= 2 * n + booting * n) {
      /* Every instance is an open file: fewer files are open on the whole host than it takes to
       * come near the limit (after admin init, always), so the kernel need not be asked. */
      room = limit - files - booting * n;
    } else if (real) {
      unsigned long pending = booting * n, probed = probe_inotify_instances(2 * n + pending);
      room = probed > pending ? probed - pending : 0;
    } else {
      room = limit > used ? limit - used : 0;
    }
    if (room < 2 * n)
      warn_line(name, "fs.inotify.max_user_instances", limit, room, n,
                "inotify instances of host root", "1048576");
  }
  if (need->inotify_watches > 0 && read_sysctl(root, "fs/inotify/max_user_watches", &limit)) {
    unsigned long n = need->inotify_watches, used = running * n;
    unsigned long room = limit > used ? limit - used : 0;
    if (room < 2 * n)
      warn_line(name, "fs.inotify.max_user_watches", limit, room, n, "inotify watches of host root",
                "1048576");
  }
  unsigned long max, reserve, nr;
  if (need->ptys > 0 && read_sysctl(root, "kernel/pty/max", &max) &&
      read_sysctl(root, "kernel/pty/reserve", &reserve) &&
      read_sysctl(root, "kernel/pty/nr", &nr)) {
    /* A container's devpts is not the host's: it may use max - reserve of the global count. */
    unsigned long cap = max > reserve ? max - reserve : 0, room = cap > nr ? cap - nr : 0;
    if (room < 2 * need->ptys)
      warn_line(name, "kernel.pty.max", max, room, need->ptys, "container ptys", "65536");
  }
  return host_limits_warning;
}

int main_host_limits(int argc, char **argv)
{
  const char *run_dir = NULL, *name = NULL;
  struct host_need need = { 0 };
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc)
      die("host-limits: option %s needs a value", argv[i]);
    if (strcmp(argv[i], "--run-dir") == 0)
      run_dir = argv[i + 1];
    else if (strcmp(argv[i], "--name") == 0)
      name = argv[i + 1];
    else if (strcmp(argv[i], "--need") == 0) {
      if (!parse_host_need(argv[i + 1], &need))
        die("--need %s: expected inotify-instances=N, inotify-watches=N or ptys=N", argv[i + 1]);
    } else
      die("host-limits: unknown option %s", argv[i]);
  }
  if (!run_dir || run_dir[0] != '/' || !name)
    die("usage: tslxc-helper host-limits --name NAME --run-dir DIR [--need KEY=N]...");
  const char *w = host_limits_check(name, run_dir, &need);
  (void)write_all(2, w, strlen(w));
  return 0;
}
