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

#include <elf.h>
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

/* How much of the binary the kernel loads: the end of its last PT_LOAD segment. What follows
 * (debug info, symbols, section headers) is not copied: the copy of a running container is held
 * in memory as long as its monitor lives. The whole file if the headers do not make sense. */
static off_t loaded_size(int fd, off_t file_size)
{
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
    return file_size;
  Elf64_Phdr ph[64];
  size_t len = eh.e_phnum * sizeof(Elf64_Phdr);
  if (pread(fd, ph, len, eh.e_phoff) != (ssize_t)len)
    return file_size;
  uint64_t end = eh.e_phoff + len;
  for (size_t i = 0; i < eh.e_phnum; i++)
    if (ph[i].p_offset + ph[i].p_filesz > end)
      end = ph[i].p_offset + ph[i].p_filesz; /* every segment, not only PT_LOAD: notes too */
  return end > 0 && end <= (uint64_t)file_size ? (off_t)end : file_size;
}

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
  off_t size = loaded_size(self, st.st_size), off = 0;
  while (off < size) {
    ssize_t n = sendfile(mfd, self, &off, size - off);
    if (n <= 0)
      die_with_error("copy the helper into a memfd");
  }
  if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
    die_with_error("seal the helper's copy");
  /* mfd is close-on-exec: fine for an ELF binary (only scripts need their fd after exec). */
  syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
  die_with_error("re-execute the helper from its sealed copy");
}
