// The command loop: claim, hand over, wait, again. Polling is the truth; wake() (a Realtime hint)
// only cuts the current wait short. One failed poll never ends the loop: it logs, backs off with
// jitter and tries again.
import { retryDelay } from './backoff.ts';

export interface PollerOptions {
  /** The wait between polls; a function when it changes with what the loop sees. */
  intervalMs: number | (() => number);
  /** Claims and dispatches; returns how many commands it claimed. */
  poll(): Promise<number>;
  /** The most poll() claims at once: a full batch means more may wait, so the next poll is at once. */
  batch: number;
  log(message: string): void;
  /** What it polls for, in its log lines (default "commands"). */
  what?: string;
}

export class Poller {
  private running = false;
  private loop?: Promise<void>;
  private cutShort?: () => void;
  private woken = false;

  constructor(private readonly options: PollerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Polls now instead of at the end of the current wait. */
  wake(): void {
    this.woken = true;
    this.cutShort?.();
  }

  /** Ends the loop after the poll in progress, if any. */
  async stop(): Promise<void> {
    this.running = false;
    this.cutShort?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.woken = false;
      // read after the poll: what it found may change the pace
      const interval = () => (typeof this.options.intervalMs === 'function' ? this.options.intervalMs() : this.options.intervalMs);
      let waitMs: number;
      try {
        const claimed = await this.options.poll();
        if (failures) this.options.log(`polling works again after ${failures} failed attempt${failures > 1 ? 's' : ''}`);
        failures = 0;
        waitMs = claimed >= this.options.batch ? 0 : interval();
      } catch (error) {
        failures++;
        waitMs = Math.max(interval(), retryDelay(failures, 500, 30_000));
        if (failures === 1 || failures % 10 === 0) {
          this.options.log(
            `could not poll for ${this.options.what ?? 'commands'} (${(error as Error).message}); attempt ${failures}, next in ${waitMs} ms`,
          );
        }
      }
      if (waitMs > 0 && this.running && !this.woken) await this.wait(waitMs);
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.cutShort = done;
    }).finally(() => (this.cutShort = undefined));
  }
}
