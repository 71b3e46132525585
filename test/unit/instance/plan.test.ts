import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { StartRecorder } from '../../../lib/instance/plan.js';

/** What a start plan checks is what its start read. */
test.serial('reads are noted by the recorder of the start that made them', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-plan-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.yaml'), 'x: 1\n');
    fs.mkdirSync(path.join(dir, 'sub'));
    const original = fs.readFileSync;
    const one = new StartRecorder(dir);
    await one.watch(async () => {
      fs.readFileSync(path.join(dir, 'a.yaml'));
      await new Promise((r) => setTimeout(r, 5));
      fs.existsSync(path.join(dir, 'sub'));
      fs.existsSync(path.join(dir, 'missing'));
      fs.readFileSync('/etc/hostname'); // outside the state dir: not an input
    });
    t.deepEqual([...one.reads].sort(), [
      [path.join(dir, 'a.yaml'), 'content'],
      [path.join(dir, 'missing'), 'content'],
      [path.join(dir, 'sub'), 'inode'],
    ]);
    t.is(one.unfit, undefined);
    fs.readFileSync(path.join(dir, 'a.yaml'));
    t.is(one.reads.size, 3, 'nothing is noted after the start');
    t.is(fs.readFileSync, original, 'the hooks are gone once no start runs');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Reads of two starts at once cannot be told apart (no async context is tracked): neither may
// write a plan that could miss an input.
test.serial('starts that run at the same time in one process write no plan; a start alone afterwards does', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-plan-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.yaml'), 'x: 1\n');
    const pause = () => new Promise((r) => setTimeout(r, 5));
    const one = new StartRecorder(dir);
    const two = new StartRecorder(dir);
    await Promise.all([
      one.watch(async () => {
        await pause();
        fs.readFileSync(path.join(dir, 'a.yaml'));
      }),
      two.watch(async () => {
        await pause();
        await pause();
      }),
    ]);
    t.regex(one.unfit ?? '', /another start/);
    t.regex(two.unfit ?? '', /another start/);
    const three = new StartRecorder(dir);
    await three.watch(async () => {
      fs.readFileSync(path.join(dir, 'a.yaml'));
    });
    t.is(three.unfit, undefined);
    t.deepEqual([...three.reads], [[path.join(dir, 'a.yaml'), 'content']]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
