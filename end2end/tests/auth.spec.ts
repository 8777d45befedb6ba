// Sign-in, sign-out, the page guard and the single-use setup token.
import { test, expect, open, env, url, hydrated } from './support';
import { ADMIN } from './credentials';

test.describe('signed out', () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test('pages redirect to /login, which no longer shows the setup hint', async ({ page }) => {
    for (const p of ['/', '/nodes', '/users', '/settings']) {
      await page.goto(url(p));
      await expect(page).toHaveURL(/\/login$/);
    }
    await hydrated(page);
    await expect(page.getByTestId('setup-hint')).toHaveCount(0);
  });

  test('wrong password is reported beside the field, then sign-in works', async ({ page }) => {
    await open(page, '/login');
    await page.getByLabel('User name').fill(ADMIN.username);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.locator('#login-password-error')).toHaveText('Wrong user name or password.');
    await expect(page).toHaveURL(/\/login$/);

    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(url('/'));
    await expect(page.getByTestId('admin-name')).toHaveText(ADMIN.username);

    await page.getByTestId('sign-out').click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto(url('/users'));
    await expect(page).toHaveURL(/\/login$/);
  });

  test('the setup token cannot be used twice', async ({ page }) => {
    const setup = new URL(env('ARCH_SETUP_URL'));
    await open(page, setup.pathname + setup.search);
    await page.getByLabel('User name').fill('intruder');
    await page.getByLabel('Password', { exact: true }).fill('another long password');
    await page.getByLabel('Confirm password').fill('another long password');
    await page.getByRole('button', { name: 'Create administrator' }).click();
    await expect(page.getByTestId('form-error')).toContainText('invalid or was already used');
    await page.goto(url('/nodes'));
    await expect(page).toHaveURL(/\/login$/);
  });

  test('server functions refuse cross-origin requests', async ({ request }) => {
    const res = await request.post(url('/api/login'), {
      headers: { Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      data: `username=${ADMIN.username}&password=${encodeURIComponent(ADMIN.password)}`,
    });
    expect(res.status()).toBe(403);
  });
});
