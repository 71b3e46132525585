/* tslxc-helper: shared declarations. See README.md for the contract with lib/. */
#ifndef TSLXC_HELPER_H
#define TSLXC_HELPER_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* layout.json's data: names, paths, pid files (generated at build; see layout.c). */
#include "gen-layout.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_LIST 64

/* ---- errors ---- */

/* Called by die*() with the full one-line message (no trailing newline) before exiting.
 * The default writes it to fd 2. The monitor and the container child install their own. */
extern void (*die_hook)(const char *line, int err);
/* Exit status used by die*(): 1 by default, 125 in attach. */
extern int die_status;

__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* die() with ": strerror(errno)" appended. */
__attribute__((noreturn, format(printf, 1, 2))) void die_with_error(const char *fmt, ...);
__attribute__((noreturn)) void die_oom(void);

extern bool opt_debug;
__attribute__((format(printf, 1, 2))) void debug(const char *fmt, ...);

/* ---- cleanup helpers (bubblewrap style) ---- */

static inline void cleanup_fdp(int *fdp)
{
  if (*fdp >= 0) {
    int errsv = errno;
    close(*fdp);
    errno = errsv;
  }
}
static inline void cleanup_freep(void *p)
{
  free(*(void **)p);
}
#define autofd __attribute__((cleanup(cleanup_fdp)))
#define autofree __attribute__((cleanup(cleanup_freep)))

static inline int steal_fd(int *fdp)
{
  int fd = *fdp;
  *fdp = -1;
  return fd;
}

/* ---- small utilities (util.c) ---- */

void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);
void *xrealloc(void *p, size_t size);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* snprintf into a fixed buffer; dies on truncation. */
void xsnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int write_all(int fd, const void *buf, size_t len);
ssize_t read_retry(int fd, void *buf, size_t len);
/* One message over a unix socket with up to MAX_PASSED_FDS fds (SCM_RIGHTS); EINTR is retried,
 * MSG_NOSIGNAL always set. recv sets fds[0..max_fds) to what came (CLOEXEC) or -1, closes any
 * extra, and returns recvmsg's result (0: EOF; -1 with EMSGSIZE for a message cut short). */
#define MAX_PASSED_FDS 4
ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds,
                      int flags);
ssize_t recv_with_fds(int sock, void *data, size_t len, int *fds, size_t max_fds);
/* Reads up to size-1 bytes of a small file into buf (NUL-terminated). -1 + errno on failure. */
ssize_t read_small_file_at(int dirfd, const char *path, char *buf, size_t size);
/* The whole file (any size, /proc files too), NUL-terminated, malloc'ed; NULL + errno. */
char *read_whole_file(const char *path);
/* Writes a string into an existing file (cgroup.procs and the like). -1 + errno on failure. */
int write_file_at(int dirfd, const char *path, const char *content);
/* Atomically replaces dirfd/name with content (tmp file + rename). -1 + errno on failure. */
int write_file_atomic(int dirfd, const char *name, const char *content);
/* Closes every fd from 3 up except those in keep (which it sorts; negative entries are ignored). */
void close_all_but(int *keep, size_t n);
/* Parses a decimal number; false if not a whole, in-range number. */
bool parse_ulong(const char *s, unsigned long *out);
/* Field 22 of /proc/PID/stat (the start time, in ticks since boot); false if the process is gone
 * or a zombie. */
bool proc_start_time(pid_t pid, unsigned long long *out);
/* The same, 0 when false. */
unsigned long long proc_starttime(pid_t pid);

/* ---- raw syscalls glibc 2.36 does not wrap ---- */

struct open_how;
int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);
int sys_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t attr_set,
                      uint64_t attr_clr);
int sys_pidfd_open(pid_t pid);
int sys_pidfd_send_signal(int pidfd, int sig);
int sys_close_range(unsigned int first, unsigned int last, unsigned int flags);
pid_t raw_clone(unsigned long flags);

/* ---- capabilities (caps.c) ---- */

/* Name like "sys_module" (or "CAP_SYS_MODULE") to number; -1 if unknown. */
int cap_from_name(const char *name);
/* Drops the capabilities from bounding, ambient, inheritable, permitted, effective sets. */
void drop_caps(const int *caps, size_t n);
/* The two halves of drop_caps: bounding+ambient (needs CAP_SETPCAP, so before setuid), then
 * inheritable/permitted/effective (after setuid, which may still need CAP_SETUID). */
void drop_caps_bounding(const int *caps, size_t n);
void drop_caps_sets(const int *caps, size_t n);
/* Effective = permitted (after setfsuid to a non-zero id cleared the filesystem capabilities). */
void raise_effective_caps(void);

/* ---- seccomp (seccomp.c) ---- */

#define MAX_SYSCALL_OPTS 512
/* Changes to the default deny list: names of native/syscalls.h (--seccomp-deny, --seccomp-allow). */
struct seccomp_policy {
  const char *deny[MAX_SYSCALL_OPTS];
  size_t n_deny;
  const char *allow[MAX_SYSCALL_OPTS];
  size_t n_allow;
};
bool seccomp_known_syscall(const char *name);
/* Adds NAME to the policy's deny (or allow) list; dies on an unknown name or too many. */
void seccomp_policy_add(struct seccomp_policy *p, bool deny, const char *name);
/* Installs the filter (the mount guard, the deny list as the policy changes it, umount2 with
 * MNT_FORCE) on this process and its descendants: every ABI (x86_64, x32, i386), EPERM. Needs
 * CAP_SYS_ADMIN (it does not set no_new_privs, so setuid binaries keep working). NULL: defaults. */
void install_seccomp(const struct seccomp_policy *p);

/* ---- the sealed copy (sealed.c) ---- */

/* main's argv, for re-executing the helper with the same arguments. */
extern char **helper_argv;
/* Unless this process already runs from a sealed memfd copy of the helper, makes one and
 * re-executes it with argv (does not return then). See sealed.c. */
void reexec_sealed(char **argv);

/* ---- terminals (tty.c) ---- */

/* Puts fd in raw mode if it is a terminal; the old mode is restored by tty_restore(). */
void tty_make_raw(int fd);
void tty_restore(void);

/* ---- overlay rootfs (overlay.c): --rootfs-lower (repeatable, top first), --rootfs-upper,
 * --rootfs-work; with them --rootfs names the empty staging dir the overlay is mounted on ---- */

struct overlay_opts {
  const char *lowers[MAX_LIST];
  size_t n_lowers;
  const char *upper;
  const char *work;
};
bool is_overlay_option(const char *opt);
void parse_overlay_option(struct overlay_opts *ov, const char *opt, const char *val);
/* Dies unless the three are all given (or none) as absolute paths overlayfs can parse. */
void check_overlay_opts(const struct overlay_opts *ov);
/* Mounts the overlay on target. Only inside a private (or slave) mount namespace. */
void mount_overlay(const struct overlay_opts *ov, const char *target);

/* An overlay as a detached mount (fsopen/fsconfig/fsmount), for the monitor of an unprivileged
 * container: made by real root in the host's mount namespace (on layers idmapped through
 * userns_fd when it is >= 0), then moved into the child's. Returns the mount fd. */
int detached_overlay(const struct overlay_opts *ov, int userns_fd, uid_t root_uid, gid_t root_gid);

/* ---- user namespace (userns.c) ---- */

#define MAX_ID_RANGES 64
struct id_range {
  unsigned long inside, outside, count;
};
struct id_map {
  struct id_range ranges[MAX_ID_RANGES];
  size_t n;
};
/* --uidmap/--gidmap INSIDE:OUTSIDE:COUNT (repeatable). */
void parse_idmap_option(struct id_map *map, const char *opt, const char *val);
/* Dies unless both maps are given (or neither) and both map the container's root. */
void check_idmaps(const struct id_map *uids, const struct id_map *gids);
/* Writes /proc/PID/uid_map and gid_map (the caller is real root). */
void write_id_maps(pid_t pid, const struct id_map *uids, const struct id_map *gids);
/* setgroups(0), setresgid(0), setresuid(0): the current user namespace's root. */
void become_userns_root(void);
bool try_become_userns_root(void); /* the same, false + errno on failure */
/* Whether PID's user namespace is another than ours. */
bool in_other_userns(pid_t pid);
/* A detached clone of PATH's mount, idmapped through userns_fd (>= 0) and/or read-only. */
int detached_tree(const char *path, bool recursive, int userns_fd, bool ro);
void set_tree_attrs(int fd, const char *what, bool recursive, int userns_fd, bool ro);

/* The host uid and gid the container's root maps to. */
uid_t mapped_root_uid(const struct id_map *uids);
gid_t mapped_root_gid(const struct id_map *gids);

/* --bind SRC:DST[:OPTS]: OPTS a comma list of "ro" and "idmap" (shift=true). Dies when malformed. */
struct bind_spec {
  char src[PATH_MAX], dst[PATH_MAX];
  bool ro, idmap, optional;
};
void parse_bind_spec(const char *spec, struct bind_spec *b);

/* The monitor passes mounts to the container child over the sync socket: one message per fd,
 * its one byte a tag ('r' the rootfs, 'b' the next --bind, 'n' the next node, 'g' go: no fd). */
void send_tagged_fd(int sock, char tag, int fd);
/* The fd (-1 when the message has none), or -2 when the socket closed. */
int recv_tagged_fd(int sock, char *tag);

/* ---- paths inside a container's root (inroot.c): openat2(RESOLVE_IN_ROOT), PATH relative ---- */

/* openat2 of PATH with ROOTFD as "/" (O_CLOEXEC added); -1 + errno. */
int open_in_root_flags(int rootfd, const char *path, int flags);
/* An O_PATH fd of PATH; with mkdirs, missing directories are made (0755) on the way. */
int open_in_root(int rootfd, const char *path, bool mkdirs);
int xopen_in_root(int rootfd, const char *path, bool mkdirs); /* dies on failure */
/* The mount point for a bind: a directory (parents made) or an empty file. Dies on failure. */
int open_mount_target(int rootfd, const char *path, bool dir);

/* ---- running containers (disk.c): what the disk and unixdev modes share ---- */

/* setns into PID's mount namespace (and user namespace first, becoming its root, with userns). */
void enter_container(int pidfd, pid_t pid, bool userns);
/* Unmounts what is mounted on PATH (absolute, inside the container's root ROOTFD), a link at its
 * last name followed inside the root; nothing mounted there is not an error. */
void remove_disk(int rootfd, const char *path);

/* ---- device nodes of unix-char/unix-block devices (unixdev.c) ---- */

/* --nodes-file lines and unixdev --add: "c|b:MAJOR:MINOR:MODE:UID:GID:/DST", MODE octal (at most
 * 0777), UID and GID host ids (tslxc maps the container's through the idmap). */
struct node_spec {
  char type; /* 'c' or 'b' */
  unsigned long major, minor, mode, uid, gid;
  char dst[PATH_MAX];
};
void parse_node_spec(const char *spec, struct node_spec *n);
/* The node as a detached mount of one file: made by real root on a private tmpfs of its own
 * (see unixdev.c), ready to be moved onto its path in a container. Dies on failure. */
int detached_node(const struct node_spec *n);
/* Mounts the detached node TREE on N's path inside ROOTFD (an empty file made there when
 * missing, parents included; the path resolved in the root). Dies on failure. */
void place_node(int rootfd, int tree, const struct node_spec *n);

/* ---- start: options shared by start.c, monitor.c, container.c ---- */

/* What the caller expects one container to take of the host limits all containers share
 * (hostlimits.c); --need KEY=N of start and host-limits. */
struct host_need {
  unsigned long inotify_instances, inotify_watches, ptys;
  bool given;
};
bool parse_host_need(const char *val, struct host_need *need);
/* The warning lines ("Warning: ...\n", or "") for starting NAME now: whether it and one more
 * container like it fit. Also kept in host_limits_warning until the next check. */
const char *host_limits_check(const char *name, const char *run_dir, const struct host_need *need);
extern char host_limits_warning[2048];

struct start_opts {
  const char *name;
  const char *rootfs;
  struct overlay_opts overlay;
  const char *hostname;
  const char *run_dir;
  const char *cgroups[MAX_LIST];
  size_t n_cgroups;
  const char *env[MAX_LIST];
  size_t n_env;
  int caps[MAX_LIST];
  size_t n_caps;
  const char *masks[MAX_LIST];
  size_t n_masks;
  const char *ro_paths[MAX_LIST];
  size_t n_ro_paths;
  const char *binds[MAX_LIST]; /* "SRC:DST[:OPTS]", OPTS a comma list of ro, idmap */
  size_t n_binds;              /* the --disks-file lines, then the --bind options */
  const char *bind_opts[MAX_LIST];
  size_t n_bind_opts;
  const char *disks_file; /* read at each boot: disks added or removed while running */
  char *disks_text;
  const char *nodes[MAX_LIST]; /* node specs (struct node_spec): the --nodes-file lines */
  size_t n_nodes;
  const char *nodes_file; /* read at each boot, as disks_file */
  char *nodes_text;
  struct id_map uidmap, gidmap; /* both empty: no user namespace */
  bool rootfs_idmap;            /* present the rootfs through an idmapped mount */
  const char *start_host_hook;
  const char *post_stop_hook;
  const char *on_exit; /* run once the container ended for good and the monitor cleaned up */
  struct seccomp_policy seccomp;
  bool cgroup_rw;
  unsigned long console_log_size;
  struct host_need need;
  char **init_argv;
};

/* o->binds = the lines of o->disks_file (if any) followed by the --bind options. Called before
 * the first boot and before each reboot, so a disk added to (or removed from) the running
 * container is there (or gone) after a reboot inside it too. Dies on a malformed line. */
void load_binds(struct start_opts *o);
/* o->nodes = the lines of o->nodes_file (missing: none). Called with load_binds. */
void load_nodes(struct start_opts *o);

/* The detached monitor: boots the container, reports "OK INIT MONITOR" or "ERR LINE" on status_fd
 * once, then serves the console and reaps init until the container ends. Never returns. */
__attribute__((noreturn)) void run_monitor(struct start_opts *opts, int status_fd);

/* Container side of a boot, run in the cloned child: the steps of README.md. Never returns: it
 * execs init or reports (step, errno, message) on sync_fd and exits. A record with step 0
 * carries the console's pty master (SCM_RIGHTS) instead. */
/* A record's step: 0 carries the console master, CHILD_REPORT_EXEC says exec comes next, any
 * other is the step that failed. */
#define CHILD_REPORT_EXEC (-1)
struct child_report {
  int32_t step;
  int32_t err;
  char msg[1000];
};
__attribute__((noreturn)) void container_child(const struct start_opts *opts, int sync_fd);

/* Builds an environment: base entries, each overridden or extended by the K=V in extra. */
char **build_env(const char *const *base, size_t n_base, const char *const *extra, size_t n_extra);

/* ---- attach's pty for callers without a terminal (ptyctl.c) ---- */

struct winsize;
/* "ROWSxCOLS" (each 1-10000) into ws; false if malformed. */
bool pty_parse_size(const char *s, struct winsize *ws);
/* The --control-fd pipe: "w ROWS COLS" and "s SIGNUM" lines. */
struct pty_control {
  int fd;
  size_t len;
  char buf[256];
};
/* Reads what is there and applies each complete line to master (size) or the command (signal,
 * by its pidfd); false at end of file or on an error (the caller stops polling it). */
bool pty_control_read(struct pty_control *c, int master, int pidfd);

/* ---- modes ---- */

int main_start(int argc, char **argv);
int main_attach(int argc, char **argv);
int main_spare(int argc, char **argv);
int main_console(int argc, char **argv);
int main_file(int argc, char **argv);
int main_idmap_probe(int argc, char **argv);
int main_devices(int argc, char **argv);
int main_disk(int argc, char **argv);
int main_host_limits(int argc, char **argv);

/* The options of the live device modes, disk and unixdev: --pid PID (--add SPEC | --remove PATH). */
struct live_device_args {
  unsigned long pid;
  const char *add, *remove;
};
void parse_live_device_args(const char *mode, const char *add_usage, int argc, char **argv,
                            struct live_device_args *a);
int main_cli(int argc, char **argv);
/* importpass.c: `image import`'s pass, run by node or by the CLI front before node */
int main_import_pass(int argc, char **argv);
bool import_pass_fork(const char *src);
/* The lines of a run dir file (cli.c); NULL if absent or damaged. */
char **read_list(const char *path, size_t *n);
/* An exec.check file ("FILE\nLINE\n") says the container is thawed (cli.c). */
bool thawed(const char *check_path);
/* `tslxc stop NAME` without node (clistop.c). */
enum stop_result { STOP_DONE, STOP_ASK_NODE, STOP_TIMED_OUT };
enum stop_result cli_stop(const char *name);
/* `tslxc __complete VERB WORD` without node (clicomplete.c): 0 printed, -1 for node. */
int cli_complete(const char *js, int argc, char **argv);
bool client_file(char *p, size_t size, const char *file);

/* ---- the rules shared with lib/ (layout.c; the data is build/gen-layout.h) ---- */

bool valid_instance_name(const char *s);
/* TSLXC_DIR and TSLXC_RUN_DIR (or their defaults) as lib/ resolves them; NULL when only node can
 * (a relative one). */
const char *state_root(void);
const char *run_root(void);
/* A container's paths; false (buf unset) when the name or a root is not usable here. */
bool container_config_path(char buf[PATH_MAX], const char *name);
bool container_run_path(char buf[PATH_MAX], const char *name, const char *file);
bool start_plan_path(char buf[PATH_MAX], const char *name);
bool pid_ref_parse(const char *text, pid_t *pid, unsigned long long *start);
/* The container's init pid if it is alive, else 0. */
pid_t instance_init_alive(const char *name);
int main_selftest(int argc, char **argv);

/* ---- start plans (plan.c; lib/instance/plan.ts writes them) ---- */

/* 0: the container was started; -1: not this way (nothing left made but the lock: plan_undo). */
int plan_start(const char *plan_path);
/* Remove what a replay made, release the container's lock. Idempotent. */
void plan_undo(void);
/* After -1: whether the plan may still hold (the container was locked or running). */
bool plan_busy(void);
/* plan-check: one check of a plan (the tests compare it with the TypeScript side). */
int main_plan_check(int argc, char **argv);
/* plan-exec: execute a start spec given on stdin (the TypeScript start's executor). */
int main_plan_exec(int argc, char **argv);
int main_unixdev(int argc, char **argv);
/* serve-front (servefront.c): `tslxc serve`'s sockets and lock, held while its worker is idle. */
int main_serve_front(int argc, char **argv);

#endif
