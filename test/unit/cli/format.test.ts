import test from 'ava';
import { renderRows, humanBytes } from '../../../lib/cli/ui/format.js';

const rows = [
  { name: 'a', count: 1 },
  { name: 'b,c', count: 22 },
];
const cols = [
  { header: 'NAME', value: (r: (typeof rows)[0]) => r.name },
  { header: 'N', value: (r: (typeof rows)[0]) => r.count },
];

test('table, csv, json and yaml render the same rows', (t) => {
  t.is(renderRows(rows, cols, 'table'), 'NAME  N\na     1\nb,c   22');
  t.is(renderRows(rows, cols, 'csv'), 'NAME,N\na,1\n"b,c",22');
  t.deepEqual(JSON.parse(renderRows(rows, cols, 'json')), rows);
  t.regex(renderRows(rows, cols, 'yaml'), /- name: a\n {2}count: 1/);
  t.is(humanBytes(1536), '1.50KiB');
});
