import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigCache, loadConfig, saveConfig, type InstanceConfig } from '../../../lib/state/config.js';
import type { Paths } from '../../../lib/state/paths.js';

function tmpPaths(): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-cfgcache-'));
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'tslxc-unit' };
}

function make(p: Paths, name: string, hostname = name): InstanceConfig {
  fs.mkdirSync(path.join(p.stateDir, 'containers', name), { recursive: true });
  const cfg = {
    name,
    status: 'created',
    created_at: '2026-12-02T00:00:00.000Z',
    hostname,
    image: { fingerprint: 'f'.repeat(64), alias: 'busybox' },
    init: ['/sbin/init'],
    stop_signal: 'SIGUSR2',
    environment: {},
    profiles: ['default'],
    config: {},
    devices: {},
  } as unknown as InstanceConfig;
  saveConfig(p, cfg);
  return cfg;
}

test("list's config cache: served while the file is the same, re-read when it changed, pruned, rebuilt when unreadable", (t) => {
  const p = tmpPaths();
  try {
    make(p, 'a');
    make(p, 'b');
    const first = new ConfigCache(p);
    t.is(first.load('a').hostname, 'a');
    t.is(first.load('b').hostname, 'b');
    first.save(['a', 'b']);
    const file = path.join(p.runDir, 'list-cache.json');
    t.is(fs.statSync(file).mode & 0o777, 0o600);

    // Served from the cache while config.yaml is unchanged: an edit of the cache shows through.
    const data = JSON.parse(fs.readFileSync(file, 'utf8'));
    data.entries.a.cfg.hostname = 'from-cache';
    fs.writeFileSync(file, JSON.stringify(data));
    t.is(new ConfigCache(p).load('a').hostname, 'from-cache');

    // A saved config is a new file: re-read.
    const cfg = loadConfig(p, 'a');
    cfg.hostname = 'changed';
    saveConfig(p, cfg);
    const again = new ConfigCache(p);
    t.is(again.load('a').hostname, 'changed');
    again.save(['a']);
    t.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')).entries), ['a'], 'b, gone from the list, is pruned');

    fs.writeFileSync(file, '{not json');
    t.is(new ConfigCache(p).load('b').hostname, 'b', 'an unreadable cache is ignored');
    t.throws(() => new ConfigCache(p).load('nosuch'), { message: /not found/ });
  } finally {
    fs.rmSync(path.dirname(p.stateDir), { recursive: true, force: true });
  }
});
