#!/usr/bin/env node
// A small static server for the browser example and the browser tests: serves the repository
// root on 127.0.0.1 with the right types (application/wasm, text/javascript, text/html),
// HEAD and single Range requests (so FetchFile can be demonstrated over real HTTP), and a
// generated test file, /__data/pages-<N>.bin (N pages; page i starts with "page i of N"
// and is filled with the byte i & 0xff). No dependencies: `npm run demo` runs it.
//
//   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--delay ms] [--verbose]
//   (--delay slows the /__data/ answers, to watch FetchFile's pages arrive)
//
// Also a module: `startServer({ root, port: 0 })` resolves to { url, port, close, log }.
import http from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const EXAMPLE_PATH = '/examples/browser/';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.wat': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.bin': 'application/octet-stream',
};

/** The generated test file: `pages` pages of 4096 bytes. */
export function dataFile(pages) {
  const b = new Uint8Array(pages * 4096);
  for (let i = 0; i < pages; i++) {
    b.fill(i & 0xff, i * 4096, (i + 1) * 4096);
    const label = new TextEncoder().encode(`page ${i} of ${pages}\n`);
    b.set(label, i * 4096);
  }
  return b;
}

/**
 * Parse a Range header against a size. Returns null (serve the whole body), 'bad' (416),
 * or { start, end } (inclusive). Only one range is honoured; a list is answered in full,
 * which RFC 9110 allows.
 */
export function parseRange(header, size) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return header.includes(',') ? null : 'bad';
  let start, end;
  if (m[1] === '') {
    if (m[2] === '') return 'bad';
    const n = Number(m[2]); // suffix: the last n bytes
    if (n === 0) return 'bad';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'bad';
  return { start, end };
}

/** Start the server. `port: 0` picks a free port. */
export function startServer({ root = ROOT, port = 0, host = '127.0.0.1', delay = 0, quiet = true } = {}) {
  const log = []; // every request: { method, path, range, status }
  const dataCache = new Map();
  const server = http.createServer(async (req, res) => {
    const entry = { method: req.method, path: '', range: req.headers.range ?? null, status: 0 };
    log.push(entry);
    const finish = (status, headers, body) => {
      entry.status = status;
      if (!quiet) console.log(`${req.method} ${entry.path} ${entry.range ?? ''} ${status}`);
      res.writeHead(status, { 'Cache-Control': 'no-cache', ...headers });
      if (req.method === 'HEAD' || body === undefined) res.end();
      else if (typeof body === 'function') body(res);
      else res.end(body);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      let rel;
      try { rel = decodeURIComponent(url.pathname); } catch { return finish(400, {}, 'bad path'); }
      entry.path = rel;
      if (req.method !== 'GET' && req.method !== 'HEAD') return finish(405, { Allow: 'GET, HEAD' }, 'GET or HEAD only');
      if (delay > 0 && rel.startsWith('/__data/')) await new Promise((r) => setTimeout(r, delay));

      // The generated test file.
      const data = /^\/__data\/pages-(\d{1,5})\.bin$/.exec(rel);
      if (data) {
        const pages = Number(data[1]);
        if (pages > 16384) return finish(404, {}, 'at most 16384 pages');
        if (!dataCache.has(pages)) dataCache.set(pages, dataFile(pages));
        return sendBytes(req, dataCache.get(pages), TYPES['.bin'], finish);
      }

      // The root has no page of its own: send the browser to the example.
      if (rel === '/') return finish(302, { Location: EXAMPLE_PATH }, undefined);

      const file = path.resolve(root, '.' + path.posix.normalize(rel));
      if (file !== root && !file.startsWith(root + path.sep)) return finish(403, {}, 'outside the served root');
      let st;
      try { st = await stat(file); } catch { return finish(404, { 'Content-Type': 'text/plain' }, `not found: ${rel}`); }
      if (st.isDirectory()) {
        if (!rel.endsWith('/')) return finish(301, { Location: url.pathname + '/' + url.search }, undefined);
        const index = path.join(file, 'index.html');
        try { st = await stat(index); } catch { return finish(404, {}, `no index.html in ${rel}`); }
        return sendFile(req, index, st, finish);
      }
      return sendFile(req, file, st, finish);
    } catch (e) {
      if (!res.headersSent) finish(500, {}, String(e));
      else res.destroy();
    }
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        url: `http://${host}:${addr.port}`,
        port: addr.port,
        log,
        server,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

function typeOf(file) {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

function rangeHeaders(req, size, finish, type) {
  const r = parseRange(req.headers.range, size);
  if (r === 'bad') {
    finish(416, { 'Content-Range': `bytes */${size}`, 'Accept-Ranges': 'bytes' }, undefined);
    return null;
  }
  const common = { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Content-Range, Content-Length, Accept-Ranges' };
  if (r === null) return { status: 200, start: 0, end: size - 1, headers: { ...common, 'Content-Length': String(size) } };
  return { status: 206, start: r.start, end: r.end, headers: { ...common, 'Content-Length': String(r.end - r.start + 1),
    'Content-Range': `bytes ${r.start}-${r.end}/${size}` } };
}

function sendFile(req, file, st, finish) {
  const h = rangeHeaders(req, st.size, finish, typeOf(file));
  if (!h) return;
  h.headers['Last-Modified'] = st.mtime.toUTCString();
  if (st.size === 0) return finish(h.status, h.headers, '');
  finish(h.status, h.headers, (res) => {
    const s = createReadStream(file, { start: h.start, end: h.end });
    s.on('error', () => res.destroy());
    s.pipe(res);
  });
}

function sendBytes(req, bytes, type, finish) {
  const h = rangeHeaders(req, bytes.length, finish, type);
  if (!h) return;
  finish(h.status, h.headers, Buffer.from(bytes.buffer, bytes.byteOffset + h.start, h.end - h.start + 1));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
  };
  const explicit = process.argv.includes('--port') || process.env.PORT !== undefined;
  const port = Number(arg('--port', process.env.PORT ?? 8080));
  const host = arg('--host', '127.0.0.1');
  const delay = Number(arg('--delay', 0));
  const opts = { port, host, delay, quiet: !process.argv.includes('--verbose') };
  // 8080 taken and no port asked for: any free port will do.
  startServer(opts).catch((e) => {
    if (e.code !== 'EADDRINUSE' || explicit) throw e;
    return startServer({ ...opts, port: 0 });
  }).then((s) => {
    // One URL, the one that shows something (the root redirects to it as well).
    console.log(`wasm-mmu demo: ${s.url}${EXAMPLE_PATH}  (Ctrl-C stops it)`);
  }, (e) => {
    console.error(e.code === 'EADDRINUSE' ? `port ${port} is busy: try --port ${port + 1}` : e);
    process.exit(1);
  });
}
