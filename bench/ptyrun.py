#!/usr/bin/python3
"""Runs argv once on a terminal of its own and prints how long it took, in ms, on stdout.

A new pty whose slave is the controlling terminal and fds 0-2 of a new session running argv, as a
user's terminal would be (posix_spawn with setsid: the session leader's first open of the slave
makes it its controlling terminal); its output is read and dropped. The time runs from the spawn
to the moment argv exited and every holder of the slave closed it (what a user waits for before
the prompt comes back), so Python's own start-up is not in it. Used by bench/peers.ts (underPty)."""
import os
import shutil
import sys
import time

master, slave = os.openpty()
name = os.ttyname(slave)
os.close(slave)
path = shutil.which(sys.argv[1]) or sys.argv[1]
t0 = time.perf_counter()
pid = os.posix_spawn(path, sys.argv[1:], os.environ, setsid=True, file_actions=[
    (os.POSIX_SPAWN_OPEN, 0, name, os.O_RDWR, 0),
    (os.POSIX_SPAWN_DUP2, 0, 1),
    (os.POSIX_SPAWN_DUP2, 0, 2),
    (os.POSIX_SPAWN_CLOSE, master),
])
while True:
    try:
        if not os.read(master, 65536):
            break
    except OSError:  # EIO: no one holds the slave any more
        break
_, status = os.waitpid(pid, 0)
ms = (time.perf_counter() - t0) * 1000
print(f'{ms:.3f}')
sys.exit(os.waitstatus_to_exitcode(status))
