/**
 * Parallel launches on one managed network (issue #15): do they all get distinct IPv4 addresses?
 *
 *   sudo node dist/bench/launches.js [--runs 20] [--parallel 20] [--tslxc PATH]
 *
 * Each run launches PARALLEL busybox containers at once with eth0 on a test bridge, reads the
 * address each start allocated (run dir network.json), waits for each to get it by DHCP, counts
 * the runs that had a duplicate address or a container without one, and deletes them all. --tslxc
 * runs another build's launcher (bin/tslxc of another checkout) against the same kind of
 * installation; cleanup uses this checkout's. Everything goes at the end (BenchEnv.cleanup).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BenchEnv, launcherPath } from './env.js';
import { run, runOk, type RunResult } from './proc.js';

function option(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

const runs = Number(option('runs', '20'));
const parallel = Number(option('parallel', '20'));
const launcher = path.resolve(option('tslxc', launcherPath));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const env = new BenchEnv();
  const tslxc = (args: string[], timeoutMs = 300_000): Promise<RunResult> => run(launcher, args, { env: env.env, timeoutMs });
  const bridge = `tslb${randomBytes(3).toString('hex')}`;
  const log = (s: string) => console.log(s);
  let failed = false;
  try {
    await runOk(launcher, ['image', 'build', 'busybox'], { env: env.env, timeoutMs: 600_000 });
    await runOk(launcher, ['network', 'create', bridge, 'ipv4.address=auto', 'ipv4.nat=false'], { env: env.env });
    fs.mkdirSync(path.join(env.stateDir, 'profiles'), { recursive: true });
    fs.writeFileSync(
      path.join(env.stateDir, 'profiles', 'default.yaml'),
      ['description: launches bench - eth0 on the test bridge', 'config: {}', 'devices:', `  eth0: {type: nic, network: ${bridge}, name: eth0}`, ''].join('\n'),
    );
    log(`launcher ${launcher}, bridge ${bridge}, ${runs} runs x ${parallel} parallel launches`);
    let dupRuns = 0;
    let noAddrRuns = 0;
    const walls: number[] = [];
    for (let r = 0; r < runs; r++) {
      const names = Array.from({ length: parallel }, (_, i) => `l${r}-${i}`);
      const t0 = Date.now();
      const launched = await Promise.all(names.map((n) => tslxc(['launch', 'busybox', n])));
      walls.push(Date.now() - t0);
      const failures = launched.flatMap((x, i) => (x.code === 0 ? [] : [`${names[i]}: ${x.stderr.trim().split('\n').pop()}`]));
      const allocated = new Map<string, string[]>();
      for (const n of names) {
        try {
          const nic = JSON.parse(fs.readFileSync(path.join(env.runDir, 'containers', n, 'network.json'), 'utf8')).nics[0];
          allocated.set(nic.ipv4, [...(allocated.get(nic.ipv4) ?? []), n]);
        } catch {
          /* not started: counted in failures */
        }
      }
      const dups = [...allocated].filter(([, ns]) => ns.length > 1).map(([a, ns]) => `${a}: ${ns.join(' ')}`);
      const waited = await Promise.all(names.map((n) => tslxc(['wait', n, '--ip', '--timeout', '60'])));
      const noAddr = names.filter((_, i) => waited[i].code !== 0);
      if (dups.length) dupRuns++;
      if (noAddr.length) noAddrRuns++;
      log(
        `run ${r + 1}: ${parallel} launches in ${(walls[r] / 1000).toFixed(1)} s; duplicate addresses: ${dups.length ? dups.join(', ') : 'none'}; without an address after 60 s: ${noAddr.length ? noAddr.join(' ') : 'none'}${failures.length ? `; failed: ${failures.join('; ')}` : ''}`,
      );
      const del = await tslxc(['delete', '--force', ...names]);
      if (del.code !== 0) log(`delete: ${del.stderr.trim()}`);
    }
    log(
      `runs with a duplicate IPv4: ${dupRuns} of ${runs}; runs with a container left without an address: ${noAddrRuns} of ${runs}; median wall time of ${parallel} parallel launches: ${(median(walls) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    failed = true;
    log(`failed: ${(err as Error).message}`);
  } finally {
    // The profile lets go of the network, the containers go, then the network (BenchEnv.cleanup).
    await run(launcherPath, ['delete', '--force', ...env.tslxcNames()], { env: env.env, duringCleanup: true, timeoutMs: 300_000 });
    fs.writeFileSync(path.join(env.stateDir, 'profiles', 'default.yaml'), 'description: launches bench\nconfig: {}\ndevices: {}\n');
    await run(launcherPath, ['network', 'delete', bridge], { env: env.env, duringCleanup: true });
    const problems = await env.cleanup(log);
    for (const p of problems) log(`cleanup: ${p}`);
    if (problems.length) failed = true;
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
