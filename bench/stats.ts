export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarize(samples: number[]): Summary {
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    n: samples.length,
    median: r2(median(samples)),
    min: samples.length ? r2(Math.min(...samples)) : NaN,
    max: samples.length ? r2(Math.max(...samples)) : NaN,
    samples: samples.map(r2),
  };
}
