/* tslxc-helper start: parse options, detach a monitor, wait for its one-line verdict. */
#include "helper.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>

static int status_fd = -1;

/* Until the monitor takes over, failures travel to the caller over the status pipe too. */
static void status_die_hook(const char *line, int err)
{
  (void)err;
  char buf[1100];
  int n = snprintf(buf, sizeof buf, "ERR %s\n", line);
  if (n > (int)sizeof buf - 1)
    n = sizeof buf - 1;
  (void)write_all(status_fd, buf, n);
}

static const char *need_arg(int argc, char **argv, int i)
{
  if (i + 1 >= argc)
    die("option %s needs a value", argv[i]);
  return argv[i + 1];
}

static void add(const char **list, size_t *n, const char *value, const char *opt)
{
  if (*n >= MAX_LIST)
    die("too many %s options (at most %d)", opt, MAX_LIST);
  list[(*n)++] = value;
}

void load_binds(struct start_opts *o)
{
  o->n_binds = 0;
  free(o->disks_text);
  o->disks_text = NULL;
  if (o->disks_file) {
    o->disks_text = read_whole_file(o->disks_file);
    if (!o->disks_text && errno != ENOENT)
      die_with_error("read %s", o->disks_file);
    char *save = NULL;
    for (char *line = o->disks_text ? strtok_r(o->disks_text, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
      static struct bind_spec check;
      parse_bind_spec(line, &check);
      add(o->binds, &o->n_binds, line, "--disks-file line");
    }
  }
  for (size_t k = 0; k < o->n_bind_opts; k++)
    add(o->binds, &o->n_binds, o->bind_opts[k], "--bind");
}

void load_nodes(struct start_opts *o)
{
  o->n_nodes = 0;
  free(o->nodes_text);
  o->nodes_text = NULL;
  if (!o->nodes_file)
    return;
  o->nodes_text = read_whole_file(o->nodes_file);
  if (!o->nodes_text && errno != ENOENT)
    die_with_error("read %s", o->nodes_file);
  char *save = NULL;
  for (char *line = o->nodes_text ? strtok_r(o->nodes_text, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    static struct node_spec check;
    parse_node_spec(line, &check);
    add(o->nodes, &o->n_nodes, line, "--nodes-file line");
  }
}

static void parse_start_options(int argc, char **argv, struct start_opts *o)
{
  o->console_log_size = 1024 * 1024;
  int i;
  for (i = 1; i < argc; i += 2) {
    const char *opt = argv[i];
    if (strcmp(opt, "--") == 0)
      break;
    if (strcmp(opt, "--debug") == 0) {
      opt_debug = true;
      i--;
      continue;
    }
    if (strcmp(opt, "--cgroup-rw") == 0 || strcmp(opt, "--rootfs-idmap") == 0) {
      if (opt[2] == 'c')
        o->cgroup_rw = true;
      else
        o->rootfs_idmap = true;
      i--;
      continue;
    }
    const char *val = need_arg(argc, argv, i);
    if (strcmp(opt, "--name") == 0)
      o->name = val;
    else if (strcmp(opt, "--rootfs") == 0)
      o->rootfs = val;
    else if (is_overlay_option(opt))
      parse_overlay_option(&o->overlay, opt, val);
    else if (strcmp(opt, "--hostname") == 0)
      o->hostname = val;
    else if (strcmp(opt, "--run-dir") == 0)
      o->run_dir = val;
    else if (strcmp(opt, "--cgroup") == 0)
      add(o->cgroups, &o->n_cgroups, val, opt);
    else if (strcmp(opt, "--env") == 0) {
      if (!strchr(val, '='))
        die("--env %s: expected K=V", val);
      add(o->env, &o->n_env, val, opt);
    } else if (strcmp(opt, "--cap-drop") == 0) {
      int cap = cap_from_name(val);
      if (cap < 0)
        die("--cap-drop %s: unknown capability", val);
      if (o->n_caps >= MAX_LIST)
        die("too many --cap-drop options");
      o->caps[o->n_caps++] = cap;
    } else if (strcmp(opt, "--mask") == 0)
      add(o->masks, &o->n_masks, val, opt);
    else if (strcmp(opt, "--ro") == 0)
      add(o->ro_paths, &o->n_ro_paths, val, opt);
    else if (strcmp(opt, "--bind") == 0) {
      static struct bind_spec check;
      parse_bind_spec(val, &check);
      add(o->bind_opts, &o->n_bind_opts, val, opt);
    } else if (strcmp(opt, "--disks-file") == 0) {
      if (val[0] != '/')
        die("--disks-file %s: expected an absolute path", val);
      o->disks_file = val;
    } else if (strcmp(opt, "--nodes-file") == 0) {
      if (val[0] != '/')
        die("--nodes-file %s: expected an absolute path", val);
      o->nodes_file = val;
    } else if (strcmp(opt, "--seccomp-deny") == 0 || strcmp(opt, "--seccomp-allow") == 0)
      seccomp_policy_add(&o->seccomp, opt[10] == 'd', val);
    else if (strcmp(opt, "--start-host-hook") == 0)
      o->start_host_hook = val;
    else if (strcmp(opt, "--post-stop-hook") == 0)
      o->post_stop_hook = val;
    else if (strcmp(opt, "--on-exit") == 0) {
      if (val[0] != '/')
        die("--on-exit %s: expected an absolute path", val);
      o->on_exit = val;
    } else if (strcmp(opt, "--console-log-size") == 0) {
      if (!parse_ulong(val, &o->console_log_size))
        die("--console-log-size %s: expected a number of bytes", val);
    } else if (strcmp(opt, "--need") == 0) {
      if (!parse_host_need(val, &o->need))
        die("--need %s: expected inotify-instances=N, inotify-watches=N or ptys=N", val);
    } else if (strcmp(opt, "--uidmap") == 0)
      parse_idmap_option(&o->uidmap, opt, val);
    else if (strcmp(opt, "--gidmap") == 0)
      parse_idmap_option(&o->gidmap, opt, val);
    else
      die("start: unknown option %s", opt);
  }
  if (i >= argc || i + 1 >= argc)
    die("start: missing -- INIT [ARGS...]");
  o->init_argv = argv + i + 1;
  if (!o->name || !o->rootfs || !o->run_dir)
    die("start: --name, --rootfs and --run-dir are required");
  if (!o->hostname)
    o->hostname = o->name;
  if (o->rootfs[0] != '/' || o->run_dir[0] != '/')
    die("start: --rootfs and --run-dir must be absolute paths");
  check_overlay_opts(&o->overlay);
  check_idmaps(&o->uidmap, &o->gidmap);
  if (o->rootfs_idmap && !o->uidmap.n)
    die("start: --rootfs-idmap needs --uidmap and --gidmap");
  load_binds(o);
  load_nodes(o);
  for (size_t k = 0; k < o->n_binds; k++) {
    static struct bind_spec b;
    parse_bind_spec(o->binds[k], &b);
    if (b.idmap && !o->uidmap.n)
      die("--bind %s: \"idmap\" needs --uidmap and --gidmap", o->binds[k]);
  }
  if (o->init_argv[0][0] != '/')
    die("start: INIT must be an absolute path inside the container");
  for (size_t k = 0; k < o->n_masks; k++)
    if (o->masks[k][0] != '/')
      die("--mask %s: expected an absolute path", o->masks[k]);
  for (size_t k = 0; k < o->n_ro_paths; k++)
    if (o->ro_paths[k][0] != '/')
      die("--ro %s: expected an absolute path", o->ro_paths[k]);
}

int main_start(int argc, char **argv)
{
  static struct start_opts opts;
  parse_start_options(argc, argv, &opts);
  /* The monitor and the exec server (and so every command the server forks into the container's
   * pid namespace) run from a sealed copy: nothing inside can reach the host's binary. */
  reexec_sealed(helper_argv);
  /* Before the clone: the warning is about this container and the next, not about a limit this
   * one has already taken. The caller shows it (a plan replay only once the start succeeded). */
  if (opts.need.given) {
    const char *w = host_limits_check(opts.name, opts.run_dir, &opts.need);
    (void)write_all(2, w, strlen(w));
  }

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    die_with_error("pipe");

  pid_t pid = fork();
  if (pid < 0)
    die_with_error("fork");
  if (pid == 0) {
    /* Intermediate: a new session, then the monitor as its child, so the monitor is no
     * session leader (it can never get a controlling terminal) and is reparented at once. */
    close(pipefd[0]);
    status_fd = pipefd[1];
    die_hook = status_die_hook;
    if (setsid() < 0)
      die_with_error("setsid");
    pid_t mon = fork();
    if (mon < 0)
      die_with_error("fork the monitor");
    if (mon > 0)
      _exit(0);
    run_monitor(&opts, pipefd[1]);
  }
  close(pipefd[1]);

  int wstatus;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
    ;

  /* The monitor writes exactly one line, then closes the pipe (or dies: EOF). */
  char buf[1200];
  size_t len = 0;
  for (;;) {
    ssize_t n = read_retry(pipefd[0], buf + len, sizeof buf - 1 - len);
    if (n <= 0 || (len += n) == sizeof buf - 1)
      break;
  }
  buf[len] = '\0';
  if (strncmp(buf, "OK ", 3) == 0) {
    (void)write_all(1, buf + 3, strlen(buf + 3));
    return 0;
  }
  if (strncmp(buf, "ERR ", 4) == 0) {
    (void)write_all(2, buf + 4, strlen(buf + 4));
    return 1;
  }
  die("the monitor exited before the container started");
}
