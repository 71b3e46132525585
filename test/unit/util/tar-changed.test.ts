import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { run, tarFileChangedOnly } from '../../../lib/util/exec.js';

/** How export runs tar (lib/image/lxd.ts): the warning silenced, exit 1 with nothing else said taken. */
const tarCreate = (tar: string, args: string[], what: string) => run(tar, ['--warning=no-file-changed', ...args], { what, tolerate: tarFileChangedOnly });

/**
 * An image's files are hard links shared with the build cache and other stores; a link made or
 * removed elsewhere while `tslxc image export` reads a file changes its ctime, and GNU tar then
 * exits 1 ("file changed as we read it"). Seen for real: the bench's export failed while test
 * suites imported the same build into their stores.
 */

/** A dir with one big sparse file (tar reads all of it: long enough to race), and a way to keep changing its ctime. */
function fixture(t: { teardown: (f: () => void) => void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-tar-changed-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'rootfs'));
  const big = path.join(dir, 'rootfs', 'big');
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, 256 * 2 ** 20);
  const churn = () => {
    // link + unlink: the content never changes, the inode's ctime does (as `cp -al` elsewhere would)
    const timer = setInterval(() => {
      const l = path.join(dir, `link-${process.hrtime.bigint()}`);
      fs.linkSync(big, l);
      fs.unlinkSync(l);
    }, 1);
    return () => clearInterval(timer);
  };
  return { dir, churn };
}

function plainTar(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code: code ?? 128, stderr }));
  });
}

test('a ctime change of an unchanged file during the read fails plain tar, not the way export runs it', async (t) => {
  const { dir, churn } = fixture(t);
  const args = (out: string) => ['-c', '-f', path.join(dir, out), '-C', dir, 'rootfs'];

  // The control: the race is real on this machine (else this test proves nothing).
  let stop = churn();
  const plain = await plainTar(args('plain.tar'));
  stop();
  t.is(plain.code, 1, plain.stderr);
  t.regex(plain.stderr, /file changed as we read it/);

  stop = churn();
  try {
    await tarCreate('tar', args('ours.tar'), 'Cannot export image test');
  } finally {
    stop();
  }
  t.true(fs.statSync(path.join(dir, 'ours.tar')).size > 256 * 2 ** 20);
});

test("export's tar still fails on a real error, with tar's message", async (t) => {
  const { dir } = fixture(t);
  const e = await t.throwsAsync(tarCreate('tar', ['-c', '-f', path.join(dir, 'x.tar'), '-C', dir, 'no-such-dir'], 'Cannot export image test'));
  t.regex(e!.message, /Cannot export image test/);
  t.regex(e!.message, /exit 2: .*no-such-dir/);
});
