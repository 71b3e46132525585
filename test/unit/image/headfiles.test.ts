import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { checkEntries, isListingEndMark, LIST_ARGS, parseListingLine, type Entry } from '../../../lib/image/archive.js';
import { copyHeadFiles } from '../../../lib/image/headfiles.js';
import { makeTar, makeTarGz, type TarEntry } from '../../helpers/tarball.js';

const unified = { roots: ['metadata.yaml', 'rootfs', 'templates'], rootfsPrefix: 'rootfs' };

/** The import pass's listing (tar -tR, as pass.ts's plan has it) of `file`, parsed as the pass parses it. */
function listed(file: string): { entries: Entry[]; names: string[] } {
  const out = spawnSync('sh', ['-c', `gzip -dc < "$0" | tar ${[...LIST_ARGS, '-R', '-f', '-'].join(' ')}`, file], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  const entries = out.stdout
    .split('\n')
    .filter((l) => l && !isListingEndMark(l))
    .map((l) => parseListingLine(l, 'x'));
  return { entries, names: checkEntries(entries, 'x', unified) };
}

const roots: string[] = [];
test.after.always(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

function setup(entries: TarEntry[], gzip = true): { file: string; dir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-headfiles-'));
  roots.push(root);
  const file = path.join(root, 'image.tar.gz');
  fs.writeFileSync(file, gzip ? makeTarGz(entries) : makeTar(entries));
  const dir = path.join(root, 'x');
  fs.mkdirSync(dir);
  return { file, dir };
}

const wantedOf = (entries: Entry[], names: string[]) =>
  names.flatMap((n, i) => (n === 'metadata.yaml' || (n.startsWith('templates/') && ['-', 'h'].includes(entries[i]!.type)) ? [i] : []));

const meta = 'architecture: x86_64\ncreation_date: 1700000000\n';

test('a listing line with its block, and the end mark', (t) => {
  const e = parseListingLine('block 4: -rw-r--r-- 0/0             227 2026-12-07 10:57:29 "metadata.yaml"', 'x');
  t.is(e.block, 4);
  t.is(e.name, 'metadata.yaml');
  t.is(e.size, '227');
  t.true(isListingEndMark('block 339200: ** Block of NULs **'));
  t.false(isListingEndMark('block 3: -rw-r--r-- 0/0 0 2026-12-07 10:57:29 "** Block of NULs **"'));
});

test('metadata.yaml and templates are taken from the head of a gzip tarball', async (t) => {
  const { file, dir } = setup([
    { name: 'metadata.yaml', content: meta },
    { name: 'templates/', type: '5' },
    { name: 'templates/a.tpl', content: 'A'.repeat(1000) },
    { name: 'templates/empty.tpl', content: '' },
    { name: 'rootfs/', type: '5' },
    { name: 'rootfs/big', content: Buffer.alloc(2 << 20, 7) },
  ]);
  const { entries, names } = listed(file);
  t.true(await copyHeadFiles(file, dir, entries, names, wantedOf(entries, names)));
  t.is(fs.readFileSync(path.join(dir, 'metadata.yaml'), 'utf8'), meta);
  t.is(fs.readFileSync(path.join(dir, 'templates/a.tpl'), 'utf8'), 'A'.repeat(1000));
  t.is(fs.readFileSync(path.join(dir, 'templates/empty.tpl'), 'utf8'), '');
});

test('a hard-linked template, a name listed twice or another codec are left to tar', async (t) => {
  const cases: TarEntry[][] = [
    [
      { name: 'metadata.yaml', content: meta },
      { name: 'templates/a.tpl', content: 'a' },
      { name: 'templates/b.tpl', type: '1', link: 'templates/a.tpl' },
      { name: 'rootfs/', type: '5' },
    ],
    [
      { name: 'metadata.yaml', content: meta },
      { name: 'metadata.yaml', content: 'architecture: other\n' },
      { name: 'rootfs/', type: '5' },
    ],
  ];
  for (const c of cases) {
    const { file, dir } = setup(c);
    const { entries, names } = listed(file);
    t.false(await copyHeadFiles(file, dir, entries, names, wantedOf(entries, names)));
    t.deepEqual(fs.readdirSync(dir), [], 'nothing written');
  }
  const { file, dir } = setup([{ name: 'metadata.yaml', content: meta }], true);
  const plain = `${file}.tar`;
  fs.writeFileSync(plain, zlib.gunzipSync(fs.readFileSync(file)));
  const { entries, names } = listed(file);
  t.false(await copyHeadFiles(plain, dir, entries, names, wantedOf(entries, names)));
});

test('a block that is not the plain file header the listing claims is not trusted', async (t) => {
  const { file, dir } = setup([
    { name: 'metadata.yaml', content: meta },
    { name: 'rootfs/', type: '5' },
  ]);
  const { entries, names } = listed(file);
  const moved = entries.map((e) => (e.name === 'metadata.yaml' ? { ...e, block: 2 } : e));
  t.false(await copyHeadFiles(file, dir, moved, names, wantedOf(moved, names)));
  const resized = entries.map((e) => (e.name === 'metadata.yaml' ? { ...e, size: '5' } : e));
  t.false(await copyHeadFiles(file, dir, resized, names, wantedOf(resized, names)));
});
