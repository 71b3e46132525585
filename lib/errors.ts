/**
 * The one class of user-facing error. Its message is a single line that says what failed, why,
 * and what to do; the CLI prints it as it is and exits non-zero (--debug adds the stack).
 */
export class TslxcError extends Error {
  readonly exitCode: number;

  constructor(what: string, why?: string, fix?: string, options: { cause?: unknown; exitCode?: number } = {}) {
    const parts = [what];
    if (why) parts.push(why);
    let message = parts.join(': ');
    if (fix) message += ` (${fix})`;
    super(message.replace(/\s*\n\s*/g, ' '), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TslxcError';
    this.exitCode = options.exitCode ?? 1;
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
