import { spawnSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { ensureDebianPackages } from './debian-packages.js';

/** Browsers a machine may already have, in the order they are tried after CHROME_PATH. */
const candidates = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function findBrowser(): string | undefined {
  if (process.env.CHROME_PATH) return process.env.CHROME_PATH;
  for (const name of candidates) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return undefined;
}

/**
 * A real headless Chromium for the console tests: CHROME_PATH, or a Chromium or Chrome on PATH, or
 * Debian's `chromium` installed when we run as root. Background networking is off: this machine has
 * no network beyond loopback, and the tests assert that the console makes no foreign requests.
 */
export async function launchBrowser(): Promise<Browser> {
  ensureDebianPackages({ packages: ['chromium'], purpose: 'the web console tests', present: () => findBrowser() !== undefined });
  return chromium.launch({
    executablePath: findBrowser()!,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
