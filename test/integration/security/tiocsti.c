/* What a command inside a container tries against the terminal of whoever ran `tslxc exec`:
 * pushes TEXT (argv[1]) into the input queue of every terminal it can reach (fds 0-2 and
 * /dev/tty) with TIOCSTI, as an attacker would, and says for each fd whether the kernel took it.
 * Also says whether it could fork (a container at its process limit cannot). Static, for
 * busybox images that have no compiler; built by terminal.test.ts.
 *
 * `tiocsti --fill` puts the container at its process limit and keeps it there: it returns at once,
 * leaving a process behind that takes every free slot of the pids limit as soon as one frees. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *result(int fd, const char *text)
{
  if (fd < 0)
    return strerror(errno);
  for (const char *c = text; *c; c++)
    if (ioctl(fd, TIOCSTI, c) < 0)
      return errno == EPERM ? "EPERM" : errno == ENOTTY ? "ENOTTY" : errno == EIO ? "EIO" : strerror(errno);
  return "pushed";
}

static void fill(void)
{
  if (fork() != 0)
    _exit(0);
  setsid();
  int null = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; fd++)
    dup2(null, fd);
  for (;;) {
    pid_t pid = fork();
    if (pid == 0)
      for (;;)
        pause();
    if (pid < 0)
      usleep(20000);
  }
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--fill") == 0)
    fill();
  const char *text = argc > 1 ? argv[1] : "echo INJECTED\n";
  char line[512];
  int n = 0;
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  n += snprintf(line + n, sizeof line - n, "fork:%s", pid < 0 ? (errno == EAGAIN ? "EAGAIN" : strerror(errno)) : "ok");
  if (pid > 0)
    waitpid(pid, NULL, 0);
  for (int fd = 0; fd < 3; fd++)
    n += snprintf(line + n, sizeof line - n, " fd%d:%s", fd, result(fd, text));
  int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
  n += snprintf(line + n, sizeof line - n, " tty:%s", result(tty, text));
  printf("%s\n", line);
  return 0;
}
