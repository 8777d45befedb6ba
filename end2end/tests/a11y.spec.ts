// axe (WCAG 2.1 A/AA + best practices) on every page, as rendered and hydrated.
import { test, open, expectAccessible } from './support';

for (const path of ['/nodes', '/users', '/settings']) {
  test(`${path} has no accessibility violations`, async ({ page }) => {
    await open(page, path);
    await expectAccessible(page);
  });
}

test.describe('signed out', () => {
  test.use({ storageState: { cookies: [], origins: [] } });
  for (const path of ['/login', '/setup?token=x']) {
    test(`${path} has no accessibility violations`, async ({ page }) => {
      await open(page, path);
      await expectAccessible(page);
    });
  }
});
