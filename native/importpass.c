/* tslxc-helper import-pass PLAN SRC DEST: the one pass of `image import` over a unified tarball.
 *
 * DEST (a new file) gets SRC's bytes by the kernel's copy. Then, from that stored copy and side by
 * side: the hash program, and the decompressor its first bytes call for feeding the listing
 * program through a 1 MiB pipe (a pipe of the default 64 KiB, or the socketpair node gives a
 * child, makes the reader pay a wakeup per few pages). Where the plan names the tar walker
 * (tarwalk.c), it is the listing program, and for the codec it inflates itself it reads the
 * stored copy with no decompressor; where the plan says so, it also makes the copy and the hash
 * itself (walk-store: SRC on its stdin, DEST on its fd 3). The listing goes to stdout as it comes.
 * When every program has ended, fd 3 gets their results, NUL-separated, six per program:
 *   NAME PROGRAM EXIT-CODE SIGNAL STDOUT STDERR   (NAME: hash, decompress, list or walk; -1: none)
 * or, when the copy failed, "copy" and the reason. Which programs run, with which arguments, and
 * which first bytes select which decompressor are the plan's (lib/image/pass.ts writes it and
 * documents its format): the TypeScript side decides, this side executes.
 *
 * bin/tslxc's native front (cli.c) runs the same pass before node has started (import_pass_fork),
 * with the plan TypeScript left at the last import, and hands node its stage dir and the read
 * ends of both pipes. Every process of a pass dies with its parent (PR_SET_PDEATHSIG): a killed
 * import leaves only its stage dir, which the store's sweep removes (named by the importer's PID). */
#include "helper.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/fs.h>

#define IMPORT_PLAN_MAGIC "tslxc-import-plan-1"
#define MAX_CODECS 8
#define CAPTURE_MAX 65536

struct argv_list {
  char **argv; /* NULL-terminated; NULL: none */
};

struct import_plan {
  char *buf;
  const char *state_root;
  const char *stage_prefix;
  struct argv_list hash, list;
  /* The tar walker (tarwalk.c) in place of the listing program, where the plan names it: walk
   * reads a plain tar stream, walk_inflate a file of the codec whose first bytes it names. */
  struct argv_list walk, walk_inflate, walk_store;
  unsigned char inflate_magic[16], store_magic[16];
  size_t inflate_magic_len, store_magic_len;
  struct {
    unsigned char magic[16];
    size_t magic_len;
    struct argv_list argv;
  } codecs[MAX_CODECS];
  size_t n_codecs;
};

/* ---- the plan ---- */

struct tokens {
  char **tok;
  size_t n, pos;
};

static const char *take(struct tokens *t)
{
  return t->pos < t->n ? t->tok[t->pos++] : NULL;
}

static bool take_argv(struct tokens *t, struct argv_list *out, bool may_be_empty)
{
  unsigned long n;
  const char *count = take(t);
  if (!count || !parse_ulong(count, &n) || n > t->n - t->pos || (n == 0 && !may_be_empty))
    return false;
  if (n == 0) {
    out->argv = NULL;
    return true;
  }
  out->argv = xcalloc(n + 1, sizeof *out->argv);
  for (unsigned long i = 0; i < n; i++)
    out->argv[i] = (char *)take(t);
  return true;
}

static bool parse_hex(const char *s, unsigned char *out, size_t max, size_t *len)
{
  size_t n = strlen(s);
  if (n == 0 || n % 2 || n / 2 > max)
    return false;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned int b;
    if (sscanf(s + 2 * i, "%2x", &b) != 1)
      return false;
    out[i] = (unsigned char)b;
  }
  *len = n / 2;
  return true;
}

/* The plan at PATH; false when absent, damaged or of another format. */
static bool import_plan_load(const char *path, struct import_plan *pl)
{
  autofd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  struct stat st;
  /* Its programs run as us: only a plan of ours that no one else may have written. */
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 022) || st.st_size <= 0 || st.st_size > 65536)
    return false;
  pl->buf = xcalloc(st.st_size + 1, 1);
  if (read_retry(fd, pl->buf, st.st_size) != st.st_size || pl->buf[st.st_size - 1] != '\0')
    return false;
  struct tokens t = { 0 };
  for (off_t i = 0; i < st.st_size; i++)
    t.n += pl->buf[i] == '\0';
  t.tok = xcalloc(t.n + 1, sizeof *t.tok);
  size_t k = 0;
  for (char *p = pl->buf; p < pl->buf + st.st_size; p += strlen(p) + 1)
    t.tok[k++] = p;
  const char *magic = take(&t);
  if (!magic || strcmp(magic, IMPORT_PLAN_MAGIC) != 0)
    return false;
  pl->state_root = take(&t);
  pl->stage_prefix = take(&t);
  if (!pl->state_root || !pl->stage_prefix || pl->stage_prefix[0] != '/')
    return false;
  bool have_list = false;
  for (const char *what; (what = take(&t));) {
    if (strcmp(what, "hash") == 0) {
      if (!take_argv(&t, &pl->hash, true))
        return false;
    } else if (strcmp(what, "list") == 0) {
      if (!take_argv(&t, &pl->list, false))
        return false;
      have_list = true;
    } else if (strcmp(what, "walk") == 0) {
      if (!take_argv(&t, &pl->walk, false))
        return false;
    } else if (strcmp(what, "walk-inflate") == 0) {
      const char *hex = take(&t);
      if (!hex ||
          !parse_hex(hex, pl->inflate_magic, sizeof pl->inflate_magic, &pl->inflate_magic_len) ||
          !take_argv(&t, &pl->walk_inflate, false))
        return false;
    } else if (strcmp(what, "walk-store") == 0) {
      const char *hex = take(&t);
      if (!hex || !parse_hex(hex, pl->store_magic, sizeof pl->store_magic, &pl->store_magic_len) ||
          !take_argv(&t, &pl->walk_store, false))
        return false;
    } else if (strcmp(what, "codec") == 0) {
      if (pl->n_codecs >= MAX_CODECS)
        return false;
      const char *hex = take(&t);
      if (!hex || !parse_hex(hex, pl->codecs[pl->n_codecs].magic, sizeof pl->codecs[0].magic,
                             &pl->codecs[pl->n_codecs].magic_len))
        return false;
      if (!take_argv(&t, &pl->codecs[pl->n_codecs].argv, false))
        return false;
      pl->n_codecs++;
    } else {
      return false;
    }
  }
  return have_list;
}

/* ---- the pass ---- */

/* A new open file description of the stored copy: each reader has its own offset. */
static int reopen(int fd)
{
  char p[64];
  xsnprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  return open(p, O_RDONLY | O_CLOEXEC);
}

static int copy_into(int in, int out)
{
  if (ioctl(out, FICLONE, in) == 0)
    return 0;
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n == 0)
      return 0;
    if (n > 0)
      continue;
    if (errno == EINTR)
      continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
      return -1;
    break;
  }
  /* A filesystem without copy_file_range: read and write, from where it stopped. */
  static char buf[1 << 17];
  for (;;) {
    ssize_t n = read_retry(in, buf, sizeof buf);
    if (n < 0)
      return -1;
    if (n == 0)
      return 0;
    if (write_all(out, buf, (size_t)n) < 0)
      return -1;
  }
}

struct child {
  const char *name;
  char **argv;
  pid_t pid;
  int out_capture, err_capture; /* memfds, -1: not kept */
  int status;
};

static int capture_fd(const char *name)
{
  return memfd_create(name, MFD_CLOEXEC);
}

/* IN, OUT become the child's stdin and stdout, and EXTRA (unless -1) its fd 3. */
static void spawn_child(struct child *c, pid_t parent, int in, int out, int extra)
{
  c->pid = fork();
  if (c->pid < 0)
    return;
  if (c->pid > 0)
    return;
  /* The child: dies with the pass; signals as a program expects them (node and the pass ignore
   * SIGPIPE, which exec would keep ignored: a decompressor must stop when the listing does). */
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(127);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int err = c->err_capture >= 0 ? c->err_capture : open("/dev/null", O_WRONLY);
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || (extra >= 0 && dup2(extra, 3) < 0))
    _exit(127);
  sys_close_range(extra >= 0 ? 4 : 3, ~0U, 0);
  execvp(c->argv[0], c->argv);
  dprintf(2, "%s: %s\n", c->argv[0], strerror(errno));
  _exit(127);
}

static void put_token(int fd, const char *s, size_t len)
{
  (void)write_all(fd, s, len);
  (void)write_all(fd, "", 1);
}

static void put_capture(int fd, int mfd)
{
  static char buf[CAPTURE_MAX];
  ssize_t n = mfd >= 0 ? pread(mfd, buf, sizeof buf, 0) : 0;
  if (n < 0)
    n = 0;
  /* A NUL would end the token early: the result is text, so none is lost that matters. */
  for (ssize_t i = 0; i < n; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
  put_token(fd, buf, (size_t)n);
}

static void put_result(int fd, const struct child *c)
{
  char code[16] = "-1", sig[16] = "-1";
  if (WIFEXITED(c->status))
    xsnprintf(code, sizeof code, "%d", WEXITSTATUS(c->status));
  else if (WIFSIGNALED(c->status))
    xsnprintf(sig, sizeof sig, "%d", WTERMSIG(c->status));
  put_token(fd, c->name, strlen(c->name));
  put_token(fd, c->argv[0], strlen(c->argv[0]));
  put_token(fd, code, strlen(code));
  put_token(fd, sig, strlen(sig));
  put_capture(fd, c->out_capture);
  put_capture(fd, c->err_capture);
}

/* The pass (see the top), writing the listing to list_fd and the results to status_fd, both
 * closed at the end. Returns when every program has ended. */
static void import_pass_run(const struct import_plan *pl, const char *src, const char *dest,
                            int list_fd, int status_fd)
{
  signal(SIGPIPE, SIG_IGN);
  pid_t self = getpid();
  autofd int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  autofd int stored = open(dest, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  struct stat st;
  bool regular = in >= 0 && stored >= 0 && fstat(in, &st) == 0 &&
                 (S_ISREG(st.st_mode) || (errno = EINVAL, false));
  unsigned char src_head[16] = { 0 };
  if (regular && pl->walk_store.argv &&
      pread(in, src_head, sizeof src_head, 0) >= (ssize_t)pl->store_magic_len &&
      memcmp(src_head, pl->store_magic, pl->store_magic_len) == 0) {
    /* The walker copies, hashes and lists at once (the first bytes only choose the program: it
     * reads the stored copy's, and hands what it cannot read to tar, which lists the stored copy). */
    struct child w = { "walk", pl->walk_store.argv, -1, -1, capture_fd("walk-err"), 0 };
    spawn_child(&w, self, in, list_fd, stored);
    close(list_fd);
    if (w.pid <= 0)
      w.status = 127 << 8;
    else
      while (waitpid(w.pid, &w.status, 0) < 0 && errno == EINTR)
        ;
    put_result(status_fd, &w);
    if (w.err_capture >= 0)
      close(w.err_capture);
    close(status_fd);
    return;
  }
  if (!regular || copy_into(in, stored) < 0) {
    const char *why = strerror(errno);
    close(list_fd);
    put_token(status_fd, "copy", 4);
    put_token(status_fd, why, strlen(why));
    close(status_fd);
    return;
  }

  unsigned char head[16] = { 0 };
  ssize_t got = pread(stored, head, sizeof head, 0);
  char **dec_argv = NULL, **list_argv = pl->walk.argv ? pl->walk.argv : pl->list.argv;
  const char *list_name = pl->walk.argv ? "walk" : "list";
  bool self_inflating = pl->walk_inflate.argv && got >= (ssize_t)pl->inflate_magic_len &&
                        memcmp(head, pl->inflate_magic, pl->inflate_magic_len) == 0;
  if (self_inflating) {
    list_argv = pl->walk_inflate.argv;
    list_name = "walk";
  }
  for (size_t i = 0; i < pl->n_codecs && !dec_argv && !self_inflating; i++)
    if (got >= (ssize_t)pl->codecs[i].magic_len &&
        memcmp(head, pl->codecs[i].magic, pl->codecs[i].magic_len) == 0)
      dec_argv = pl->codecs[i].argv.argv;

  struct child kids[3];
  size_t n_kids = 0;
  if (pl->hash.argv) {
    struct child *h = &kids[n_kids++];
    *h = (struct child){ "hash", pl->hash.argv, -1, capture_fd("hash-out"), capture_fd("hash-err"),
                         0 };
    autofd int hin = reopen(stored);
    if (hin >= 0 && h->out_capture >= 0)
      spawn_child(h, self, hin, h->out_capture, -1);
  }
  autofd int list_in = -1;
  if (dec_argv) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      /* As big as an unprivileged pipe may be: fewer, larger reads and writes on both sides. */
      (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
      struct child *d = &kids[n_kids++];
      *d = (struct child){ "decompress", dec_argv, -1, -1, capture_fd("decompress-err"), 0 };
      autofd int din = reopen(stored);
      if (din >= 0)
        spawn_child(d, self, din, p[1], -1);
      close(p[1]);
      list_in = p[0];
    }
  } else {
    list_in = reopen(stored);
  }
  struct child *l = &kids[n_kids++];
  *l = (struct child){ list_name, list_argv, -1, -1, capture_fd("list-err"), 0 };
  if (list_in >= 0)
    spawn_child(l, self, list_in, list_fd, -1);
  close(list_fd);
  if (list_in >= 0) {
    close(list_in);
    list_in = -1;
  }

  for (size_t i = 0; i < n_kids; i++) {
    if (kids[i].pid <= 0) {
      kids[i].status = 127 << 8; /* not started: as a shell's "cannot run" */
      continue;
    }
    while (waitpid(kids[i].pid, &kids[i].status, 0) < 0 && errno == EINTR)
      ;
  }
  for (size_t i = 0; i < n_kids; i++) {
    put_result(status_fd, &kids[i]);
    if (kids[i].out_capture >= 0)
      close(kids[i].out_capture);
    if (kids[i].err_capture >= 0)
      close(kids[i].err_capture);
  }
  close(status_fd);
}

/* ---- the CLI front's early pass ---- */

/* Starts the pass of SRC in a new stage dir, from the plan in the run dir, and returns true with
 * the environment set for node (TSLXC_IMPORT_PASS: "LIST-FD STATUS-FD STAGE", TSLXC_IMPORT_FILE:
 * SRC as given); false, having made nothing, when it cannot (node then runs its own pass). */
bool import_pass_fork(const char *src)
{
  char plan_path[PATH_MAX];
  const char *run = run_root();
  if (!run || snprintf(plan_path, sizeof plan_path, "%s/%s", strcmp(run, "/") ? run : "",
                       LAYOUT_RUN_IMPORT_PLAN) >= (int)sizeof plan_path)
    return false;
  static struct import_plan pl;
  const char *state = state_root();
  if (!import_plan_load(plan_path, &pl) || !state || strcmp(pl.state_root, state) != 0)
    return false;
  struct stat st;
  if (stat(src, &st) < 0 || !S_ISREG(st.st_mode))
    return false;

  unsigned int rnd;
  if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
    return false;
  char stage[PATH_MAX], orig[PATH_MAX], dest[PATH_MAX];
  int n = snprintf(stage, sizeof stage, "%s%08x-%d", pl.stage_prefix, rnd, (int)getpid());
  if (n <= 0 || n >= (int)sizeof stage - 32)
    return false;
  xsnprintf(orig, sizeof orig, "%s/original", stage);
  xsnprintf(dest, sizeof dest, "%s/stored", orig);
  if (mkdir(stage, 0700) < 0)
    return false;
  int list[2] = { -1, -1 }, status[2] = { -1, -1 };
  pid_t pid = -1;
  if (mkdir(orig, 0700) == 0 && pipe2(list, O_CLOEXEC) == 0 && pipe2(status, O_CLOEXEC) == 0) {
    /* The listing is about 1 MiB (the walker's records of a Debian image a little more): the
     * listing program need not wait for node to have started reading it. Beyond 1 MiB only root
     * (CAP_SYS_RESOURCE) may go; anyone else keeps 1 MiB. */
    if (fcntl(list[1], F_SETPIPE_SZ, 4 << 20) < 0)
      (void)fcntl(list[1], F_SETPIPE_SZ, 1 << 20);
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0) {
      (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(1);
      close(list[0]);
      close(status[0]);
      /* Not the terminal or pipe node writes to: `tslxc image import ... | cat` ends with node. */
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
        _exit(1);
      import_pass_run(&pl, src, dest, list[1], status[1]);
      _exit(0);
    }
  }
  char env[PATH_MAX + 64];
  if (pid > 0) {
    close(list[1]);
    close(status[1]);
    list[1] = status[1] = -1;
    /* Kept across the exec of node, which adopts them (lib/image/pass.ts). */
    if (fcntl(list[0], F_SETFD, 0) == 0 && fcntl(status[0], F_SETFD, 0) == 0 &&
        snprintf(env, sizeof env, "%d %d %s", list[0], status[0], stage) < (int)sizeof env &&
        setenv("TSLXC_IMPORT_PASS", env, 1) == 0 && setenv("TSLXC_IMPORT_FILE", src, 1) == 0)
      return true;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    unsetenv("TSLXC_IMPORT_PASS");
    unsetenv("TSLXC_IMPORT_FILE");
  }
  for (int i = 0; i < 2; i++) {
    if (list[i] >= 0)
      close(list[i]);
    if (status[i] >= 0)
      close(status[i]);
  }
  (void)unlink(dest);
  (void)rmdir(orig);
  (void)rmdir(stage);
  return false;
}

/* import-pass PLAN SRC DEST: node's own pass, when the front did not start one. */
int main_import_pass(int argc, char **argv)
{
  if (argc != 4)
    die("usage: tslxc-helper import-pass PLAN SRC DEST");
  static struct import_plan pl;
  if (!import_plan_load(argv[1], &pl))
    die("cannot read the import plan %s", argv[1]);
  if (fcntl(3, F_GETFD) < 0)
    die("import-pass: fd 3 (the results) is not open");
  import_pass_run(&pl, argv[2], argv[3], 1, 3);
  return 0;
}
