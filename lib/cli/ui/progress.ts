import type { Progress } from '../../image/progress.js';

/**
 * Progress for long work (image builds, copies): one self-rewriting status line on a terminal,
 * plain timestamped lines otherwise (logs, CI), on stderr so stdout stays for results.
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): Progress & { done(): void } {
  const tty = stream.isTTY;
  const started = Date.now();
  let lastPhase = '';
  let drawn = false;
  const fn = ((phase: string, detail?: string) => {
    const secs = ((Date.now() - started) / 1000).toFixed(0).padStart(3);
    if (tty) {
      const width = (stream.columns || 80) - 1;
      const text = `[${secs}s] ${phase.padEnd(9)} ${detail ?? ''}`;
      stream.write(`\r${text.slice(0, width).padEnd(width)}`);
      drawn = true;
    } else if (phase !== lastPhase || phase === 'build' || phase === 'copy' || phase === 'done') {
      stream.write(`${phase}: ${detail ?? ''}\n`);
    }
    lastPhase = phase;
  }) as Progress & { done(): void };
  fn.done = () => {
    if (tty && drawn) stream.write('\r\x1b[K');
  };
  return fn;
}
