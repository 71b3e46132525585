import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { csrfMatches, parseCookies, sameOrigin, SESSION_COOKIE, sessionCookie, sessionIdentity, Sessions, sessionsFile } from '../../../lib/api/session.js';
import { createToken, loadTrust } from '../../../lib/api/trust.js';
import { LabMemberCache } from '../../../lib/lab/record.js';
import type { Paths } from '../../../lib/state/paths.js';

function tempPaths(): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-session-'));
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
  // The file keeps no session id, only its hash.
  const text = fs.readFileSync(sessionsFile(p), 'utf8');
  t.false(text.includes(made!.id));
  t.is(fs.statSync(sessionsFile(p)).mode & 0o777, 0o600);
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
  first.end(first.lookup(cookieOf(sb.id))!);
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
  made.session.expires_at = new Date(Date.now() - 1000).toISOString();
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
