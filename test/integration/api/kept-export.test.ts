import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { keeper, keeperFile, keepExportLater } from '../../../lib/image/kept-export.js';
import { getImage, keptExport } from '../../../lib/image/store.js';
import { exportKeepersDir } from '../../../lib/state/paths.js';
import { processesOf } from '../../helpers/leftovers.js';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { ApiServer } from '../../helpers/api.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * A built image's kept export (the fingerprint the API shows) made ahead of time, in the
 * background (lib/image/kept-export.ts): after the build, and at the server's start for images
 * without one; a GET that finds it being made waits for that one, and a delete stops it.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apikeep');
  // Test installations make exports only when asked (-1): this one as a user's does, sooner.
  env.env.TSLXC_KEEP_EXPORT_DELAY_MS = '2000';
  let fp: string;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const until = async (cond: () => boolean, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!cond() && Date.now() < deadline) await sleep(100);
    return cond();
  };
  const image = () => getImage(env.paths, fp)!;
  const tempDirs = () => [
    ...fs.readdirSync(path.join(env.paths.stateDir, 'images')).filter((n) => n.startsWith('.')),
    ...(fs.existsSync(exportKeepersDir(env.paths)) ? fs.readdirSync(exportKeepersDir(env.paths)) : []),
  ];
  /** A keeper of the image as a build starts one, waiting `delayMs` before it begins. */
  const keepLater = (delayMs: number) => {
    const before = process.env.TSLXC_KEEP_EXPORT_DELAY_MS;
    process.env.TSLXC_KEEP_EXPORT_DELAY_MS = String(delayMs);
    try {
      keepExportLater(env.paths, [fp]);
    } finally {
      if (before === undefined) delete process.env.TSLXC_KEEP_EXPORT_DELAY_MS;
      else process.env.TSLXC_KEEP_EXPORT_DELAY_MS = before;
    }
    const pid = keeper(env.paths, fp);
    if (pid === undefined) throw new Error('no keeper started');
    return pid;
  };
  const dropExport = () => fs.rmSync(keptExport(image())!.file);

  leftoverHooks(test, env);

  test.serial('after a build, the export is made in the background, with no request', async (t) => {
    const built = env.cli(['image', 'build', 'busybox'], {});
    t.is(built.code, 0, built.stderr);
    fp = (JSON.parse(env.ok(t, ['image', 'list', '--format', 'json'])) as Array<{ fingerprint: string }>)[0]!.fingerprint;
    // The build's keeper waits before it starts (not beside a launch's boot).
    t.truthy(keeper(env.paths, fp), 'a keeper runs');
    t.true(await until(() => keptExport(image()) !== undefined && keeper(env.paths, fp) === undefined), 'the export was made');
    t.false(fs.existsSync(keeperFile(env.paths, fp)));
    t.deepEqual(tempDirs(), []);
  });

  test.serial('a GET that finds it being made waits for that one, which stops waiting', async (t) => {
    dropExport();
    const server = await ApiServer.start(env, [], { env: { TSLXC_KEEP_EXPORT_DELAY_MS: '600000' } });
    try {
      // The server's start found the image without an export: its keeper waits 10 minutes.
      t.true(await until(() => keeper(env.paths, fp) !== undefined, 10_000), 'the server started a keeper');
      const pid = keeper(env.paths, fp)!;
      const started = Date.now();
      const shown = await server.request('GET', `/1.0/images/${fp}`);
      t.is(shown.status, 200, shown.body);
      t.true(Date.now() - started < 60_000, 'the keeper was hurried');
      const kept = keptExport(image());
      t.is(shown.json!.metadata.fingerprint, kept?.sha256);
      t.true(await until(() => !processesOf(env).includes(pid), 5000), 'that keeper made it and ended');
      t.deepEqual(tempDirs(), []);
    } finally {
      await server.stop();
    }
  });

  test.serial('at the server start, an image without an export gets one in the background', async (t) => {
    dropExport();
    const server = await ApiServer.start(env, [], { env: { TSLXC_KEEP_EXPORT_DELAY_MS: '0' } });
    try {
      t.true(await until(() => keptExport(image()) !== undefined && keeper(env.paths, fp) === undefined), 'made without a request');
      t.deepEqual(tempDirs(), []);
    } finally {
      await server.stop();
    }
  });

  test.serial('deleting the image stops its keeper and leaves nothing', async (t) => {
    dropExport();
    const pid = keepLater(600_000);
    env.ok(t, ['image', 'delete', fp]);
    t.is(keeper(env.paths, fp), undefined);
    t.false(processesOf(env).includes(pid), 'the keeper was stopped');
    t.deepEqual(tempDirs(), []);
  });
}
