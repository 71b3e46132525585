import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import test from 'ava';
import { helperPath } from '../../../lib/state/helper.js';
import { dnsmasqIdentity, leaseCheck, leasedToAnother } from '../../../lib/network/dnsmasq.js';
import { processFromPidFile } from '../../../lib/util/proc.js';
import { readGeneration } from '../../../lib/state/generations.js';

/**
 * A start plan's checks are rules the TypeScript side decides and native/plan.c only applies
 * (instance/plan.ts). Here both sides get the same inputs: the helper's `plan-check` mode runs one
 * check as a replay runs it, and its answer must be the TypeScript function's.
 */
const helperHolds = (op: string[]): boolean => {
  const r = spawnSync(helperPath(), ['plan-check', ...op], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`plan-check ${op.join(' ')}: status ${r.status} ${r.stderr}`);
  return r.status === 0;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-plan-rules-'));
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the lease check: the helper and leasedToAnother agree on every fixture', (t) => {
  const own = '02:00:00:00:00:01';
  const ip = '10.0.0.5';
  const fixtures: Record<string, string> = {
    empty: '',
    mine: `1700000000 ${own} ${ip} c1 *\n`,
    mineUpperCase: `1700000000 ${own.toUpperCase()} ${ip} c1 *\n`,
    other: `1700000000 02:00:00:00:00:99 ${ip} other *\n`,
    otherAddress: `1700000000 02:00:00:00:00:99 10.0.0.50 other *\n`,
    prefixAddress: `1700000000 02:00:00:00:00:99 10.0.0.5x other *\n`,
    duid: 'duid 00:01:00:01:2c:aa:bb:cc:dd:ee:ff:00\n',
    threeFields: `1700000000 02:00:00:00:00:99 ${ip}\n`,
    fourFields: `1700000000 02:00:00:00:00:99 ${ip} other\n`,
    tabsAndSpaces: `  1700000000\t02:00:00:00:00:99   ${ip}\tother *\n`,
    crlf: `1700000000 02:00:00:00:00:99 ${ip} other *\r\n`,
    noNewline: `1700000000 02:00:00:00:00:99 ${ip} other *`,
    // dnsmasq caught mid-rewrite: "10.0.0.55 other *" cut short after "10.0.0.5".
    torn: `1700000000 ${own} 10.0.0.4 c1 *\n1700000001 02:00:00:00:00:99 ${ip}`,
    mixed: `duid 00:01\n1700000000 ${own} ${ip} c1 *\n\n1700000001 02:00:00:00:00:98 10.0.0.6 x *\n1700000002 02:00:00:00:00:97 ${ip} y *\n`,
    manyFields: `1700000000 02:00:00:00:00:99 ${ip} other * a b c d e f g h i j k l m n o p q\n`,
  };
  for (const [name, text] of Object.entries(fixtures)) {
    const file = path.join(dir, `leases-${name}`);
    fs.writeFileSync(file, text);
    for (const mine of [[own], [], [own, '02:00:00:00:00:99']]) {
      const ts = leasedToAnother(text, ip, mine);
      t.is(helperHolds(leaseCheck(file, ip, mine)), !ts, `${name} with own ${JSON.stringify(mine)}: TypeScript says ${ts ? 'leased to another' : 'clear'}`);
    }
  }
  t.true(helperHolds(leaseCheck(path.join(dir, 'no-such-file'), ip, [])), 'no leases file: no lease');
  t.false(leasedToAnother('', ip, []));
});

test('which process is ours: the helper and processFromPidFile agree', async (t) => {
  const conf = path.join(dir, 'dnsmasq.conf');
  const ours = dnsmasqIdentity(conf);
  const children: ChildProcess[] = [];
  const run = (argv0: string, args: string[]) => {
    const c = spawn('/bin/sh', ['-c', 'sleep 30; :', ...args], { argv0, stdio: 'ignore' });
    children.push(c);
    return c.pid!;
  };
  t.teardown(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  const cases: Record<string, string> = {};
  const match = run('/usr/sbin/dnsmasq', [ours.arg]);
  const bare = run('dnsmasq', [ours.arg]);
  const otherConf = run('dnsmasq', [`--conf-file=${conf}.other`]);
  const otherProgram = run('/usr/sbin/dnsmasq-not', [ours.arg]);
  const noArg = run('dnsmasq', []);
  // A pid no process has (exited and reaped).
  const gone = spawnSync('/bin/true').pid!;
  await new Promise((r) => setTimeout(r, 200));
  Object.assign(cases, {
    match: `${match}\n`,
    matchNoNewline: String(match),
    bare: `${bare}\n`,
    otherConf: `${otherConf}\n`,
    otherProgram: `${otherProgram}\n`,
    noArg: `${noArg}\n`,
    gone: `${gone}\n`,
    leadingSpace: ` ${match}\n`,
    trailingSpace: `${match} \n`,
    secondLine: `${match}\nmore\n`,
    empty: '',
    zero: '0\n',
    letters: 'abc\n',
    huge: '99999999999999999999\n',
    signed: `+${match}\n`,
  });
  for (const [name, text] of Object.entries(cases)) {
    const file = path.join(dir, `pid-${name}`);
    fs.writeFileSync(file, text);
    const ts = processFromPidFile(file, ours.program, ours.arg) !== undefined;
    t.is(helperHolds(['proc', file, ours.program, ours.arg]), ts, `${name}: TypeScript says ${ts}`);
  }
  t.true(processFromPidFile(path.join(dir, 'pid-match'), ours.program, ours.arg) === match);
  t.false(helperHolds(['proc', path.join(dir, 'no-such-pid-file'), ours.program, ours.arg]));
});

test('a generation: the helper reads it as readGeneration does (a missing one is "")', (t) => {
  const p = { stateDir: dir, runDir: path.join(dir, 'run'), cacheDir: dir, cgroupPrefix: 'x' };
  const file = path.join(p.runDir, 'generations', 'profile', 'x');
  t.is(readGeneration(p, 'profile/x'), '');
  t.true(helperHolds(['gen', file, '']));
  t.false(helperHolds(['gen', file, '1.2.3']));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '1.2.3');
  t.is(readGeneration(p, 'profile/x'), '1.2.3');
  t.true(helperHolds(['gen', file, '1.2.3']));
  t.false(helperHolds(['gen', file, '']));
  t.false(helperHolds(['gen', file, '1.2.3\n']));
});

test('plan-check refuses what is not a check, and a check with operands missing or left over', (t) => {
  const r = (args: string[]) => spawnSync(helperPath(), ['plan-check', ...args]).status;
  t.is(r(['mkdir', path.join(dir, 'x')]), 2);
  t.false(fs.existsSync(path.join(dir, 'x')));
  t.is(r(['gen', path.join(dir, 'nope'), '', 'extra']), 2);
  t.is(r(['proc', path.join(dir, 'nope')]), 1);
});
