/* tslxc-helper: execute a start spec (lib/instance/plan.ts computes them and documents the format).
 *
 * Two callers, one executor. The TypeScript start computes a container's start as data and hands
 * it here on stdin (plan-exec): the steps run and a failure is reported as the helper's one-line
 * error. The saved plan is that same spec with the checks that keep it valid in front; `tslxc
 * start` replays it without node (cli.c). Replaying is all-or-nothing: every check must hold,
 * every step must work; at the first thing that does not, what was made is undone, the lock
 * released, and the caller hands the command to the TypeScript CLI, which does the start the long
 * way (and says what is wrong, if something is). So a replay never reports errors of its own: it
 * only says "not this way". */
#include "helper.h"
#include "lock.h"
#include "build/build-id.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <signal.h>
#include <strings.h>
#include <time.h>

#define PLAN_MAGIC "tslxc-start-plan-2"

#define MAX_LOCKS 4

struct plan_state {
  char *buf;
  char **tok;
  size_t n, pos;
  struct {
    const char *path;
    int fd;
  } locks[MAX_LOCKS]; /* held, in the order taken */
  size_t n_locks;
  const char *made[MAX_LIST]; /* cgroup dirs made, to remove on the way back */
  size_t n_made;
  const char *written[MAX_LIST]; /* files written, likewise */
  size_t n_written;
  const char
      *hupped[MAX_LOCKS * 2]
             [3]; /* processes told (pid file, program, argument): told again after an undo */
  size_t n_hupped;
  bool busy; /* not used because of the moment (locked, running), not because it is stale */
  bool exec; /* plan-exec: the caller holds the locks and wants the reason of a failure */
};

static struct plan_state ps;

static bool plan_debug(void)
{
  const char *v = getenv("TSLXC_PLAN_DEBUG");
  return v && v[0] == '1';
}

/* Says why the plan is not used (TSLXC_PLAN_DEBUG=1: the tests check which way a start went). */
static int not_this_way(const char *why, const char *what)
{
  if (ps.exec) {
    int err = errno;
    char line[1200];
    int n = snprintf(line, sizeof line, "tslxc-helper: %s%s%s%s%s\n", why, what ? " " : "",
                     what ? what : "", err ? ": " : "", err ? strerror(err) : "");
    if (n > (int)sizeof line - 1)
      n = sizeof line - 1;
    (void)write_all(2, line, n);
  } else if (plan_debug()) {
    char line[1200];
    int n = snprintf(line, sizeof line, "tslxc-helper: start plan not used: %s%s%s\n", why,
                     what ? " " : "", what ? what : "");
    if (n > (int)sizeof line - 1)
      n = sizeof line - 1;
    (void)write_all(2, line, n);
  }
  return -1;
}

static const char *next_tok(void)
{
  return ps.pos < ps.n ? ps.tok[ps.pos++] : NULL;
}

/* The NUL-terminated strings of ps.buf (size bytes) as tokens. */
static bool tokenize(size_t size)
{
  if (size == 0 || ps.buf[size - 1] != '\0')
    return false;
  size_t count = 0;
  for (size_t i = 0; i < size; i++)
    count += ps.buf[i] == '\0';
  ps.tok = xcalloc(count + 1, sizeof *ps.tok);
  for (char *p = ps.buf; p < ps.buf + size; p += strlen(p) + 1)
    ps.tok[ps.n++] = p;
  return ps.n > 0 && strcmp(ps.tok[0], PLAN_MAGIC) == 0;
}

static bool load(const char *path)
{
  ps.buf = read_whole_file(path);
  if (!ps.buf)
    return false;
  struct stat st;
  if (stat(path, &st) < 0 || st.st_size <= 0)
    return false;
  return tokenize((size_t)st.st_size);
}

/* The spec on stdin, then stdin is /dev/null: the monitor forked later must not keep the pipe. */
static bool load_stdin(void)
{
  size_t cap = 1 << 16, size = 0;
  ps.buf = xrealloc(NULL, cap);
  for (;;) {
    if (size == cap)
      ps.buf = xrealloc(ps.buf, cap *= 2);
    ssize_t n = read_retry(0, ps.buf + size, cap - size);
    if (n < 0)
      return false;
    if (n == 0)
      break;
    size += (size_t)n;
  }
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0)
    return false;
  close(null);
  return tokenize(size);
}

/* lock.c's lock, as the TypeScript side takes it (util/lock.ts), without waiting: a held lock
 * sends the start to node, which waits for it. */
static bool take_lock(const char *path)
{
  if (ps.n_locks >= MAX_LOCKS)
    return false;
  int fd = lock_take(path);
  if (fd < 0 && errno == ENOENT) {
    char parent[PATH_MAX];
    xsnprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent)
      return false;
    *slash = '\0';
    (void)mkdir(parent, 0700);
    fd = lock_take(path);
  }
  if (fd < 0)
    return false;
  ps.locks[ps.n_locks].path = path;
  ps.locks[ps.n_locks++].fd = fd;
  return true;
}

bool plan_busy(void)
{
  return ps.busy;
}

/* Release the last lock taken. */
static void plan_unlock(void)
{
  if (ps.n_locks == 0)
    return;
  ps.n_locks--;
  lock_release(ps.locks[ps.n_locks].path, ps.locks[ps.n_locks].fd);
}

static void plan_release_locks(void)
{
  while (ps.n_locks > 0)
    plan_unlock();
}

static bool hup_process(const char *pid_file, const char *program, const char *arg);

/* Undo what the replay made (in reverse), release the locks. Idempotent. */
void plan_undo(void)
{
  while (ps.n_written > 0)
    (void)unlink(ps.written[--ps.n_written]);
  while (ps.n_made > 0)
    (void)rmdir(ps.made[--ps.n_made]);
  /* dnsmasq read the container's entries: it reads their removal too. */
  while (ps.n_hupped > 0) {
    ps.n_hupped--;
    (void)hup_process(ps.hupped[ps.n_hupped][0], ps.hupped[ps.n_hupped][1],
                      ps.hupped[ps.n_hupped][2]);
  }
  plan_release_locks();
}

static bool env_is(const char *name, const char *want)
{
  const char *v = getenv(name);
  return strcmp(v ? v : "", want) == 0;
}

static bool parse_ull(const char *s, unsigned long long *out)
{
  if (!s || !*s)
    return false;
  char *end;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return errno == 0 && *end == '\0';
}

/* same PATH DEV INO SIZE MTIME_NS | inode PATH DEV INO */
static bool stat_matches(const char *path, bool whole)
{
  const char *dev = next_tok(), *ino = next_tok();
  const char *size = whole ? next_tok() : "0", *mtime = whole ? next_tok() : "0";
  unsigned long long d, i, sz, mt;
  if (!parse_ull(dev, &d) || !parse_ull(ino, &i) || !parse_ull(size, &sz) || !parse_ull(mtime, &mt))
    return false;
  struct stat st;
  if (stat(path, &st) < 0 || st.st_dev != d || st.st_ino != i)
    return false;
  if (!whole)
    return true;
  unsigned long long ns = (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                          (unsigned long long)st.st_mtim.tv_nsec;
  return (unsigned long long)st.st_size == sz && ns == mt;
}

static bool write_cgroup_file(const char *path, const char *data)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  size_t len = strlen(data);
  ssize_t n = write(fd, data, len);
  close(fd);
  return n == (ssize_t)len;
}

static bool parse_octal(const char *s, unsigned long *out)
{
  if (!s || !*s)
    return false;
  char *end;
  errno = 0;
  *out = strtoul(s, &end, 8);
  return errno == 0 && *end == '\0' && *out <= 07777;
}

/* Files go under the run dir root only (TSLXC_RUN_DIR, checked by the plan's env step), by a
 * path without "." or ".." parts; the parent must exist. */
static bool write_run_file(const char *path, const char *mode, const char *data,
                           const char *in_place_dir)
{
  const char *root = run_root();
  size_t rl = root ? strlen(root) : 0;
  unsigned long m;
  if (!root || strncmp(path, root, rl) != 0 || path[rl] != '/' || strstr(path, "/../") ||
      strstr(path, "/./") || !parse_octal(mode, &m) || ps.n_written >= MAX_LIST)
    return false;
  /* The container's own files are read only while it runs: rewritten in place, which keeps their
   * inodes (on an ext4 without a journal a new inode is slow to make: see "dir pools" in
   * the README). Files others read at any time (dnsmasq's) are replaced whole, by rename. */
  size_t il = in_place_dir ? strlen(in_place_dir) : 0;
  bool own = il > 0 && strncmp(path, in_place_dir, il) == 0 && path[il] == '/';
  char tmp[PATH_MAX];
  if (own)
    xsnprintf(tmp, sizeof tmp, "%s", path);
  else
    xsnprintf(tmp, sizeof tmp, "%s.plan-%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (mode_t)m);
  if (fd < 0)
    return false;
  bool ok = write_all(fd, data, strlen(data)) == 0 && fchmod(fd, (mode_t)m) == 0;
  close(fd);
  if (!ok || (!own && rename(tmp, path) < 0)) {
    (void)unlink(tmp);
    return false;
  }
  ps.written[ps.n_written++] = path;
  return true;
}

/* touch PATH: when it was last used is the file's mtime (nothing to format, on either side). */
static bool touch_file(const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return false;
  bool ok = futimens(fd, NULL) == 0;
  close(fd);
  return ok;
}

/* rundir DIR N FILE...: the container's run dir holds none of the pid files the TypeScript side
 * names: a running container, or one that crashed, is its business (its messages, its clean-up). */
static bool run_dir_clear(const char *dir)
{
  unsigned long n;
  if (!parse_ulong(next_tok(), &n) || n > MAX_LIST)
    return false;
  const char *files[MAX_LIST];
  for (unsigned long i = 0; i < n; i++)
    if (!(files[i] = next_tok()) || strchr(files[i], '/'))
      return false;
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return false;
  for (unsigned long i = 0; i < n; i++) {
    char p[PATH_MAX];
    xsnprintf(p, sizeof p, "%s/%s", dir, files[i]);
    if (access(p, F_OK) == 0 || errno != ENOENT)
      return false;
  }
  return true;
}

static bool file_holds(const char *path, const char *want)
{
  char *have = read_whole_file(path);
  bool same = have && strcmp(have, want) == 0;
  free(have);
  return same;
}

/* gen FILE TOKEN: the generation file holds TOKEN; a missing one holds "" (state/generations.ts). */
static bool generation_is(const char *path, const char *want)
{
  char *have = read_whole_file(path);
  if (!have)
    return errno == ENOENT && want[0] == '\0';
  bool same = strcmp(have, want) == 0;
  free(have);
  return same;
}

/* A process's state letter (/proc/PID/stat's third field), 0 if it is gone. */
static char proc_state(pid_t pid)
{
  char path[64], buf[1024];
  xsnprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf) <= 0)
    return 0;
  char *p = strrchr(buf, ')');
  return p && p[1] == ' ' ? p[2] : 0;
}

/* proc PIDFILE PROGRAM ARG: the pid file names a live process (not a zombie) whose argv[0] is
 * PROGRAM (by its last path part) and which was given ARG. The TypeScript side decides what
 * identifies a process of ours (lib/util/proc.ts, processFromPidFile): here it is only compared.
 * Returns its pid, 0 if not. */
static pid_t process_from_pid_file(const char *pid_file, const char *program, const char *arg)
{
  char text[32];
  unsigned long pid;
  if (read_small_file_at(AT_FDCWD, pid_file, text, sizeof text) <= 0)
    return 0;
  text[strcspn(text, "\n")] = '\0';
  if (!parse_ulong(text, &pid) || pid == 0 || pid > INT_MAX)
    return 0;
  char state = proc_state((pid_t)pid);
  if (state == 0 || state == 'Z' || state == 'X')
    return 0;
  char path[64];
  xsnprintf(path, sizeof path, "/proc/%lu/cmdline", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  static char cmdline[8192];
  ssize_t n = read_retry(fd, cmdline, sizeof cmdline - 1);
  close(fd);
  if (n <= 0)
    return 0;
  cmdline[n] = '\0';
  const char *base = strrchr(cmdline, '/');
  if (strcmp(base ? base + 1 : cmdline, program) != 0)
    return 0;
  for (char *a = cmdline + strlen(cmdline) + 1; a < cmdline + n; a += strlen(a) + 1)
    if (strcmp(a, arg) == 0)
      return (pid_t)pid;
  return 0;
}

static bool hup_process(const char *pid_file, const char *program, const char *arg)
{
  pid_t pid = process_from_pid_file(pid_file, program, arg);
  return pid > 0 && kill(pid, SIGHUP) == 0;
}

#define MAX_FIELDS 16

/* noline FILE MINFIELDS KEYCOL KEY OWNCOL N OWN...: no line of FILE with at least MINFIELDS
 * whitespace-separated fields has KEY in column KEYCOL and, in column OWNCOL, a value that is not
 * among the N (case-insensitive). The TypeScript side gives the columns from its own reading of
 * the file (dnsmasq's leases: lib/network/dnsmasq.ts, LEASE_COLUMNS). A missing file has no line. */
static bool no_foreign_line(const char *file)
{
  unsigned long min, keycol, owncol, n;
  const char *key;
  if (!parse_ulong(next_tok(), &min) || !parse_ulong(next_tok(), &keycol) || !(key = next_tok()) ||
      !parse_ulong(next_tok(), &owncol) || !parse_ulong(next_tok(), &n) || n > MAX_LIST ||
      keycol >= MAX_FIELDS || owncol >= MAX_FIELDS || min > MAX_FIELDS)
    return false;
  const char *own[MAX_LIST];
  for (unsigned long i = 0; i < n; i++)
    if (!(own[i] = next_tok()))
      return false;
  char *text = read_whole_file(file);
  if (!text)
    return errno == ENOENT;
  /* Whole lines only, as the TypeScript side reads them: dnsmasq rewrites the file in place, and a
   * last line without its newline may be cut short mid-write. */
  char *end = strrchr(text, '\n');
  *(end ? end + 1 : text) = '\0';
  bool clear = true;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && clear;
       line = strtok_r(NULL, "\n", &save)) {
    char *field[MAX_FIELDS];
    size_t count = 0;
    for (char *fs = NULL, *f = strtok_r(line, " \t\r\v\f", &fs); f;
         f = strtok_r(NULL, " \t\r\v\f", &fs))
      if (count < MAX_FIELDS)
        field[count++] = f;
      else
        count++;
    if (count < min || count <= keycol || count <= owncol || strcmp(field[keycol], key) != 0)
      continue;
    bool mine = false;
    for (unsigned long i = 0; i < n && !mine; i++)
      mine = strcasecmp(field[owncol], own[i]) == 0;
    clear = mine;
  }
  free(text);
  return clear;
}

/* v2: the device program, through the devices mode (it dies on failure: the cli's die hook undoes). */
static bool attach_devices(void)
{
  const char *dir = next_tok(), *count = next_tok();
  unsigned long n;
  if (!dir || !parse_ulong(count, &n) || n > MAX_LIST)
    return false;
  char *argv[3 + 2 * MAX_LIST + 1];
  size_t k = 0;
  argv[k++] = "devices";
  argv[k++] = "--cgroup";
  argv[k++] = (char *)dir;
  for (unsigned long i = 0; i < n; i++) {
    const char *rule = next_tok();
    if (!rule)
      return false;
    argv[k++] = "--allow";
    argv[k++] = (char *)rule;
  }
  argv[k] = NULL;
  return main_devices((int)k, argv) == 0;
}

/* Start: the helper's start mode, its stdout (the pids, for the TypeScript side) dropped. */
static int start_container(void)
{
  unsigned long n;
  if (!parse_ulong(next_tok(), &n) || n == 0 || n > ps.n)
    return not_this_way("damaged plan", NULL);
  char **argv = xcalloc(n + 2, sizeof *argv);
  argv[0] = "start";
  for (unsigned long i = 0; i < n; i++)
    if (!(argv[i + 1] = (char *)next_tok()))
      return not_this_way("damaged plan", NULL);
  const char *end = next_tok();
  if (!end || strcmp(end, "end") != 0)
    return not_this_way("damaged plan", NULL);
  /* plan-exec: the TypeScript start reads the pids, the host-limits warning (main_start wrote it
   * to stderr already) and the helper's own error. */
  if (ps.exec)
    return main_start((int)n + 1, argv) == 0 ? 0 : -1;
  int saved_out = dup(1), saved_err = dup(2), null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (saved_out < 0 || saved_err < 0 || null < 0)
    return not_this_way("no fds", NULL);
  dup2(null, 1);
  /* A failure is reported by the TypeScript start that follows, not twice. */
  if (!plan_debug())
    dup2(null, 2);
  close(null);
  host_limits_warning[0] = '\0';
  int rc = main_start((int)n + 1, argv);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  /* The host-limits warning went to /dev/null with the rest (unless debugging: then it is out
   * already); a failed start leaves it to node. */
  if (rc == 0 && !plan_debug())
    (void)write_all(2, host_limits_warning, strlen(host_limits_warning));
  return rc == 0 ? 0 : not_this_way("the start failed", NULL);
}

/* A check that does not hold: said why (as not_this_way), 0 for check_step. */
static int check_fails(const char *why, const char *what)
{
  (void)not_this_way(why, what);
  return 0;
}

/* The checks: what must hold for the plan to hold. Each says nothing of its own when it holds;
 * false when it does not (said why), -1 for an operation that is not a check. */
static int check_step(const char *op, const char *a)
{
  if (strcmp(op, "env") == 0) {
    const char *v = next_tok();
    if (!v || !env_is(a, v))
      return check_fails("environment differs:", a);
  } else if (strcmp(op, "build") == 0) {
    if (strcmp(a, TSLXC_BUILD_ID) != 0)
      return check_fails("another build of tslxc-helper wrote it", NULL);
  } else if (strcmp(op, "gen") == 0) {
    const char *token = next_tok();
    if (!token || !generation_is(a, token))
      return check_fails("changed since:", a);
  } else if (strcmp(op, "same") == 0 || strcmp(op, "inode") == 0) {
    if (!stat_matches(a, op[0] == 's'))
      return check_fails("changed:", a);
  } else if (strcmp(op, "absent") == 0) {
    if (access(a, F_OK) == 0 || errno != ENOENT)
      return check_fails("appeared:", a);
  } else if (strcmp(op, "text") == 0) {
    const char *data = next_tok();
    if (!data || !file_holds(a, data))
      return check_fails("changed:", a);
  } else if (strcmp(op, "link") == 0) {
    char p[PATH_MAX];
    xsnprintf(p, sizeof p, "/sys/class/net/%s", a);
    if (strchr(a, '/') || access(p, F_OK) < 0)
      return check_fails("no network interface", a);
  } else if (strcmp(op, "proc") == 0) {
    const char *program = next_tok(), *arg = next_tok();
    if (!program || !arg || process_from_pid_file(a, program, arg) == 0)
      return check_fails("no live process of", a);
  } else if (strcmp(op, "noline") == 0) {
    if (!no_foreign_line(a))
      return check_fails("an address is leased to another machine in", a);
  } else if (strcmp(op, "rundir") == 0) {
    if (!run_dir_clear(a)) {
      ps.busy = true;
      return check_fails("running, or left by a crash:", a);
    }
  } else
    return -1;
  return 1;
}

/* The steps after the magic, in order; 0 when all went (the container started, if one was asked). */
static int run_steps(void)
{
  ps.pos = 1;
  const char *run_dir = NULL;
  for (const char *op; (op = next_tok());) {
    const char *a = NULL;
    errno = 0;
    /* A spec that starts nothing (a phase the TypeScript start runs under a lock of its own). */
    if (ps.exec && strcmp(op, "end") == 0)
      return ps.pos == ps.n ? 0 : not_this_way("damaged spec", NULL);
    if (strcmp(op, "start") == 0) {
      int rc = start_container();
      if (rc != 0)
        return rc;
      plan_release_locks();
      return 0;
    }
    if (strcmp(op, "unlock") == 0) {
      plan_unlock();
      continue;
    }
    if (!(a = next_tok()))
      return not_this_way("damaged plan", NULL);
    int checked = check_step(op, a);
    if (checked == 0)
      return -1;
    if (checked == 1) {
      if (strcmp(op, "rundir") == 0)
        run_dir = a;
      continue;
    }
    if (strcmp(op, "lock") == 0) {
      if (!take_lock(a)) {
        ps.busy = true;
        return not_this_way("the container is locked", a);
      }
    } else if (strcmp(op, "hup") == 0) {
      const char *program = next_tok(), *arg = next_tok();
      if (!program || !arg || ps.n_hupped >= N_ELEMENTS(ps.hupped))
        return not_this_way("damaged plan", NULL);
      /* The TypeScript start just brought the network up: a dnsmasq gone meanwhile reads the
       * files when it is started again. A replay relies on it (its check said it runs). */
      if (!hup_process(a, program, arg)) {
        if (ps.exec)
          continue;
        return not_this_way("cannot signal the process of", a);
      }
      ps.hupped[ps.n_hupped][0] = a;
      ps.hupped[ps.n_hupped][1] = program;
      ps.hupped[ps.n_hupped++][2] = arg;
    } else if (strcmp(op, "mkdir") == 0) {
      if (ps.n_made >= MAX_LIST || mkdir(a, 0755) < 0)
        return not_this_way("cannot make", a);
      ps.made[ps.n_made++] = a;
    } else if (strcmp(op, "write") == 0) {
      const char *data = next_tok();
      if (!data || !write_cgroup_file(a, data))
        return not_this_way("cannot write", a);
    } else if (strcmp(op, "chown") == 0) {
      unsigned long uid, gid;
      if (!parse_ulong(next_tok(), &uid) || !parse_ulong(next_tok(), &gid) ||
          chown(a, (uid_t)uid, (gid_t)gid) < 0)
        return not_this_way("cannot chown", a);
    } else if (strcmp(op, "devices") == 0) {
      ps.pos--;
      if (!attach_devices())
        return not_this_way("cannot attach the device program", NULL);
    } else if (strcmp(op, "file") == 0) {
      const char *mode = next_tok(), *data = next_tok();
      if (!run_dir || !mode || !data || !write_run_file(a, mode, data, run_dir))
        return not_this_way("cannot write", a);
    } else if (strcmp(op, "touch") == 0) {
      if (!touch_file(a))
        return not_this_way("cannot write", a);
    } else
      return not_this_way("unknown step", op);
  }
  return not_this_way("damaged plan", NULL);
}

int plan_start(const char *plan_path)
{
  if (!load(plan_path))
    return not_this_way("no plan at", plan_path);
  return run_steps();
}

/* A failure deep in a mode the spec ran (it dies): its line is the error; what was made goes. */
static void exec_die(const char *line, int err)
{
  (void)err;
  char buf[1100];
  int n = snprintf(buf, sizeof buf, "%s\n", line);
  if (n > (int)sizeof buf - 1)
    n = sizeof buf - 1;
  (void)write_all(2, buf, n);
  plan_undo();
}

/* tslxc-helper plan-exec: execute the start spec on stdin (the TypeScript start's executor; the
 * caller holds the locks). Exit 0: done (a start step printed the pids); 1: the reason is on
 * stderr and what the spec made is undone. */
int main_plan_exec(int argc, char **argv)
{
  (void)argv;
  if (argc != 1)
    die("usage: tslxc-helper plan-exec < SPEC");
  /* A spec that starts the container forks the monitor: from the sealed copy, as start does. */
  reexec_sealed(helper_argv);
  ps.exec = true;
  die_hook = exec_die;
  if (!load_stdin())
    die("cannot read the start spec on stdin");
  if (run_steps() != 0) {
    plan_undo();
    return 1;
  }
  return 0;
}

/* tslxc-helper plan-check OP ARG...: one check of a plan, as a replay makes it (exit 0: it holds,
 * 1: it does not, 2: not a check). The tests hold it against the TypeScript functions that decide
 * the same thing, on the same inputs. */
int main_plan_check(int argc, char **argv)
{
  if (argc < 3)
    return 2;
  ps.tok = argv + 1;
  ps.n = (size_t)argc - 1;
  ps.pos = 0;
  const char *op = next_tok(), *a = next_tok();
  int checked = check_step(op, a);
  if (checked < 0 || ps.pos != ps.n)
    return 2;
  return checked == 1 ? 0 : 1;
}
