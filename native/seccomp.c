/* A seccomp guard against reconfiguring shared superblocks.
 *
 * Without a user namespace the container's root may remount any filesystem it can reach, and
 * some of those are the host's: the filesystem holding the rootfs, the cgroup hierarchies. A
 * `mount -o remount,ro /` in a shutdown script would make the host's filesystem read-only. The
 * guard refuses superblock remounts (MS_REMOUNT without MS_BIND) with EPERM and fspick(2) (the new
 * API's way to them) with ENOSYS, so that callers fall back to mount(2). Per-mount changes
 * (MS_REMOUNT|MS_BIND, mount_setattr) and new mounts stay allowed. */
#include "helper.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define X32_BIT 0x40000000u
#define NR_MOUNT_X86_64 165
#define NR_MOUNT_I386 21
#define NR_FSPICK 433 /* the same number on x86_64 and i386 */

#define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, jt, jf) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (jt), (jf))
#define JSET(k, jt, jf) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (jt), (jf))
#define RET(k) BPF_STMT(BPF_RET | BPF_K, (k))

void install_mount_guard(void)
{
  /* Jump offsets count from the next instruction; the labels are the line numbers. */
  static struct sock_filter filter[] = {
    /* 0 */ LD(offsetof(struct seccomp_data, arch)),
    /* 1 */ JEQ(AUDIT_ARCH_X86_64, 0, 5),
    /* 2 */ LD(offsetof(struct seccomp_data, nr)),
    /* 3 */ JEQ(NR_MOUNT_X86_64, 7, 0),
    /* 4 */ JEQ(NR_MOUNT_X86_64 | X32_BIT, 6, 0),
    /* 5 */ JEQ(NR_FSPICK, 9, 0),
    /* 6 */ JEQ(NR_FSPICK | X32_BIT, 8, 9),
    /* 7 */ JEQ(AUDIT_ARCH_I386, 0, 8),
    /* 8 */ LD(offsetof(struct seccomp_data, nr)),
    /* 9 */ JEQ(NR_MOUNT_I386, 1, 0),
    /* 10 */ JEQ(NR_FSPICK, 4, 5),
    /* 11: mount(2): its flags, args[3] (the low word: little endian) */
    LD(offsetof(struct seccomp_data, args[3])),
    /* 12 */ JSET(MS_REMOUNT, 0, 3),
    /* 13 */ JSET(MS_BIND, 2, 0),
    /* 14 */ RET(SECCOMP_RET_ERRNO | EPERM),
    /* 15 */ RET(SECCOMP_RET_ERRNO | ENOSYS),
    /* 16 */ RET(SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = N_ELEMENTS(filter), .filter = filter };
  /* Without no_new_privs (setuid binaries must keep working inside): needs CAP_SYS_ADMIN, so
   * this runs before capabilities are dropped. */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    die_with_error("install the seccomp mount guard");
}
