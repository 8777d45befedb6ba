// A user's page: the client links of every enabled mode, each with a QR code and a copy button.
import { test, expect, open, expectAccessible, setDirectMode } from './support';

test('a user page shows links with QR codes and copies them', async ({ page, context }) => {
  // Only the direct mode on, pointing at 127.0.0.1.
  await setDirectMode(page, '47021');

  await open(page, '/users');
  await page.locator('#new-user-name').fill('carol');
  await page.getByTestId('create-user').click();
  await expect(page.getByTestId('user-created')).toHaveText('User carol was created.');
  await page.locator('tbody tr', { hasText: 'carol' }).getByRole('link', { name: 'carol' }).click();
  await expect(page).toHaveURL(/\/users\/\d+$/);
  await expect(page.getByTestId('user-detail')).toHaveText('User carol');

  const url = page.getByTestId('link-direct-url');
  await expect(url).toHaveValue(/^ss:\/\/[A-Za-z0-9_-]+@127\.0\.0\.1:47021#carol-direct$/);
  await expect(page.getByTestId('link-relay')).toHaveCount(0);
  await expect(page.getByTestId('link-direct-qr').locator('svg path')).toHaveCount(1);
  await expectAccessible(page);

  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByTestId('link-direct-copy').click();
  await expect(page.getByTestId('link-direct-copied')).toHaveText('Copied.');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toBe(await url.inputValue());

  // Usage resets: a day out of range is refused beside the field; monthly on the 15th is saved,
  // kept across the reload that follows, and scheduled for the next 15th at midnight (UTC, the
  // default time zone); "Reset usage now" answers.
  await page.getByTestId('reset-strategy').selectOption('monthly');
  await page.getByLabel('Day of the month').fill('40');
  await page.getByTestId('reset-save').click();
  await expect(page.locator('#reset-day-error')).toContainText('1 to 31');
  await expect(page.getByTestId('reset-saved')).toHaveText('');
  await page.getByLabel('Day of the month').fill('15');
  await page.getByTestId('reset-save').click();
  await expect(page.getByTestId('reset-saved')).toHaveText('Saved.');
  const now = new Date();
  const thisMonth = now.getUTCDate() < 15;
  const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + (thisMonth ? 0 : 1), 15));
  await expect(page.getByTestId('reset-next')).toHaveText(`${next.toISOString().slice(0, 10)} 00:00 UTC`);
  await expect(page.getByTestId('reset-strategy')).toHaveValue('monthly');
  await page.getByTestId('reset-now').click();
  await expect(page.getByTestId('reset-now-status')).toHaveText('The usage was reset.');
  await expect(page.getByTestId('user-detail-usage')).toHaveText('0.00 GB');
  await expectAccessible(page);

  // Unknown user: a clear message, not a blank page.
  await open(page, '/users/999999');
  await expect(page.getByRole('alert')).toContainText('not found');

  // Leave no user and no mode behind for the other tests.
  await open(page, '/users');
  const row = page.locator('tbody tr', { hasText: 'carol' });
  const rowId = (await row.getAttribute('data-testid'))!;
  await page.getByTestId(`${rowId}-delete`).click();
  await page.getByTestId(`${rowId}-confirm`).click();
  await expect(row).toHaveCount(0);
  await setDirectMode(page, '0');
});
