import os from 'node:os';
import { TslxcError } from '../errors.js';

/** Linux's SIGRTMIN as glibc reports it to programs (the kernel's 32 plus glibc's two). */
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** Turn "SIGRTMIN+3", "SIGPWR", "PWR", "37" into a signal number. */
export function signalNumber(name: string): number {
  const s = name.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= SIGRTMAX) return n;
  }
  const full = s.startsWith('SIG') ? s : `SIG${s}`;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(full);
  if (rt) {
    const n = SIGRTMIN + Number(rt[1] ?? 0);
    if (n <= SIGRTMAX) return n;
  }
  const known = (os.constants.signals as Record<string, number>)[full];
  if (known) return known;
  throw new TslxcError(`Unknown signal "${name}"`, undefined, 'use a name like SIGPWR or SIGRTMIN+3');
}
