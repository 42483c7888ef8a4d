// Group commit for heartbeats: items that arrive while a batch is in flight wait and leave together
// in the next one. One client gets no added delay (its item leaves at once); 32 concurrent clients
// share a few statements instead of 32 round trips and commits.
//
// One batch at a time, as a rule: every statement costs the database a fixed part (about 0.5 ms of
// PostgreSQL CPU for agent_heartbeat_batch, measured with pgbench: 450 µs for a batch of 1, 950 µs
// for 16, 2,200 µs for 50), and while one batch runs the next one fills. Two batches in flight at
// 32 clients halved the batches (7.7 items on average against 14.5) and doubled PostgreSQL's CPU per
// heartbeat (`npm run bench`, heartbeat). Another batch leaves beside it only when a full batch
// waits (more than one statement can carry), or when the one in flight has taken longer than
// `slowAfterMs` (a batch waiting on a locked row must not hold up everyone else's heartbeats).

/** Submitted while maxWaiting items already wait: the database is not keeping up. */
export class BatcherFull extends Error {}

export class Batcher<Item, Answer> {
  #waiting: { item: Item; resolve: (answer: Answer) => void; reject: (error: unknown) => void }[] = [];
  #inFlight = 0;
  /** batches in flight for less than slowAfterMs */
  #running = 0;

  constructor(
    private readonly run: (items: Item[]) => Promise<Answer[]>,
    private readonly options: { maxBatch: number; maxInFlight: number; maxWaiting: number; slowAfterMs: number },
  ) {}

  /** Resolves with this item's answer from its batch, or rejects with the batch's error. */
  submit(item: Item): Promise<Answer> {
    if (this.#waiting.length >= this.options.maxWaiting) {
      return Promise.reject(new BatcherFull(`${this.#waiting.length} items are already waiting`));
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      this.#next();
    });
  }

  #next() {
    if (this.#inFlight >= this.options.maxInFlight || this.#waiting.length === 0) return;
    if (this.#running > 0 && this.#waiting.length < this.options.maxBatch) return;
    const batch = this.#waiting.splice(0, this.options.maxBatch);
    this.#inFlight++;
    this.#running++;
    let slow = false;
    const slowTimer = setTimeout(() => {
      slow = true;
      this.#running--;
      this.#next();
    }, this.options.slowAfterMs);
    this.run(batch.map((entry) => entry.item))
      .then(
        (answers) => {
          for (const [i, entry] of batch.entries()) entry.resolve(answers[i]);
        },
        (error) => {
          for (const entry of batch) entry.reject(error);
        },
      )
      .finally(() => {
        clearTimeout(slowTimer);
        if (!slow) this.#running--;
        this.#inFlight--;
        this.#next();
      });
    this.#next();
  }
}
