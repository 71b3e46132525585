/* Paths inside a container's root, resolved by the kernel with openat2(RESOLVE_IN_ROOT): a
 * symlink, absolute or with "..", cannot lead out of ROOTFD, and no path is looked up twice (the
 * caller acts on the fd it got). Used by start's child (ROOTFD the rootfs dir, before pivot_root)
 * and by the disk mode (ROOTFD the container's "/", in its mount namespace), so a mount point is
 * found and made the same way at a boot and when a disk is added to a running container. */
#include "helper.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>

#define RESOLVE_SAFE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

int open_in_root_flags(int rootfd, const char *path, int flags)
{
  return sys_openat2(rootfd, path, flags | O_CLOEXEC, RESOLVE_SAFE);
}

/* Splits "a/b/c" into "a/b" (or "/" for a top-level name) and "c"; PARENT has PATH_MAX bytes. */
static const char *split_parent(const char *path, char *parent)
{
  xsnprintf(parent, PATH_MAX, "%s", path);
  char *slash = strrchr(parent, '/');
  if (!slash) {
    xsnprintf(parent, PATH_MAX, "/");
    return path;
  }
  *slash = '\0';
  if (!parent[0])
    xsnprintf(parent, PATH_MAX, "/");
  return path + (slash - parent) + 1;
}

int open_in_root(int rootfd, const char *path, bool mkdirs)
{
  int fd = open_in_root_flags(rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT || !mkdirs)
    return fd;

  char parent[PATH_MAX];
  const char *base = split_parent(path, parent);
  autofd int parentfd = open_in_root(rootfd, parent, true);
  if (parentfd < 0)
    return -1;
  if (mkdirat(parentfd, base, 0755) < 0 && errno != EEXIST)
    return -1;
  return open_in_root_flags(rootfd, path, O_PATH);
}

int xopen_in_root(int rootfd, const char *path, bool mkdirs)
{
  int fd = open_in_root(rootfd, path, mkdirs);
  if (fd < 0)
    die_with_error("open /%s in the rootfs", path);
  return fd;
}

/* A directory source gets a directory (parents made); a file an empty file, made in its in-root
 * parent with O_EXCL|O_NOFOLLOW so a link planted there is never followed out. */
int open_mount_target(int rootfd, const char *path, bool dir)
{
  if (dir)
    return xopen_in_root(rootfd, path, true);
  int fd = open_in_root(rootfd, path, false);
  if (fd >= 0)
    return fd;
  if (errno != ENOENT)
    die_with_error("open /%s in the rootfs", path);
  char parent[PATH_MAX];
  const char *base = split_parent(path, parent);
  close(xopen_in_root(rootfd, parent, true));
  autofd int dirfd = open_in_root_flags(rootfd, parent, O_RDONLY | O_DIRECTORY);
  if (dirfd < 0)
    die_with_error("open the parent of /%s", path);
  autofd int f = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f < 0 && errno != EEXIST)
    die_with_error("create /%s to bind over", path);
  return xopen_in_root(rootfd, path, false);
}
