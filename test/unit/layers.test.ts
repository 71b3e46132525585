import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

// The import graph of lib/: no cycle between files, and the cycle between packages may only shrink.
// Edges are what runs: static `import ... from` / `export ... from` and `await import('...')` of a
// relative path; `import type` and `export type` are erased by tsc and do not count. Files are
// parsed with the TypeScript compiler the build already uses, so multi-line imports and
// type-only forms are read as tsc reads them.

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative module specifiers a file loads at run time. */
function runtimeImports(file: string): string[] {
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.importClause?.isTypeOnly) specs.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.isTypeOnly) specs.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) specs.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return specs.filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** file -> the files of the tree it imports (`x.js` is `x.ts`, a folder is its index.ts). */
function importGraph(root: string): Map<string, Set<string>> {
  const files = tsFiles(root);
  const known = new Set(files);
  const graph = new Map<string, Set<string>>();
  for (const f of files) {
    const out = new Set<string>();
    for (const spec of runtimeImports(f)) {
      const base = path.resolve(path.dirname(f), spec).replace(/\.js$/, '.ts');
      const hit = [base, `${base}.ts`, path.join(base, 'index.ts')].find((c) => known.has(c));
      if (hit) out.add(hit);
    }
    graph.set(path.relative(root, f), new Set([...out].map((t) => path.relative(root, t))));
  }
  return graph;
}

/** The same graph between the first-level folders of the tree (a file directly in it is its own package). */
function packageGraph(files: Map<string, Set<string>>): Map<string, Set<string>> {
  const pkg = (f: string) => f.split(path.sep)[0];
  const graph = new Map<string, Set<string>>();
  for (const [f, out] of files) {
    const from = pkg(f);
    if (!graph.has(from)) graph.set(from, new Set());
    for (const t of out) if (pkg(t) !== from) graph.get(from)!.add(pkg(t));
  }
  return graph;
}

/** Strongly connected components of more than one node, or a node importing itself (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return found;
}

const sorted = (cs: string[][]) => cs.map((c) => [...c].sort().join(' ')).sort();
const show = (cs: string[][]) => cs.map((c) => `  ${c.join(', ')}`).join('\n');

test('the graph walk sees static, re-exported and dynamic imports and skips type-only ones', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-layers-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (f: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  };
  write('a/one.ts', "import {\n  two,\n} from './two.js';\nexport const one = two;\n");
  write('a/two.ts', "export { three as two } from '../b/three.js';\n");
  write('b/three.ts', "import type { one } from '../a/one.js';\nexport type { one };\nexport const three = async () => (await import('./four.js')).four;\n");
  write('b/four.ts', "export { type one } from '../a/one.js';\nexport const four = 4;\n");
  write('b/five.ts', "import { one } from '../a/index.js';\nexport const five = one;\n");
  write('a/index.ts', "import { five } from '../b/five.js';\nexport const one = five;\n");
  const g = importGraph(dir);
  t.deepEqual([...g.get(path.join('a', 'one.ts'))!], [path.join('a', 'two.ts')]);
  t.deepEqual([...g.get(path.join('b', 'three.ts'))!], [path.join('b', 'four.ts')]);
  // `export { type one }` still loads the module at run time; only `import type`/`export type` are erased.
  t.deepEqual([...g.get(path.join('b', 'four.ts'))!], [path.join('a', 'one.ts')]);
  const j = (...parts: string[]) => path.join(...parts);
  t.deepEqual(sorted(cycles(g)), sorted([[j('a', 'one.ts'), j('a', 'two.ts'), j('b', 'three.ts'), j('b', 'four.ts')], [j('a', 'index.ts'), j('b', 'five.ts')]]));
  t.deepEqual(cycles(packageGraph(g)), [['a', 'b']]);
});

test('no import cycle between the files of lib/', (t) => {
  const found = cycles(importGraph(path.join(repo, 'lib')));
  t.deepEqual(found, [], `import cycles between files of lib/ (move what both sides share into a module below them):\n${show(found)}`);
});

// A ratchet, issue #16 item 1: lib's packages still form one cycle, largely because Context,
// InstanceConfig, liveness and the helper client live in lib/instance while storage, network,
// image, profile, ssh and host import them. Breaking it moves those into a base package; until
// then no new cycle may appear and no other package may join this one. Lower the figures as it
// shrinks; never raise them. config left it when device validation moved to lib/device, which
// is in it only through Context, InstanceConfig and the helper client (and network/storage's
// imports of them), so it leaves with them.
const MAX_PACKAGE_CYCLES = 1;
const PACKAGES_IN_CYCLES = ['device', 'host', 'image', 'instance', 'network', 'profile', 'ssh', 'storage'];

test('the cycle between the packages of lib/ does not grow', (t) => {
  const found = cycles(packageGraph(importGraph(path.join(repo, 'lib'))));
  t.true(found.length <= MAX_PACKAGE_CYCLES, `${found.length} package cycles in lib/, at most ${MAX_PACKAGE_CYCLES} allowed (issue #16 item 1):\n${show(found)}`);
  const joined = found.flat().filter((p) => !PACKAGES_IN_CYCLES.includes(p));
  t.deepEqual(joined, [], `packages newly in an import cycle (issue #16 item 1): ${joined.join(', ')}\n${show(found)}`);
});
