import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDebianPackages } from './debian-packages.js';

/**
 * A real pseudo-terminal for CLI tests: a detached tmux session of a fixed size runs the command, and
 * the test reads the screen as a person would see it (tmux capture-pane). tmux is a Debian package;
 * when it is missing and we are root it is installed, otherwise the error names the command to run.
 */
export function requireTmux(): void {
  ensureDebianPackages({ packages: ['tmux'], purpose: 'the terminal tests', present: () => spawnSync('tmux', ['-V']).status === 0 });
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

export interface TerminalSession {
  /** The visible screen, one string per row, trailing spaces removed. */
  screen(): string[];
  /** Types keys (tmux send-keys names: 'C-c', 'Enter'). */
  keys(...keys: string[]): void;
  /** Waits until a row matches; fails with the screen when it never does. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string[]>;
  close(): void;
}

/**
 * Runs `command` (argv) in a `columns` x `rows` terminal with exactly `env` added to tmux's own
 * environment; "EXIT=<code>" is printed when it ends, and the session stays open to be read.
 */
export function openTerminal(command: string[], options: { columns: number; rows: number; env: Record<string, string>; cwd: string }): TerminalSession {
  requireTmux();
  // A private tmux server per session: nothing is shared with a user's tmux or other tests.
  const socket = `dips-test-${randomBytes(4).toString('hex')}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const exports = Object.entries(options.env).map(([name, value]) => `${name}=${quote(value)}`);
  // The shell outlives a Ctrl-C meant for the command (a trap with an action resets to default in children).
  const script = `trap true INT; cd ${quote(options.cwd)} && env ${exports.join(' ')} ${command.map(quote).join(' ')}; echo EXIT=$?; sleep 3600`;
  tmux('-f', '/dev/null', 'new-session', '-d', '-x', String(options.columns), '-y', String(options.rows), 'sh', '-c', script);
  const screen = () => tmux('capture-pane', '-p').split('\n').map((row) => row.trimEnd()).slice(0, options.rows);
  return {
    screen,
    keys: (...keys) => void tmux('send-keys', ...keys),
    async waitFor(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rows = screen();
        if (rows.some((row) => pattern.test(row))) return rows;
        if (Date.now() > deadline) throw new Error(`the terminal never showed ${pattern}; screen:\n${rows.join('\n')}`);
        await sleep(200);
      }
    },
    close: () => {
      spawnSync('tmux', ['-L', socket, 'kill-server']);
    },
  };
}
