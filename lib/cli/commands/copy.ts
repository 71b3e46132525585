import { context } from '../common.js';
import { yargsCommand, type LeanCommand } from '../lean.js';

export const copyCommand: LeanCommand = {
  command: 'copy <source> <destination>',
  aliases: ['cp'],
  describe: 'Copy a container (a running one frozen for the copy; with its snapshots) or a snapshot (NAME/SNAP) to a new container',
  positionals: { source: 'the container, or NAME/SNAP', destination: 'the new container' },
  options: {
    storage: { type: 'string', short: 's', describe: 'the pool of the copy (default: the source\'s)' },
    'instance-only': { type: 'boolean', describe: 'leave the snapshots out' },
  },
  run: async (argv) => {
    const { copyInstance } = await import('../../storage/copy.js');
    const cfg = await copyInstance(context(), String(argv.source), String(argv.destination), { storage: argv.storage as string | undefined, instanceOnly: argv['instance-only'] as boolean | undefined });
    console.log(`Copied to ${cfg.name}`);
  },
};
export default yargsCommand(copyCommand);
