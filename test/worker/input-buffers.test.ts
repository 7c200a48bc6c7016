import { describe, expect, it } from 'vitest';
import { InputBuffers } from '../../services/worker/input-buffers.js';

describe('kept input buffers', () => {
  it('lends a buffer of the exact length, and the same memory again once it is given back', () => {
    const buffers = new InputBuffers(2);
    const first = buffers.take(200_000);
    expect(first.length).toBe(200_000);
    buffers.give(first);
    const again = buffers.take(150_000);
    expect([again.length, again.buffer]).toEqual([150_000, first.buffer]);
  });

  it('never lends one memory twice at once, even when a buffer is given back twice', () => {
    const buffers = new InputBuffers(2);
    const lent = buffers.take(100_000);
    buffers.give(lent);
    buffers.give(lent);
    const [a, b] = [buffers.take(100_000), buffers.take(100_000)];
    expect(a.buffer).toBe(lent.buffer);
    expect(b.buffer).not.toBe(a.buffer);
  });

  it('keeps at most one buffer per slot, none for an input over the largest kept size, and none it did not lend', () => {
    const buffers = new InputBuffers(1, 1 << 20);
    const [a, b] = [buffers.take(1000), buffers.take(1000)];
    buffers.give(a);
    buffers.give(b);
    const [c, d] = [buffers.take(1000), buffers.take(1000)];
    expect(c.buffer).toBe(a.buffer);
    expect(d.buffer).not.toBe(b.buffer);

    const large = buffers.take(2 << 20);
    buffers.give(large);
    expect(buffers.take(2 << 20).buffer).not.toBe(large.buffer);

    const stranger = Buffer.alloc(1000);
    buffers.give(c);
    buffers.give(stranger);
    expect(buffers.take(1000).buffer).toBe(c.buffer);
    expect(buffers.take(1000).buffer).not.toBe(stranger.buffer);
  });
});
