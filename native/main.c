/* tslxc-helper: the native half of tslxc. Dispatches to one function per mode. */
#include "helper.h"

#include <stdio.h>

static void usage(void)
{
  static const char text[] =
      "usage: tslxc-helper start [OPTIONS] -- INIT [ARGS...]\n"
      "       tslxc-helper attach [OPTIONS] -- CMD [ARGS...]\n"
      "       tslxc-helper spare --args-fd FD   (an attach whose arguments come later on FD)\n"
      "       tslxc-helper console --socket PATH [--escape CHAR]\n"
      "       tslxc-helper file (--pid PID | --rootfs DIR [--rootfs-lower L --rootfs-upper U "
      "--rootfs-work W])\n"
      "                         (--read PATH | --write PATH [--mode M] [--uid U] [--gid G] "
      "[--mkdir [--mkdir-mode M]])\n"
      "                         [--as-user]\n"
      "       tslxc-helper idmap-probe DIR\n"
      "       tslxc-helper plan-check OP ARG...   (one check of a start plan, for the tests)\n"
      "       tslxc-helper plan-exec < SPEC       (execute a start spec: the TypeScript start)\n"
      "       tslxc-helper host-limits --name NAME --run-dir DIR [--need KEY=N]...\n"
      "       tslxc-helper devices --cgroup DIR [--allow RULE]...\n"
      "       tslxc-helper disk --pid PID (--add SRC:DST[:ro,idmap] | --remove DST)\n"
      "       tslxc-helper cli JS ARGS...   (bin/tslxc: start and exec without node, else node JS "
      "ARGS)\n"
      "       tslxc-helper import-pass PLAN SRC DEST   (image import's pass: listing on stdout, "
      "results on fd 3)\n"
      "       tslxc-helper serve-front -- CMD...   (tslxc serve: holds its sockets while idle)\n"
      "       tslxc-helper unixdev --pid PID (--add c|b:MAJOR:MINOR:MODE:UID:GID:/DST | --remove "
      "DST)\n"
      "See native/README.md for the options.\n";
  (void)write_all(2, text, sizeof text - 1);
}

char **helper_argv;

int main(int argc, char **argv)
{
  helper_argv = argv;
  if (argc < 2) {
    usage();
    return 1;
  }
  if (strcmp(argv[1], "start") == 0)
    return main_start(argc - 1, argv + 1);
  if (strcmp(argv[1], "attach") == 0)
    return main_attach(argc - 1, argv + 1);
  if (strcmp(argv[1], "spare") == 0)
    return main_spare(argc - 1, argv + 1);
  if (strcmp(argv[1], "console") == 0)
    return main_console(argc - 1, argv + 1);
  if (strcmp(argv[1], "file") == 0)
    return main_file(argc - 1, argv + 1);
  if (strcmp(argv[1], "devices") == 0)
    return main_devices(argc - 1, argv + 1);
  if (strcmp(argv[1], "disk") == 0)
    return main_disk(argc - 1, argv + 1);
  if (strcmp(argv[1], "cli") == 0)
    return main_cli(argc - 1, argv + 1);
  if (strcmp(argv[1], "import-pass") == 0)
    return main_import_pass(argc - 1, argv + 1);
  if (strcmp(argv[1], "serve-front") == 0)
    return main_serve_front(argc - 1, argv + 1);
  if (strcmp(argv[1], "unixdev") == 0)
    return main_unixdev(argc - 1, argv + 1);
  if (strcmp(argv[1], "host-limits") == 0)
    return main_host_limits(argc - 1, argv + 1);
  if (strcmp(argv[1], "plan-check") == 0)
    return main_plan_check(argc - 1, argv + 1);
  if (strcmp(argv[1], "plan-exec") == 0)
    return main_plan_exec(argc - 1, argv + 1);
  if (strcmp(argv[1], "idmap-probe") == 0)
    return main_idmap_probe(argc - 1, argv + 1);
  if (strcmp(argv[1], "selftest") == 0)
    return main_selftest(argc - 1, argv + 1);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage();
    return 0;
  }
  die("unknown mode '%s' (expected start, attach, console, file, idmap-probe, devices, disk or "
      "unixdev)",
      argv[1]);
}
