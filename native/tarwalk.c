/* tslxc-tarwalk [--gzip [--store]] [--capture NAME]... [--capture-max BYTES]: the listing of the tar archive on stdin, as records for `image import`.
 *
 * The import pass (importpass.c) runs it instead of `decompressor | tar -tv`: with --gzip it
 * inflates stdin (the stored copy, a gzip file) in-process with ISA-L's igzip, else it reads a
 * plain tar stream (a decompressor may feed it through a pipe). It walks the headers, skipping the
 * data, and writes one record per entry; it decides nothing: every check stays in TypeScript
 * (lib/image/archive.ts EntryChecker), which parses the records (lib/image/walk.ts).
 *
 * GNU tar still extracts the archive later, so what this lists must be what tar extracts: it
 * accepts only headers whose reading by GNU tar 1.34 (list.c read_header, decode_header;
 * xheader.c) it matches exactly, and for anything else (another format, an unknown header type
 * or pax keyword, a number or name tar would read another way, a damaged or truncated stream)
 * it writes an "unsupported" record and exits 3: the import then lists the archive with tar.
 *
 * --capture: the data of the regular files named NAME (or under NAME when it ends in "/"), after
 * any leading "./", of at most BYTES (default 64 KiB), is written too: the import takes
 * metadata.yaml and templates/ from there instead of inflating the archive's head again; which
 * entries it takes, if any, is its decision.
 *
 * With --store (and --gzip), stdin is the source and fd 3 the new stored file: it copies the one
 * into the other by the kernel's copy in chunks, and hashes (sha256) and inflates the stored copy
 * as the chunks land, on three threads: the listing, the fingerprint and the store are the same
 * bytes, read once from the page cache, and the copy no longer waits before the rest.
 *
 * Output: "\0tslxc-walk-1\n", then records: KIND (one byte), LEN (u32 LE), LEN bytes.
 *   E  an entry: TYPE (tar -tv's letter) MODE:u32 UID:u64 GID:u64 SIZE:u64 MTIME:i64 MAJOR:u32
 *      MINOR:u32 BLOCK:u64 (its header's, as tar -R) NAME-LEN:u32 NAME LINK-LEN:u32 LINK
 *      (names as raw bytes; LINK only for h and l)
 *   U  unsupported: why, in words
 *   Z  the end: the archive's two zero blocks were read and the stream ended cleanly
 *   F  a captured file: ENTRY:u32 (its entry's index) and its bytes, right after its E (--capture)
 *   H  (--store) the stored copy's sha256, in hex; none when it could not be computed
 *   C  (--store) the copy failed: why
 * Exit: 0 after Z, 3 after U, 4 after C, 1 when the output cannot be written. With --store, U and
 * Z come only once the copy is complete, H before them. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define HAVE_ISAL 1
#endif
#if __has_include(<openssl/evp.h>)
#include <openssl/evp.h>
#define HAVE_SHA256 1
#endif

#define BLOCK 512
#define BUF_CAP (1 << 20)
/* The largest GNU long name or pax header read: beyond it, tar is asked. */
#define MAX_EXT (64 << 10)
#define EXIT_UNSUPPORTED 3
#define EXIT_COPY_FAILED 4
/* The copy's steps (--store): the readers follow one step behind. */
#define COPY_CHUNK (4 << 20)
#define WALK_MAGIC "\0tslxc-walk-1\n"

/* ---- output ---- */

static unsigned char out[1 << 16];
static size_t out_len;

static void out_flush(void)
{
  size_t done = 0;
  while (done < out_len) {
    ssize_t n = write(1, out + done, out_len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      exit(1);
    done += (size_t)n;
  }
  out_len = 0;
}

static void out_bytes(const void *p, size_t n)
{
  while (n > 0) {
    if (out_len == sizeof out)
      out_flush();
    size_t take = n < sizeof out - out_len ? n : sizeof out - out_len;
    memcpy(out + out_len, p, take);
    out_len += take;
    p = (const unsigned char *)p + take;
    n -= take;
  }
}

static void out_le(uint64_t v, int bytes)
{
  unsigned char b[8];
  for (int i = 0; i < bytes; i++)
    b[i] = (unsigned char)(v >> (8 * i));
  out_bytes(b, (size_t)bytes);
}

static void out_record(char kind, const void *p, size_t n)
{
  out_bytes(&kind, 1);
  out_le(n, 4);
  out_bytes(p, n);
}

/* ---- --store: the copy, followed by the hash and the inflate ---- */

static struct {
  bool on;
  int src, dest;
  pthread_mutex_t lock;
  pthread_cond_t moved;
  uint64_t copied; /* bytes of dest written, under lock */
  bool done;       /* the copy ended (copied is final), under lock */
  int error;       /* its errno, 0: none */
  unsigned char *map;
  uint64_t map_size;
  pthread_t copier, hasher;
  bool hashed;
  char hex[65];
} store = { .lock = PTHREAD_MUTEX_INITIALIZER, .moved = PTHREAD_COND_INITIALIZER };

#ifdef HAVE_ISAL
static void store_moved(uint64_t copied, bool done, int error)
{
  pthread_mutex_lock(&store.lock);
  store.copied = copied;
  store.done = done;
  store.error = error;
  pthread_cond_broadcast(&store.moved);
  pthread_mutex_unlock(&store.lock);
}

/* Waits until more than `have` bytes are stored, or the copy has ended; returns how many are. */
static uint64_t store_wait(uint64_t have, bool *done)
{
  pthread_mutex_lock(&store.lock);
  while (store.copied <= have && !store.done)
    pthread_cond_wait(&store.moved, &store.lock);
  uint64_t copied = store.copied;
  *done = store.done;
  pthread_mutex_unlock(&store.lock);
  return copied;
}

/* Whether every byte the copy will store is there (always, without --store). */
static bool store_complete(void)
{
  if (!store.map)
    return true;
  pthread_mutex_lock(&store.lock);
  bool done = store.done;
  pthread_mutex_unlock(&store.lock);
  return done;
}

static void *copier(void *arg)
{
  (void)arg;
  uint64_t copied = 0;
  /* A filesystem with reflinks shares the extents at once. */
  if (ioctl(store.dest, FICLONE, store.src) == 0) {
    store_moved(store.map_size, true, 0);
    return NULL;
  }
  bool by_read = false;
  static unsigned char buf[1 << 17];
  for (;;) {
    ssize_t n;
    if (!by_read) {
      n = copy_file_range(store.src, NULL, store.dest, NULL, COPY_CHUNK, 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        /* A filesystem without copy_file_range: read and write, from where it stopped. */
        by_read = true;
        continue;
      }
    } else {
      n = read(store.src, buf, sizeof buf);
      for (ssize_t w = 0, k; n > 0 && w < n; w += k) {
        k = write(store.dest, buf + w, (size_t)(n - w));
        if (k < 0 && errno == EINTR)
          k = 0;
        else if (k <= 0) {
          n = -1;
          break;
        }
      }
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      store_moved(copied, true, errno ? errno : EIO);
      return NULL;
    }
    if (n == 0)
      break;
    /* A source that grew past its size at the start is refused below: the mapping ends there. */
    copied += (uint64_t)n;
    if (copied > store.map_size) {
      store_moved(store.map_size, true, EFBIG);
      return NULL;
    }
    store_moved(copied, false, 0);
  }
  store_moved(copied, true, copied == store.map_size ? 0 : ESTALE);
  return NULL;
}

static void *hasher(void *arg)
{
  (void)arg;
#ifdef HAVE_SHA256
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  uint64_t at = 0;
  for (bool done = false; ok && !done;) {
    uint64_t copied = store_wait(at, &done);
    if (copied > at && EVP_DigestUpdate(ctx, store.map + at, (size_t)(copied - at)) != 1)
      ok = false;
    at = copied;
  }
  unsigned char md[32];
  unsigned int len = 0;
  pthread_mutex_lock(&store.lock);
  ok = ok && store.error == 0;
  pthread_mutex_unlock(&store.lock);
  if (ok && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32) {
    for (int i = 0; i < 32; i++)
      snprintf(store.hex + 2 * i, 3, "%02x", md[i]);
    store.hashed = true;
  }
  EVP_MD_CTX_free(ctx);
#endif
  return NULL;
}

#endif

/* Before any U or Z: the copy and the hash finished, and said (H, or C and exit). */
static void store_finish(void)
{
  if (!store.on)
    return;
  store.on = false;
  pthread_join(store.copier, NULL);
  pthread_join(store.hasher, NULL);
  if (store.error) {
    const char *why = store.error == ESTALE || store.error == EFBIG
                          ? "the file changed size while it was copied"
                          : strerror(store.error);
    out_record('C', why, strlen(why));
    out_flush();
    exit(EXIT_COPY_FAILED);
  }
  if (store.hashed)
    out_record('H', store.hex, 64);
}

static __attribute__((noreturn, format(printf, 1, 2))) void unsupported(const char *fmt, ...)
{
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof why)
    n = sizeof why - 1;
  /* The copy goes on to its end: tar lists the stored copy instead. */
  store_finish();
  out_record('U', why, (size_t)n);
  out_flush();
  exit(EXIT_UNSUPPORTED);
}

/* ---- input: the uncompressed archive, through one reused buffer ---- */

struct input {
  unsigned char *buf;
  size_t pos, len;
  uint64_t base; /* the archive's offset of buf[0] */
  bool eof;
  void (*more)(struct input *);
};

static void more_plain(struct input *in)
{
  for (;;) {
    ssize_t n = read(0, in->buf + in->len, BUF_CAP - in->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      unsupported("cannot read the archive: %s", strerror(errno));
    if (n == 0)
      in->eof = true;
    in->len += (size_t)n;
    return;
  }
}

#ifdef HAVE_ISAL
static struct inflate_state inflater;

static void gzip_member_start(void)
{
  uint8_t *next = inflater.next_in;
  uint32_t avail = inflater.avail_in;
  isal_inflate_reset(&inflater);
  inflater.next_in = next;
  inflater.avail_in = avail;
  inflater.crc_flag = ISAL_GZIP;
}

/* Inflates into the free end of the buffer; a gzip file may be several members one after the
 * other (gzip -d reads them all), and must end at the end of one. */
static void more_gzip(struct input *in)
{
  for (;;) {
    if (store.map && inflater.avail_in == 0) {
      /* What the copy has stored beyond what was given to the inflater. */
      uint64_t given = (uint64_t)(inflater.next_in - store.map);
      bool done;
      uint64_t copied = store_wait(given, &done);
      inflater.avail_in = (uint32_t)(copied - given);
    }
    if (inflater.block_state == ISAL_BLOCK_FINISH) {
      if (inflater.avail_in == 0) {
        in->eof = true;
        return;
      }
      if (inflater.avail_in < 2 || inflater.next_in[0] != 0x1f || inflater.next_in[1] != 0x8b)
        unsupported("bytes that are not gzip after the compressed stream");
      gzip_member_start();
    }
    inflater.next_out = in->buf + in->len;
    inflater.avail_out = (uint32_t)(BUF_CAP - in->len);
    int r = isal_inflate(&inflater);
    size_t made = (size_t)(inflater.next_out - (in->buf + in->len));
    in->len += made;
    if (r < 0)
      unsupported("the gzip stream is damaged (igzip error %d)", r);
    if (made > 0)
      return;
    if (inflater.block_state != ISAL_BLOCK_FINISH && inflater.avail_in == 0 && store_complete())
      unsupported("the gzip stream is truncated");
  }
}
#endif

/* At least n bytes at buf + pos, unless the archive ends first. */
static bool ensure(struct input *in, size_t n)
{
  if (in->len - in->pos >= n)
    return true;
  memmove(in->buf, in->buf + in->pos, in->len - in->pos);
  in->base += in->pos;
  in->len -= in->pos;
  in->pos = 0;
  while (in->len < n && !in->eof)
    in->more(in);
  return in->len >= n;
}

static bool skip(struct input *in, uint64_t n)
{
  while (n > 0) {
    if (in->pos == in->len) {
      in->base += in->len;
      in->pos = in->len = 0;
      if (in->eof)
        return false;
      in->more(in);
      continue;
    }
    size_t take = in->len - in->pos < n ? in->len - in->pos : (size_t)n;
    in->pos += take;
    n -= take;
  }
  return true;
}

static uint64_t blocks_of(uint64_t size)
{
  return (size + BLOCK - 1) / BLOCK;
}

/* ---- headers ---- */

/* A numeric field as GNU tar's from_header reads it, for the spelling every tar writes: optional
 * leading spaces, octal digits, then only NULs or spaces. Anything else (base-256, a sign, a
 * leading NUL, no digits, trailing bytes that tar would ignore) is left to tar. */
static bool octal(const unsigned char *f, size_t n, uint64_t *v)
{
  size_t i = 0;
  while (i < n && f[i] == ' ')
    i++;
  size_t first = i;
  uint64_t x = 0;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
    x = x * 8 + (uint64_t)(f[i] - '0');
  if (i == first)
    return false;
  for (; i < n; i++)
    if (f[i] != ' ' && f[i] != '\0')
      return false;
  *v = x;
  return true;
}

static uint64_t field(const unsigned char *h, size_t off, size_t n, const char *what)
{
  uint64_t v;
  if (!octal(h + off, n, &v))
    unsupported("a header's %s field is not a plain octal number", what);
  return v;
}

static bool zero_block(const unsigned char *h)
{
  for (size_t i = 0; i < BLOCK; i++)
    if (h[i])
      return false;
  return true;
}

/* tar_checksum: the sum of the bytes, the checksum field counted as spaces, as unsigned or as
 * signed chars (old tars summed signed ones). */
static void check_sum(const unsigned char *h)
{
  uint64_t recorded = field(h, 148, 8, "checksum");
  long long unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < BLOCK; i++) {
    unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
    unsigned_sum += c;
    signed_sum += (signed char)c;
  }
  if ((long long)recorded != unsigned_sum && (long long)recorded != signed_sum)
    unsupported("a header's checksum is wrong");
}

struct text {
  unsigned char *p;
  size_t n;
  bool set;
};

/* A name or link given outside the header: a pax record wins over a GNU long one, as in tar. */
static bool override_of(const struct text *pax, const struct text *gnu, const unsigned char **p,
                        size_t *n)
{
  const struct text *t = pax->set ? pax : gnu->set ? gnu : NULL;
  if (!t)
    return false;
  *p = t->p;
  *n = t->n;
  return true;
}

static void text_set(struct text *t, const unsigned char *p, size_t n)
{
  free(t->p);
  t->p = malloc(n ? n : 1);
  if (!t->p)
    unsupported("out of memory");
  memcpy(t->p, p, n);
  t->n = n;
  t->set = true;
}

static void text_clear(struct text *t)
{
  free(t->p);
  *t = (struct text){ 0 };
}

/* What the extension headers before an entry say about it. */
struct pending {
  struct text long_name, long_link, pax_path, pax_link;
  bool pax, pax_size_set;
  uint64_t pax_size, pax_uid, pax_gid;
  bool pax_uid_set, pax_gid_set;
  int64_t pax_mtime;
  bool pax_mtime_set;
};

static void pending_clear(struct pending *x)
{
  text_clear(&x->long_name);
  text_clear(&x->long_link);
  text_clear(&x->pax_path);
  text_clear(&x->pax_link);
  *x = (struct pending){ 0 };
}

static bool decimal(const unsigned char *p, size_t n, uint64_t *v)
{
  if (n == 0 || n > 18)
    return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return false;
    x = x * 10 + (uint64_t)(p[i] - '0');
  }
  *v = x;
  return true;
}

/* A pax time: [-]digits[.digits]; the whole seconds kept. */
static bool pax_time(const unsigned char *p, size_t n, int64_t *t)
{
  bool neg = n > 0 && p[0] == '-';
  size_t i = neg, dot = n;
  for (size_t k = i; k < n; k++)
    if (p[k] == '.') {
      dot = k;
      break;
    }
  uint64_t whole, frac;
  if (!decimal(p + i, dot - i, &whole) || (dot < n && !decimal(p + dot + 1, n - dot - 1, &frac)))
    return false;
  *t = neg ? -(int64_t)whole : (int64_t)whole;
  return true;
}

static bool has_prefix(const unsigned char *k, size_t n, const char *prefix)
{
  size_t l = strlen(prefix);
  return n > l && memcmp(k, prefix, l) == 0;
}

static bool key_is(const unsigned char *k, size_t n, const char *key)
{
  return n == strlen(key) && memcmp(k, key, n) == 0;
}

/* A per-file pax header ("LEN KEY=VALUE\n" records filling it exactly), with the keywords whose
 * meaning for tar 1.34 this matches; any other keyword is tar's to read. */
static void read_pax(struct pending *x, const unsigned char *d, size_t size)
{
  size_t at = 0;
  while (at < size) {
    size_t digits = 0;
    while (at + digits < size && d[at + digits] >= '0' && d[at + digits] <= '9')
      digits++;
    uint64_t len;
    if (!decimal(d + at, digits, &len) || d[at] == '0' || at + digits >= size ||
        d[at + digits] != ' ' || len > size - at || len < digits + 3 || d[at + len - 1] != '\n')
      unsupported("a malformed pax record");
    const unsigned char *key = d + at + digits + 1, *end = d + at + len - 1;
    const unsigned char *eq = memchr(key, '=', (size_t)(end - key));
    if (!eq || eq == key)
      unsupported("a malformed pax record");
    size_t kn = (size_t)(eq - key), vn = (size_t)(end - eq - 1);
    const unsigned char *v = eq + 1;
    if (vn == 0)
      unsupported("an empty pax value (it resets a keyword)");
    if (key_is(key, kn, "path") || key_is(key, kn, "linkpath")) {
      struct text *t = key_is(key, kn, "path") ? &x->pax_path : &x->pax_link;
      if (t->set || memchr(v, '\0', vn))
        unsupported("a pax path given twice or with a NUL");
      text_set(t, v, vn);
    } else if (key_is(key, kn, "size") || key_is(key, kn, "uid") || key_is(key, kn, "gid")) {
      uint64_t n;
      if (!decimal(v, vn, &n))
        unsupported("a pax number tar may read another way");
      if (key_is(key, kn, "size")) {
        if (x->pax_size_set)
          unsupported("a pax size given twice");
        x->pax_size = n;
        x->pax_size_set = true;
      } else if (key_is(key, kn, "uid")) {
        x->pax_uid = n;
        x->pax_uid_set = true;
      } else {
        x->pax_gid = n;
        x->pax_gid_set = true;
      }
    } else if (key_is(key, kn, "mtime") || key_is(key, kn, "atime") || key_is(key, kn, "ctime")) {
      int64_t t;
      if (!pax_time(v, vn, &t))
        unsupported("a pax time tar may read another way");
      if (key_is(key, kn, "mtime")) {
        x->pax_mtime = t;
        x->pax_mtime_set = true;
      }
    } else if (key_is(key, kn, "uname") || key_is(key, kn, "gname") ||
               key_is(key, kn, "SCHILY.acl.access") || key_is(key, kn, "SCHILY.acl.default") ||
               has_prefix(key, kn, "SCHILY.xattr.") || has_prefix(key, kn, "LIBARCHIVE.xattr.")) {
      /* Owner names (unused with --numeric-owner), ACLs and xattrs: nothing the listing shows. */
    } else {
      unsupported("the pax keyword \"%.*s\"", (int)(kn > 40 ? 40 : kn), key);
    }
    at += len;
  }
}

/* An extension header's data (a long name or a pax header), whole. */
static const unsigned char *ext_data(struct input *in, uint64_t size)
{
  if (size == 0 || size > MAX_EXT)
    unsupported("an extended header of %llu bytes", (unsigned long long)size);
  if (!ensure(in, blocks_of(size) * BLOCK))
    unsupported("the archive ends inside an extended header");
  const unsigned char *d = in->buf + in->pos;
  in->pos += blocks_of(size) * BLOCK;
  return d;
}

/* A GNU long name or link: tar takes the data up to its first NUL; GNU tar writes the name and
 * one NUL. Only that spelling, so that the name is the same however it is read. */
static void read_long(struct text *t, const unsigned char *d, uint64_t size, const char *what)
{
  if (t->set || size < 2 || d[size - 1] != '\0' || memchr(d, '\0', size - 1))
    unsupported("a GNU long %s that tar may read another way", what);
  text_set(t, d, size - 1);
}

static bool has_dotdot(const unsigned char *p, size_t n)
{
  for (size_t i = 0; i + 1 < n; i++)
    if (p[i] == '.' && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') &&
        (i + 2 == n || p[i + 2] == '/'))
      return true;
  return false;
}

static size_t field_len(const unsigned char *f, size_t n)
{
  const unsigned char *z = memchr(f, '\0', n);
  return z ? (size_t)(z - f) : n;
}

static void put_entry(char type, uint64_t mode, uint64_t uid, uint64_t gid, uint64_t size,
                      int64_t mtime, uint64_t major, uint64_t minor, uint64_t block,
                      const unsigned char *name, size_t name_len, const unsigned char *link,
                      size_t link_len)
{
  size_t len = 1 + 4 + 8 * 4 + 4 * 2 + 8 + 4 + name_len + 4 + link_len;
  out_bytes("E", 1);
  out_le(len, 4);
  out_bytes(&type, 1);
  out_le(mode, 4);
  out_le(uid, 8);
  out_le(gid, 8);
  out_le(size, 8);
  out_le((uint64_t)mtime, 8);
  out_le(major, 4);
  out_le(minor, 4);
  out_le(block, 8);
  out_le(name_len, 4);
  out_bytes(name, name_len);
  out_le(link_len, 4);
  out_bytes(link, link_len);
}

static const char *captures[16];
static size_t n_captures;
static uint64_t capture_max = 64 << 10;

static bool captured(const unsigned char *name, size_t len)
{
  while (len >= 2 && name[0] == '.' && name[1] == '/')
    name += 2, len -= 2;
  for (size_t i = 0; i < n_captures; i++) {
    size_t cl = strlen(captures[i]);
    bool dir = cl > 0 && captures[i][cl - 1] == '/';
    if (dir ? len > cl && memcmp(name, captures[i], cl) == 0
            : len == cl && memcmp(name, captures[i], cl) == 0)
      return true;
  }
  return false;
}

static void walk(struct input *in)
{
  uint32_t index = 0;
  struct pending x = { 0 };
  bool pending_any = false;
  /* The block tar -R names for an entry: its header's, or that of a GNU long name or link before
   * it (not that of a pax header). */
  uint64_t first_gnu_ext = UINT64_MAX;
  for (;;) {
    if (!ensure(in, BLOCK))
      unsupported(in->len == in->pos ? "the archive ends without its end blocks"
                                     : "the archive ends inside a header");
    uint64_t block = (in->base + in->pos) / BLOCK;
    if (first_gnu_ext != UINT64_MAX)
      block = first_gnu_ext;
    const unsigned char *h = in->buf + in->pos;
    if (zero_block(h)) {
      /* tar stops at the first zero block; a second one makes it stop without a warning. */
      if (pending_any)
        unsupported("an extended header without its entry");
      in->pos += BLOCK;
      if (!ensure(in, BLOCK) || !zero_block(in->buf + in->pos))
        unsupported("a lone zero block");
      in->pos += BLOCK;
      return;
    }
    check_sum(h);
    unsigned char type = h[156];
    uint64_t size = field(h, 124, 12, "size");
    in->pos += BLOCK;
    if (type == 'L' || type == 'K' || type == 'x') {
      const unsigned char *d = ext_data(in, size);
      if (type == 'x') {
        if (x.pax)
          unsupported("two pax headers for one entry");
        x.pax = true;
        read_pax(&x, d, (size_t)size);
      } else {
        read_long(type == 'L' ? &x.long_name : &x.long_link, d, size,
                  type == 'L' ? "name" : "link");
        if (first_gnu_ext == UINT64_MAX)
          first_gnu_ext = block;
      }
      if (x.pax && (x.long_name.set || x.long_link.set))
        unsupported("both GNU and pax extended headers for one entry");
      pending_any = true;
      continue;
    }

    /* decode_header: the format from the magic; ustar's prefix only with POSIX's magic. */
    bool posix = memcmp(h + 257,
                        "ustar\0"
                        "00",
                        8) == 0;
    bool gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
    if (!posix && !gnu)
      unsupported("a header that is neither POSIX ustar nor GNU");
    if (posix && h[345 + 130] == '\0' && h[345 + 131] >= '0' && h[345 + 131] <= '7' &&
        h[345 + 142] == ' ' && h[345 + 143] >= '0' && h[345 + 143] <= '7' && h[345 + 154] == ' ')
      unsupported("a star header");
    char letter;
    switch (type) {
    case '0':
    case '\0':
      letter = '-';
      break;
    case '1':
      letter = 'h';
      break;
    case '2':
      letter = 'l';
      break;
    case '3':
      letter = 'c';
      break;
    case '4':
      letter = 'b';
      break;
    case '5':
      letter = 'd';
      break;
    case '6':
      letter = 'p';
      break;
    default:
      unsupported("an entry of type '%c' (0x%02x)", type >= 0x20 && type < 0x7f ? type : '?', type);
    }
    uint64_t mode = field(h, 100, 8, "mode") & 07777;
    uint64_t uid = x.pax_uid_set ? x.pax_uid : field(h, 108, 8, "uid");
    uint64_t gid = x.pax_gid_set ? x.pax_gid : field(h, 116, 8, "gid");
    int64_t mtime = x.pax_mtime_set ? x.pax_mtime : (int64_t)field(h, 136, 12, "mtime");
    uint64_t major = 0, minor = 0;
    if (letter == 'c' || letter == 'b') {
      major = field(h, 329, 8, "devmajor");
      minor = field(h, 337, 8, "devminor");
    }

    /* The name: a long name, else prefix "/" name; a pax path over either. */
    unsigned char namebuf[155 + 1 + 100];
    const unsigned char *name;
    size_t name_len;
    if (!override_of(&x.pax_path, &x.long_name, &name, &name_len)) {
      size_t np = 0;
      if (posix && h[345]) {
        size_t pl = field_len(h + 345, 155);
        memcpy(namebuf, h + 345, pl);
        np = pl;
        namebuf[np++] = '/';
      }
      size_t nl = field_len(h, 100);
      memcpy(namebuf + np, h, nl);
      name = namebuf;
      name_len = np + nl;
    }
    if (name_len == 0)
      unsupported("an entry without a name");
    const unsigned char *link = NULL;
    size_t link_len = 0;
    if (letter == 'h' || letter == 'l') {
      if (!override_of(&x.pax_link, &x.long_link, &link, &link_len)) {
        link = h + 157;
        link_len = field_len(h + 157, 100);
      }
    } else if (x.pax_link.set || x.long_link.set) {
      unsupported("a link name for an entry that is not a link");
    }
    /* tar lists (and links to) a hard link's target without its leading "/" or "../" parts. */
    if (letter == 'h' && (link_len == 0 || link[0] == '/' || has_dotdot(link, link_len)))
      unsupported("a hard link target that tar rewrites");

    /* The data tar skips: a regular file's (tar lists a "/"-ended one as a dir but extracts no
     * data for it); none for the others, whose size must then be 0 (tar treats a hard link's as
     * 0 and does not skip a directory's). */
    uint64_t data = size;
    if (letter == '-') {
      if (name[name_len - 1] == '/')
        unsupported("a regular file whose name ends in \"/\"");
      if (x.pax_size_set)
        data = x.pax_size;
    } else if (size != 0 || x.pax_size_set) {
      unsupported("a non-regular entry with a size");
    }
    put_entry(letter, mode, uid, gid, letter == '-' ? data : 0, mtime, major, minor, block, name,
              name_len, link, link_len);
    if (letter == '-' && data <= capture_max && captured(name, name_len)) {
      if (!ensure(in, blocks_of(data) * BLOCK))
        unsupported("the archive ends inside an entry's data");
      out_bytes("F", 1);
      out_le(4 + data, 4);
      out_le(index, 4);
      out_bytes(in->buf + in->pos, (size_t)data);
    }
    index++;
    pending_clear(&x);
    pending_any = false;
    first_gnu_ext = UINT64_MAX;
    if (!skip(in, blocks_of(data) * BLOCK))
      unsupported("the archive ends inside an entry's data");
  }
}

int main(int argc, char **argv)
{
  bool gzip = false, to_store = false;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (strcmp(argv[i], "--gzip") == 0)
      gzip = true;
    else if (strcmp(argv[i], "--store") == 0)
      to_store = true;
    else if (strcmp(argv[i], "--capture") == 0 && i + 1 < argc &&
             n_captures < sizeof captures / sizeof *captures)
      captures[n_captures++] = argv[++i];
    else if (strcmp(argv[i], "--capture-max") == 0 && i + 1 < argc &&
             (capture_max = strtoull(argv[i + 1], &end, 10),
              *argv[++i] && !*end && capture_max <= MAX_EXT))
      ;
    else
      argc = -1;
  }
  if (argc < 0 || (to_store && !gzip)) {
    fprintf(stderr, "usage: tslxc-tarwalk [--gzip [--store]] [--capture NAME]... [--capture-max "
                    "BYTES] < ARCHIVE "
                    "[3> STORED]\n");
    return 2;
  }
  out_bytes(WALK_MAGIC, sizeof WALK_MAGIC - 1);
  static struct input in;
  in.buf = malloc(BUF_CAP);
  if (!in.buf)
    unsupported("out of memory");
  in.more = more_plain;
  if (gzip) {
#ifdef HAVE_ISAL
    struct stat st;
    if (fstat(0, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > UINT32_MAX)
      unsupported("the gzip file is not a regular file igzip can take whole");
    int fd = 0;
    if (to_store) {
      /* The stored copy is mapped at the source's size; only what the copy has written is read. */
      if (fcntl(3, F_GETFL) < 0 || (fcntl(3, F_GETFL) & O_ACCMODE) != O_RDWR) {
        const char *why = "fd 3 (the stored copy) is not open for reading and writing";
        out_record('C', why, strlen(why));
        out_flush();
        return EXIT_COPY_FAILED;
      }
      fd = 3;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
      unsupported("cannot map the archive: %s", strerror(errno));
    (void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    isal_inflate_init(&inflater);
    inflater.crc_flag = ISAL_GZIP;
    inflater.next_in = map;
    inflater.avail_in = to_store ? 0 : (uint32_t)st.st_size;
    if (to_store) {
      store.src = 0;
      store.dest = 3;
      store.map = map;
      store.map_size = (uint64_t)st.st_size;
      store.on = true;
      if (pthread_create(&store.copier, NULL, copier, NULL) != 0 ||
          pthread_create(&store.hasher, NULL, hasher, NULL) != 0) {
        const char *why = "cannot start its threads";
        out_record('C', why, strlen(why));
        out_flush();
        return EXIT_COPY_FAILED;
      }
    }
    in.more = more_gzip;
#else
    (void)to_store;
    unsupported("built without ISA-L's igzip");
#endif
  }
  walk(&in);
  /* The rest of the stream is read too: a damaged gzip end fails the import, as with igzip. */
  while (!in.eof) {
    in.pos = in.len = 0;
    in.more(&in);
  }
  store_finish();
  out_record('Z', "", 0);
  out_flush();
  return 0;
}
