/* The container child of attach and of the exec server, and the request format between them. */
#include "exec.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>

struct user {
  uid_t uid;
  gid_t gid;
  gid_t groups[MAX_LIST];
  size_t n_groups;
  char name[64];
  char home[PATH_MAX];
};

/* The command's process reports its own failures to the client ('M'): its fd 2 may be the pty
 * by then, or a pipe the client drains only briefly. Without a client socket, on fd 2. */
static int report_conn = -1;
static void child_die_hook(const char *line, int err)
{
  (void)err;
  if (report_conn >= 0) {
    char rec[sizeof(struct exec_reply) + EXEC_MESSAGE_MAX];
    size_t n = strnlen(line, EXEC_MESSAGE_MAX);
    struct exec_reply r = { .type = 'M', .value = (int32_t)n };
    memcpy(rec, &r, sizeof r);
    memcpy(rec + sizeof r, line, n);
    if (send(report_conn, rec, sizeof r + n, MSG_NOSIGNAL) >= 0)
      return;
  }
  dprintf(2, "%s\n", line);
}

void exec_child_begin(const struct exec_stdio *st)
{
  die_status = 125;
  report_conn = st->conn;
  die_hook = child_die_hook;
}

void exec_send_reply(int conn, char type, int32_t value, int fd)
{
  struct exec_reply r = { .type = type, .value = value };
  /* A client that went away only loses its reply. */
  (void)send_with_fds(conn, &r, sizeof r, &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT | MSG_NOSIGNAL);
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
 * namespace already; NSS is never used: it would load the host's modules into the container).
 * read_whole_file opens O_NONBLOCK and wants a regular file: a planted FIFO cannot hang us. */
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

/* --group: the command's only group, by gid or by name in the container's /etc/group. */
static gid_t lookup_group(const char *spec)
{
  unsigned long gid;
  if (parse_ulong(spec, &gid)) {
    if (gid > UINT32_MAX - 1)
      die("group %s: not a valid gid", spec);
    return gid;
  }
  autofree char *group = read_whole_file("/etc/group");
  char *save = NULL;
  for (char *line = group ? strtok_r(group, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[4];
    if (split_colons(line, f, 4) >= 3 && strcmp(f[0], spec) == 0 && parse_ulong(f[2], &gid))
      return gid;
  }
  die("group %s: not found in the container's /etc/group", spec);
}

/* A pty of the container's own devpts (so `tty` inside names /dev/pts/N) as the controlling
 * terminal and fds 0, 1 (and 2) of this process; its master goes to the client ('T'). Done here,
 * in the command's short-lived process, never in the exec server: the open of a path the
 * container controls could hang (a FUSE file it planted), and must not hang the server. */
static void open_container_pty(const struct exec_stdio *st)
{
  /* The devpts instance's own ptmx, checked to be on a devpts: the container owns its /dev and
   * could put anything at that path. O_NONBLOCK: a FIFO there does not block the open. */
  autofd int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  struct statfs sfs;
  if (master < 0 || fstatfs(master, &sfs) < 0)
    die_with_error("open the container's /dev/pts/ptmx");
  if (sfs.f_type != DEVPTS_SUPER_MAGIC)
    die("the container's /dev/pts/ptmx is not on a devpts");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
    die_with_error("unlock the pty");
  autofd int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    die_with_error("open the pty slave");
  if (st->size.ws_row && st->size.ws_col)
    ioctl(slave, TIOCSWINSZ, &st->size);
  if (ioctl(slave, TIOCSCTTY, 0) < 0)
    die_with_error("make the pty the controlling terminal");
  for (int fd = 0; fd < (st->pty_stderr ? 3 : 2); fd++)
    if (dup2(slave, fd) < 0)
      die_with_error("dup2 the pty");
  if (st->conn < 0)
    die("no client to pass the pty to");
  struct exec_reply r = { .type = 'T' };
  int fd = master;
  if (send_with_fds(st->conn, &r, sizeof r, &fd, 1, MSG_NOSIGNAL) < 0)
    die_with_error("pass the pty to the client");
}

void exec_in_container(const struct exec_spec *s, const char *const *cgroup_names,
                       const int *cgroup_fds, size_t n_cgroups, const struct exec_stdio *st)
{
  exec_child_begin(st);
  /* Inherited from the server, but a change of credentials (entering the user namespace, setuid
   * below) resets it to fs.suid_dumpable, which a host may have set to 1: set again, so the
   * container's root can never ptrace this process or open its /proc/PID/fd before exec. */
  if (prctl(PR_SET_DUMPABLE, 0) < 0)
    die_with_error("prctl PR_SET_DUMPABLE");

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL); /* attach's relay ignores it; an ignored signal would survive exec */

  /* A session of its own: nothing it does to its process group (kill(0, sig)) reaches its
   * parent, and no terminal but the container's pty can become its controlling one. */
  if (setsid() < 0 && getsid(0) != getpid())
    die_with_error("setsid");

  /* "0" moves the writer itself; the fds were opened on the host before setns. */
  for (size_t i = 0; i < n_cgroups; i++) {
    if (write_all(cgroup_fds[i], "0", 1) == 0)
      continue;
    if (errno == EBUSY) /* cgroup v2: no processes in a cgroup that delegates controllers */
      die_with_error("join cgroup %s (on cgroup v2, attach to a leaf cgroup)", cgroup_names[i]);
    die_with_error("join cgroup %s", cgroup_names[i]);
  }

  if (st->pty)
    open_container_pty(st);

  static struct user u;
  lookup_user(s->user ? s->user : "0", &u);
  if (s->group) { /* as LXD's exec --group: that group alone */
    u.gid = lookup_group(s->group);
    u.groups[0] = u.gid;
    u.n_groups = 1;
  }

  drop_caps_bounding(s->caps, s->n_caps);
  if (setgroups(u.n_groups, u.groups) < 0)
    die_with_error("setgroups");
  if (setgid(u.gid) < 0)
    die_with_error("setgid %d", (int)u.gid);
  /* The filter as init got it. Installing it needs CAP_SYS_ADMIN: another user loses it at
   * setuid, so gets it here; root gets it last before exec. */
  if (u.uid != 0)
    install_seccomp(&s->seccomp);
  if (setuid(u.uid) < 0)
    die_with_error("setuid %d", (int)u.uid);
  drop_caps_sets(s->caps, s->n_caps);
  if (prctl(PR_SET_DUMPABLE, 0) < 0)
    die_with_error("prctl PR_SET_DUMPABLE");

  if (s->cwd) {
    if (chdir(s->cwd) < 0)
      die_with_error("chdir %s", s->cwd);
  } else if (chdir(u.home) < 0 && chdir("/") < 0)
    die_with_error("chdir /");

  char *home = xasprintf("HOME=%s", u.home);
  char *user = xasprintf("USER=%s", u.name);
  char *logname = xasprintf("LOGNAME=%s", u.name);
  char *termvar = s->term ? xasprintf("TERM=%s", s->term) : NULL;
  const char *base[] = { "PATH=" DEFAULT_PATH, home, user, logname, "container=tslxc", termvar };
  char **envp = build_env(base, N_ELEMENTS(base), s->env, s->n_env);

  if (sys_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    die_with_error("close_range");
  environ = envp; /* execvp searches the container's PATH, not ours */
  if (u.uid == 0)
    install_seccomp(&s->seccomp);
  execvp(s->argv[0], s->argv);
  /* As env(1): 127 when the command is not found, 126 when it cannot run. */
  die_status = errno == ENOENT ? 127 : 126;
  die_with_error("exec %s", s->argv[0]);
}

/* ---- wire format ---- */

struct buf {
  char *data;
  size_t len, cap;
};

static void put_bytes(struct buf *b, const void *data, size_t n)
{
  if (b->len + n > b->cap) {
    while (b->len + n > b->cap)
      b->cap = b->cap ? b->cap * 2 : 4096;
    b->data = realloc(b->data, b->cap);
    if (!b->data)
      die_oom();
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

static void put_item(struct buf *b, char tag, const char *str)
{
  uint32_t n = strlen(str) + 1;
  put_bytes(b, &tag, 1);
  put_bytes(b, &n, sizeof n);
  put_bytes(b, str, n);
}

char *exec_request_encode(const struct exec_spec *s, mode_t mask, const struct winsize *pty,
                          size_t *len)
{
  struct buf b = { 0 };
  char num[32];
  put_bytes(&b, EXEC_REQUEST_MAGIC, 4);
  snprintf(num, sizeof num, "%o", (unsigned)mask);
  put_item(&b, 'm', num);
  for (char **a = s->argv; *a; a++)
    put_item(&b, 'a', *a);
  for (size_t i = 0; i < s->n_env; i++)
    put_item(&b, 'e', s->env[i]);
  if (s->cwd)
    put_item(&b, 'c', s->cwd);
  if (s->user)
    put_item(&b, 'u', s->user);
  if (s->group)
    put_item(&b, 'g', s->group);
  if (s->term)
    put_item(&b, 't', s->term);
  for (size_t i = 0; i < s->n_caps; i++) {
    snprintf(num, sizeof num, "%d", s->caps[i]);
    put_item(&b, 'k', num);
  }
  for (size_t i = 0; i < s->seccomp.n_deny; i++)
    put_item(&b, 'd', s->seccomp.deny[i]);
  for (size_t i = 0; i < s->seccomp.n_allow; i++)
    put_item(&b, 'w', s->seccomp.allow[i]);
  if (pty) {
    snprintf(num, sizeof num, "%u %u", pty->ws_row, pty->ws_col);
    put_item(&b, 'p', num);
  }
  *len = b.len;
  return b.data;
}

bool exec_request_decode(char *buf, size_t len, struct exec_spec *s, mode_t *mask, bool *pty,
                         struct winsize *size)
{
  memset(s, 0, sizeof *s);
  *mask = 022;
  *pty = false;
  *size = (struct winsize){ 0 };
  if (len < 4 || memcmp(buf, EXEC_REQUEST_MAGIC, 4) != 0)
    return false;
  size_t n_args = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t argi = 0;
    for (size_t off = 4; off < len;) {
      uint32_t n;
      if (len - off < 1 + sizeof n)
        return false;
      char tag = buf[off++];
      memcpy(&n, buf + off, sizeof n);
      off += sizeof n;
      if (n == 0 || n > len - off || buf[off + n - 1] != '\0')
        return false;
      char *str = buf + off;
      off += n;
      if (pass == 0) {
        n_args += tag == 'a';
        continue;
      }
      unsigned long v;
      switch (tag) {
      case 'a':
        s->argv[argi++] = str;
        break;
      case 'e':
        if (s->n_env >= MAX_LIST || !strchr(str, '='))
          return false;
        s->env[s->n_env++] = str;
        break;
      case 'c':
        s->cwd = str;
        break;
      case 'u':
        s->user = str;
        break;
      case 'g':
        s->group = str;
        break;
      case 't':
        s->term = str;
        break;
      case 'k':
        if (s->n_caps >= MAX_LIST || !parse_ulong(str, &v) || v > 63)
          return false;
        s->caps[s->n_caps++] = v;
        break;
      case 'd':
      case 'w': {
        size_t *n = tag == 'd' ? &s->seccomp.n_deny : &s->seccomp.n_allow;
        if (*n >= MAX_SYSCALL_OPTS || !seccomp_known_syscall(str))
          return false;
        (tag == 'd' ? s->seccomp.deny : s->seccomp.allow)[(*n)++] = str;
        break;
      }
      case 'p': {
        unsigned rows, cols;
        char extra;
        if (sscanf(str, "%u %u%c", &rows, &cols, &extra) != 2 || rows > 10000 || cols > 10000)
          return false;
        *pty = true;
        *size = (struct winsize){ .ws_row = rows, .ws_col = cols };
        break;
      }
      case 'm': {
        char *end;
        errno = 0;
        v = strtoul(str, &end, 8);
        if (errno || *end || end == str || v > 0777)
          return false;
        *mask = v;
        break;
      }
      default:
        return false;
      }
    }
    if (pass == 0) {
      if (n_args == 0)
        return false;
      s->argv = xcalloc(n_args + 1, sizeof *s->argv);
    }
  }
  return true;
}
