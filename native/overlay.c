/* The overlay rootfs: an overlayfs of an image's layers (read-only lowers) and the container's own
 * upper and work dirs, mounted on a staging dir. Only ever called inside a mount namespace of the
 * helper's own, after the tree was made a slave or private: the host never sees this mount. */
#include "helper.h"

#include <stdio.h>
#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/mount.h>

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

/* Layers as fds (FSCONFIG_SET_FD, kernel 6.13+) of one idmapped clone of their common parent:
 * overlayfs takes idmapped layers (not an idmapped overlay mount), and upper and work must share a
 * mount. The files stay with the container's ids unshifted on disk; the overlay shows them mapped. */
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

static void configure_idmapped_layers(int fsfd, const struct overlay_opts *ov, const char *base,
                                      size_t base_len, int userns_fd, uid_t root_uid, gid_t root_gid)
{
  autofd int tree = detached_tree(base, false, userns_fd, false);
  /* Each layer's fd stays open until the overlay is made: overlayfs resolves them only then. */
  static int fds[MAX_LIST + 2];
  size_t n = ov->n_lowers + 2;
  for (size_t i = 0; i < n; i++) {
    const char *layer = i < ov->n_lowers ? ov->lowers[i] : i == ov->n_lowers ? ov->upper : ov->work;
    const char *key = i < ov->n_lowers ? "lowerdir+" : i == ov->n_lowers ? "upperdir" : "workdir";
    fds[i] = openat(tree, layer + base_len, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fds[i] < 0)
      die_with_error("overlay: open %s", layer);
    if (fsconfig(fsfd, FSCONFIG_SET_FD, key, NULL, fds[i]) < 0)
      die_with_error("overlay: %s %s", key, layer);
  }
  /* overlayfs works on its layers with its creator's credentials (the work dir, copy-ups): the
   * creator must be an id the layers' idmapping maps, the container root's host ids. Our
   * capabilities stay (setfsuid only cleared the filesystem ones from the effective set). */
  setfsgid(root_gid);
  setfsuid(root_uid);
  raise_effective_caps();
  int created = fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
  int err = errno;
  setfsuid(0);
  setfsgid(0);
  errno = err;
  if (created < 0)
    die_create_failed(fsfd, ov);
  for (size_t i = 0; i < n; i++)
    close(fds[i]);
}

int detached_overlay(const struct overlay_opts *ov, int userns_fd, uid_t root_uid, gid_t root_gid)
{
  /* As mount_overlay: layers relative to their common parent, resolved at fsconfig time. */
  size_t base_len = common_dir_len(ov);
  autofree char *base = xcalloc(1, base_len + 1);
  memcpy(base, ov->upper, base_len);
  autofd int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    die_with_error("overlay: fsopen");
  /* /proc/mounts shows "overlay / overlay ..." as for mount(2) (the source is free-form). */
  if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0)
    die_with_error("overlay: source");
  if (userns_fd >= 0) {
    configure_idmapped_layers(fsfd, ov, base, base_len, userns_fd, root_uid, root_gid);
  } else {
    size_t len = 16;
    for (size_t i = 0; i < ov->n_lowers; i++)
      len += strlen(ov->lowers[i]) + 1;
    autofree char *lowers = xcalloc(1, len);
    char *p = lowers;
    for (size_t i = 0; i < ov->n_lowers; i++)
      p += sprintf(p, "%s%s", i ? ":" : "", ov->lowers[i] + base_len);
    if (chdir(base) < 0)
      die_with_error("overlay: chdir %s", base);
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir", lowers, 0) < 0 ||
        fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", ov->upper + base_len, 0) < 0 ||
        fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", ov->work + base_len, 0) < 0)
      die_with_error("overlay: configure the overlay (upper %s)", ov->upper);
    if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
      die_create_failed(fsfd, ov);
    if (chdir("/") < 0)
      die_with_error("chdir /");
  }
  int mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
  if (mnt < 0)
    die_with_error("overlay: fsmount (upper %s)", ov->upper);
  return mnt;
}
