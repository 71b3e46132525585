/* tslxc __complete VERB... WORD without node (cli.c): a Tab after a verb whose first argument is
 * a container (start, stop, exec, delete, snapshot create...), the completion people press most.
 *
 * Node's start-up is nearly all of a completion's cost, and a shell waits for it at every Tab.
 * Which verbs take a container first, and which kind (any, running, stopped), is the verbs' own
 * definition: the build writes it from the same grammar node's completion walks
 * (scripts/bundle.mjs writes dist/lib/cli/completion-first.txt, "WORDS<tab>KIND" lines). The names
 * are read as lib/cli/complete.ts reads them: the valid names of the dirs under the state's
 * containers dir, running as `tslxc list` says (layout.c's instance_init_alive), and the "NAME:"
 * words of the client's API servers (the completion-remotes file lib/client/config.ts writes). A
 * "REMOTE:" word, or a default remote, goes to node. Anything else
 * (an option, a second argument, a snapshot's "NAME/", a verb not in the table, no table) goes to
 * node, which walks the whole grammar. */
#include "helper.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

enum kind { KIND_NONE, KIND_ANY, KIND_RUNNING, KIND_STOPPED };

/* The kind of the verb's first argument, from the table beside the bundles (JS is bin/tslxc.js):
 * the line "WORDS<tab>KIND" whose WORDS are the verb's words, joined by spaces. */
static enum kind verb_kind(const char *js, const char *words)
{
  char table[PATH_MAX], text[16384];
  const char *slash = strrchr(js, '/');
  int n = slash ? snprintf(table, sizeof table, "%.*s/../dist/lib/cli/completion-first.txt",
                           (int)(slash - js), js)
                : snprintf(table, sizeof table, "../dist/lib/cli/completion-first.txt");
  if (n <= 0 || n >= (int)sizeof table)
    return KIND_NONE;
  ssize_t len = read_small_file_at(AT_FDCWD, table, text, sizeof text);
  if (len <= 0 || (size_t)len >= sizeof text - 1)
    return KIND_NONE;
  size_t wlen = strlen(words);
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    if (strncmp(line, words, wlen) != 0 || line[wlen] != '\t')
      continue;
    const char *k = line + wlen + 1;
    return strcmp(k, "container") == 0           ? KIND_ANY
           : strcmp(k, "running container") == 0 ? KIND_RUNNING
           : strcmp(k, "stopped container") == 0 ? KIND_STOPPED
                                                 : KIND_NONE;
  }
  return KIND_NONE;
}

static void cleanup_dirp(DIR **d)
{
  if (*d)
    closedir(*d);
}

static int by_name(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "REMOTE:..." from what `tslxc list REMOTE:` left (lib/cli/remote/list.ts): "REMOTE:NAME<tab>KIND"
 * lines, KIND the argument kind each completes. No file (never listed, or "local:"): node. */
static int remote_names(const char *word, const char *colon, enum kind kind)
{
  char file[PATH_MAX], rel[128], text[65536];
  size_t rlen = (size_t)(colon - word);
  if (rlen == 0 || rlen > 63 || strncmp(word, "local:", 6) == 0)
    return -1;
  for (size_t i = 0; i < rlen; i++)
    if (!((word[i] >= 'a' && word[i] <= 'z') || (word[i] >= '0' && word[i] <= '9') ||
          word[i] == '-'))
      return -1;
  snprintf(rel, sizeof rel, "cache/%.*s.instances", (int)rlen, word);
  if (!client_file(file, sizeof file, rel))
    return -1;
  ssize_t len = read_small_file_at(AT_FDCWD, file, text, sizeof text);
  if (len < 0 || len >= (ssize_t)sizeof text - 1)
    return -1;
  const char *want = kind == KIND_RUNNING   ? "running container"
                     : kind == KIND_STOPPED ? "stopped container"
                                            : NULL;
  size_t wlen = strlen(word);
  /* Written sorted by the server's order; printed as they come, one a line. */
  for (char *line = text, *next; *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char *tab = strchr(line, '\t');
    if (!tab)
      continue;
    *tab = '\0';
    if (strncmp(line, word, wlen) == 0 && (!want || strcmp(tab + 1, want) == 0))
      printf("%s\n", line);
    if (!next)
      break;
  }
  fflush(stdout);
  return 0;
}

/* 0 when the candidates were printed, -1 for node. argv: the verb's words (one to three), then
 * the word being completed. */
int cli_complete(const char *js, int argc, char **argv)
{
  if (argc < 2 || argc > 4)
    return -1;
  const char *word = argv[argc - 1];
  /* "REMOTE:..." is a remote's container, and with a default remote (`remote switch`) a bare name
   * is too: node reads the names a list of that remote left. */
  char remotes[PATH_MAX], current[PATH_MAX];
  if (word[0] == '-' || strchr(word, '/'))
    return -1;
  const char *colon = strchr(word, ':');
  if (!client_file(remotes, sizeof remotes, "completion-remotes") ||
      !client_file(current, sizeof current, "default-remote") || access(current, F_OK) == 0)
    return -1;
  char verb[256] = "";
  for (int i = 0; i < argc - 1; i++) {
    /* Words with a space, tab or newline cannot name a verb; they could join two in the table. */
    if (strpbrk(argv[i], " \t\n") || strlen(verb) + strlen(argv[i]) + 2 > sizeof verb)
      return -1;
    if (i)
      strcat(verb, " ");
    strcat(verb, argv[i]);
  }
  enum kind kind = verb_kind(js, verb);
  if (kind == KIND_NONE)
    return -1;
  if (colon)
    return remote_names(word, colon, kind);
  const char *root = state_root();
  if (!root)
    return -1;
  char dir[PATH_MAX];
  int n = snprintf(dir, sizeof dir, "%s/%s", strcmp(root, "/") == 0 ? "" : root,
                   LAYOUT_STATE_CONTAINERS);
  if (n <= 0 || n >= (int)sizeof dir)
    return -1;
  __attribute__((cleanup(cleanup_dirp))) DIR *d = opendir(dir);
  if (!d && errno != ENOENT) /* ENOENT: no containers, no local name to offer, as node says */
    return -1;
  size_t count = 0, cap = 64, wlen = strlen(word);
  char **names = xcalloc(cap, sizeof *names);
  for (struct dirent *e; d && (e = readdir(d));) {
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (!is_dir || !valid_instance_name(e->d_name) || strncmp(e->d_name, word, wlen) != 0)
      continue;
    if (kind != KIND_ANY && (instance_init_alive(e->d_name) > 0) != (kind == KIND_RUNNING))
      continue;
    if (count == cap) {
      cap *= 2;
      names = realloc(names, cap * sizeof *names);
      if (!names)
        die_oom();
    }
    names[count++] = xstrdup(e->d_name);
  }
  /* And "NAME:" of each API server, as lib/client/config.ts wrote them for this (one a line). */
  char text[16384];
  ssize_t len = read_small_file_at(AT_FDCWD, remotes, text, sizeof text);
  if (len >= (ssize_t)sizeof text - 1)
    return -1;
  for (char *line = len > 0 ? text : NULL, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    if (strncmp(line, word, wlen) != 0)
      continue;
    if (count == cap) {
      cap *= 2;
      names = realloc(names, cap * sizeof *names);
      if (!names)
        die_oom();
    }
    names[count++] = xstrdup(line);
  }
  qsort(names, count, sizeof *names, by_name);
  for (size_t i = 0; i < count; i++)
    printf("%s\n", names[i]);
  /* Printed: never node too, whatever stdout says (a completion prints nothing it cannot). */
  fflush(stdout);
  return 0;
}
