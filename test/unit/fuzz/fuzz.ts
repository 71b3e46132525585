/**
 * A small seeded fuzzer: a PRNG, mutators over text, and random structured values. The same seed
 * gives the same inputs, so a failure is reproduced from (target, seed, case index).
 */

/** mulberry32: small, fast, good enough to spread inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  readonly rnd: () => number;
  constructor(
    seed: number,
    readonly dictionary: readonly string[] = [],
  ) {
    this.rnd = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  /** A short random string: ASCII, YAML punctuation, control characters, non-BMP unicode. */
  string(max = 12): string {
    const n = this.int(max + 1);
    let s = '';
    for (let i = 0; i < n; i++) {
      const k = this.int(10);
      if (k < 5) s += String.fromCharCode(0x61 + this.int(26));
      else if (k < 7) s += this.pick([...'0123456789-._/:,%=']);
      else if (k < 8) s += this.pick([...' \t\n#&*!|>\'"{}[]?@`\\']);
      else if (k < 9) s += String.fromCharCode(this.int(32));
      else s += this.pick(['é', '\u0000', '\uffff', '\ud83d\ude00', '\u202e', '\ud800']);
    }
    return s;
  }
  token(): string {
    return this.dictionary.length && this.chance(0.7) ? this.pick(this.dictionary) : this.string();
  }
  /** One to a few edits of text: flip, insert a token, delete or duplicate a range, splice. */
  mutate(text: string, corpus: readonly string[]): string {
    let s = text;
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(s.length + 1);
      switch (this.int(7)) {
        case 0:
          s = s.slice(0, at) + String.fromCharCode(this.int(128)) + s.slice(at + 1);
          break;
        case 1:
          s = s.slice(0, at) + this.token() + s.slice(at);
          break;
        case 2:
          s = s.slice(0, at) + s.slice(at + this.int(40));
          break;
        case 3: {
          const len = this.int(60);
          s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
          break;
        }
        case 4: {
          const other = this.pick(corpus);
          const from = this.int(other.length + 1);
          s = s.slice(0, at) + other.slice(from, from + this.int(80)) + s.slice(at);
          break;
        }
        case 5: // a line replaced by "key: value" made of tokens
          s = s.slice(0, at) + `\n${' '.repeat(this.int(6))}${this.token()}: ${this.token()}\n` + s.slice(at);
          break;
        default:
          s = s.slice(0, at) + '\n' + s.slice(at);
      }
    }
    return s.length > 20_000 ? s.slice(0, 20_000) : s;
  }
  /** A random JSON-ish value (what a YAML document may hold), with dictionary keys. */
  value(depth = 0): unknown {
    const k = this.int(depth > 3 ? 6 : 9);
    switch (k) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), Number.NaN, Infinity, 1e308, this.int(1000)]);
      case 3:
      case 4:
      case 5:
        return this.token();
      case 6: {
        const n = this.int(4);
        return Array.from({ length: n }, () => this.value(depth + 1));
      }
      default: {
        const o: Record<string, unknown> = {};
        const n = this.int(5);
        for (let i = 0; i < n; i++) o[this.token()] = this.value(depth + 1);
        return o;
      }
    }
  }
}
