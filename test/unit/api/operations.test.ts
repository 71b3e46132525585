import test from 'ava';
import type { WebSocket } from 'ws';
import { Operations } from '../../../lib/api/operations.js';
import type { Identity, Operation } from '../../../lib/api/types.js';

const root: Identity = { protocol: 'unix', name: 'unix', trusted: true };
const restricted: Identity = { protocol: 'tls', name: 'r', trusted: true, instances: ['a*'] };

test('a task goes Running then Success, with run() result merged; every change is reported', async (t) => {
  const seen: number[] = [];
  const ops = new Operations({ changed: (op: Operation) => seen.push(op.status_code) });
  const op = ops.start({ class: 'task', description: 'x', run: async (r) => (r.update({ p: 1 }), { done: 1 }) });
  t.is(op.status_code, 103);
  const end = await ops.wait(op.id, root, 5000);
  t.like(end, { status: 'Success', status_code: 200, err: '' });
  t.like(end.metadata, { p: 1, done: 1 });
  t.deepEqual(seen, [103, 103, 200]);
});

test('a run() that throws at once is a Failure with its message', async (t) => {
  const ops = new Operations();
  const op = ops.start({
    class: 'task',
    description: 'x',
    run: () => {
      throw new Error('at once');
    },
  });
  t.like(await ops.wait(op.id, root, 5000), { status_code: 400, err: 'at once' });
});

test('a restricted identity sees only operations on its instances', (t) => {
  const ops = new Operations();
  const mine = ops.start({ class: 'task', description: 'x', resources: { instances: ['/1.0/instances/a1'] }, run: async () => {} });
  const other = ops.start({ class: 'task', description: 'x', resources: { instances: ['/1.0/instances/b1'] }, run: async () => {} });
  t.deepEqual(
    ops.list(restricted).map((o) => o.id),
    [mine.id],
  );
  t.throws(() => ops.get(other.id, restricted), { message: /not found/ });
});

test('websocket secrets work once; run() waits for the required streams only', async (t) => {
  const ops = new Operations();
  let ran = false;
  const op = ops.start({
    class: 'websocket',
    description: 'x',
    sockets: ['0', 'control'],
    required: ['0'],
    run: async () => {
      ran = true;
    },
  });
  const fds = op.metadata!.fds as Record<string, string>;
  t.is(ops.claimSocket(op.id, root, 'nope'), undefined);
  t.is(ops.claimSocket(op.id, root, fds['0']!), '0');
  t.is(ops.claimSocket(op.id, root, fds['0']!), undefined);
  t.false(ran);
  const fake = { readyState: 3, OPEN: 1, CONNECTING: 0, close: () => {} } as unknown as WebSocket;
  ops.attachSocket(op.id, '0', fake);
  t.like(await ops.wait(op.id, root, 5000), { status_code: 200 });
  t.true(ran);
});

test('cancel: Cancelling, the signal aborts, then Cancelled; a finished one cannot be', async (t) => {
  const ops = new Operations();
  const op = ops.start({
    class: 'task',
    description: 'x',
    run: (r) => new Promise((resolve) => r.signal.addEventListener('abort', () => resolve())),
    cancel: () => {},
  });
  await new Promise((r) => setImmediate(r));
  ops.cancel(op.id, root);
  t.like(await ops.wait(op.id, root, 5000), { status: 'Cancelled', status_code: 401 });
  t.throws(() => ops.cancel(op.id, root), { message: /Only running/ });
});
