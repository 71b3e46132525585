import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = path.resolve(here, '../../../../lib');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

// The library runs under the CLI, and soon under a long-lived server: only the CLI's entry may end
// the process; the library says what happened with an error (lib/util/tls.ts's NeedsTlsError).
test('lib calls process.exit only in the CLI entry (lib/cli/index.ts, lib/cli/fast.ts)', (t) => {
  const entry = new Set(['cli/index.ts', 'cli/fast.ts']);
  const found = sources(lib)
    .filter((f) => !entry.has(path.relative(lib, f)))
    .filter((f) => /\bprocess\.exit\s*\(/.test(fs.readFileSync(f, 'utf8')))
    .map((f) => path.relative(lib, f));
  t.deepEqual(found, []);
});

// A module of the project is always there: importing it "if it can" hides real errors.
test('lib imports none of its own modules as optional', (t) => {
  const found = sources(lib)
    .filter((f) => /import\(\s*['"]\.{1,2}\/[^'"]+['"]\s*\)\s*\.catch\(/.test(fs.readFileSync(f, 'utf8')))
    .map((f) => path.relative(lib, f));
  t.deepEqual(found, []);
});
