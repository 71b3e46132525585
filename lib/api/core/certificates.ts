import { setTimeout as delay } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { TslxcError } from '../../errors.js';
import { sleep } from '../../util/fs.js';
import type { ServerCore } from './core.js';
import { checkIfMatch, etagOf } from '../etag.js';
import {
  addCertificate,
  createToken,
  isCurrent,
  loadTrust,
  parseCertificate,
  redeemToken,
  removeTrusted,
  updateCertificate,
  type TrustedCertificate,
} from '../trust.js';
import { ApiError, sync, type ApiRequest, type Route } from '../types.js';

/**
 * /1.0/certificates: the trust store over the API. An untrusted client may only POST here with a
 * token from `tslxc config trust add` (as `password`, or `trust_token` in later clients); its
 * TLS client certificate is then trusted. Failures from one address are slowed, then refused.
 */

/**
 * A restricted certificate's instance glob has no field in LXD's api.Certificate (LXD restricts by
 * project): it is this extra key, shown and taken by PUT/PATCH and by a token request.
 */
export const INSTANCES_KEY = 'tslxc.instances';

/** LXD's api.CertificatePut: what PUT replaces, and what the ETag hashes. */
const writable = (c: TrustedCertificate) => ({
  name: c.name,
  type: c.type,
  restricted: c.restricted,
  projects: [] as string[],
  certificate: c.certificate,
  ...(c.instances !== undefined ? { [INSTANCES_KEY]: c.instances } : {}),
});

const shape = (c: TrustedCertificate) => ({ ...writable(c), fingerprint: c.fingerprint });

/** How long a token made over the API works (as `tslxc config trust add`'s default). */
const TOKEN_LIFETIME_MS = 24 * 3600_000;

function peerCertificate(req: ApiRequest): Buffer | undefined {
  const peer = (req.raw.socket as TLSSocket).getPeerCertificate?.(false);
  return peer?.raw;
}

function visible(req: ApiRequest): TrustedCertificate[] {
  const all = loadTrust(req.ctx.paths).certificates.filter((c) => isCurrent(c));
  // A restricted client sees only itself.
  return req.identity.instances === undefined ? all : all.filter((c) => c.fingerprint === req.identity.fingerprint);
}

function find(req: ApiRequest, fp: string): TrustedCertificate {
  const matches = fp.length ? visible(req).filter((c) => c.fingerprint.startsWith(fp.toLowerCase())) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new ApiError(400, 'More than one certificate matches');
  throw new ApiError(404, 'Certificate not found');
}

/** The instance glob a body asks for: `restricted` with `tslxc.instances`; LXD's projects only as "default". */
/**
 * `current`: the certificate being changed. Its glob stays when a body says `restricted` without
 * one, as LXD's clients (which know no such key) send the object back.
 */
function restriction(body: Record<string, unknown>, current?: TrustedCertificate, merge = false): { restricted: boolean; instances?: string } {
  if (body.projects !== undefined && body.projects !== null) {
    if (!Array.isArray(body.projects) || body.projects.some((x) => typeof x !== 'string')) throw new ApiError(400, '"projects" must be a list of strings');
    if (body.projects.some((x) => x !== 'default'))
      throw new ApiError(400, `tslxc has no projects: restrict a certificate to instances with "${INSTANCES_KEY}": "GLOB" and "restricted": true`);
  }
  if (body.restricted !== undefined && typeof body.restricted !== 'boolean') throw new ApiError(400, '"restricted" must be true or false');
  const glob = body[INSTANCES_KEY];
  if (glob !== undefined && glob !== null && typeof glob !== 'string') throw new ApiError(400, `"${INSTANCES_KEY}" must be a string`);
  const restricted = (body.restricted as boolean | undefined) ?? (glob ? true : merge && !!current?.restricted);
  if (!restricted) return { restricted: false };
  const instances = (glob as string | undefined) || current?.instances;
  // A certificate restricted by other means (a lab member's) stays as it is; any other needs a glob.
  if (!instances && !current?.restricted)
    throw new ApiError(400, `A restricted certificate needs "${INSTANCES_KEY}": the glob of the instances it may use ("alice-*")`);
  return { restricted: true, instances };
}

function checkType(type: unknown): 'client' | 'metrics' {
  const t = type === undefined || type === '' ? 'client' : type;
  if (t !== 'client' && t !== 'metrics') throw new ApiError(400, `Unknown certificate type "${String(t).slice(0, 40)}"`);
  return t;
}

export function certificateRoutes(core: ServerCore): Route[] {
  /**
   * `lxc config trust add NAME`: a pending token, as an operation of class "token" whose metadata
   * the client turns into LXD's token; the operation runs until the token is used, expires or is
   * cancelled (`lxc config trust revoke-token`, which also removes it from the store).
   */
  const token = async (req: ApiRequest, body: Record<string, unknown>) => {
    if (body.name !== undefined && typeof body.name !== 'string') throw new ApiError(400, '"name" must be a string');
    if (checkType(body.type) !== 'client') throw new ApiError(400, 'Cannot use metrics type certificate when using a token');
    const { instances } = restriction(body);
    const name = (body.name as string | undefined) || `client-${Date.now()}`;
    const t = await createToken(req.ctx.paths, {
      name,
      instances,
      expiresMs: TOKEN_LIFETIME_MS,
      fingerprint: core.certificate.fingerprint,
      addresses: core.addresses,
    });
    const secret = (JSON.parse(Buffer.from(t.token, 'base64').toString('utf8')) as { secret: string }).secret;
    const paths = req.ctx.paths;
    const pending = () => loadTrust(paths).tokens.some((k) => k.name === name && Date.parse(k.expires_at) > Date.now());
    let cancelled = false;
    const op = req.operations.start({
      class: 'token',
      description: 'Generating certificate add token',
      metadata: {
        request: { name, type: 'client', restricted: instances !== undefined, projects: [], certificate: '', password: '', token: true },
        fingerprint: core.certificate.fingerprint,
        addresses: core.addresses,
        secret,
        expiresAt: t.expiresAt,
      },
      async run(running) {
        // Ends when the token leaves the store (used, expired, removed) or the server stops.
        while (!running.signal.aborted && pending()) await delay(1000, undefined, { signal: running.signal }).catch(() => {});
        if (cancelled) await removeTrusted(paths, name).catch(() => {});
      },
      cancel() {
        cancelled = true;
      },
    });
    return { type: 'async' as const, operation: op };
  };

  /** PUT replaces name, type, restriction; PATCH changes what the body names. The certificate itself stays. */
  const update = async (req: ApiRequest, merge: boolean) => {
    if (req.identity.instances !== undefined) throw new ApiError(403, 'A restricted certificate cannot change certificates');
    const c = find(req, req.params.fingerprint!);
    const body = await req.json<Record<string, unknown>>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'Expected a JSON object');
    checkIfMatch(req, etagOf(writable(c)));
    if (body.name !== undefined && typeof body.name !== 'string') throw new ApiError(400, '"name" must be a string');
    if (typeof body.certificate === 'string' && body.certificate !== '') {
      let fp: string;
      try {
        fp = parseCertificate(body.certificate).fingerprint;
      } catch {
        throw new ApiError(400, 'Invalid certificate: expected PEM or base64 DER');
      }
      if (fp !== c.fingerprint) throw new ApiError(400, 'The certificate itself cannot be changed: add the new one, then remove this one');
    }
    const has = (k: string) => body[k] !== undefined;
    const type = merge && !has('type') ? c.type : checkType(body.type);
    const r = restriction(body, c, merge);
    const name = merge && !has('name') ? c.name : (body.name as string | undefined) || c.name;
    await updateCertificate(req.ctx.paths, c.fingerprint, (e) => {
      // Checked again under the store's lock: a change between the read and now is refused.
      if (req.headers['if-match'] !== undefined) checkIfMatch(req, etagOf(writable(e)));
      e.name = name;
      e.type = type;
      e.restricted = r.restricted;
      if (r.instances !== undefined) e.instances = r.instances;
      else delete e.instances;
    });
    req.events.lifecycle('certificate-updated', `/1.0/certificates/${c.fingerprint}`);
    return sync({});
  };

  const exchange = async (req: ApiRequest, body: Record<string, unknown>) => {
    const raw = peerCertificate(req);
    if (!raw) throw new ApiError(400, 'No client certificate was presented');
    const address = req.raw.socket.remoteAddress ?? 'unknown';
    const secret = typeof body.password === 'string' && body.password ? body.password : typeof body.trust_token === 'string' ? body.trust_token : '';
    if (core.throttle.bannedFor(address) > 0) throw new ApiError(403, 'Too many failed attempts from this address; try again later');
    const entry = secret ? await redeemToken(req.ctx.paths, secret, raw.toString('base64')) : undefined;
    if (!entry) {
      const t = core.throttle.failure(address);
      if (t.delayMs) await sleep(t.delayMs);
      throw new ApiError(403, 'No matching certificate add token found (a token works once and expires)');
    }
    core.throttle.success(address);
    req.events.lifecycle('certificate-created', `/1.0/certificates/${entry.fingerprint}`);
    return sync(null, { status: 201, location: `/1.0/certificates/${entry.fingerprint}` });
  };

  return [
    {
      method: 'GET',
      path: '/1.0/certificates',
      handler: async (req) => {
        const certs = visible(req);
        return sync(Number(req.query.get('recursion') ?? 0) > 0 ? certs.map(shape) : certs.map((c) => `/1.0/certificates/${c.fingerprint}`));
      },
    },
    {
      method: 'GET',
      path: '/1.0/certificates/{fingerprint}',
      handler: async (req) => {
        const c = find(req, req.params.fingerprint!);
        return sync(shape(c), { etag: etagOf(writable(c)) });
      },
    },
    { method: 'PUT', path: '/1.0/certificates/{fingerprint}', handler: (req) => update(req, false) },
    { method: 'PATCH', path: '/1.0/certificates/{fingerprint}', handler: (req) => update(req, true) },
    {
      method: 'POST',
      path: '/1.0/certificates',
      public: true,
      handler: async (req) => {
        const body = await req.json<Record<string, unknown>>();
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'Expected a JSON object');
        if (!req.identity.trusted) return exchange(req, body);
        if (req.identity.instances !== undefined) throw new ApiError(403, 'A restricted certificate cannot add certificates');
        if (body.token === true) return token(req, body);
        const type = checkType(body.type);
        if (body.name !== undefined && typeof body.name !== 'string') throw new ApiError(400, '"name" must be a string');
        if (body.certificate !== undefined && typeof body.certificate !== 'string') throw new ApiError(400, '"certificate" must be a string');
        const { instances } = restriction(body);
        const cert = (body.certificate as string | undefined) || peerCertificate(req)?.toString('base64');
        if (!cert) throw new ApiError(400, 'No certificate given and none presented over TLS');
        const name = (body.name as string | undefined) || `client-${Date.now()}`;
        const entry = await addCertificate(req.ctx.paths, { name, certificate: cert, type, instances }).catch((err: unknown) => {
          if (err instanceof TslxcError) throw err;
          throw new ApiError(400, String(err));
        });
        req.events.lifecycle('certificate-created', `/1.0/certificates/${entry.fingerprint}`);
        return sync(null, { status: 201, location: `/1.0/certificates/${entry.fingerprint}` });
      },
    },
    {
      method: 'DELETE',
      path: '/1.0/certificates/{fingerprint}',
      handler: async (req) => {
        const c = find(req, req.params.fingerprint!);
        await removeTrusted(req.ctx.paths, c.fingerprint);
        req.events.lifecycle('certificate-deleted', `/1.0/certificates/${c.fingerprint}`);
        return sync({});
      },
    },
  ];
}

/** What these routes implement of LXD's certificate API. */
export const CERTIFICATE_EXTENSIONS = ['certificate_update', 'certificate_token'];
