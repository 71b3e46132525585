import { renderValue } from '../ui/format.js';
import { instancePath, withRemote } from './connect.js';

interface InstanceObject {
  name: string;
  architecture?: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles: string[];
  ephemeral?: boolean;
  stateful?: boolean;
  description?: string;
}

/** `config show REMOTE:N`: the instance's own config (or --expanded, with its profiles'), as YAML or JSON. */
export async function remoteConfigShow(remote: string, name: string, expanded: boolean, format: 'json' | 'yaml'): Promise<string> {
  const inst = await withRemote(remote, (s) =>
    s.get<InstanceObject & { expanded_config?: Record<string, string>; expanded_devices?: Record<string, Record<string, string>> }>(instancePath(name)),
  );
  const doc = {
    name: inst.name,
    profiles: inst.profiles ?? [],
    config: (expanded ? inst.expanded_config : inst.config) ?? {},
    devices: (expanded ? inst.expanded_devices : inst.devices) ?? {},
  };
  return renderValue(doc, format);
}

/** `config set|unset REMOTE:N`: GET, change the config, PUT with If-Match (a concurrent change is refused, not lost). */
export async function remoteConfigEdit(remote: string, name: string, edit: (config: Record<string, string>) => void): Promise<void> {
  await withRemote(remote, async (s) => {
    const { envelope, headers } = await s.call('GET', instancePath(name));
    const inst = envelope.metadata as InstanceObject;
    const config = { ...inst.config };
    edit(config);
    const body = {
      architecture: inst.architecture,
      config,
      devices: inst.devices ?? {},
      profiles: inst.profiles ?? [],
      ephemeral: !!inst.ephemeral,
      stateful: !!inst.stateful,
      description: inst.description ?? '',
    };
    await s.run('PUT', instancePath(name), body, typeof headers.etag === 'string' ? { 'if-match': headers.etag } : {});
  });
}
