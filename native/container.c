/* The container side of a boot: runs in the child cloned into new pid, mount, uts, ipc and net
 * namespaces, sets up the root filesystem and execs init. Steps as in README.md. */
#include "helper.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

enum step {
  STEP_WAIT = 1,
  STEP_CGROUPNS,
  STEP_PROPAGATION,
  STEP_ROOTFS,
  STEP_PROC,
  STEP_SYS,
  STEP_CGROUPFS,
  STEP_DEV,
  STEP_RUN,
  STEP_PATHS,
  STEP_PIVOT,
  STEP_HOSTNAME,
  STEP_CONSOLE,
  STEP_CAPS,
  STEP_EXEC,
};

static const char *const step_names[] = {
  [STEP_WAIT] = "wait for the monitor",
  [STEP_CGROUPNS] = "cgroup namespace",
  [STEP_PROPAGATION] = "mount propagation",
  [STEP_ROOTFS] = "rootfs",
  [STEP_PROC] = "proc",
  [STEP_SYS] = "sys",
  [STEP_CGROUPFS] = "cgroupfs",
  [STEP_DEV] = "dev",
  [STEP_RUN] = "run",
  [STEP_PATHS] = "ro and mask paths",
  [STEP_PIVOT] = "pivot_root",
  [STEP_HOSTNAME] = "hostname",
  [STEP_CONSOLE] = "console",
  [STEP_CAPS] = "capabilities",
  [STEP_EXEC] = "exec init",
};

static enum step child_step;
static int child_sync_fd = -1;

static void step(enum step s)
{
  child_step = s;
  debug("container: step %d: %s", s, step_names[s]);
}

/* A failure in the child becomes one record on the sync socket: the monitor forwards its line. */
static void child_die_hook(const char *line, int err)
{
  static struct child_report r;
  const char *prefix = "tslxc-helper: ";
  r.step = child_step;
  r.err = err;
  snprintf(r.msg, sizeof r.msg, "%s%s: %s", prefix, step_names[child_step], line + strlen(prefix));
  (void)send(child_sync_fd, &r, sizeof r, MSG_NOSIGNAL);
}

/* ---- path and mount helpers: every target is resolved inside the rootfs ---- */

static const char *fd_path(int fd, char buf[static 32])
{
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

/* Mounts onto the object FD refers to (never a path that could be swapped for a symlink). */
static void mount_on_fd(const char *src, int fd, const char *fstype, unsigned long flags,
                        const char *data, const char *what)
{
  char target[32];
  if (mount(src, fd_path(fd, target), fstype, flags, data) < 0)
    die_with_error("mount %s on %s", fstype ? fstype : src, what);
}

static void bind_fd_on_fd(int srcfd, int dstfd, unsigned long flags, const char *what)
{
  char src[32], dst[32];
  if (mount(fd_path(srcfd, src), fd_path(dstfd, dst), NULL, MS_BIND | flags, NULL) < 0)
    die_with_error("bind mount %s", what);
}

/* Read-only at the mount level only: a new cgroup or sysfs mount may share its superblock with
 * the host's, so MS_RDONLY (which also marks the superblock) is never used on those. */
static void make_ro(int fd, bool recursive, const char *what)
{
  if (sys_mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), MOUNT_ATTR_RDONLY,
                        0) < 0)
    die_with_error("make %s read-only", what);
}

/* Hides PATH: a file gets the container's /dev/null (never the host's: its devtmpfs superblock
 * would be one remount away) bound over it read-only, a directory an empty read-only tmpfs. A
 * path that does not exist has nothing to hide. */
static void mask_path(int rootfd, int devnull, const char *path)
{
  autofd int fd = open_in_root(rootfd, path, false);
  if (fd < 0) {
    if (errno == ENOENT)
      return;
    die_with_error("open /%s to mask it", path);
  }
  struct stat st;
  if (fstat(fd, &st) < 0)
    die_with_error("stat /%s", path);
  if (S_ISDIR(st.st_mode)) {
    mount_on_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "size=4k,nr_inodes=1,mode=555", path);
    return;
  }
  bind_fd_on_fd(devnull, fd, 0, path);
  autofd int masked = xopen_in_root(rootfd, path, false);
  make_ro(masked, false, path);
}

/* Binds PATH onto itself read-only (with everything mounted below it). */
static void ro_path(int rootfd, const char *path, bool recursive)
{
  autofd int fd = open_in_root(rootfd, path, false);
  if (fd < 0) {
    if (errno == ENOENT)
      return;
    die_with_error("open /%s to make it read-only", path);
  }
  bind_fd_on_fd(fd, fd, MS_REC, path);
  autofd int bound = xopen_in_root(rootfd, path, false);
  make_ro(bound, recursive, path);
}

/* Binds a host path (a disk device, a volume, lxcfs's files) onto DST inside the rootfs. SPEC is
 * "SRC:DST[:OPTS]". The source is the caller's (validated by tslxc); the target is resolved inside
 * the rootfs like every other, and made to match the source: a directory, or an empty file. In a
 * user namespace the source comes as TREE, a detached mount the monitor made (idmapped and
 * read-only as asked), moved into place; otherwise TREE is -1 and SRC is bound. */
static void bind_path(int rootfd, const char *spec, int tree)
{
  static struct bind_spec b;
  parse_bind_spec(spec, &b);
  const char *dst = b.dst;
  autofd int srcfd = tree >= 0 ? -1 : open(b.src, O_PATH | O_CLOEXEC);
  if (tree < 0 && srcfd < 0)
    die_with_error("open %s to bind it", b.src);
  struct stat st;
  if (fstat(tree >= 0 ? tree : srcfd, &st) < 0)
    die_with_error("stat %s", b.src);
  const char *inner = dst + 1;
  autofd int dstfd = open_mount_target(rootfd, inner, S_ISDIR(st.st_mode));
  if (tree >= 0) {
    if (move_mount(tree, "", dstfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      die_with_error("move the mount of %s onto %s", b.src, dst);
    return;
  }
  bind_fd_on_fd(srcfd, dstfd, MS_REC, dst);
  if (b.ro) {
    autofd int bound = xopen_in_root(rootfd, inner, false);
    make_ro(bound, true, dst);
  }
}

/* ---- steps ---- */

static const char *const default_masks[] = {
  "proc/acpi",
  "proc/kcore",
  "proc/keys",
  "proc/latency_stats",
  "proc/timer_list",
  "proc/timer_stats",
  "proc/sched_debug",
  "proc/scsi",
  "proc/sysrq-trigger",
  "sys/firmware",
  "sys/devices/virtual/powercap",
};
static const char *const proc_ro[] = { "proc/bus", "proc/fs", "proc/irq" };

/* The caller's --mask list often repeats our defaults: mask each path once. */
static bool masked_by_caller(const struct start_opts *o, const char *path)
{
  for (size_t i = 0; i < o->n_masks; i++)
    if (strcmp(o->masks[i] + 1, path) == 0)
      return true;
  return false;
}

static void setup_proc(int rootfd)
{
  autofd int procfd = xopen_in_root(rootfd, "proc", true);
  mount_on_fd("proc", procfd, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc");

  /* /proc/sys read-only except /proc/sys/net (it belongs to the container's net namespace):
   * bind sys onto itself read-only, then net from the proc mount below it back on top. */
  autofd int netfd = xopen_in_root(rootfd, "proc/sys/net", false);
  autofd int sysfd = xopen_in_root(rootfd, "proc/sys", false);
  bind_fd_on_fd(sysfd, sysfd, 0, "/proc/sys");
  autofd int sysbound = xopen_in_root(rootfd, "proc/sys", false);
  make_ro(sysbound, false, "/proc/sys");
  autofd int netdst = xopen_in_root(rootfd, "proc/sys/net", false);
  bind_fd_on_fd(netfd, netdst, 0, "/proc/sys/net");

  for (size_t i = 0; i < N_ELEMENTS(proc_ro); i++)
    ro_path(rootfd, proc_ro[i], true);
}

static void setup_sys(int rootfd)
{
  autofd int sysfd = xopen_in_root(rootfd, "sys", true);
  /* Mounted rw then made read-only at the mount level (see make_ro). It shows the container's
   * net namespace; /sys/devices/virtual/net stays writable as LXC does. */
  mount_on_fd("sysfs", sysfd, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/sys");
  autofd int netfd = open_in_root(rootfd, "sys/devices/virtual/net", false);
  if (netfd >= 0)
    bind_fd_on_fd(netfd, netfd, 0, "/sys/devices/virtual/net");
  autofd int mounted = xopen_in_root(rootfd, "sys", false);
  make_ro(mounted, false, "/sys");
}

struct mountinfo_entry {
  char *mountpoint;
  char *fstype;
  char *superopts;
};

/* Splits one mountinfo line in place: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] -
 * FSTYPE SOURCE SUPEROPTS. */
static bool parse_mountinfo_line(char *line, struct mountinfo_entry *e)
{
  char *fields[6] = { 0 };
  char *save = NULL;
  int i = 0;
  for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    if (i < 5) {
      if (i == 4)
        e->mountpoint = tok;
      i++;
    } else if (i == 5) {
      if (strcmp(tok, "-") == 0)
        i++;
    } else {
      fields[i - 6] = tok;
      if (++i == 9)
        break;
    }
  }
  if (i != 9)
    return false;
  e->fstype = fields[0];
  e->superopts = fields[2];
  return true;
}

/* Superblock options of a cgroup mount, without those a new mount must not (rw, ro) or may not
 * (release_agent, in a non-initial cgroup namespace) repeat. */
static void cgroup_mount_data(const char *superopts, char *out, size_t size)
{
  char copy[512];
  xsnprintf(copy, sizeof copy, "%s", superopts);
  out[0] = '\0';
  size_t len = 0;
  char *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    if (strcmp(o, "rw") == 0 || strcmp(o, "ro") == 0 || strncmp(o, "release_agent=", 14) == 0)
      continue;
    int n = snprintf(out + len, size - len, "%s%s", len ? "," : "", o);
    if (n < 0 || (size_t)n >= size - len)
      die("cgroup mount options too long: %s", superopts);
    len += n;
  }
}

/* Replicates the host's cgroupfs layout; the cgroup namespace (entered after the monitor put us
 * in our cgroups) makes every hierarchy show only the container's subtree. */
static void setup_cgroupfs(int rootfd, bool all_rw)
{
  autofree char *mountinfo = read_whole_file("/proc/self/mountinfo");
  if (!mountinfo)
    die_with_error("read /proc/self/mountinfo");
  static struct mountinfo_entry entries[64];
  size_t n = 0;
  bool v2_host = false;
  char data[512];
  char *save = NULL;
  for (char *line = strtok_r(mountinfo, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    struct mountinfo_entry e;
    if (!parse_mountinfo_line(line, &e))
      continue;
    bool is_cgroup = strcmp(e.fstype, "cgroup") == 0 || strcmp(e.fstype, "cgroup2") == 0;
    if (!is_cgroup)
      continue;
    if (strcmp(e.mountpoint, "/sys/fs/cgroup") == 0 && strcmp(e.fstype, "cgroup2") == 0) {
      v2_host = true;
      cgroup_mount_data(e.superopts, data, sizeof data);
    }
    static const char prefix[] = "/sys/fs/cgroup/";
    if (strncmp(e.mountpoint, prefix, sizeof prefix - 1) != 0)
      continue;
    const char *base = e.mountpoint + sizeof prefix - 1;
    if (!*base || strchr(base, '/') || strchr(base, '\\')) /* one level, no escaped names */
      continue;
    if (n < N_ELEMENTS(entries))
      entries[n++] = e;
  }

  autofd int cgfd = xopen_in_root(rootfd, "sys/fs/cgroup", false);
  if (v2_host) {
    /* The host's options (nsdelegate, memory_recursiveprot) are global to the one cgroup2
     * superblock; repeat them, and mount without them if this kernel refuses them here. */
    char target[32];
    if (mount("cgroup2", fd_path(cgfd, target), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              data[0] ? data : NULL) < 0)
      mount_on_fd("cgroup2", cgfd, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                  "/sys/fs/cgroup");
    return;
  }
  if (n == 0)
    die("no cgroup hierarchy found under /sys/fs/cgroup on the host");

  mount_on_fd("tmpfs", cgfd, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k",
              "/sys/fs/cgroup");
  autofd int tmpfd = xopen_in_root(rootfd, "sys/fs/cgroup", false);
  for (size_t i = 0; i < n; i++) {
    const char *base = entries[i].mountpoint + strlen("/sys/fs/cgroup/");
    bool v2 = strcmp(entries[i].fstype, "cgroup2") == 0;
    cgroup_mount_data(entries[i].superopts, data, sizeof data);
    /* Controllers read-only; the named systemd hierarchy and the unified one stay writable,
     * so the container's init can make its own sub-cgroups. */
    bool writable = all_rw || v2 || strstr(data, "name=") != NULL;
    if (mkdirat(tmpfd, base, 0755) < 0)
      die_with_error("mkdir /sys/fs/cgroup/%s", base);
    autofd int fd = openat(tmpfd, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      die_with_error("open /sys/fs/cgroup/%s", base);
    char what[300];
    xsnprintf(what, sizeof what, "/sys/fs/cgroup/%s", base);
    mount_on_fd(entries[i].fstype, fd, entries[i].fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC,
                data[0] ? data : NULL, what);
    if (!writable) {
      autofd int mounted = openat(tmpfd, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (mounted < 0)
        die_with_error("open %s", what);
      make_ro(mounted, false, what);
    }
  }

  /* Co-mounted controllers (cpu,cpuacct) are reached through symlinks (cpu -> cpu,cpuacct). */
  autofd int hostfd = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = hostfd >= 0 ? fdopendir(hostfd) : NULL;
  if (dir) {
    hostfd = -1;
    struct dirent *de;
    while ((de = readdir(dir))) {
      char target[256];
      if (de->d_type != DT_LNK)
        continue;
      ssize_t len = readlinkat(dirfd(dir), de->d_name, target, sizeof target - 1);
      if (len <= 0)
        continue;
      target[len] = '\0';
      if (symlinkat(target, tmpfd, de->d_name) < 0 && errno != EEXIST)
        die_with_error("symlink /sys/fs/cgroup/%s", de->d_name);
    }
    closedir(dir);
  }
  make_ro(tmpfd, false, "/sys/fs/cgroup");
}

static const struct {
  const char *name;
  unsigned major, minor;
} dev_nodes[] = {
  { "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
  { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};
static const struct {
  const char *name, *target;
} dev_links[] = {
  { "ptmx", "pts/ptmx" },          { "fd", "/proc/self/fd" },       { "stdin", "/proc/self/fd/0" },
  { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
};

/* Creates an empty file under DIRFD (our own fresh tmpfs) and returns it as a mount target. */
static int create_mountpoint_file(int dirfd, const char *name)
{
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    die_with_error("create /dev/%s", name);
  return fd;
}

static int create_mountpoint_dir(int dirfd, const char *name, mode_t mode)
{
  if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
    die_with_error("mkdir /dev/%s", name);
  int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    die_with_error("open /dev/%s", name);
  return fd;
}

/* Hands the console's pty master to the monitor: a record with step 0 carrying the fd. */
static void send_console_master(int master)
{
  static struct child_report r; /* step 0: not an error */
  if (send_with_fds(child_sync_fd, &r, sizeof r, &master, 1, 0) < 0)
    die_with_error("pass the console pty to the monitor");
}

/* Returns the console pty slave. */
static int setup_dev(int rootfd)
{
  autofd int devfd = xopen_in_root(rootfd, "dev", true);
  mount_on_fd("tmpfs", devfd, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k", "/dev");
  autofd int dev = xopen_in_root(rootfd, "dev", false);

  /* Nodes are created, not bound from the host's /dev: a bind would share the host's devtmpfs
   * superblock with the container. Binding stays the fallback (a user namespace cannot mknod). */
  for (size_t i = 0; i < N_ELEMENTS(dev_nodes); i++) {
    const char *name = dev_nodes[i].name;
    if (mknodat(dev, name, S_IFCHR | 0666, makedev(dev_nodes[i].major, dev_nodes[i].minor)) == 0)
      continue;
    if (errno != EPERM)
      die_with_error("mknod /dev/%s", name);
    char src[64];
    xsnprintf(src, sizeof src, "/dev/%s", name);
    autofd int target = create_mountpoint_file(dev, name);
    mount_on_fd(src, target, NULL, MS_BIND, NULL, src);
  }

  autofd int pts = create_mountpoint_dir(dev, "pts", 0755);
  mount_on_fd("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5", "/dev/pts");

  /* The console: a pty of the container's own devpts (so it belongs to the container, as
   * /dev/pts/0, and systemd can chown it), bound on /dev/console. The master goes to the monitor
   * over the sync socket; the slave becomes init's stdio. */
  autofd int ptmx = openat(dev, "pts/ptmx", O_RDWR | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
  if (ptmx < 0)
    die_with_error("open /dev/pts/ptmx");
  int unlock = 0;
  if (ioctl(ptmx, TIOCSPTLCK, &unlock) < 0)
    die_with_error("unlock the console pty");
  int console_fd = ioctl(ptmx, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (console_fd < 0)
    die_with_error("open the console pty");
  struct winsize ws = { .ws_row = 24, .ws_col = 80 };
  ioctl(console_fd, TIOCSWINSZ, &ws);
  autofd int console = create_mountpoint_file(dev, "console");
  bind_fd_on_fd(console_fd, console, 0, "the console pty on /dev/console");
  send_console_master(ptmx);

  autofd int shm = create_mountpoint_dir(dev, "shm", 01777);
  mount_on_fd("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "/dev/shm");

  for (size_t i = 0; i < N_ELEMENTS(dev_links); i++)
    if (symlinkat(dev_links[i].target, dev, dev_links[i].name) < 0)
      die_with_error("symlink /dev/%s", dev_links[i].name);
  return console_fd;
}

static void setup_run(int rootfd)
{
  autofd int runfd = xopen_in_root(rootfd, "run", true);
  mount_on_fd("tmpfs", runfd, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=20%", "/run");
  autofd int run = xopen_in_root(rootfd, "run", false);
  if (mkdirat(run, "lock", 01777) < 0)
    die_with_error("mkdir /run/lock");
  autofd int lock = openat(run, "lock", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (lock < 0)
    die_with_error("open /run/lock");
  mount_on_fd("tmpfs", lock, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=5m",
              "/run/lock");
}

void container_child(const struct start_opts *o, int sync_fd)
{
  child_sync_fd = sync_fd;
  die_hook = child_die_hook;
  step(STEP_WAIT);

  /* Until exec, die with the monitor; reset what the monitor set for itself. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  umask(0);

  /* 1: the monitor says go ('g') once we are in our cgroups and the start-host hook ran; in a
   * user namespace our id maps are written by then, and the rootfs and --bind sources came
   * before it as detached mounts. */
  static int bind_trees[MAX_LIST], node_trees[MAX_LIST];
  size_t n_trees = 0, n_node_trees = 0;
  autofd int root_tree = -1;
  for (;;) {
    char tag;
    int fd = recv_tagged_fd(sync_fd, &tag);
    if (fd == -2)
      _exit(1);
    if (tag == 'g')
      break;
    if (tag == 'r')
      root_tree = fd;
    else if (tag == 'b' && n_trees < MAX_LIST)
      bind_trees[n_trees++] = fd;
    else if (tag == 'n' && n_node_trees < MAX_LIST)
      node_trees[n_node_trees++] = fd;
    else
      die("unexpected message '%c' from the monitor", tag);
  }
  bool userns = o->uidmap.n > 0;
  if (userns && (root_tree < 0 || n_trees != o->n_binds))
    die("the monitor did not pass the rootfs and binds");
  if (n_node_trees != o->n_nodes)
    die("the monitor did not pass the device nodes");

  /* Still host root's ids here (only our capabilities are the namespace's): the owner bits of
   * root's 0700 state dirs let us reach the rootfs path, which the namespace's root could not. */
  autofd int root_target = -1;
  if (userns) {
    root_target = open(o->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_target < 0)
      die_with_error("open %s", o->rootfs);
    become_userns_root();
  }

  step(STEP_CGROUPNS);
  if (unshare(CLONE_NEWCGROUP) < 0)
    die_with_error("unshare(CLONE_NEWCGROUP)");

  step(STEP_PROPAGATION);
  if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    die_with_error("make / a recursive slave");

  step(STEP_ROOTFS);
  /* Either way the rootfs becomes a mount point of this namespace (pivot_root needs one). */
  autofd int rootfd = -1;
  if (userns) {
    /* The monitor's detached mount, once attached, is the rootfs: its fd is the root. */
    if (move_mount(root_tree, "", root_target, "",
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      die_with_error("move the rootfs mount onto %s", o->rootfs);
    rootfd = steal_fd(&root_tree);
  } else {
    if (o->overlay.n_lowers)
      mount_overlay(&o->overlay, o->rootfs);
    else if (mount(o->rootfs, o->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
      die_with_error("bind mount %s", o->rootfs);
    rootfd = open(o->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
      die_with_error("open %s", o->rootfs);
  }

  step(STEP_PROC);
  setup_proc(rootfd);

  step(STEP_SYS);
  setup_sys(rootfd);

  step(STEP_CGROUPFS);
  setup_cgroupfs(rootfd, o->cgroup_rw);

  step(STEP_DEV);
  int console_fd = setup_dev(rootfd);

  step(STEP_RUN);
  setup_run(rootfd);

  step(STEP_PATHS);
  for (size_t i = 0; i < o->n_binds; i++) {
    bind_path(rootfd, o->binds[i], userns ? bind_trees[i] : -1);
    if (userns)
      close(bind_trees[i]);
  }
  /* Device nodes after the disks: a node's path may lie in a bound directory. */
  for (size_t i = 0; i < o->n_nodes; i++) {
    static struct node_spec n;
    parse_node_spec(o->nodes[i], &n);
    place_node(rootfd, node_trees[i], &n);
    close(node_trees[i]);
  }
  for (size_t i = 0; i < o->n_ro_paths; i++)
    ro_path(rootfd, o->ro_paths[i] + 1, true);
  autofd int devnull = xopen_in_root(rootfd, "dev/null", false);
  struct stat st;
  if (fstat(devnull, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    die("/dev/null of the container is not the null device");
  for (size_t i = 0; i < N_ELEMENTS(default_masks); i++)
    if (!masked_by_caller(o, default_masks[i]))
      mask_path(rootfd, devnull, default_masks[i]);
  for (size_t i = 0; i < o->n_masks; i++)
    mask_path(rootfd, devnull, o->masks[i] + 1);

  step(STEP_PIVOT);
  if (fchdir(rootfd) < 0)
    die_with_error("chdir to the rootfs");
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    die_with_error("pivot_root");
  if (umount2(".", MNT_DETACH) < 0)
    die_with_error("detach the old root");
  if (chdir("/") < 0)
    die_with_error("chdir /");

  step(STEP_HOSTNAME);
  if (sethostname(o->hostname, strlen(o->hostname)) < 0)
    die_with_error("sethostname %s", o->hostname);

  /* As the kernel starts init: console on 0-1-2, but no controlling terminal, so that init
   * can give the console to a getty or shell in another session. */
  step(STEP_CONSOLE);
  opt_debug = false; /* fd 2 becomes the container's console */
  if (setsid() < 0)
    die_with_error("setsid");
  for (int fd = 0; fd < 3; fd++)
    if (dup2(console_fd, fd) < 0)
      die_with_error("dup2 the console");
  if (console_fd > 2)
    close(console_fd);

  step(STEP_CAPS);
  drop_caps(o->caps, o->n_caps);
  /* Only 0-2 and the sync fd survive until exec, and the sync fd is O_CLOEXEC: its EOF tells
   * the monitor that exec succeeded. */
  if (sys_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    die_with_error("close_range");

  step(STEP_EXEC);
  static const char *const base_env[] = { "container=tslxc", "PATH=" DEFAULT_PATH };
  char **envp = build_env(base_env, N_ELEMENTS(base_env), o->env, o->n_env);
  umask(022);
  prctl(PR_SET_PDEATHSIG, 0);
  /* From here an EOF on the sync socket means exec ran: an init that then ends at once is an ended
   * init (the monitor reports its status and console), not a child that died on its way. */
  static const struct child_report exec_next = { .step = CHILD_REPORT_EXEC };
  if (send(child_sync_fd, &exec_next, sizeof exec_next, MSG_NOSIGNAL) < 0)
    die_with_error("tell the monitor that exec comes next");
  /* Last before exec: nothing of ours runs under the filter (it needs CAP_SYS_ADMIN, kept). */
  install_seccomp(&o->seccomp);
  execve(o->init_argv[0], o->init_argv, envp);
  die_with_error("execve %s", o->init_argv[0]);
}
