import type { TLSSocket } from 'node:tls';
import { TslxcError } from '../../errors.js';
import { sleep } from '../../util/fs.js';
import type { ServerCore } from './core.js';
import { addCertificate, isCurrent, loadTrust, redeemToken, removeTrusted, type TrustedCertificate } from '../trust.js';
import { ApiError, sync, type ApiRequest, type Route } from '../types.js';

/**
 * /1.0/certificates: the trust store over the API. An untrusted client may only POST here with a
 * token from `tslxc config trust add` (as `password`, or `trust_token` in later clients); its
 * TLS client certificate is then trusted. Failures from one address are slowed, then refused.
 */

const shape = (c: TrustedCertificate) => ({
  name: c.name,
  type: c.type,
  restricted: c.restricted,
  projects: [] as string[],
  certificate: c.certificate,
  fingerprint: c.fingerprint,
});

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

export function certificateRoutes(core: ServerCore): Route[] {
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
    core.events.lifecycle('certificate-created', `/1.0/certificates/${entry.fingerprint}`);
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
        return sync(shape(c), { etag: c.fingerprint });
      },
    },
    {
      method: 'POST',
      path: '/1.0/certificates',
      public: true,
      handler: async (req) => {
        const body = await req.json<Record<string, unknown>>();
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'Expected a JSON object');
        if (!req.identity.trusted) return exchange(req, body);
        if (req.identity.instances !== undefined) throw new ApiError(403, 'A restricted certificate cannot add certificates');
        if (body.token === true) throw new ApiError(400, 'Tokens are made on the server: "tslxc config trust add NAME"');
        const type = body.type === undefined || body.type === '' ? 'client' : body.type;
        if (type !== 'client' && type !== 'metrics') throw new ApiError(400, `Unknown certificate type "${String(type).slice(0, 40)}"`);
        if (body.name !== undefined && typeof body.name !== 'string') throw new ApiError(400, '"name" must be a string');
        if (body.certificate !== undefined && typeof body.certificate !== 'string') throw new ApiError(400, '"certificate" must be a string');
        if (body.restricted === true) throw new ApiError(400, 'Restricted certificates are added with "tslxc config trust add NAME --instances GLOB"');
        const cert = (body.certificate as string | undefined) || peerCertificate(req)?.toString('base64');
        if (!cert) throw new ApiError(400, 'No certificate given and none presented over TLS');
        const name = (body.name as string | undefined) || `client-${Date.now()}`;
        const entry = await addCertificate(req.ctx.paths, { name, certificate: cert, type }).catch((err: unknown) => {
          if (err instanceof TslxcError) throw err;
          throw new ApiError(400, String(err));
        });
        core.events.lifecycle('certificate-created', `/1.0/certificates/${entry.fingerprint}`);
        return sync(null, { status: 201, location: `/1.0/certificates/${entry.fingerprint}` });
      },
    },
    {
      method: 'DELETE',
      path: '/1.0/certificates/{fingerprint}',
      handler: async (req) => {
        const c = find(req, req.params.fingerprint!);
        await removeTrusted(req.ctx.paths, c.fingerprint);
        core.events.lifecycle('certificate-deleted', `/1.0/certificates/${c.fingerprint}`);
        return sync({});
      },
    },
  ];
}
