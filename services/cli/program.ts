import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { OutputFormat } from '../protocol/output.js';
import type { ScalingMode } from '../scaler/master-scaler.js';
import { packageRoot } from '../shared/config.js';
import { registerBatchCommands } from './batch.js';
import { formatOption, qualityOption } from './output-flags.js';
import { registerPresetCommands } from './presets.js';

/* The `dips` command. Each action imports what it needs when it runs, so `dips ops` does not load the master. */

const integer = (what: string, least = 0) => (value: string) => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < least) throw new InvalidArgumentError(`${what} must be a whole number of at least ${least}`);
  return number;
};

interface MasterFlags {
  port?: number;
  dataDir?: string;
}

// `dips ops | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const { version } = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

const program = new Command()
  .name('dips')
  .description('DIPS: distributed image processing on sharp')
  .version(version, '-V, --version', 'print the version (also -v)')
  .showHelpAfterError()
  .addHelpText(
    'after',
    '\nExit codes: 0 every image done; 2 the job ran but some images failed or were canceled (dips submit); 1 an error (bad input, master unreachable, job refused).',
  );

// A misspelt DIPS_* variable would leave its default in place without a word: say so, once per command
// line (a process a DIPS process started, with an IPC channel to it, was warned for already).
program.hook('preAction', async () => {
  if (process.channel) return;
  const { misspeltSettings } = await import('../shared/config.js');
  for (const warning of misspeltSettings()) process.stderr.write(`dips: warning: ${warning}\n`);
});

program
  .command('up')
  .description('a whole local cluster: master + N worker processes (a worker that dies is replaced)')
  .option('--workers <n>', 'worker processes (default: CPU cores)', integer('--workers', 1))
  .option('--port <port>', 'master port (default DIPS_PORT or 8080)', integer('--port'))
  .option('--data-dir <dir>', 'master data directory (default DIPS_DATA_DIR or ./.dips-data)')
  .option('--autoscale', 'start and stop worker processes with the queue depth, between --min and --max')
  .option('--min <n>', 'fewest workers when autoscaling (0 sleeps until a job comes)', integer('--min'), 1)
  .option('--max <n>', 'most workers when autoscaling (default: CPU cores)', integer('--max'))
  .action(async (options: MasterFlags & { workers?: number; autoscale?: boolean; min: number; max?: number }) => {
    // A fixed pool is the local scaler held at min = max, so it too replaces a worker that died.
    const fixed = options.autoscale ? undefined : (options.workers ?? os.availableParallelism());
    const min = fixed ?? options.min;
    const max = fixed ?? options.max ?? Math.max(options.min, os.availableParallelism());
    const url = await serveMaster(options, (masterUrl) => ({ provider: 'local', masterUrl, min, max }));
    if (!url) return;
    const pool = fixed === undefined ? `autoscaling ${min}-${max} workers` : `${fixed} worker${fixed === 1 ? '' : 's'}`;
    process.stdout.write(`DIPS console: ${url}/  (${pool}; Ctrl-C stops all)\n`);
  });

program
  .command('master')
  .description('the master alone: HTTP API, dispatcher, web console')
  .option('--port <port>', 'port (default DIPS_PORT or 8080)', integer('--port'))
  .option('--data-dir <dir>', 'data directory (default DIPS_DATA_DIR or ./.dips-data)')
  .action(async (options: MasterFlags) => {
    // In the cloud stack DIPS_ASG_NAME names the worker group this master scales.
    const groupName = process.env.DIPS_ASG_NAME;
    const url = await serveMaster(options, groupName ? () => ({ provider: 'aws', groupName }) : undefined);
    if (url) process.stdout.write(`DIPS master: ${url}/\n`);
  });

program
  .command('worker')
  .description('one worker; registers with the master and heartbeats')
  .option('--port <port>', 'port (default 12345; 0 picks a free one)', integer('--port'))
  .option('--master <url>', 'master URL (default DIPS_MASTER_URL or http://127.0.0.1:8080)')
  .option('--address <url>', 'address the master uses to reach this worker (default DIPS_WORKER_ADDRESS or http://host:port)')
  .action(async (options: { port?: number; master?: string; address?: string }) => {
    const { loadWorkerConfig } = await import('../shared/config.js');
    const config = loadWorkerConfig({
      ...(options.port === undefined ? {} : { port: options.port }),
      ...(options.master ? { masterUrl: options.master } : {}),
      ...(options.address ? { advertisedAddress: options.address } : {}),
    });
    const { hasWorkerNodeArgs, relaunchAsWorker } = await import('../worker/node-args.js');
    if (!hasWorkerNodeArgs()) return relaunchAsWorker(config.slots);
    const { startWorker } = await import('../worker/server.js');
    // The worker registers before startWorker resolves, and the master may send it work at once: a
    // signal from then on must drain it, not kill it with its tasks.
    const starting = startWorker(config);
    stopOnSignal(async () => (await starting).drain());
    const worker = await starting;
    process.stdout.write(`DIPS worker ${worker.id}: ${worker.url}\n`);
  });

program
  .command('storage')
  .description('the local storage service alone: the files of a master\'s data directory behind its signed URLs (dips up and dips master start it)')
  .option('--port <port>', 'port (0 picks a free one)', integer('--port'), 0)
  .option('--data-dir <dir>', 'the master\'s data directory (default DIPS_DATA_DIR or ./.dips-data)')
  .action(async (options: { port: number; dataDir?: string }) => {
    const { startStorageService } = await import('../storage/server.js');
    const running = await startStorageService({ port: options.port, ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
    process.stdout.write(`DIPS storage: ${running.url}\n`);
    stopOnSignal(() => running.close());
  });

program
  .command('process')
  .description('run a pipeline in this process (no cluster, no tiling): the reference result')
  .argument('<files...>', 'input images')
  .requiredOption('--pipeline <json>', 'steps, e.g. \'[{"op":"blur","sigma":2}]\'')
  .requiredOption('--out <dir>', 'output directory')
  .addOption(formatOption("the input's"))
  .addOption(qualityOption())
  .action(async (files: string[], options: { pipeline: string; out: string; format?: OutputFormat; quality?: string }) => {
    const { processFiles } = await import('./process-files.js');
    const failures = await processFiles(files, options);
    process.exitCode = failures > 0 ? 1 : 0;
  });

program
  .command('submit')
  .description('submit images (files or directories of images) to a master, show progress, download results; or, with --from, a batch job read from storage')
  .argument('[files...]', 'input images, or directories whose images are sent (split into jobs of at most DIPS_MAX_FILES); none with --from')
  .option('--pipeline <json>', 'steps, e.g. \'[{"op":"blur","sigma":2}]\'')
  .option('--preset <name>', 'run a preset of the master instead of --pipeline (dips presets)')
  .option('--options <json>', 'output options, e.g. \'{"metadata":"exif","progressive":true}\' (dips ops --json: outputOptions)')
  .option('--out <dir>', 'download results here')
  .option('--overwrite', 'replace result files that already exist in --out (default: keep them)')
  .option('--from <uri>', 'batch job: inputs under s3://bucket/prefix or file:///dir, or a .jsonl/.csv manifest')
  .option('--to <uri>', 'batch job: write results under this s3:// or file:/// prefix')
  .option('--max-failures <n>', 'batch job: stop after this many failed items (or a percentage, e.g. 5%)')
  .addOption(formatOption("the input's"))
  .addOption(qualityOption())
  .option('--webhook <url>', 'the master calls this URL once each job finishes (README "Webhooks")')
  .option('--master <url>', 'master URL (default DIPS_MASTER_URL or http://127.0.0.1:8080)')
  .action(async (args: string[], options: { pipeline?: string; preset?: string; options?: string; out?: string; overwrite?: boolean; from?: string; to?: string; maxFailures?: string; format?: string; quality?: string; webhook?: string; master?: string }) => {
    if ((options.pipeline === undefined) === (options.preset === undefined)) throw new Error('give --pipeline JSON or --preset NAME (one of them)');
    if (options.from) {
      const { MasterClient } = await import('./client.js');
      const { exitCodeFor, submitBatch } = await import('./batch.js');
      const job = await submitBatch(new MasterClient(options.master), { ...options, from: options.from, progress: process.stderr.isTTY === true });
      process.stderr.write(`job ${job.id} ${job.status}: ${job.progress.done} done, ${job.progress.failed} failed, ${job.progress.skipped ?? 0} skipped of ${job.progress.total}${job.error ? ` (${job.error})` : ''}\n`);
      process.exitCode = exitCodeFor(job);
      return;
    }
    if (args.length === 0) throw new Error('submit needs image files or directories, or --from URI for a batch job');
    const { collectInputs, chunk } = await import('./inputs.js');
    const { files, problems } = await collectInputs(args);
    if (problems.length > 0) throw new Error(`nothing was sent:\n  ${problems.join('\n  ')}`);
    const { loadMasterConfig } = await import('../shared/config.js');
    const { MasterClient } = await import('./client.js');
    const { submitJobs, exitCodeFor, describeOutcome } = await import('./submit.js');
    const { TerminalOutput } = await import('./terminal-output.js');
    const output = new TerminalOutput({ progress: true });
    const jobs = await submitJobs(new MasterClient(options.master), chunk(files, loadMasterConfig().maxFiles), { ...options, progress: true }, output);
    for (const job of jobs) output.note(describeOutcome(job));
    process.exitCode = exitCodeFor(jobs);
  });

program
  .command('download')
  .description('a job\'s finished results as files, named as dips submit --out names them')
  .argument('<id>', 'job id')
  .requiredOption('--out <dir>', 'directory to save them in')
  .option('--overwrite', 'replace files that already exist in --out (default: keep them)')
  .option('--master <url>', 'master URL')
  .action(async (id: string, options: { out: string; overwrite?: boolean; master?: string }) => {
    const { MasterClient } = await import('./client.js');
    const { downloadJob } = await import('./download.js');
    const { isTerminalStatus } = await import('../protocol/api.js');
    const { TerminalOutput } = await import('./terminal-output.js');
    const output = new TerminalOutput({ progress: false });
    const { job, results } = await downloadJob(new MasterClient(options.master), id, { out: options.out, overwrite: options.overwrite === true }, output);
    const running = isTerminalStatus(job.status) ? '' : '; it is still running: run this again for the rest';
    output.note(`job ${job.id} ${job.status}: ${results} result${results === 1 ? '' : 's'} in ${options.out}${running}`);
  });

registerBatchCommands(program);
registerPresetCommands(program);

program
  .command('status')
  .description('a job\'s state: its images in a table')
  .argument('<id>', 'job id')
  .option('--master <url>', 'master URL')
  .option('--json', 'print the master\'s answer as JSON')
  .action(async (id: string, options: { master?: string; json?: boolean }) => {
    const { MasterClient } = await import('./client.js');
    const { formatJob } = await import('./views.js');
    const { jobView } = await import('../protocol/api.js');
    const { clusterAnswer } = await import('../protocol/newcomer.js');
    const client = new MasterClient(options.master);
    const job = await client.json(`/v1/jobs/${encodeURIComponent(id)}`, jobView);
    if (options.json) return printJson(job);
    const cluster = job.status === 'queued' ? await client.json('/v1/cluster', clusterAnswer) : undefined;
    process.stdout.write(`${formatJob(job, cluster?.waiting?.replace('<master URL>', client.baseUrl))}\n`);
  });

program
  .command('ops')
  .description('the operation catalogue; with a name, that operation in full')
  .argument('[operation]', 'an operation: its parameters (type, range, default, meaning) and how it tiles')
  .option('--json', 'print the catalogue as JSON (as GET /v1/operations serves it)')
  .action(async (name: string | undefined, options: { json?: boolean }) => {
    const { describeCatalogue } = await import('../image-core/catalogue.js');
    const { operationText, parametersOf } = await import('../image-core/operations-doc.js');
    const catalogue = describeCatalogue();
    if (name !== undefined) {
      const op = catalogue.operations.find((candidate) => candidate.name === name);
      const names = catalogue.operations.map((candidate) => candidate.name);
      const { didYouMean } = await import('../shared/suggest.js');
      if (!op) throw new Error(`unknown operation "${name}"${didYouMean(name, names)}; known: ${names.join(', ')}`);
      if (options.json) return printJson(op);
      return void process.stdout.write(operationText(op));
    }
    if (options.json) return printJson(catalogue);
    for (const op of catalogue.operations) {
      const params = parametersOf(op)
        .map(({ name, schema }) => `${name}${schema.default === undefined ? '' : `=${JSON.stringify(schema.default)}`}`)
        .join(', ');
      process.stdout.write(`${op.name}${params ? ` {${params}}` : ''}\n    ${op.description}${op.tileable ? '' : ' (runs whole, not tiled)'}\n`);
    }
  });

program
  .command('cluster')
  .description('workers, queue depth and desired capacity')
  .option('--master <url>', 'master URL')
  .option('--json', 'print the master\'s answer as JSON')
  .action(async (options: { master?: string; json?: boolean }) => {
    const { MasterClient } = await import('./client.js');
    const { formatCluster } = await import('./views.js');
    const { clusterAnswer } = await import('../protocol/newcomer.js');
    const client = new MasterClient(options.master);
    const cluster = await client.json('/v1/cluster', clusterAnswer);
    if (options.json) return printJson(cluster);
    process.stdout.write(`${formatCluster(cluster, client.baseUrl)}\n`);
  });

/**
 * Starts the master and, when given a scaling mode, its scaler (mode from the master's URL); Ctrl-C or
 * SIGTERM stops the scaler (draining the workers it started), the master, then its storage service.
 * On local storage without DIPS_STORAGE_URL it first starts the storage service (services/storage/),
 * so that clients' bytes do not pass through the master. Resolves with the URL, or with undefined when a
 * signal stopped it before it was up (nothing to announce).
 */
async function serveMaster(flags: MasterFlags, scaling?: (masterUrl: string) => ScalingMode): Promise<string | undefined> {
  const [{ startMaster }, { loadMasterConfig }, { createLogger }] = await Promise.all([import('../master/server.js'), import('../shared/config.js'), import('../shared/logger.js')]);
  const options = { ...(flags.port === undefined ? {} : { port: flags.port }), ...(flags.dataDir ? { dataDir: flags.dataDir } : {}) };
  const config = loadMasterConfig(options);
  const storageService =
    config.storage === 'local' && !config.storageUrl ? await (await import('../storage/process.js')).StorageProcess.start(config.dataDir, createLogger('dips-master').child({ component: 'storage' })) : undefined;
  const running = await startMaster({ ...options, ...(storageService ? { storageUrl: storageService.url } : {}) }).catch(async (error: unknown) => {
    await storageService?.stop();
    throw error;
  });
  // The server takes requests and registrations from here on, so a signal from here on stops it cleanly,
  // also while the scaler is still retrying its start (up to about 10 minutes on AWS: startup.ts).
  const stopping = new AbortController();
  let scaler: Awaited<ReturnType<typeof startMasterScaler>> | undefined;
  stopOnSignal(async () => {
    stopping.abort(new Error('the master is stopping'));
    await scaler?.stop();
    await running.close();
    await storageService?.stop();
  });
  // Retried with backoff (the group may not exist yet, IAM may be propagating); shown in /v1/cluster meanwhile.
  // A scaler that never starts stops the master with a non-zero exit, so its supervisor sees it.
  const { startMasterScaler } = await import('../scaler/master-scaler.js');
  const { startScalerWithRetry } = await import('../scaler/startup.js');
  if (scaling) {
    const logger = running.master.logger.child({ component: 'scaler' });
    scaler = await startScalerWithRetry(running.master, () => startMasterScaler(running.master, scaling(running.url)), logger, undefined, stopping.signal).catch(
      async (error: unknown) => {
        if (stopping.signal.aborted) return undefined; // the signal's stop closes the rest
        process.stderr.write(`dips: ${(error as Error).message}\n`);
        await running.close();
        process.exit(1);
      },
    );
  }
  return stopping.signal.aborted ? undefined : running.url;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A SIGINT this soon after the first signal is the same Ctrl-C arriving by a second path (the terminal
 * signals a worker directly while `dips up` passes SIGTERM on, in either order); a person's second
 * press takes longer.
 */
const sameInterruptMs = 500;

/**
 * SIGINT (Ctrl-C) or SIGTERM: stop cleanly and exit 0. A second Ctrl-C exits at once (130, as shells
 * report an interrupt); a SIGTERM during the stop is ignored, because that is `dips up` passing on the
 * same Ctrl-C the terminal already sent its workers.
 */
function stopOnSignal(stop: () => Promise<void>): void {
  let stoppingSince: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      if (signal === 'SIGINT' && Date.now() - stoppingSince > sameInterruptMs) process.exit(130);
      return;
    }
    stoppingSince = Date.now();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`dips: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

// -v is what many tools answer with their version; commander takes one short flag, so it is mapped here.
const argv = process.argv.length === 3 && process.argv[2] === '-v' ? [...process.argv.slice(0, 2), '--version'] : process.argv;
program.parseAsync(argv).catch((error: unknown) => {
  process.stderr.write(`dips: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
