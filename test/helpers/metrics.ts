import { run } from './api.js';

/**
 * The Prometheus text format reduced to what a scrape config or a dashboard depends on: each
 * family's name (in order), its type, and the label names its samples carry.
 */
export function metricFamilies(text: string): Map<string, { type: string; labelNames: string[] }> {
  const out = new Map<string, { type: string; labelNames: Set<string> }>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      out.set(type[1]!, { type: type[2]!, labelNames: new Set() });
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const names = [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)].map((m) => m[1]!);
    out.get(sample[1]!)?.labelNames.add(names.join(','));
  }
  return new Map([...out].map(([k, v]) => [k, { type: v.type, labelNames: [...v.labelNames].sort() }]));
}

/** `promtool check metrics` on the text: exit 1 is a parse error, 3 lint problems (one a line). */
export async function promtoolLint(text: string): Promise<{ code: number; output: string; problems: string[] }> {
  const r = await run('promtool', ['check', 'metrics'], { input: text });
  const output = r.stdout + r.stderr;
  return { code: r.code, output, problems: output.split('\n').filter((l) => l.trim()) };
}
