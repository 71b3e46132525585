import { createHash } from 'node:crypto';
import { ApiError, type ApiRequest } from './types.js';

/** An object's ETag: a hash of what a PUT would replace (LXD hashes the same fields). */
export function etagOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/** PUT/PATCH with If-Match: 412 unless it names the current ETag (quoted or not, as LXD). */
export function checkIfMatch(req: Pick<ApiRequest, 'headers'>, current: string): void {
  const match = req.headers['if-match'];
  if (typeof match === 'string' && match !== '' && match.replace(/^"|"$/g, '') !== current) throw new ApiError(412, "ETag doesn't match");
}
