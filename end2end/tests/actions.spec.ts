// Every action's three states. Each server-function call is held in the browser (Playwright
// routes it) until the test has seen the pending state: the button disabled, marked aria-busy and
// saying what it does. Then the call either goes on to the manager (success: the page says so and
// shows the result) or is answered the way the manager answers an internal failure (error: the
// page says what failed and the button works again, nothing else changed).
import { Locator, Page } from '@playwright/test';
import { test, expect, open, hydrated } from './support';

const INTERNAL = 'Something went wrong on the server. The arch-manager log has the details.';

/** Holds every call of the server function `endpoint` until the returned function is called;
 * then passes the calls on to the manager (`pass`) or answers them with the manager's
 * "internal" error (`fail`). */
async function hold(page: Page, endpoint: string, answer: 'pass' | 'fail'): Promise<() => Promise<void>> {
  const pattern = `**/api/${endpoint}`;
  await page.unroute(pattern);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await page.route(pattern, async (route) => {
    await gate;
    if (answer === 'pass') {
      await route.continue();
    } else {
      await route.fulfill({ status: 502, contentType: 'application/json', body: JSON.stringify('internal') });
    }
  });
  return async () => release();
}

/** One try of an action whose server function is `endpoint`: `act` starts it, `pending` checks
 * the page while the call is held, then the call is answered as `answer` says (see `hold`). */
async function attempt(
  page: Page,
  endpoint: string,
  answer: 'pass' | 'fail',
  act: () => Promise<unknown>,
  pending: () => Promise<unknown>,
) {
  const release = await hold(page, endpoint, answer);
  await act();
  await pending();
  await release();
}

async function expectBusy(button: Locator, working: string) {
  await expect(button).toHaveText(working);
  await expect(button).toBeDisabled();
  await expect(button).toHaveAttribute('aria-busy', 'true');
}

async function expectIdle(button: Locator, label: string) {
  await expect(button).toHaveText(label);
  await expect(button).toBeEnabled();
  await expect(button).not.toHaveAttribute('aria-busy');
}

test('settings: saving, then saved or the failure', async ({ page }) => {
  await open(page, '/settings');
  const save = page.getByTestId('save-settings');
  const host = page.getByLabel('Public host');
  const before = await host.inputValue();

  await attempt(page, 'update_settings', 'fail', async () => {
    await host.fill('failed.example.com');
    await save.click();
  }, () => expectBusy(save, 'Saving…'));
  await expect(page.getByTestId('form-error')).toHaveText(INTERNAL);
  await expect(page.getByTestId('settings-saved')).toBeEmpty();
  await expectIdle(save, 'Save settings');
  await page.reload();
  await expect(host).toHaveValue(before);

  await attempt(page, 'update_settings', 'pass', () => save.click(), async () => {
    await expectBusy(save, 'Saving…');
    await expect(page.getByTestId('settings-saved')).toBeEmpty();
  });
  await expect(page.getByTestId('settings-saved')).toHaveText('Saved.');
  await expect(page.getByTestId('form-error')).toBeEmpty();
  await expectIdle(save, 'Save settings');
});

test('users: create, edit, bulk disable and delete each show pending, success and failure', async ({ page }) => {
  const name = `busy-${Date.now()}`;
  await open(page, `/users?q=${name}`);
  const create = page.getByTestId('create-user');
  const newUser = page.locator('section', { has: create });

  // Create: refused once (nothing is created), then created.
  await attempt(page, 'create_user', 'fail', async () => {
    await page.getByLabel('Name', { exact: true }).fill(name);
    await create.click();
  }, () => expectBusy(create, 'Creating…'));
  await expect(newUser.getByTestId('form-error')).toHaveText(INTERNAL);
  await expectIdle(create, 'Create user');
  await expect(page.getByRole('link', { name, exact: true })).toHaveCount(0);
  await attempt(page, 'create_user', 'pass', () => create.click(), () => expectBusy(create, 'Creating…'));
  await expect(page.getByTestId('user-created')).toHaveText(`User ${name} was created.`);
  const row = page.locator('tr', { has: page.getByRole('link', { name, exact: true }) });
  await expect(row).toHaveCount(1);

  // Edit in the row: the quota.
  await row.getByRole('button', { name: `Edit ${name}` }).click();
  const save = row.getByRole('button', { name: 'Save' });
  await attempt(page, 'update_user', 'fail', async () => {
    await row.getByLabel('Quota (GB)').fill('7');
    await save.click();
  }, () => expectBusy(row.locator('button[type=submit]'), 'Saving…'));
  await expect(row.getByTestId('form-error')).toHaveText(INTERNAL);
  await expectIdle(save, 'Save');
  await attempt(page, 'update_user', 'pass', () => save.click(), () => expectBusy(row.locator('button[type=submit]'), 'Saving…'));
  await expect(row.locator('[data-testid$="-quota"]')).toHaveText('7.00');

  // Bulk disable of the selection.
  await row.getByRole('checkbox', { name: `Select ${name}` }).check();
  const disable = page.getByTestId('bulk-disable');
  await attempt(page, 'set_users_enabled', 'fail', () => disable.click(), async () => {
    await expect(page.getByTestId('bulk-status')).toHaveText('Working…');
    await expect(disable).toBeDisabled();
  });
  await expect(page.getByTestId('bulk-status')).toHaveText(INTERNAL);
  await expect(disable).toBeEnabled();
  await expect(row.locator('[data-testid$="-enabled"]')).toHaveText('yes');
  await attempt(page, 'set_users_enabled', 'pass', () => disable.click(), () => expect(page.getByTestId('bulk-status')).toHaveText('Working…'));
  await expect(page.getByTestId('bulk-status')).toHaveText('1 user disabled.');
  await expect(row.locator('[data-testid$="-enabled"]')).toHaveText('no');

  // Delete (after confirmation): refused once, then gone.
  const del = row.getByRole('button', { name: `Delete user ${name}` });
  await attempt(page, 'delete_user', 'fail', async () => {
    await del.click();
    await row.getByRole('button', { name: 'Yes, delete' }).click();
  }, () => expectBusy(del, 'Deleting…'));
  await expect(row.getByRole('alert').filter({ hasText: INTERNAL })).toHaveCount(1);
  await expectIdle(del, 'Delete');
  await attempt(page, 'delete_user', 'pass', async () => {
    await del.click();
    await row.getByRole('button', { name: 'Yes, delete' }).click();
  }, () => expectBusy(del, 'Deleting…'));
  await expect(page.getByRole('link', { name, exact: true })).toHaveCount(0);
});

test('tokens and administrators: create, change and revoke show pending, success and failure', async ({ page }) => {
  const suffix = Date.now();
  await open(page, '/tokens');
  const create = page.getByTestId('create-token');
  await attempt(page, 'create_token', 'fail', async () => {
    await page.getByLabel('Name').fill(`busy-token-${suffix}`);
    await create.click();
  }, () => expectBusy(create, 'Creating…'));
  await expect(page.getByTestId('form-error')).toHaveText(INTERNAL);
  await expect(page.getByTestId('token-secret')).toHaveCount(0);
  await expectIdle(create, 'Create token');
  await attempt(page, 'create_token', 'pass', () => create.click(), () => expectBusy(create, 'Creating…'));
  await expect(page.getByTestId('token-secret')).not.toBeEmpty();
  const token = page.locator('tr', { hasText: `busy-token-${suffix}` });
  const revoke = token.getByRole('button', { name: `Delete token busy-token-${suffix}` });
  await attempt(page, 'revoke_token', 'fail', async () => {
    await revoke.click();
    await token.getByRole('button', { name: 'Yes, delete' }).click();
  }, () => expectBusy(revoke, 'Deleting…'));
  await expect(page.getByTestId('token-error')).toHaveText(INTERNAL);
  await expectIdle(revoke, 'Delete');
  await attempt(page, 'revoke_token', 'pass', async () => {
    await revoke.click();
    await token.getByRole('button', { name: 'Yes, delete' }).click();
  }, () => expectBusy(revoke, 'Deleting…'));
  await expect(token).toHaveCount(0);

  await open(page, '/admins');
  const add = page.getByTestId('add-admin');
  await attempt(page, 'add_admin', 'fail', async () => {
    await page.getByLabel('Name', { exact: true }).fill(`busy-admin-${suffix}`);
    await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
    await page.getByLabel('Password again').fill('correct horse battery');
    await add.click();
  }, () => expectBusy(add, 'Adding…'));
  await expect(page.getByTestId('form-error')).toHaveText(INTERNAL);
  await expectIdle(add, 'Add administrator');
  await attempt(page, 'add_admin', 'pass', () => add.click(), () => expectBusy(add, 'Adding…'));
  await expect(page.getByTestId('add-admin-status')).not.toBeEmpty();
  const admin = page.locator('tr', { hasText: `busy-admin-${suffix}` });
  await expect(admin.locator('[data-testid$="-current-role"]')).toHaveText('Operator: users and nodes');
  await admin.getByRole('combobox').selectOption('viewer');
  const change = admin.getByRole('button', { name: 'Change role' });
  await attempt(page, 'set_admin_role', 'fail', () => change.click(), () => expectBusy(admin.locator('button[type=submit]'), 'Changing…'));
  await expect(admin.getByRole('alert')).toHaveText(INTERNAL);
  await expect(admin.locator('[data-testid$="-current-role"]')).toHaveText('Operator: users and nodes');
  await attempt(page, 'set_admin_role', 'pass', () => change.click(), () => expect(admin.getByTestId(/-status$/)).toHaveText('Saving…'));
  await expect(admin.locator('[data-testid$="-current-role"]')).toHaveText('Viewer: read only');
});

test('a node: restart, reset usage and delete show pending, then the result or the failure', async ({ page }) => {
  // A node nothing answers for (port 9), added anyway.
  const name = `busy-node-${Date.now()}`;
  await open(page, '/nodes');
  await page.getByLabel('Name (optional)').fill(name);
  await page.getByLabel('Host').fill('127.0.0.1');
  await page.getByLabel('HTTP port').fill('9');
  await page.getByTestId('add-node').click();
  await page.getByTestId('add-node-anyway').click();
  const row = page.locator('tbody tr[data-testid^="node-"]', { hasText: name });
  const id = (await row.getAttribute('data-testid'))!;
  await page.getByTestId(`${id}-open`).click();
  await expect(page.getByTestId('node-detail')).toHaveText(`Node ${name}`);
  await hydrated(page);

  // Restart: pending, then the real failure (nothing listens on port 9).
  const restart = page.getByTestId('node-restart');
  const restartStatus = page.getByTestId('node-restart-status');
  await attempt(page, 'restart_node', 'pass', () => restart.click(), async () => {
    await expect(restartStatus).toHaveText('Restarting…');
    await expect(restart).toBeDisabled();
    await expect(restart).toHaveAttribute('aria-busy', 'true');
  });
  await expect(restartStatus).toHaveText('The node could not be reached: connection refused or timed out');
  await expect(restart).toBeEnabled();

  // Reset usage (after confirmation): failure, then success.
  const reset = page.getByTestId('node-reset-usage');
  const resetStatus = page.getByTestId('node-reset-status');
  await attempt(page, 'reset_node_usage', 'fail', async () => {
    await reset.click();
    await page.getByTestId('node-reset-usage-confirm').click();
  }, () => expectBusy(reset, 'Resetting…'));
  await expect(resetStatus).toHaveText(INTERNAL);
  await expectIdle(reset, 'Reset usage');
  await attempt(page, 'reset_node_usage', 'pass', async () => {
    await reset.click();
    await page.getByTestId('node-reset-usage-confirm').click();
  }, () => expectBusy(reset, 'Resetting…'));
  await expect(resetStatus).toHaveText('Usage reset to 0.');

  // Delete from the nodes page: failure (the node stays), then gone.
  await open(page, '/nodes');
  const del = page.getByTestId(`${id}-delete`);
  await attempt(page, 'delete_node', 'fail', async () => {
    await del.click();
    await page.getByTestId(`${id}-confirm`).click();
  }, () => expectBusy(del, 'Deleting…'));
  await expect(row.getByRole('alert')).toHaveText(INTERNAL);
  await expectIdle(del, 'Delete');
  await attempt(page, 'delete_node', 'pass', async () => {
    await del.click();
    await page.getByTestId(`${id}-confirm`).click();
  }, () => expectBusy(del, 'Deleting…'));
  await expect(row).toHaveCount(0);
});
