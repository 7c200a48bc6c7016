import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { cliPath, exitWithMasterImport } from '../shared/child-processes.js';
const announcement = /^DIPS storage: (\S+)/;
/** A storage service that died is started again after this: soon enough that few requests fail, late enough not to spin on a persistent fault. */
const restartDelayMs = 1_000;
/**
 * Tries at its kept port before taking another: the service of a master that was just killed stops
 * within milliseconds of noticing (exit-with-master.ts), and may hold the port that long.
 */
const keptPortAttempts = 8;
const keptPortRetryMs = 250;
/**
 * The storage service as a child process of `dips up` and `dips master` on local storage. It keeps one
 * port for its data directory (picked free the first time, kept in `storage-service.port`), and a
 * service that crashed is started again on it: the upload URLs already handed out keep working across a
 * crash and a master's restart. It stops with its master, however the master goes (exit-with-master.ts).
 */
export class StorageProcess {
    dataDir;
    logger;
    port;
    child;
    stopping = false;
    /** Restarts are for a service that ran; one that cannot start is start()'s failure. */
    listened = false;
    constructor(dataDir, logger, port) {
        this.dataDir = dataDir;
        this.logger = logger;
        this.port = port;
    }
    /** Starts the service and answers once it listens; `url` is where clients reach it. */
    static async start(dataDir, logger) {
        const portFile = path.join(dataDir, 'storage-service.port');
        const kept = Number(await readFile(portFile, 'utf8').catch(() => '0')) || 0;
        const service = new StorageProcess(dataDir, logger, kept);
        let url;
        for (let attempt = 1; url === undefined && kept !== 0 && attempt <= keptPortAttempts; attempt++) {
            url = await service.spawn().catch(async () => void (await new Promise((resolve) => setTimeout(resolve, keptPortRetryMs))));
        }
        if (url === undefined && kept !== 0)
            logger.warn({ port: kept }, 'storage service could not take its port again; upload URLs handed out before are void');
        if (url === undefined) {
            service.port = 0;
            url = await service.spawn();
        }
        service.port = Number(new URL(url).port);
        await writeFile(portFile, String(service.port));
        return Object.assign(service, { url });
    }
    spawn() {
        const child = spawn(process.execPath, ['--import', exitWithMasterImport, cliPath, 'storage', '--data-dir', this.dataDir, '--port', String(this.port)], {
            // The IPC channel is how the service notices its master is gone; unreferenced, it keeps neither alive.
            stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
        });
        child.channel?.unref();
        this.child = child;
        return new Promise((resolve, reject) => {
            createInterface({ input: child.stdout }).on('line', (line) => {
                process.stdout.write(`${line}\n`);
                const url = announcement.exec(line)?.[1];
                if (url) {
                    this.listened = true;
                    resolve(url);
                }
            });
            child.once('error', reject);
            child.once('exit', (code, signal) => {
                reject(new Error(`the storage service exited before it listened (code ${code}, signal ${signal})`));
                // Exit code 0 is a stop someone asked for (a Ctrl-C reaches the whole process group).
                if (this.stopping || code === 0 || !this.listened)
                    return;
                this.logger.warn({ pid: child.pid, code, signal }, 'storage service exited unexpectedly; starting it again on the same port');
                // A start that fails exits too, and is tried again the same way, a second later.
                setTimeout(() => {
                    if (!this.stopping)
                        this.spawn().catch((error) => this.logger.error({ err: error }, 'storage service did not start again'));
                }, restartDelayMs).unref();
            });
        });
    }
    get pid() {
        return this.child.pid;
    }
    /** Stops the service (SIGTERM: it closes its server) and waits for it to exit. */
    async stop() {
        this.stopping = true;
        if (this.child.exitCode !== null || this.child.signalCode !== null)
            return;
        await new Promise((resolve) => {
            this.child.once('exit', () => resolve());
            this.child.kill('SIGTERM');
        });
    }
}
//# sourceMappingURL=process.js.map