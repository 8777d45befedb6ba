// The panel's first-load weight: a signed-in visit of the users page in a fresh browser context
// (empty cache) must transfer at most BUDGET bytes in all, headers included, as Chromium's
// network log counts them. The goal is 250 000 bytes; the bundle does not meet it yet (388 850
// measured, docs/performance.md "Panel weight"), so the budget is what it meets today plus a
// little room, to catch any growth; the bundle (wasm, glue, stylesheet) must arrive brotli-compressed
// from its versioned, immutable URLs. Prints the breakdown (docs/performance.md, "Panel weight").
import { test, expect, open } from './support';

const BUDGET = 400_000;

type Entry = {
  url: string;
  status?: number;
  encoding?: string;
  cacheControl?: string;
  bytes: number;
  finished: boolean;
};

test(`first load of the users page transfers at most ${BUDGET} bytes`, async ({ page }) => {
  const cdp = await page.context().newCDPSession(page);
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

  await open(page, '/users');
  // Let anything the hydrated page starts on its own (live updates, data) arrive.
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.waitForTimeout(1_000);

  const entries = [...log.values()].filter((e) => e.url.startsWith('http'));
  const total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const path = (u: string) => new URL(u).pathname;
  const lines = entries
    .map((e) => `${String(e.bytes).padStart(9)}  ${e.status ?? '---'} ${(e.encoding ?? 'identity').padEnd(8)} ${path(e.url)}${e.finished ? '' : ' (open)'}`)
    .join('\n');
  console.log(`first load of /users: ${total} bytes transferred (budget ${BUDGET})\n${lines}`);

  const version = /^\/pkg\/([0-9a-f]{16})\/arch\.wasm$/;
  for (const file of ['arch.wasm', 'arch.js', 'arch.css']) {
    const hits = entries.filter((e) => {
      const parts = path(e.url).split('/');
      return parts.length === 4 && parts[1] === 'pkg' && parts[3] === file;
    });
    expect(hits.length, `${file} loaded from /pkg/{version}/`).toBeGreaterThan(0);
    for (const e of hits) {
      expect(e.status, `${file} status`).toBe(200);
      expect(e.encoding, `${file} content-encoding`).toBe('br');
      expect(e.cacheControl, `${file} cache-control`).toBe('public, max-age=31536000, immutable');
    }
  }
  expect(entries.some((e) => version.test(path(e.url))), 'the wasm URL carries the bundle version').toBe(true);
  expect(total, 'bytes transferred on first load').toBeLessThanOrEqual(BUDGET);
});
