/** An image's metadata.yaml, in the shape of LXD's (architecture, creation_date, properties) plus tslxc's own keys. */
export interface ImageMetadata {
  architecture: string;
  creation_date: number;
  /** LXD's instance file templates: path in the container → {when, template, properties} */
  templates?: Record<string, { when?: string[]; template: string; create_only?: boolean; properties?: Record<string, string> }>;
  properties: { os: string; release: string; description: string; name?: string; [k: string]: string | undefined };
  tslxc?: {
    init?: string[];
    stop_signal?: string;
    environment?: Record<string, string>;
    recipe_key?: string;
    /** fingerprint of the image this one was built or published from */
    parent?: string;
    /** rootfs/ holds only the difference from the parent, as an overlayfs upper dir (layers.ts) */
    layer?: boolean;
    /** bytes the image takes in the store */
    size?: number;
    /** how it came to be: build, import, publish */
    source?: string;
    /** what LXD's API keeps of an image and tslxc only stores (lib/image/manage.ts ImageSettings) */
    lxd?: { public: boolean; auto_update: boolean; expires_at: string; profiles: string[] };
    /** imported images keep their original files (images/<fp>/original/) so export gives them back byte for byte */
    original?: { kind: 'unified' | 'split'; files: string[] };
  };
}
