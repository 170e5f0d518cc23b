import { describe, expect, it } from 'vitest';
import { SerialQueue } from './serialQueue';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SerialQueue', () => {
  it('never runs two tasks at once and keeps call order', async () => {
    const queue = new SerialQueue();
    let running = 0;
    let maxRunning = 0;
    const order: number[] = [];
    const task = (i: number, ms: number) => async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(ms);
      order.push(i);
      running--;
      return i * 10;
    };
    // Later tasks are shorter: without serialisation they would finish first.
    const results = await Promise.all([queue.run(task(0, 30)), queue.run(task(1, 10)), queue.run(task(2, 1))]);
    expect(maxRunning).toBe(1);
    expect(order).toEqual([0, 1, 2]);
    expect(results).toEqual([0, 10, 20]);
    expect(queue.size).toBe(0);
  });

  it('a failing task rejects its own promise and does not block the next', async () => {
    const queue = new SerialQueue();
    const failing = queue.run(async () => {
      await sleep(5);
      throw new Error('boom');
    });
    const next = queue.run(() => 'after');
    expect(queue.size).toBe(2);
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('after');
  });
});
