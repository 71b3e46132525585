/**
 * A revert list for multi-step operations: each step that made something registers how to undo
 * it; when a later step fails, the undos run in reverse order and the first error is rethrown.
 * Undo failures are swallowed on purpose: the user needs the error that caused the rollback.
 */
export class Reverter {
  private undos: Array<() => unknown> = [];

  add(undo: () => unknown): void {
    this.undos.push(undo);
  }

  async revert(): Promise<void> {
    for (const undo of this.undos.reverse()) {
      try {
        await undo();
      } catch {
        /* keep undoing the rest */
      }
    }
    this.undos = [];
  }

  /** Run fn; on failure undo everything registered so far and rethrow. */
  static async run<T>(fn: (r: Reverter) => Promise<T>): Promise<T> {
    const r = new Reverter();
    try {
      return await fn(r);
    } catch (err) {
      await r.revert();
      throw err;
    }
  }
}
