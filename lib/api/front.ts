import net from 'node:net';
import { closeOnExec } from '../util/lock.js';
import type { Handover, RunningServer } from './server.js';

/**
 * The node side of serve's native front (native/servefront.c, which documents the protocol): the
 * front holds the listening sockets and the serve lock for the server's whole life, and this
 * worker hands them back and ends once nothing has used it for the idle timeout. The next
 * connection waits in the listen backlog until the front has started another worker, which
 * listens on the sockets it inherits (TSLXC_SERVE_FDS) instead of binding them.
 */
export class ServeFront {
  private readonly control: net.Socket;
  private lines = '';
  private readonly answers: Array<(line: string) => void> = [];

  private constructor(
    fd: number,
    /** The lock, then the listeners, when the front already holds them. */
    readonly inherited: { lock: number; listeners: number[] } | undefined,
    /** Started for housekeeping, not for a client: it retires as soon as its chores are done, unless one comes. */
    readonly woken: boolean,
  ) {
    this.control = new net.Socket({ fd, readable: true, writable: true });
    this.control.unref();
    this.control.on('data', (chunk: Buffer) => {
      this.lines += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.lines.indexOf('\n')) >= 0) {
        const line = this.lines.slice(0, nl);
        this.lines = this.lines.slice(nl + 1);
        this.answers.shift()?.(line);
      }
    });
    // A front that went away killed this worker already (PR_SET_PDEATHSIG): nothing to do here.
    this.control.on('error', () => {});
    this.control.on('close', () => {
      for (const answer of this.answers.splice(0)) answer('');
    });
  }

  /** The front this worker was started by, if any (TSLXC_SERVE_FRONT). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ServeFront | undefined {
    const fd = Number(env.TSLXC_SERVE_FRONT);
    if (!env.TSLXC_SERVE_FRONT || !Number.isInteger(fd) || fd < 3) return undefined;
    const fds = (env.TSLXC_SERVE_FDS ?? '').split(',').filter(Boolean).map(Number);
    // Not for the children of this worker (the API's exec, exports, a CLI run by a hook).
    const woken = env.TSLXC_SERVE_WAKE === '1';
    delete env.TSLXC_SERVE_FRONT;
    delete env.TSLXC_SERVE_FDS;
    delete env.TSLXC_SERVE_WAKE;
    const inherited = fds.length >= 2 && fds.every((n) => Number.isInteger(n) && n >= 0) ? { lock: fds[0]!, listeners: fds.slice(1) } : undefined;
    // Only this worker may hold them: not the processes it starts (the lock is adopted likewise).
    for (const n of [fd, ...(inherited?.listeners ?? [])]) closeOnExec(n);
    return new ServeFront(fd, inherited, woken);
  }

  private ask(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.answers.push(resolve);
      this.control.write(`${line}\n`);
    });
  }

  /** Tells the front what it holds while no worker runs; false when it cannot hold them. */
  async ready(handover: Handover): Promise<boolean> {
    const paths = [handover.lockFile, handover.socketFile, handover.addressesFile];
    // The protocol's separators: such a path cannot be passed, and the server then stays up.
    if (paths.some((p) => /[\t\n]/.test(p)) || handover.listenerFds.some((fd) => fd < 0)) return false;
    return (await this.ask(['ready', handover.lockFd, ...paths, ...handover.listenerFds].join('\t'))) === 'ok';
  }

  /**
   * Retires the server once it has been idle for idleMs: it stops listening (in the same turn of
   * the event loop that found it idle, so no connection is accepted in between), tells the front
   * when to start a worker for the housekeeping if no client comes first, and resolves when its
   * last connection has ended.
   */
  whenIdle(server: RunningServer, idleMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setInterval(
        () => {
          const quiet = server.idleMs();
          if (quiet === 0 || quiet < (this.woken && !server.used() ? 0 : idleMs)) return;
          clearInterval(timer);
          const retired = server.retire();
          void server
            .wakeMs()
            .catch(() => 0)
            .then((wake) => this.control.write(`idle\t${wake}\n`, () => void retired.then(resolve)));
        },
        Math.min(Math.max(idleMs / 4, 100), 5_000),
      );
      timer.unref();
      this.stopWatching = () => clearInterval(timer);
    });
  }

  private stopWatching = () => {};

  /** The worker ends as a server ends (lock released, socket removed): so will the front. */
  stopping(): void {
    this.stopWatching();
    this.control.write('stop\n');
  }
}
