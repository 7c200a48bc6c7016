import { spawnSync } from 'node:child_process';

let listsUpdated = false;

/**
 * Makes sure a system tool a test needs is here: when `present()` says it is missing and we run as
 * root with apt, installs Debian's packages (a fresh machine has no package lists yet, so they are
 * updated first); otherwise fails at once with the one command to run. Never skips the test.
 */
export function ensureDebianPackages(options: { packages: readonly string[]; purpose: string; present: () => boolean }): void {
  if (options.present()) return;
  const command = `apt-get update && apt-get install -y ${options.packages.join(' ')}`;
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (process.getuid?.() !== 0 || !hasApt) throw new Error(`${options.purpose} need ${options.packages.join(', ')}: run "sudo sh -c '${command}'"`);
  // Test files run in parallel: wait for another file's apt to finish instead of failing on its lock.
  const apt = (...args: string[]) =>
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', '-qq', ...args], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!listsUpdated) {
    apt('update');
    listsUpdated = true;
  }
  const install = apt('install', '-y', '--no-install-recommends', ...options.packages);
  if (install.status === 0 && options.present()) return;
  throw new Error(`installing ${options.packages.join(', ')} for ${options.purpose} failed (${command}):\n${install.stderr}`);
}
