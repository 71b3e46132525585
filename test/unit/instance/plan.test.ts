import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { StartRecorder } from '../../../lib/instance/plan.js';

/** What a start plan checks is what its start read: each start's reads are its own, even side by side. */
test('reads are noted by the recorder of the start that made them, concurrent starts included', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-plan-'));
  try {
    for (const f of ['a.yaml', 'b.yaml']) fs.writeFileSync(path.join(dir, f), 'x: 1\n');
    fs.mkdirSync(path.join(dir, 'sub'));
    const original = fs.readFileSync;
    const one = new StartRecorder(dir);
    const two = new StartRecorder(dir);
    const pause = () => new Promise((r) => setTimeout(r, 5));
    await Promise.all([
      one.watch(async () => {
        fs.readFileSync(path.join(dir, 'a.yaml'));
        await pause();
        fs.existsSync(path.join(dir, 'sub'));
        fs.existsSync(path.join(dir, 'missing'));
      }),
      two.watch(async () => {
        await pause();
        fs.readFileSync(path.join(dir, 'b.yaml'));
        fs.readdirSync(path.join(dir, 'sub'));
        fs.readFileSync('/etc/hostname'); // outside the state dir: not an input
      }),
    ]);
    t.deepEqual([...one.reads].sort(), [
      [path.join(dir, 'a.yaml'), 'content'],
      [path.join(dir, 'missing'), 'content'],
      [path.join(dir, 'sub'), 'inode'],
    ]);
    t.deepEqual([...two.reads].sort(), [
      [path.join(dir, 'b.yaml'), 'content'],
      [path.join(dir, 'sub'), 'content'],
    ]);
    t.is(fs.readFileSync, original, 'the hooks are gone once no start runs');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
