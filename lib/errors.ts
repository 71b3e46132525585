/**
 * The one class of user-facing error. Its message is a single line that says what failed, why,
 * and what to do; the CLI prints it as it is and exits non-zero (--debug adds the stack).
 */
/**
 * What kind of failure an error is, for callers that answer in other terms than an exit code (the
 * API server's HTTP status: not-found 404, conflict 409, invalid 400, forbidden 403). Unset: 500.
 */
export type ErrorKind = 'not-found' | 'conflict' | 'invalid' | 'forbidden';

export class TslxcError extends Error {
  readonly exitCode: number;
  readonly kind?: ErrorKind;

  constructor(what: string, why?: string, fix?: string, options: { cause?: unknown; exitCode?: number; kind?: ErrorKind } = {}) {
    const parts = [what];
    if (why) parts.push(why);
    let message = parts.join(': ');
    if (fix) message += ` (${fix})`;
    super(message.replace(/\s*\n\s*/g, ' '), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TslxcError';
    this.exitCode = options.exitCode ?? 1;
    if (options.kind) this.kind = options.kind;
  }
}

/** The human part of an unknown error, on one line. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message.replace(/\s*\n\s*/g, ' ');
  return String(err);
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
