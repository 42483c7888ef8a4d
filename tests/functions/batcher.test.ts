// The heartbeat function's group commit (supabase/functions/_shared/batcher.ts): one batch at a
// time, so that heartbeats arriving meanwhile share the next statement, with a second batch beside it
// only when a full one waits or the one in flight is slow. Plain logic, run here under Node.
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../supabase/functions/_shared/batcher.ts';

/** A batcher whose batches finish when the test says so; `sent` lists each batch as it leaves. */
function controlled(options: { maxBatch: number; maxInFlight: number; slowAfterMs: number }) {
  const sent: string[][] = [];
  const finish: (() => void)[] = [];
  const batcher = new Batcher<string, string>(
    (items) => {
      sent.push(items);
      return new Promise((resolve) => finish.push(() => resolve(items.map((item) => `${item} done`))));
    },
    { ...options, maxWaiting: 100 },
  );
  return { batcher, sent, finish };
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the heartbeat batcher', () => {
  it('sends the first item at once and the ones that arrive while it is in flight together after it', async () => {
    const { batcher, sent, finish } = controlled({ maxBatch: 50, maxInFlight: 2, slowAfterMs: 10_000 });
    const answers = ['a', 'b', 'c', 'd'].map((item) => batcher.submit(item));
    await tick();
    expect(sent).toEqual([['a']]);
    finish[0]();
    await tick();
    expect(sent).toEqual([['a'], ['b', 'c', 'd']]);
    finish[1]();
    expect(await Promise.all(answers)).toEqual(['a done', 'b done', 'c done', 'd done']);
  });

  it('sends a full batch beside the one in flight, up to maxInFlight', async () => {
    const { batcher, sent, finish } = controlled({ maxBatch: 2, maxInFlight: 2, slowAfterMs: 10_000 });
    const answers = ['a', 'b', 'c', 'd', 'e'].map((item) => batcher.submit(item));
    await tick();
    expect(sent).toEqual([['a'], ['b', 'c']]);
    finish[0]();
    await tick();
    // d and e make a full batch: it leaves beside the one still in flight
    expect(sent).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    finish[1]();
    finish[2]();
    expect(await Promise.all(answers)).toHaveLength(5);
  });

  it('sends the next batch beside one that has been in flight longer than slowAfterMs', async () => {
    const { batcher, sent, finish } = controlled({ maxBatch: 50, maxInFlight: 2, slowAfterMs: 50 });
    const first = batcher.submit('stuck');
    await tick();
    const second = batcher.submit('b');
    await tick(10);
    expect(sent).toEqual([['stuck']]);
    await tick(100);
    expect(sent).toEqual([['stuck'], ['b']]);
    finish[1]();
    expect(await second).toBe('b done');
    finish[0]();
    expect(await first).toBe('stuck done');
  });
});
