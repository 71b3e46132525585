/* The overlay rootfs: an overlayfs of an image's layers (read-only lowers) and the container's own
 * upper and work dirs, mounted on a staging dir. Only ever called inside a mount namespace of the
 * helper's own, after the tree was made a slave or private: the host never sees this mount. */
#include "helper.h"

#include <stdio.h>
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
