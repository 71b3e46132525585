/* The node addon lib/util/lock.ts loads (build/tslxc_lock.node): lock.c's calls, nothing more.
 * Node has no flock(2); waiting is done in JavaScript (lock_take never blocks), so the event loop
 * never stops on a held lock.
 *
 *   take(path)        -> fd, or -1 when held; throws (with .code) when it cannot be taken
 *   release(path, fd)
 *   holder(path)      -> the holder's PID, 0 if unknown
 *   held(path)        -> boolean
 *   closeOnExec(fd)   sets FD_CLOEXEC on an fd this process inherited (a lock handed over; node
 *                     has no fcntl), so that its children do not hold it too */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "lock.h"

#define PATH_BYTES 4096

/* The string argument I; false (with a pending exception) if it is not one or is too long. */
static bool path_arg(napi_env env, napi_value arg, char *path)
{
  size_t len = 0;
  if (napi_get_value_string_utf8(env, arg, path, PATH_BYTES, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "lock path: a string is needed");
    return false;
  }
  if (len >= PATH_BYTES - 1) {
    napi_throw_range_error(env, "ENAMETOOLONG", "lock path too long");
    return false;
  }
  return true;
}

static bool args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "lock: missing arguments");
    return false;
  }
  return true;
}

static napi_value int_value(napi_env env, int v)
{
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value take(napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  char path[PATH_BYTES];
  if (!args(env, info, 1, argv) || !path_arg(env, argv[0], path))
    return NULL;
  int fd = lock_take(path);
  if (fd >= 0)
    return int_value(env, fd);
  if (errno == EWOULDBLOCK)
    return int_value(env, -1);
  int err = errno;
  char msg[PATH_BYTES + 128];
  snprintf(msg, sizeof msg, "%s: %s", path, strerror(err));
  const char *name = strerrorname_np(err);
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

static napi_value release(napi_env env, napi_callback_info info)
{
  napi_value argv[2];
  char path[PATH_BYTES];
  int32_t fd;
  if (!args(env, info, 2, argv) || !path_arg(env, argv[0], path))
    return NULL;
  if (napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "lock release: a file descriptor is needed");
    return NULL;
  }
  lock_release(path, fd);
  return NULL;
}

static napi_value holder(napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  char path[PATH_BYTES];
  if (!args(env, info, 1, argv) || !path_arg(env, argv[0], path))
    return NULL;
  return int_value(env, (int)lock_holder(path));
}

static napi_value held(napi_env env, napi_callback_info info)
{
  napi_value argv[1], out;
  char path[PATH_BYTES];
  if (!args(env, info, 1, argv) || !path_arg(env, argv[0], path))
    return NULL;
  napi_get_boolean(env, lock_held(path), &out);
  return out;
}

static napi_value close_on_exec(napi_env env, napi_callback_info info)
{
  napi_value argv[1];
  int32_t fd;
  if (!args(env, info, 1, argv))
    return NULL;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "closeOnExec: a file descriptor is needed");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
    char msg[64];
    snprintf(msg, sizeof msg, "fd %d: %s", fd, strerror(errno));
    const char *name = strerrorname_np(errno);
    napi_throw_error(env, name ? name : "EIO", msg);
  }
  return NULL;
}

NAPI_MODULE_INIT()
{
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = { { "take", take },
              { "release", release },
              { "holder", holder },
              { "held", held },
              { "closeOnExec", close_on_exec } };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return NULL;
  }
  return exports;
}
