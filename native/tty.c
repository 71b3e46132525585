/* Raw mode for the caller's terminal, restored on every way out. */
#include "helper.h"

#include <termios.h>

static struct termios saved_termios;
static int saved_fd = -1;

void tty_make_raw(int fd)
{
  struct termios raw;
  if (tcgetattr(fd, &saved_termios) < 0)
    return; /* not a terminal: nothing to do */
  raw = saved_termios;
  cfmakeraw(&raw);
  if (tcsetattr(fd, TCSADRAIN, &raw) < 0)
    die_with_error("set the terminal to raw mode");
  saved_fd = fd;
}

void tty_restore(void)
{
  if (saved_fd >= 0) {
    tcsetattr(saved_fd, TCSADRAIN, &saved_termios);
    saved_fd = -1;
  }
}
