import fs from 'node:fs';
import type { Paths } from '../state/paths.js';
import { hurryFile, keeperFile } from './kept-export.js';
import { keepExport } from './lxd.js';
import { getImage } from './store.js';

/**
 * The background process of kept-export.ts: `node kept-export-worker.js PATHS_JSON DELAY_MS FP...`
 * (started at nice 19, detached; whoever waits for it renices it). Waits DELAY_MS, or less once
 * someone waits for one of its images, then makes each image's export in turn, unless the image
 * was deleted meanwhile (its keeper file then no longer names this process). A failure (a full
 * disk) only leaves that export to be made when it is asked for, where the error is reported.
 */

const POLL_MS = 100;

const [pathsJson, delayArg, ...fingerprints] = process.argv.slice(2);
const p = JSON.parse(pathsJson ?? '{}') as Paths;

const mine = (fp: string): boolean => {
  try {
    return Number(fs.readFileSync(keeperFile(p, fp), 'utf8').trim()) === process.pid;
  } catch {
    return false;
  }
};
const awaited = (): boolean => fingerprints.some((fp) => fs.existsSync(hurryFile(p, fp)));

async function main(): Promise<void> {
  const until = Date.now() + Number(delayArg);
  while (Date.now() < until && !awaited()) await new Promise((r) => setTimeout(r, POLL_MS));
  for (const fp of fingerprints) {
    if (!mine(fp)) continue;
    const img = getImage(p, fp);
    if (img && !img.metadata.tslxc?.original) await keepExport(p, img).catch(() => {});
    if (mine(fp)) fs.rmSync(keeperFile(p, fp), { force: true });
  }
}

// Nothing is left waiting once the exports are made: node ends here, and a failure was already caught.
void main().catch(() => undefined);
