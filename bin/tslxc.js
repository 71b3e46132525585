#!/usr/bin/env node
// The compiled CLI lives in dist/ (npm ci builds it). The hot commands (exec, list, start, stop,
// ssh, create, launch) take a lean path without yargs (lib/cli/fast.ts). Everything else, and
// anything the fast path does not understand, goes to the yargs CLI (lib/cli/index.ts). Both are
// bundled at build time into dist/lib/fast, sharing chunks: node resolves, reads and compiles
// one file per chunk instead of ~150 modules, 65 ms less for a yargs command here. The bundle
// sits at the same depth as the modules, so their relative paths to native/, templates/ and
// profiles/ hold.
import { tryFastPath } from '../dist/lib/fast/fast.js';

const args = process.argv.slice(2);
if (!(await tryFastPath(args))) {
  const { main } = await import('../dist/lib/fast/index.js');
  await main(args);
}
