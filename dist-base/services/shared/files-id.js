import { readFileSync } from 'node:fs';
import os from 'node:os';
/**
 * Names this machine's file system for this boot: a worker whose id equals the master's runs beside it
 * and can read and write the master's local storage directly instead of over HTTP. The boot id changes
 * at every boot and differs between machines; the host name tells containers of one host apart.
 */
export function filesId() {
    let boot = '';
    try {
        boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    }
    catch {
        // not Linux: the host name alone
    }
    return `${os.hostname()}/${boot}`;
}
//# sourceMappingURL=files-id.js.map