// The dashboard (`/`), against the real processes: signing in lands on it; its numbers are those
// of `GET /v1/dashboard`; users created and disabled here move the counts live; an arch-node
// started here shows healthy and in the last pushes; real traffic through the direct mode (a real
// sslocal and curl against a local web server that counts every byte it exchanged) grows
// "traffic today", "this month" and the chart by exactly those bytes, without a reload; axe finds
// nothing; without JavaScript the page shows the same numbers.
import { spawn, execFile, ChildProcess } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net, { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { request, APIRequestContext, Page } from '@playwright/test';
import { test, expect, open, env, url, hydrated, expectAccessible, restClient, freePort, listening, sslocalBin } from './support';
import { ADMIN } from './credentials';

const DIRECT_PORT = 47051;
const BODY_BYTES = 3_000_000;
const REASONS = ['manual', 'quota', 'expired'];


/** What the dashboard shows, read from its test ids. */
async function shown(page: Page) {
  const text = async (id: string) => Number((await page.getByTestId(id).textContent())!.trim());
  const bytes = async (id: string) => Number(await page.getByTestId(id).getAttribute('data-bytes'));
  const disabled: Record<string, number> = {};
  for (const r of REASONS) disabled[r] = await text(`dash-users-disabled-${r}`);
  return {
    users: { total: await text('dash-users-total'), active: await text('dash-users-active'), disabled },
    traffic: { today: await bytes('dash-traffic-today'), month: await bytes('dash-traffic-month') },
    nodes: {
      total: await text('dash-nodes-total'),
      healthy: await text('dash-nodes-healthy'),
      unhealthy: await text('dash-nodes-unhealthy'),
      drift: await text('dash-nodes-drift'),
    },
  };
}

/** The same numbers from `GET /v1/dashboard`. */
async function fromRest(api: APIRequestContext) {
  const res = await api.get('/v1/dashboard');
  expect(res.status()).toBe(200);
  const d = await res.json();
  return {
    shown: {
      users: { total: d.users.total, active: d.users.active, disabled: d.users.disabled_by },
      traffic: { today: d.traffic.today_bytes, month: d.traffic.month_bytes },
      nodes: d.nodes,
    },
    raw: d,
  };
}

/** The chart's bars as `[at, bytes]`. */
async function bars(page: Page): Promise<[number, number][]> {
  return page.getByTestId('dash-bar').evaluateAll((rects) =>
    rects.map((r) => [Number(r.getAttribute('data-at')), Number(r.getAttribute('data-bytes'))] as [number, number]));
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

test.describe('signed out', () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test('signing in lands on the dashboard', async ({ page }) => {
    await open(page, '/login');
    await page.getByLabel('User name').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(url('/'));
    await expect(page.getByRole('heading', { name: 'Dashboard', level: 1 })).toBeVisible();
    await expect(page.getByRole('link', { name: 'Dashboard' })).toHaveAttribute('aria-current', 'page');
    await expect(page.getByTestId('dash-chart')).toBeVisible();
  });
});

test.describe('signed in', () => {
  let api: APIRequestContext;
  let node: ChildProcess | undefined;
  let nodeDir: string | undefined;

  test.beforeAll(async ({ browser }) => {
    // The test changes users, nodes and settings: an owner token made in the panel.
    api = await restClient(browser, 'dashboard-e2e', 'owner');
  });

  test.afterAll(async () => {
    await api.dispose();
    if (node && node.exitCode === null && node.signalCode === null) {
      const exited = new Promise((resolve) => node!.once('exit', resolve));
      node.kill('SIGTERM');
      await exited;
    }
    if (nodeDir) fs.rmSync(nodeDir, { recursive: true, force: true });
  });

  test('the dashboard shows users, nodes and traffic as REST does, live and without JavaScript', async ({ page, browser }) => {
    await open(page, '/');
    await expect(page.getByTestId('live-status')).toHaveText('live');
    // Marks this document: it must survive until the end of the live part (no reload).
    await page.evaluate(() => ((window as unknown as { archNoReload: boolean }).archNoReload = true));
    await expect.poll(async () => shown(page)).toEqual((await fromRest(api)).shown);
    const before = await shown(page);
    const barsBefore = await bars(page);
    expect(barsBefore).toHaveLength(24);

    // Two users, one disabled by hand: the counts follow live.
    const ids: number[] = [];
    for (const name of ['dash-a', 'dash-b']) {
      const res = await api.post('/v1/users', { data: { name } });
      expect(res.status()).toBe(201);
      ids.push((await res.json()).id);
    }
    expect((await api.patch(`/v1/users/${ids[1]}`, { data: { enabled: false } })).status()).toBe(200);
    await expect(page.getByTestId('dash-users-total')).toHaveText(String(before.users.total + 2));
    await expect(page.getByTestId('dash-users-active')).toHaveText(String(before.users.active + 1));
    await expect(page.getByTestId('dash-users-disabled-manual')).toHaveText(String(before.users.disabled.manual + 1));

    // A real arch-node, registered over REST with its certificate pinned: healthy, pushed.
    const bin = process.env.ARCH_NODE_BIN ?? path.resolve(__dirname, '..', '..', 'target', 'release', 'arch-node');
    const nodePort = await freePort();
    const token = randomBytes(24).toString('hex');
    nodeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'arch-dash-node-'));
    node = spawn(bin, ['serve', '--listen', `127.0.0.1:${nodePort}`, '--token', token, '--data-dir', nodeDir], {
      stdio: 'ignore',
    });
    await listening(nodePort);
    const pem = fs.readFileSync(path.join(nodeDir, 'tls-cert.pem'), 'utf8');
    const fingerprint = new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
    const created = await api.post('/v1/nodes', {
      data: { name: 'dash-node', host: '127.0.0.1', http_port: nodePort, http_token: token, tls_fingerprint: fingerprint },
    });
    expect(created.status()).toBe(201);
    const nodeId = (await created.json()).id as number;
    await expect(page.getByTestId('dash-nodes-total')).toHaveText(String(before.nodes.total + 1));
    await expect(page.getByTestId('dash-nodes-healthy')).toHaveText(String(before.nodes.healthy + 1), { timeout: 30_000 });
    const push = page.getByTestId(`dash-push-${nodeId}`);
    await expect(push.getByTestId(`dash-push-${nodeId}-status`)).toHaveText('available', { timeout: 30_000 });
    await expect.poll(async () => (await (await api.get(`/v1/nodes/${nodeId}`)).json()).applied_version).toBeTruthy();
    const applied = (await (await api.get(`/v1/nodes/${nodeId}`)).json()).applied_version as string;
    await expect(push.getByTestId(`dash-push-${nodeId}-version`)).toHaveText(applied, { timeout: 30_000 });
    await expect(push.getByRole('link', { name: 'dash-node' })).toHaveAttribute('href', `/nodes/${nodeId}`);

    // Real traffic of dash-a through the direct mode.
    const settings = await (await api.get('/v1/settings')).json();
    const direct = await api.put('/v1/settings', {
      data: {
        host: '127.0.0.1', ss_direct_port: DIRECT_PORT, ss_relay_port: 0, ss_reverse_port: 0, ss_remote_port: 0,
        allowed_private_networks: ['127.0.0.1'],
      },
    });
    expect(direct.status()).toBe(200);
    await listening(DIRECT_PORT);
    const links = await (await api.get(`/v1/users/${ids[0]}/links`)).json();
    const link = (links as { mode: string; url: string }[]).find((l) => l.mode === 'direct')!.url;
    let exchanged = 0;
    const web = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
      res.end(Buffer.alloc(BODY_BYTES, 7));
    });
    web.on('connection', (socket) => socket.on('close', () => { exchanged += socket.bytesRead + socket.bytesWritten; }));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const webPort = (web.address() as AddressInfo).port;
    const socksPort = await freePort();
    const client = spawn(sslocalBin(), ['-b', `127.0.0.1:${socksPort}`, '--server-url', link], { stdio: 'ignore' });
    try {
      await listening(socksPort);
      const size = await new Promise<string>((resolve, reject) =>
        execFile('curl', ['-sS', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${socksPort}`,
          '-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${webPort}/`],
        (err, stdout) => (err ? reject(err) : resolve(stdout))));
      expect(Number(size)).toBe(BODY_BYTES);
      await expect.poll(() => exchanged, { timeout: 10_000 }).toBeGreaterThan(BODY_BYTES);
    } finally {
      client.kill('SIGTERM');
      await new Promise((resolve) => web.close(resolve));
    }

    // Traffic today and this month grow by exactly the bytes exchanged, live.
    await expect(page.getByTestId('dash-traffic-today')).toHaveAttribute('data-bytes', String(before.traffic.today + exchanged), { timeout: 30_000 });
    await expect(page.getByTestId('dash-traffic-month')).toHaveAttribute('data-bytes', String(before.traffic.month + exchanged));
    // The chart too: its bars grew by the same bytes (nothing older than this run can leave the
    // 24 hours), the current hour's bar holds them, and the bars from today's midnight add up to
    // the traffic today.
    await expect.poll(async () => sum((await bars(page)).map(([, b]) => b)), { timeout: 30_000 })
      .toBe(sum(barsBefore.map(([, b]) => b)) + exchanged);
    const after = await bars(page);
    const [lastAt, lastBytes] = after[after.length - 1];
    const lastBefore = barsBefore.find(([at]) => at === lastAt)?.[1] ?? 0;
    expect(lastBytes - lastBefore).toBe(exchanged);
    const rest = await fromRest(api);
    expect(sum(after.filter(([at]) => at >= rest.raw.traffic.today_from).map(([, b]) => b))).toBe(rest.raw.traffic.today_bytes);
    await expect.poll(async () => shown(page)).toEqual((await fromRest(api)).shown);
    expect(await page.evaluate(() => (window as unknown as { archNoReload?: boolean }).archNoReload)).toBe(true);
    await expectAccessible(page);

    // Without JavaScript the server-rendered page shows the same.
    const noJs = await browser.newContext({ javaScriptEnabled: false, storageState: 'test-results/.auth/admin.json' });
    try {
      const plain = await noJs.newPage();
      await plain.goto(url('/'));
      expect(await shown(plain)).toEqual((await fromRest(api)).shown);
      await expect(plain.getByTestId('dash-bar')).toHaveCount(24);
      await expect(plain.getByTestId(`dash-push-${nodeId}-status`)).toHaveText('available');
    } finally {
      await noJs.close();
    }

    // Leave nothing behind: the users, the node and the direct mode.
    for (const id of ids) expect((await api.delete(`/v1/users/${id}`)).status()).toBe(204);
    expect((await api.delete(`/v1/nodes/${nodeId}`)).status()).toBe(204);
    const restored = await api.put('/v1/settings', {
      data: {
        ss_direct_port: settings.ss_direct_port, ss_relay_port: settings.ss_relay_port,
        ss_reverse_port: settings.ss_reverse_port, ss_remote_port: settings.ss_remote_port,
        allowed_private_networks: settings.allowed_private_networks,
      },
    });
    expect(restored.status()).toBe(200);
  });
});
