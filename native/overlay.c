/* The overlay rootfs: an overlayfs of an image's layers (read-only lowers) and the container's own
 * upper and work dirs, mounted on a staging dir. Only ever called inside a mount namespace of the
 * helper's own, after the tree was made a slave or private: the host never sees this mount. */
#include "helper.h"

#include <stdio.h>
#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <sched.h>

/* overlayfs parses its options with ',' and the lowerdir list with ':' (and '\' escapes them):
 * such paths are refused, not escaped, so what is mounted is exactly what was asked for. */
static void check_layer_path(const char *what, const char *path)
{
  if (!path || path[0] != '/')
    die("overlay: %s %s: expected an absolute path", what, path ? path : "(missing)");
  if (strpbrk(path, ",:\\"))
    die("overlay: %s %s: a layer path cannot hold ',', ':' or '\\'", what, path);
}

void parse_overlay_option(struct overlay_opts *ov, const char *opt, const char *val)
{
  if (strcmp(opt, "--rootfs-lower") == 0) {
    if (ov->n_lowers >= MAX_LIST)
      die("too many --rootfs-lower options (at most %d)", MAX_LIST);
    ov->lowers[ov->n_lowers++] = val;
  } else if (strcmp(opt, "--rootfs-upper") == 0)
    ov->upper = val;
  else if (strcmp(opt, "--rootfs-work") == 0)
    ov->work = val;
}

bool is_overlay_option(const char *opt)
{
  return strcmp(opt, "--rootfs-lower") == 0 || strcmp(opt, "--rootfs-upper") == 0 ||
         strcmp(opt, "--rootfs-work") == 0;
}

void check_overlay_opts(const struct overlay_opts *ov)
{
  if (!ov->n_lowers && !ov->upper && !ov->work)
    return;
  if (!ov->n_lowers || !ov->upper || !ov->work)
    die("overlay: --rootfs-lower, --rootfs-upper and --rootfs-work go together");
  for (size_t i = 0; i < ov->n_lowers; i++)
    check_layer_path("--rootfs-lower", ov->lowers[i]);
  check_layer_path("--rootfs-upper", ov->upper);
  check_layer_path("--rootfs-work", ov->work);
}

/* Length of the longest directory prefix (ending in '/') all layer paths share. */
static size_t common_dir_len(const struct overlay_opts *ov)
{
  const char *first = ov->upper;
  size_t len = strlen(first);
  const char *all[MAX_LIST + 2];
  size_t n = 0;
  for (size_t i = 0; i < ov->n_lowers; i++)
    all[n++] = ov->lowers[i];
  all[n++] = ov->work;
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < len && all[i][k] == first[k])
      k++;
    len = k;
  }
  while (len > 0 && first[len - 1] != '/')
    len--;
  return len ? len : 1;
}

void mount_overlay(const struct overlay_opts *ov, const char *target)
{
  /* The layers are given relative to their common parent (we chdir there): overlayfs shows its
   * options as given in /proc/mounts, and the container should not learn the host's layout. */
  size_t base_len = common_dir_len(ov);
  autofree char *base = xcalloc(1, base_len + 1);
  memcpy(base, ov->upper, base_len);
  if (chdir(base) < 0)
    die_with_error("overlay: chdir %s", base);
  size_t len = 64 + strlen(ov->upper) + strlen(ov->work);
  for (size_t i = 0; i < ov->n_lowers; i++)
    len += strlen(ov->lowers[i]) + 1;
  autofree char *data = xcalloc(1, len);
  char *p = data;
  p += sprintf(p, "lowerdir=");
  for (size_t i = 0; i < ov->n_lowers; i++)
    p += sprintf(p, "%s%s", i ? ":" : "", ov->lowers[i] + base_len);
  sprintf(p, ",upperdir=%s,workdir=%s", ov->upper + base_len, ov->work + base_len);
  debug("overlay: in %s, mount %s on %s", base, data, target);
  if (mount("overlay", target, "overlay", 0, data) < 0)
    die_with_error("mount the overlay (upper %s) on %s", ov->upper, target);
  if (chdir("/") < 0)
    die_with_error("chdir /");
}

/* overlayfs says why in the fs context's log: its last message is the reason. */
static void __attribute__((noreturn)) die_create_failed(int fsfd, const struct overlay_opts *ov)
{
  int err = errno;
  char why[256] = "";
  ssize_t n;
  while ((n = read(fsfd, why, sizeof why - 1)) > 0)
    why[n] = '\0';
  why[strcspn(why, "\n")] = '\0';
  errno = err;
  die_with_error("overlay: create the overlay (upper %s)%s%s", ov->upper, why[0] ? ": " : "", why);
}

/* The layers as strings relative to their common parent, as mount_overlay gives them. */
static void configure_layer_strings(int fsfd, const struct overlay_opts *ov, size_t base_len)
{
  size_t len = 16;
  for (size_t i = 0; i < ov->n_lowers; i++)
    len += strlen(ov->lowers[i]) + 1;
  autofree char *lowers = xcalloc(1, len);
  char *p = lowers;
  for (size_t i = 0; i < ov->n_lowers; i++)
    p += sprintf(p, "%s%s", i ? ":" : "", ov->lowers[i] + base_len);
  if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir", lowers, 0) < 0 ||
      fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", ov->upper + base_len, 0) < 0 ||
      fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", ov->work + base_len, 0) < 0)
    die_with_error("overlay: configure the overlay (upper %s)", ov->upper);
}

static int layer_child_sock = -1;

/* In the layer child a failure goes to the monitor as a line; it must not run the monitor's hook. */
static void layer_child_die_hook(const char *line, int err)
{
  (void)err;
  (void)send(layer_child_sock, line, strlen(line), MSG_NOSIGNAL);
}

/* An overlay of idmapped layers: overlayfs takes idmapped layers (kernel 5.19+), not an idmapped
 * overlay mount. A child of ours, in a private mount namespace of its own, attaches one idmapped
 * clone of the layers' common parent over that parent (upper and work must share a mount), makes
 * the overlay from there with the layers given relative to it, and passes the overlay's detached
 * mount back; the namespace dies with the child, the overlay keeps its layers. overlayfs works on
 * its layers with its creator's credentials (the work dir, copy-ups), which must be ids the
 * layers' idmapping maps: the child creates it with fsuid/fsgid set to the container root's host
 * ids, its effective capabilities raised again (setfsuid cleared the filesystem ones). */
static int idmapped_overlay(int fsfd, const struct overlay_opts *ov, const char *base,
                            size_t base_len, int userns_fd, uid_t root_uid, gid_t root_gid)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    die_with_error("overlay: socketpair");
  pid_t pid = fork();
  if (pid < 0)
    die_with_error("overlay: fork");
  if (pid == 0) {
    close(sv[0]);
    layer_child_sock = sv[1];
    die_hook = layer_child_die_hook;
    if (unshare(CLONE_NEWNS) < 0)
      die_with_error("overlay: unshare a mount namespace");
    if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
      die_with_error("overlay: make / private");
    autofd int tree = detached_tree(base, false, userns_fd, false);
    if (move_mount(tree, "", AT_FDCWD, base, MOVE_MOUNT_F_EMPTY_PATH) < 0)
      die_with_error("overlay: attach the idmapped layers on %s", base);
    if (chdir(base) < 0)
      die_with_error("overlay: chdir %s", base);
    configure_layer_strings(fsfd, ov, base_len);
    setfsgid(root_gid);
    setfsuid(root_uid);
    raise_effective_caps();
    if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
      die_create_failed(fsfd, ov);
    int mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
    if (mnt < 0)
      die_with_error("overlay: fsmount (upper %s)", ov->upper);
    send_tagged_fd(sv[1], 'o', mnt);
    _exit(0);
  }
  close(sv[1]);
  autofd int sock = sv[0];
  char line[1100] = "";
  int mnt;
  ssize_t n = recv_with_fds(sock, line, sizeof line - 1, &mnt, 1);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (n > 0 && mnt >= 0)
    return mnt;
  if (mnt >= 0)
    close(mnt);
  const char *prefix = "tslxc-helper: ";
  if (n > 0 && strncmp(line, prefix, strlen(prefix)) == 0)
    die("%s", line + strlen(prefix));
  die("overlay: the child that makes the idmapped overlay ended without a result");
}

int detached_overlay(const struct overlay_opts *ov, int userns_fd, uid_t root_uid, gid_t root_gid)
{
  size_t base_len = common_dir_len(ov);
  autofree char *base = xcalloc(1, base_len + 1);
  memcpy(base, ov->upper, base_len);
  autofd int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    die_with_error("overlay: fsopen");
  /* /proc/mounts shows "overlay / overlay ..." as for mount(2) (the source is free-form). */
  if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0)
    die_with_error("overlay: source");
  if (userns_fd >= 0)
    return idmapped_overlay(fsfd, ov, base, base_len, userns_fd, root_uid, root_gid);
  /* As mount_overlay: layers relative to their common parent, resolved from there. */
  if (chdir(base) < 0)
    die_with_error("overlay: chdir %s", base);
  configure_layer_strings(fsfd, ov, base_len);
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    die_create_failed(fsfd, ov);
  if (chdir("/") < 0)
    die_with_error("chdir /");
  int mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
  if (mnt < 0)
    die_with_error("overlay: fsmount (upper %s)", ov->upper);
  return mnt;
}
