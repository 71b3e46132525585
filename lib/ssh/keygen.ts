import crypto from 'node:crypto';

/**
 * SSH keys made with node's crypto, in OpenSSH's own formats (PROTOCOL.key): unencrypted
 * "openssh-key-v1" private keys and "TYPE BASE64 COMMENT" public keys, as ssh-keygen writes them.
 * Used for containers' host keys (hostkeys.ts), tslxc's own client key (keys.ts) and the
 * gateway's host key. Not ssh2's helper: importing ssh2 is heavy for a create; see ed25519KeyPair.
 */
function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** An unsigned big-endian integer as SSH's mpint: a leading zero byte when the top bit is set. */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return sshString(v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

export interface KeyParts {
  type: string;
  /** the public key blob (what authorized_keys and known_hosts hold, base64) */
  publicBlob: Buffer;
  /** the key's own fields in the private section, after its type */
  privateFields: Buffer;
}

/*
 * No crypto.generateKeyPairSync and no JWK export here: node 20 can deadlock in them. A
 * KeyObject's JWK export holds the key's mutex while it makes V8 strings; a garbage collection
 * then may finalise the (unreachable) key-generation job of that same key, whose destructor waits
 * for the same mutex, forever (gdb: ~KeyGenJob under ExportJWKEdKey). It hung a unit test that
 * makes 1,000 keys, one run in three here, and could hang any `tslxc create`. The keys are made
 * from random bytes instead: no generation job exists, and only DER leaves a KeyObject.
 */

/** PKCS#8 DER of an Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function ed25519(): KeyParts {
  const seed = crypto.randomBytes(32);
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  // The SPKI DER of an Ed25519 key ends with the 32-byte public key.
  const pub = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).subarray(-32);
  const type = 'ssh-ed25519';
  return {
    type,
    publicBlob: Buffer.concat([sshString(type), sshString(pub)]),
    privateFields: Buffer.concat([sshString(pub), sshString(Buffer.concat([seed, pub]))]),
  };
}

export function ecdsaP256(): KeyParts {
  const ecdh = crypto.createECDH('prime256v1');
  const q = ecdh.generateKeys(); // the uncompressed point, 0x04 || X || Y
  const type = 'ecdsa-sha2-nistp256';
  const curve = sshString('nistp256');
  return {
    type,
    publicBlob: Buffer.concat([sshString(type), curve, sshString(q)]),
    privateFields: Buffer.concat([curve, sshString(q), mpint(ecdh.getPrivateKey())]),
  };
}

/** OpenSSH's "openssh-key-v1" container, unencrypted. */
export function privateKeyFile(k: KeyParts, comment: string): string {
  const check = crypto.randomBytes(4).readUInt32BE();
  let priv = Buffer.concat([uint32(check), uint32(check), sshString(k.type), k.privateFields, sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(k.publicBlob),
    sshString(priv),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * An Ed25519 key pair in OpenSSH's formats: tslxc's own client key and the gateway's host key.
 * Not ssh2's utils.generateKeyPairSync: about one Ed25519 key in 200 it makes has a public key of
 * 31 bytes (a leading zero byte dropped), which ssh2 itself then rejects as malformed (seen here
 * in 14 of 3,000; a CI run failed on it).
 */
export function ed25519KeyPair(comment: string): { private: string; public: string } {
  const k = ed25519();
  return { private: privateKeyFile(k, comment), public: `${k.type} ${k.publicBlob.toString('base64')} ${comment}` };
}
