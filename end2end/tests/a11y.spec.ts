// Every page in light and dark colour schemes, at desktop width and at 375 x 800: axe (WCAG 2.1
// A/AA + best practices) finds nothing, the page does not scroll sideways (tables scroll inside
// their wrapper), and a full-page screenshot is saved to
// end2end/test-results/screenshots/{page}-{scheme}-{width}.png. Plus keyboard navigation: the skip
// link comes first and every main navigation link is reachable by Tab with a visible focus ring.
import * as path from 'path';
import { request, APIRequestContext, Page } from '@playwright/test';
import { test, expect, open, hydrated, expectAccessible, url, restClient, sampleNodeAndUser } from './support';

const SHOTS = path.join(__dirname, '..', 'test-results', 'screenshots');
const SCHEMES = ['light', 'dark'] as const;
const SIZES = [
  { width: 1280, height: 900 },
  { width: 375, height: 800 },
];

/** Runs the checks on the page already open, in every scheme and size, without reloading it. */
async function checkEverywhere(page: Page, name: string) {
  for (const colorScheme of SCHEMES) {
    for (const size of SIZES) {
      await page.setViewportSize(size);
      await page.emulateMedia({ colorScheme });
      // Let layout and styles settle after the change.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const where = `${name} (${colorScheme}, ${size.width} px)`;
      await test.step(where, async () => {
        await page.screenshot({ path: path.join(SHOTS, `${name}-${colorScheme}-${size.width}.png`), fullPage: true });
        const widths = await page.evaluate(() => ({
          scroll: document.documentElement.scrollWidth,
          viewport: window.innerWidth,
          // What sticks out (outside a .table-wrap), to name in the failure.
          wide: [...document.querySelectorAll('body *')]
            .filter((el) => !el.closest('.table-wrap') && el.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 5)
            .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}`),
        }));
        expect(widths.scroll, `${where} scrolls sideways: ${widths.wide.join(', ')}`).toBeLessThanOrEqual(widths.viewport);
        await expectAccessible(page);
      });
    }
  }
}

test.describe('signed in', () => {
  let api: APIRequestContext;
  let nodeId: number;
  let userId: number;
  let remove: (() => Promise<void>) | undefined;
  let secret: string;

  test.beforeAll(async ({ browser }) => {
    api = await restClient(browser, 'a11y-e2e', 'owner');
    ({ nodeId, userId, remove } = await sampleNodeAndUser(api, 'a11y', 65000));
  });

  test.afterAll(async () => {
    await remove?.();
    await api?.dispose();
  });

  const pages: [string, () => string][] = [
    ['dashboard', () => '/'],
    ['nodes', () => '/nodes'],
    ['node', () => `/nodes/${nodeId}`],
    ['users', () => '/users'],
    ['user', () => `/users/${userId}`],
    ['settings', () => '/settings'],
    ['tokens', () => '/tokens'],
    ['admins', () => '/admins'],
    ['audit', () => '/audit'],
  ];
  for (const [name, at] of pages) {
    test(`${name}: accessible, no sideways scroll, light and dark, desktop and 375 px`, async ({ page }) => {
      await open(page, at());
      if (name === 'user') {
        secret = (await page.getByTestId('subscription-url').inputValue()).split('/').pop()!;
      }
      await checkEverywhere(page, name);
    });
  }

  // The end user's profile page; `/u` is rate limited, so it is loaded once.
  test('profile: accessible, no sideways scroll, light and dark, desktop and 375 px', async ({ browser }) => {
    const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
    try {
      const page = await context.newPage();
      if (!secret) {
        const admin = await (await api.get(`/v1/users/${userId}`)).json();
        secret = String(admin.subscription_url ?? admin.subscription?.url ?? '').split('/').pop()!;
      }
      expect(secret, 'the user page showed the subscription URL').toMatch(/^[A-Za-z0-9_-]{32}$/);
      await open(page, `/u/${secret}`);
      await checkEverywhere(page, 'profile');
    } finally {
      await context.close();
    }
  });

  test('keyboard: skip link first, then every navigation link with a visible focus ring', async ({ page }) => {
    await open(page, '/');
    await page.keyboard.press('Tab');
    const skip = page.getByRole('link', { name: 'Skip to content' });
    await expect(skip).toBeFocused();
    await expect(skip).toBeInViewport();
    // From the top again: Tab through the page until every nav link has had the focus.
    await open(page, '/');
    const navLinks = await page.locator('nav[aria-label="Main"] a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    expect(navLinks.length).toBeGreaterThanOrEqual(7);
    const seen = new Map<string, boolean>();
    for (let i = 0; i < 40 && seen.size < navLinks.length; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        if (!el || !el.closest('nav[aria-label="Main"]') || el.tagName !== 'A') return null;
        const style = getComputedStyle(el);
        const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
        return { href: el.getAttribute('href')!, ring: el.matches(':focus-visible') && (outline || style.boxShadow !== 'none') };
      });
      if (focused) seen.set(focused.href, focused.ring);
    }
    expect([...seen.keys()].sort()).toEqual([...navLinks].sort());
    for (const [href, ring] of seen) expect(ring, `${href} shows a focus ring`).toBe(true);
  });

  test('keyboard: Enter on the skip link moves the focus to main', async ({ page }) => {
    await open(page, '/');
    await page.keyboard.press('Tab');
    await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page.locator('#main')).toBeFocused();
  });
});

test.describe('signed out', () => {
  test.use({ storageState: { cookies: [], origins: [] } });
  for (const [name, at] of [['login', '/login'], ['setup', '/setup?token=x']]) {
    test(`${name}: accessible, no sideways scroll, light and dark, desktop and 375 px`, async ({ page }) => {
      await open(page, at);
      await checkEverywhere(page, name);
    });
  }
});
