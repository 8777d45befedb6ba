// Creating, editing and deleting a user, with client- and server-side validation messages shown
// beside their fields.
import { test, expect, open } from './support';

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
