import { context } from '../common.js';
import { defineCommand, type OptionDef } from '../define.js';
import type { CopyOptions } from '../../instance/copy.js';

/** Where a copy or a move goes, and whether its snapshots come along (copy and move share them). */
export function placementOptions(storage: string): Record<string, OptionDef> {
  return {
    storage: { type: 'string', short: 's', kind: 'pool', describe: storage },
    'instance-only': { type: 'boolean', describe: 'leave the snapshots out' },
  };
}

export function placementArgs(argv: Record<string, unknown>): CopyOptions {
  return { storage: argv.storage as string | undefined, instanceOnly: argv['instance-only'] as boolean | undefined };
}

export default defineCommand({
  command: 'copy <source> <destination>',
  aliases: ['cp'],
  describe: 'Copy a container (a running one frozen for the copy; with its snapshots) or a snapshot (NAME/SNAP) to a new container',
  positionals: {
    source: { kind: 'container', describe: 'the container, or NAME/SNAP' },
    destination: { kind: 'new container', describe: 'the new container' },
  },
  options: placementOptions("the pool of the copy (default: the source's)"),
  run: async (argv) => {
    const { copyInstance } = await import('../../instance/copy.js');
    const cfg = await copyInstance(context(), String(argv.source), String(argv.destination), placementArgs(argv));
    console.log(`Copied to ${cfg.name}`);
  },
});
