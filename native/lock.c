/* tslxc's inter-process locks: flock(2) on a file, so the kernel releases a lock when its holder
 * dies (SIGKILL included) and nobody ever has to guess whether a holder is still alive.
 *
 * Take:    open(PATH, O_CREAT), flock(LOCK_EX|LOCK_NB), then check that PATH still names the
 *          inode locked; if not, the holder released it between our open and our flock: retry.
 * Release: unlink(PATH) while holding, then unlock and close.
 *
 * Why it excludes: a holder unlinks PATH only while it holds the lock on the inode PATH names, so
 * a taker that finds PATH naming its locked inode after the flock holds the one inode PATH names,
 * and flock lets one open file description at a time hold it. Two takers in one process use two
 * open() calls, so they exclude each other too. Released locks leave no file; a holder that died
 * leaves one, which is no lock at all: the next taker takes it and removes it on release.
 * No PID is written into the file: lock_holder asks the kernel (/proc/locks). */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Enough for any real race (each retry means a holder released in between). */
#define LOCK_TAKE_TRIES 64

/* Before flock, a lock was a directory with an `owner` file: one left by an older tslxc (an
 * upgrade without a host reboot) is removed, or its key could never be taken again. */
static int remove_old_lock_dir(const char *path)
{
  char owner[4096];
  if (snprintf(owner, sizeof owner, "%s/owner", path) >= (int)sizeof owner) {
    errno = ENAMETOOLONG;
    return -1;
  }
  (void)unlink(owner);
  return rmdir(path);
}

int lock_take(const char *path)
{
  for (int i = 0; i < LOCK_TAKE_TRIES; i++) {
    int fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EISDIR && (remove_old_lock_dir(path) == 0 || errno == ENOENT))
        continue;
      return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
    struct stat locked, named;
    if (fstat(fd, &locked) == 0 && lstat(path, &named) == 0 && locked.st_dev == named.st_dev &&
        locked.st_ino == named.st_ino)
      return fd;
    close(fd);
  }
  errno = EWOULDBLOCK;
  return -1;
}

void lock_release(const char *path, int fd)
{
  (void)unlink(path);
  /* Unlock explicitly: a process forked while we held it (the helper's start) may still share
   * this open file description. */
  (void)flock(fd, LOCK_UN);
  close(fd);
}

/* From /proc/locks ("1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"), not from the file: the
 * kernel's answer cannot be stale, and writing a PID into the file on every take would cost a
 * data block write each time on a disk filesystem. A line for the same inode number on another
 * device only counts when none matches both (btrfs shows a subvolume's anonymous device in stat). */
pid_t lock_holder(const char *path)
{
  struct stat st;
  if (stat(path, &st) < 0)
    return 0;
  FILE *f = fopen("/proc/locks", "re");
  if (!f)
    return 0;
  pid_t exact = 0, same_ino = 0;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char kind[16];
    int pid;
    unsigned int maj, min;
    unsigned long long ino;
    if (strstr(line, "->") ||
        sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", kind, &pid, &maj, &min, &ino) != 5 ||
        strcmp(kind, "FLOCK") != 0 || ino != (unsigned long long)st.st_ino)
      continue;
    if (maj == major(st.st_dev) && min == minor(st.st_dev))
      exact = pid;
    else if (!same_ino)
      same_ino = pid;
  }
  fclose(f);
  return exact ? exact : same_ino;
}

bool lock_held(const char *path)
{
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return false;
  /* A shared lock is enough to learn whether an exclusive one is held; it is dropped at once. */
  bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
  close(fd);
  return held;
}
