// Playwright configuration for the Arch panel. The global setup starts a fresh arch-manager and a
// fresh arch-node (free 127.0.0.1 ports, temporary data directories) from target/release; tests
// then drive Debian's Chromium against them. Run: `npx playwright test` (see docs/panel.md).
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  globalSetup: './tests/global-setup.ts',
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 10_000 },
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    baseURL: process.env.ARCH_BASE_URL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [
    // Creates the first administrator through /setup and saves the signed-in browser state.
    { name: 'setup', testMatch: /first-run\.setup\.ts/ },
    {
      name: 'panel',
      dependencies: ['setup'],
      testMatch: /.*\.spec\.ts/,
      use: { storageState: 'test-results/.auth/admin.json' },
    },
  ],
});
