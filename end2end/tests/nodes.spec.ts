// Adding the real arch-node (after a failed check with a wrong token) and following its push and
// pull status live over SSE, without reloading, until the node process is killed.
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

  // Right token: checked, added, shown.
  await page.getByLabel('Token (optional)').fill(env('ARCH_NODE_TOKEN'));
  await page.getByTestId('add-node').click();
  await expect(page.getByTestId('node-added')).toBeVisible();
  const row = page.locator('[data-testid^="node-"][data-testid$="-push-status"]').first();
  const id = (await row.getAttribute('data-testid'))!.split('-')[1];

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
  await page.getByTestId(`${other}-edit`).click();
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
  await page.reload();
  await expect(page.getByTestId(`${other}-address`)).toHaveText('127.0.0.1:10');

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
