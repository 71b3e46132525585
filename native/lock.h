/* tslxc's inter-process locks (lock.c): one rule, compiled into tslxc-helper (plan.c) and into
 * the node addon lib/util/lock.ts loads (lockaddon.c). Plain libc only: the addon is a shared
 * object, the helper a static program. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Takes the lock PATH names without waiting. Returns its fd (hold it; lock_release gives it
 * back), or -1 with errno EWOULDBLOCK when another open file description holds it (another
 * process, or another lock_take of this one), or another errno when it cannot be taken. */
int lock_take(const char *path);

/* Releases a lock lock_take returned: its file goes, then the lock. */
void lock_release(const char *path, int fd);

/* The PID of the process holding PATH, for messages only (0: none, or not known). */
pid_t lock_holder(const char *path);

/* Whether a process holds PATH right now (false when the file is missing). */
bool lock_held(const char *path);
