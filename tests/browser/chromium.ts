// Shared by the browser tests: find Debian's Chromium, launch it headless the way
// TOOLCHAIN.md says (the networking flags keep it off the closed network, a fresh profile
// each time), and serve the repository with scripts/serve.mjs on a free 127.0.0.1 port.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type Served } from '../../scripts/serve.mjs';

export type { Served };

/** The Chromium executable, or null when none is installed (then, and only then, skip). */
export function findChromium(): string | null {
  const env = process.env.CHROMIUM_PATH;
  if (env) return env; // explicit: a wrong path must fail, not skip
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  try {
    const p = execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim();
    return p || null;
  } catch {
    return null;
  }
}

export const CHROMIUM = findChromium();

export const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser { context: BrowserContext; page: Page; errors: string[]; close(): Promise<void> }

/** Launch Chromium with a fresh --user-data-dir (Playwright passes it for a persistent context). */
export async function launch(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('no chromium');
  const profile = mkdtempSync(path.join(tmpdir(), 'wasm-mmu-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS, viewport: { width: 1150, height: 1000 },
  });
  const page = context.pages()[0] ?? await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return {
    context, page, errors,
    close: async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); },
  };
}

export function serve(): Promise<Served> {
  return startServer({ port: 0, host: '127.0.0.1' });
}
