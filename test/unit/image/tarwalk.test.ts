import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { isListingEndMark, LIST_ARGS, parseListingLine, type Entry } from '../../../lib/image/archive.js';
import { WalkParser } from '../../../lib/image/walk.js';
import { makeTar } from '../../helpers/tarball.js';

/**
 * The differential test of native/tarwalk.c: GNU tar extracts what the walker listed, so for every
 * archive of the corpus (the malicious ones, archives GNU tar itself writes in each format, and
 * hand-made headers at every edge) the walker either lists exactly what `tar -tvR` lists, entry
 * by entry (type, name, link, size, block), or says "unsupported" (then the import asks tar).
 */
const walker = path.resolve('native/build/tslxc-tarwalk');
const haveWalker = fs.existsSync(walker);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tarwalk-test-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

type Walked = { ok: true; entries: Entry[] } | { ok: false; why: string };

function walk(gz: Buffer): Walked {
  const file = path.join(tmp, `w${seq++}.gz`);
  fs.writeFileSync(file, gz);
  const fd = fs.openSync(file, 'r');
  try {
    const r = spawnSync(walker, ['--gzip'], { stdio: [fd, 'pipe', 'pipe'], maxBuffer: 1 << 28 });
    const p = new WalkParser();
    const entries: Entry[] = [];
    let why: string | undefined;
    let ended = false;
    for (const ev of p.push(r.stdout)) {
      if (ev.kind === 'entry') entries.push(ev.entry);
      else if (ev.kind === 'unsupported') why = ev.why;
      else ended = true;
    }
    if (why !== undefined) {
      if (r.status !== 3) throw new Error(`walker said unsupported but exited ${r.status}`);
      return { ok: false, why };
    }
    if (r.status !== 0 || !ended || p.leftover) throw new Error(`walker exit ${r.status}: ${r.stderr}`);
    return { ok: true, entries };
  } finally {
    fs.closeSync(fd);
  }
}

/** tar's listing, as the import's old pass reads it (C locale: non-ASCII bytes as octal escapes). */
function tarList(gz: Buffer): { code: number; stderr: string; entries: Entry[] } {
  const file = path.join(tmp, `t${seq++}.tar.gz`);
  fs.writeFileSync(file, gz);
  const r = spawnSync('tar', [...LIST_ARGS, '-R', '-z', '-f', file], { encoding: 'latin1', env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 28 });
  const entries = r.stdout
    .split('\n')
    .filter((l) => l && !isListingEndMark(l))
    .map((l) => parseListingLine(l, 'x'));
  return { code: r.status ?? 128, stderr: r.stderr, entries };
}

const shape = (e: Entry) => ({
  type: e.type,
  name: e.name,
  link: e.type === 'h' || e.type === 'l' ? e.link : undefined,
  size: e.type === '-' || e.type === 'c' || e.type === 'b' ? e.size : undefined,
  block: e.block,
});

/** Agreement, or "unsupported"; returns which. */
function agree(t: import('ava').ExecutionContext, label: string, gz: Buffer): 'walked' | 'unsupported' {
  const w = walk(gz);
  if (!w.ok) return 'unsupported';
  const tr = tarList(gz);
  t.is(tr.code, 0, `${label}: the walker listed what tar refuses: ${tr.stderr}`);
  // tar's one warning about names (the checks refuse those names): any other is a disagreement.
  const warnings = tr.stderr.split('\n').filter((l) => l && !/^tar: Removing leading .* from (hard link targets|member names)$/.test(l));
  t.deepEqual(warnings, [], `${label}: tar warns where the walker did not`);
  t.deepEqual(w.entries.map(shape), tr.entries.map(shape), label);
  return 'walked';
}

// ---- hand-made headers ----

interface Raw {
  name?: string | Buffer;
  type?: string;
  size?: number;
  sizeField?: Buffer;
  data?: Buffer;
  link?: string;
  magic?: string;
  prefix?: string;
  mode?: string;
  badSum?: boolean;
  signedSum?: boolean;
  major?: number;
  minor?: number;
}

function raw(r: Raw): Buffer {
  const h = Buffer.alloc(512);
  const data = r.data ?? Buffer.alloc(0);
  const oct = (n: number, off: number, len: number) => h.write(`${n.toString(8).padStart(len - 1, '0')}\0`, off, 'latin1');
  const name = typeof r.name === 'string' ? Buffer.from(r.name, 'latin1') : (r.name ?? Buffer.from('rootfs/f'));
  name.copy(h, 0, 0, Math.min(100, name.length));
  h.write(r.mode ?? '0000644\0', 100, 'latin1');
  oct(0, 108, 8);
  oct(0, 116, 8);
  if (r.sizeField) r.sizeField.copy(h, 124);
  else oct(r.size ?? data.length, 124, 12);
  oct(1700000000, 136, 12);
  h.write(r.type ?? '0', 156, 'latin1');
  if (r.link) h.write(r.link, 157, 'latin1');
  h.write(r.magic ?? 'ustar\x0000', 257, 'latin1');
  oct(r.major ?? 0, 329, 8);
  oct(r.minor ?? 0, 337, 8);
  if (r.prefix) h.write(r.prefix, 345, 'latin1');
  if (r.signedSum) h[200] = 0xe9;
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += r.signedSum ? (b << 24) >> 24 : b;
  if (r.badSum) sum += 1;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
const end = Buffer.alloc(1024);
const pax = (kv: [string, string][]) =>
  Buffer.from(
    kv
      .map(([k, v]) => {
        const body = ` ${k}=${v}\n`;
        let n = body.length + 1;
        while (`${n}${body}`.length !== n) n++;
        return `${n}${body}`;
      })
      .join(''),
    'latin1',
  );
const gz = (b: Buffer) => zlib.gzipSync(b);
const meta = raw({ name: 'metadata.yaml', data: Buffer.from('architecture: x86_64\n') });

test('hand-made headers: the walker agrees with tar or leaves them to it', (t) => {
  if (!haveWalker) return t.pass('the walker is not built');
  const cases: [string, Buffer, 'walked' | 'unsupported' | 'either'][] = [
    ['plain', Buffer.concat([meta, raw({ name: 'rootfs/', type: '5' }), raw({ name: 'rootfs/a', data: Buffer.alloc(700, 1) }), end]), 'walked'],
    ['100-byte name, no NUL', Buffer.concat([raw({ name: `rootfs/${'n'.repeat(93)}` }), end]), 'walked'],
    ['ustar prefix', Buffer.concat([raw({ name: 'file', prefix: 'rootfs/deep/dir' }), end]), 'walked'],
    ['prefix with GNU magic (ignored by tar)', Buffer.concat([raw({ name: 'rootfs/x', prefix: 'evil', magic: 'ustar  \0' }), end]), 'walked'],
    ['prefix with a ustar magic of another version', Buffer.concat([raw({ name: 'x', prefix: 'rootfs', magic: 'ustar\0  ' }), end]), 'unsupported'],
    ['v7 header', Buffer.concat([raw({ name: 'rootfs/x', magic: '\0\0\0\0\0\0\0\0' }), end]), 'unsupported'],
    ['signed checksum', Buffer.concat([raw({ name: 'rootfs/x', signedSum: true }), end]), 'either'],
    ['bad checksum', Buffer.concat([meta, raw({ name: 'rootfs/x', badSum: true }), end]), 'unsupported'],
    [
      'base-256 size',
      Buffer.concat([raw({ name: 'rootfs/x', sizeField: Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), data: Buffer.alloc(1) }), end]),
      'unsupported',
    ],
    [
      'size with trailing garbage',
      Buffer.concat([raw({ name: 'rootfs/x', sizeField: Buffer.from('0000000001 x', 'latin1'), data: Buffer.alloc(1) }), end]),
      'unsupported',
    ],
    [
      'GNU long name',
      Buffer.concat([
        raw({ name: '././@LongLink', type: 'L', data: Buffer.from(`rootfs/${'l'.repeat(300)}\0`), magic: 'ustar  \0' }),
        raw({ name: 'short', magic: 'ustar  \0' }),
        end,
      ]),
      'walked',
    ],
    [
      'GNU long name without its NUL',
      Buffer.concat([
        raw({ name: '././@LongLink', type: 'L', data: Buffer.from(`rootfs/${'l'.repeat(300)}`), magic: 'ustar  \0' }),
        raw({ name: 'short', magic: 'ustar  \0' }),
        end,
      ]),
      'unsupported',
    ],
    [
      'GNU long name with an early NUL',
      Buffer.concat([
        raw({ name: '././@LongLink', type: 'L', data: Buffer.from('rootfs/a\0/../../etc\0'), magic: 'ustar  \0' }),
        raw({ name: 'short', magic: 'ustar  \0' }),
        end,
      ]),
      'unsupported',
    ],
    [
      'GNU long link',
      Buffer.concat([
        raw({ name: '././@LongLink', type: 'K', data: Buffer.from(`${'../'.repeat(60)}etc\0`), magic: 'ustar  \0' }),
        raw({ name: 'rootfs/l', type: '2', magic: 'ustar  \0' }),
        end,
      ]),
      'walked',
    ],
    [
      'pax path, linkpath, size',
      Buffer.concat([
        raw({
          name: 'PaxHeaders/x',
          type: 'x',
          data: pax([
            ['path', `rootfs/${'p'.repeat(200)}`],
            ['size', '5'],
            ['mtime', '1700000000.123'],
          ]),
        }),
        raw({ name: 'decoy', size: 0, data: Buffer.from('hello') }),
        raw({ name: 'PaxHeaders/y', type: 'x', data: pax([['linkpath', '../../../../etc/shadow']]) }),
        raw({ name: 'rootfs/l', type: '2', link: 'decoy' }),
        end,
      ]),
      'walked',
    ],
    [
      'pax with xattrs and acls',
      Buffer.concat([
        raw({
          name: 'PaxHeaders/x',
          type: 'x',
          data: pax([
            ['SCHILY.xattr.user.a', 'b'],
            ['SCHILY.acl.access', 'user::rw-,group::r--,other::r--'],
            ['uid', '5'],
            ['gid', '6'],
            ['uname', 'u'],
            ['gname', 'g'],
          ]),
        }),
        raw({ name: 'rootfs/a', data: Buffer.from('x') }),
        end,
      ]),
      'walked',
    ],
    [
      'pax with a NUL in the path',
      Buffer.concat([raw({ name: 'PaxHeaders/x', type: 'x', data: pax([['path', 'rootfs/a\0/../../x']]) }), raw({ name: 'rootfs/a' }), end]),
      'unsupported',
    ],
    [
      'pax unknown keyword',
      Buffer.concat([raw({ name: 'PaxHeaders/x', type: 'x', data: pax([['GNU.sparse.size', '10']]) }), raw({ name: 'rootfs/a' }), end]),
      'unsupported',
    ],
    ['pax global header', Buffer.concat([raw({ name: 'g', type: 'g', data: pax([['path', 'rootfs/evil']]) }), raw({ name: 'rootfs/a' }), end]), 'unsupported'],
    ['Solaris X header', Buffer.concat([raw({ name: 'X', type: 'X', data: pax([['path', 'rootfs/evil']]) }), raw({ name: 'rootfs/a' }), end]), 'unsupported'],
    ['sparse', Buffer.concat([raw({ name: 'rootfs/s', type: 'S', magic: 'ustar  \0' }), end]), 'unsupported'],
    ['contiguous (7)', Buffer.concat([raw({ name: 'rootfs/c', type: '7' }), end]), 'unsupported'],
    ['multi-volume M, volume V, N', Buffer.concat([raw({ name: 'rootfs/m', type: 'M', magic: 'ustar  \0' }), end]), 'unsupported'],
    ['regular file named like a dir', Buffer.concat([raw({ name: 'rootfs/d/', type: '0', data: Buffer.alloc(512) }), end]), 'unsupported'],
    ['dir with a size', Buffer.concat([raw({ name: 'rootfs/d/', type: '5', size: 512, data: Buffer.alloc(512) }), end]), 'unsupported'],
    [
      'hard link with a size',
      Buffer.concat([raw({ name: 'rootfs/a' }), raw({ name: 'rootfs/h', type: '1', link: 'rootfs/a', size: 512, data: raw({ name: 'rootfs/hidden' }) }), end]),
      'unsupported',
    ],
    [
      'devices and fifos',
      Buffer.concat([
        raw({ name: 'rootfs/dev/null', type: '3', major: 1, minor: 3 }),
        raw({ name: 'rootfs/dev/sda', type: '4', major: 8, minor: 0 }),
        raw({ name: 'rootfs/p', type: '6' }),
        raw({ name: 'rootfs/w', type: '3' }),
        end,
      ]),
      'walked',
    ],
    ['non-ASCII and newline names', Buffer.concat([raw({ name: Buffer.from('rootfs/caf\xc3\xa9 \xff\n"x\\', 'latin1') }), end]), 'walked'],
    ['lone zero block then an entry', Buffer.concat([meta, Buffer.alloc(512), raw({ name: 'rootfs/hidden' }), end]), 'unsupported'],
    ['lone zero block at the end', Buffer.concat([meta, Buffer.alloc(512)]), 'unsupported'],
    ['no end blocks', meta, 'unsupported'],
    ['garbage after the end', Buffer.concat([meta, end, Buffer.from('garbage'.repeat(100))]), 'walked'],
    ['truncated data', Buffer.concat([raw({ name: 'rootfs/a', size: 4096, data: Buffer.alloc(100) })]), 'unsupported'],
    ['extended header then the end', Buffer.concat([raw({ name: 'PaxHeaders/x', type: 'x', data: pax([['path', 'rootfs/a']]) }), end]), 'unsupported'],
    ['empty name', Buffer.concat([raw({ name: '' }), end]), 'unsupported'],
  ];
  const got: Record<string, string> = {};
  for (const [label, tar, want] of cases) {
    const r = agree(t, label, gz(tar));
    got[label] = r;
    if (want !== 'either') t.is(r, want, label);
  }
});

test('the malicious archives of the import tests: listed as tar lists them', (t) => {
  if (!haveWalker) return t.pass('the walker is not built');
  const evil = [
    [{ name: 'rootfs/../../etc/x', content: 'x' }],
    [{ name: '/etc/passwd', content: 'x' }],
    [{ name: 'rootfs/a', type: '2' as const, link: '../../../etc' }],
    [
      { name: 'rootfs/a', type: '2' as const, link: '/etc' },
      { name: 'rootfs/a/passwd', content: 'x' },
    ],
    [{ name: 'rootfs/h', type: '1' as const, link: '/etc/shadow' }],
    [{ name: 'rootfs/sda', type: '4' as const, major: 8 }],
    [{ name: 'rootfs/etc/mem', type: '3' as const, major: 1, minor: 1 }],
    [{ name: 'evil', content: 'x' }],
    [{ name: 'metadata.yaml', type: '2' as const, link: '/etc/passwd' }],
  ];
  for (const entries of evil) {
    const r = agree(t, JSON.stringify(entries), gz(makeTar(entries)));
    // A hard link's absolute or climbing target: tar lists it rewritten, so tar is asked.
    t.is(r, entries.some((e) => e.type === '1') ? 'unsupported' : 'walked');
  }
  const climbing = [
    { name: 'rootfs/a', content: 'x' },
    { name: 'rootfs/h', type: '1' as const, link: 'rootfs/x/../a' },
  ];
  t.is(agree(t, 'hard link with ..', gz(makeTar(climbing))), 'unsupported');
});

test('archives GNU tar writes, in each format, gzip in one member or several', (t) => {
  if (!haveWalker) return t.pass('the walker is not built');
  const src = path.join(tmp, 'src');
  const root = path.join(src, 'rootfs');
  fs.mkdirSync(path.join(root, 'd'.repeat(120), 'e'.repeat(120)), { recursive: true });
  fs.writeFileSync(path.join(src, 'metadata.yaml'), 'architecture: x86_64\n');
  fs.writeFileSync(path.join(root, 'd'.repeat(120), 'e'.repeat(120), 'f'.repeat(90)), 'deep\n');
  fs.writeFileSync(path.join(root, 'n'.repeat(100)), '100\n');
  fs.writeFileSync(path.join(root, 'big'), Buffer.alloc(3 << 20, 7));
  fs.writeFileSync(path.join(root, 'caf\u00e9 \u2603\nnl'), 'utf8\n');
  fs.symlinkSync('t'.repeat(150), path.join(root, 'longlink'));
  fs.symlinkSync('../etc/passwd', path.join(root, 'rel'));
  fs.linkSync(path.join(root, 'big'), path.join(root, 'h'.repeat(130)));
  spawnSync('mkfifo', [path.join(root, 'fifo')]);
  if (process.getuid?.() === 0) spawnSync('mknod', [path.join(root, 'null'), 'c', '1', '3']);
  // With --xattrs tar writes pax headers whatever the format (long names then go there too).
  for (const [format, xattrs] of [
    ['gnu', false],
    ['gnu', true],
    ['posix', true],
    ['ustar', false],
    ['oldgnu', false],
  ] as const) {
    const r = spawnSync('tar', ['-c', `--format=${format}`, ...(xattrs ? ['--xattrs', '--acls'] : []), '-C', src, '.'], { maxBuffer: 1 << 28 });
    if (format === 'ustar' || format === 'oldgnu') {
      // Names too long for the format: tar refuses them, so those archives are what it could write.
      if (r.status !== 0 && !r.stdout.length) continue;
    } else t.is(r.status, 0, r.stderr.toString());
    const whole = gz(r.stdout);
    t.is(agree(t, format, whole), 'walked', format);
    if (format === 'gnu' && !xattrs) t.true(r.stdout.includes('././@LongLink'), 'GNU long names and links are exercised');
    // The same archive in two gzip members, split mid-header.
    const cut = 1536 + 100;
    const two = Buffer.concat([gz(r.stdout.subarray(0, cut)), gz(r.stdout.subarray(cut))]);
    t.is(agree(t, `${format} in two members`, two), 'walked', format);
    // Damaged gzip: the end of the stream's checksum, or bytes that are not gzip after it.
    const bad = Buffer.from(whole);
    bad[bad.length - 6] ^= 0xff;
    t.is(agree(t, `${format} bad crc`, bad), 'unsupported');
    t.is(agree(t, `${format} trailing garbage`, Buffer.concat([whole, Buffer.from('garbage')])), 'unsupported');
    t.is(agree(t, `${format} truncated`, whole.subarray(0, whole.length >> 1)), 'unsupported');
  }
});

/** The walker with --store: SRC on stdin, a new DEST on fd 3; its events and DEST's bytes. */
function walkStore(src: Buffer): { status: number | null; events: ReturnType<WalkParser['push']>; stored: Buffer } {
  const from = path.join(tmp, `s${seq++}.gz`);
  const to = path.join(tmp, `d${seq++}`);
  fs.writeFileSync(from, src);
  const inFd = fs.openSync(from, 'r');
  const outFd = fs.openSync(to, 'wx+', 0o600);
  try {
    const r = spawnSync(walker, ['--gzip', '--store'], { stdio: [inFd, 'pipe', 'pipe', outFd], maxBuffer: 1 << 28 });
    return { status: r.status, events: new WalkParser().push(r.stdout), stored: fs.readFileSync(to) };
  } finally {
    fs.closeSync(inFd);
    fs.closeSync(outFd);
  }
}

test('--store: the copy, its sha256 and the listing from one read, also when tar is left to list it', (t) => {
  if (!haveWalker || !fs.readFileSync(`${walker}.features`, 'utf8').includes('sha256')) return t.pass('the walker is not built with sha256');
  // Larger than the copy's steps once compressed (random bytes), so that the inflate follows the copy.
  const big = gz(Buffer.concat([meta, raw({ name: 'rootfs/big', data: crypto.randomBytes(12 << 20) }), end]));
  const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
  const ok = walkStore(big);
  t.is(ok.status, 0);
  t.true(ok.stored.equals(big));
  t.deepEqual(
    ok.events.filter((e) => e.kind !== 'entry'),
    [{ kind: 'hash', sha256: sha(big) }, { kind: 'end' }],
  );
  t.deepEqual(
    ok.events.flatMap((e) => (e.kind === 'entry' ? [e.entry.name] : [])),
    ['metadata.yaml', 'rootfs/big'],
  );
  // Unsupported early: the copy and the hash are still complete before it says so.
  const odd = gz(Buffer.concat([raw({ name: 'rootfs/s', type: 'S', magic: 'ustar  \0' }), raw({ name: 'rootfs/big', data: Buffer.alloc(9 << 20, 3) }), end]));
  const u = walkStore(odd);
  t.is(u.status, 3);
  t.true(u.stored.equals(odd));
  t.deepEqual(
    u.events.map((e) => e.kind),
    ['hash', 'unsupported'],
  );
  t.is((u.events[0] as { sha256: string }).sha256, sha(odd));
  // A damaged stream: the same.
  const cut = walkStore(big.subarray(0, big.length - 1000));
  t.is(cut.status, 3);
  t.is(cut.stored.length, big.length - 1000);
});

test('--capture: the data of the files named, by entry index, within the size bound', (t) => {
  if (!haveWalker) return t.pass('the walker is not built');
  const tar = Buffer.concat([
    raw({ name: './metadata.yaml', data: Buffer.from('architecture: x86_64\n') }),
    raw({ name: 'templates/', type: '5' }),
    raw({ name: 'templates/a.tpl', data: Buffer.from('A'.repeat(1000)) }),
    raw({ name: 'templates/big.tpl', data: Buffer.alloc(5000, 66) }),
    raw({ name: 'rootfs/metadata.yaml', data: Buffer.from('no') }),
    raw({ name: 'templates/l.tpl', type: '1', link: 'templates/a.tpl' }),
    end,
  ]);
  const file = path.join(tmp, `c${seq++}.gz`);
  fs.writeFileSync(file, gz(tar));
  const fd = fs.openSync(file, 'r');
  try {
    const r = spawnSync(walker, ['--gzip', '--capture', 'metadata.yaml', '--capture', 'templates/', '--capture-max', '4096'], { stdio: [fd, 'pipe', 'pipe'] });
    t.is(r.status, 0);
    const files = new WalkParser().push(r.stdout).flatMap((e) => (e.kind === 'file' ? [[e.index, e.data.toString()]] : []));
    t.deepEqual(files, [
      [0, 'architecture: x86_64\n'],
      [2, 'A'.repeat(1000)],
    ]);
  } finally {
    fs.closeSync(fd);
  }
});

test('mutated headers (a seeded fuzz): the walker agrees with tar or leaves them to it', (t) => {
  if (!haveWalker) return t.pass('the walker is not built');
  const src = path.join(tmp, 'fuzz');
  fs.mkdirSync(path.join(src, 'rootfs', 'd'.repeat(110)), { recursive: true });
  fs.writeFileSync(path.join(src, 'metadata.yaml'), 'architecture: x86_64\n');
  fs.writeFileSync(path.join(src, 'rootfs', 'd'.repeat(110), 'f'), 'x'.repeat(700));
  fs.symlinkSync('../x', path.join(src, 'rootfs', 'l'));
  fs.linkSync(path.join(src, 'metadata.yaml'), path.join(src, 'rootfs', 'h'));
  const seeds = ['gnu', 'posix', 'ustar'].map((f) => spawnSync('tar', ['-c', `--format=${f}`, '-C', src, '.']).stdout).filter((b) => b.length);
  let state = 4242;
  const rand = (n: number) => (state = (state * 1103515245 + 12345) & 0x7fffffff) % n;
  // The header fields tar reads: name, mode/uid/gid, size, mtime, typeflag, linkname, magic, prefix.
  const fields = [
    [0, 100],
    [100, 24],
    [124, 12],
    [136, 12],
    [156, 1],
    [157, 100],
    [257, 8],
    [345, 155],
  ] as const;
  const values = [0, 0x20, 0x2f, 0x2e, 0x30, 0x37, 0x4c, 0x78, 0x80, 0xff];
  let walked = 0;
  for (let i = 0; i < 200; i++) {
    const tar = Buffer.from(seeds[rand(seeds.length)]!);
    const touched = new Set<number>();
    for (let j = 0, n = 1 + rand(3); j < n; j++) {
      const blk = rand(Math.min(tar.length / 512, 12));
      const [at, len] = fields[rand(fields.length)]!;
      tar[blk * 512 + at + rand(len)] = rand(3) === 0 ? rand(256) : values[rand(values.length)]!;
      touched.add(blk);
    }
    // Mostly with the checksum made right again, so that the header is read at all.
    if (rand(4) !== 0)
      for (const blk of touched) {
        const h = tar.subarray(blk * 512, blk * 512 + 512);
        h.fill(0x20, 148, 156);
        h.write(
          `${h
            .reduce((s, b) => s + b, 0)
            .toString(8)
            .padStart(6, '0')}\0 `,
          148,
          'latin1',
        );
      }
    if (agree(t, `mutation ${i}`, gz(tar)) === 'walked') walked++;
  }
  t.true(walked > 10, `only ${walked} mutated archives were walked`);
});
