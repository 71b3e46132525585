/* tslxc-helper file: read, write, list or remove files inside a container. The helper enters the container's
 * mount namespace (running) or chroots into its root in a mount namespace of its own (stopped), so
 * every path (symlinks and ".." included) is resolved by the kernel inside the container.
 * --write-many writes several files in one go (create writes half a dozen identity files, and on
 * an overlay each helper run mounts the overlay again): stdin holds records
 * "MODE LENGTH PATH\n" followed by LENGTH bytes of content.
 * --get, --make-dir, --symlink, --append and --delete are the API's file operations (LXD's
 * GET/POST/DELETE /1.0/instances/NAME/files): see get_path below for --get's output. */
#include "helper.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <dirent.h>
#include <sys/stat.h>

static void mkdir_parents(char *path, mode_t mode)
{
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, mode) < 0 && errno != EEXIST)
      die_with_error("mkdir %s", path);
    *p = '/';
  }
}

static void copy_fd(int from, int to, const char *what)
{
  char buf[65536];
  for (;;) {
    ssize_t n = read_retry(from, buf, sizeof buf);
    if (n < 0)
      die_with_error("read %s", what);
    if (n == 0)
      return;
    if (write_all(to, buf, n) < 0)
      die_with_error("write %s", what);
  }
}

/* The temporary file of a write from stdin, removed when a signal ends the helper first (the
 * caller's Ctrl-C reaches the whole process group). */
static int pending_dirfd = -1;
static char pending_tmp[NAME_MAX + 32];

static void drop_pending(int sig)
{
  if (pending_dirfd >= 0)
    (void)unlinkat(pending_dirfd, pending_tmp, 0);
  _exit(128 + sig);
}

/* Written beside the target, then renamed over it: a reader never sees half a file, and a
 * symlink at the target is replaced, not followed. The content is `data` (len bytes) or, when
 * data is NULL, all of stdin, which must then hold exactly `expect` bytes unless it is -1: a
 * sender that died midway closes the pipe just as one that finished, and only the count tells. */
static void write_file(const char *path, bool mkdirs, unsigned long dir_mode, unsigned long mode,
                       unsigned long uid, unsigned long gid, const char *data, size_t len,
                       unsigned long expect)
{
  if (path[0] != '/')
    die("file: %s: expected an absolute path", path);
  char *copy = xstrdup(path);
  if (mkdirs)
    mkdir_parents(copy, dir_mode);
  char *slash = strrchr(copy, '/');
  *slash = '\0';
  const char *dir = copy[0] ? copy : "/";
  const char *base = slash + 1;
  if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    die("%s: not a file name", path);
  autofd int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    die_with_error("open directory %s", dir);
  char tmp[NAME_MAX + 32];
  xsnprintf(tmp, sizeof tmp, ".%.200s.tslxc-%d", base, (int)getpid());
  autofd int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    die_with_error("create %s", path);
  if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0) {
    unlinkat(dirfd, tmp, 0);
    die_with_error("set owner and mode of %s", path);
  }
  if (data) {
    if (write_all(fd, data, len) < 0) {
      unlinkat(dirfd, tmp, 0);
      die_with_error("write %s", path);
    }
  } else {
    xsnprintf(pending_tmp, sizeof pending_tmp, "%s", tmp);
    pending_dirfd = dirfd;
    static const int fatal[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    for (size_t i = 0; i < N_ELEMENTS(fatal); i++)
      signal(fatal[i], drop_pending);
    char buf[65536];
    unsigned long got = 0;
    for (;;) {
      ssize_t n = read_retry(0, buf, sizeof buf);
      if (n == 0)
        break;
      if (n < 0 || write_all(fd, buf, n) < 0) {
        unlinkat(dirfd, tmp, 0);
        die_with_error("write %s", path);
      }
      got += n;
    }
    if (expect != (unsigned long)-1 && got != expect) {
      unlinkat(dirfd, tmp, 0);
      die("%s: %lu bytes arrived instead of %lu; nothing was written", path, got, expect);
    }
  }
  if (renameat(dirfd, tmp, dirfd, base) < 0) {
    unlinkat(dirfd, tmp, 0);
    die_with_error("rename onto %s", path);
  }
  pending_dirfd = -1;
  free(copy);
}

/* The parent directory of path (opened O_PATH) and its last component, which must be a name. */
static int open_parent(const char *path, char **base_out, char **copy_out)
{
  if (path[0] != '/')
    die("file: %s: expected an absolute path", path);
  char *copy = xstrdup(path);
  size_t len = strlen(copy);
  while (len > 1 && copy[len - 1] == '/')
    copy[--len] = '\0';
  char *slash = strrchr(copy, '/');
  *slash = '\0';
  const char *dir = copy[0] ? copy : "/";
  char *base = slash + 1;
  if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    die("%s: not a file name", path);
  int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    die_with_error("open directory %s", dir);
  *base_out = base;
  *copy_out = copy;
  return dirfd;
}

/* --get: one line "TYPE UID GID MODE\n" (TYPE file, directory or symlink; MODE octal permission
 * bits), then a file's content, a directory's entry names each ended by a NUL, or a symlink's
 * target. The last component is not followed (a symlink is reported as one, as LXD does). */
static void get_path(const char *path)
{
  struct stat st;
  autofd int fd = -1;
  autofree char *copy = NULL;
  char *base = NULL;
  if (strcmp(path, "/") == 0) {
    fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    autofd int dirfd = open_parent(path, &base, &copy);
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
      die_with_error("open %s", path);
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX + 1];
      ssize_t n = readlinkat(dirfd, base, target, PATH_MAX);
      if (n < 0)
        die_with_error("readlink %s", path);
      dprintf(1, "symlink %u %u %04o\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
              (unsigned)(st.st_mode & 07777));
      if (write_all(1, target, n) < 0)
        die_with_error("write");
      return;
    }
    fd = openat(dirfd, base, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  }
  if (fd < 0 || fstat(fd, &st) < 0)
    die_with_error("open %s", path);
  if (S_ISREG(st.st_mode)) {
    dprintf(1, "file %u %u %04o\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
            (unsigned)(st.st_mode & 07777));
    copy_fd(fd, 1, path);
    return;
  }
  if (!S_ISDIR(st.st_mode))
    die("%s: not a regular file, a directory or a symlink", path);
  DIR *d = fdopendir(fd);
  if (!d)
    die_with_error("open directory %s", path);
  fd = -1;
  dprintf(1, "directory %u %u %04o\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
          (unsigned)(st.st_mode & 07777));
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (write_all(1, e->d_name, strlen(e->d_name) + 1) < 0)
      die_with_error("write");
  }
  closedir(d);
}

/* --make-dir: a directory with the owner and mode given; one already there gets them. */
static void make_dir(const char *path, unsigned long mode, unsigned long uid, unsigned long gid)
{
  autofree char *copy = NULL;
  char *base;
  autofd int dirfd = open_parent(path, &base, &copy);
  if (mkdirat(dirfd, base, 0700) < 0 && errno != EEXIST)
    die_with_error("mkdir %s", path);
  autofd int fd = openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    die_with_error("open directory %s", path);
  if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
    die_with_error("set owner and mode of %s", path);
}

/* --symlink TARGET --write PATH: made beside PATH, then renamed over it (replacing, never following). */
static void make_symlink(const char *path, const char *target, unsigned long uid, unsigned long gid)
{
  autofree char *copy = NULL;
  char *base;
  autofd int dirfd = open_parent(path, &base, &copy);
  char tmp[NAME_MAX + 32];
  xsnprintf(tmp, sizeof tmp, ".%.200s.tslxc-%d", base, (int)getpid());
  if (symlinkat(target, dirfd, tmp) < 0)
    die_with_error("create symlink %s", path);
  if (fchownat(dirfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
      renameat(dirfd, tmp, dirfd, base) < 0) {
    unlinkat(dirfd, tmp, 0);
    die_with_error("create symlink %s", path);
  }
}

/* --append --write PATH: stdin added at the end of the file (created with the owner and mode
 * given when missing). A symlink at PATH is refused, not followed. */
static void append_file(const char *path, unsigned long mode, unsigned long uid, unsigned long gid)
{
  autofree char *copy = NULL;
  char *base;
  autofd int dirfd = open_parent(path, &base, &copy);
  autofd int fd =
      openat(dirfd, base, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = openat(dirfd, base, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 && (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0))
      die_with_error("set owner and mode of %s", path);
  }
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    die_with_error("open %s", path);
  if (!S_ISREG(st.st_mode))
    die("%s: not a regular file", path);
  copy_fd(0, fd, path);
}

/* --delete: a file, a symlink (not what it points to) or an empty directory. */
static void delete_path(const char *path)
{
  autofree char *copy = NULL;
  char *base;
  autofd int dirfd = open_parent(path, &base, &copy);
  if (unlinkat(dirfd, base, 0) == 0)
    return;
  if (errno == EISDIR && unlinkat(dirfd, base, AT_REMOVEDIR) == 0)
    return;
  die_with_error("remove %s", path);
}

/* --write-many: the records on stdin, each "MODE LENGTH PATH\n" and LENGTH bytes, in order. All of
 * stdin is read first (identity files: a few KiB; capped), so a malformed record fails before any
 * file is written. */
static void write_records(bool mkdirs, unsigned long dir_mode, unsigned long uid, unsigned long gid)
{
  enum { MAX_RECORDS_INPUT = 16 << 20 };
  size_t cap = 65536, used = 0;
  char *in = xrealloc(NULL, cap);
  for (;;) {
    if (used == cap) {
      if (cap >= MAX_RECORDS_INPUT)
        die("file --write-many: more than %d bytes on stdin", MAX_RECORDS_INPUT);
      cap *= 2;
      in = xrealloc(in, cap);
    }
    ssize_t n = read_retry(0, in + used, cap - used);
    if (n < 0)
      die_with_error("read stdin");
    if (n == 0)
      break;
    used += n;
  }
  for (int pass = 0; pass < 2; pass++) { /* 0: check every record, 1: write */
    size_t at = 0;
    while (at < used) {
      char *nl = memchr(in + at, '\n', used - at);
      if (!nl)
        die("file --write-many: a record without its header line");
      *nl = '\0';
      char *end;
      errno = 0;
      unsigned long mode = strtoul(in + at, &end, 8);
      unsigned long len = 0;
      bool ok = !errno && *end == ' ' && mode <= 07777;
      if (ok) {
        len = strtoul(end + 1, &end, 10);
        ok = !errno && *end == ' ' && end[1] == '/' && len <= used - (size_t)(nl + 1 - in);
      }
      if (!ok)
        die("file --write-many: bad record header \"%.100s\"", in + at);
      if (pass == 1)
        write_file(end + 1, mkdirs, dir_mode, mode, uid, gid, nl + 1, len, (unsigned long)-1);
      *nl = '\n';
      at = (size_t)(nl + 1 - in) + len;
    }
  }
  free(in);
}

int main_file(int argc, char **argv)
{
  unsigned long pid = 0, mode = 0644, dir_mode = 0755, uid = 0, gid = 0, size = (unsigned long)-1;
  const char *read_path = NULL, *write_path = NULL, *rootfs = NULL;
  const char *get = NULL, *make_dir_path = NULL, *delete = NULL, *symlink_target = NULL;
  static struct overlay_opts overlay;
  bool mkdirs = false, as_user = false, write_many = false, append = false;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--mkdir") == 0) {
      mkdirs = true;
      continue;
    }
    if (strcmp(opt, "--as-user") == 0) {
      as_user = true;
      continue;
    }
    if (strcmp(opt, "--write-many") == 0) {
      write_many = true;
      continue;
    }
    if (strcmp(opt, "--append") == 0) {
      append = true;
      continue;
    }
    if (i + 1 >= argc)
      die("option %s needs a value", opt);
    const char *val = argv[++i];
    bool ok = true;
    if (strcmp(opt, "--pid") == 0)
      ok = parse_ulong(val, &pid) && pid > 0 && pid <= INT32_MAX;
    else if (strcmp(opt, "--rootfs") == 0)
      rootfs = val;
    else if (is_overlay_option(opt))
      parse_overlay_option(&overlay, opt, val);
    else if (strcmp(opt, "--read") == 0)
      read_path = val;
    else if (strcmp(opt, "--write") == 0)
      write_path = val;
    else if (strcmp(opt, "--get") == 0)
      get = val;
    else if (strcmp(opt, "--make-dir") == 0)
      make_dir_path = val;
    else if (strcmp(opt, "--delete") == 0)
      delete = val;
    else if (strcmp(opt, "--symlink") == 0)
      symlink_target = val;
    else if (strcmp(opt, "--mode") == 0 || strcmp(opt, "--mkdir-mode") == 0) {
      unsigned long *target = strcmp(opt, "--mode") == 0 ? &mode : &dir_mode;
      char *end;
      errno = 0;
      *target = strtoul(val, &end, 8);
      ok = !errno && !*end && *val && *target <= 07777;
    } else if (strcmp(opt, "--uid") == 0)
      ok = parse_ulong(val, &uid);
    else if (strcmp(opt, "--gid") == 0)
      ok = parse_ulong(val, &gid);
    else if (strcmp(opt, "--size") == 0)
      ok = parse_ulong(val, &size) && size != (unsigned long)-1;
    else
      die("file: unknown option %s", opt);
    if (!ok)
      die("%s %s: invalid value", opt, val);
  }
  if (!pid == !rootfs ||
      (!!read_path + !!write_path + write_many + !!get + !!make_dir_path + !!delete) != 1)
    die("file: needs --pid or --rootfs, and one of --read PATH, --write PATH, --write-many, "
        "--get PATH, --make-dir PATH or --delete PATH");
  if ((append || symlink_target) && (!write_path || (append && symlink_target)))
    die("file: --append and --symlink TARGET go with --write PATH, and not together");
  check_overlay_opts(&overlay);
  if (overlay.n_lowers && !rootfs)
    die("file: the --rootfs-* overlay options need --rootfs");
  const char *path = read_path       ? read_path
                     : write_path    ? write_path
                     : get           ? get
                     : make_dir_path ? make_dir_path
                     : delete        ? delete
                                     : "/";
  if (path[0] != '/')
    die("file: %s: expected an absolute path", path);

  if (pid) {
    autofd int pidfd = sys_pidfd_open(pid);
    if (pidfd < 0)
      die_with_error("open process %lu", pid);
    /* An unprivileged container's user namespace first: we write as its root (owner ids are
     * the container's, and its idmapped rootfs stores them unshifted). */
    int userns = in_other_userns(pid) ? CLONE_NEWUSER : 0;
    if (setns(pidfd, userns | CLONE_NEWNS) < 0)
      die_with_error("enter the mount namespace of process %lu", pid);
    if (userns)
      become_userns_root();
  } else {
    /* A stopped container: its root in a mount namespace of our own (an overlay is mounted
     * there, never on the host's tree), then chroot, so the kernel resolves every path inside. */
    if (rootfs[0] != '/')
      die("file: --rootfs %s: expected an absolute path", rootfs);
    if (unshare(CLONE_NEWNS) < 0)
      die_with_error("unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
      die_with_error("make / recursively private");
    if (overlay.n_lowers)
      mount_overlay(&overlay, rootfs);
    if (chroot(rootfs) < 0 || chdir("/") < 0)
      die_with_error("chroot %s", rootfs);
  }

  /* --as-user: every further step (path walk, mkdir, open, rename) is done with the uid and gid
   * given, without supplementary groups or capabilities, so the kernel checks that user's
   * permissions: a user who planted a symlink in their home cannot make tslxc read or write a
   * file they could not reach themselves (another user's authorized_keys, say). */
  if (as_user) {
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
      die_with_error("take the identity %lu:%lu", uid, gid);
  }

  if (read_path) {
    autofd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
      die_with_error("open %s", path);
    if (!S_ISREG(st.st_mode))
      die("%s: not a regular file", path);
    copy_fd(fd, 1, path);
    return 0;
  }

  if (write_many) {
    write_records(mkdirs, dir_mode, uid, gid);
    return 0;
  }
  if (get) {
    get_path(path);
    return 0;
  }
  if (make_dir_path) {
    make_dir(path, mode, uid, gid);
    return 0;
  }
  if (delete) {
    delete_path(path);
    return 0;
  }
  if (symlink_target) {
    make_symlink(path, symlink_target, uid, gid);
    return 0;
  }
  if (append) {
    append_file(path, mode, uid, gid);
    return 0;
  }
  write_file(path, mkdirs, dir_mode, mode, uid, gid, NULL, 0, size);
  return 0;
}
