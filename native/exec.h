/* Running a command inside a container: shared by attach (the direct path) and the per-container
 * exec server (execserver.c), plus the wire format between them. See README.md, "The exec server". */
#ifndef TSLXC_EXEC_H
#define TSLXC_EXEC_H

#include "helper.h"

#include <sys/stat.h>

/* What to run and as whom: everything the container child needs besides its fds. */
struct exec_spec {
  char **argv; /* NULL-terminated */
  const char *env[MAX_LIST];
  size_t n_env;
  const char *cwd;
  const char *user; /* NULL: root */
  const char *term; /* the caller's TERM, or NULL */
  int caps[MAX_LIST];
  size_t n_caps;
  struct seccomp_policy seccomp;
};

/* The container child, already in all the container's namespaces (the pid namespace as a child
 * of it) and with its stdio in place: joins the cgroups whose cgroup.procs fds are given (none
 * for the exec server's children: they are born in them), looks the user up in the container's
 * /etc/passwd and /etc/group, takes the pty as controlling terminal and stdio (pty_slave >= 0),
 * drops capabilities, takes the user's identity, chdirs, installs the seccomp filter (as late as
 * it can: right before exec for root, right before setuid for another user) and execs.
 * Its own failures print one line on its stderr and exit 125 (127/126 for exec, as env(1)). */
__attribute__((noreturn)) void exec_in_container(const struct exec_spec *s,
                                                 const char *const *cgroup_names,
                                                 const int *cgroup_fds, size_t n_cgroups,
                                                 int pty_slave);

/* ---- the exec server's wire format (unix SOCK_SEQPACKET, one record per message) ----
 *
 * Request (client -> server), with SCM_RIGHTS carrying the client's fds 0, 1, 2:
 *   "TSX1" then items: TAG (1 byte), LEN (uint32, host order), LEN bytes ending in NUL.
 *   Tags: 'a' argv element (in order, at least one), 'e' env K=V, 'c' cwd, 'u' user,
 *   't' TERM, 'k' capability number (decimal), 'm' umask (octal), 'd' a syscall name to deny,
 *   'w' a syscall name to take out of the default deny list (seccomp.c).
 * Replies (server -> client), struct exec_reply:
 *   'P' value = the command's PID (host pid namespace), SCM_RIGHTS carrying a pidfd of it;
 *   'X' value = its wait status, once it ended (the last record);
 *   'E' value = errno: the server refused before running anything (the client falls back). */
#define EXEC_REQUEST_MAGIC "TSX1"
#define EXEC_REQUEST_MAX (128 * 1024)

struct exec_reply {
  char type;
  int32_t value;
};

/* malloc'ed request; *len its size. */
char *exec_request_encode(const struct exec_spec *s, mode_t mask, size_t *len);
/* Parses buf (kept: s points into it; s->argv is malloc'ed). false if malformed. */
bool exec_request_decode(char *buf, size_t len, struct exec_spec *s, mode_t *mask);

/* ---- the exec server (execserver.c), started by the monitor at each boot ---- */

/* Binds run_dir/exec.sock (0600) on the host, then forks the server: it joins the cgroups (on a
 * pure cgroup v2 host their attach leaf, EXEC_CGROUP_LEAF) and the namespaces of init and serves
 * requests. Returns the server's PID, or -1 (logged; the container runs on without it). */
pid_t exec_server_start(int run_dir_fd, pid_t init, const char *const *cgroups, size_t n_cgroups);
#define EXEC_CGROUP_LEAF ".tslxc-attach" /* = ATTACH_LEAF of lib/cgroup/v2.ts */

#endif
