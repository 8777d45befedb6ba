// Creating, editing and deleting a user, with client- and server-side validation messages shown
// beside their fields.
import { test, expect, open, expectAccessible } from './support';

test('create, edit and delete a user', async ({ page }) => {
  await open(page, '/users');
  const create = page.getByTestId('create-user');

  // Client-side validation.
  await create.click();
  await expect(page.locator('#new-user-name-error')).toHaveText('Must not be empty.');
  await page.locator('#new-user-name').fill('alice');
  await page.locator('#new-user-quota').fill('-1');
  await create.click();
  await expect(page.locator('#new-user-quota-error')).toHaveText('Must be 0 (unlimited) or more.');
  await expect(page.locator('#new-user-name-error')).toBeEmpty();

  // Create.
  await page.locator('#new-user-quota').fill('2.5');
  await create.click();
  await expect(page.getByTestId('user-created')).toHaveText('User alice was created.');
  const row = page.locator('tbody tr', { hasText: 'alice' });
  await expect(row).toHaveCount(1);
  const id = (await row.getAttribute('data-testid'))!.replace('user-', '');
  await expect(page.getByTestId(`user-${id}-quota`)).toHaveText('2.50');
  await expect(page.getByTestId(`user-${id}-enabled`)).toHaveText('yes');

  // Server-side validation: the duplicate name comes back beside the name field.
  await page.locator('#new-user-name').fill('alice');
  await create.click();
  await expect(page.locator('#new-user-name-error')).not.toBeEmpty();
  await expect(page.locator('#new-user-name')).toHaveAttribute('aria-invalid', 'true');

  // Edit quota and enabled in place.
  await page.getByTestId(`user-${id}-edit`).click();
  await page.locator(`#user-${id}-quota-input`).fill('abc');
  await page.getByTestId(`user-${id}-save`).click();
  await expect(page.locator(`#user-${id}-quota-input-error`)).toHaveText('Must be a number of GB, e.g. 10 or 2.5.');
  await page.locator(`#user-${id}-quota-input`).fill('0');
  await page.locator(`#user-${id}-enabled-input`).uncheck();
  await page.getByTestId(`user-${id}-save`).click();
  await expect(page.getByTestId(`user-${id}-quota`)).toHaveText('unlimited');
  await expect(page.getByTestId(`user-${id}-enabled`)).toHaveText('no');

  // Persisted, and rendered by the server.
  await page.reload();
  await expect(page.getByTestId(`user-${id}-quota`)).toHaveText('unlimited');

  // Delete with confirmation.
  await open(page, '/users');
  await page.getByTestId(`user-${id}-delete`).click();
  await page.getByTestId(`user-${id}-confirm`).click();
  await expect(page.locator('tbody tr', { hasText: 'alice' })).toHaveCount(0);
  await expect(page.getByTestId('users-empty')).toBeVisible();
});

test('users are found by name, filtered, sorted and paged by the manager', async ({ page }) => {
  await open(page, '/users');
  const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e'];
  for (const name of names) {
    await page.locator('#new-user-name').fill(name);
    await page.getByTestId('create-user').click();
    await expect(page.getByTestId('user-created')).toHaveText(`User ${name} was created.`);
  }
  const rows = page.locator('tbody tr[data-testid^="user-"]');
  const shownNames = () => rows.locator('[data-testid$="-name"]').allTextContents();

  // Two per page, by name: three pages, then no "Next page".
  await open(page, '/users?limit=2&q=page-&sort=name');
  await expect(page.getByTestId('users-total')).toHaveText('2 of 5 users');
  expect(await shownNames()).toEqual(['page-a', 'page-b']);
  await expect(page.getByTestId('users-first')).toHaveCount(0);
  await page.getByTestId('users-next').click();
  await expect(rows.first()).toContainText('page-c');
  expect(await shownNames()).toEqual(['page-c', 'page-d']);
  await page.getByTestId('users-next').click();
  await expect(rows.first()).toContainText('page-e');
  expect(await shownNames()).toEqual(['page-e']);
  await expect(page.getByTestId('users-total')).toHaveText('1 of 5 users');
  await expect(page.getByTestId('users-next')).toHaveCount(0);
  await page.getByTestId('users-first').click();
  await expect(rows.first()).toContainText('page-a');

  // The form: a case-insensitive search; then a status filter (page-b disabled by hand) and a
  // descending sort, kept in the URL.
  await open(page, '/users');
  await page.getByLabel('Name contains').fill('PAGE-C');
  await page.getByTestId('users-apply').click();
  await expect(page).toHaveURL(/q=PAGE-C/);
  await expect(rows).toHaveCount(1);
  expect(await shownNames()).toEqual(['page-c']);

  await open(page, '/users?q=page-b');
  const b = (await rows.first().getAttribute('data-testid'))!;
  await page.getByTestId(`${b}-edit`).click();
  await page.locator(`#${b}-enabled-input`).uncheck();
  await page.getByTestId(`${b}-save`).click();
  await expect(page.getByTestId(`${b}-enabled`)).toHaveText('no');

  await open(page, '/users');
  await page.getByLabel('Name contains').fill('page-');
  await page.getByTestId('users-status').selectOption('manual');
  await page.getByTestId('users-apply').click();
  await expect(page).toHaveURL(/status=manual/);
  expect(await shownNames()).toEqual(['page-b']);
  await page.getByTestId('users-status').selectOption('enabled');
  await page.getByTestId('users-sort').selectOption('-name');
  await page.getByTestId('users-apply').click();
  await expect(page).toHaveURL(/sort=-name/);
  await expect(rows.first()).toContainText('page-e');
  expect(await shownNames()).toEqual(['page-e', 'page-d', 'page-c', 'page-a']);
  await expect(page.getByTestId('users-status')).toHaveValue('enabled');
  await expectAccessible(page);

  // A parameter the manager refuses: a clear message, nothing listed.
  await open(page, '/users?sort=bogus');
  await expect(page.getByRole('alert')).toContainText('Must be id, name, usage or created');
  await expect(rows).toHaveCount(0);

  // Clean up.
  await open(page, '/users?q=page-');
  for (const name of names) {
    const id = (await page.locator('tbody tr', { hasText: name }).getAttribute('data-testid'))!;
    await page.getByTestId(`${id}-delete`).click();
    await page.getByTestId(`${id}-confirm`).click();
    await expect(page.locator('tbody tr', { hasText: name })).toHaveCount(0);
  }
});
