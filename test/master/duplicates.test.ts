import { describe, expect, it } from 'vitest';
import { duplicateThreshold, groupDuplicates } from '../../services/master/duplicates.js';
import { hammingDistance } from '../../services/image-core/perceptual-hash.js';

/** A hash with the lowest `bits` bits of `base` flipped. */
const flipped = (base: string, bits: number): string => (BigInt(`0x${base}`) ^ ((1n << BigInt(bits)) - 1n)).toString(16).padStart(16, '0');

describe('groupDuplicates', () => {
  const base = '9f3a0c5e71b2d486';
  it('groups hashes within the threshold of the group\'s first item, with their distances, and leaves the far ones out', () => {
    const items = [
      { index: 0, name: 'original.jpg', phash: base },
      { index: 1, name: 'other.jpg', phash: flipped(base, 40) },
      { index: 2, name: 'copy.jpg', phash: flipped(base, duplicateThreshold) },
      { index: 3, name: 'just-too-far.jpg', phash: flipped(base, duplicateThreshold + 1) },
    ];
    expect(hammingDistance(base, items[3]!.phash)).toBe(duplicateThreshold + 1);
    expect(groupDuplicates(items)).toEqual({
      threshold: duplicateThreshold,
      groups: [{ items: [{ ...items[0], distance: 0 }, { ...items[2], distance: duplicateThreshold }] }],
    });
  });

  it('does not chain: an item close only to a member, not to the first item, starts its own group', () => {
    const items = [
      { index: 0, name: 'a', phash: base },
      { index: 1, name: 'b', phash: flipped(base, 8) },
      { index: 2, name: 'c', phash: flipped(base, 16) },
      { index: 3, name: 'd', phash: flipped(base, 17) },
    ];
    expect(groupDuplicates(items).groups.map((group) => group.items.map((item) => [item.name, item.distance]))).toEqual([
      [['a', 0], ['b', 8]],
      [['c', 0], ['d', 1]],
    ]);
  });
});
