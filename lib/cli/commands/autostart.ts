import { context } from '../common.js';
import { defineCommand } from '../define.js';

/** `tslxc autostart`: at host boot, start the containers with boot.autostart=true (README: systemd unit). */
export default defineCommand({
  command: 'autostart',
  describe: 'Start containers with boot.autostart=true, by boot.autostart.priority, waiting boot.autostart.delay after each',
  positionals: {},
  options: { list: { type: 'boolean', describe: 'only show the order, start nothing' } },
  run: async (argv) => {
    const { autostartAll, autostartPlan } = await import('../../instance/autostart.js');
    const ctx = context();
    if (argv.list) {
      for (const p of autostartPlan(ctx)) console.log(`${p.name}\tpriority ${p.priority}\tdelay ${p.delaySeconds}s`);
      return;
    }
    const out = await autostartAll(ctx, { onEvent: (o) => console.log(o.result === 'failed' ? `${o.name}: failed: ${o.error}` : `${o.name}: ${o.result}`) });
    const failed = out.filter((o) => o.result === 'failed');
    if (failed.length) {
      process.stderr.write(`Error: ${failed.length} of ${out.length} autostart container(s) did not start: ${failed.map((f) => f.name).join(', ')}\n`);
      process.exitCode = 1;
    }
  },
});
