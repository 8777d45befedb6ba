// Adding the real arch-node over TLS (after a failed check with a wrong token), seeing the
// certificate it presented pinned, and following its push and pull status and refused calls live
// over SSE, without reloading, until the node process is killed.
import { test, expect, open, env } from './support';

test('add a node and follow its status live', async ({ page }) => {
  const port = env('ARCH_NODE_PORT');
  await open(page, '/nodes');
  await expect(page.getByTestId('live-status')).toHaveText('live');
  // Marks this document: it must survive until the end (no reload).
  await page.evaluate(() => ((window as unknown as { archNoReload: boolean }).archNoReload = true));

  // Client-side validation.
  await page.getByTestId('add-node').click();
  await expect(page.locator('#node-host-error')).toHaveText('Must be a domain name or an IP address.');

  // Wrong token: the check fails beside the token field and offers "add anyway".
  await page.getByLabel('Host').fill('127.0.0.1');
  await page.getByLabel('HTTP port').fill(port);
  await page.getByLabel('Token (optional)').fill('wrong-token-0123456789');
  await page.getByTestId('add-node').click();
  await expect(page.locator('#node-token-error')).toHaveText('The node rejected this token.');
  await expect(page.getByTestId('add-node-anyway')).toBeVisible();

  // The fingerprint is checked in the browser by the manager's rule; plain HTTP comes with a warning.
  await page.getByLabel('TLS fingerprint (optional)').fill('ab:cd');
  await page.getByTestId('add-node').click();
  await expect(page.locator('#node-fingerprint-error')).toHaveText(
    'Must be a SHA-256 certificate fingerprint: 64 hex digits, optionally as 32 colon-separated pairs.');
  await page.getByLabel('TLS fingerprint (optional)').fill('');
  await page.getByLabel('Plain HTTP node (--insecure-http)').check();
  await expect(page.getByTestId('insecure-warning')).toContainText('Plain HTTP is not protected');
  await page.getByLabel('Plain HTTP node (--insecure-http)').uncheck();
  await expect(page.getByTestId('insecure-warning')).toHaveCount(0);

  // Right token: checked, added, shown with the certificate the node presented, which is pinned.
  const fingerprint = env('ARCH_NODE_FINGERPRINT');
  await page.getByLabel('Token (optional)').fill(env('ARCH_NODE_TOKEN'));
  await page.getByLabel('Name (optional)').fill('  Frankfurt   #1 ');
  await page.getByTestId('add-node').click();
  await expect(page.getByTestId('node-added')).toBeVisible();
  await expect(page.getByTestId('add-node-presented')).toHaveText(fingerprint);
  await expect(page.getByTestId('node-added')).toContainText('compare it with the one arch-node printed');
  await expect(page.getByTestId('add-node-pinned')).toHaveText(fingerprint);
  const row = page.locator('[data-testid^="node-"][data-testid$="-push-status"]').first();
  const id = (await row.getAttribute('data-testid'))!.split('-')[1];
  await expect(page.getByTestId(`node-${id}-name`)).toHaveText('Frankfurt #1');
  await expect(page.getByTestId(`node-${id}-fingerprint`)).toHaveText(fingerprint);
  await expect(page.getByTestId(`node-${id}-insecure`)).toHaveCount(0);
  // The check with the wrong token is the node's one refused call, reported by the next pull.
  await expect(page.getByTestId(`node-${id}-refused`)).toHaveText('1', { timeout: 30_000 });

  await expect(page.getByTestId(`node-${id}-pull-status`)).toHaveText('available', { timeout: 30_000 });
  await expect(page.getByTestId(`node-${id}-push-status`)).toHaveText('available', { timeout: 30_000 });
  await expect(page.getByTestId(`node-${id}-pulled-at`)).not.toHaveText('never');
  await expect(page.getByTestId(`node-${id}-pulled-at`)).toHaveAttribute('title', /^\d{4}-\d\d-\d\dT/);

  process.kill(Number(env('ARCH_NODE_PID')), 'SIGKILL');
  await expect(page.getByTestId(`node-${id}-pull-status`)).toHaveText('unavailable', { timeout: 90_000 });
  expect(await page.evaluate(() => (window as unknown as { archNoReload?: boolean }).archNoReload)).toBe(true);

  // An unreachable node (nothing listens on port 9): the check explains, "add anyway" adds it.
  await page.getByLabel('Host').fill('127.0.0.1');
  await page.getByLabel('HTTP port').fill('9');
  await page.getByLabel('Token (optional)').fill('');
  await page.getByTestId('add-node').click();
  await expect(page.getByTestId('form-error')).toContainText('could not be reached');
  await page.getByTestId('add-node-anyway').click();
  await expect(page.getByTestId('node-token')).toContainText('arch-node serve --token');
  const rows = page.locator('tbody tr[data-testid^="node-"]');
  await expect(rows).toHaveCount(2);

  // Edit the unreachable node in place: the port is validated beside its field, then saved.
  const other = (await rows.filter({ hasNot: page.getByTestId(`node-${id}-edit`) }).first().getAttribute('data-testid'))!;
  await expect(page.getByTestId(`${other}-name`)).toHaveText(other);
  await page.getByTestId(`${other}-edit`).click();
  // Names are unique.
  await page.locator(`#${other}-name-input`).fill('Frankfurt #1');
  await page.getByTestId(`${other}-save`).click();
  await expect(page.locator(`#${other}-name-input-error`)).toHaveText('A node with this name exists.');
  await page.locator(`#${other}-name-input`).fill('Backup');
  await page.locator(`#${other}-port-input`).fill('0');
  await page.getByTestId(`${other}-save`).click();
  await expect(page.locator(`#${other}-port-input-error`)).toHaveText('Must be between 1 and 65535.');
  await page.locator(`#${other}-port-input`).fill('10');
  await page.locator(`#${other}-token-input`).fill('short');
  await page.getByTestId(`${other}-save`).click();
  await expect(page.locator(`#${other}-token-input-error`)).toContainText('16–256 printable characters');
  await page.locator(`#${other}-token-input`).fill('');
  await page.getByTestId(`${other}-save`).click();
  await expect(page.getByTestId(`${other}-address`)).toHaveText('127.0.0.1:10');
  await expect(page.getByTestId(`${other}-name`)).toHaveText('Backup');
  await page.reload();
  await expect(page.getByTestId(`${other}-address`)).toHaveText('127.0.0.1:10');
  await expect(page.getByTestId(`${other}-name`)).toHaveText('Backup');

  // Delete with confirmation.
  await page.getByTestId(`node-${id}-delete`).click();
  await page.getByTestId(`node-${id}-cancel`).click();
  await expect(rows).toHaveCount(2);
  await page.getByTestId(`node-${id}-delete`).click();
  await page.getByTestId(`node-${id}-confirm`).click();
  await expect(rows).toHaveCount(1);
  await page.reload();
  await expect(rows).toHaveCount(1);
});
