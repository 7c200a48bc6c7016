import express from 'express';
import { HttpError } from '../shared/http-error.js';
/**
 * Most bits two perceptual hashes (phash, 64 bits) may differ by and still count as the same picture.
 * Measured on the corpus (test/image-core/new-operations.test.ts, docs/operations.md): re-encoded and
 * resized copies differ by 0-6 bits, different photographs by 22-46. 10 leaves a margin of 4 bits above
 * the copies and of 12 below the nearest different photographs.
 */
export const duplicateThreshold = 10;
/**
 * Most hashed items a report compares. Grouping compares each item with the later ones (n²/2 pairs at
 * worst, when nothing is a duplicate): 5,000 random hashes took 0.4-0.6 s on the loaded 2-core
 * development machine (docs/operations.md "Duplicates"), the longest the master's event loop should
 * stall for one request; the hashes take 8 bytes each. A larger job answers 413 instead.
 */
export const maxReportedItems = 5_000;
/** Set bits of every 16-bit value: a hash distance is four lookups. */
const bitsSet = Uint8Array.from({ length: 1 << 16 }, (_, value) => {
    let count = 0;
    for (let x = value; x; x &= x - 1)
        count += 1;
    return count;
});
const bitsApart = (a, b) => {
    const x = (a ^ b) >>> 0;
    return bitsSet[x & 0xffff] + bitsSet[x >>> 16];
};
/**
 * Groups items whose hashes lie within `threshold` bits of the group's first item: items are taken in
 * index order, and each one not yet grouped starts a group of the later ones close to it. Only groups
 * of two or more are duplicates. Deterministic, and every distance reported is to the group's first item.
 */
export function groupDuplicates(items, threshold = duplicateThreshold) {
    const high = Uint32Array.from(items, (item) => Number.parseInt(item.phash.slice(0, 8), 16));
    const low = Uint32Array.from(items, (item) => Number.parseInt(item.phash.slice(8), 16));
    const grouped = new Uint8Array(items.length);
    const groups = [];
    for (let first = 0; first < items.length; first++) {
        if (grouped[first])
            continue;
        const members = [{ ...items[first], distance: 0 }];
        for (let other = first + 1; other < items.length; other++) {
            if (grouped[other])
                continue;
            const distance = bitsApart(high[first], high[other]) + bitsApart(low[first], low[other]);
            if (distance > threshold)
                continue;
            grouped[other] = 1;
            members.push({ ...items[other], distance });
        }
        if (members.length > 1)
            groups.push({ items: members });
    }
    return { threshold, groups };
}
/** GET /v1/jobs/{id}/duplicates: the job's items grouped by perceptual hash (those finished so far). */
export function duplicatesRoutes(master) {
    const router = express.Router();
    router.get('/jobs/:id/duplicates', (req, res) => {
        const id = req.params.id;
        const hashed = master.store.phashesOf(id, maxReportedItems);
        if (!hashed)
            throw new HttpError(404, 'job_not_found', `no job with id "${id}"`);
        if (!hashed.hashing)
            throw new HttpError(409, 'no_phash', `job ${id} has no phash step: add {"op":"phash"} to its pipeline to find duplicates`);
        if (hashed.truncated)
            throw new HttpError(413, 'too_many_items', `job ${id} has more than ${maxReportedItems} hashed items; the duplicates report compares at most that many`);
        res.json(groupDuplicates(hashed.items));
    });
    return router;
}
//# sourceMappingURL=duplicates.js.map