// npm run build:ui: the dashboard (ui/, served by `tslxc serve` at /ui/) into dist/ui: app.js (the
// TypeScript pages with xterm.js, one minified ES module), app.css (ours and xterm's) and
// index.html. The pages are type-checked first (ui/tsconfig.json: the DOM's types, not node's),
// since esbuild only strips types. The gzipped size is printed: the bundle must stay small
// (issue #20: at most 300 KiB gzipped).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { build } from 'esbuild';

try {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'ui/tsconfig.json'], { stdio: 'inherit' });
} catch {
  process.exit(1);
}
const outdir = 'dist/ui';
fs.rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { app: 'ui/app.ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  outdir,
  // xterm.js goes in a chunk of its own, loaded when a terminal opens: the first render of a page
  // does not parse it.
  splitting: true,
  chunkNames: '[name]-[hash]',
  logLevel: 'warning',
  legalComments: 'linked',
});
await build({ entryPoints: { app: 'ui/app.css' }, bundle: true, minify: true, outdir, logLevel: 'warning' });
fs.copyFileSync('ui/index.html', `${outdir}/index.html`);
let gz = 0;
for (const f of fs.readdirSync(outdir)) if (/\.(js|css|html)$/.test(f)) gz += zlib.gzipSync(fs.readFileSync(`${outdir}/${f}`), { level: 9 }).length;
fs.writeFileSync(`${outdir}/size.json`, `${JSON.stringify({ gzipBytes: gz })}\n`);
if (process.env.TSLXC_UI_SIZE) console.log(`dashboard bundle: ${(gz / 1024).toFixed(1)} KiB gzipped`);
