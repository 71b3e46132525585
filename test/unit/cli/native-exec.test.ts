import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseCommandLine } from '../../../lib/cli/define.js';
import exec from '../../../lib/cli/commands/exec.js';
import { EXEC_OPTIONS } from '../../../lib/cli/options/exec.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const helper = path.resolve(here, '../../../../native/build/tslxc-helper');

/** The TypeScript parse of `exec ARGS` in the helper's --print-parse format. */
function tsParse(args: string[]): string {
  const a = parseCommandLine(exec, args);
  if (!a) return 'refused\n';
  const lines = [`name ${String(a.name)}`];
  if (a.tty) lines.push('tty');
  if (a['no-tty']) lines.push('no-tty');
  for (const e of (a.env as string[] | undefined) ?? []) lines.push(`env ${e}`);
  if (a.cwd !== undefined) lines.push(`cwd ${String(a.cwd)}`);
  if (a.user !== undefined) lines.push(`user ${String(a.user)}`);
  if (a.group !== undefined) lines.push(`group ${String(a.group)}`);
  for (const w of a.command as string[]) lines.push(`command ${w}`);
  return `${lines.join('\n')}\n`;
}

function nativeParse(args: string[]): string {
  const r = spawnSync(helper, ['cli', '--print-parse', 'exec', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`helper: ${r.stderr}`);
  return r.stdout;
}

const samples: string[][] = [
  ['c'],
  ['c', 'ls'],
  ['c', 'ls', 'a b', ''],
  ['c', '--', 'ls', '-l', '--help', '--', '-t'],
  ['--', 'c', 'ls'],
  [],
  ['-t', 'c'],
  ['c', '-tT'],
  ['c', '-Tt', 'sh'],
  ['c', '-tx'],
  ['c', '-'],
  ['c', '-', '-t'],
  ['c', '--env', 'A=1', '--env=B=2=3', '--env', '=x', '--env', 'noeq', 'sh'],
  ['--env', 'A=1', 'c'],
  ['c', '--env'],
  ['c', '--env', '-x'],
  ['c', '--env', '-'],
  ['c', '--env='],
  ['c', '--cwd', '/tmp', '--cwd', '/srv'],
  ['c', '--cwd', '--', 'ls'],
  ['c', '--user', 'root', '--user=1000'],
  ['c', '--user', '1000', '--group=100', 'id'],
  ['c', '--tty=1'],
  ['c', '--no-tty=yes'],
  ['c', '--force-interactive', '--force-noninteractive'],
  ['c', '--bogus'],
  ['c', '-x'],
  ['c', '---tty'],
  ['c', '--=x'],
  ['c', '-1'],
  ['c', '--help'],
  ['c', '-h'],
  ['c', '--debug'],
  ['c', '--TTY'],
  ['c', 'sh', '-c', 'true'],
];
// Every option in every spelling, before and after the name.
for (const [key, o] of Object.entries(EXEC_OPTIONS)) {
  for (const flag of [`--${key}`, ...(o.short ? [`-${o.short}`] : []), ...(o.aliases ?? []).map((a) => `--${a}`)]) {
    const words = o.type === 'boolean' ? [flag] : [flag, 'K=V'];
    samples.push([...words, 'c', 'true'], ['c', ...words, 'true'], ['c', 'true', ...words], ['c', '--', ...words]);
  }
}

// The helper runs exec without node when it can: it must read a command line exactly as the
// TypeScript CLI does, or hand it over (refuse) where the TypeScript parser would too.
test('the helper reads exec command lines as the TypeScript parser does', (t) => {
  for (const args of samples) t.is(nativeParse(args), tsParse(args), JSON.stringify(args));
});
