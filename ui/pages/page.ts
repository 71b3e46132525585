/** What every page is: its element, filled when entered, and a cleanup when left. */
export interface Page {
  el: HTMLElement;
  enter(): Promise<void>;
  leave?(): void;
}

export interface Session {
  name: string;
  restricted: boolean;
  /** what a restricted session is limited to, in words */
  scope?: string;
  extensions: string[];
}
