// The secure node channel in the panel, against the second arch-node of the global setup (TLS
// with a generated certificate): a node registered through REST with a wrong fingerprint is
// refused and shows both fingerprints until it is re-pinned with confirmation; its token is
// rotated with confirmation, the node stays available and refuses the old token. The node is
// deleted and stopped at the end, so nodes.spec.ts can use the same ports.
import { request, APIRequestContext } from '@playwright/test';
import { test, expect, open, env, url, expectAccessible, restClient } from './support';

const WRONG = 'ab'.repeat(32);

let api: APIRequestContext;
let nodeId: number | undefined;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ browser }) => {
  // The test re-pins nodes and rotates tokens: an owner token made in the panel.
  api = await restClient(browser, 'node-tls-e2e', 'owner');
});

test.afterAll(async () => {
  if (nodeId !== undefined) {
    expect((await api.delete(`/v1/nodes/${nodeId}`)).status()).toBe(204);
  }
  await api.dispose();
  // A deleted node keeps serving its last config; stop it so its ports are free.
  process.kill(Number(env('ARCH_TLS_NODE_PID')), 'SIGTERM');
});

test('a changed certificate is refused, shown with both fingerprints and re-pinned', async ({ page }) => {
  const real = env('ARCH_TLS_NODE_FINGERPRINT');
  const created = await api.post('/v1/nodes', {
    data: {
      host: '127.0.0.1',
      http_port: Number(env('ARCH_TLS_NODE_PORT')),
      http_token: env('ARCH_TLS_NODE_TOKEN'),
      tls_fingerprint: WRONG,
    },
  });
  expect(created.status()).toBe(201);
  const node = await created.json();
  nodeId = node.id as number;
  expect(node.tls_fingerprint).toBe(WRONG);
  const id = nodeId;

  await open(page, '/nodes');
  const warning = page.getByTestId(`node-${id}-cert-changed`);
  await expect(warning).toContainText('The node presented a different certificate', { timeout: 30_000 });
  await expect(warning).toContainText('expected after the node was reinstalled');
  await expect(page.getByTestId(`node-${id}-pinned`)).toHaveText(WRONG);
  await expect(page.getByTestId(`node-${id}-presented`)).toHaveText(real);
  await expect(page.getByTestId(`node-${id}-push-status`)).toHaveText('unavailable');
  await expect(page.getByTestId(`node-${id}-pull-status`)).toHaveText('unavailable');
  await expectAccessible(page);

  // Asking first: Escape takes the question back (and the focus returns to the button).
  await page.getByTestId(`node-${id}-repin`).click();
  await expect(page.getByTestId(`node-${id}-repin-confirm`)).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(page.getByTestId(`node-${id}-repin-confirm`)).toHaveCount(0);
  await expect(page.getByTestId(`node-${id}-repin`)).toBeFocused();
  await expect(page.getByTestId(`node-${id}-fingerprint`)).toHaveText(WRONG);

  // Keyboard only: Enter opens the question, Enter on the focused "yes" re-pins.
  await page.keyboard.press('Enter');
  await expect(page.getByTestId(`node-${id}-repin-confirm`)).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId(`node-${id}-channel-status`)).toHaveText(
    'Re-pinned: the presented certificate is now trusted.');
  await expect(page.getByTestId(`node-${id}-fingerprint`)).toHaveText(real);
  await expect(page.getByTestId(`node-${id}-cert-changed`)).toHaveCount(0);
  await expect(page.getByTestId(`node-${id}-push-status`)).toHaveText('available', { timeout: 30_000 });
  await expect(page.getByTestId(`node-${id}-pull-status`)).toHaveText('available', { timeout: 30_000 });

  const after = await (await api.get(`/v1/nodes/${id}`)).json();
  expect(after.tls_fingerprint).toBe(real);
  expect(after.presented_fingerprint ?? null).toBeNull();
});

test('rotating the token keeps the node available and retires the old token', async ({ page }) => {
  expect(nodeId, 'the node of the previous test').toBeDefined();
  const id = nodeId!;
  const oldToken = env('ARCH_TLS_NODE_TOKEN');
  const nodeUrl = `https://127.0.0.1:${env('ARCH_TLS_NODE_PORT')}/v1/info`;
  const nodeApi = await request.newContext({ ignoreHTTPSErrors: true });
  try {
    expect((await nodeApi.get(nodeUrl, { headers: { Authorization: `Bearer ${oldToken}` } })).status()).toBe(200);

    await open(page, '/nodes');
    await expect(page.getByTestId(`node-${id}-push-status`)).toHaveText('available', { timeout: 30_000 });
    await page.getByTestId(`node-${id}-rotate-token`).click();
    await page.getByTestId(`node-${id}-rotate-token-cancel`).click();
    await expect(page.getByTestId(`node-${id}-rotate-token-confirm`)).toHaveCount(0);
    await expect(page.getByTestId(`node-${id}-channel-status`)).toHaveText('');

    const rotatedAt = Date.now();
    await page.getByTestId(`node-${id}-rotate-token`).click();
    await page.getByTestId(`node-${id}-rotate-token-confirm`).click();
    await expect(page.getByTestId(`node-${id}-channel-status`)).toHaveText('Token rotated');
    await expect(page.getByTestId(`node-${id}-rotation-pending`)).toHaveCount(0);
    await expect(page.getByTestId(`node-${id}-channel-status`)).not.toContainText(oldToken);

    // The next pull (with the new token) succeeds: the node stays available.
    await expect.poll(async () => {
      const n = await (await api.get(`/v1/nodes/${id}`)).json();
      return n.pulled_at > rotatedAt && n.pull_status === 'available' && n.push_status === 'available';
    }, { timeout: 30_000 }).toBe(true);
    await expect(page.getByTestId(`node-${id}-pull-status`)).toHaveText('available');

    // The node refuses the old token now.
    expect((await nodeApi.get(nodeUrl, { headers: { Authorization: `Bearer ${oldToken}` } })).status()).toBe(401);
  } finally {
    await nodeApi.dispose();
  }
});
