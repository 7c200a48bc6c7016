/** A registered worker as the master's registry sees it (it heartbeats). */
export interface WorkerSnapshot {
  id: string;
  /** URL the master reaches the worker at, e.g. http://10.0.1.5:12345. */
  address: string;
  /** Units of work the worker holds right now. */
  inflight: number;
  /** Tasks it runs at once. */
  slots?: number;
  /** When it last heartbeated (ms since epoch): at first sight, about when it registered. */
  lastHeartbeat?: number;
}

export interface CapacityReport {
  /** Workers running (processes or instances), whether or not they have registered yet. */
  actual: number;
  /** Running workers (past their start-up grace) with no heartbeating worker in the registry; each named for the operator. */
  silent: string[];
}

/**
 * Where workers come from. The scaling loop owns desired capacity and calls apply() on every tick:
 * the provider converges towards it and reports what runs. Scale-in must lose no work: providers stop
 * idle workers first and workers drain on SIGTERM.
 */
export interface CapacityProvider {
  readonly kind: 'local' | 'aws';
  apply(desired: number, workers: readonly WorkerSnapshot[]): Promise<CapacityReport>;
  /** Stops what the provider started (local processes); the AWS group is left as it is. */
  close(): Promise<void>;
}
