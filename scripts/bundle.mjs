// npm run build:fast: bundles the compiled CLI (dist/) with esbuild, as bin/tslxc.js loads it.
// Two bundles, each at dist/lib/X so the modules' relative paths to native/, templates/ and
// profiles/ hold:
//   dist/lib/fast  the yargs-free fast path (lib/cli/fast.ts): exec, list, start, stop, ssh,
//                  create, launch and the lean commands;
//   dist/lib/full  the yargs CLI (lib/cli/index.ts), for everything else.
// Why bundle: node resolves, reads and compiles one file per chunk instead of ~150 ES modules,
// a clear saving in every command's start-up. Why two bundles and not one
// with shared chunks: sharing moved yargs-side code into chunks the fast path loads (a slower
// create). ssh2 stays external (an optional native addon). The banner gives the CommonJS
// dependencies (systeminformation, yaml, inquirer's editor) the `require` an ES module lacks:
// without it their require('fs') throws "Dynamic require of fs is not supported".
import fs from 'node:fs';
import { build } from 'esbuild';

const common = {
  bundle: true,
  external: ['ssh2'],
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  chunkNames: '[name]-[hash]',
  banner: { js: "import { createRequire as tslxcCreateRequire } from 'node:module'; const require = tslxcCreateRequire(import.meta.url);" },
};
for (const [entry, outdir] of [['dist/lib/cli/fast.js', 'dist/lib/fast'], ['dist/lib/cli/index.js', 'dist/lib/full']]) {
  fs.rmSync(outdir, { recursive: true, force: true });
  await build({ ...common, entryPoints: [entry], outdir });
}
