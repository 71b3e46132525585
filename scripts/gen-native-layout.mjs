// native/Makefile runs this at every build: lib/state/layout.json (the names, paths and pid-file
// rules lib/ imports) -> native/build/gen-layout.h, one #define per value, so the helper's C
// follows the same data as the TypeScript and the two cannot drift. The header is a build
// product (native/build/ is git-ignored): make regenerates it whenever the JSON changes, so there
// is no committed copy to go stale.
//   node scripts/gen-native-layout.mjs lib/state/layout.json native/build/gen-layout.h
import fs from 'node:fs';
import path from 'node:path';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/gen-native-layout.mjs LAYOUT.json OUT.h');
  process.exit(2);
}

const upperSnake = (key) => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

function cValue(where, value) {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  // Printable ASCII only: JSON.stringify's escapes of those (\" \\ and our \n) are C's as well.
  if (typeof value === 'string' && /^[\x20-\x7e\n]*$/.test(value)) return JSON.stringify(value);
  throw new Error(`${input}: ${where}: only integers and printable ASCII strings can go to C`);
}

const lines = [];
function walk(prefix, node) {
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('$')) continue;
    const name = `${prefix}_${upperSnake(key)}`;
    if (value && typeof value === 'object' && !Array.isArray(value)) walk(name, value);
    else lines.push(`#define ${name} ${cValue(name, value)}`);
  }
}
walk('LAYOUT', JSON.parse(fs.readFileSync(input, 'utf8')));

const text = `/* Generated from ${path.basename(input)} by scripts/gen-native-layout.mjs at build: do not edit. */
#ifndef TSLXC_GEN_LAYOUT_H
#define TSLXC_GEN_LAYOUT_H

${lines.join('\n')}

#endif
`;
// Rewritten only when it changes, so make does not rebuild every object for nothing.
if (!fs.existsSync(output) || fs.readFileSync(output, 'utf8') !== text) {
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(`${output}.tmp`, text);
  fs.renameSync(`${output}.tmp`, output);
}
