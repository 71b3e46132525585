/* tslxc-helper cli JS ARGS...: how bin/tslxc runs the two commands people wait on most.
 *
 *   tslxc start NAME          replays the container's start plan (plan.c)
 *   tslxc exec NAME [-t|-T] [--env K=V]... [--cwd DIR] [--user U] [--] CMD...
 *                             hands the command to the container's exec server (attach.c)
 *
 * Node's own start-up costs more than either of them does. So bin/tslxc comes here first, and
 * this mode does the command when it can do it exactly as the TypeScript CLI would; anything
 * else, or anything not quite certain (an option it does not know, a container not running, a
 * plan that no longer holds), it hands to the TypeScript CLI unchanged by exec'ing
 * `node JS ARGS...`, which does the work and says what is wrong, if something is. This mode
 * itself never prints an error: its only verdicts are "done" and "ask node". */
#include "helper.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

static char **cli_argv; /* JS ARGS... */
static int cli_argc;

static __attribute__((noreturn)) void ask_node(void)
{
  char **argv = xcalloc(cli_argc + 2, sizeof *argv);
  argv[0] = "node";
  for (int i = 0; i < cli_argc; i++)
    argv[i + 1] = cli_argv[i];
  execvp("node", argv);
  die_with_error("cannot run node for \"tslxc %s\"", cli_argc > 1 ? cli_argv[1] : "");
}

/* A failure deep in a mode we called (it dies): undo the plan's work, then node. */
static void die_to_node(const char *line, int err)
{
  (void)line;
  (void)err;
  plan_undo();
  ask_node();
}

static int cli_start(const char *name)
{
  char plan[PATH_MAX];
  if (!start_plan_path(plan, name))
    return -1;
  /* The monitor is forked from here on: run from the sealed copy, as the start mode does. */
  reexec_sealed(helper_argv);
  die_hook = die_to_node;
  int rc = plan_start(plan);
  if (rc != 0) {
    plan_undo();
    /* A plan that failed is not tried again: the TypeScript start writes a fresh one. */
    if (!plan_busy())
      (void)unlink(plan);
  }
  return rc;
}

/* ---- exec ---- */

struct exec_args {
  const char *pos[MAX_LIST];
  size_t n_pos;
  const char *env[MAX_LIST];
  size_t n_env;
  const char *cwd, *user;
  int tty; /* -1 unset, 0/1 */
  bool no_tty;
};

/* An option's value: "--opt=V" or "--opt V". */
static const char *opt_value(const char *arg, const char *opt, int argc, char **argv, int *i)
{
  size_t n = strlen(opt);
  if (strncmp(arg, opt, n) != 0)
    return NULL;
  if (arg[n] == '=')
    return arg + n + 1;
  if (arg[n] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

/* exec's options as lib/cli/options/exec.ts defines them (util.parseArgs semantics: options may
 * come anywhere before "--"). false: something else, which node handles. */
static bool parse_exec(int argc, char **argv, struct exec_args *a)
{
  a->tty = -1;
  bool dashdash = false;
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i], *v;
    if (dashdash || s[0] != '-' || strcmp(s, "-") == 0) {
      if (a->n_pos >= MAX_LIST)
        return false;
      a->pos[a->n_pos++] = s;
    } else if (strcmp(s, "--") == 0)
      dashdash = true;
    else if (strcmp(s, "-t") == 0 || strcmp(s, "--tty") == 0 || strcmp(s, "--force-interactive") == 0)
      a->tty = 1;
    else if (strcmp(s, "-T") == 0 || strcmp(s, "--no-tty") == 0 || strcmp(s, "--force-noninteractive") == 0)
      a->no_tty = true;
    else if ((v = opt_value(s, "--env", argc, argv, &i))) {
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || a->n_env >= MAX_LIST)
        return false;
      a->env[a->n_env++] = v;
    } else if ((v = opt_value(s, "--cwd", argc, argv, &i)))
      a->cwd = v;
    else if ((v = opt_value(s, "--user", argc, argv, &i)))
      a->user = v;
    else
      return false;
  }
  return a->n_pos >= 1;
}

/* The lines of a run dir file; NULL if absent or damaged. */
static char **read_list(const char *path, size_t *n)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > 65536) {
    close(fd);
    return NULL;
  }
  char *buf = xcalloc(st.st_size + 1, 1);
  ssize_t got = read_retry(fd, buf, st.st_size);
  close(fd);
  if (got != st.st_size || buf[got - 1] != '\n' || memchr(buf, '\0', got))
    return NULL;
  size_t count = 0;
  for (ssize_t i = 0; i < got; i++)
    if (buf[i] == '\n') {
      buf[i] = '\0';
      count++;
    }
  char **list = xcalloc(count + 1, sizeof *list);
  for (char *p = buf; p < buf + got; p += strlen(p) + 1)
    list[(*n)++] = p;
  return list;
}

/* exec.check: "FILE\nLINE\n": the container is thawed while FILE holds LINE (one of its lines). */
static bool thawed(const char *check_path)
{
  char check[PATH_MAX + 64];
  if (read_small_file_at(AT_FDCWD, check_path, check, sizeof check) <= 0)
    return false;
  char *nl = strchr(check, '\n');
  if (!nl)
    return false;
  *nl = '\0';
  char *line = nl + 1;
  line[strcspn(line, "\n")] = '\0';
  char state[256];
  if (read_small_file_at(AT_FDCWD, check, state, sizeof state) <= 0)
    return false;
  for (char *l = strtok(state, "\n"); l; l = strtok(NULL, "\n"))
    if (strcmp(l, line) == 0)
      return true;
  return false;
}

static int cli_exec(int argc, char **argv)
{
  static struct exec_args a;
  if (!parse_exec(argc, argv, &a))
    return -1;
  const char *name = a.pos[0];
  char p[PATH_MAX];
  if (!container_config_path(p, name) || access(p, F_OK) < 0)
    return -1;
  pid_t pid = instance_init_alive(name);
  if (pid <= 0)
    return -1;
  if (!container_run_path(p, name, LAYOUT_INSTANCE_RUN_EXEC_CHECK) || !thawed(p))
    return -1;
  if (!container_run_path(p, name, LAYOUT_INSTANCE_RUN_EXEC_SOCKET) || access(p, F_OK) < 0)
    return -1;
  if (!container_run_path(p, name, LAYOUT_INSTANCE_RUN_ATTACH_ARGS))
    return -1;
  size_t n_common = 0;
  char **common = read_list(p, &n_common);
  if (!common)
    return -1;

  /* As lib/cli/options/exec.ts's wantsTty and `lxc exec`: -t forces a pty, -T forbids it (both:
   * node says it is an error), else a pty when stdin and stdout are terminals. Without one, attach
   * still never passes a terminal of ours: it relays it through pipes. */
  size_t n_cmd = a.n_pos - 1;
  if (a.no_tty && a.tty == 1)
    return -1;
  bool tty = a.no_tty ? false : a.tty == 1 ? true : (isatty(0) && isatty(1));
  char **out = xcalloc(3 + n_common + 2 * a.n_env + 4 + 1 + (n_cmd ? n_cmd : 2) + 1, sizeof *out);
  size_t k = 0;
  static char pid_text[16];
  xsnprintf(pid_text, sizeof pid_text, "%d", (int)pid);
  out[k++] = "attach";
  out[k++] = "--pid";
  out[k++] = pid_text;
  for (size_t i = 0; i < n_common; i++)
    out[k++] = common[i];
  for (size_t i = 0; i < a.n_env; i++) {
    out[k++] = "--env";
    out[k++] = (char *)a.env[i];
  }
  if (a.cwd) {
    out[k++] = "--cwd";
    out[k++] = (char *)a.cwd;
  }
  if (a.user) {
    out[k++] = "--user";
    out[k++] = (char *)a.user;
  }
  if (tty)
    out[k++] = "--pty";
  out[k++] = "--";
  if (n_cmd == 0) {
    out[k++] = "/bin/sh";
    out[k++] = "-l";
  }
  for (size_t i = 1; i < a.n_pos; i++)
    out[k++] = (char *)a.pos[i];
  out[k] = NULL;
  return main_attach((int)k, out);
}

int main_cli(int argc, char **argv)
{
  /* argv: "cli" JS VERB ARGS... */
  if (argc < 2)
    die("usage: tslxc-helper cli JS [ARGS...]");
  cli_argv = argv + 1;
  cli_argc = argc - 1;
  if (argc >= 3 && !getenv("TSLXC_HELPER")) {
    const char *verb = argv[2];
    if (strcmp(verb, "start") == 0 && argc == 4 && cli_start(argv[3]) == 0)
      return 0;
    if (strcmp(verb, "exec") == 0) {
      int code = cli_exec(argc - 3, argv + 3);
      if (code >= 0)
        return code;
    }
  }
  ask_node();
}
