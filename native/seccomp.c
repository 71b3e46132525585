/* The seccomp filter of every container process: init and every attached command.
 *
 * Two parts, one BPF program (README.md, "seccomp"):
 * - the mount guard. Without a user namespace the container's root may remount any filesystem it
 *   can reach, and some of those are the host's: the filesystem holding the rootfs, the cgroup
 *   hierarchies. A `mount -o remount,ro /` in a shutdown script would make the host's filesystem
 *   read-only. The guard refuses superblock remounts (MS_REMOUNT without MS_BIND) with EPERM and
 *   fspick(2) (the new API's way to them) with ENOSYS, so that callers fall back to mount(2).
 *   Per-mount changes (MS_REMOUNT|MS_BIND, mount_setattr) and new mounts stay allowed;
 * - a deny list: syscalls a system container never needs that reach the host's kernel as a
 *   whole (kexec, modules, file handles, kernel keyrings, bpf, perf, swap, ...), and umount2 with
 *   MNT_FORCE. They fail with EPERM. The caller adds names (--seccomp-deny) or takes defaults out
 *   (--seccomp-allow).
 *
 * Every ABI the x86_64 kernel runs is filtered with its own numbers: x86_64, x32 (the same
 * entry with __X32_SYSCALL_BIT; numbers from 512 up are x32's own) and i386 (int 0x80 works from
 * a 64-bit process too). Any other audit arch fails every syscall with EPERM. */
#include "helper.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef __x86_64__
#error "the seccomp filter knows the x86_64, x32 and i386 syscall tables only"
#endif

#define X32_BIT 0x40000000u

static const struct syscall_entry {
  const char *name;
  int nr[3]; /* ABI_X86_64, ABI_I386, ABI_X32 */
} syscalls[] = {
#define SYSCALL(name, a, b, c) { name, { a, b, c } },
#include "syscalls.h"
#undef SYSCALL
};
enum abi { ABI_X86_64, ABI_I386, ABI_X32 };

/* The default deny list. umount2 is not in it: only its MNT_FORCE form is refused (below). */
static const char *const default_deny[] = {
  "kexec_load",
  "kexec_file_load", /* boot another kernel (sys_boot is kept) */
  "init_module",
  "finit_module",
  "delete_module", /* modules (sys_module is dropped too) */
  "create_module",
  "query_module",
  "get_kernel_syms",   /* ... and their obsolete forms */
  "open_by_handle_at", /* any inode of a host filesystem by handle */
  "bpf",
  "perf_event_open", /* kernel memory and tracing */
  "keyctl",
  "add_key",
  "request_key", /* kernel keyrings: not namespaced */
  "syslog",      /* the host's kernel log, dmesg -C */
  "swapon",
  "swapoff", /* host-wide swap */
  "iopl",
  "ioperm",
  "vm86",
  "vm86old", /* raw I/O ports, vm86 mode */
  "settimeofday",
  "clock_settime",
  "clock_settime64",
  "stime", /* the host's clock */
};

static const struct syscall_entry *find_syscall(const char *name)
{
  for (size_t i = 0; i < N_ELEMENTS(syscalls); i++)
    if (strcmp(syscalls[i].name, name) == 0)
      return &syscalls[i];
  return NULL;
}

bool seccomp_known_syscall(const char *name)
{
  return find_syscall(name) != NULL;
}

static bool in_list(const char *const *list, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0)
      return true;
  return false;
}

/* (default - allow) + deny */
static bool denied(const struct seccomp_policy *p, const char *name)
{
  if (in_list(p->deny, p->n_deny, name))
    return true;
  return in_list(default_deny, N_ELEMENTS(default_deny), name) &&
         !in_list(p->allow, p->n_allow, name);
}

/* ---- the program ---- */

#define MAX_INSNS 4096 /* BPF_MAXINSNS */
static struct sock_filter prog_buf[MAX_INSNS];
static size_t prog_len;

static size_t emit(struct sock_filter insn)
{
  if (prog_len >= MAX_INSNS)
    die("the seccomp filter is too long");
  prog_buf[prog_len] = insn;
  return prog_len++;
}
#define LD(off) emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off)))
#define JEQ(k, jt, jf)                                                                             \
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (jt), (jf)))
#define JGE(k, jt, jf)                                                                             \
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), (jt), (jf)))
#define JSET(k, jt, jf)                                                                            \
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (jt), (jf)))
#define JA() emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0))
#define RET(k) emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (k)))
#define NR_OFF offsetof(struct seccomp_data, nr)
/* The low word of an argument (little endian): enough for flags. */
#define ARG_OFF(i) offsetof(struct seccomp_data, args[i])

static void patch_ja(size_t at, size_t target)
{
  prog_buf[at].k = target - (at + 1);
}

static int number(const char *name, enum abi abi)
{
  const struct syscall_entry *e = find_syscall(name);
  int nr = e ? e->nr[abi] : -1;
  if (nr >= 0 && abi == ABI_X32)
    nr |= X32_BIT;
  return nr;
}

/* The rules for one ABI; every path ends in a RET. */
static void emit_abi(const struct seccomp_policy *p, enum abi abi)
{
  LD(NR_OFF);
  for (size_t i = 0; i < N_ELEMENTS(syscalls); i++) {
    int nr = syscalls[i].nr[abi];
    if (nr < 0 || !denied(p, syscalls[i].name))
      continue;
    JEQ(number(syscalls[i].name, abi), 0, 1);
    RET(SECCOMP_RET_ERRNO | EPERM);
  }
  int fspick = number("fspick", abi);
  if (fspick >= 0) {
    JEQ(fspick, 0, 1);
    RET(SECCOMP_RET_ERRNO | ENOSYS);
  }
  if (!in_list(p->allow, p->n_allow, "umount2")) {
    int umount2 = number("umount2", abi);
    JEQ(umount2, 0, 4);
    LD(ARG_OFF(1));
    JSET(MNT_FORCE, 0, 1);
    RET(SECCOMP_RET_ERRNO | EPERM);
    RET(SECCOMP_RET_ALLOW);
  }
  int mount = number("mount", abi);
  JEQ(mount, 0, 5);
  LD(ARG_OFF(3));
  JSET(MS_REMOUNT, 0, 2);
  JSET(MS_BIND, 1, 0);
  RET(SECCOMP_RET_ERRNO | EPERM);
  RET(SECCOMP_RET_ALLOW);
  RET(SECCOMP_RET_ALLOW);
}

void install_seccomp(const struct seccomp_policy *p)
{
  static const struct seccomp_policy none;
  if (!p)
    p = &none;
  for (size_t i = 0; i < p->n_deny; i++)
    if (!find_syscall(p->deny[i]))
      die("seccomp: unknown syscall %s", p->deny[i]);
  for (size_t i = 0; i < p->n_allow; i++)
    if (!find_syscall(p->allow[i]))
      die("seccomp: unknown syscall %s", p->allow[i]);

  prog_len = 0;
  LD(offsetof(struct seccomp_data, arch));
  JEQ(AUDIT_ARCH_I386, 0, 1);
  size_t to_i386 = JA();
  JEQ(AUDIT_ARCH_X86_64, 1, 0);
  RET(SECCOMP_RET_ERRNO | EPERM); /* no other ABI exists on x86_64 */
  LD(NR_OFF);
  JGE(X32_BIT, 0, 1);
  size_t to_x32 = JA();
  emit_abi(p, ABI_X86_64);
  patch_ja(to_x32, prog_len);
  emit_abi(p, ABI_X32);
  patch_ja(to_i386, prog_len);
  emit_abi(p, ABI_I386);

  struct sock_fprog prog = { .len = prog_len, .filter = prog_buf };
  /* Without no_new_privs (setuid binaries must keep working inside): needs CAP_SYS_ADMIN. */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    die_with_error("install the seccomp filter");
}

void seccomp_policy_add(struct seccomp_policy *p, bool deny, const char *name)
{
  const char *opt = deny ? "--seccomp-deny" : "--seccomp-allow";
  if (!find_syscall(name))
    die("%s %s: unknown syscall", opt, name);
  size_t *n = deny ? &p->n_deny : &p->n_allow;
  if (*n >= MAX_SYSCALL_OPTS)
    die("too many %s options", opt);
  (deny ? p->deny : p->allow)[(*n)++] = name;
}
