import yaml from 'js-yaml';
import fs from 'node:fs';
import { isErrno, TslxcError } from '../errors.js';
import { writeFileAtomic } from './fs.js';

/** YAML files (config, metadata): the safe core schema, written atomically. Kept apart from
 * util/fs so the hot paths (exec) do not load the YAML parser. */
export function writeYamlAtomic(file: string, value: unknown, mode = 0o644): void {
  writeFileAtomic(file, yaml.dump(value, { lineWidth: 120, noRefs: true, sortKeys: false }), mode);
}

/** Parse YAML with the safe core schema; a parse error names the file. */
export function readYaml<T = unknown>(file: string): T {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: file }) as T;
  } catch (err) {
    throw new TslxcError(`Cannot read ${file}`, (err as Error).message.split('\n')[0], 'fix or remove the file');
  }
}

export function readYamlIfExists<T = unknown>(file: string): T | undefined {
  try {
    return readYaml<T>(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}
