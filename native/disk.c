/* tslxc-helper disk: add a disk to a running container, or take one away (tslxc's hotplug).
 *
 * Add: the source is cloned on the host as a detached mount (open_tree(OPEN_TREE_CLONE |
 * AT_RECURSIVE)), idmapped to the container's user namespace and/or made read-only as asked,
 * exactly as the monitor prepares --bind sources at a boot; then the helper enters the
 * container's user and mount namespaces, finds (or makes) the mount point inside the container's
 * root with openat2(RESOLVE_IN_ROOT), and move_mount()s the detached tree onto that fd.
 * Remove: the same entry, then umount2(MNT_DETACH) of the target, looked up the same way.
 *
 * Why this cannot touch the host: every path the container controls is resolved inside its root
 * by the kernel, in its own mount namespace (the host's tree is not even in it), onto an fd that
 * is not looked up again; the only host path opened is the source, which tslxc chose. The
 * container's tree is a recursive slave of the host's, so nothing done here propagates back.
 * Mount points are made as the container's root (its user namespace), as at a boot. */
#include "helper.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

/* The container's user namespace (for MOUNT_ATTR_IDMAP), opened while the pidfd proves PID is
 * still the process we mean (a reused PID would fail the signal check). */
static int open_userns_of(pid_t pid, int pidfd)
{
  char path[64];
  xsnprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die_with_error("open %s", path);
  if (sys_pidfd_send_signal(pidfd, 0) < 0)
    die_with_error("process %d", (int)pid);
  return fd;
}

void enter_container(int pidfd, pid_t pid, bool userns)
{
  if (setns(pidfd, (userns ? CLONE_NEWUSER : 0) | CLONE_NEWNS) < 0)
    die_with_error("enter the mount namespace of process %d", (int)pid);
  if (userns)
    become_userns_root();
}

static void add_disk(int rootfd, int tree, const struct bind_spec *b)
{
  struct stat st;
  if (fstat(tree, &st) < 0)
    die_with_error("stat %s", b->src);
  umask(022);
  autofd int dst = open_mount_target(rootfd, b->dst + 1, S_ISDIR(st.st_mode));
  if (move_mount(tree, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die_with_error("move the mount of %s onto %s", b->src, b->dst);
}

/* umount2(MNT_DETACH) of NAME in DIRFD (a directory of the container), never following a link. */
static bool detach_at(int dirfd, const char *name, const char *path)
{
  if (fchdir(dirfd) < 0)
    die_with_error("chdir to the parent of %s", path);
  if (umount2(name, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
    return true;
  if (errno != EINVAL && errno != ENOENT)
    die_with_error("unmount %s", path);
  return false;
}

/* Detaches what is mounted on PATH, found as the add found it: resolved inside the container's
 * root, a link at the last name followed in the root as well (by hand, one link at a time, each
 * step resolved with RESOLVE_IN_ROOT again), and unmounted by that last name from its parent's
 * fd. Nothing mounted there (the container unmounted it, or removed the dir) is not an error:
 * what was asked is true. Whatever the container plants, this can only unmount a mount of its
 * own tree, which its root could unmount itself. */
void remove_disk(int rootfd, const char *path)
{
  char cur[PATH_MAX];
  xsnprintf(cur, sizeof cur, "%s", path + 1);
  for (int links = 0; links < 40; links++) {
    char parent[PATH_MAX];
    xsnprintf(parent, sizeof parent, "%s", cur);
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : cur;
    if (slash)
      *slash = '\0';
    if (!slash || !parent[0])
      xsnprintf(parent, sizeof parent, "/");
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
      /* No last name to unmount by: the directory itself, entered. */
      autofd int dirfd = open_in_root_flags(rootfd, cur, O_RDONLY | O_DIRECTORY);
      if (dirfd < 0) {
        if (errno == ENOENT)
          return;
        die_with_error("open %s", path);
      }
      detach_at(dirfd, ".", path);
      return;
    }
    autofd int dirfd = open_in_root_flags(rootfd, parent, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0) {
      if (errno == ENOENT)
        return;
      die_with_error("open the parent of %s", path);
    }
    char link[PATH_MAX];
    ssize_t n = readlinkat(dirfd, base, link, sizeof link - 1);
    if (n < 0) {
      if (errno == EINVAL || errno == ENOENT) /* not a link (or gone): the mount point itself */
        detach_at(dirfd, base, path);
      else
        die_with_error("read the link %s", path);
      return;
    }
    link[n] = '\0';
    char next[PATH_MAX];
    if (link[0] == '/')
      xsnprintf(next, sizeof next, "%s", link + 1);
    else
      xsnprintf(next, sizeof next, "%s/%s", strcmp(parent, "/") == 0 ? "." : parent, link);
    xsnprintf(cur, sizeof cur, "%s", next);
  }
  errno = ELOOP;
  die_with_error("resolve %s", path);
}

/* --pid PID (--add SPEC | --remove DST): the options of the live device modes (disk, unixdev). */
void parse_live_device_args(const char *mode, const char *add_usage, int argc, char **argv,
                            struct live_device_args *a)
{
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (i + 1 >= argc)
      die("option %s needs a value", opt);
    const char *val = argv[++i];
    if (strcmp(opt, "--pid") == 0) {
      if (!parse_ulong(val, &a->pid) || a->pid == 0 || a->pid > INT32_MAX)
        die("--pid %s: invalid value", val);
    } else if (strcmp(opt, "--add") == 0)
      a->add = val;
    else if (strcmp(opt, "--remove") == 0)
      a->remove = val;
    else
      die("%s: unknown option %s", mode, opt);
  }
  if (!a->pid || !a->add == !a->remove)
    die("%s: needs --pid PID and one of --add %s or --remove PATH", mode, add_usage);
  if (a->remove && (a->remove[0] != '/' || a->remove[1] == '\0'))
    die("%s: --remove %s: expected an absolute path other than /", mode, a->remove);
}

int main_disk(int argc, char **argv)
{
  struct live_device_args args = { 0 };
  parse_live_device_args("disk", "SRC:DST[:OPTS]", argc, argv, &args);
  unsigned long pid = args.pid;
  const char *add = args.add, *remove = args.remove;
  static struct bind_spec b;
  if (add)
    parse_bind_spec(add, &b);

  autofd int pidfd = sys_pidfd_open(pid);
  if (pidfd < 0)
    die_with_error("open process %lu", pid);
  bool userns = in_other_userns(pid);
  if (b.idmap && !userns)
    die("disk: --add %s: idmap needs a container with a user namespace", add);
  autofd int userns_fd = b.idmap ? open_userns_of(pid, pidfd) : -1;

  /* Made by real root in the host's namespaces: only there may a host filesystem's mount be
   * idmapped, and the source path is reachable. */
  autofd int tree = add ? detached_tree(b.src, true, userns_fd, b.ro) : -1;

  enter_container(pidfd, pid, userns);
  autofd int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    die_with_error("open the container's root");
  if (add)
    add_disk(rootfd, tree, &b);
  else
    remove_disk(rootfd, remove);
  return 0;
}
