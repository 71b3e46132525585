import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import {
  csrfMatches,
  legacySessionsFile,
  parseCookies,
  sameOrigin,
  SESSION_COOKIE,
  sessionCookie,
  sessionIdentity,
  Sessions,
} from '../../../lib/api/session.js';
import { createToken, loadTrust, removeTrusted, revokeLabMembers, trustFile, updateTrust } from '../../../lib/api/trust.js';
import { LabMemberCache } from '../../../lib/lab/record.js';
import type { Paths } from '../../../lib/state/paths.js';

const roots: string[] = [];
test.after.always(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function tempPaths(): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-session-'));
  roots.push(root);
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'x' };
}

const cookieOf = (id: string) => `other=1; ${SESSION_COOKIE}=${id}`;

test('a token opens one session, carries its restriction, and is spent', async (t) => {
  const p = tempPaths();
  const { token } = await createToken(p, { name: 'alice', instances: 'a-*', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const sessions = new Sessions(p);
  const made = await sessions.redeem(token);
  t.truthy(made);
  t.regex(made!.id, /^[0-9a-f]{64}$/);
  t.deepEqual(loadTrust(p).tokens, []);
  t.is(await sessions.redeem(token), undefined);
  const s = sessions.lookup(cookieOf(made!.id));
  t.is(s?.name, 'alice');
  const id = sessionIdentity(s!, new LabMemberCache(p));
  t.like(id, { protocol: 'tls', name: 'alice', trusted: true });
  t.deepEqual(id.instances, ['a-*']);
  t.truthy(id.session);
  // The session is in the trust store under the token's name, by its id's hash only.
  t.like(loadTrust(p).sessions, [{ name: 'alice', restricted: true, instances: 'a-*' }]);
  const text = fs.readFileSync(trustFile(p), 'utf8');
  t.false(text.includes(made!.id));
  t.false(text.includes(made!.session.csrf));
  t.is(fs.statSync(trustFile(p)).mode & 0o777, 0o600);
});

test('an unrestricted token makes an unrestricted session; a bare secret works too', async (t) => {
  const p = tempPaths();
  const { token } = await createToken(p, { name: 'admin', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const secret = (JSON.parse(Buffer.from(token, 'base64').toString()) as { secret: string }).secret;
  const made = await new Sessions(p).redeem(secret);
  t.is(made?.session.instances, undefined);
  t.false('instances' in sessionIdentity(made!.session, new LabMemberCache(p)));
});

test('sessions survive a restart of the server; ended and unknown ones do not open', async (t) => {
  const p = tempPaths();
  const a = await createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const b = await createToken(p, { name: 'b', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const first = new Sessions(p);
  const sa = (await first.redeem(a.token))!;
  const sb = (await first.redeem(b.token))!;
  await first.end(first.lookup(cookieOf(sb.id))!);
  const second = new Sessions(p);
  t.is(second.lookup(cookieOf(sa.id))?.name, 'a');
  t.is(second.lookup(cookieOf(sb.id)), undefined);
  t.is(second.lookup(cookieOf('0'.repeat(64))), undefined);
  t.is(second.lookup(cookieOf('not-hex')), undefined);
  t.is(second.lookup(undefined), undefined);
});

test('an expired session is gone', async (t) => {
  const p = tempPaths();
  const a = await createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const sessions = new Sessions(p);
  const made = (await sessions.redeem(a.token))!;
  await updateTrust(p, (store) => {
    store.sessions[0]!.expires_at = new Date(Date.now() - 1000).toISOString();
  });
  t.is(sessions.lookup(cookieOf(made.id)), undefined);
});

test('the cookie: HttpOnly, Secure, SameSite=Strict, with an expiry', (t) => {
  const c = sessionCookie('ab', new Date(Date.now() + 3600_000).toISOString());
  t.regex(c, /^tslxc_session=ab; Path=\/; Max-Age=(3599|3600); HttpOnly; Secure; SameSite=Strict$/);
  t.deepEqual(
    [...parseCookies(' a=1;b = 2 ; junk; c=').entries()],
    [
      ['a', '1'],
      ['b', '2'],
      ['c', ''],
    ],
  );
});

test('changes need the same origin and the CSRF value', async (t) => {
  t.true(sameOrigin({ origin: 'https://h:8443', host: 'h:8443' }));
  t.false(sameOrigin({ origin: 'https://evil:8443', host: 'h:8443' }));
  t.false(sameOrigin({ origin: 'http://h:8443', host: 'h:8443' }));
  t.false(sameOrigin({ host: 'h:8443' }));
  t.false(sameOrigin({ origin: 'null', host: 'h:8443' }));
  const p = tempPaths();
  const a = await createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const { session } = (await new Sessions(p).redeem(a.token))!;
  t.true(csrfMatches(session, { 'x-tslxc-csrf': session.csrf }));
  t.false(csrfMatches(session, { 'x-tslxc-csrf': `${session.csrf.slice(1)}x` }));
  t.false(csrfMatches(session, {}));
});

test('config trust remove NAME ends the session; its name is taken meanwhile', async (t) => {
  const p = tempPaths();
  const a = await createToken(p, { name: 'alice', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const sessions = new Sessions(p);
  const made = (await sessions.redeem(a.token))!;
  const ref = sessionIdentity(made.session, new LabMemberCache(p)).session!;
  t.true(sessions.isLive(ref));
  await t.throwsAsync(createToken(p, { name: 'alice', expiresMs: 60_000, fingerprint: 'ff', addresses: [] }), { message: /already in the trust store/ });
  t.deepEqual(await removeTrusted(p, 'alice'), { kind: 'session', name: 'alice' });
  t.is(sessions.lookup(cookieOf(made.id)), undefined);
  t.false(sessions.isLive(ref));
  t.is(new Sessions(p).lookup(cookieOf(made.id)), undefined);
});

test("a lab member's revocation ends their sessions, not the others'", async (t) => {
  const p = tempPaths();
  const alice = await createToken(p, { name: 'alice@l', lab: { lab: 'l', member: 'alice' }, expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const bob = await createToken(p, { name: 'bob@l', lab: { lab: 'l', member: 'bob' }, expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const sessions = new Sessions(p);
  const sa = (await sessions.redeem(alice.token))!;
  const sb = (await sessions.redeem(bob.token))!;
  t.deepEqual(await revokeLabMembers(p, 'l', ['bob']), ['alice@l']);
  t.is(sessions.lookup(cookieOf(sa.id)), undefined);
  t.is(sessions.lookup(cookieOf(sb.id))?.name, 'bob@l');
});

test('a logout removes the session from the trust store', async (t) => {
  const p = tempPaths();
  const a = await createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  const sessions = new Sessions(p);
  const made = (await sessions.redeem(a.token))!;
  await sessions.end(made.session);
  t.deepEqual(loadTrust(p).sessions, []);
  t.is(sessions.lookup(cookieOf(made.id)), undefined);
});

test('sessions of the former sessions.json move into the trust store', async (t) => {
  const p = tempPaths();
  fs.mkdirSync(p.stateDir, { recursive: true });
  const id = 'ab'.repeat(32);
  const hash = createHash('sha256').update(id).digest('hex');
  const later = new Date(Date.now() + 3600_000).toISOString();
  fs.writeFileSync(
    legacySessionsFile(p),
    JSON.stringify({
      sessions: [
        { id_sha256: hash, name: 'old', restricted: false, csrf: 'x', created_at: new Date().toISOString(), expires_at: later },
        { id_sha256: 'cd'.repeat(32), name: 'expired', restricted: false, csrf: 'x', created_at: '2020-01-01T00:00:00Z', expires_at: '2020-01-02T00:00:00Z' },
      ],
    }),
  );
  const sessions = new Sessions(p);
  await sessions.migrated;
  t.is(sessions.lookup(cookieOf(id))?.name, 'old');
  t.deepEqual(
    loadTrust(p).sessions.map((x) => x.name),
    ['old'],
  );
  t.false(fs.existsSync(legacySessionsFile(p)));
});
