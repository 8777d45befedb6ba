// Administrators and roles, the audit log, API token roles and bulk actions on users, against
// the real manager: the owner adds an operator and a viewer; the viewer signs in, reads every
// page and is refused every change with a clear message; the operator manages users but not
// settings; everything they did (and were refused) is in the audit log page.
import { Browser, Page } from '@playwright/test';
import { test, expect, open, url, hydrated, expectAccessible } from './support';

const PASSWORD = 'correct horse battery staple';
const stamp = Date.now().toString(36);

async function addAdmin(page: Page, name: string, role: 'owner' | 'operator' | 'viewer') {
  await open(page, '/admins');
  await page.locator('#new-admin-username').fill(name);
  await page.locator('#new-admin-password').fill(PASSWORD);
  await page.locator('#new-admin-confirm').fill(PASSWORD);
  await page.getByTestId('new-admin-role').selectOption(role);
  await page.getByTestId('add-admin').click();
  await expect(page.getByTestId('add-admin-status')).toHaveText(`${name} added.`);
  await expect(page.locator('[data-testid$="-name"]', { hasText: name })).toHaveCount(1);
}

/** A fresh browser context signed in as `name`. */
async function signIn(browser: Browser, name: string): Promise<Page> {
  const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const page = await context.newPage();
  await page.goto(url('/login'));
  await hydrated(page);
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(url('/'));
  return page;
}

test('an owner adds administrators; a viewer reads but is refused every change', async ({ page, browser }) => {
  const viewer = `vera${stamp}`;
  await addAdmin(page, viewer, 'viewer');
  await expectAccessible(page);

  const v = await signIn(browser, viewer);
  await expect(v.getByTestId('admin-role')).toHaveText('viewer');
  // Reads work.
  for (const p of ['/nodes', '/users', '/settings', '/tokens', '/admins', '/audit']) {
    await v.goto(url(p));
    await hydrated(v);
    await expect(v.getByRole('heading', { level: 1 })).toBeVisible();
    await expect(v.locator('.form-error:not(:empty)')).toHaveCount(0);
  }
  // Changes are refused with the reason, and nothing is created.
  await v.goto(url('/users'));
  await hydrated(v);
  await v.locator('#new-user-name').fill(`mallory${stamp}`);
  await v.getByTestId('create-user').click();
  await expect(v.getByText('Not allowed: the viewer role cannot change users or nodes.')).toBeVisible();
  await v.goto(url(`/users?q=mallory${stamp}`));
  await hydrated(v);
  await expect(v.getByTestId('users-empty')).toBeVisible();

  await v.goto(url('/tokens'));
  await hydrated(v);
  await v.locator('#token-name').fill('mine');
  await v.getByTestId('create-token').click();
  await expect(
    v.getByText('Not allowed: the viewer role cannot change settings, administrators or API tokens.'),
  ).toBeVisible();
  await expect(v.getByTestId('token-secret')).toHaveCount(0);
  await v.context().close();

  // The owner sees the refusals in the audit log, filtered by actor.
  await open(page, `/audit?actor=${viewer}`);
  const rows = page.locator('[data-testid="audit-table"] tbody tr');
  await expect(rows).toHaveCount(3); // sign-in, user.create and token.create refused
  await expect(rows.nth(0).locator('[data-testid$="-action"]')).toHaveText('token.create');
  await expect(rows.nth(0).locator('[data-testid$="-outcome"]')).toHaveText('refused');
  await expect(rows.nth(1).locator('[data-testid$="-action"]')).toHaveText('user.create');
  await expect(rows.nth(2).locator('[data-testid$="-action"]')).toHaveText('sign-in');
  await expect(rows.nth(2).locator('[data-testid$="-outcome"]')).toHaveText('ok');
  await expect(rows.nth(2).locator('[data-testid$="-actor"]')).toContainText('127.0.0.1');
  await expectAccessible(page);

  // The owner's own action, with before → after.
  await open(page, '/audit?action=admin.');
  const created = page.locator('[data-testid="audit-table"] tbody tr', { hasText: viewer }).first();
  await expect(created.locator('[data-testid$="-action"]')).toHaveText('admin.create');
  await expect(created.locator('[data-testid$="-changes"]')).toContainText('role: viewer');
  await expect(created.locator('[data-testid$="-changes"]')).toContainText('password: (changed)');
  await expect(created).not.toContainText(PASSWORD);
});

test('an operator manages users but not settings; the last owner stays', async ({ page, browser }) => {
  const operator = `olga${stamp}`;
  await addAdmin(page, operator, 'operator');
  const o = await signIn(browser, operator);
  await expect(o.getByTestId('admin-role')).toHaveText('operator');
  await o.goto(url('/users'));
  await hydrated(o);
  await o.locator('#new-user-name').fill(`opuser${stamp}`);
  await o.getByTestId('create-user').click();
  await expect(o.getByTestId('user-created')).toHaveText(`User opuser${stamp} was created.`);
  await o.goto(url('/settings'));
  await hydrated(o);
  await o.getByTestId('save-settings').click();
  await expect(
    o.getByText('Not allowed: the operator role cannot change settings, administrators or API tokens.'),
  ).toBeVisible();
  // What an operator may do, an operator may undo: the user goes again.
  await o.goto(url(`/users?q=opuser${stamp}`));
  await hydrated(o);
  const made = o.locator('[data-testid="users-table"] tbody tr');
  await expect(made).toHaveCount(1);
  const madeId = (await made.getAttribute('data-testid'))!.replace('user-', '');
  await o.getByTestId(`user-${madeId}-delete`).click();
  await o.getByTestId(`user-${madeId}-confirm`).click();
  await expect(made).toHaveCount(0);
  await o.context().close();

  // The owner demotes the operator to viewer; removing the only owner is refused with the reason.
  await open(page, '/admins');
  const row = page.locator('tbody tr', { hasText: operator });
  const id = (await row.getAttribute('data-testid'))!.replace('admin-', '');
  await page.getByTestId(`admin-${id}-role`).selectOption('viewer');
  await page.getByTestId(`admin-${id}-set-role`).click();
  await expect(page.getByTestId(`admin-${id}-current-role`)).toHaveText('Viewer: read only');
  const owner = page
    .locator('tbody tr')
    .filter({ has: page.locator('[data-testid$="-current-role"]', { hasText: 'Owner: everything' }) })
    .first();
  const ownerId = (await owner.getAttribute('data-testid'))!.replace('admin-', '');
  await page.getByTestId(`admin-${ownerId}-delete`).click();
  await page.getByTestId(`admin-${ownerId}-confirm`).click();
  await expect(page.getByTestId(`admin-${ownerId}-status`)).toContainText('last owner');
});

test('tokens carry a role; bulk enable, disable and delete apply to the selection', async ({ page, request }) => {
  await open(page, '/tokens');
  await page.locator('#token-name').fill(`wall${stamp}`);
  await page.getByTestId('token-role').selectOption('viewer');
  await page.getByTestId('create-token').click();
  const secret = (await page.getByTestId('token-secret').textContent())!.trim();
  const tokenRow = page.locator('tbody tr', { hasText: `wall${stamp}` });
  await expect(tokenRow.locator('[data-testid$="-role"]')).toHaveText('Viewer: read only');
  // The viewer token reads over REST and is refused a change.
  const auth = { Authorization: `Bearer ${secret}` };
  expect((await request.get(url('/v1/users'), { headers: auth })).status()).toBe(200);
  const refused = await request.post(url('/v1/users'), { headers: auth, data: { name: `x${stamp}` } });
  expect(refused.status()).toBe(403);

  // Two users, selected, disabled, enabled, deleted.
  await open(page, '/users');
  for (const n of ['b1', 'b2']) {
    await page.locator('#new-user-name').fill(`${n}${stamp}`);
    await page.getByTestId('create-user').click();
    await expect(page.getByTestId('user-created')).toHaveText(`User ${n}${stamp} was created.`);
  }
  await open(page, `/users?q=${stamp}&sort=name`);
  const rows = page.locator('[data-testid="users-table"] tbody tr', { hasText: /b[12]/ });
  await expect(rows).toHaveCount(2);
  const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-testid')!.replace('user-', '')));
  for (const id of ids) await page.getByTestId(`user-${id}-select`).check();
  await expect(page.getByTestId('bulk-count')).toHaveText('2 selected');
  await page.getByTestId('bulk-disable').click();
  await expect(page.getByTestId('bulk-status')).toHaveText('2 users disabled.');
  for (const id of ids) await expect(page.getByTestId(`user-${id}-enabled`)).toHaveText('no');
  await page.getByTestId('bulk-enable').click();
  await expect(page.getByTestId('bulk-status')).toHaveText('2 users enabled.');
  for (const id of ids) await expect(page.getByTestId(`user-${id}-enabled`)).toHaveText('yes');
  await page.getByTestId('bulk-delete').click();
  await page.getByTestId('bulk-delete-cancel').click();
  await expect(rows).toHaveCount(2);
  await page.getByTestId('bulk-delete').click();
  await page.getByTestId('bulk-delete-confirm').click();
  await expect(page.getByTestId('bulk-status')).toHaveText('2 users deleted.');
  await expect(rows).toHaveCount(0);
  await expect(page.getByTestId('bulk-count')).toHaveText('0 selected');
});
