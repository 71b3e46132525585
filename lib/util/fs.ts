import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { isErrno, TslxcError } from '../errors.js';

/** Write a file atomically: temp file in the same dir, fsync, rename, fsync the dir. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

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

export function readTextIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

export function mkdirp(dir: string, mode = 0o755): void {
  fs.mkdirSync(dir, { recursive: true, mode });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
