import { existsSync } from 'node:fs';
import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';

/** The system Chromium (Debian `chromium` package); playwright-core ships no browser of its own. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** Whether the system Chromium is installed. Suites should fail (not skip) when it is not. */
export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export interface TestBrowser {
  readonly browser: Browser;
  /** A page in its own fresh context (no shared cookies or cache between pages). */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  /** Closes every context opened through {@link TestBrowser.newPage}, then the browser. */
  close(): Promise<void>;
}

/**
 * Launches headless system Chromium. Throws with install instructions when Chromium is missing, so a
 * browser suite fails loudly instead of silently passing on a machine without a browser.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!chromiumAvailable()) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}; browser tests need it. Install it with: apt-get install -y chromium`,
    );
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS });
  return {
    browser,
    async newPage(options) {
      const context = await browser.newContext(options);
      return context.newPage();
    },
    async close() {
      await Promise.all(browser.contexts().map((context) => context.close()));
      await browser.close();
    },
  };
}
