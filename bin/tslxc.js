#!/usr/bin/env node
// The compiled CLI lives in dist/ (npm ci builds it). exec takes a lean path (lib/cli/fast.ts,
// bundled into one file at build time so it loads in a few milliseconds); everything else, and
// anything exec's fast path does not understand, goes to the yargs CLI.
import { tryFastPath } from '../dist/lib/cli/fast.bundle.js';

const args = process.argv.slice(2);
if (!(await tryFastPath(args))) {
  const { main } = await import('../dist/lib/cli/index.js');
  await main(args);
}
