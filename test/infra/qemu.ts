import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's user-mode arm64 emulator and the arm64 C/C++ runtime it loads binaries against. */
export const QEMU = 'qemu-aarch64-static';
export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const PACKAGES = ['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'];
const INSTALL = `apt-get update && apt-get install -y ${PACKAGES.join(' ')}`;

const present = () =>
  spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0 &&
  existsSync(`${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1`) &&
  existsSync(`${ARM64_SYSROOT}/lib/libstdc++.so.6`);

/**
 * Makes sure arm64 binaries can run here (DEVELOPERS.md): finds qemu-user and the arm64 runtime,
 * installs them with apt when running as root, and otherwise fails at once naming the command.
 */
export function ensureArm64Emulation(): void {
  if (present()) return;
  if (process.getuid?.() === 0) {
    const install = spawnSync('sh', ['-c', INSTALL], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (install.status === 0 && present()) return;
    throw new Error(`installing arm64 emulation failed (${INSTALL}):\n${install.stderr}`);
  }
  throw new Error(`arm64 emulation is missing: run "sudo sh -c '${INSTALL}'" (see DEVELOPERS.md)`);
}
