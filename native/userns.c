/* The user namespace: id maps (--uidmap/--gidmap), becoming the namespace's root, entering a
 * running container's user namespace, and the detached (optionally idmapped) mounts the monitor
 * prepares for an unprivileged container's child. See README.md, "User namespace". */
#include "helper.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* "INSIDE:OUTSIDE:COUNT", three decimal numbers, COUNT > 0, no range past 2^32-1. */
void parse_idmap_option(struct id_map *map, const char *opt, const char *val)
{
  if (map->n >= MAX_ID_RANGES)
    die("%s: at most %d ranges", opt, MAX_ID_RANGES);
  char buf[96];
  xsnprintf(buf, sizeof buf, "%s", val);
  char *fields[3];
  char *save = NULL;
  size_t n = 0;
  for (char *tok = strtok_r(buf, ":", &save); tok && n < 3; tok = strtok_r(NULL, ":", &save))
    fields[n++] = tok;
  unsigned long v[3];
  if (n != 3 || strtok_r(NULL, ":", &save) || !parse_ulong(fields[0], &v[0]) ||
      !parse_ulong(fields[1], &v[1]) || !parse_ulong(fields[2], &v[2]) || v[2] == 0 ||
      v[0] + v[2] > 4294967295UL || v[1] + v[2] > 4294967295UL)
    die("%s %s: expected INSIDE:OUTSIDE:COUNT", opt, val);
  map->ranges[map->n++] = (struct id_range){ v[0], v[1], v[2] };
}

/* The host id container root maps to (the map is validated: ranges hold id 0 at most once). */
static bool map_root(const struct id_map *map, unsigned long *host)
{
  for (size_t i = 0; i < map->n; i++)
    if (map->ranges[i].inside == 0) {
      *host = map->ranges[i].outside;
      return true;
    }
  return false;
}

uid_t mapped_root_uid(const struct id_map *uids)
{
  unsigned long host = 0;
  map_root(uids, &host);
  return (uid_t)host;
}

gid_t mapped_root_gid(const struct id_map *gids)
{
  unsigned long host = 0;
  map_root(gids, &host);
  return (gid_t)host;
}

void check_idmaps(const struct id_map *uids, const struct id_map *gids)
{
  if (!uids->n && !gids->n)
    return;
  unsigned long root;
  if (!uids->n || !gids->n)
    die("--uidmap and --gidmap go together");
  if (!map_root(uids, &root) || !map_root(gids, &root))
    die("--uidmap/--gidmap: the maps must map the container's root (inside id 0)");
}

static void write_map(pid_t pid, const char *file, const struct id_map *map)
{
  char content[MAX_ID_RANGES * 40];
  size_t len = 0;
  for (size_t i = 0; i < map->n; i++)
    len += snprintf(content + len, sizeof content - len, "%lu %lu %lu\n", map->ranges[i].inside,
                    map->ranges[i].outside, map->ranges[i].count);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  /* One write(2) holds the whole map: the kernel takes a map only once. */
  autofd int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, content, len) != (ssize_t)len)
    die_with_error("write %s", path);
}

void write_id_maps(pid_t pid, const struct id_map *uids, const struct id_map *gids)
{
  write_map(pid, "uid_map", uids);
  write_map(pid, "gid_map", gids);
}

bool try_become_userns_root(void)
{
  /* Host root's supplementary groups are not mapped: drop them (setgroups is allowed, the map
   * was written by a privileged parent). Then the namespace's root, which keeps the capabilities
   * clone or setns gave us in this namespace. */
  return setgroups(0, NULL) == 0 && setresgid(0, 0, 0) == 0 && setresuid(0, 0, 0) == 0;
}

void become_userns_root(void)
{
  if (!try_become_userns_root())
    die_with_error("become root of the user namespace");
}

bool in_other_userns(pid_t pid)
{
  char path[64];
  struct stat mine, theirs;
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  if (stat(path, &theirs) < 0)
    die_with_error("stat %s", path);
  if (stat("/proc/self/ns/user", &mine) < 0)
    die_with_error("stat /proc/self/ns/user");
  return mine.st_ino != theirs.st_ino || mine.st_dev != theirs.st_dev;
}

/* A detached copy of PATH's mount (OPEN_TREE_CLONE: a bind that is not attached anywhere yet),
 * idmapped through USERNS_FD when it is >= 0, read-only when asked. The caller is real root (the
 * superblock's user namespace is the host's: only there may MOUNT_ATTR_IDMAP be set). */
int detached_tree(const char *path, bool recursive, int userns_fd, bool ro)
{
  int fd = open_tree(AT_FDCWD, path,
                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (fd < 0)
    die_with_error("open_tree %s", path);
  set_tree_attrs(fd, path, recursive, userns_fd, ro);
  return fd;
}

void set_tree_attrs(int fd, const char *what, bool recursive, int userns_fd, bool ro)
{
  if (userns_fd >= 0) {
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = userns_fd };
    if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) <
        0)
      die_with_error("idmap the mount of %s (its filesystem may not support idmapped mounts)",
                     what);
  }
  if (ro && sys_mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
                              MOUNT_ATTR_RDONLY, 0) < 0)
    die_with_error("make %s read-only", what);
}

/* ---- idmap-probe: can DIR's filesystem be idmapped here? ---- */

/* A throwaway user namespace (a child that waits on a pipe) with one mapping, as an fd. */
static int scratch_userns(pid_t *child, int *hold)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    die_with_error("pipe");
  pid_t pid = raw_clone(CLONE_NEWUSER);
  if (pid < 0)
    die_with_error("clone a user namespace");
  if (pid == 0) {
    char c;
    close(p[1]);
    (void)read(p[0], &c, 1);
    _exit(0);
  }
  close(p[0]);
  static const struct id_map map = { .ranges = { { 0, 4000000000UL, 65536 } }, .n = 1 };
  write_id_maps(pid, &map, &map);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die_with_error("open %s", path);
  *child = pid;
  *hold = p[1];
  return fd;
}

int main_idmap_probe(int argc, char **argv)
{
  if (argc != 2 || argv[1][0] != '/')
    die("usage: tslxc-helper idmap-probe DIR");
  pid_t child;
  int hold;
  autofd int userns = scratch_userns(&child, &hold);
  autofd int tree = open_tree(AT_FDCWD, argv[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  int err = 0;
  if (tree < 0) {
    err = errno;
  } else {
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = userns };
    if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
      err = errno;
  }
  close(hold);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
    ;
  if (err) {
    errno = err;
    die_with_error("idmapped mount of %s", argv[1]);
  }
  return 0;
}

/* ---- bind specs (--bind SRC:DST[:OPTS]) ---- */

void parse_bind_spec(const char *spec, struct bind_spec *b)
{
  xsnprintf(b->src, sizeof b->src, "%s", spec);
  char *dst = strchr(b->src, ':');
  if (b->src[0] != '/' || !dst || dst[1] != '/')
    die("--bind %s: expected /SRC:/DST[:OPTIONS]", spec);
  *dst++ = '\0';
  b->ro = b->idmap = b->optional = false;
  char *opts = strchr(dst, ':');
  if (opts) {
    *opts++ = '\0';
    char *save = NULL;
    for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
      if (strcmp(o, "ro") == 0)
        b->ro = true;
      else if (strcmp(o, "idmap") == 0)
        b->idmap = true;
      else if (strcmp(o, "optional") == 0)
        b->optional = true;
      else
        die("--bind %s: unknown option \"%s\" (ro, idmap, optional)", spec, o);
    }
  }
  xsnprintf(b->dst, sizeof b->dst, "%s", dst);
}

/* ---- fds over the sync socket: one SEQPACKET message per fd, a tag byte as its data ---- */

void send_tagged_fd(int sock, char tag, int fd)
{
  if (send_with_fds(sock, &tag, 1, &fd, fd >= 0 ? 1 : 0, 0) < 0)
    die_with_error("send to the container's init");
}

int recv_tagged_fd(int sock, char *tag)
{
  int fd;
  if (recv_with_fds(sock, tag, 1, &fd, 1) != 1) {
    if (fd >= 0)
      close(fd);
    return -2; /* the monitor is gone */
  }
  return fd;
}
