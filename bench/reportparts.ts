import type { ImportResults, LxdPartsResults } from './lxdparts.js';
import { NET_KEYS, type NetResults } from './net.js';
import { fmtDelta, fmtMs, fmtRatio, fmtSummary, renderGrid } from './report.js';
import { summarize, type Summary } from './stats.js';
import type { StorageResults } from './storage.js';

export interface Target {
  what: string;
  target: string;
  value: string;
  met: boolean;
}

export function reportNet(n: NetResults, lxcLabel: string, runs: number): string[] {
  const b = n.boot;
  const t = (k: string) => b[k];
  const row = (what: string, pick: (k: string) => Summary | undefined, nicKeys: [string, string]): string[] => [
    what,
    fmtSummary(pick(nicKeys[0])),
    fmtSummary(pick(nicKeys[1])),
    fmtRatio(pick(nicKeys[0]), pick(nicKeys[1])),
  ];
  const nic: [string, string] = [NET_KEYS.tslxcNic, NET_KEYS.lxcNic];
  const none: [string, string] = [NET_KEYS.tslxcNone, NET_KEYS.lxcNone];
  const states = (k: string) =>
    t(k)
      ? Object.entries(t(k).states)
          .map(([s, c]) => `${s} ×${c}`)
          .join(', ') + (t(k).failures.length ? `, FAILED ×${t(k).failures.length}` : '')
      : '—';
  const rows: (string[] | string)[] = [
    `network (#6): a stopped Debian container with eth0 on a bench-private bridge (DHCP), and its twin without a nic; ${runs} run${runs === 1 ? '' : 's'} each`,
    row('  start → IPv4 address on eth0', (k) => t(k)?.ipv4, nic),
    row('  start → running, with the nic', (k) => t(k)?.total, nic),
    row('  start → running, no nic', (k) => t(k)?.total, none),
    ['  what the nic adds to start → running', fmtDelta(t(nic[0])?.total, t(none[0])?.total), fmtDelta(t(nic[1])?.total, t(none[1])?.total), ''],
    row('  start command, with the nic', (k) => t(k)?.startCmd, nic),
    row('  start command, no nic', (k) => t(k)?.startCmd, none),
    ['  what the nic adds to the start command', fmtDelta(t(nic[0])?.startCmd, t(none[0])?.startCmd), fmtDelta(t(nic[1])?.startCmd, t(none[1])?.startCmd), ''],
    ['  systemd state, with the nic', states(nic[0]), states(nic[1]), ''],
    ['  systemd state, no nic', states(none[0]), states(none[1]), ''],
  ];
  const out = [renderGrid(['measurement', 'tslxc', lxcLabel, 'tslxc/LXC'], rows)];
  out.push(
    `network: tslxc: managed network ${n.network} (${n.tslxcSubnet ?? '?'}, ipv4.nat=false, no IPv6; tslxc's dnsmasq, a reservation per nic); ` +
      (n.lxcBridge
        ? `LXC: veth on bridge ${n.lxcBridge} (${n.lxcSubnet}) made by the bench, DHCP from a dnsmasq of the bench (dynamic range, no DNS). `
        : 'LXC: not run. ') +
      `The address is read from the container's netns on the host (/proc/INIT/net/fib_trie, every 5 ms). ip_forward ${n.ipForward.before} before, ${n.ipForward.after ?? '?'} after.`,
  );
  for (const [k, w] of Object.entries(n.warmup))
    out.push(
      `network: ${k}: first boot (warm-up, not counted) ${fmtMs(w.firstBoot.totalMs)} → ${w.firstBoot.state}${w.firstBoot.ipv4 ? `, IPv4 ${w.firstBoot.ipv4} at ${fmtMs(w.firstBoot.ipv4Ms ?? NaN)}` : ''}; interfaces ${w.interfaces.join(' ')}; failed units: ${w.failedUnits.join(' ') || 'none'}`,
    );
  for (const note of n.notes) out.push(`note: ${note}`);
  for (const [k, x] of Object.entries(b)) for (const f of x.failures) out.push(`FAILED (${k}): ${f}`);
  return out;
}

const STORAGE_TARGETS: Record<string, number> = { overlay: 1000, btrfs: 1200, dir: 3000 };

export function reportStorage(s: StorageResults, lxdVersion: string | undefined, targets: Target[]): string[] {
  const keys = Object.keys(s.peers);
  const rows: (string[] | string)[] = [
    `storage (#4): per pool driver, the cached Debian image; ${s.runs} run${s.runs === 1 ? '' : 's'} each, peers in rotating order`,
  ];
  for (const k of keys) {
    const p = s.peers[k];
    const states =
      Object.entries(p.states)
        .map(([st, c]) => `${st} ×${c}`)
        .join(', ') + (p.failures.length ? `, FAILED ×${p.failures.length}` : '');
    rows.push([
      `  ${k}`,
      fmtSummary(p.summary.launch),
      fmtSummary(p.summary.launchCmd),
      fmtSummary(p.summary.copy),
      fmtSummary(p.summary.snapshot),
      fmtSummary(p.summary.restore),
      fmtSummary(p.summary.stop),
      states,
    ]);
  }
  const out = [renderGrid(['measurement', 'launch → running', 'launch cmd', 'copy (stopped)', 'snapshot', 'restore', 'stop', 'systemd state'], rows)];
  // Ratios against LXD's same driver, and the issue's targets.
  for (const k of keys.filter((x) => s.peers[x].tool === 'tslxc')) {
    const p = s.peers[k];
    const med = p.summary.launch?.median;
    const limit = STORAGE_TARGETS[p.driver];
    const vsLxd = keys.filter((x) => s.peers[x].tool === 'LXD' && s.peers[x].driver === p.driver);
    const cmp = vsLxd.map((x) => {
      const l = s.peers[x].summary;
      return `vs ${x}: launch ${fmtRatio(p.summary.launch, l.launch)}, copy ${fmtRatio(p.summary.copy, l.copy)}, snapshot ${fmtRatio(p.summary.snapshot, l.snapshot)}, restore ${fmtRatio(p.summary.restore, l.restore)}`;
    });
    if (p.background?.length) {
      const b = summarize(p.background);
      out.push(
        `storage: ${k}: each launch took the spare root made after the previous one; the next spare, copied in the background (starting 10 s after the create, nice 19), was finished ${fmtMs(b.median)} (${fmtMs(b.min)}–${fmtMs(b.max)}) after systemd was running; the bench waited for it, untimed, before the next step`,
      );
    }
    if (k.endsWith('(no spare)')) {
      if (med !== undefined)
        out.push(
          `storage: ${k}: spare_roots=false, every launch copies the image while the user waits: ${fmtMs(med)} (shown for comparison; the target applies to the pool as made)`,
        );
    } else if (med !== undefined && limit !== undefined) {
      const met = med <= limit;
      targets.push({ what: `launch → running on ${p.driver}`, target: `≤ ${fmtMs(limit)}`, value: fmtMs(med), met });
      let line = `storage: ${k}: launch target ≤ ${fmtMs(limit)}: ${met ? 'MET' : 'NOT MET'} (${fmtMs(med)})`;
      const lxdDefault = vsLxd.find((x) => !s.peers[x].privileged);
      if (lxdDefault && s.peers[lxdDefault].summary.launch) {
        const faster = med < s.peers[lxdDefault].summary.launch!.median;
        targets.push({
          what: `launch on ${p.driver} faster than ${lxdDefault}`,
          target: `< ${fmtMs(s.peers[lxdDefault].summary.launch!.median)}`,
          value: fmtMs(med),
          met: faster,
        });
        line += `; faster than ${lxdDefault}: ${faster ? 'MET' : 'NOT MET'}`;
      }
      out.push(line);
    }
    for (const c of cmp) out.push(`storage: ${k} ${c} (tslxc/LXD, medians)`);
  }
  for (const k of keys) {
    const w = s.peers[k].warmup;
    if (w)
      out.push(
        `storage: ${k}: first launch (warm-up, not counted) ${fmtMs(w.launch ?? NaN)} → ${w.state}; failed units: ${w.failedUnits?.join(' ') || 'none'}`,
      );
  }
  if (lxdVersion)
    out.push(
      `storage: LXD ${lxdVersion} containers are unprivileged unless "privileged" (security.privileged=true); tslxc's are unprivileged too (the default since issue 8).`,
    );
  for (const n of s.notes) out.push(`note: ${n}`);
  for (const [k, p] of Object.entries(s.peers)) for (const f of p.failures) out.push(`FAILED (${k}): ${f}`);
  return out;
}

export function reportImport(i: ImportResults, lxdVersion: string | undefined, targets: Target[] = []): string[] {
  const rows: (string[] | string)[] = [
    `image import (#3): the same unified tarball (${(i.bytes / 2 ** 20).toFixed(1)} MiB, from \`tslxc image export debian\` in ${fmtMs(i.exportMs)}); ${i.runs} run${i.runs === 1 ? '' : 's'} each, the image deleted between runs`,
  ];
  const t = i.times.tslxc;
  const l = i.times.LXD;
  rows.push(['  image import FILE --alias A', fmtSummary(t), fmtSummary(l), fmtRatio(t, l)]);
  if (i.hashCopy) rows.push(['  sha256sum FILE && cp FILE (same rounds)', fmtSummary(i.hashCopy), '', '']);
  if (i.firstLaunchCmd?.tslxc || i.firstLaunchCmd?.LXD) {
    const pools = i.firstLaunchPools ?? {};
    rows.push([
      `  first launch after it (pool ${pools.tslxc ?? '-'} / ${pools.LXD ?? '-'})`,
      fmtSummary(i.firstLaunchCmd.tslxc),
      fmtSummary(i.firstLaunchCmd.LXD),
      fmtRatio(i.firstLaunchCmd.tslxc, i.firstLaunchCmd.LXD),
    ]);
    rows.push([
      '    until systemd is running',
      fmtSummary(i.firstLaunch?.tslxc),
      fmtSummary(i.firstLaunch?.LXD),
      fmtRatio(i.firstLaunch?.tslxc, i.firstLaunch?.LXD),
    ]);
  }
  const out = [renderGrid(['measurement', 'tslxc', lxdVersion ? `LXD ${lxdVersion}` : 'LXD', 'tslxc/LXD'], rows)];
  out.push(
    "import: tslxc stores the tarball (the kernel's copy), hashes and lists that copy for its checks at once, and on a dir pool unpacks the rootfs straight into each new container (btrfs: into the pool's image subvolume; overlay: into its store, once); LXD stores the tarball and unpacks it at each launch on a dir pool, or once per btrfs pool.",
  );
  // Issue #17's two targets, each on a line of its own.
  const target = (what: string, limit: string, value: string, met: boolean) => {
    targets.push({ what, target: limit, value, met });
    out.push(`import: target: ${what}: ${value} (${limit}): ${met ? 'MET' : 'NOT MET'}`);
  };
  if (t && i.hashCopy) {
    const ratio = t.median / i.hashCopy.median;
    target(
      'import at most 2x sha256sum + cp of the same file',
      '<= 2.00x',
      `${fmtMs(t.median)} / ${fmtMs(i.hashCopy.median)} = ${ratio.toFixed(2)}x`,
      ratio <= 2,
    );
  }
  const ft = i.firstLaunchCmd?.tslxc;
  const fl = i.firstLaunchCmd?.LXD;
  if (ft && fl) {
    const ratio = ft.median / fl.median;
    target(
      "first launch of the imported image no slower than LXD's",
      '<= 1.00x',
      `${fmtMs(ft.median)} / ${fmtMs(fl.median)} = ${ratio.toFixed(2)}x`,
      ratio <= 1,
    );
  }
  for (const c of i.checks) out.push(`import: ${c.ok ? 'OK' : 'FAILED'}: ${c.what} (${c.detail})`);
  for (const f of i.failures) out.push(`FAILED (import): ${f}`);
  return out;
}

export function reportLxdParts(x: LxdPartsResults, targets: Target[]): string[] {
  const out: string[] = [];
  if (x.imports) out.push('', ...reportImport(x.imports, x.lxd?.version, targets));
  if (x.storage) out.push('', ...reportStorage(x.storage, x.lxd?.version, targets));
  for (const n of x.notes) out.push(`note: ${n}`);
  return out;
}
