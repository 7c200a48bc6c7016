import { readdir, readFile } from 'node:fs/promises';

export interface ProcessCounters {
  /** utime + stime, in ms. */
  cpuMs: number;
  /** rchar + wchar: bytes the process passed through read/write system calls (sockets and files alike). */
  ioBytes: number;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ): 100 on every Linux that Node supports. */
const ticksPerSecond = 100;

/** utime + stime in ms of a /proc stat line (a process's or a thread's). */
function cpuMsOf(stat: string): number {
  // Fields after the command name (which may hold spaces) start at state; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/**
 * The threads that do sharp's pixel work: libvips' pool and libuv's, on which sharp runs each pipeline
 * (named so by libvips and Node). The rest of a process is its JavaScript thread and V8's helpers.
 */
const pixelThreadNames = /^(libvips worker|libuv-worker)/;

/**
 * CPU in ms of the process's threads other than its pixel-work threads (pixelThreadNames): the JavaScript
 * thread and V8's helpers, from /proc/<pid>/task/<tid>/stat. The pixel work is the process's CPU less
 * this: libvips' pool lets idle threads exit, and an exited thread's CPU leaves the per-thread sum while
 * the process's own counter keeps it (a sum of the pixel threads once lost 7 ms per image that way).
 */
export async function jsThreadsCpuMs(pid: number | 'self'): Promise<number> {
  let total = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (stat && !pixelThreadNames.test(name)) total += cpuMsOf(stat);
  }
  return total;
}

/**
 * Peak resident set size of a live process (Linux VmHWM, its memory's own high-water mark), in bytes.
 * Not getrusage's maxRSS: Linux carries that across exec, so a child's starts at its parent's size.
 */
export async function peakRss(pid: number | 'self'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** CPU and I/O counters of a live process, from /proc/<pid>/stat and /proc/<pid>/io. */
export async function processCounters(pid: number): Promise<ProcessCounters> {
  const cpuMs = cpuMsOf(await readFile(`/proc/${pid}/stat`, 'utf8'));
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  const counter = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? Number.NaN);
  return { cpuMs, ioBytes: counter('rchar') + counter('wchar') };
}

/** What a run cost, from /proc around it: wall time, the master's CPU and bytes, the workers' CPU together, the storage service's CPU. */
export interface RunCounters {
  seconds: number;
  masterCpuMs: number;
  masterBytes: number;
  workCpuMs: number;
  /** Of workCpuMs, the workers' pixel-work threads (their CPU less jsThreadsCpuMs). */
  workPixelCpuMs: number;
  /** The local storage service's (services/storage/); undefined in S3 mode, where s3rver runs in the bench's own process. */
  storageCpuMs: number | undefined;
}

/** Runs `work` and reads the counters of the master, its workers and its storage service before and after it. */
export async function countersAround(pids: { master: number; workers: number[]; storage?: number | undefined }, work: () => Promise<unknown>): Promise<RunCounters> {
  const all = [pids.master, ...pids.workers, ...(pids.storage === undefined ? [] : [pids.storage])];
  const js = () => Promise.all(pids.workers.map(jsThreadsCpuMs)).then((each) => each.reduce((sum, ms) => sum + ms, 0));
  const before = await Promise.all(all.map(processCounters));
  const jsBefore = await js();
  const start = performance.now();
  await work();
  const seconds = (performance.now() - start) / 1000;
  const after = await Promise.all(all.map(processCounters));
  const workJsCpuMs = (await js()) - jsBefore;
  const cpu = (index: number) => after[index]!.cpuMs - before[index]!.cpuMs;
  let workCpuMs = 0;
  for (let index = 1; index <= pids.workers.length; index++) workCpuMs += cpu(index);
  return {
    seconds,
    masterCpuMs: cpu(0),
    masterBytes: after[0]!.ioBytes - before[0]!.ioBytes,
    workCpuMs,
    workPixelCpuMs: workCpuMs - workJsCpuMs,
    storageCpuMs: pids.storage === undefined ? undefined : cpu(all.length - 1),
  };
}
