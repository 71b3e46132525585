/* Device nodes of unix-char and unix-block devices, at a boot (the monitor's --nodes-file) and
 * on a running container (tslxc-helper unixdev, tslxc's hotplug).
 *
 * A node is never made in the container's tree nor on a host filesystem: real root makes it on a
 * tiny tmpfs of its own, created for this node alone in a throwaway private mount namespace (a
 * forked child), and hands back a detached bind mount of that one file, which is then moved onto
 * the node's path in the container, resolved inside its root (openat2 RESOLVE_IN_ROOT). Why:
 *   - an unprivileged container cannot mknod (its user namespace), and a node on a filesystem a
 *     user namespace mounted would be unusable (SB_I_NODEV): this tmpfs belongs to the host's;
 *   - no host path is needed, so it works whatever the host mounts nodev (/run often is), and
 *     nothing stays on the host: the tmpfs goes when the container's mount goes;
 *   - privileged and unprivileged containers, boot and hotplug, take the one same path.
 * What the container may then do with the node is the device cgroup's business (one rule per
 * device, written by tslxc): the node alone grants nothing. */
#include "helper.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* "c|b:MAJOR:MINOR:MODE:UID:GID:/DST" */
void parse_node_spec(const char *spec, struct node_spec *n)
{
  char buf[PATH_MAX + 128];
  xsnprintf(buf, sizeof buf, "%s", spec);
  char *fields[7];
  char *p = buf;
  for (int i = 0; i < 6; i++) {
    fields[i] = p;
    p = strchr(p, ':');
    if (!p)
      die("node %s: expected c|b:MAJOR:MINOR:MODE:UID:GID:/PATH", spec);
    *p++ = '\0';
  }
  fields[6] = p;
  if ((strcmp(fields[0], "c") != 0 && strcmp(fields[0], "b") != 0))
    die("node %s: the type must be c or b", spec);
  n->type = fields[0][0];
  if (!parse_ulong(fields[1], &n->major) || n->major > 0xfff ||
      !parse_ulong(fields[2], &n->minor) || n->minor > 0xfffff)
    die("node %s: bad major or minor number", spec);
  char *end;
  errno = 0;
  n->mode = strtoul(fields[3], &end, 8);
  if (errno || end == fields[3] || *end || n->mode > 0777)
    die("node %s: the mode must be octal, at most 0777", spec);
  if (!parse_ulong(fields[4], &n->uid) || n->uid >= UINT32_MAX ||
      !parse_ulong(fields[5], &n->gid) || n->gid >= UINT32_MAX)
    die("node %s: bad uid or gid", spec);
  if (fields[6][0] != '/' || fields[6][1] == '\0')
    die("node %s: the path must be absolute, and not /", spec);
  xsnprintf(n->dst, sizeof n->dst, "%s", fields[6]);
}

static int node_child_sock = -1;

/* In the child a failure goes back as a line; it must not run the monitor's hook. */
static void node_child_die_hook(const char *line, int err)
{
  (void)err;
  (void)send(node_child_sock, line, strlen(line), MSG_NOSIGNAL);
}

/* The child: its own private mount namespace, a fresh tmpfs holding the node, attached there
 * (open_tree can clone only a mount of the caller's namespace before Linux 6.15), and a clone
 * of the node alone sent back. The namespace, and the tmpfs's attachment in it, end with it. */
__attribute__((noreturn)) static void node_child(const struct node_spec *n, int sock)
{
  node_child_sock = sock;
  die_hook = node_child_die_hook;
  if (unshare(CLONE_NEWNS) < 0)
    die_with_error("node %s: unshare a mount namespace", n->dst);
  if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
    die_with_error("node %s: make / private", n->dst);
  autofd int fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    die_with_error("node %s: fsopen tmpfs", n->dst);
  if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "tslxc-node", 0) < 0 ||
      fsconfig(fsfd, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
      fsconfig(fsfd, FSCONFIG_SET_STRING, "size", "4k", 0) < 0 ||
      fsconfig(fsfd, FSCONFIG_SET_STRING, "nr_inodes", "4", 0) < 0 ||
      fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    die_with_error("node %s: create its tmpfs", n->dst);
  autofd int mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
  if (mnt < 0)
    die_with_error("node %s: fsmount", n->dst);
  /* /dev exists on every host; this namespace is ours alone and dies with us. */
  if (move_mount(mnt, "", AT_FDCWD, "/dev", MOVE_MOUNT_F_EMPTY_PATH) < 0)
    die_with_error("node %s: attach its tmpfs", n->dst);
  umask(0);
  mode_t type = n->type == 'c' ? S_IFCHR : S_IFBLK;
  if (mknodat(mnt, "node", type | (mode_t)n->mode, makedev(n->major, n->minor)) < 0)
    die_with_error("node %s: mknod %c %lu:%lu", n->dst, n->type, n->major, n->minor);
  if (fchownat(mnt, "node", (uid_t)n->uid, (gid_t)n->gid, AT_SYMLINK_NOFOLLOW) < 0)
    die_with_error("node %s: chown to %lu:%lu", n->dst, n->uid, n->gid);
  autofd int tree = open_tree(mnt, "node", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    die_with_error("node %s: clone its mount", n->dst);
  send_tagged_fd(sock, 'n', tree);
  _exit(0);
}

int detached_node(const struct node_spec *n)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    die_with_error("node %s: socketpair", n->dst);
  pid_t pid = fork();
  if (pid < 0)
    die_with_error("node %s: fork", n->dst);
  if (pid == 0) {
    close(sv[0]);
    node_child(n, sv[1]);
  }
  close(sv[1]);
  autofd int sock = sv[0];
  char line[1100] = "";
  int tree;
  ssize_t got = recv_with_fds(sock, line, sizeof line - 1, &tree, 1);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (got == 1 && line[0] == 'n' && tree >= 0)
    return tree;
  if (tree >= 0)
    close(tree);
  const char *prefix = "tslxc-helper: ";
  if (got > 0 && strncmp(line, prefix, strlen(prefix)) == 0)
    die("%s", line + strlen(prefix));
  die("node %s: the child that makes it ended without a result", n->dst);
}

void place_node(int rootfd, int tree, const struct node_spec *n)
{
  autofd int dst = open_mount_target(rootfd, n->dst + 1, false);
  struct stat st;
  if (fstat(dst, &st) < 0)
    die_with_error("stat %s", n->dst);
  if (S_ISDIR(st.st_mode))
    die("cannot put the device node on %s: it is a directory in the container", n->dst);
  if (move_mount(tree, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die_with_error("mount the device node on %s", n->dst);
}

/* After the node's mount is gone, the empty file it was mounted on goes too (the placeholder
 * place_node made): only an empty regular file, never followed through a link. A file the
 * container has put there since is its own and stays. */
static void remove_placeholder(int rootfd, const char *path)
{
  char parent[PATH_MAX];
  xsnprintf(parent, sizeof parent, "%s", path + 1);
  char *slash = strrchr(parent, '/');
  const char *base = slash ? path + 1 + (slash - parent) + 1 : path + 1;
  if (slash)
    *slash = '\0';
  else
    xsnprintf(parent, sizeof parent, ".");
  autofd int dirfd = open_in_root_flags(rootfd, parent, O_RDONLY | O_DIRECTORY);
  if (dirfd < 0)
    return;
  struct stat st;
  if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
    (void)unlinkat(dirfd, base, 0);
}

int main_unixdev(int argc, char **argv)
{
  struct live_device_args args = { 0 };
  parse_live_device_args("unixdev", "c|b:MAJOR:MINOR:MODE:UID:GID:/PATH", argc, argv, &args);
  unsigned long pid = args.pid;
  const char *add = args.add, *remove = args.remove;
  static struct node_spec n;
  if (add)
    parse_node_spec(add, &n);

  autofd int pidfd = sys_pidfd_open(pid);
  if (pidfd < 0)
    die_with_error("open process %lu", pid);
  bool userns = in_other_userns(pid);
  /* Made in the host's namespaces, before entering the container's: see the top of this file. */
  autofd int tree = add ? detached_node(&n) : -1;

  enter_container(pidfd, pid, userns);
  autofd int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    die_with_error("open the container's root");
  umask(022);
  if (add) {
    place_node(rootfd, tree, &n);
  } else {
    remove_disk(rootfd, remove);
    remove_placeholder(rootfd, remove);
  }
  return 0;
}
