/* tslxc-helper console: the caller's terminal <-> a monitor's console.sock, and the terminal's
 * size, at the start and at each SIGWINCH, to its console.ctl (--control). */
#include "helper.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>

static int connect_unix(const char *path)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die_with_error("socket");
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path)
    die("console socket path too long: %s", path);
  strcpy(addr.sun_path, path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/* The size is the console's comfort, not its function: a monitor without console.ctl (started
 * by an older tslxc) or a write that fails leaves the size as it was. */
static void send_size(int control)
{
  struct winsize ws;
  if (control < 0 || ioctl(0, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
    return;
  char line[64];
  int n = snprintf(line, sizeof line, "w %u %u\n", ws.ws_row, ws.ws_col);
  (void)send(control, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int main_console(int argc, char **argv)
{
  const char *socket_path = NULL, *control_path = NULL;
  char escape_letter = 'a';
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      die("option %s needs a value", argv[i]);
    if (strcmp(argv[i], "--socket") == 0)
      socket_path = argv[++i];
    else if (strcmp(argv[i], "--control") == 0)
      control_path = argv[++i];
    else if (strcmp(argv[i], "--escape") == 0) {
      const char *v = argv[++i];
      if (strlen(v) != 1 || !((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z')))
        die("--escape %s: expected a letter (Ctrl-LETTER)", v);
      escape_letter = v[0];
    } else
      die("console: unknown option %s", argv[i]);
  }
  if (!socket_path)
    die("console: --socket is required");
  const char escape = escape_letter & 0x1f; /* Ctrl-letter */

  autofd int sock = connect_unix(socket_path);
  if (sock < 0)
    die_with_error("connect to %s", socket_path);

  bool interactive = isatty(0);
  autofd int control = -1, winch = -1;
  if (interactive) {
    dprintf(2, "Connected to the console. Type Ctrl-%c q to detach.\r\n", escape_letter | 0x20);
    tty_make_raw(0);
    if (control_path && (control = connect_unix(control_path)) >= 0) {
      sigset_t mask;
      sigemptyset(&mask);
      sigaddset(&mask, SIGWINCH);
      sigprocmask(SIG_BLOCK, &mask, NULL);
      winch = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
      send_size(control);
    }
  }

  bool stdin_open = true, saw_escape = false;
  for (;;) {
    struct pollfd pfd[3] = {
      { .fd = sock, .events = POLLIN },
      { .fd = stdin_open ? 0 : -1, .events = POLLIN },
      { .fd = winch, .events = POLLIN },
    };
    if (poll(pfd, N_ELEMENTS(pfd), -1) < 0) {
      if (errno == EINTR)
        continue;
      die_with_error("poll");
    }
    if (pfd[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(winch, &si, sizeof si) == sizeof si)
        ;
      send_size(control);
    }
    char buf[4096];
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read_retry(sock, buf, sizeof buf);
      if (n <= 0)
        break; /* the container is gone (or the console was busy) */
      if (write_all(1, buf, n) < 0)
        break;
    }
    if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read_retry(0, buf, sizeof buf);
      if (n <= 0) {
        stdin_open = false;
        shutdown(sock, SHUT_WR);
        continue;
      }
      /* Ctrl-a q detaches, Ctrl-a Ctrl-a sends one Ctrl-a, Ctrl-a anything else sends both. */
      char out[2 * sizeof buf];
      size_t len = 0;
      for (ssize_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (saw_escape) {
          saw_escape = false;
          if (ch == 'q' || ch == 'Q') {
            (void)write_all(sock, out, len);
            tty_restore();
            if (interactive)
              dprintf(2, "\r\nDetached from the console.\n");
            return 0;
          }
          if (ch != escape)
            out[len++] = escape;
          out[len++] = ch;
        } else if (ch == escape && interactive) {
          saw_escape = true;
        } else {
          out[len++] = ch;
        }
      }
      if (write_all(sock, out, len) < 0)
        break;
    }
  }
  tty_restore();
  return 0;
}
