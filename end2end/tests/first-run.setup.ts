// First run: without an administrator, /login explains how to get one; the one-time setup URL
// printed by arch-manager creates it (with validation beside the fields) and signs in.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, expect, open, env, url, hydrated } from './support';

import { ADMIN } from './credentials';

test('first-run setup creates the administrator and signs in', async ({ page }) => {
  await page.goto(url('/nodes'));
  await expect(page).toHaveURL(/\/login$/);
  await hydrated(page);
  await expect(page.getByTestId('setup-hint')).toContainText('arch-manager admin create');

  const setup = new URL(env('ARCH_SETUP_URL'));
  await open(page, setup.pathname + setup.search);
  await expect(page.getByRole('heading', { name: 'Create the administrator' })).toBeVisible();

  await page.getByLabel('User name').fill(ADMIN.username);
  await page.getByLabel('Password', { exact: true }).fill('too short');
  await page.getByLabel('Confirm password').fill('too short');
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await expect(page.locator('#setup-password-error')).toHaveText('Must be at least 12 characters.');

  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByLabel('Confirm password').fill(ADMIN.password + '!');
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await expect(page.locator('#setup-confirm-error')).toHaveText('The passwords do not match.');
  await expect(page.locator('#setup-password-error')).toBeEmpty();

  await page.getByLabel('Confirm password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await expect(page).toHaveURL(url('/'));
  await expect(page.getByRole('heading', { name: 'Dashboard', level: 1 })).toBeVisible();
  await expect(page.getByTestId('admin-name')).toHaveText(ADMIN.username);

  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'arch_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Strict');
  expect(session?.secure).toBe(false);

  const file = path.join(__dirname, '..', 'test-results', '.auth', 'admin.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await page.context().storageState({ path: file });
});
