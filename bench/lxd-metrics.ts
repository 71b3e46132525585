import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BenchEnv, repoRoot } from './env.js';
import { LxdDaemon } from './lxd.js';
import { run, runOk, sleep } from './proc.js';

/**
 * Records LXD 5.0.2's answer to GET /1.0/metrics with one running instance (our Debian image, a
 * NIC on a bridge with no address and no NAT) into test/fixtures/lxd-5.0.2/metrics.txt: the
 * golden whose metric names, types and labels tslxc's /1.0/metrics must carry. Values are kept as
 * LXD gave them; the tests compare names, types and label names only.
 *
 *   node dist/bench/lxd-metrics.js [--out DIR]
 */

const OUT = path.join(repoRoot, 'test/fixtures/lxd-5.0.2');
const INSTANCE = 'metrics-c1';
const IMAGE = 'metrics-debian';
const BRIDGE = `mtbr${randomBytes(2).toString('hex')}`;

function get(socket: string, url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'GET', path: url, headers: { Host: 'lxd' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.end();
  });
}

async function main(): Promise<void> {
  const outIdx = process.argv.indexOf('--out');
  const out = outIdx > 0 ? path.resolve(process.argv[outIdx + 1]!) : OUT;
  const log = (s: string) => process.stderr.write(`[lxd-metrics] ${s}\n`);
  const env = new BenchEnv();
  const lxd = new LxdDaemon(env, '1GiB');
  lxd.pools.splice(1);
  let bridgeMade = false;
  let failed = false;
  try {
    await env.prepareTslxc();
    log('tslxc image build debian (cached) and export');
    await runOk(path.join(repoRoot, 'bin/tslxc'), ['image', 'build', 'debian'], { env: env.env, timeoutMs: 900_000 });
    const tarball = path.join(env.root, 'debian.tar.gz');
    await runOk(path.join(repoRoot, 'bin/tslxc'), ['image', 'export', 'debian', tarball], { env: env.env, timeoutMs: 600_000 });
    await lxd.start(log);
    await lxd.preseed();
    await lxd.lxcOk(['image', 'import', tarball, '--alias', IMAGE]);
    lxd.images.add(IMAGE);
    await lxd.lxcOk(['network', 'create', BRIDGE, 'ipv4.address=none', 'ipv6.address=none', 'ipv4.nat=false', 'ipv6.nat=false']);
    bridgeMade = true;
    await lxd.lxcOk(['init', IMAGE, INSTANCE, '--network', BRIDGE]);
    lxd.instances.add(INSTANCE);
    env.cgroupNames.add(`lxc.payload.${INSTANCE}`).add(`lxc.monitor.${INSTANCE}`);
    await lxd.lxcOk(['start', INSTANCE]);
    await sleep(5000);
    const a = await get(path.join(lxd.dir, 'unix.socket'), '/1.0/metrics');
    if (a.status !== 200) throw new Error(`GET /1.0/metrics: ${a.status} ${a.body.slice(0, 200)}`);
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'metrics.txt'), a.body);
    fs.writeFileSync(path.join(out, 'metrics-content-type.txt'), `${a.type}\n`);
    log(`wrote metrics.txt (${a.body.split('\n').length} lines, ${a.type}) to ${out}`);
  } catch (e) {
    failed = true;
    log(`FAILED: ${(e as Error).stack ?? String(e)}`);
  } finally {
    const problems: string[] = [];
    if (lxd.pid !== undefined) {
      await lxd.lxc(['delete', '--force', INSTANCE], { duringCleanup: true });
      if (bridgeMade && fs.existsSync(`/sys/class/net/${BRIDGE}`)) {
        const d = await lxd.lxc(['network', 'delete', BRIDGE], { duringCleanup: true });
        if (d.code !== 0) problems.push(`lxc network delete ${BRIDGE}: ${d.stderr.trim()}`);
      }
    }
    problems.push(...(await lxd.cleanup(log)));
    if (fs.existsSync(`/sys/class/net/${BRIDGE}`)) {
      await run('ip', ['link', 'del', BRIDGE], { duringCleanup: true });
      problems.push(`bridge ${BRIDGE} removed with ip link del`);
    }
    problems.push(...(await env.cleanup(log)));
    for (const p of problems) log(`cleanup problem: ${p}`);
    process.exitCode = failed || problems.length ? 1 : 0;
  }
}

await main();
