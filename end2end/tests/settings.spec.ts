// Saving settings, with validation messages beside the fields.
import { test, expect, open } from './support';

test('settings are validated and saved', async ({ page }) => {
  await open(page, '/settings');
  const save = page.getByTestId('save-settings');

  await page.getByLabel('Fallback proxy URL').fill('ftp://proxy:21');
  await save.click();
  await expect(page.locator('#settings-proxy-error')).toHaveText('Must start with socks5://, socks5h://, http:// or https://.');

  await page.getByLabel('Fallback proxy URL').fill('socks5://127.0.0.1:1080');
  await page.getByLabel('Relay port').fill('70000');
  await save.click();
  await expect(page.locator('#settings-relay-error')).toHaveText('Must be between 0 and 65535.');
  await expect(page.locator('#settings-proxy-error')).toBeEmpty();

  await page.getByLabel('Public host').fill('proxy.example.com');
  await page.getByLabel('Relay port').fill('0');
  await page.getByLabel('Traffic ratio').fill('1.5');
  await page.getByLabel('Private networks users may reach').fill('10.20.0.1/16');
  await save.click();
  await expect(page.locator('#settings-networks-error')).toContainText('host bits are set');

  await page.getByLabel('Private networks users may reach').fill('10.20.0.0/16,  192.168.7.7');
  await save.click();
  await expect(page.getByTestId('settings-saved')).toHaveText('Saved.');

  await page.reload();
  await expect(page.getByLabel('Public host')).toHaveValue('proxy.example.com');
  await expect(page.getByLabel('Fallback proxy URL')).toHaveValue('socks5://127.0.0.1:1080');
  await expect(page.getByLabel('Relay port')).toHaveValue('0');
  await expect(page.getByLabel('Traffic ratio')).toHaveValue('1.5');
  await expect(page.getByLabel('Private networks users may reach')).toHaveValue('10.20.0.0/16, 192.168.7.7/32');

  // Server-side validation: two modes on one port is refused beside the later field.
  await page.getByLabel('Reverse port').fill('47001');
  await page.getByLabel('Remote port (on nodes)').fill('47001');
  await save.click();
  await expect(page.locator('#settings-remote-error')).toHaveText('Port 47001 is already used by another mode.');
  await expect(page.getByLabel('Remote port (on nodes)')).toHaveAttribute('aria-invalid', 'true');

  // Back to no fallback proxy (nothing listens on 1080) and no reverse / remote mode.
  await page.getByLabel('Fallback proxy URL').fill('');
  await page.getByLabel('Reverse port').fill('0');
  await page.getByLabel('Remote port (on nodes)').fill('0');
  await save.click();
  await expect(page.getByTestId('settings-saved')).toHaveText('Saved.');
});

test('the subscription URL base and the time zone are validated and saved', async ({ page }) => {
  await open(page, '/settings');
  const save = page.getByTestId('save-settings');
  const base = page.getByLabel('Subscription URL base');
  const zone = page.getByLabel('Time zone of usage resets');
  await expect(zone).toHaveValue('UTC');
  // The field suggests the zones the manager knows, from its tz database.
  await expect(zone).toHaveAttribute('list', 'time-zones');
  const zones = page.getByTestId('time-zones').locator('option');
  await expect(zones.first()).toHaveAttribute('value', 'Africa/Abidjan');
  for (const name of ['Europe/Berlin', 'America/Santiago', 'UTC']) {
    await expect(zones.and(page.locator(`[value="${name}"]`))).toHaveCount(1);
  }
  await expect(zones.and(page.locator('[value^="posix/"]'))).toHaveCount(0);

  // Refused in the browser (not a zone name), then by the manager (no such zone), then the URL.
  await zone.fill('Europe/../etc');
  await save.click();
  await expect(page.locator('#settings-time-zone-error')).toContainText('IANA time zone name');
  await zone.fill('Mars/Olympus_Mons');
  await save.click();
  await expect(page.locator('#settings-time-zone-error')).toContainText('not a time zone this system knows');
  await expect(page.getByTestId('settings-saved')).toHaveText('');
  await zone.fill('Asia/Kolkata');
  await base.fill('ftp://sub.example.com');
  await save.click();
  await expect(page.locator('#settings-sub-base-error')).toContainText('http:// or https://');
  await expect(page.locator('#settings-time-zone-error')).toBeEmpty();

  await base.fill('https://sub.example.com/arch/');
  await save.click();
  await expect(page.getByTestId('settings-saved')).toHaveText('Saved.');
  await page.reload();
  await expect(base).toHaveValue('https://sub.example.com/arch');
  await expect(zone).toHaveValue('Asia/Kolkata');

  // Charts label hours in that zone (UTC+5:30: every hour starts at :30); days stay UTC days.
  await open(page, '/');
  await expect(page.getByTestId('dash-chart')).toContainText(' – ');
  await expect(page.getByTestId('dash-chart')).toContainText('Asia/Kolkata');
  const hour = await page.getByTestId('dash-bar').first().locator('title').textContent();
  expect(hour).toMatch(/^\d{4}-\d\d-\d\d \d\d:30: /);
  await open(page, '/settings');

  // Back to the defaults for the other tests.
  await base.fill('');
  await zone.fill('UTC');
  await save.click();
  await expect(page.getByTestId('settings-saved')).toHaveText('Saved.');
});
