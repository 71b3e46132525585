/* tslxc-helper cli JS ARGS...: how bin/tslxc runs the commands people wait on most.
 *
 *   tslxc start NAME          replays the container's start plan (plan.c)
 *   tslxc exec NAME [-t|-T] [--env K=V]... [--cwd DIR] [--user U] [--group G] [--] CMD...
 *                             hands the command to the container's exec server (attach.c);
 *                             its options come from exec's TypeScript definition (build/gen-cli.h)
 *   tslxc stop NAME           signals init and waits for the monitor to end (clistop.c)
 *   tslxc __complete VERB... WORD
 *                             a Tab after a verb that takes a container: the names (clicomplete.c)
 *   tslxc image import FILE [--alias A]...
 *                             starts the import's pass (importpass.c), then node, which adopts it
 *
 * Node's own start-up costs more than either of them does. So bin/tslxc comes here first, and
 * this mode does the command when it can do it exactly as the TypeScript CLI would; anything
 * else, or anything not quite certain (an option it does not know, a container not running, a
 * plan that no longer holds), it hands to the TypeScript CLI unchanged by exec'ing
 * `node JS ARGS...`, which does the work and says what is wrong, if something is. This mode
 * itself never prints an error: its only verdicts are "done" and "ask node". */
#include "helper.h"
#include "gen-cli.h"

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
  const char *name;
  const char *cmd[MAX_LIST]; /* the words after the name, then those after "--" */
  size_t n_cmd;
  const char *env[MAX_LIST];
  size_t n_env;
  const char *cwd, *user, *group;
  bool tty, no_tty;
};

static const struct cli_option *long_option(const char *name, size_t len)
{
  for (size_t i = 0; i < sizeof exec_options / sizeof *exec_options; i++)
    if (strlen(exec_options[i].name) == len && strncmp(exec_options[i].name, name, len) == 0)
      return &exec_options[i];
  return NULL;
}

static const struct cli_option *short_option(char c)
{
  for (size_t i = 0; i < sizeof exec_options / sizeof *exec_options; i++)
    if (exec_options[i].short_name == c)
      return &exec_options[i];
  return NULL;
}

static bool set_option(struct exec_args *a, const struct cli_option *o, const char *value)
{
  switch (o->id) {
  case EXEC_OPT_TTY:
    a->tty = true;
    return true;
  case EXEC_OPT_NO_TTY:
    a->no_tty = true;
    return true;
  case EXEC_OPT_ENV:
    if (a->n_env >= MAX_LIST)
      return false;
    a->env[a->n_env++] = value;
    return true;
  case EXEC_OPT_CWD:
    a->cwd = value;
    return true;
  case EXEC_OPT_USER:
    a->user = value;
    return true;
  case EXEC_OPT_GROUP:
    a->group = value;
    return true;
  default: /* an option of the definition this mode does not pass on: node runs it */
    return false;
  }
}

static bool add_word(struct exec_args *a, const char *w)
{
  if (!a->name) {
    a->name = w;
    return true;
  }
  if (a->n_cmd >= MAX_LIST)
    return false;
  a->cmd[a->n_cmd++] = w;
  return true;
}

/* exec's command line as the TypeScript CLI's fast parser reads it (lib/cli/define.ts, which
 * follows node's util.parseArgs, strict), from the option table generated from exec's definition
 * (build/gen-cli.h): options anywhere before "--"; "--opt V" or "--opt=V"; a value that looks like
 * an option is refused; boolean short options may be grouped (-tT). The name comes before "--";
 * the words after it are the command's. false: anything else, which node handles. */
static bool parse_exec(int argc, char **argv, struct exec_args *a)
{
  int i = 0;
  for (; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--") == 0) {
      i++;
      break;
    }
    if (s[0] != '-' || strcmp(s, "-") == 0) {
      if (!add_word(a, s))
        return false;
    } else if (s[1] == '-') {
      const char *eq = strchr(s + 2, '=');
      const struct cli_option *o = long_option(s + 2, eq ? (size_t)(eq - s - 2) : strlen(s + 2));
      if (!o || (eq && !o->takes_value))
        return false;
      const char *value = eq ? eq + 1 : NULL;
      if (o->takes_value && !value) {
        if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] != '\0'))
          return false;
        value = argv[++i];
      }
      if (!set_option(a, o, value))
        return false;
    } else {
      for (const char *c = s + 1; *c; c++) {
        const struct cli_option *o = short_option(*c);
        if (!o || o->takes_value || !set_option(a, o, NULL))
          return false;
      }
    }
  }
  if (!a->name)
    return false;
  for (; i < argc; i++) {
    if (a->n_cmd >= MAX_LIST)
      return false;
    a->cmd[a->n_cmd++] = argv[i];
  }
  return true;
}

/* cli --print-parse exec ARGS...: the parse above, one fact a line, for the test that compares it
 * with the TypeScript parser's (test/unit/cli/native-exec.test.ts). */
static int print_exec_parse(int argc, char **argv)
{
  static struct exec_args a;
  if (!parse_exec(argc, argv, &a)) {
    puts("refused");
    return 0;
  }
  printf("name %s\n", a.name);
  if (a.tty)
    puts("tty");
  if (a.no_tty)
    puts("no-tty");
  for (size_t i = 0; i < a.n_env; i++)
    printf("env %s\n", a.env[i]);
  if (a.cwd)
    printf("cwd %s\n", a.cwd);
  if (a.user)
    printf("user %s\n", a.user);
  if (a.group)
    printf("group %s\n", a.group);
  for (size_t i = 0; i < a.n_cmd; i++)
    printf("command %s\n", a.cmd[i]);
  return 0;
}

/* The lines of a run dir file; NULL if absent or damaged. */
char **read_list(const char *path, size_t *n)
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
bool thawed(const char *check_path)
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

/* Whether NAME may be a container of an API server, which only node talks to: "REMOTE:NAME" (no
 * container name holds ':'), or any name once `tslxc remote switch` chose a default remote
 * (lib/client/config.ts keeps it in its own file so that this is one access()). */
static bool on_remote(const char *name)
{
  if (strchr(name, ':'))
    return true;
  char p[PATH_MAX];
  if (!client_file(p, sizeof p, "default-remote"))
    return true;
  return access(p, F_OK) == 0;
}

/* The client's FILE (lib/client/config.ts clientDir: TSLXC_CONF, else ~/.config/tslxc); false
 * when there is no such directory to name, which node finds instead (the helper is static: no
 * getpwuid). */
bool client_file(char *p, size_t size, const char *file)
{
  const char *conf = getenv("TSLXC_CONF");
  const char *home = getenv("HOME");
  if ((!conf || !*conf) && (!home || !*home))
    return false;
  int n = conf && *conf ? snprintf(p, size, "%s/%s", conf, file)
                        : snprintf(p, size, "%s/.config/tslxc/%s", home, file);
  return n > 0 && (size_t)n < size;
}

static int cli_exec(int argc, char **argv)
{
  static struct exec_args a;
  if (!parse_exec(argc, argv, &a))
    return -1;
  /* A malformed KEY=VALUE is node's to report (lib/util/keyvalue.ts: a key before the first "="). */
  for (size_t i = 0; i < a.n_env; i++)
    if (a.env[i][0] == '=' || !strchr(a.env[i], '='))
      return -1;
  const char *name = a.name;
  if (on_remote(name))
    return -1;
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
  size_t n_cmd = a.n_cmd;
  if (a.no_tty && a.tty)
    return -1;
  bool tty = a.no_tty ? false : a.tty ? true : (isatty(0) && isatty(1));
  char **out = xcalloc(3 + n_common + 2 * a.n_env + 6 + 1 + (n_cmd ? n_cmd : 2) + 1, sizeof *out);
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
  if (a.group) {
    out[k++] = "--group";
    out[k++] = (char *)a.group;
  }
  if (tty)
    out[k++] = "--pty";
  out[k++] = "--";
  if (n_cmd == 0) {
    out[k++] = "/bin/sh";
    out[k++] = "-l";
  }
  for (size_t i = 0; i < a.n_cmd; i++)
    out[k++] = (char *)a.cmd[i];
  out[k] = NULL;
  return main_attach((int)k, out);
}

/* `image import FILE [--alias A | --alias=A]...` (a unified tarball: one file), as the TypeScript
 * CLI reads it; anything else is node's alone. The aliases are node's to check. */
static void cli_image_import(int argc, char **argv)
{
  const char *file = NULL;
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--alias") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '-')
        return;
      i++;
    } else if (strncmp(s, "--alias=", 8) == 0) {
      continue;
    } else if (s[0] == '-' || file) {
      return;
    } else {
      file = s;
    }
  }
  if (file)
    (void)import_pass_fork(file);
}

int main_cli(int argc, char **argv)
{
  /* argv: "cli" JS VERB ARGS... */
  if (argc < 2)
    die("usage: tslxc-helper cli JS [ARGS...]");
  if (argc >= 3 && strcmp(argv[1], "--print-parse") == 0 && strcmp(argv[2], "exec") == 0)
    return print_exec_parse(argc - 3, argv + 3);
  cli_argv = argv + 1;
  cli_argc = argc - 1;
  if (argc >= 3 && !getenv("TSLXC_HELPER")) {
    const char *verb = argv[2];
    if (strcmp(verb, "start") == 0 && argc == 4 && !on_remote(argv[3]) && cli_start(argv[3]) == 0)
      return 0;
    if (strcmp(verb, "stop") == 0 && argc == 4 && !on_remote(argv[3])) {
      die_hook = die_to_node;
      enum stop_result r = cli_stop(argv[3]);
      if (r == STOP_DONE)
        return 0;
      if (r == STOP_TIMED_OUT) { /* as node's stop after its timeout: kill, then clean up */
        static char *force[4];
        force[0] = cli_argv[0];
        force[1] = "stop";
        force[2] = "--force";
        force[3] = argv[3];
        cli_argv = force;
        cli_argc = 4;
      }
    }
    if (strcmp(verb, "__complete") == 0 && cli_complete(argv[1], argc - 3, argv + 3) == 0)
      return 0;
    if (strcmp(verb, "exec") == 0) {
      int code = cli_exec(argc - 3, argv + 3);
      if (code >= 0)
        return code;
    }
    if (strcmp(verb, "image") == 0 && argc >= 5 && strcmp(argv[3], "import") == 0)
      cli_image_import(argc - 4, argv + 4);
  }
  ask_node();
}
