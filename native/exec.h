/* Running a command inside a container: shared by attach (the direct path) and the per-container
 * exec server (execserver.c), plus the wire format between them. See README.md, "The exec server". */
#ifndef TSLXC_EXEC_H
#define TSLXC_EXEC_H

#include "helper.h"

#include <sys/ioctl.h>
#include <sys/stat.h>

/* What to run and as whom: everything the container child needs besides its fds. */
struct exec_spec {
  char **argv; /* NULL-terminated */
  const char *env[MAX_LIST];
  size_t n_env;
  const char *cwd;
  const char *user;  /* NULL: root */
  const char *group; /* NULL: the user's own groups; else this one alone */
  const char *term;  /* the caller's TERM, or NULL */
  int caps[MAX_LIST];
  size_t n_caps;
  struct seccomp_policy seccomp;
};

/* How the command gets its fds 0-2, and where its process reports before exec. */
struct exec_stdio {
  int conn;            /* the client's socket: 'T' (the pty master) and 'M' (a failure) go there */
  bool pty;            /* a pty of the container's devpts becomes fds 0 and 1 */
  bool pty_stderr;     /* and fd 2 (otherwise fd 2 is already in place) */
  struct winsize size; /* its first size; 0x0 leaves the kernel's */
};

/* The command's process, already in all the container's namespaces (the pid namespace as a
 * child of it), non-dumpable, its fds 0-2 in place (except those the pty replaces) and holding
 * no terminal of the host: starts a session, joins the cgroups whose cgroup.procs fds are given
 * (none for the exec server's children: they are born in them), opens the pty (st->pty), looks
 * the user up in the container's /etc/passwd and /etc/group, drops capabilities, takes the
 * user's identity, chdirs, installs the seccomp filter (as late as it can: right before exec for
 * root, right before setuid for another user) and execs. Its own failures go to the client as
 * one 'M' line and exit 125 (127/126 for exec, as env(1)). */
__attribute__((noreturn)) void exec_in_container(const struct exec_spec *s,
                                                 const char *const *cgroup_names,
                                                 const int *cgroup_fds, size_t n_cgroups,
                                                 const struct exec_stdio *st);

/* In the command's process, from its fork on: die() reports to the client ('M') and exits 125. */
void exec_child_begin(const struct exec_stdio *st);

/* ---- the exec server's wire format (unix SOCK_SEQPACKET, one record per message) ----
 *
 * Request (client -> server):
 *   "TSX1" then items: TAG (1 byte), LEN (uint32, host order), LEN bytes ending in NUL.
 *   Tags: 'a' argv element (in order, at least one), 'e' env K=V, 'c' cwd, 'u' user, 'g' group,
 *   't' TERM, 'k' capability number (decimal), 'm' umask (octal), 'd' a syscall name to deny,
 *   'w' a syscall name to take out of the default deny list (seccomp.c), 'p' a pty: "ROWS COLS"
 *   (its first size; "0 0" leaves the kernel's).
 *   SCM_RIGHTS: without 'p', the command's fds 0, 1, 2 (never a terminal: the client relays
 *   those through pipes); with 'p', none (0-2 all on the pty) or one, the command's fd 2.
 * Replies (server -> client), struct exec_reply:
 *   'P' value = the command's PID (host pid namespace), SCM_RIGHTS carrying a pidfd of it;
 *   'T' (with 'p', from the command's process before exec; may come before 'P') SCM_RIGHTS
 *       carrying the pty master;
 *   'M' value = n, then n bytes: the one-line failure of the command's process (no exec follows);
 *   'X' value = its wait status, once it ended (the last record);
 *   'E' value = errno: the server refused before running anything (the client falls back). */
#define EXEC_REQUEST_MAGIC "TSX1"
#define EXEC_REQUEST_MAX (128 * 1024)

struct exec_reply {
  char type;
  int32_t value;
};
/* The longest 'M' text (a die() line). */
#define EXEC_MESSAGE_MAX 1024

/* Sends one reply (with fd when >= 0); a client that went away only loses it. */
void exec_send_reply(int conn, char type, int32_t value, int fd);
/* malloc'ed request; *len its size. pty: NULL without one. */
char *exec_request_encode(const struct exec_spec *s, mode_t mask, const struct winsize *pty,
                          size_t *len);
/* Parses buf (kept: s points into it; s->argv is malloc'ed). false if malformed. *pty is set
 * when a pty is asked for (its size in *size). */
bool exec_request_decode(char *buf, size_t len, struct exec_spec *s, mode_t *mask, bool *pty,
                         struct winsize *size);

/* ---- the exec server (execserver.c), started by the monitor at each boot ---- */

/* Binds run_dir/exec.sock (0600) on the host, then forks the server: it joins the cgroups (on a
 * pure cgroup v2 host their attach leaf, EXEC_CGROUP_LEAF) and the namespaces of init and serves
 * requests. Returns the server's PID, or -1 (logged; the container runs on without it). */
pid_t exec_server_start(int run_dir_fd, pid_t init, const char *const *cgroups, size_t n_cgroups);
#define EXEC_CGROUP_LEAF ".tslxc-attach" /* = ATTACH_LEAF of lib/cgroup/v2.ts */

#endif
