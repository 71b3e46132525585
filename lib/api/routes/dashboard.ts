import { allowsInstance } from '../access.js';
import { sync, type ApiRequest, type ApiResult, type Route } from '../types.js';

/**
 * What the dashboard shows that LXD's objects lack: the image tree (parents, children, layers and
 * their sizes, the containers of each node) and the host's CPUs, memory and storage in one answer.
 */

export interface ImageTreeNode {
  fingerprint: string;
  aliases: string[];
  description: string;
  size?: number;
  /** `size` is the node's own layer (what it adds to its parent) */
  layer?: boolean;
  containers: string[];
  children: ImageTreeNode[];
  orphan?: boolean;
}

/** GET /1.0/tslxc/image-tree: the forest of `tslxc image tree --format json`; a restricted caller sees only its containers. */
async function imageTree(req: ApiRequest): Promise<ApiResult> {
  const { imageTree } = await import('../../image/manage.js');
  const visible = (nodes: ImageTreeNode[]): ImageTreeNode[] =>
    nodes.map((n) => ({ ...n, containers: n.containers.filter((c) => allowsInstance(req.identity, c)), children: visible(n.children) }));
  return sync(visible(imageTree(req.ctx.paths)));
}

/** GET /1.0/tslxc/host: the host report of `tslxc host`; a restricted caller gets CPUs and memory only. */
async function host(req: ApiRequest): Promise<ApiResult> {
  const { hostReport } = await import('../../admin/report.js');
  const r = await hostReport(req.ctx.paths);
  if (req.identity.instances !== undefined) return sync({ hostname: r.hostname, cpu: r.cpu, memory: r.memory });
  return sync({
    hostname: r.hostname,
    kernel: r.kernel,
    distribution: r.distribution,
    architecture: r.architecture,
    cpu: r.cpu,
    memory: r.memory,
    storage: r.storage,
  });
}

export const routes: Route[] = [
  { method: 'GET', path: '/1.0/tslxc/image-tree', handler: imageTree },
  { method: 'GET', path: '/1.0/tslxc/host', handler: host },
];

export const extensions: string[] = ['tslxc_image_tree'];
