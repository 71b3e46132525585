import test from 'ava';
import { signalNumber } from '../../../lib/util/signals.js';

test('signal names map to Linux numbers', (t) => {
  t.is(signalNumber('SIGRTMIN+3'), 37);
  t.is(signalNumber('SIGPWR'), 30);
  t.is(signalNumber('USR2'), 12);
  t.is(signalNumber('9'), 9);
  t.throws(() => signalNumber('SIGNOPE'), { message: /Unknown signal/ });
  t.throws(() => signalNumber('SIGRTMIN+40'));
});
