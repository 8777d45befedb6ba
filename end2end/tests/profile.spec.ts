// A user's subscription: the admin's user page shows its URL and QR code, `/sub/{secret}` serves
// the server list to a client app, the end user's profile page `/u/{secret}` is complete without
// JavaScript (status, usage, URL, QR, import links, server links) and copies links with it, and
// "Regenerate" makes the old URLs answer 404.
//
// `/sub` and `/u` are rate limited per source address (a burst of 10, then 30 a minute); this
// test stays within the burst: 9 requests to them in all.
import { test, expect, open, expectAccessible, url, setDirectMode } from './support';

const DIRECT_PORT = '47023';
const NAME = 'dora';
const QUOTA_BYTES = 2_500_000_000;
/** What a client app sends (not a browser, which is sent to the profile page). */
const CLIENT_UA = { 'user-agent': 'v2rayNG/1.8.19' };

/** The one-tap import links the profile page offers for the subscription at `subUrl`. */
function importLinks(subUrl: string, title: string) {
  const enc = encodeURIComponent(subUrl);
  return {
    'import-sing-box': `sing-box://import-remote-profile?url=${enc}#${encodeURIComponent(title)}`,
    'import-clash': `clash://install-config?url=${enc}`,
    'import-shadowrocket': `sub://${Buffer.from(subUrl).toString('base64url')}`,
    'import-hiddify': `hiddify://import/${subUrl}`,
  };
}

test('a subscription is served, shown on the profile page and regenerated', async ({ page, context, browser }) => {
  try {
    // Only the direct mode on, at 127.0.0.1; a user with a 2.5 GB quota.
    await setDirectMode(page, DIRECT_PORT);
    await open(page, '/users');
    await page.locator('#new-user-name').fill(NAME);
    await page.locator('#new-user-quota').fill('2.5');
    await page.getByTestId('create-user').click();
    await expect(page.getByTestId('user-created')).toHaveText(`User ${NAME} was created.`);
    await page.locator('tbody tr', { hasText: NAME }).getByRole('link', { name: NAME }).click();
    await expect(page).toHaveURL(/\/users\/\d+$/);
    await expect(page.getByTestId('user-detail')).toHaveText(`User ${NAME}`);
    const userPath = new URL(page.url()).pathname;

    // The admin's view: the subscription URL on the panel's own address, its QR code, the
    // profile page link.
    const subField = page.getByTestId('subscription-url');
    await expect(subField).toHaveValue(new RegExp(`^${url('/sub/').replace(/[.]/g, '\\.')}[A-Za-z0-9_-]{32}$`));
    const subUrl = await subField.inputValue();
    const secret = subUrl.split('/').pop()!;
    const pageUrl = url(`/u/${secret}`);
    await expect(page.getByTestId('subscription-page')).toHaveAttribute('href', pageUrl);
    await expect(page.getByTestId('subscription-qr').locator('svg path')).toHaveCount(1);
    // The direct link's credentials, as the subscription must carry them (named for the end user).
    const adminLink = await page.getByTestId('link-direct-url').inputValue();
    const userinfo = adminLink.match(/^ss:\/\/([A-Za-z0-9_-]+)@127\.0\.0\.1:47023#dora-direct$/)![1];
    const directLink = `ss://${userinfo}@127.0.0.1:${DIRECT_PORT}#Arch%20%C2%B7%20direct`;

    // A client app gets the base64 list: exactly the direct server, with the usage headers.
    const list = await page.request.get(subUrl, { headers: CLIENT_UA });
    expect(list.status()).toBe(200);
    const h = list.headers();
    expect(h['content-type']).toBe('text/plain; charset=utf-8');
    expect(h['subscription-userinfo']).toBe(`upload=0; download=0; total=${QUOTA_BYTES}; expire=0`);
    expect(h['profile-update-interval']).toBe('12');
    expect(h['profile-web-page-url']).toBe(pageUrl);
    expect(h['cache-control']).toBe('no-store');
    expect(h['referrer-policy']).toBe('no-referrer');
    expect(h['content-disposition']).toBe(
      `attachment; filename="Arch _ ${NAME}.txt"; filename*=UTF-8''Arch%20%C2%B7%20${NAME}.txt`);
    expect(Buffer.from(await list.text(), 'base64').toString('utf8')).toBe(directLink);
    // SIP008 by parameter: the same server as JSON.
    const sip008 = await page.request.get(`${subUrl}?format=sip008`, { headers: CLIENT_UA });
    expect(sip008.status()).toBe(200);
    const doc = await sip008.json();
    expect(doc.version).toBe(1);
    expect(doc.bytes_used).toBe(0);
    expect(doc.bytes_remaining).toBe(QUOTA_BYTES);
    expect(doc.servers.map((s: { remarks: string; server: string; server_port: number; method: string }) =>
      [s.remarks, s.server, s.server_port, s.method])).toEqual([
      ['Arch · direct', '127.0.0.1', Number(DIRECT_PORT), 'chacha20-ietf-poly1305'],
    ]);
    // A browser asking for the subscription is sent to the profile page.
    const redirect = await page.request.get(subUrl, { maxRedirects: 0 });
    expect(redirect.status()).toBe(303);
    expect(redirect.headers()['location']).toBe(pageUrl);

    // The profile page without JavaScript, signed out: everything is in the served HTML.
    const noJs = await browser.newContext({ javaScriptEnabled: false });
    try {
      const p = await noJs.newPage();
      const response = await p.goto(pageUrl);
      expect(response!.status()).toBe(200);
      expect(response!.headers()['cache-control']).toBe('no-store');
      // The secret is in the URL: no referrer leaves the page, and search engines skip it.
      await expect(p.locator('meta[name="referrer"]')).toHaveAttribute('content', 'no-referrer');
      await expect(p.locator('meta[name="robots"]')).toHaveAttribute('content', 'noindex');
      await expect(p.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await expect(p.getByRole('heading', { level: 1 })).toHaveText(`Subscription of ${NAME}`);
      await expect(p.getByTestId('profile-status')).toHaveText('Active');
      await expect(p.locator('#profile-usage-text')).toHaveText('0 B of 2.5 GB');
      await expect(p.locator('#profile-meter')).toHaveAttribute('max', String(QUOTA_BYTES));
      await expect(p.locator('#profile-meter')).toHaveAttribute('value', '0');
      await expect(p.getByTestId('profile-url')).toHaveValue(subUrl);
      await expect(p.getByTestId('profile-qr').locator('svg path')).toHaveCount(1);
      for (const [id, href] of Object.entries(importLinks(subUrl, `Arch · ${NAME}`))) {
        await expect(p.getByTestId(id)).toHaveAttribute('href', href);
      }
      await expect(p.getByTestId('server-1')).toHaveAttribute('aria-label', 'Arch · direct');
      await expect(p.getByTestId('server-1-url')).toHaveValue(directLink);
      await expect(p.getByTestId('server-1-qr').locator('svg path')).toHaveCount(1);
      await expect(p.getByTestId('server-2')).toHaveCount(0);
      await expect(p.getByTestId('profile-no-servers')).toHaveCount(0);
    } finally {
      await noJs.close();
    }

    // With JavaScript: the copy button copies the server's link; accessible; no horizontal
    // scroll on a 375 px wide phone screen.
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    await open(page, `/u/${secret}`);
    await expect(page.getByTestId('server-1-url')).toHaveValue(directLink);
    await page.getByTestId('server-1-copy').click();
    await expect(page.getByTestId('server-1-copied')).toHaveText('Copied.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(directLink);
    await page.getByTestId('profile-copy').click();
    await expect(page.getByTestId('profile-copied')).toHaveText('Copied.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(subUrl);
    await expectAccessible(page);
    await page.setViewportSize({ width: 375, height: 812 });
    await expect.poll(() => page.evaluate(() => window.innerWidth)).toBe(375);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.setViewportSize({ width: 1280, height: 720 });

    // Regenerate, with its confirmation: the old URLs answer 404, the new ones work.
    await open(page, userPath);
    await expect(subField).toHaveValue(subUrl);
    await page.getByTestId('subscription-rotate').click();
    await expect(page.getByTestId('subscription')).toContainText('The current URL stops working at once.');
    await page.getByTestId('subscription-rotate-confirm').click();
    await expect(page.getByTestId('subscription-rotate-status'))
      .toHaveText('A new URL was made; the old one no longer works.');
    await expect(subField).not.toHaveValue(subUrl);
    const newUrl = await subField.inputValue();
    expect(newUrl).toMatch(new RegExp(`^${url('/sub/').replace(/[.]/g, '\\.')}[A-Za-z0-9_-]{32}$`));
    const newSecret = newUrl.split('/').pop()!;
    await expect(page.getByTestId('subscription-page')).toHaveAttribute('href', url(`/u/${newSecret}`));
    expect((await page.request.get(subUrl, { headers: CLIENT_UA })).status()).toBe(404);
    expect((await page.request.get(pageUrl)).status()).toBe(404);
    const fresh = await page.request.get(newUrl, { headers: CLIENT_UA });
    expect(fresh.status()).toBe(200);
    expect(Buffer.from(await fresh.text(), 'base64').toString('utf8')).toBe(directLink);
    expect((await page.request.get(url(`/u/${newSecret}`))).status()).toBe(200);
  } finally {
    // Leave no user and no mode behind for the other tests.
    await open(page, '/users');
    const row = page.locator('tbody tr', { hasText: NAME });
    if ((await row.count()) > 0) {
      const rowId = (await row.getAttribute('data-testid'))!;
      await page.getByTestId(`${rowId}-delete`).click();
      await page.getByTestId(`${rowId}-confirm`).click();
      await expect(row).toHaveCount(0);
    }
    await setDirectMode(page, '0');
  }
});
