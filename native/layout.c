/* The rules the helper shares with lib/: a container's name, where its files are, and whether its
 * init is alive. Their data is lib/state/layout.json, which lib/ imports and the build turns into
 * build/gen-layout.h for this file (scripts/gen-native-layout.mjs); only the reading of that data
 * is written here, and test/unit/state/one-source.test.ts runs both sides on the same inputs
 * (through the selftest mode). */
#include "helper.h"

#include <fcntl.h>
#include <stdio.h>

/* As lib/util/names.ts's validateInstanceName, from the same data: only NAME_CHARS, at most
 * NAME_MAX_LENGTH of them, none of NAME_NOT_AT_EDGES first or last, not all of NAME_NOT_ONLY. */
bool valid_instance_name(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > LAYOUT_NAME_MAX_LENGTH)
    return false;
  if (strchr(LAYOUT_NAME_NOT_AT_EDGES, s[0]) || strchr(LAYOUT_NAME_NOT_AT_EDGES, s[n - 1]))
    return false;
  bool only = true;
  for (size_t i = 0; i < n; i++) {
    if (!strchr(LAYOUT_NAME_CHARS, s[i]))
      return false;
    if (!strchr(LAYOUT_NAME_NOT_ONLY, s[i]))
      only = false;
  }
  return !only;
}

/* A root (TSLXC_DIR, TSLXC_RUN_DIR) as lib/state/paths.ts resolves it: the variable, else the
 * default; an absolute one normalised as path.resolve does ("//" and "." parts dropped, ".." taking
 * the part before it away, no trailing "/"), into buf. A relative one is NULL: it depends on a
 * working directory, which only node should judge, so the caller hands the command to node. */
static const char *root_dir(const char *var, const char *dflt, char buf[PATH_MAX])
{
  const char *v = getenv(var);
  if (!v || !*v)
    v = dflt;
  if (v[0] != '/')
    return NULL;
  size_t n = 0;
  buf[0] = '\0';
  for (const char *p = v; *p;) {
    while (*p == '/')
      p++;
    size_t len = strcspn(p, "/");
    if (len == 0 || (len == 1 && p[0] == '.')) {
      /* nothing to add */
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      char *slash = strrchr(buf, '/');
      n = slash ? (size_t)(slash - buf) : 0;
      buf[n] = '\0';
    } else {
      if (n + 1 + len >= PATH_MAX)
        return NULL;
      buf[n++] = '/';
      memcpy(buf + n, p, len);
      n += len;
      buf[n] = '\0';
    }
    p += len;
  }
  return n == 0 ? "/" : buf;
}

const char *state_root(void)
{
  static char buf[PATH_MAX];
  return root_dir(LAYOUT_ROOTS_STATE_ENV, LAYOUT_ROOTS_STATE_DEFAULT, buf);
}

const char *run_root(void)
{
  static char buf[PATH_MAX];
  return root_dir(LAYOUT_ROOTS_RUN_ENV, LAYOUT_ROOTS_RUN_DEFAULT, buf);
}

/* ROOT/SUB/NAME[/FILE] into buf; false (nothing built) when a root or the name is not one both
 * sides agree on, or the path does not fit. */
static bool build_path(char buf[PATH_MAX], const char *root, const char *sub, const char *name,
                       const char *file)
{
  if (!root || !valid_instance_name(name))
    return false;
  if (strcmp(root, "/") == 0)
    root = ""; /* path.join("/", "containers") is "/containers" */
  int n = file ? snprintf(buf, PATH_MAX, "%s/%s/%s/%s", root, sub, name, file)
               : snprintf(buf, PATH_MAX, "%s/%s/%s", root, sub, name);
  return n > 0 && n < PATH_MAX;
}

bool container_config_path(char buf[PATH_MAX], const char *name)
{
  return build_path(buf, state_root(), LAYOUT_STATE_CONTAINERS, name, LAYOUT_CONTAINER_CONFIG);
}

bool container_run_path(char buf[PATH_MAX], const char *name, const char *file)
{
  return build_path(buf, run_root(), LAYOUT_RUN_CONTAINERS, name, file);
}

bool start_plan_path(char buf[PATH_MAX], const char *name)
{
  return build_path(buf, run_root(), LAYOUT_RUN_PLANS, name, NULL);
}

/* As lib/util/proc.ts's parseRef: "PID STARTTIME", decimal, one space, an optional newline. */
bool pid_ref_parse(const char *text, pid_t *pid, unsigned long long *start)
{
  const char *p = text;
  if (*p < '1' || *p > '9')
    return false;
  unsigned long long v = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++)
    v = v * 10 + (unsigned long long)(*p - '0');
  if (digits > 10 || v > INT_MAX || *p++ != ' ')
    return false;
  *pid = (pid_t)v;
  if (*p < '0' || *p > '9')
    return false;
  /* lib/ takes up to 20 digits whose value is below 2^53 (JavaScript's exact integers). */
  const unsigned long long max_start = (1ULL << 53) - 1;
  v = 0;
  digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    v = v * 10 + (unsigned long long)(*p - '0');
    if (v > max_start || digits >= 20)
      return false;
  }
  *start = v;
  return strcmp(p, "\n") == 0 || *p == '\0';
}

/* The container's init if it is alive (lib/state/runtime.ts liveness's initAlive): init.pid
 * names a process that still has the recorded start time and is not a zombie. 0 if not. */
pid_t instance_init_alive(const char *name)
{
  char path[PATH_MAX], text[64];
  pid_t pid;
  unsigned long long recorded, now;
  if (!container_run_path(path, name, LAYOUT_INSTANCE_RUN_INIT_PID))
    return 0;
  /* A NUL inside is damage to lib/ (its text would not match), so it is here too. */
  ssize_t n = read_small_file_at(AT_FDCWD, path, text, sizeof text);
  if (n <= 0 || strlen(text) != (size_t)n)
    return 0;
  if (!pid_ref_parse(text, &pid, &recorded) || !proc_start_time(pid, &now) || now != recorded)
    return 0;
  return pid;
}
