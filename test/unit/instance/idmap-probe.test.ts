import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { supportsIdmappedMounts } from '../../../lib/instance/idmap.js';
import { helperPath } from '../../../lib/state/helper.js';

/** The idmapped-mount probe is remembered for the rest of the boot in the run dir, keyed by boot id, device and filesystem type. */
test("the probe answer is cached in the run dir under this boot's id", (t) => {
  if (process.getuid?.() !== 0) return t.pass(); // the probe needs root; the answer is then simply "no"
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-probe-'));
  try {
    const runDir = path.join(root, 'run');
    const answer = supportsIdmappedMounts(root, runDir);
    t.is(answer, spawnSync(helperPath(), ['idmap-probe', root]).status === 0, 'the same as the helper says');
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const files = fs.readdirSync(path.join(runDir, 'idmap-probe'));
    t.is(files.length, 1);
    t.true(files[0].startsWith(`${bootId}-${fs.statSync(root).dev}-`));
    t.is(fs.readFileSync(path.join(runDir, 'idmap-probe', files[0]), 'utf8'), answer ? 'yes\n' : 'no\n');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
