/**
 * Preloaded (`node --import`, exitWithMasterImport) into the processes a master starts (local workers,
 * the storage service), which it gives an IPC channel. The channel closes when the master process
 * goes, however it goes (kill -9 included), so the process then stops itself the way Ctrl-C would stop
 * it (SIGTERM: drain, then exit) instead of outliving its master. The channel is unreferenced: it
 * never keeps a finished process alive.
 */
if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
export {};
//# sourceMappingURL=exit-with-master.js.map