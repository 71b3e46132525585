/* attach --pty-size / --control-fd: a pty for a caller that has no terminal of its own.
 *
 * The SSH gateway relays a session's pty over pipes (Node cannot receive a pty master over
 * SCM_RIGHTS), so the window size cannot come from the caller's terminal. It gives the first size
 * on the command line and later changes, and signals, as lines on a pipe:
 *
 *   w ROWS COLS\n   set the window size (the kernel sends SIGWINCH to the pty's foreground group)
 *   s SIGNUM\n      send the signal to the command
 *
 * A malformed line is ignored: the gateway is the only writer, and one bad request must not end
 * a user's session. */
#include "helper.h"

#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <termios.h>

/* Rows and columns a terminal can have: anything else is a caller's mistake, not a size. */
#define MAX_TTY_DIM 10000

static bool parse_dim(const char *s, unsigned short *out)
{
  unsigned long n;
  if (!parse_ulong(s, &n) || n == 0 || n > MAX_TTY_DIM)
    return false;
  *out = (unsigned short)n;
  return true;
}

bool pty_parse_size(const char *s, struct winsize *ws)
{
  char rows[16], cols[16];
  const char *x = strchr(s, 'x');
  if (!x || (size_t)(x - s) >= sizeof rows || strlen(x + 1) >= sizeof cols)
    return false;
  memcpy(rows, s, x - s);
  rows[x - s] = '\0';
  strcpy(cols, x + 1);
  *ws = (struct winsize){ 0 };
  return parse_dim(rows, &ws->ws_row) && parse_dim(cols, &ws->ws_col);
}

static void apply_line(char *line, int master, int pidfd)
{
  char *save = NULL;
  char *verb = strtok_r(line, " ", &save);
  char *a = strtok_r(NULL, " ", &save);
  char *b = strtok_r(NULL, " ", &save);
  if (!verb || !a)
    return;
  if (strcmp(verb, "w") == 0 && b && master >= 0) {
    struct winsize ws = { 0 };
    if (parse_dim(a, &ws.ws_row) && parse_dim(b, &ws.ws_col))
      ioctl(master, TIOCSWINSZ, &ws);
  } else if (strcmp(verb, "s") == 0 && pidfd >= 0) {
    unsigned long sig;
    if (parse_ulong(a, &sig) && sig > 0 && sig < (unsigned long)NSIG)
      sys_pidfd_send_signal(pidfd, (int)sig);
  } else {
    debug("control: ignored request '%s'", verb);
  }
}

bool pty_control_read(struct pty_control *c, int master, int pidfd)
{
  ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return true;
  if (n <= 0)
    return false;
  c->len += n;
  c->buf[c->len] = '\0';
  char *start = c->buf;
  char *nl;
  while ((nl = strchr(start, '\n'))) {
    *nl = '\0';
    apply_line(start, master, pidfd);
    start = nl + 1;
  }
  c->len = strlen(start);
  memmove(c->buf, start, c->len + 1);
  if (c->len == sizeof c->buf - 1) /* a line longer than any request: drop it */
    c->len = 0;
  return true;
}
