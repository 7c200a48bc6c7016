import { readFile } from 'node:fs/promises';
/** Clock ticks per second of /proc's CPU times (USER_HZ): 100 on every Linux that Node supports. */
const ticksPerSecond = 100;
/** CPU and I/O counters of a live process, from /proc/<pid>/stat and /proc/<pid>/io. */
export async function processCounters(pid) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
    const io = await readFile(`/proc/${pid}/io`, 'utf8');
    const counter = (name) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? Number.NaN);
    return { cpuMs, ioBytes: counter('rchar') + counter('wchar') };
}
/** Runs `work` and reads the counters of the master, its workers and its storage service before and after it. */
export async function countersAround(pids, work) {
    const all = [pids.master, ...pids.workers, ...(pids.storage === undefined ? [] : [pids.storage])];
    const before = await Promise.all(all.map(processCounters));
    const start = performance.now();
    await work();
    const seconds = (performance.now() - start) / 1000;
    const after = await Promise.all(all.map(processCounters));
    const cpu = (index) => after[index].cpuMs - before[index].cpuMs;
    let workCpuMs = 0;
    for (let index = 1; index <= pids.workers.length; index++)
        workCpuMs += cpu(index);
    return {
        seconds,
        masterCpuMs: cpu(0),
        masterBytes: after[0].ioBytes - before[0].ioBytes,
        workCpuMs,
        storageCpuMs: pids.storage === undefined ? undefined : cpu(all.length - 1),
    };
}
//# sourceMappingURL=proc.js.map