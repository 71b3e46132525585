/* Capability names and dropping. */
#include "helper.h"

#include <ctype.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const char *const cap_names[] = {
  [CAP_CHOWN] = "chown",
  [CAP_DAC_OVERRIDE] = "dac_override",
  [CAP_DAC_READ_SEARCH] = "dac_read_search",
  [CAP_FOWNER] = "fowner",
  [CAP_FSETID] = "fsetid",
  [CAP_KILL] = "kill",
  [CAP_SETGID] = "setgid",
  [CAP_SETUID] = "setuid",
  [CAP_SETPCAP] = "setpcap",
  [CAP_LINUX_IMMUTABLE] = "linux_immutable",
  [CAP_NET_BIND_SERVICE] = "net_bind_service",
  [CAP_NET_BROADCAST] = "net_broadcast",
  [CAP_NET_ADMIN] = "net_admin",
  [CAP_NET_RAW] = "net_raw",
  [CAP_IPC_LOCK] = "ipc_lock",
  [CAP_IPC_OWNER] = "ipc_owner",
  [CAP_SYS_MODULE] = "sys_module",
  [CAP_SYS_RAWIO] = "sys_rawio",
  [CAP_SYS_CHROOT] = "sys_chroot",
  [CAP_SYS_PTRACE] = "sys_ptrace",
  [CAP_SYS_PACCT] = "sys_pacct",
  [CAP_SYS_ADMIN] = "sys_admin",
  [CAP_SYS_BOOT] = "sys_boot",
  [CAP_SYS_NICE] = "sys_nice",
  [CAP_SYS_RESOURCE] = "sys_resource",
  [CAP_SYS_TIME] = "sys_time",
  [CAP_SYS_TTY_CONFIG] = "sys_tty_config",
  [CAP_MKNOD] = "mknod",
  [CAP_LEASE] = "lease",
  [CAP_AUDIT_WRITE] = "audit_write",
  [CAP_AUDIT_CONTROL] = "audit_control",
  [CAP_SETFCAP] = "setfcap",
  [CAP_MAC_OVERRIDE] = "mac_override",
  [CAP_MAC_ADMIN] = "mac_admin",
  [CAP_SYSLOG] = "syslog",
  [CAP_WAKE_ALARM] = "wake_alarm",
  [CAP_BLOCK_SUSPEND] = "block_suspend",
  [CAP_AUDIT_READ] = "audit_read",
  [CAP_PERFMON] = "perfmon",
  [CAP_BPF] = "bpf",
  [CAP_CHECKPOINT_RESTORE] = "checkpoint_restore",
};

int cap_from_name(const char *name)
{
  if (strncasecmp(name, "cap_", 4) == 0)
    name += 4;
  for (size_t i = 0; i < N_ELEMENTS(cap_names); i++)
    if (cap_names[i] && strcasecmp(name, cap_names[i]) == 0)
      return i;
  return -1;
}

void drop_caps_bounding(const int *caps, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    /* EINVAL: the running kernel does not know this capability, so nobody holds it. */
    if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0) < 0 && errno != EINVAL)
      die_with_error("drop capability %s from the bounding set", cap_names[caps[i]]);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, caps[i], 0, 0) < 0 && errno != EINVAL)
      die_with_error("drop capability %s from the ambient set", cap_names[caps[i]]);
  }
}

void drop_caps_sets(const int *caps, size_t n)
{
  if (n == 0)
    return;
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) < 0)
    die_with_error("capget");
  for (size_t i = 0; i < n; i++) {
    uint32_t mask = ~(1u << (caps[i] % 32));
    data[caps[i] / 32].effective &= mask;
    data[caps[i] / 32].permitted &= mask;
    data[caps[i] / 32].inheritable &= mask;
  }
  if (syscall(SYS_capset, &hdr, data) < 0)
    die_with_error("capset");
}

void drop_caps(const int *caps, size_t n)
{
  drop_caps_bounding(caps, n);
  drop_caps_sets(caps, n);
}

void raise_effective_caps(void)
{
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) < 0)
    die_with_error("capget");
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  if (syscall(SYS_capset, &hdr, data) < 0)
    die_with_error("capset");
}
