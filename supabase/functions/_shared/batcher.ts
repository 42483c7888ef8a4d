// Group commit for heartbeats: items that arrive while a batch is in flight wait and leave together
// in the next one. One client gets no added delay (its item leaves at once); 32 concurrent clients
// share a few statements instead of 32 round trips and commits.

/** Submitted while maxWaiting items already wait: the database is not keeping up. */
export class BatcherFull extends Error {}

export class Batcher<Item, Answer> {
  #waiting: { item: Item; resolve: (answer: Answer) => void; reject: (error: unknown) => void }[] = [];
  #inFlight = 0;

  constructor(
    private readonly run: (items: Item[]) => Promise<Answer[]>,
    private readonly options: { maxBatch: number; maxInFlight: number; maxWaiting: number },
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
    const batch = this.#waiting.splice(0, this.options.maxBatch);
    this.#inFlight++;
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
        this.#inFlight--;
        this.#next();
      });
    this.#next();
  }
}
