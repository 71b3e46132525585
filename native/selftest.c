/* tslxc-helper selftest WHAT ARG: the C side of the rules shared with lib/ (layout.c), for
 * test/unit/state/one-source.test.ts to hold against the TypeScript side on the same inputs.
 * Not for users (not in the usage); it changes nothing.
 *
 *   selftest name NAME... a line per NAME: "valid" or "invalid" (as a container name)
 *   selftest paths NAME   "ROLE PATH" lines: the paths the fast paths use for NAME under
 *                         TSLXC_DIR / TSLXC_RUN_DIR; exit 1 (nothing printed) when they would
 *                         hand the command to node instead
 *   selftest pidref TEXT...  a line per TEXT: "PID STARTTIME" as read from a pid file holding
 *                         TEXT, or "none"
 *   selftest alive NAME   NAME's init pid if the exec fast path takes it as alive; exit 1 if not */
#include "helper.h"

#include <stdio.h>

static int print_paths(const char *name)
{
  static const struct {
    const char *role, *file;
  } run_files[] = {
    { "init-pid", LAYOUT_INSTANCE_RUN_INIT_PID },
    { "monitor-pid", LAYOUT_INSTANCE_RUN_MONITOR_PID },
    { "exec-socket", LAYOUT_INSTANCE_RUN_EXEC_SOCKET },
    { "console-socket", LAYOUT_INSTANCE_RUN_CONSOLE_SOCKET },
    { "exec-check", LAYOUT_INSTANCE_RUN_EXEC_CHECK },
    { "attach-args", LAYOUT_INSTANCE_RUN_ATTACH_ARGS },
  };
  char p[PATH_MAX];
  if (!container_config_path(p, name))
    return 1;
  printf("config %s\n", p);
  if (!start_plan_path(p, name))
    return 1;
  printf("plan %s\n", p);
  for (size_t i = 0; i < N_ELEMENTS(run_files); i++) {
    if (!container_run_path(p, name, run_files[i].file))
      return 1;
    printf("%s %s\n", run_files[i].role, p);
  }
  return 0;
}

int main_selftest(int argc, char **argv)
{
  if (argc < 3)
    die("usage: tslxc-helper selftest (name|pidref) ARG... | selftest (paths|alive) NAME");
  const char *what = argv[1];
  if (strcmp(what, "name") == 0) {
    for (int i = 2; i < argc; i++)
      printf("%s\n", valid_instance_name(argv[i]) ? "valid" : "invalid");
    return 0;
  }
  if (strcmp(what, "pidref") == 0) {
    for (int i = 2; i < argc; i++) {
      pid_t pid;
      unsigned long long start;
      if (pid_ref_parse(argv[i], &pid, &start))
        printf("%d %llu\n", (int)pid, start);
      else
        printf("none\n");
    }
    return 0;
  }
  if (argc != 3)
    die("usage: tslxc-helper selftest %s NAME", what);
  if (strcmp(what, "paths") == 0)
    return print_paths(argv[2]);
  if (strcmp(what, "alive") == 0) {
    pid_t pid = instance_init_alive(argv[2]);
    if (pid <= 0)
      return 1;
    printf("%d\n", (int)pid);
    return 0;
  }
  die("selftest: unknown check '%s' (expected name, paths, pidref or alive)", what);
}
