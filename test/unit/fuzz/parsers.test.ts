import { Worker } from 'node:worker_threads';
import test from 'ava';
import { TARGETS } from './targets.js';

/**
 * Fuzzing of what tslxc parses from users and images: recipes (YAML), config keys and values,
 * names, profiles (YAML), and the image import checks (archive entry lists, metadata.yaml).
 * Seeded mutations of a seed corpus (the built-in templates, sample profiles and metadata) and
 * random inputs must only succeed or throw a one-line TslxcError: never another exception, never
 * take more than 2 s. Each target runs in a worker for TSLXC_FUZZ_SECONDS (default 10; the targets
 * run side by side) with TSLXC_FUZZ_SEED (default 1): a failure names the case index, which that
 * seed reproduces (targets.ts turns (seed, index) into the same input).
 */
const seconds = Number(process.env.TSLXC_FUZZ_SECONDS ?? 10);
const seed = Number(process.env.TSLXC_FUZZ_SEED ?? 1);

for (const target of Object.keys(TARGETS)) {
  test(`fuzz ${target}: only success or a one-line TslxcError (seed ${seed})`, async (t) => {
    t.timeout((seconds + 30) * 1000);
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { target, seed, seconds } });
    let last = 0;
    const result = await new Promise<{ cases?: number; failure?: { index: number; input: string; error: string }; hang?: boolean }>((resolve, reject) => {
      const timer = setTimeout(() => resolve({ hang: true }), (seconds + 15) * 1000);
      worker.on('message', (m) => {
        if (m.progress !== undefined) last = m.progress;
        else if (m.failure) {
          clearTimeout(timer);
          resolve({ failure: m.failure });
        } else if (m.done) {
          clearTimeout(timer);
          resolve({ cases: m.cases });
        }
      });
      worker.on('error', reject);
    });
    if (result.hang) await worker.terminate();
    else await new Promise((r) => (worker.threadId === -1 ? r(undefined) : worker.once('exit', r)));
    if (result.hang) return t.fail(`${target}: no answer for ${seconds + 15} s after case ~${last} (seed ${seed}): a hang`);
    if (result.failure) {
      const f = result.failure;
      return t.fail(`${target}: case ${f.index} (seed ${seed}): ${f.error}\ninput: ${JSON.stringify(f.input)}`);
    }
    t.log(`${result.cases} cases`);
    t.true((result.cases ?? 0) > 0);
  });
}
