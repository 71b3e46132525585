import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { BUILD_CACHE_EXPIRY_MS, buildRecipe, pruneBuilds, recipeKey } from '../../../lib/image/build.js';
import { findRecipe, loadRecipe } from '../../../lib/image/recipe.js';
import type { Paths } from '../../../lib/state/paths.js';

test('cached builds unused for longer than the expiry are removed; the new one, recent ones and temp dirs stay', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-builds-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const now = Date.now();
  const make = (name: string, ageMs: number) => {
    const d = path.join(dir, name);
    fs.mkdirSync(path.join(d, 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(d, 'rootfs', 'f'), 'x');
    const when = new Date(now - ageMs);
    fs.utimesSync(d, when, when);
  };
  make('debian-bookworm-aaaaaaaaaaaa', BUILD_CACHE_EXPIRY_MS + 60_000);
  make('debian-bookworm-bbbbbbbbbbbb', BUILD_CACHE_EXPIRY_MS - 60_000);
  make('busybox-host-cccccccccccc', 30 * BUILD_CACHE_EXPIRY_MS);
  make('debian-bookworm-new000000000', 2 * BUILD_CACHE_EXPIRY_MS); // the build just made: kept whatever its times say
  make('.tmp-dddddddddddd-123', 2 * BUILD_CACHE_EXPIRY_MS);
  const removed = pruneBuilds(dir, path.join(dir, 'debian-bookworm-new000000000'), now);
  t.deepEqual(removed.sort(), ['busybox-host-cccccccccccc', 'debian-bookworm-aaaaaaaaaaaa']);
  t.deepEqual(fs.readdirSync(dir).sort(), ['.tmp-dddddddddddd-123', 'debian-bookworm-bbbbbbbbbbbb', 'debian-bookworm-new000000000']);
});

test('a build taken from the cache is marked used, so it does not expire while in use', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-builds-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const paths: Paths = { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'unused' };
  const recipe = loadRecipe(findRecipe('busybox')!);
  const key = recipeKey(recipe);
  const dir = path.join(paths.cacheDir, 'builds', `${recipe.name}-${recipe.release}-${key.slice(0, 12)}`);
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'metadata.yaml'), `tslxc:\n  recipe_key: ${key}\n`);
  const old = new Date(Date.now() - 2 * BUILD_CACHE_EXPIRY_MS);
  fs.utimesSync(dir, old, old);
  const built = await buildRecipe(paths, recipe);
  t.is(built.dir, dir, 'the cached build is used, not rebuilt');
  t.true(Date.now() - fs.statSync(dir).mtimeMs < 60_000);
  t.deepEqual(pruneBuilds(path.join(paths.cacheDir, 'builds'), '', Date.now()), []);
});
