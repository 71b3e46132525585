import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

// The import graph of lib/ against its layer table (lib/layers.json): no cycle between files, none
// between packages, and no import from a package to one listed after it. Every import counts:
// `import ... from`, `export ... from`, `await import('...')` and the type-only forms (`import
// type`, `export type`, `import('...').T`): a type from a higher layer ties the code to that layer
// as much as a value does. Files are parsed with the TypeScript compiler the build already uses,
// so multi-line and type-only forms are read as tsc reads them. Why not dependency-cruiser: this
// needs a graph walk, Tarjan and a table lookup, about 100 lines here, against a new dependency
// tree and a second config format for the same table.

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

/** Relative module specifiers a file imports, in any form. */
function imports(file: string): string[] {
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) specs.push(arg.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specs.push(node.argument.literal.text);
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
    for (const spec of imports(f)) {
      const base = path.resolve(path.dirname(f), spec).replace(/\.js$/, '.ts');
      const hit = [base, `${base}.ts`, path.join(base, 'index.ts')].find((c) => known.has(c));
      if (hit) out.add(hit);
    }
    graph.set(path.relative(root, f), new Set([...out].map((t) => path.relative(root, t))));
  }
  return graph;
}

/** A file's package: the first-level folder of the tree it is in, or the file itself directly in the tree. */
const pkg = (f: string) => f.split(path.sep)[0];

/** The same graph between the packages of the tree. */
function packageGraph(files: Map<string, Set<string>>): Map<string, Set<string>> {
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

/** Imports from a package to one after it in `order` (lowest first), as "file -> file". */
function upward(files: Map<string, Set<string>>, order: readonly string[]): string[] {
  const rank = new Map(order.map((p, i) => [p, i]));
  const found: string[] = [];
  for (const [f, targets] of files) {
    for (const t of targets) {
      const from = rank.get(pkg(f));
      const to = rank.get(pkg(t));
      if (from !== undefined && to !== undefined && to > from) found.push(`${f} -> ${t}`);
    }
  }
  return found.sort();
}

interface LayerTable {
  layers: Array<{ name: string; packages: string[]; about: string }>;
}

const sorted = (cs: string[][]) => cs.map((c) => [...c].sort().join(' ')).sort();
const show = (cs: string[][]) => cs.map((c) => `  ${c.join(', ')}`).join('\n');

test('the graph walk sees static, re-exported, dynamic and type-only imports', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-layers-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (f: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  };
  const j = (...parts: string[]) => path.join(...parts);
  write('a/one.ts', "import {\n  two,\n} from './two.js';\nexport const one = two;\n");
  write('a/two.ts', "export { three as two } from '../b/three.js';\n");
  write('b/three.ts', "export const three = async () => (await import('./four.js')).four;\n");
  write('b/four.ts', "import type { one } from '../a/one.js';\nexport const four: typeof one = 4;\n");
  write('b/five.ts', "import { one } from '../a/index.js';\nexport const five = one;\n");
  write('a/index.ts', "import { five } from '../b/five.js';\nexport const one = five;\n");
  write('c/six.ts', "export type Six = import('../d/seven.js').Seven;\nexport type { Eight } from '../d/eight.js';\n");
  write('d/seven.ts', 'export type Seven = 7;\n');
  write('d/eight.ts', 'export type Eight = 8;\n');
  const g = importGraph(dir);
  t.deepEqual([...g.get(j('a', 'one.ts'))!], [j('a', 'two.ts')]);
  t.deepEqual([...g.get(j('b', 'three.ts'))!], [j('b', 'four.ts')]);
  t.deepEqual([...g.get(j('b', 'four.ts'))!], [j('a', 'one.ts')]);
  t.deepEqual([...g.get(j('c', 'six.ts'))!].sort(), [j('d', 'eight.ts'), j('d', 'seven.ts')]);
  t.deepEqual(
    sorted(cycles(g)),
    sorted([
      [j('a', 'one.ts'), j('a', 'two.ts'), j('b', 'three.ts'), j('b', 'four.ts')],
      [j('a', 'index.ts'), j('b', 'five.ts')],
    ]),
  );
  t.deepEqual(cycles(packageGraph(g)), [['a', 'b']]);
  t.deepEqual(upward(g, ['d', 'c', 'b', 'a']), [`${j('b', 'five.ts')} -> ${j('a', 'index.ts')}`, `${j('b', 'four.ts')} -> ${j('a', 'one.ts')}`]);
});

const lib = path.join(repo, 'lib');
const table = JSON.parse(fs.readFileSync(path.join(lib, 'layers.json'), 'utf8')) as LayerTable;
const order = table.layers.flatMap((l) => l.packages);
const layerOf = (p: string) => table.layers.find((l) => l.packages.includes(p))!.name;
let libGraph: Map<string, Set<string>> | undefined;
const libImports = () => (libGraph ??= importGraph(lib));

test('no import cycle between the files of lib/', (t) => {
  const found = cycles(libImports());
  t.deepEqual(found, [], `import cycles between files of lib/ (move what both sides share into a module below them):\n${show(found)}`);
});

test('no import cycle between the packages of lib/', (t) => {
  const found = cycles(packageGraph(libImports()));
  t.deepEqual(found, [], `import cycles between packages of lib/ (lib/layers.json gives their order):\n${show(found)}`);
});

test('every package of lib/ has its place in the layer table, once', (t) => {
  const missing = fs
    .readdirSync(lib, { withFileTypes: true })
    .filter((e) => e.isDirectory() || (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')))
    .map((e) => e.name)
    .filter((p) => !order.includes(p));
  t.deepEqual(missing, [], `packages of lib/ not in lib/layers.json (place each in its layer): ${missing.join(', ')}`);
  t.deepEqual(
    order.filter((p, i) => order.indexOf(p) !== i),
    [],
    'a package listed twice in lib/layers.json',
  );
});

test('no file of lib/ imports from a package above its own', (t) => {
  const found = upward(libImports(), order).map((e) => {
    const [from, to] = e.split(' -> ');
    return `  ${e} (${layerOf(pkg(from))}/${pkg(from)} imports ${layerOf(pkg(to))}/${pkg(to)})`;
  });
  t.deepEqual(
    found,
    [],
    `imports from a lower package to a higher one (lib/layers.json; move the shared part down, or pass the value in):\n${found.join('\n')}`,
  );
});
