// Types for scripts/serve.mjs (used by tests/browser/).
export interface ServedRequest { method: string; path: string; range: string | null; status: number }
export interface Served {
  url: string;
  port: number;
  log: ServedRequest[];
  server: import('node:http').Server;
  close(): Promise<void>;
}
export const EXAMPLE_PATH: string;
export function dataFile(pages: number): Uint8Array;
export function parseRange(header: string | undefined, size: number): null | 'bad' | { start: number; end: number };
export function startServer(opts?: { root?: string; port?: number; host?: string; delay?: number; quiet?: boolean }): Promise<Served>;
