import type { OptionDef } from '../define.js';

export type Format = 'table' | 'json' | 'yaml' | 'csv';
export const FORMATS: Format[] = ['table', 'json', 'yaml', 'csv'];

/** `--format|-f`, of every command that prints rows. Here, not in ui/format.ts: no YAML library loaded to read a definition. */
export const FORMAT_OPTION: OptionDef = { type: 'string', short: 'f', choices: FORMATS, default: 'table', describe: 'output format' };
