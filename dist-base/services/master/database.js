import { DatabaseSync } from 'node:sqlite';
/**
 * Opens one of the master's SQLite files (jobs, upload sessions, presets, webhooks) the same way: WAL,
 * so readers never wait for the writer, and synchronous=NORMAL, so a commit is durable against a crash
 * of the process (the WAL is written before COMMIT returns) but not of the machine, where the last
 * commits may be lost (README "Limits"). FULL would also fsync on every commit, a guarantee the job
 * store, which holds the jobs themselves, does not give; sessions, presets and webhook deliveries do
 * not need more than the jobs they belong to.
 */
export function openDatabase(file) {
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    return db;
}
//# sourceMappingURL=database.js.map