// A postgres.js pool that is thrown away and opened afresh when a call outlives its deadline.
//
// Why not cancel the late query instead: postgres.js 3.4.9 wedges a connection for good when a query
// is cancelled while it is the first query of a connection that is still (re)connecting. The
// connection finishes its handshake, runs its type query, skips the cancelled query and then never
// tells the pool it is free, so every later call waits in the pool's queue. Measured on main: after
// `pg_ctl restart -m fast` under 20 agents × 1/s, /heartbeat answered 503 for minutes (all 4
// connections idle with the type query as their last statement) until its process was killed. The
// same holds for anything else that leaves a connection silent (a half-open socket after a network
// cut answers nothing until TCP keepalive notices, minutes later). So this guard never cancels: the
// database gives up first where it can (statement_timeout, lock_timeout), and a call that is still
// unanswered at its deadline means the pool, not the query, is in trouble: the call answers a
// timeout, the next call opens a fresh pool, and the old one is ended: idle and wedged connections
// close at once, calls in flight on healthy ones get one more deadline to finish, then it is destroyed.
//
// Pools given to the guard must be opened with fetch_types: false: postgres.js fetches the array types
// of a new connection in a promise nobody awaits, and destroying the pool at that moment rejects it
// unhandled, which ends a Deno process (seen under load on PGlite).

/** The part of a postgres.js `Sql` the guard needs. */
interface Closable {
  end(options?: { timeout?: number }): Promise<void>;
}

/** A call that got no answer within its deadline; its pool has been replaced. */
export class PoolDeadlineExceeded extends Error {
  constructor(
    readonly what: string,
    readonly deadlineMs: number,
  ) {
    super(`the database did not answer the ${what} within ${deadlineMs / 1000} s`);
  }
}

/**
 * Reconnect delay for postgres.js (seconds, given the failures so far): short and capped, where the
 * library's default grows to 20 s; a caller waiting for a connection would time out first.
 */
export const reconnectBackoff = (failures: number): number => Math.min(0.05 * 2 ** failures, 1);

export class GuardedPool<Sql extends Closable> {
  #current: Sql | undefined;
  #replaced = 0;

  /** open: makes a new pool (called lazily, and again after each replacement). */
  constructor(
    private readonly open: () => Sql,
    private readonly options: { deadlineMs: number; onReplace?: (what: string) => void },
  ) {}

  /** How many times a late call made the pool start over (for logs and tests). */
  get replacements(): number {
    return this.#replaced;
  }

  /**
   * Runs work on the current pool; rejects with PoolDeadlineExceeded when it has not settled within
   * deadlineMs (default: the pool's), and then replaces the pool.
   */
  async run<T>(what: string, work: (sql: Sql) => Promise<T>, deadlineMs = this.options.deadlineMs): Promise<T> {
    this.#current ??= this.open();
    const sql = this.#current;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#replace(sql, what);
        reject(new PoolDeadlineExceeded(what, deadlineMs));
      }, deadlineMs);
    });
    try {
      return await Promise.race([work(sql), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the current pool, waiting up to timeoutS for calls in flight. */
  async end(timeoutS = 5): Promise<void> {
    const sql = this.#current;
    this.#current = undefined;
    await sql?.end({ timeout: timeoutS });
  }

  #replace(sql: Sql, what: string) {
    // several calls on the same pool may miss their deadline: the first one replaces it
    if (this.#current !== sql) return;
    this.#current = undefined;
    this.#replaced++;
    this.options.onReplace?.(what);
    sql.end({ timeout: this.options.deadlineMs / 1000 }).catch(() => {});
  }
}
