// Usage in the panel, with real traffic: a user's bytes through the manager's direct mode (a real
// sslocal client, curl, and a local web server that counts every byte it exchanged) appear live
// on the user page and in its usage chart, exactly; the users page resets the usage of selected
// users. A node's page shows its state, multiplier and chart, restarts it (here: a node that is
// down, so the error and the drift show) and resets its usage.
import { spawn, execFile, ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { AddressInfo } from 'node:net';
import { test, expect, open, hydrated, expectAccessible, setDirectMode, freePort, listening, sslocalBin } from './support';

const DIRECT_PORT = 47041;
const BODY_BYTES = 30_000_000;


test('usage is counted exactly, shown live, charted and reset for a selection', async ({ page }) => {
  // Only the direct mode on, on 127.0.0.1; users may reach the local web server below.
  await setDirectMode(page, String(DIRECT_PORT), '127.0.0.1');

  await open(page, '/users');
  for (const name of ['dora', 'emil']) {
    await page.locator('#new-user-name').fill(name);
    await page.getByTestId('create-user').click();
    await expect(page.getByTestId('user-created')).toHaveText(`User ${name} was created.`);
  }
  await page.locator('tbody tr', { hasText: 'dora' }).getByRole('link', { name: 'dora' }).click();
  await expect(page.getByTestId('user-detail')).toHaveText('User dora');
  const userUrl = page.url();
  const link = await page.getByTestId('link-direct-url').inputValue();
  await expect(page.getByTestId('usage-bar')).toHaveCount(24);
  await expect(page.getByTestId('usage-chart-total')).toHaveText('0 B');

  // A web server that counts the bytes it exchanged, and a real Shadowsocks client.
  let exchanged = 0;
  const web = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
    res.end(Buffer.alloc(BODY_BYTES, 7));
  });
  web.on('connection', (socket) => socket.on('close', () => { exchanged += socket.bytesRead + socket.bytesWritten; }));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  const webPort = (web.address() as AddressInfo).port;
  const socksPort = await freePort();
  const client: ChildProcess = spawn(sslocalBin(), ['-b', `127.0.0.1:${socksPort}`, '--server-url', link], {
    stdio: 'ignore',
  });
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

  // The user page follows the usage live (no reload), and the chart's bars add up to exactly
  // the bytes the web server exchanged.
  await expect(page.getByTestId('user-detail-usage')).toHaveText(`${(exchanged / 1e9).toFixed(2)} GB`, { timeout: 30_000 });
  const barBytes = async () =>
    (await page.getByTestId('usage-bar').evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('data-bytes')))))
      .reduce((a, b) => a + b, 0);
  await expect.poll(barBytes, { timeout: 30_000 }).toBe(exchanged);
  await expect(page.getByTestId('usage-chart-total')).toHaveText(`${(exchanged / 1e6).toFixed(2)} MB`);
  await page.getByTestId('usage-chart-day').click();
  await expect(page.getByTestId('usage-chart-day')).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('usage-bar')).toHaveCount(30);
  await expect.poll(barBytes).toBe(exchanged);
  await expectAccessible(page);

  // Reset the usage of a selection (dora and emil) on the users page, with confirmation.
  await open(page, '/users');
  const row = (name: string) => page.locator('tbody tr', { hasText: name });
  await expect(page.getByTestId('bulk-count')).toHaveText('0 selected');
  await row('dora').getByRole('checkbox', { name: 'Select dora' }).check();
  await row('emil').getByRole('checkbox', { name: 'Select emil' }).check();
  await expect(page.getByTestId('bulk-count')).toHaveText('2 selected');
  await page.getByTestId('bulk-reset').click();
  await expect(page.getByText('Reset the usage of 2 users to 0?')).toBeVisible();
  await page.getByTestId('bulk-reset-cancel').click();
  await expect(row('dora').locator('[data-testid$="-usage"]')).toHaveText((exchanged / 1e9).toFixed(2));
  await page.getByTestId('bulk-reset').click();
  await page.getByTestId('bulk-reset-confirm').click();
  await expect(page.getByTestId('bulk-status')).toHaveText('Usage reset for 2 users.');
  await expect(row('dora').locator('[data-testid$="-usage"]')).toHaveText('0.00');
  await expectAccessible(page);
  await page.getByTestId('bulk-clear').click();
  await expect(page.getByTestId('bulk-count')).toHaveText('0 selected');

  // The history keeps what was carried: the chart still adds up to the exchanged bytes.
  await page.goto(userUrl);
  await expect(page.getByTestId('user-detail-usage')).toHaveText('0.00 GB');
  await expect.poll(barBytes).toBe(exchanged);

  // Leave no user and no mode behind.
  await open(page, '/users');
  for (const name of ['dora', 'emil']) {
    const id = (await row(name).getAttribute('data-testid'))!;
    await page.getByTestId(`${id}-delete`).click();
    await page.getByTestId(`${id}-confirm`).click();
    await expect(row(name)).toHaveCount(0);
  }
  await setDirectMode(page, '0', '');
});

test('a node page shows the node, its multiplier, drift and chart, restarts it and resets its usage', async ({ page }) => {
  // A node nothing answers for (port 9): added anyway, named, then its multiplier edited.
  await open(page, '/nodes');
  await page.getByLabel('Name (optional)').fill('chart-node');
  await page.getByLabel('Host').fill('127.0.0.1');
  await page.getByLabel('HTTP port').fill('9');
  await page.getByTestId('add-node').click();
  await page.getByTestId('add-node-anyway').click();
  const row = page.locator('tbody tr[data-testid^="node-"]', { hasText: 'chart-node' });
  const id = (await row.getAttribute('data-testid'))!;
  await page.getByTestId(`${id}-edit`).click();
  await expect(page.locator(`#${id}-multiplier-input`)).toHaveValue('1');
  await page.locator(`#${id}-multiplier-input`).fill('1.2345');
  await page.getByTestId(`${id}-save`).click();
  await expect(page.locator(`#${id}-multiplier-input-error`)).toHaveText(
    'Must be a number from 0 to 100 with at most three decimals.');
  await page.locator(`#${id}-multiplier-input`).fill('1.5');
  await page.getByTestId(`${id}-save`).click();
  await expect(page.getByTestId(`${id}-multiplier`)).toHaveText('×1.5');

  await page.getByTestId(`${id}-open`).click();
  await expect(page).toHaveURL(new RegExp(`/nodes/${id.replace('node-', '')}$`));
  await expect(page.getByTestId('node-detail')).toHaveText('Node chart-node');
  await expect(page.getByTestId('node-detail-multiplier')).toContainText('×1.5');
  await expect(page.getByTestId('node-detail-usage')).toHaveText('0.00');
  await expect(page.getByTestId('usage-bar')).toHaveCount(24);
  await page.getByTestId('usage-chart-day').click();
  await expect(page.getByTestId('usage-bar')).toHaveCount(30);
  // Push now / restart: the node is down, so the push fails with the reason; the node has never
  // run its config (drift).
  await page.getByTestId('node-restart').click();
  await expect(page.getByTestId('node-restart-status')).toHaveText(
    'The node could not be reached: connection refused or timed out');
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('node-detail-drift')).toContainText('Not the current config yet');
  await expect(page.getByTestId('node-detail-push')).toHaveText('unavailable');
  await page.getByTestId('node-reset-usage').click();
  await page.getByTestId('node-reset-usage-confirm').click();
  await expect(page.getByTestId('node-reset-status')).toHaveText('Usage reset to 0.');
  await expectAccessible(page);

  // An unknown node: a clear message.
  await open(page, '/nodes/999999');
  await expect(page.getByRole('alert')).toContainText('not found');

  await open(page, '/nodes');
  await page.getByTestId(`${id}-delete`).click();
  await page.getByTestId(`${id}-confirm`).click();
  await expect(row).toHaveCount(0);
});
