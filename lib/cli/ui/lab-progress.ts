import type { LabEvent } from '../../lab/up.js';

/**
 * Progress of a lab's parallel work: on a terminal one self-rewriting line (how many containers
 * are ready, which are busy with what), plain lines otherwise (logs, CI). On stderr: stdout holds
 * the report.
 */
export function labProgress(total: number, stream: NodeJS.WriteStream = process.stderr): { event(e: LabEvent): void; done(): void } {
  const started = Date.now();
  const busy = new Map<string, string>();
  let ready = 0;
  let failed = 0;
  let drawn = false;
  const draw = () => {
    const secs = ((Date.now() - started) / 1000).toFixed(0).padStart(3);
    const width = (stream.columns || 80) - 1;
    const doing = [...busy].map(([c, d]) => `${c} ${d}`).join(', ');
    const text = `[${secs}s] ${ready}/${total} ready${failed ? `, ${failed} failed` : ''}${doing ? ` | ${doing}` : ''}`;
    stream.write(`\r${text.slice(0, width).padEnd(width)}`);
    drawn = true;
  };
  const clear = () => {
    if (drawn) stream.write('\r\x1b[K');
    drawn = false;
  };
  return {
    event(e) {
      if (e.container && (e.step === 'ready' || e.step === 'failed')) {
        busy.delete(e.container);
        if (e.step === 'ready') ready++;
        else failed++;
      } else if (e.container) busy.set(e.container, e.detail);
      if (stream.isTTY) {
        // Lab-wide steps and failures stay on screen; container steps only update the line.
        if (!e.container || e.step === 'failed') {
          clear();
          stream.write(`${e.container ? `${e.container}: ` : ''}${e.detail}\n`);
        }
        draw();
      } else {
        stream.write(`${e.container ? `${e.container}: ` : ''}${e.detail}\n`);
      }
    },
    done: clear,
  };
}
