// npm run build:fast: bundles the compiled CLI (dist/) with esbuild, as bin/tslxc.js loads it.
// Two bundles, each at dist/lib/X so the modules' relative paths to native/, templates/ and
// profiles/ hold:
//   dist/lib/fast  the yargs-free fast path (lib/cli/fast.ts): exec, list, start, stop, ssh,
//                  create, launch and the other verbs of its table;
//   dist/lib/full  the yargs CLI (lib/cli/index.ts), for everything else.
// Why bundle: node resolves, reads and compiles one file per chunk instead of ~150 ES modules,
// a clear saving in every command's start-up. Why two bundles and not one
// with shared chunks: sharing moved yargs-side code into chunks the fast path loads (a slower
// create). ssh2 stays external (an optional native addon). The banner gives the CommonJS
// dependencies (systeminformation, yaml, inquirer's editor) the `require` an ES module lacks:
// without it their require('fs') throws "Dynamic require of fs is not supported".
import fs from 'node:fs';
import path from 'node:path';
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
for (const [entry, outdir] of [
  ['dist/lib/cli/fast.js', 'dist/lib/fast'],
  ['dist/lib/cli/index.js', 'dist/lib/full'],
]) {
  fs.rmSync(outdir, { recursive: true, force: true });
  await build({ ...common, entryPoints: [entry], outdir });
}

// dist/lib/verbs/VERB.js: the verbs of lib/cli/fast.ts's OWN_BUNDLES, each one file with all it
// may run (no splitting; what it imports dynamically is inlined and evaluated when first imported),
// under its word, and each alias as a re-export of it. bin/tslxc.js loads it instead of the fast
// path's chunks: every module node loads costs a resolve, a read (a round trip to its thread
// pool), a compile and a link, which on a busy host is more than the code itself.
{
  const outdir = 'dist/lib/verbs';
  fs.rmSync(outdir, { recursive: true, force: true });
  const { OWN_BUNDLES } = await import('../dist/lib/cli/fast.js');
  const { verbOf } = await import('../dist/lib/cli/define.js');
  // A remote exec (lib/cli/remote/exec.ts) is a file of its own, dist/lib/verbs/exec-remote.js
  // (no verb has a "-"), which exec's bundle imports when the container is a remote's: a remote
  // exec then compiles neither the local exec's code (instances, cgroups, YAML) nor loads its node
  // modules, and a local one not the client's (https, websockets).
  const apart = { exec: 'remote/exec.js' };
  // node's ES module face of a builtin reads every export once: node:crypto's loads WebCrypto,
  // node:tls's copies out the root certificates. Taken with require, as the CommonJS dependencies
  // (ws) take them, they are not: the client's modules get these three that way.
  const builtinsByRequire = {
    name: 'builtins-by-require',
    setup(b) {
      b.onResolve({ filter: /^node:(crypto|tls|https)$/ }, (args) => ({ path: args.path.slice('node:'.length), namespace: 'builtin-require' }));
      b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
    },
  };
  for (const [verb, module] of Object.entries(apart))
    await build({
      ...common,
      plugins: [builtinsByRequire],
      splitting: false,
      entryPoints: [`dist/lib/cli/${module}`],
      outfile: `${outdir}/${verb}-remote.js`,
    });
  for (const name of OWN_BUNDLES) {
    const def = (await import(`../dist/lib/cli/commands/${name}.js`)).default;
    const verb = verbOf(def);
    const module = apart[name];
    const remoteApart = {
      name: 'remote-apart',
      setup(b) {
        b.onResolve({ filter: /remote\/[a-z]+\.js$/ }, (args) =>
          module && args.kind === 'dynamic-import' && path.resolve(args.resolveDir, args.path) === path.resolve(`dist/lib/cli/${module}`)
            ? { path: `./${name}-remote.js`, external: true }
            : undefined,
        );
      },
    };
    await build({
      ...common,
      plugins: [remoteApart],
      splitting: false,
      stdin: {
        contents: `import def from './dist/lib/cli/commands/${name}.js';\nimport { runFast } from './dist/lib/cli/fast-run.js';\nexport const run = (args) => runFast(def, args);\n`,
        resolveDir: process.cwd(),
        sourcefile: `verbs/${verb}.js`,
      },
      outfile: `${outdir}/${verb}.js`,
    });
    for (const alias of def.aliases ?? []) fs.writeFileSync(`${outdir}/${alias}.js`, `export * from './${verb}.js';\n`);
  }
}

// dist/lib/cli/completion.json: the verbs' grammar as shell completion walks it, generated from
// their one definition (VERBS) so that a Tab loads neither yargs nor the library.
// completion-first.txt: the verbs whose first argument is a container, which the helper completes
// without node (native/clicomplete.c), from that same grammar.
{
  const { VERBS } = await import('../dist/lib/cli/index.js');
  const { completionSpec, nativeCompletionTable } = await import('../dist/lib/cli/complete.js');
  const spec = completionSpec(VERBS);
  fs.writeFileSync('dist/lib/cli/completion.json', JSON.stringify(spec));
  fs.writeFileSync('dist/lib/cli/completion-first.txt', nativeCompletionTable(spec));
}

// dist/build-id: start plans record it (lib/instance/plan.ts) and hold only while it is the same,
// so a rebuilt tslxc that starts containers differently invalidates them. A hash of what runs (the
// compiled lib/, the bundles included, and the built-in profiles and templates it reads): a build
// that changes nothing keeps them.
const { createHash } = await import('node:crypto');
const hash = createHash('sha256');
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(p);
    else if (e.isFile()) hash.update(`${p}\0`).update(fs.readFileSync(p));
  }
};
for (const dir of ['dist/lib', 'profiles', 'templates']) if (fs.existsSync(dir)) walk(dir);
fs.writeFileSync('dist/build-id', hash.digest('hex').slice(0, 24));
