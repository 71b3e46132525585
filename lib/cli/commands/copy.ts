import { context } from '../common.js';
import { yargsCommand, type LeanCommand, type LeanOption } from '../lean.js';
import type { CopyOptions } from '../../instance/copy.js';

/** Where a copy or a move goes, and whether its snapshots come along (copy and move share them). */
export function placementOptions(storage: string): Record<string, LeanOption> {
  return {
    storage: { type: 'string', short: 's', describe: storage },
    'instance-only': { type: 'boolean', describe: 'leave the snapshots out' },
  };
}

export function placementArgs(argv: Record<string, unknown>): CopyOptions {
  return { storage: argv.storage as string | undefined, instanceOnly: argv['instance-only'] as boolean | undefined };
}

export const copyCommand: LeanCommand = {
  command: 'copy <source> <destination>',
  aliases: ['cp'],
  describe: 'Copy a container (a running one frozen for the copy; with its snapshots) or a snapshot (NAME/SNAP) to a new container',
  positionals: { source: 'the container, or NAME/SNAP', destination: 'the new container' },
  options: placementOptions('the pool of the copy (default: the source\'s)'),
  run: async (argv) => {
    const { copyInstance } = await import('../../instance/copy.js');
    const cfg = await copyInstance(context(), String(argv.source), String(argv.destination), placementArgs(argv));
    console.log(`Copied to ${cfg.name}`);
  },
};
export default yargsCommand(copyCommand);
