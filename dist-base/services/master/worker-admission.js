import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
/**
 * Which addresses a worker may register: the one its heartbeat connection comes from, or any in the
 * allowlisted ranges (DIPS_WORKER_NETWORKS, e.g. "10.0.0.0/16": behind a NAT or proxy the connection's
 * address is not the worker's). Without this, anyone holding the credential could make the master send
 * work, and the secret in it, to an address of their choosing.
 */
export class WorkerAdmission {
    allowed = new BlockList();
    constructor(networks) {
        for (const range of networks.split(',').map((text) => text.trim()).filter(Boolean)) {
            const [address, prefix] = range.split('/');
            const family = isIP(address ?? '');
            if (family === 0 || prefix === undefined || !/^\d+$/.test(prefix))
                throw new Error(`DIPS_WORKER_NETWORKS: "${range}" is not an address range like 10.0.0.0/16`);
            this.allowed.addSubnet(address, Number(prefix), family === 6 ? 'ipv6' : 'ipv4');
        }
    }
    /** Why the advertised address is refused, or undefined when it is accepted. */
    async refusal(advertised, remoteAddress) {
        const { hostname, protocol } = new URL(advertised);
        if (protocol !== 'http:' && protocol !== 'https:')
            return `worker address must be http(s), not ${protocol}`;
        const host = hostname.replace(/^\[|\]$/g, '');
        const candidates = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((entry) => entry.address);
        if (candidates.length === 0)
            return `worker address host "${host}" does not resolve`;
        const remote = unmapped(remoteAddress ?? '');
        const ok = candidates.every((candidate) => {
            const address = unmapped(candidate);
            return address === remote || this.allowed.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
        });
        return ok ? undefined : `worker address ${host} is neither the address it connects from (${remote}) nor in DIPS_WORKER_NETWORKS`;
    }
}
/** "::ffff:127.0.0.1" (an IPv4 peer on a dual-stack socket) is 127.0.0.1. */
const unmapped = (address) => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
//# sourceMappingURL=worker-admission.js.map