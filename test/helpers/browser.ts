import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's chromium, headless, driven by playwright-core (no browser download): for the
 * dashboard's tests and bench. One browser per file; each login gets its own context (its own
 * cookies). Every request a page makes and every console error is recorded, so a test can say
 * that nothing left loopback and nothing went wrong in the page.
 */

export const CHROMIUM = process.env.TSLXC_CHROMIUM || '/usr/bin/chromium';

export const hasChromium = () => fs.existsSync(CHROMIUM);

export class Dashboard {
  readonly requests: string[] = [];
  readonly errors: string[] = [];
  /** Lifecycle events as pages received them from /1.0/events: the server's timestamp, and when they arrived. */
  readonly events: Array<{ action: string; source: string; timestamp: string; receivedAt: number }> = [];
  private readonly contexts: BrowserContext[] = [];

  private constructor(
    readonly browser: Browser,
    readonly base: string,
  ) {}

  /** `base`: https://ADDR:PORT of the server under test. */
  static async launch(base: string): Promise<Dashboard> {
    // playwright starts chromium with a fresh --user-data-dir of its own (it refuses one in args)
    // and removes it at close.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    return new Dashboard(browser, base);
  }

  /** A fresh context (no cookies) and its page, recorded. */
  async page(viewport = { width: 1280, height: 800 }): Promise<Page> {
    const context = await this.browser.newContext({ ignoreHTTPSErrors: true, viewport });
    this.contexts.push(context);
    const page = await context.newPage();
    // Chromium aborts a navigation when the host's addresses change (net::ERR_NETWORK_CHANGED): on
    // a host where other tests make veths and bridges, a navigation is tried again.
    const goto = page.goto.bind(page);
    page.goto = async (url, opts) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await goto(url, opts);
        } catch (err) {
          if (attempt >= 4 || !/ERR_NETWORK_CHANGED/.test(String(err))) throw err;
        }
      }
    };
    page.on('request', (r) => this.requests.push(r.url()));
    page.on('websocket', (ws) => {
      this.requests.push(ws.url());
      if (!new URL(ws.url()).pathname.endsWith('/1.0/events')) return;
      ws.on('framereceived', (f) => {
        try {
          const e = JSON.parse(String(f.payload)) as { type: string; timestamp: string; metadata: { action?: string; source?: string } };
          if (e.type === 'lifecycle')
            this.events.push({ action: e.metadata.action ?? '', source: e.metadata.source ?? '', timestamp: e.timestamp, receivedAt: Date.now() });
        } catch {
          // not an event
        }
      });
    });
    page.on('console', (m) => {
      if (m.type() === 'error') this.errors.push(m.text());
    });
    page.on('pageerror', (e) => this.errors.push(e.message));
    return page;
  }

  async close(): Promise<void> {
    for (const c of this.contexts) await c.close().catch(() => {});
    await this.browser.close().catch(() => {});
  }
}
