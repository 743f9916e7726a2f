// Issue 18 item 4: FetchFile against a real HTTP server on 127.0.0.1 that stalls, drops and
// lies. Every request has its own deadline (timeoutMs) and a bounded retry with backoff; a
// request that timed out or was dropped fails only its own access (SIGBUS, R1.1 step 4, with
// the HTTP failure as cause) and never poisons later ones; a Content-Range total that is not
// the file's size is an error naming both; a network error names the URL. The server stops
// by itself (a 60 s unref'd timer) even if a test does not close it.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createMmu, FetchFile, BusError, PAGE_SIZE, PROT_READ, MAP_PRIVATE, type Mmu } from '../../src/index.js';

const PAGES = 16;
const DATA = new Uint8Array(PAGES * PAGE_SIZE).map((_, i) => (Math.floor(i / PAGE_SIZE) + 1) & 0xff);
type Behaviour = 'ok' | 'stall' | 'stall-body' | 'drop' | 'lie-total' | '500';

let server: Server;
let base = '';
const plan: Behaviour[] = []; // what the next GETs do; then 'ok'
const seen: string[] = [];
const sockets = new Set<Socket>();

function answer(res: ServerResponse, range: string | undefined, how: Behaviour): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
  const start = m ? Number(m[1]) : 0, end = m ? Math.min(Number(m[2]), DATA.length - 1) : DATA.length - 1;
  const body = DATA.subarray(start, end + 1);
  switch (how) {
    case 'stall': return; // never answers
    case 'drop': res.socket?.destroy(); return;
    case '500': res.writeHead(500).end('busy'); return;
    case 'stall-body':
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${DATA.length}`, 'Content-Length': body.length });
      res.write(body.subarray(0, 100)); // then nothing more
      return;
    case 'lie-total':
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${DATA.length * 2}`, 'Content-Length': body.length }).end(body);
      return;
    default:
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${DATA.length}`, 'Content-Length': body.length }).end(body);
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(200, { 'Content-Length': DATA.length }).end(); return; }
    const how = plan.shift() ?? 'ok';
    seen.push(how);
    answer(res, req.headers.range, how);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  setTimeout(() => stop(), 60_000).unref(); // bounded in time whatever happens
});
function stop(): void { for (const s of sockets) s.destroy(); server.close(); }
afterAll(stop);
beforeEach(() => { plan.length = 0; seen.length = 0; });

async function mapped(ff: FetchFile): Promise<{ mmu: Mmu; read: (page: number) => Promise<number> }> {
  const mmu = await createMmu({ ramBytes: 16 << 20, readaheadBytes: PAGE_SIZE });
  const mm = mmu.createAddressSpace();
  const file = mmu.openFile(ff);
  const va = mm.mmap({ length: PAGES * PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file });
  return { mmu, read: async (page) => (await mm.readAsync(va + page * PAGE_SIZE, 1))[0] };
}
async function busError(p: Promise<unknown>): Promise<BusError> {
  let err: unknown;
  try { await p; } catch (e) { err = e; }
  expect(err).toBeInstanceOf(BusError);
  expect((err as BusError).code).toBe('BUS_ADRERR');
  return err as BusError;
}

describe('FetchFile against a server that stalls, drops and lies (issue 18 item 4)', () => {
  it('R1.1: a stalled request times out (timeoutMs) as SIGBUS naming the URL; the next access is not poisoned', async () => {
    const ff = new FetchFile(`${base}/f.bin`, { size: DATA.length, timeoutMs: 300, retries: 0 });
    const { mmu, read } = await mapped(ff);
    plan.push('stall');
    const e = await busError(read(3));
    expect(e.message).toMatch(new RegExp(`GET \\(bytes=12288-16383\\) ${base}/f.bin: no complete answer within 300 ms`));
    expect(await read(3)).toBe(4); // a fresh request, a fresh deadline
    expect(await read(5)).toBe(6);
    expect(seen).toEqual(['stall', 'ok', 'ok']);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a body that stalls halfway is cut by the same deadline', async () => {
    const ff = new FetchFile(`${base}/f.bin`, { size: DATA.length, timeoutMs: 300, retries: 0 });
    const { mmu, read } = await mapped(ff);
    plan.push('stall-body');
    expect((await busError(read(1))).message).toMatch(/no complete answer within 300 ms/);
    expect(await read(1)).toBe(2);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a dropped connection and HTTP 500 are retried with backoff; the access succeeds', async () => {
    const ff = new FetchFile(`${base}/f.bin`, { size: DATA.length, timeoutMs: 2000, retries: 2, retryDelayMs: 20 });
    const { mmu, read } = await mapped(ff);
    plan.push('drop', '500');
    expect(await read(7)).toBe(8);
    expect(seen).toEqual(['drop', '500', 'ok']);
    expect(ff.requests).toBe(1); // one logical request, retried inside
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('retries are bounded: HTTP 500 on every attempt is SIGBUS saying how many attempts were made', async () => {
    const ff = new FetchFile(`${base}/f.bin`, { size: DATA.length, retries: 2, retryDelayMs: 10 });
    const { mmu, read } = await mapped(ff);
    plan.push('500', '500', '500');
    const e = await busError(read(2));
    expect(e.message).toMatch(/HTTP 500 \(after 3 attempts\)/);
    expect(seen).toEqual(['500', '500', '500']);
    expect(await read(2)).toBe(3);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('a Content-Range whose total is not the file size is an error naming both sizes (not retried)', async () => {
    const ff = new FetchFile(`${base}/f.bin`, { size: DATA.length, retryDelayMs: 10 });
    const { mmu, read } = await mapped(ff);
    plan.push('lie-total');
    const e = await busError(read(4));
    expect(e.message).toMatch(new RegExp(`Content-Range says the file has ${DATA.length * 2} bytes, but it was opened with ${DATA.length} bytes`));
    expect(seen).toEqual(['lie-total']);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('an unreachable server: the error names the URL (not a bare "fetch failed"); open() too', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const url = `http://127.0.0.1:${port}/gone.bin`;
    const ff = new FetchFile(url, { size: DATA.length, retries: 1, retryDelayMs: 10 });
    const { mmu, read } = await mapped(ff);
    const e = await busError(read(0));
    expect(e.message).toContain(url);
    expect(e.message).toMatch(/after 2 attempts/);
    let err: unknown;
    try { await FetchFile.open(url, { retries: 0 }); } catch (x) { err = x; }
    expect(String((err as Error).message)).toContain(url);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('bad limits are RangeErrors naming the option', () => {
    expect(() => new FetchFile(`${base}/f.bin`, { size: 1, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new FetchFile(`${base}/f.bin`, { size: 1, retries: -1 })).toThrow(/retries/);
    expect(() => new FetchFile(`${base}/f.bin`, { size: 1, timeoutMs: '300' as unknown as number })).toThrow(/got the string "300"/);
  });
});
