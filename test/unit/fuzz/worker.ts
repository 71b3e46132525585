/**
 * Runs one fuzz target in a worker thread (so that a hang can be cut off by the test): posts
 * { progress } now and then and { done, cases } or { failure } at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { TARGETS } from './targets.js';

const { target, seed, seconds } = workerData as { target: string; seed: number; seconds: number };
const t = TARGETS[target];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-fuzz-'));
let result: { failure?: { index: number; input: string; error: string }; done?: boolean; cases?: number };
try {
  const run = t.setup(seed, dir);
  const end = Date.now() + seconds * 1000;
  let i = 0;
  let failure: { index: number; input: string; error: string } | undefined;
  for (; Date.now() < end; i++) {
    const started = Date.now();
    const outcome = run(i);
    const ms = Date.now() - started;
    if (outcome.error !== undefined || ms > 2000) {
      failure = { index: i, input: outcome.input.slice(0, 2000), error: outcome.error ?? `took ${ms} ms` };
      break;
    }
    if (i % 512 === 0) parentPort!.postMessage({ progress: i });
  }
  result = failure ? { failure } : { done: true, cases: i };
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
// After the cleanup: the test stops waiting (and the worker exits) once it has this.
parentPort!.postMessage(result);
