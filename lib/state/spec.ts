import { helperError, runHelper, type HelperResult } from './helper.js';

/**
 * A start as data: steps in native/plan.c's format (an operation name, then its operands; the
 * list is documented in lib/instance/plan.ts). The TypeScript start computes them and hands them
 * to the helper (`plan-exec`), which executes them; the saved plan is the same steps with checks
 * in front, which the next start executes without node. One executor, one format.
 */
export type SpecOp = string[];

/** A file the spec writes (under the run dir root: the helper refuses any other). */
export interface RunFile {
  path: string;
  mode: number;
  data: string;
}

export const SPEC_MAGIC = 'tslxc-start-plan-2';

export const fileOp = (f: RunFile): SpecOp => ['file', f.path, f.mode.toString(8), f.data];

/** NUL-terminated strings, as the helper reads them; undefined when a string holds a NUL. */
export function encodeSpec(ops: SpecOp[]): string | undefined {
  if (ops.some((op) => op.some((s) => s.includes('\0')))) return undefined;
  return ops.map((op) => op.map((s) => `${s}\0`).join('')).join('');
}

/**
 * Executes steps with the helper. `runDir` is the container's run dir (files in it are rewritten in
 * place; the helper makes it if needed). Steps that end with a `start` start the container (its
 * stdout: "INITPID MONITORPID"); others end here. The caller holds the locks the steps need.
 * A step that fails undoes what the spec made and the result says why (helperError).
 */
export async function executeSpec(runDir: string, ops: SpecOp[]): Promise<HelperResult> {
  const text = encodeSpec([[SPEC_MAGIC], ['rundir', runDir, '0'], ...ops, ['end']]);
  if (text === undefined) return { code: 1, stdout: '', stderr: 'tslxc-helper: a start step holds a NUL byte\n' };
  return runHelper(['plan-exec'], { input: text });
}

/** executeSpec for steps that start nothing: throws the helper's one-line reason. */
export async function executeSteps(runDir: string, ops: SpecOp[]): Promise<void> {
  if (ops.length === 0) return;
  const r = await executeSpec(runDir, ops);
  if (r.code !== 0) throw new Error(helperError(r.stderr));
}
