import type { RemoteServer } from '../../client/connection.js';

/** Runs FN against remote NAME and closes the connection after (its keep-alive sockets would hold the process). */
export async function withRemote<T>(name: string, fn: (server: RemoteServer) => Promise<T>): Promise<T> {
  const { RemoteServer } = await import('../../client/connection.js');
  const server = RemoteServer.open(name);
  try {
    return await fn(server);
  } finally {
    server.close();
  }
}

export const instancePath = (name: string) => `/1.0/instances/${encodeURIComponent(name)}`;
