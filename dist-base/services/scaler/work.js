/**
 * What the cluster holds, as the scaler sees it: kinds of work and how much of each. The master lists
 * it (Master.backlog().work, its one backlog figure); the cost model turns it into worker-seconds.
 */
/** The key the cost model learns under: the same work always gives the same text. */
export function workSignature(kind) {
    return JSON.stringify([kind.decode ?? 'raw', kind.encode ?? 'raw', kind.pipeline]);
}
//# sourceMappingURL=work.js.map