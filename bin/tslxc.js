#!/usr/bin/env node
// The compiled CLI lives in dist/ (npm ci builds it). The hot commands (exec, list, start, stop,
// ssh, create, launch) take a lean path without yargs (lib/cli/fast.ts). Everything else, and
// anything the fast path does not understand, goes to the yargs CLI (lib/cli/index.ts). Each is
// bundled at build time (dist/lib/fast, dist/lib/full): node resolves, reads and compiles one file
// per chunk instead of ~150 modules, a clear saving on every yargs command. Two bundles, not one
// with shared chunks: sharing put yargs-side code into the chunks the fast path loads (a slower
// create). The bundles sit at the same depth as the modules, so their relative paths to
// native/, templates/ and profiles/ hold.
import { tryFastPath } from '../dist/lib/fast/fast.js';

const args = process.argv.slice(2);
if (!(await tryFastPath(args))) {
  const { main } = await import('../dist/lib/full/index.js');
  await main(args);
}
