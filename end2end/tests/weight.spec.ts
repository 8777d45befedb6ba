// The panel's first-load weight: every page, opened in a fresh browser context (empty cache), must
// transfer at most BUDGET bytes in all, headers included, as Chromium's network log counts them:
// the sign-in page signed out, every other page signed in. Each page loads its own group's bundle
// (`/pkg/{version}/arch-{group}.wasm` and `.js`, app::bundle_of) and the shared `arch.css`, all
// brotli-compressed from versioned, immutable URLs. Prints the breakdown of every page
// (docs/performance.md, "Panel weight").
import { BrowserContext, APIRequestContext } from '@playwright/test';
import { test, expect, hydrated, url, restClient, sampleNodeAndUser } from './support';

const BUDGET = 250_000;

type Entry = {
  url: string;
  status?: number;
  encoding?: string;
  cacheControl?: string;
  bytes: number;
  finished: boolean;
};

/** Opens `path` in `context` (a fresh one: nothing cached) and returns what it transferred. */
async function firstLoad(context: BrowserContext, path: string): Promise<Entry[]> {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const log = new Map<string, Entry>();
  const entry = (id: string) => {
    let e = log.get(id);
    if (!e) {
      e = { url: '', bytes: 0, finished: false };
      log.set(id, e);
    }
    return e;
  };
  cdp.on('Network.requestWillBeSent', (ev) => {
    entry(ev.requestId).url = ev.request.url;
  });
  cdp.on('Network.responseReceived', (ev) => {
    const e = entry(ev.requestId);
    const headers = Object.fromEntries(
      Object.entries(ev.response.headers).map(([k, v]) => [k.toLowerCase(), String(v)]),
    );
    e.url = ev.response.url;
    e.status = ev.response.status;
    e.encoding = headers['content-encoding'];
    e.cacheControl = headers['cache-control'];
  });
  // Streams that never finish (the live updates) count what they received so far.
  cdp.on('Network.dataReceived', (ev) => {
    const e = entry(ev.requestId);
    if (!e.finished) e.bytes += ev.encodedDataLength;
  });
  cdp.on('Network.loadingFinished', (ev) => {
    const e = entry(ev.requestId);
    e.finished = true;
    e.bytes = ev.encodedDataLength;
  });
  await page.goto(url(path));
  await hydrated(page);
  // Let anything the hydrated page starts on its own (live updates, data) arrive.
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.waitForTimeout(1_000);
  await page.close();
  return [...log.values()].filter((e) => e.url.startsWith('http'));
}

const pathOf = (u: string) => new URL(u).pathname;

test.describe('first load', () => {
  let api: APIRequestContext;
  let nodeId: number;
  let userId: number;
  let remove: (() => Promise<void>) | undefined;

  test.beforeAll(async ({ browser }) => {
    api = await restClient(browser, 'weight-e2e', 'owner');
    ({ nodeId, userId, remove } = await sampleNodeAndUser(api, 'weight', 65001));
  });

  test.afterAll(async () => {
    await remove?.();
    await api?.dispose();
  });

  test(`every page transfers at most ${BUDGET} bytes on first load`, async ({ browser }) => {
    const pages: [string, string, boolean][] = [
      ['/login', 'public', false],
      ['/', 'dashboard', true],
      ['/nodes', 'nodes', true],
      [`/nodes/${nodeId}`, 'dashboard', true],
      ['/users', 'users', true],
      [`/users/${userId}`, 'user', true],
      ['/settings', 'admin', true],
      ['/tokens', 'admin', true],
      ['/admins', 'admin', true],
      ['/audit', 'admin', true],
    ];
    const totals: string[] = [];
    for (const [path, bundle, signedIn] of pages) {
      const context = await browser.newContext({
        storageState: signedIn ? 'test-results/.auth/admin.json' : { cookies: [], origins: [] },
      });
      try {
        const entries = await firstLoad(context, path);
        const total = entries.reduce((sum, e) => sum + e.bytes, 0);
        const lines = entries
          .map((e) => `${String(e.bytes).padStart(9)}  ${e.status ?? '---'} ${(e.encoding ?? 'identity').padEnd(8)} ${pathOf(e.url)}${e.finished ? '' : ' (open)'}`)
          .join('\n');
        console.log(`first load of ${path}: ${total} bytes transferred (budget ${BUDGET})\n${lines}`);
        totals.push(`${String(total).padStart(9)}  ${path}`);

        // The page's own bundle and the stylesheet, compressed, from versioned immutable URLs.
        for (const file of [`arch-${bundle}.wasm`, `arch-${bundle}.js`, 'arch.css']) {
          const hits = entries.filter((e) => {
            const parts = pathOf(e.url).split('/');
            return parts.length === 4 && parts[1] === 'pkg' && /^[0-9a-f]{16}$/.test(parts[2]) && parts[3] === file;
          });
          expect(hits.length, `${path}: ${file} loaded from /pkg/{version}/`).toBeGreaterThan(0);
          for (const e of hits) {
            expect(e.status, `${path}: ${file} status`).toBe(200);
            expect(e.encoding, `${path}: ${file} content-encoding`).toBe('br');
            expect(e.cacheControl, `${path}: ${file} cache-control`).toBe('public, max-age=31536000, immutable');
          }
        }
        // No other group's code.
        const wasm = entries.filter((e) => pathOf(e.url).endsWith('.wasm')).map((e) => pathOf(e.url).split('/').pop());
        expect(wasm, `${path}: the bundles it loaded`).toEqual([`arch-${bundle}.wasm`]);
        expect(total, `${path}: bytes transferred on first load`).toBeLessThanOrEqual(BUDGET);
      } finally {
        await context.close();
      }
    }
    console.log(`first load of every page (budget ${BUDGET}):\n${totals.join('\n')}`);
  });
});
