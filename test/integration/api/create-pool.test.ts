import path from 'node:path';
import test from 'ava';
import { requireRoot } from '../../helpers/env.js';
import { ApiServer, apiSuite } from '../../helpers/api.js';
import { readRecord } from '../../../lib/storage/record.js';
import { containerDir } from '../../../lib/state/paths.js';
import { listSpares, preparing } from '../../../lib/storage/spares.js';

/**
 * `lxc launch IMAGE NAME -s POOL` through tslxc serve: the root is made on POOL (as `tslxc launch
 * -s POOL`), not on the default pool under a root device that names POOL; on a dir pool with spare
 * roots, the next launch takes the spare the first one left.
 */

if (requireRoot(test)) {
  const { env } = apiSuite(test, 'apipool', { images: ['busybox'], serve: false });

  test.serial('lxc launch -s POOL makes the root on POOL, from its spare', async (t) => {
    env.ok(t, ['storage', 'create', 'other', 'dir']);
    const server = await ApiServer.start(env);
    const conf = server.lxcConf();
    try {
      const first = await server.lxc(['init', 'busybox', 'p1', '-s', 'other'], { conf });
      t.is(first.code, 0, first.stderr);
      t.is(readRecord(containerDir(env.paths, 'p1')).pool, 'other');
      // The spare the first create started (after its delay): the second create takes it.
      for (let i = 0; i < 600 && preparing(env.paths, 'other').length; i++) await new Promise((r) => setTimeout(r, 50));
      t.deepEqual(listSpares(env.paths, 'other').length, 1);
      const second = await server.lxc(['init', 'busybox', 'p2', '-s', 'other'], { conf });
      t.is(second.code, 0, second.stderr);
      t.is(readRecord(path.join(containerDir(env.paths, 'p2'))).pool, 'other');
      const shown = await server.lxc(['config', 'device', 'get', 'p2', 'root', 'pool'], { conf });
      t.is(shown.stdout.trim(), 'other');
    } finally {
      await server.stop();
    }
    env.ok(t, ['delete', '-f', 'p1', 'p2']);
  });
}
