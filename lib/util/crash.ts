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
