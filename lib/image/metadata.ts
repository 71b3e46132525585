/** An image's metadata.yaml, in the shape of LXD's (architecture, creation_date, properties) plus tslxc's own keys. */
export interface ImageMetadata {
  architecture: string;
  creation_date: number;
  properties: { os: string; release: string; description: string; name?: string; [k: string]: string | undefined };
  tslxc?: {
    init?: string[];
    stop_signal?: string;
    environment?: Record<string, string>;
    recipe_key?: string;
  };
}
