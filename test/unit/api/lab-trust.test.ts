import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { allowsInstance, restrictionOf } from '../../../lib/api/access.js';
import { Sessions } from '../../../lib/api/session.js';
import { createToken, labTrust, loadTrust, redeemToken, revokeLabMembers } from '../../../lib/api/trust.js';
import type { Identity } from '../../../lib/api/types.js';
import { LabMemberCache, listLabRecords, readLabRecord, removeLabRecord, writeLabRecord } from '../../../lib/lab/record.js';
import { parseLab } from '../../../lib/lab/schema.js';
import type { Paths } from '../../../lib/state/paths.js';
import { makeSelfSigned } from '../../../lib/util/x509.js';

/** Lab members in the trust store: tokens, their certificates' restriction, revocation. */

const roots: string[] = [];
test.after.always(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
});

function tempPaths(): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-labtrust-'));
  roots.push(root);
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'x' };
}

/** A client certificate (PEM) made in DIR, as a client presents it. */
function clientCert(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  makeSelfSigned(dir, 'client', { subject: '/CN=t', extensions: [], what: 'a test client certificate' });
  return fs.readFileSync(path.join(dir, 'client.crt'), 'utf8');
}

const spec = (members: string) =>
  parseLab(
    `name: course\ndefaults: {count: 2, naming: "{member}-{n}"}\nmembers:\n${members
      .split(' ')
      .map((m) => `  - name: ${m}`)
      .join('\n')}\n`,
    '/x/lab.yaml',
  );
const tls = (instances?: string[]): Identity => ({ protocol: 'tls', name: 'x', trusted: true, ...(instances ? { instances } : {}) });

test('allowsInstance takes names and globs; no list means everything', (t) => {
  t.true(allowsInstance(tls(), 'anything'));
  t.true(allowsInstance(tls(['a-*', 'b1']), 'a-9'));
  t.true(allowsInstance(tls(['a-*', 'b1']), 'b1'));
  t.false(allowsInstance(tls(['a-*', 'b1']), 'b12'));
  t.false(allowsInstance(tls([]), 'a'));
  t.false(allowsInstance(tls(['a.b']), 'axb'), 'a dot is no wildcard');
});

test("a member's token: unique names, the member's containers from the record, revoked with the member", async (t) => {
  const p = tempPaths();
  const cache = new LabMemberCache(p);
  const mk = () => createToken(p, { name: 'alice@course', lab: { lab: 'course', member: 'alice' }, expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const first = await mk();
  const second = await mk();
  t.is(first.name, 'alice@course');
  t.is(second.name, 'alice@course-2', 'a second laptop gets a name of its own');
  const cert = await redeemToken(p, first.token, clientCert(path.join(p.stateDir, '..', 'c1')));
  t.like(cert, { name: 'alice@course', restricted: true, lab: { lab: 'course', member: 'alice' } });
  // Before the lab is up, the member sees nothing; after, their containers.
  t.deepEqual(restrictionOf(cert!, cache), []);
  writeLabRecord(p, spec('alice bob'));
  t.deepEqual(restrictionOf(cert!, cache), ['alice-1', 'alice-2']);
  t.deepEqual(
    listLabRecords(p).map((r) => r.name),
    ['course'],
  );
  t.is(readLabRecord(p, '../etc'), undefined);
  t.deepEqual(restrictionOf({ restricted: false }, cache), undefined);
  t.deepEqual(restrictionOf({ restricted: false, lab: { lab: 'course', member: 'alice' } }, cache), undefined, 'a lifted restriction is obeyed');
  t.deepEqual(restrictionOf({ restricted: true, instances: 'x*' }, cache), ['x*']);
  t.deepEqual(labTrust(p, 'course').get('alice'), { certificates: 1, sessions: 0, tokens: 1 });
  // A token opened as a dashboard session counts for its member too (lab status: trusted).
  const { token } = await mk();
  t.truthy(await new Sessions(p).redeem(token));
  t.deepEqual(labTrust(p, 'course').get('alice'), { certificates: 1, sessions: 1, tokens: 1 });

  t.deepEqual(await revokeLabMembers(p, 'course', ['alice', 'bob']), [], 'nothing to revoke');
  t.deepEqual((await revokeLabMembers(p, 'course', ['bob'])).sort(), ['alice@course', 'alice@course-2', 'alice@course-3']);
  const store = loadTrust(p);
  t.deepEqual([store.certificates.length, store.tokens.length, store.sessions.length], [0, 0, 0]);
  removeLabRecord(p, 'course');
  t.deepEqual(restrictionOf(cert!, cache), [], 'once the lab is down, nothing');
});

test('a metrics token makes a metrics certificate', async (t) => {
  const p = tempPaths();
  const { token } = await createToken(p, { name: 'prom', type: 'metrics', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const cert = await redeemToken(p, token, clientCert(path.join(p.stateDir, '..', 'c2')));
  t.like(cert, { name: 'prom', type: 'metrics', restricted: false });
});
