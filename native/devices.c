/* `devices`: the device allow list of a container's cgroup on cgroup v2, where devices.allow does
 * not exist. A BPF_PROG_TYPE_CGROUP_DEVICE program is built from the rules (LXC's devices.allow
 * syntax), loaded and attached to the cgroup with BPF_F_ALLOW_MULTI: a program a descendant
 * attaches runs as well, and every program must allow an access, so nothing below can widen the
 * list. The attachment keeps the program alive; it goes with the cgroup. See README.md. */
#include "helper.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <sys/syscall.h>

struct dev_rule {
  int type;          /* BPF_DEVCG_DEV_CHAR, _BLOCK, or 0 for "a" (any) */
  long major, minor; /* -1: any */
  unsigned access;   /* BPF_DEVCG_ACC_* bits */
};

/* "a", or "c|b MAJOR|*:MINOR|* ACCESS" with ACCESS letters among r, w, m. */
static void parse_rule(const char *text, struct dev_rule *r)
{
  *r =
      (struct dev_rule){ .major = -1,
                         .minor = -1,
                         .access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE };
  if (strcmp(text, "a") == 0)
    return;
  char type, majs[16], mins[16], acc[8];
  if (sscanf(text, "%c %15[0-9*]:%15[0-9*] %7s", &type, majs, mins, acc) != 4 ||
      (type != 'c' && type != 'b'))
    die("--allow %s: expected \"a\" or \"c|b MAJOR:MINOR ACCESS\" (e.g. \"c 1:3 rwm\")", text);
  r->type = type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
  unsigned long v;
  if (strcmp(majs, "*") != 0) {
    if (!parse_ulong(majs, &v) || v > 0xfffff)
      die("--allow %s: bad major", text);
    r->major = (long)v;
  }
  if (strcmp(mins, "*") != 0) {
    if (!parse_ulong(mins, &v) || v > 0xfffff)
      die("--allow %s: bad minor", text);
    r->minor = (long)v;
  }
  r->access = 0;
  for (const char *c = acc; *c; c++) {
    if (*c == 'r')
      r->access |= BPF_DEVCG_ACC_READ;
    else if (*c == 'w')
      r->access |= BPF_DEVCG_ACC_WRITE;
    else if (*c == 'm')
      r->access |= BPF_DEVCG_ACC_MKNOD;
    else
      die("--allow %s: access is letters among r, w, m", text);
  }
}

/* ---- a few BPF instructions, by hand (no libbpf) ---- */

#define INSN(c, d, s, o, i)                                                                        \
  ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define RSH_IMM(d, i) INSN(BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

#define MAX_INSNS (8 + MAX_LIST * 8)

/* r2 = type, r3 = access, r4 = major, r5 = minor; each rule that matches returns 1 (allow);
 * nothing matched: 0 (EPERM). */
static size_t build_program(const struct dev_rule *rules, size_t n, struct bpf_insn *p)
{
  size_t k = 0;
  p[k++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
  p[k++] = MOV_REG(BPF_REG_3, BPF_REG_2);
  p[k++] = AND_IMM(BPF_REG_2, 0xffff);
  p[k++] = RSH_IMM(BPF_REG_3, 16);
  p[k++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
  p[k++] = LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
  for (size_t i = 0; i < n; i++) {
    const struct dev_rule *r = &rules[i];
    /* The rule's checks, each jumping past the rule's end when it fails. */
    struct bpf_insn body[8];
    size_t m = 0;
    if (r->type)
      body[m++] = JNE_IMM(BPF_REG_2, r->type, 0);
    if (r->major >= 0)
      body[m++] = JNE_IMM(BPF_REG_4, (int32_t)r->major, 0);
    if (r->minor >= 0)
      body[m++] = JNE_IMM(BPF_REG_5, (int32_t)r->minor, 0);
    /* Every access asked for must be in the rule: (access & ~allowed) == 0. */
    body[m++] = MOV_REG(BPF_REG_6, BPF_REG_3);
    body[m++] = AND_IMM(BPF_REG_6, (int32_t)(~r->access & 0xffff));
    body[m++] = JNE_IMM(BPF_REG_6, 0, 0);
    body[m++] = MOV_IMM(BPF_REG_0, 1);
    body[m++] = EXIT();
    for (size_t j = 0; j < m; j++) {
      if (BPF_CLASS(body[j].code) == BPF_JMP && BPF_OP(body[j].code) == BPF_JNE)
        body[j].off = (int16_t)(m - j - 1); /* to the first instruction after this rule */
      p[k++] = body[j];
    }
  }
  p[k++] = MOV_IMM(BPF_REG_0, 0);
  p[k++] = EXIT();
  return k;
}

/* The ids of the device programs attached to CGFD itself (not inherited), at most MAX. */
static size_t attached_programs(int cgfd, uint32_t *ids, size_t max)
{
  union bpf_attr q = { 0 };
  q.query.target_fd = cgfd;
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = (uintptr_t)ids;
  q.query.prog_cnt = (uint32_t)max;
  if (syscall(SYS_bpf, BPF_PROG_QUERY, &q, sizeof q) < 0)
    die_with_error("devices: list the device programs of the cgroup");
  return q.query.prog_cnt < max ? q.query.prog_cnt : max;
}

/* Detaches program ID from CGFD when it is one of ours (by name): a program someone else put
 * there (a privileged container's own, say) only narrows the list and stays. */
static void detach_ours(int cgfd, uint32_t id)
{
  union bpf_attr get = { 0 };
  get.prog_id = id;
  autofd int fd = syscall(SYS_bpf, BPF_PROG_GET_FD_BY_ID, &get, sizeof get);
  if (fd < 0) {
    if (errno == ENOENT) /* gone meanwhile */
      return;
    die_with_error("devices: open device program %u", id);
  }
  struct bpf_prog_info info = { 0 };
  union bpf_attr inf = { 0 };
  inf.info.bpf_fd = fd;
  inf.info.info_len = sizeof info;
  inf.info.info = (uintptr_t)&info;
  if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &inf, sizeof inf) < 0)
    die_with_error("devices: read device program %u", id);
  if (strcmp(info.name, "tslxc_devices") != 0)
    return;
  union bpf_attr det = { 0 };
  det.target_fd = cgfd;
  det.attach_bpf_fd = fd;
  det.attach_type = BPF_CGROUP_DEVICE;
  if (syscall(SYS_bpf, BPF_PROG_DETACH, &det, sizeof det) < 0 && errno != ENOENT)
    die_with_error("devices: detach the old device program %u", id);
}

int main_devices(int argc, char **argv)
{
  const char *cgroup = NULL;
  bool replace = false;
  static struct dev_rule rules[MAX_LIST];
  size_t n = 0;
  for (int i = 1; i < argc; i += 2) {
    if (strcmp(argv[i], "--replace") == 0) {
      replace = true;
      i--;
      continue;
    }
    if (i + 1 >= argc)
      die("devices: %s needs a value", argv[i]);
    if (strcmp(argv[i], "--cgroup") == 0)
      cgroup = argv[i + 1];
    else if (strcmp(argv[i], "--allow") == 0) {
      if (n >= MAX_LIST)
        die("devices: at most %d rules", MAX_LIST);
      parse_rule(argv[i + 1], &rules[n++]);
    } else
      die("devices: unknown option %s", argv[i]);
  }
  if (!cgroup || cgroup[0] != '/')
    die("usage: tslxc-helper devices --cgroup DIR [--replace] [--allow RULE]...");

  static struct bpf_insn prog[MAX_INSNS];
  size_t len = build_program(rules, n, prog);
  static char log[16384];
  union bpf_attr load = { 0 };
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = (uintptr_t)prog;
  load.insn_cnt = (uint32_t)len;
  load.license = (uintptr_t) "GPL";
  load.log_buf = (uintptr_t)log;
  load.log_size = sizeof log;
  load.log_level = 1;
  strncpy(load.prog_name, "tslxc_devices", sizeof load.prog_name - 1);
  autofd int progfd = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
  if (progfd < 0) {
    log[strcspn(log, "\n")] = '\0';
    die_with_error("devices: load the device program%s%s", log[0] ? ": " : "", log);
  }
  autofd int cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0)
    die_with_error("devices: open %s", cgroup);
  /* --replace (a device added to or removed from a running container): the old program goes
   * after the new one is attached. Every attached program must allow an access, so in between
   * only what both lists allow is allowed: never more than either. */
  static uint32_t old[64];
  size_t n_old = replace ? attached_programs(cgfd, old, N_ELEMENTS(old)) : 0;
  union bpf_attr attach = { 0 };
  attach.target_fd = cgfd;
  attach.attach_bpf_fd = progfd;
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0)
    die_with_error("devices: attach the device program to %s", cgroup);
  for (size_t i = 0; i < n_old; i++)
    detach_ours(cgfd, old[i]);
  return 0;
}
