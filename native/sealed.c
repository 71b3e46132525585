/* Re-execution from a sealed copy of the helper (the defence runc took against CVE-2019-5736).
 *
 * A process that runs the helper's code while it is in a container's pid namespace (the exec
 * server's children and attach's direct-path child, between fork and exec) is visible inside, and
 * its /proc/PID/exe opens the file it was executed from: with the host's helper binary there, the
 * container's root (CAP_SYS_PTRACE, CAP_DAC_OVERRIDE) could open it and, as soon as no process
 * executes it any more (ETXTBSY is all that stops it before), write into it, and the host would
 * run that as root at the next start. Run from a sealed memfd, the exe of those processes is an
 * anonymous copy that cannot be written (F_SEAL_WRITE) nor resized, and is gone with them. */
#include "helper.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

void reexec_sealed(char **argv)
{
  autofd int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0)
    die_with_error("open /proc/self/exe");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & SEALS) == SEALS) {
    prctl(PR_SET_NAME, "tslxc-helper"); /* this is the sealed copy; exec named it after its fd */
    return;
  }

  /* MFD_EXEC: where vm.memfd_noexec is set, memfds are not executable unless asked for. Older
   * kernels do not know the flag (EINVAL) and make every memfd executable. */
  autofd int mfd = memfd_create("tslxc-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL)
    mfd = memfd_create("tslxc-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    die_with_error("memfd_create");
  struct stat st;
  if (fstat(self, &st) < 0)
    die_with_error("stat /proc/self/exe");
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(mfd, self, &off, st.st_size - off);
    if (n <= 0)
      die_with_error("copy the helper into a memfd");
  }
  if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
    die_with_error("seal the helper's copy");
  /* mfd is close-on-exec: fine for an ELF binary (only scripts need their fd after exec). */
  syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
  die_with_error("re-execute the helper from its sealed copy");
}
