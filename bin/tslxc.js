#!/usr/bin/env node
// The compiled CLI lives in dist/ (npm ci builds it). The hot commands (exec, list, start, stop,
// ssh, create, launch, ...) take a path without yargs (lib/cli/fast.ts). Everything else, and
// anything the fast path does not understand, goes to the yargs CLI (lib/cli/index.ts). Each is
// bundled at build time (dist/lib/fast, dist/lib/full): node resolves, reads and compiles one file
// per chunk instead of ~150 modules, a clear saving on every yargs command. Two bundles, not one
// with shared chunks: sharing put yargs-side code into the chunks the fast path loads (a slower
// create). The verbs a user waits on most are bundled once more, one file each
// (dist/lib/verbs/VERB.js, lib/cli/fast.ts's OWN_BUNDLES): that file is all such a command loads.
// The bundles sit at the same depth as the modules, so their relative paths to native/,
// templates/ and profiles/ hold.
import fs from 'node:fs';

const args = process.argv.slice(2);
const own = /^[a-z]+$/.test(args[0] ?? '') ? new URL(`../dist/lib/verbs/${args[0]}.js`, import.meta.url) : undefined;
const taken =
  own && fs.existsSync(own) ? await (await import(own.href)).run(args.slice(1)) : await (await import('../dist/lib/fast/fast.js')).tryFastPath(args);
if (!taken) {
  const { main } = await import('../dist/lib/full/index.js');
  await main(args);
}
