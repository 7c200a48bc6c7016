import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureDebianPackages } from '../helpers/debian-packages.js';

/** Debian's user-mode arm64 emulator and the arm64 C/C++ runtime it loads binaries against. */
export const QEMU = 'qemu-aarch64-static';
export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const PACKAGES = ['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'];

const present = () =>
  spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0 &&
  existsSync(`${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1`) &&
  existsSync(`${ARM64_SYSROOT}/lib/libstdc++.so.6`);

/**
 * Makes sure arm64 binaries can run here (DEVELOPERS.md): finds qemu-user and the arm64 runtime,
 * installs them with apt when running as root, and otherwise fails at once naming the command.
 */
export function ensureArm64Emulation(): void {
  ensureDebianPackages({ packages: PACKAGES, purpose: 'the arm64 bundle test', present });
}
