#!/usr/bin/python3
"""Plays an admin's terminal for terminal.test.ts: a pty whose slave is the controlling terminal
of a new session running the command (as a login shell would run `tslxc exec ...`).

argv[1] is JSON: {"cmd": [...], "type": [[SECONDS, TEXT], ...] (typed while it runs, SECONDS after
its start), "after": TEXT (typed once it exited), "wait": SECONDS (then waited), "log": FILE
(what the terminal shows, appended as it comes), "stop": FILE (once it exists, the command gets
SIGTERM: for one that runs until told, the gateway), "timeout": SECONDS}.
Prints JSON: {"code", "output" (what the terminal showed), "pending" (what sits in the terminal's
input queue at the end, unread: keystrokes typed after exit that nobody stole, and anything
pushed into it with TIOCSTI)}."""
import json
import os
import select
import struct
import sys
import termios
import fcntl
import time

cfg = json.loads(sys.argv[1])
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    if slave > 2:
        os.close(slave)
    try:
        os.execvp(cfg['cmd'][0], cfg['cmd'])
    finally:
        os._exit(127)

output = b''
log = open(cfg['log'], 'ab', buffering=0) if cfg.get('log') else None


def pump(timeout):
    global output
    r, _, _ = select.select([master], [], [], timeout)
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        output += data
        if log:
            log.write(data)


start = time.monotonic()
typed = sorted(cfg.get('type', []))
code = None
deadline = start + cfg.get('timeout', 60)
while code is None:
    now = time.monotonic()
    while typed and now - start >= typed[0][0]:
        os.write(master, typed.pop(0)[1].encode())
    pump(0.05)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
    elif now > deadline:
        os.kill(pid, 9)
    elif cfg.get('stop') and os.path.exists(cfg['stop']):
        os.kill(pid, 15)
        cfg['stop'] = None
for _ in range(5):
    pump(0.05)
if cfg.get('after'):
    os.write(master, cfg['after'].encode())
end = time.monotonic() + cfg.get('wait', 0)
while time.monotonic() < end:
    pump(0.05)

# What is left in the input queue: read it without a line discipline's wait.
attrs = termios.tcgetattr(slave)
attrs[3] &= ~(termios.ICANON | termios.ECHO)
attrs[6][termios.VMIN] = 0
attrs[6][termios.VTIME] = 0
termios.tcsetattr(slave, termios.TCSANOW, attrs)
fcntl.fcntl(slave, fcntl.F_SETFL, os.O_NONBLOCK)
pending = b''
try:
    while True:
        chunk = os.read(slave, 4096)
        if not chunk:
            break
        pending += chunk
except OSError:
    pass
pump(0.05)
print(json.dumps({'code': code, 'output': output.decode('utf-8', 'replace'), 'pending': pending.decode('utf-8', 'replace')}))
