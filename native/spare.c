/* tslxc-helper spare --args-fd FD: an attach started before its command is known.
 *
 * `tslxc serve` keeps one of these ready, with its pipes, for the next exec of the API: node
 * spawns by fork(), which copies the server's page tables and waits for the child's exec, a wait
 * that a loaded host makes long. The server writes the attach arguments on FD and closes it; this
 * process then runs them as `tslxc-helper attach` would, with the pipes it already has as fds 0-3.
 *
 * On FD, NUL-terminated records: the number of arguments N, then N arguments (the first one
 * "attach"), then environment entries NAME=VALUE (the attach reads TERM for a pty). An FD that
 * ends before any byte (the server is gone, or shut its spare down) ends this process with 125,
 * having done nothing. */
#include "helper.h"

#include <limits.h>

/* Generous: the command line and environment of one exec, which LXD's client sends as JSON. */
#define MAX_ARGS_BYTES (4 << 20)

int main_spare(int argc, char **argv)
{
  die_status = 125;
  unsigned long fd;
  if (argc != 3 || strcmp(argv[1], "--args-fd") != 0 || !parse_ulong(argv[2], &fd) || fd < 3 ||
      fd > INT_MAX)
    die("usage: tslxc-helper spare --args-fd FD (3 or above)");

  size_t len = 0, cap = 4096;
  char *buf = xcalloc(1, cap);
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_ARGS_BYTES)
        die("the arguments on fd %lu exceed %d bytes", fd, MAX_ARGS_BYTES);
      cap *= 2;
      buf = xrealloc(buf, cap);
    }
    ssize_t n = read_retry((int)fd, buf + len, cap - len);
    if (n < 0)
      die_with_error("read the arguments on fd %lu", fd);
    if (n == 0)
      break;
    len += (size_t)n;
  }
  close((int)fd);
  if (len == 0)
    return 125;
  if (buf[len - 1] != '\0')
    die("the arguments on fd %lu do not end with a NUL", fd);

  size_t n_records = 0;
  for (size_t i = 0; i < len; i++)
    n_records += buf[i] == '\0';
  char **records = xcalloc(n_records, sizeof *records);
  for (size_t i = 0, r = 0; i < len; r++) {
    records[r] = buf + i;
    i += strlen(buf + i) + 1;
  }
  unsigned long n_args;
  if (!parse_ulong(records[0], &n_args) || n_args < 1 || n_args > n_records - 1 ||
      strcmp(records[1], "attach") != 0)
    die("the arguments on fd %lu are not an attach's", fd);
  for (size_t r = 1 + n_args; r < n_records; r++)
    if (!strchr(records[r], '=') || putenv(records[r]) != 0)
      die("invalid environment entry on fd %lu", fd);

  /* As if started as `tslxc-helper attach ...`: a re-exec (sealed.c) runs that command line. */
  char **full = xcalloc(n_args + 2, sizeof *full);
  full[0] = helper_argv[0];
  memcpy(full + 1, records + 1, n_args * sizeof *full);
  helper_argv = full;
  return main_attach((int)n_args, full + 1);
}
