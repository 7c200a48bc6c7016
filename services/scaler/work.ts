/**
 * What the cluster holds, as the scaler sees it: kinds of work and how much of each. The master lists
 * it (Master.backlog().work, its one backlog figure); the cost model turns it into worker-seconds.
 */

/** What a worker does to a unit's pixels; the cost model learns one cost per distinct kind. */
export interface WorkKind {
  /** The steps in canonical JSON (serializePipeline: defaults filled in), as workers receive them. */
  pipeline: ReadonlyArray<Record<string, unknown>>;
  /** The encoded input format the worker decodes (whole images); absent for raw tiles. */
  decode?: string;
  /** The format the worker encodes to (whole images); absent for raw tiles. */
  encode?: string;
}

/** Work of one kind: queued images or tiles, or one unit a worker is running. */
export interface WorkItem {
  kind: WorkKind;
  /** Pixels still to process. */
  pixels: number;
  /** Images or tiles in it. */
  units: number;
  /** How long a worker has been running it (0 while queued); what it still costs is its estimate minus this. */
  runningMs: number;
}

/** The key the cost model learns under: the same work always gives the same text. */
export function workSignature(kind: WorkKind): string {
  return JSON.stringify([kind.decode ?? 'raw', kind.encode ?? 'raw', kind.pipeline]);
}
