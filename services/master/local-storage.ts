import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { checkKey, type Storage } from './storage.js';

/** Storage in a directory of the local file system (the default). */
export class LocalStorage implements Storage {
  constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.rename(localPath, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      await fs.copyFile(localPath, target);
      await fs.rm(localPath, { force: true });
    }
  }

  async putBuffer(key: string, data: Buffer): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Write then rename so a crash never leaves a half-written result under the final key.
    const partial = `${target}.partial`;
    await fs.writeFile(partial, data);
    await fs.rename(partial, target);
  }

  async getStream(key: string): Promise<Readable> {
    const file = this.pathOf(key);
    await fs.access(file);
    return createReadStream(file);
  }

  getBuffer(key: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(key));
  }

  async downloadTo(key: string, localPath: string): Promise<void> {
    await fs.copyFile(this.pathOf(key), localPath);
  }

  async deletePrefix(prefix: string): Promise<void> {
    await fs.rm(this.pathOf(prefix), { recursive: true, force: true });
  }
}
