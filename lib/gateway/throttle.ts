/**
 * Failed logins per source address: after a few, each further answer is slowed down (doubling);
 * after many, the address is refused outright for a while, before any SSH is spoken. A success
 * clears the address's record (a classroom behind one NAT address must not stay locked out
 * because one member's client offered a wrong key first).
 */
export interface ThrottleOptions {
  /** Failures before answers are delayed. */
  delayAfter: number;
  /** Failures (within windowMs) after which the address is refused for banMs. */
  banAfter: number;
  banMs: number;
  /** Failures older than this are forgotten. */
  windowMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  delayAfter: 3,
  banAfter: 10,
  banMs: 10 * 60_000,
  windowMs: 10 * 60_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
};

interface Record {
  failures: number[];
  bannedUntil: number;
}

export class Throttle {
  private readonly records = new Map<string, Record>();

  constructor(
    readonly opts: ThrottleOptions = DEFAULT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds the address stays refused; 0 when it may connect. */
  bannedFor(address: string): number {
    const r = this.records.get(address);
    if (!r) return 0;
    return Math.max(0, r.bannedUntil - this.now());
  }

  /** Records a failure; returns how long to wait before answering it. */
  failure(address: string): { delayMs: number; banned: boolean } {
    const t = this.now();
    const r = this.records.get(address) ?? { failures: [], bannedUntil: 0 };
    r.failures = r.failures.filter((f) => t - f < this.opts.windowMs);
    r.failures.push(t);
    this.records.set(address, r);
    const n = r.failures.length;
    if (n >= this.opts.banAfter) {
      r.bannedUntil = t + this.opts.banMs;
      r.failures = [];
      return { delayMs: 0, banned: true };
    }
    if (n <= this.opts.delayAfter) return { delayMs: 0, banned: false };
    return { delayMs: Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (n - this.opts.delayAfter - 1)), banned: false };
  }

  success(address: string): void {
    const r = this.records.get(address);
    if (r && r.bannedUntil <= this.now()) this.records.delete(address);
  }

  /** Drops records with nothing left to remember (called now and then, so the map stays small). */
  prune(): void {
    const t = this.now();
    for (const [a, r] of this.records) {
      if (r.bannedUntil <= t && r.failures.every((f) => t - f >= this.opts.windowMs)) this.records.delete(a);
    }
  }
}
