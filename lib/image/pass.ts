import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { TslxcError } from '../errors.js';
import { findTool, requireTool } from '../util/exec.js';
import { mkdirp } from '../util/fs.js';
import { helperPath } from '../state/helper.js';
import { imagesDir, importPlanFile, type Paths } from '../state/paths.js';
import { HEAD_CAPTURE } from './headfiles.js';
import { WalkParser } from './walk.js';
import {
  CODEC_MAGIC,
  EntryChecker,
  UNIFIED_CHECKS,
  decompressor,
  isSquashfs,
  LIST_ARGS,
  isListingEndMark,
  listStored,
  listingError,
  parseListingLine,
  sha256InNode,
  type Entry,
  type ImportPass,
} from './archive.js';

/**
 * A unified tarball's one pass, run by the helper (native/importpass.c): the file stored by the
 * kernel's copy, then that stored copy hashed, and decompressed into tar -t through a 1 MiB pipe,
 * side by side. The listing streams to us and is parsed as it comes.
 *
 * Who starts it: bin/tslxc's native front, before node has even started, with the plan the last
 * import wrote (`adoptEarlyPass`: same PID, so the stage dir is ours); else node, here
 * (`startHelperPass`), with the plan it has just written; else, without the helper, archive.ts's
 * own processes (begin.ts).
 *
 * The plan (NUL-separated words, run dir's import.plan):
 *   tslxc-import-plan-1  STATE-DIR  STAGE-PREFIX
 *   hash N ARGV...             the sha256 program, reading the file on stdin (N = 0: none, node hashes)
 *   list N ARGV...             tar's listing of stdin
 *   walk N ARGV...             the tar walker (native/tarwalk.c) reading stdin, in place of `list`
 *   walk-inflate MAGIC-HEX N ARGV...  the walker inflating itself a file of that codec (gzip)
 *   walk-store MAGIC-HEX N ARGV...    for a source of that codec, the walker making the copy and
 *                              the hash too (SRC on its stdin, DEST on its fd 3), as they land
 *   codec MAGIC-HEX N ARGV...  per compression: the first bytes, and its decompressor (stdin to stdout)
 * The front uses it only when STATE-DIR is its own; its stage dir is STAGE-PREFIX, 8 hex digits,
 * "-" and its PID (as beginImport's, so the store's sweep removes what a killed import left).
 */
const PLAN_MAGIC = 'tslxc-import-plan-1';
const STAGE_PREFIX = '.tmp-import';

export const stagePrefix = (p: Paths) => path.join(imagesDir(p), STAGE_PREFIX);

function planWords(p: Paths): string[] {
  const words = [PLAN_MAGIC, p.stateDir, stagePrefix(p)];
  const openssl = findTool('openssl');
  const hash = openssl ? [openssl, 'dgst', '-sha256', '-r'] : [];
  words.push('hash', String(hash.length), ...hash);
  // 128 KiB records, reassembled from a pipe's partial reads: a tenth of tar's read calls.
  // -R: each entry's block, so that importImage can take metadata.yaml and templates from the head
  // of the archive without another tar (headfiles.ts).
  const list = [requireTool('tar', 'read an image archive'), ...LIST_ARGS, '-R', '-b', '256', '-B', '-f', '-'];
  words.push('list', String(list.length), ...list);
  const walker = tarWalker();
  if (walker) {
    const gzip = CODEC_MAGIC.find(([c]) => c === 'gzip')![1].toString('hex');
    const capture = [...HEAD_CAPTURE.names.flatMap((n) => ['--capture', n]), '--capture-max', String(HEAD_CAPTURE.maxBytes)];
    const argv = (...a: string[]) => [String(a.length + capture.length + 1), walker.path, ...a, ...capture];
    words.push('walk', ...argv());
    if (walker.features.includes('inflate')) words.push('walk-inflate', gzip, ...argv('--gzip'));
    // Its own copy only where it also hashes: else the hash would wait for the copy.
    if (walker.features.includes('inflate') && walker.features.includes('sha256')) words.push('walk-store', gzip, ...argv('--gzip', '--store'));
  }
  for (const [codec, magic] of CODEC_MAGIC) {
    const prog = decompressor(codec);
    if (prog) words.push('codec', magic.toString('hex'), '2', prog, '-dc');
  }
  return words;
}

/**
 * The walker beside the helper, when built (the helper's pass lists with tar otherwise), and what
 * it was built with (native/Makefile: "inflate" with ISA-L, "sha256" with libcrypto).
 */
function tarWalker(): { path: string; features: string[] } | undefined {
  try {
    const walker = path.join(path.dirname(helperPath()), 'tslxc-tarwalk');
    if (!fs.existsSync(walker)) return undefined;
    let features: string[] = [];
    try {
      features = fs.readFileSync(`${walker}.features`, 'utf8').trim().split(/\s+/);
    } catch {
      /* none known: it walks a stream a decompressor feeds it */
    }
    return { path: walker, features };
  } catch {
    return undefined;
  }
}

/** Writes the plan when it changed (the tools found, the state dir): the front reads it at the next import. */
export function writeImportPlan(p: Paths): string {
  const file = importPlanFile(p);
  const text = `${planWords(p).join('\0')}\0`;
  let old: string | undefined;
  try {
    old = fs.readFileSync(file, 'utf8');
  } catch {
    /* none yet */
  }
  if (old !== text) {
    mkdirp(p.runDir, 0o755);
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  }
  return file;
}

/** The pass the CLI's front started, found in the environment. */
export interface EarlyPass {
  stage: string;
  /** where the front stored the file (stage/original/stored), renamed to its kept name once the pass is done */
  stored: string;
  listing: Readable;
  results: Readable;
  discard(): void;
}

/**
 * Takes what the front left for this process (and clears it, so no child inherits it): the pass,
 * when it is of this very import (one file, the same name); else it is discarded at once.
 */
export function adoptEarlyPass(p: Paths, file: string, rootfsFile: string | undefined): EarlyPass | undefined {
  const spec = process.env.TSLXC_IMPORT_PASS;
  const passFile = process.env.TSLXC_IMPORT_FILE;
  delete process.env.TSLXC_IMPORT_PASS;
  delete process.env.TSLXC_IMPORT_FILE;
  if (!spec) return undefined;
  const m = /^(\d+) (\d+) (\/.+)$/.exec(spec);
  if (!m) return undefined;
  const [listFd, resultsFd] = [Number(m[1]), Number(m[2])];
  const stage = m[3]!;
  // Only a stage dir of ours, in this store: never remove anything else an environment names.
  const ours = path.dirname(stage) === imagesDir(p) && path.basename(stage).startsWith(STAGE_PREFIX) && stage.endsWith(`-${process.pid}`);
  const discard = () => {
    for (const fd of [listFd, resultsFd]) {
      try {
        fs.closeSync(fd);
      } catch {
        /* closed already */
      }
    }
    if (ours) fs.rmSync(stage, { recursive: true, force: true });
  };
  if (!ours || rootfsFile !== undefined || passFile !== file) {
    discard();
    return undefined;
  }
  const listing = new net.Socket({ fd: listFd, readable: true, writable: false });
  const results = new net.Socket({ fd: resultsFd, readable: true, writable: false });
  return {
    stage,
    stored: path.join(stage, 'original', 'stored'),
    listing,
    results,
    discard() {
      listing.destroy();
      results.destroy();
      fs.rmSync(stage, { recursive: true, force: true });
    },
  };
}

/** Node's own pass through the helper, storing `file` as `dest`. */
export function startHelperPass(p: Paths, file: string, dest: string, what: string): ImportPass {
  const plan = writeImportPlan(p);
  const child = spawn(helperPath(), ['import-pass', plan, path.resolve(file), dest], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  const pass = passOf(child.stdout!, child.stdio[3] as Readable, dest, dest, what);
  return {
    async result() {
      const [r, code] = await Promise.all([pass.result(), ended]);
      if (code !== 0) throw new TslxcError(`Cannot read ${what}`, stderr.trim().split('\n')[0] || `the import pass ended with ${code}`);
      return r;
    },
  };
}

/** The front's pass, adopted: its stored copy renamed to `dest` once done. */
export function earlyImportPass(early: EarlyPass, dest: string, what: string): ImportPass {
  return passOf(early.listing, early.results, early.stored, dest, what);
}

interface ProgramEnd {
  name: string;
  prog: string;
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function signalName(n: number): string | null {
  if (n < 0) return null;
  return Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(parts)));
  });
}

interface Parsed {
  entries: Entry[];
  bad?: Error;
  refused?: Error;
  /** when the listing was the walker's: whether it read the archive to its end, or why not; the hash or the copy's failure when it made the copy */
  walk?: { ended: boolean; unsupported?: string; sha256?: string; copyFailed?: string; captured: Map<number, Buffer> };
}

/**
 * The listing parsed as it streams: tar's lines, or the walker's records (walk.ts; its first byte,
 * a NUL, tells them apart). The first line that is not an entry is kept, to be thrown only if tar
 * itself succeeded; the walker's entries count only if it read the whole archive.
 */
function parseStream(stream: Readable, what: string, checker: EntryChecker): Promise<Parsed> {
  return new Promise((resolve, reject) => {
    const out: Parsed = { entries: [] };
    const take = (e: Entry) => {
      out.entries.push(e);
      try {
        if (!out.refused) checker.add(e);
      } catch (err) {
        out.refused = err as Error;
      }
    };
    let rest = '';
    const lines = (text: string) => {
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        if (!out.bad && nl > start) {
          const line = text.slice(start, nl);
          let e: Entry | undefined;
          try {
            e = parseListingLine(line, what);
          } catch (err) {
            if (!isListingEndMark(line)) out.bad = err as Error;
          }
          if (e) take(e);
        }
        start = nl + 1;
      }
      return text.slice(start);
    };
    const text = new StringDecoder('utf8');
    let walker: WalkParser | undefined;
    let first = true;
    stream.on('data', (d: Buffer) => {
      if (first && d.length) {
        first = false;
        if (d[0] === 0) {
          walker = new WalkParser();
          out.walk = { ended: false, captured: new Map() };
        }
      }
      if (!walker) {
        rest = lines(rest + text.write(d));
        return;
      }
      const walk = out.walk!;
      if (walk.ended || walk.unsupported !== undefined || walk.copyFailed !== undefined) return;
      try {
        for (const ev of walker.push(d)) {
          if (ev.kind === 'entry') take(ev.entry);
          else if (ev.kind === 'hash') walk.sha256 = ev.sha256;
          else if (ev.kind === 'file') walk.captured.set(ev.index, ev.data);
          else if (ev.kind === 'unsupported') walk.unsupported = ev.why;
          else if (ev.kind === 'copy-failed') walk.copyFailed = ev.why;
          else walk.ended = true;
          if (ev.kind !== 'entry' && ev.kind !== 'hash' && ev.kind !== 'file') break;
        }
      } catch (err) {
        out.walk!.unsupported = (err as Error).message;
      }
    });
    stream.on('error', reject);
    stream.on('end', () => {
      if (!walker) lines(`${rest}${text.end()}\n`);
      resolve(out);
    });
  });
}

function passOf(listing: Readable, results: Readable, stored: string, dest: string, what: string): ImportPass {
  // The entries checked as they come: only what needs them all is left for the end.
  const checker = new EntryChecker(what, UNIFIED_CHECKS);
  const parsed0 = parseStream(listing, what, checker);
  const ends = collect(results);
  // Awaited by result(); until then a failure must not count as unhandled.
  for (const x of [parsed0, ends]) x.catch(() => undefined);
  return {
    async result() {
      const [parsed, raw] = await Promise.all([parsed0, ends]);
      const { entries, bad, refused, walk: walked } = parsed;
      const words = raw.toString('utf8').split('\0');
      if (words[0] === 'copy') throw new TslxcError(`Cannot read ${what}`, words[1] || 'it could not be copied');
      const progs: ProgramEnd[] = [];
      for (let i = 0; i + 6 <= words.length; i += 6) {
        const [name, prog, code, signal, stdout, stderr] = words.slice(i, i + 6) as [string, string, string, string, string, string];
        progs.push({ name, prog, code: Number(code), signal: signalName(Number(signal)), stdout, stderr });
      }
      const end = (name: string) => progs.find((x) => x.name === name);
      const walk = end('walk');
      if (walked?.copyFailed !== undefined) throw new TslxcError(`Cannot read ${what}`, walked.copyFailed || 'it could not be copied');
      const list = end('list') ?? walk;
      if (!list) throw new TslxcError(`Cannot read ${what}`, 'the import pass ended early');
      if (stored !== dest) fs.renameSync(stored, dest);
      if (isSquashfs(dest))
        throw new TslxcError(`Cannot read ${what}`, 'it is a squashfs image, not a tar archive — the file is corrupt, truncated or not a tar archive');
      const hashed = async () => {
        if (walked?.sha256) return walked.sha256;
        const hash = end('hash');
        if (!hash) return sha256InNode([dest]);
        const m = /^([0-9a-f]{64})[ \n]/.exec(hash.stdout);
        if (hash.code !== 0 || !m) throw new TslxcError(`Cannot read ${what}`, hash.stderr.trim().split('\n')[0] || 'its sha256 could not be computed');
        return m[1]!;
      };
      // Exit 3: it left the archive to tar, having finished the copy first; anything else but 0 is
      // a walker that failed, whose copy (with --store) may be partial: nothing to list again.
      if (walk && walk.code !== 0 && walk.code !== 3) {
        const why = walk.signal ?? `exit ${walk.code}`;
        const said = walk.stderr.trim().split('\n')[0];
        throw new TslxcError(
          `Cannot read ${what}`,
          `the import's tar walker failed (${said ? `${why}: ${said}` : why}) — rebuild tslxc's native part (npm ci)`,
        );
      }
      if (walk && !(walk.code === 0 && walked?.ended && !walked.unsupported)) {
        // The walker left this archive to tar (a header it does not read as tar would, a damaged
        // stream) or failed: listed again by tar, from the start, which also says what is wrong.
        if (process.env.TSLXC_PLAN_DEBUG === '1')
          process.stderr.write(`tslxc: import listing: tar (${walked?.unsupported ?? (walk.stderr.trim() || `walker exit ${walk.code}`)})\n`);
        const [again, sha256] = await Promise.all([listStored(dest, what), hashed()]);
        const checker = new EntryChecker(what, UNIFIED_CHECKS);
        for (const e of again!) checker.add(e);
        return { entries: again!, sha256, names: checker.finish() };
      }
      if (list.code !== 0) throw listingError(list.stderr, list.code < 0 ? null : list.code, what);
      // A decompressor that failed (a corrupt or truncated stream) fails the import, unless tar had
      // read the whole archive and closed the pipe on the bytes after its end.
      const dec = end('decompress');
      if (dec && dec.code !== 0 && dec.signal !== 'SIGPIPE') {
        const names = [dec.prog, path.basename(dec.prog)].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
        throw listingError(dec.stderr.replace(new RegExp(`^(?:${names}): `, 'gm'), ''), dec.code < 0 ? null : dec.code, what);
      }
      if (bad) throw bad;
      const sha256 = await hashed();
      if (refused) throw refused;
      return { entries, sha256, names: checker.finish(), captured: walked?.captured };
    },
  };
}
