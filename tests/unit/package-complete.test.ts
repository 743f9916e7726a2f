// Issue 18 item 8: the published package is complete for a reader — every file the README
// names that exists in the repository ships in the package — and `npm run demo`
// (scripts/serve.mjs) prints one URL, which answers 200 (the root redirects to it).
import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('package completeness and the demo (issue 18 item 8)', () => {
  it('every repository file or folder the README names is in the npm package', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const files = new Set<string>((JSON.parse(r.stdout)[0].files as { path: string }[]).map((f) => f.path));
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const named = [...readme.matchAll(/`((?:examples|bench|tests|src|assembly|scripts)\/[\w./-]*\.(?:md|html|js|css)|examples\/browser\/)`/g)]
      .map((m) => m[1]);
    expect(named).toEqual(expect.arrayContaining(['examples/browser/README.md', 'bench/README.md', 'tests/property/README.md']));
    for (const p of named) {
      if (!existsSync(`${ROOT}${p}`)) continue; // not a repository path
      if (p.endsWith('/')) expect([...files].some((f) => f.startsWith(p)), p).toBe(true);
      else expect(files.has(p), p).toBe(true);
    }
    // The design document the README names ships, and every relative link of the README
    // (markdown `[text](path)`) resolves inside the package.
    const topLevel = [...readme.matchAll(/`([A-Z][\w-]*\.md)`/g)].map((m) => m[1]);
    expect(topLevel).toContain('DESIGN.md');
    for (const p of topLevel) if (existsSync(`${ROOT}${p}`)) expect(files.has(p), p).toBe(true);
    const readmeLinks = [...readme.matchAll(/\]\(((?!https?:|#)[^)\s]+)\)/g)].map((m) => m[1]);
    expect(readmeLinks).toContain('DESIGN.md');
    for (const link of readmeLinks) {
      const p = new URL(link, 'file:///pkg/').pathname.slice('/pkg/'.length);
      expect(files.has(p) || [...files].some((f) => f.startsWith(p.endsWith('/') ? p : `${p}/`)), link).toBe(true);
    }
    // DESIGN.md's own file references (documents and pages) ship as well.
    const design = readFileSync(`${ROOT}DESIGN.md`, 'utf8');
    const designNamed = [...design.matchAll(/`((?:examples|bench|tests|src|assembly|scripts)\/[\w./-]*\.(?:md|html|js|css))`/g)].map((m) => m[1]);
    for (const p of designNamed) if (existsSync(`${ROOT}${p}`)) expect(files.has(p), p).toBe(true);
    // The links of the shipped example's README resolve inside the package too.
    const example = readFileSync(`${ROOT}examples/browser/README.md`, 'utf8');
    const links = [...example.matchAll(/\]\(((?!https?:|#)[^)\s]+)\)/g)].map((m) => m[1]);
    expect(links).toContain('../../tests/browser/harness.html');
    for (const link of links) {
      const p = new URL(link, 'file:///pkg/examples/browser/').pathname.slice('/pkg/'.length);
      expect(files.has(p) || [...files].some((f) => f.startsWith(p.endsWith('/') ? p : `${p}/`)), link).toBe(true);
    }
    // The example's page and script ship with the build it imports.
    for (const p of ['examples/browser/index.html', 'examples/browser/main.js', 'dist/index.js', 'build/release.wasm']) {
      expect(files.has(p), p).toBe(true);
    }
  });

  it('npm run demo prints exactly one URL, and it answers 200; the root redirects to it', async () => {
    const child = spawn(process.execPath, ['scripts/serve.mjs', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill(), 20_000); // bounded whatever happens
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(); });
        child.on('exit', () => reject(new Error(`serve.mjs exited: ${out}`)));
      });
      const urls = out.match(/https?:\/\/\S+/g) ?? [];
      expect(urls).toHaveLength(1);
      const page = await fetch(urls[0]);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      const root = await fetch(new URL('/', urls[0]), { redirect: 'manual' });
      expect(root.status).toBe(302);
      expect(new URL(root.headers.get('location')!, urls[0]).href).toBe(urls[0]);
    } finally {
      clearTimeout(killer);
      child.kill();
    }
  });
});
