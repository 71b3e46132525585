import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { TslxcError, errorText } from '../errors.js';
import { fingerprintOf } from '../api/certificate.js';
import { ensureClientCertificate } from './certificate.js';
import { clientDir, loadClientConfig, saveClientConfig, validateRemoteName, writeServerCert } from './config.js';
import { pinnedTls, RemoteServer } from './connection.js';

/**
 * `remote add NAME TOKEN|https://HOST:PORT`, as lxc does it: find the server (each of a token's
 * addresses in turn), check its certificate (the token's fingerprint, or --accept-certificate),
 * pin it, and become trusted (POST /1.0/certificates with the token or the password) unless the
 * server trusts this client already. Nothing is written until the server says "trusted".
 */

/** LXD's trust token: base64 of JSON {client_name, fingerprint, addresses, secret, expires_at}. */
export interface TrustToken {
  client_name: string;
  fingerprint: string;
  addresses: string[];
  secret: string;
  expires_at?: string;
}

export function parseToken(text: string): TrustToken | undefined {
  if (!/^[A-Za-z0-9+/=_-]{40,}$/.test(text)) return undefined;
  try {
    const doc = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as Partial<TrustToken>;
    if (typeof doc.fingerprint === 'string' && typeof doc.secret === 'string' && Array.isArray(doc.addresses)) return doc as TrustToken;
  } catch {
    // not a token
  }
  return undefined;
}

/** "https://HOST[:PORT]" (8443 by default, as lxc) from what the user gave. */
export function serverUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//.test(text) ? text : `https://${text}`);
  } catch {
    throw new TslxcError(`Invalid server address "${text.slice(0, 100)}"`, 'give https://HOST:PORT or a token', undefined, { kind: 'invalid' });
  }
  if (u.protocol !== 'https:') throw new TslxcError(`Invalid server address "${text.slice(0, 100)}"`, 'an API server is reached over https://');
  return `https://${u.hostname}:${u.port || '8443'}`;
}

/** The certificate a server presents, before anything is trusted (nothing else is sent). */
export function peerCertificate(url: string, timeoutMs = 10_000): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port,
      method: 'HEAD',
      path: '/',
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      agent: false,
      timeout: timeoutMs,
    });
    req.on('socket', (s) => {
      (s as TLSSocket).once('secureConnect', () => {
        const raw = (s as TLSSocket).getPeerCertificate().raw;
        req.destroy();
        if (!raw) return reject(new Error('the server presented no certificate'));
        resolve(new X509Certificate(raw).toString());
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Whether URL answers GET /1.0 in LXD's envelope: an API server, not a simplestreams one. */
export async function isApiServer(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = https.get(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 8443, path: '/1.0', rejectUnauthorized: false, timeout: 10_000, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d.length + text.length > 1 << 20 ? '' : d));
        res.on('end', () => {
          try {
            const doc = JSON.parse(text) as { type?: string; metadata?: { api_version?: string } };
            resolve(doc.type === 'sync' && typeof doc.metadata?.api_version === 'string');
          } catch {
            resolve(false);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export interface AddOptions {
  acceptCertificate?: boolean;
  password?: string;
}

export async function addServerRemote(name: string, target: string, opts: AddOptions = {}, dir = clientDir()): Promise<{ addr: string; fingerprint: string }> {
  validateRemoteName(name);
  if (loadClientConfig(dir).remotes[name])
    throw new TslxcError(`Remote "${name}" already exists`, undefined, 'remove it first, or pick another name', { kind: 'conflict' });
  const token = parseToken(target);
  let addr: string | undefined;
  let pem: string | undefined;
  const tried: string[] = [];
  if (token) {
    // A token names the server by its certificate: the first address that presents it is the one.
    for (const a of token.addresses) {
      const url = serverUrl(a);
      try {
        const cert = await peerCertificate(url);
        if (fingerprintOf(cert) !== token.fingerprint.toLowerCase()) {
          tried.push(`${a}: another certificate`);
          continue;
        }
        [addr, pem] = [url, cert];
        break;
      } catch (err) {
        tried.push(`${a}: ${errorText(err)}`);
      }
    }
    if (!addr || !pem)
      throw new TslxcError(
        'No address of the token reaches its server',
        tried.length ? tried.join('; ') : 'the token names no address (no "tslxc serve --listen" was running when it was made)',
        `give the address: "tslxc remote add ${name} https://HOST:PORT --password TOKEN"`,
      );
  } else {
    addr = serverUrl(target);
    try {
      pem = await peerCertificate(addr);
    } catch (err) {
      throw new TslxcError(`Cannot reach ${addr}`, errorText(err), 'is the server running and listening there?');
    }
    if (!opts.acceptCertificate)
      throw new TslxcError(
        `The certificate of ${addr} is not known`,
        `its fingerprint is ${fingerprintOf(pem)}`,
        'check it with the server ("tslxc serve" logs it; "lxc info" shows LXD\'s), then add --accept-certificate',
      );
  }
  const client = ensureClientCertificate(dir);
  const server = new RemoteServer(name, addr, pinnedTls(pem, client));
  try {
    let info = await server.get<{ auth?: string }>('/1.0');
    if (info.auth !== 'trusted') {
      const password = token ? target : opts.password;
      if (password === undefined)
        throw new TslxcError(`Remote "${name}" does not trust this client`, undefined, 'give --password, or a token from "config trust add" on the server');
      await server.call('POST', '/1.0/certificates', { type: 'client', password });
      info = await server.get<{ auth?: string }>('/1.0');
      if (info.auth !== 'trusted') throw new TslxcError(`Remote "${name}" accepted the certificate but does not trust it`, undefined, 'ask its administrator');
    }
  } finally {
    server.close();
  }
  writeServerCert(name, pem, dir);
  const cfg = loadClientConfig(dir);
  cfg.remotes[name] = { addr, protocol: 'lxd', auth_type: 'tls' };
  saveClientConfig(cfg, dir);
  return { addr, fingerprint: fingerprintOf(pem) };
}
