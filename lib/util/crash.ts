import fs from 'node:fs';

/**
 * Named points where the crash tests kill tslxc (SIGKILL, to itself: no cleanup, no finally), to
 * check that what the next command sees is the old state or the new one. Honoured only with
 * TSLXC_TEST_CRASH_AT=STEP and a private state dir (TSLXC_DIR set): never on an installation that
 * uses the default /var/lib/tslxc.
 */
export function crashPoint(step: string): void {
  const want = process.env.TSLXC_TEST_CRASH_AT;
  if (!want || want !== step || !process.env.TSLXC_DIR) return;
  process.kill(process.pid, 'SIGKILL');
}

/**
 * Named points where the race tests hold tslxc: with TSLXC_TEST_PAUSE_AT=STEP and
 * TSLXC_TEST_PAUSE_FILE=FILE (and a private state dir), the command creates FILE on reaching
 * STEP and goes on once the test has removed it, so the test can run another command in between.
 */
export async function pausePoint(step: string): Promise<void> {
  const file = process.env.TSLXC_TEST_PAUSE_FILE;
  if (process.env.TSLXC_TEST_PAUSE_AT !== step || !file || !process.env.TSLXC_DIR) return;
  fs.writeFileSync(file, `${process.pid}\n`);
  for (let i = 0; i < 6000 && fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 10));
}
