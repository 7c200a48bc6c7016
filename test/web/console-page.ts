import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { getCluster, waitUntil } from '../helpers/api.js';
import { launchBrowser } from '../helpers/browser.js';
import { killAll, launchDips, type DipsProcess } from '../helpers/processes.js';

/** What the console tests share: how the console is opened, looked at and checked. */
export const artifacts = path.resolve(import.meta.dirname, '../../test-artifacts/web');
export const DESKTOP = { width: 1280, height: 900 };
export const NARROW = { width: 390, height: 844 };

/** `dips <args>` with the default timings and logs (the console is looked at as a user runs it), no token unless given. */
export const startDips = (args: string[], env: NodeJS.ProcessEnv = {}) => launchDips(args, { env: { ...process.env, DIPS_TOKEN: '', ...env } });

/** What a console page may do beyond its master: a token already entered, a bucket its results redirect to. */
export interface ConsoleOptions {
  /** Entered before the page loads, as a user who gave it earlier in the tab's session. */
  token?: string;
  /** The bucket's origin (S3 storage): the master redirects result requests to presigned GETs there. */
  storageOrigin?: string;
}

/**
 * A fresh browser profile on the console of `master`. Records page errors and every request that
 * leaves the master and its storage service (the console must load nothing from elsewhere but its
 * storage), both checked by closePages after each test.
 */
const opened: Array<{ context: BrowserContext; pageErrors: string[]; foreignRequests: string[] }> = [];
export async function openConsole(browser: Browser, master: Pick<DipsProcess, 'url' | 'storageUrl'>, viewport = DESKTOP, options: ConsoleOptions = {}): Promise<Page> {
  const masterUrl = master.url;
  // Reduced motion (the console honours it) so screenshots show the progress bar where it ends.
  const context = await browser.newContext({ viewport, acceptDownloads: true, reducedMotion: 'reduce' });
  const record = { context, pageErrors: [] as string[], foreignRequests: [] as string[] };
  opened.push(record);
  const allowed = [`${masterUrl}/`, 'blob:', 'data:', ...[master.storageUrl, options.storageOrigin].filter((origin) => origin !== undefined).map((origin) => `${origin}/`)];
  context.on('request', (request) => {
    const url = request.url();
    if (!allowed.some((prefix) => url.startsWith(prefix))) record.foreignRequests.push(url);
  });
  if (options.token) await context.addInitScript((token) => sessionStorage.setItem('dips.token', token), options.token);
  const page = await context.newPage();
  page.on('pageerror', (error) => record.pageErrors.push(error.message));
  await page.goto(`${masterUrl}/`);
  return page;
}

/** Closes the pages opened since the last call; fails on any page error or foreign request they saw. */
export async function closePages(): Promise<void> {
  for (const { context, pageErrors, foreignRequests } of opened.splice(0)) {
    await context.close();
    expect(pageErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  }
}

const axeSource = readFile(path.resolve(import.meta.dirname, '../../node_modules/axe-core/axe.min.js'), 'utf8');

/** axe-core's WCAG 2.x A/AA and best-practice rules on the page as it is now: "rule: element" per problem. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: await axeSource });
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: Array<{ id: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    const { violations } = await axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] });
    return violations.flatMap((violation) => violation.nodes.map((node) => `${violation.id}: ${node.target.join(' ')}`));
  });
}

export async function addStep(page: Page, operation: string): Promise<void> {
  await page.getByLabel('Operation', { exact: true }).selectOption(operation);
  await page.getByRole('button', { name: 'Add step' }).click();
}

/** Waits until the master lists `count` workers, so the console is looked at on a cluster at full strength. */
export async function waitForWorkers(masterUrl: string, count: number, token?: string): Promise<void> {
  await waitUntil(() => getCluster(masterUrl, token), ({ workers }) => workers.length === count, 30_000, `${masterUrl} to list ${count} workers`);
}

/** A browser and a one-worker `dips up` with its data in a scratch folder: what one console test file needs. */
export interface ConsoleCluster {
  browser: Browser;
  cluster: DipsProcess;
  scratch: string;
  close(): Promise<void>;
}

/** Starts a ConsoleCluster; `environment` may write files into the scratch folder and name them to the master. */
export async function startConsoleCluster(environment: (scratch: string) => Promise<NodeJS.ProcessEnv> = async () => ({})): Promise<ConsoleCluster> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'dips-web-'));
  await mkdir(artifacts, { recursive: true });
  const env = await environment(scratch);
  const [browser, cluster] = await Promise.all([launchBrowser(), startDips(['up', '--workers', '1', '--port', '0', '--data-dir', path.join(scratch, 'data')], env)]);
  await waitForWorkers(cluster.url, 1);
  return {
    browser,
    cluster,
    scratch,
    async close() {
      await browser.close();
      await cluster.stop();
      await killAll();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
