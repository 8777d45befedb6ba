// Shared helpers: the URLs and node details from the global setup, a `page` fixture that fails
// the test on any browser console error (hydration problems show up there) or an island missing
// from the page's bundle, waiting for
// hydration, and an axe accessibility check.
import { test as base, expect, request, APIRequestContext, Browser, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import fs from 'node:fs';
import net, { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the global setup did not run`);
  return value;
}

/** Absolute URL of a panel path on the manager under test. */
export const url = (p: string) => new URL(p, env('ARCH_BASE_URL')).toString();

export const test = base.extend<{ page: Page }>({
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on('console', (msg) => {
      // An island the page's bundle does not export (its group in app::bundle_of and its
      // `bundle-*` feature disagree) is only a warning from Leptos's island script.
      if (msg.type() === 'warning' && msg.text().startsWith('Could not find WASM function for the island')) {
        problems.push(`console: ${msg.text()} (${msg.location().url})`);
        return;
      }
      if (msg.type() !== 'error') return;
      // Server functions answer expected failures (validation, wrong password, unreachable node)
      // with 4xx / 502, which Chromium logs; only those are allowed.
      const expected = /status of (4\d\d|502) /.test(msg.text()) && msg.location().url.includes('/api/');
      if (!expected) problems.push(`console: ${msg.text()} (${msg.location().url})`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await use(page);
    expect(problems, 'browser console errors').toEqual([]);
  },
});
export { expect };

/** Opens `path` and waits until the wasm bundle has hydrated the server-rendered page. */
export async function open(page: Page, path: string) {
  await page.goto(url(path));
  await hydrated(page);
}

export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
}

/** Fails with the list of WCAG 2.1 A/AA violations axe finds on the current page. */
export async function expectAccessible(page: Page) {
  const result = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'])
    .analyze();
  const summary = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(summary).toEqual([]);
}

/** On the settings page: public host 127.0.0.1, only the direct mode on (`direct`; '0' = every
 * mode off), and, when given, the private networks users may reach; saved. */
export async function setDirectMode(page: Page, direct: string, networks?: string) {
  await open(page, '/settings');
  await page.getByLabel('Public host').fill('127.0.0.1');
  await page.getByLabel('Direct port').fill(direct);
  await page.getByLabel('Relay port').fill('0');
  await page.getByLabel('Reverse port').fill('0');
  await page.getByLabel('Remote port (on nodes)').fill('0');
  if (networks !== undefined) await page.getByLabel('Private networks users may reach').fill(networks);
  await page.getByTestId('save-settings').click();
  await expect(page.getByTestId('settings-saved')).toHaveText('Saved.');
}

/** A REST client with a new API token of `role`, made on the panel's tokens page as the signed-in
 * administrator (the specs' REST set-up and clean-up). */
export async function restClient(
  browser: Browser,
  name: string,
  role: 'owner' | 'operator' | 'viewer' = 'owner',
): Promise<APIRequestContext> {
  const page = await browser.newPage({ storageState: 'test-results/.auth/admin.json' });
  await page.goto(url('/tokens'));
  await hydrated(page);
  await page.getByLabel('Name').fill(name);
  await page.getByTestId('token-role').selectOption(role);
  await page.getByTestId('create-token').click();
  const secret = (await page.getByTestId('token-secret').textContent())!.trim();
  await page.close();
  return request.newContext({
    baseURL: env('ARCH_BASE_URL'),
    extraHTTPHeaders: { Authorization: `Bearer ${secret}` },
  });
}

/** A node nothing listens for (`127.0.0.1:port`; its page shows it unavailable) and a user, both
 * named after `prefix`, made through `api` for a spec that visits their pages; `remove` deletes
 * what was made. */
export async function sampleNodeAndUser(api: APIRequestContext, prefix: string, port: number) {
  const node = await api.post('/v1/nodes', {
    data: { name: `${prefix}-node`, host: '127.0.0.1', http_port: port, http_token: env('ARCH_NODE_TOKEN'), tls_fingerprint: env('ARCH_NODE_FINGERPRINT') },
  });
  expect(node.status(), await node.text()).toBe(201);
  const nodeId: number = (await node.json()).id;
  const user = await api.post('/v1/users', { data: { name: `${prefix}-user` } });
  expect(user.status(), await user.text()).toBe(201);
  const userId: number = (await user.json()).id;
  const remove = async () => {
    await api.delete(`/v1/users/${userId}`);
    await api.delete(`/v1/nodes/${nodeId}`);
  };
  return { nodeId, userId, remove };
}

/** A free 127.0.0.1 port. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:port (at most 200 tries, 100 ms
 * apart). */
export async function listening(port: number) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** The stock `sslocal` client (cargo's install first). */
export function sslocalBin(): string {
  const inCargo = path.join(os.homedir(), '.cargo', 'bin', 'sslocal');
  return fs.existsSync(inCargo) ? inCargo : 'sslocal';
}
