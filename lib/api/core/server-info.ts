import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkIfMatch, etagOf } from '../etag.js';
import type { ServerCore } from './core.js';
import { ApiError, sync, type ApiRequest, type Route } from '../types.js';

/** GET / and GET|PUT|PATCH /1.0: the server's description (LXD's api.Server) and its small config. */

let osRelease: Record<string, string> | undefined;
function osInfo(): Record<string, string> {
  if (!osRelease) {
    osRelease = {};
    try {
      for (const line of fs.readFileSync('/etc/os-release', 'utf8').split('\n')) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line);
        if (m) osRelease[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
      }
    } catch {
      // no os-release: the fields stay empty
    }
  }
  return osRelease;
}

let version: string | undefined;
async function packageVersion(): Promise<string> {
  if (version === undefined) {
    // The nearest package.json above this file: dist/lib/api/core/ or a bundle's dist/lib/full/.
    version = '0.0.0';
    let dir = path.dirname(fileURLToPath(import.meta.url));
    for (let i = 0; i < 6; i++, dir = path.dirname(dir)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
        if (pkg.name !== 'tslxc') continue;
        version = pkg.version;
        break;
      } catch {
        // not here: one level up
      }
    }
  }
  return version;
}

const ARCH: Record<string, string[]> = { x64: ['x86_64', 'i686'], arm64: ['aarch64', 'armv7l'], arm: ['armv7l'] };

/**
 * The pools' drivers, read again only when the pools dir changed (a pool's file is written by
 * rename, and a pool's driver never changes): every `lxc` command starts with GET /1.0, and reading
 * and parsing each pool's YAML there was a good part of an exec's time in the server.
 */
let poolDrivers: { dir: string; mtimeMs: number; drivers: string } | undefined;

async function storageInfo(
  core: ServerCore,
): Promise<{ storage: string; storage_supported_drivers: Array<{ Name: string; Version: string; Remote: boolean }> }> {
  const { listPools, poolsDir, DRIVERS } = await import('../../storage/pool.js');
  const dir = poolsDir(core.ctx.paths);
  let mtimeMs = -1;
  try {
    mtimeMs = fs.statSync(dir).mtimeMs;
  } catch {
    // no pools yet
  }
  if (poolDrivers?.dir !== dir || poolDrivers.mtimeMs !== mtimeMs) {
    let pools: Array<{ driver: string }> = [];
    try {
      pools = listPools(core.ctx.paths);
    } catch {
      // an unreadable pool file must not break GET /1.0
    }
    poolDrivers = { dir, mtimeMs, drivers: [...new Set(pools.map((p) => p.driver))].join(' | ') || 'dir' };
  }
  return {
    storage: poolDrivers.drivers,
    // LXD 5.0.2 writes these keys capitalized (its Go struct has no json tags).
    storage_supported_drivers: DRIVERS.map((name) => ({ Name: name, Version: '1', Remote: false })),
  };
}

function serverConfig(core: ServerCore): Record<string, string> {
  return core.addresses.length ? { 'core.https_address': core.addresses[0]! } : {};
}

export function serverRoutes(core: ServerCore): Route[] {
  const untrusted = () => ({
    api_extensions: core.extensions,
    api_status: 'stable',
    api_version: '1.0',
    auth: 'untrusted',
    public: false,
    auth_methods: ['tls'],
  });

  const get = async (req: ApiRequest) => {
    if (!req.identity.trusted) return sync(untrusted());
    const config = serverConfig(core);
    const release = osInfo();
    return sync(
      {
        config,
        ...untrusted(),
        auth: 'trusted',
        environment: {
          addresses: core.addresses,
          architectures: ARCH[process.arch] ?? [os.machine()],
          certificate: core.certificate.cert,
          certificate_fingerprint: core.certificate.fingerprint,
          driver: 'tslxc',
          driver_version: await packageVersion(),
          firewall: 'nftables',
          kernel: os.type(),
          kernel_architecture: os.machine(),
          kernel_features: {},
          kernel_version: os.release(),
          lxc_features: {},
          os_name: release.NAME ?? '',
          os_version: release.VERSION_ID ?? '',
          project: 'default',
          server: 'tslxc',
          server_clustered: false,
          server_event_mode: 'full-mesh',
          server_name: os.hostname(),
          server_pid: process.pid,
          server_version: await packageVersion(),
          ...(await storageInfo(core)),
          storage_version: '1',
        },
      },
      { etag: etagOf(config) },
    );
  };

  /** The config is what --listen set: a PUT or PATCH may restate it, not change it. */
  const put = (partial: boolean) => async (req: ApiRequest) => {
    const body = await req.json<{ config?: unknown }>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'Expected a JSON object');
    const current = serverConfig(core);
    checkIfMatch(req, etagOf(current));
    const config = body.config ?? {};
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ApiError(400, '"config" must be an object of strings');
    const wanted = partial ? { ...current, ...(config as Record<string, unknown>) } : (config as Record<string, unknown>);
    for (const [k, v] of Object.entries(wanted)) {
      if (typeof v !== 'string') throw new ApiError(400, `Config value of "${k}" must be a string`);
      if (current[k] !== v) throw new ApiError(400, `Cannot set server config "${k}": tslxc serve takes its settings from its options (--listen)`);
    }
    if (!partial)
      for (const k of Object.keys(current)) if (!(k in wanted)) throw new ApiError(400, `Cannot unset server config "${k}": it comes from --listen`);
    return sync({});
  };

  return [
    { method: 'GET', path: '/', public: true, handler: async () => sync(['/1.0']) },
    { method: 'GET', path: '/1.0', public: true, handler: get },
    { method: 'PUT', path: '/1.0', handler: put(false) },
    { method: 'PATCH', path: '/1.0', handler: put(true) },
  ];
}
