// Sends what the supervisors observe to the database: per agent in order (a crash is recorded before
// the restart that follows it), retried with backoff while the database is unreachable, bounded so a
// long outage cannot eat the runner's memory.
import { randomUUID } from 'node:crypto';
import { RunnerCallError } from './api.ts';
import { retryDelay, sleep } from './backoff.ts';
import type { AgentReport } from './supervisor.ts';

// An agent crash-looping through an hour-long outage would queue thousands of reports; the newest
// ones say where it stands, so the oldest are dropped beyond this.
const MAX_QUEUED = 100;

export type SendReport = (agent: string, report: AgentReport) => Promise<unknown>;

export class Reporter {
  private readonly queues = new Map<string, AgentReport[]>();
  private readonly pumps = new Map<string, Promise<void>>();
  private readonly closing = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Set while an exclusive call runs; sends wait for it. */
  private gate?: Promise<unknown>;

  constructor(
    private readonly send: SendReport,
    private readonly log: (message: string) => void,
  ) {}

  /** Queues a report; returns at once. */
  report(agent: string, report: AgentReport): void {
    const queue = this.queues.get(agent) ?? [];
    this.queues.set(agent, queue);
    // one id for every attempt: a report whose answer was lost is sent again, and applied once
    queue.push({ ...report, reportId: randomUUID() });
    if (queue.length > MAX_QUEUED) {
      const dropped = queue.shift()!;
      this.log(`${agent}: the database has been unreachable for a while; dropped the oldest queued report (${dropped.event})`);
    }
    if (!this.pumps.has(agent)) {
      this.pumps.set(
        agent,
        this.pump(agent, queue).finally(() => this.pumps.delete(agent)),
      );
    }
  }

  /** Waits until every queued report is sent, or timeoutMs; true when nothing is left. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.pumps.size && Date.now() < deadline) {
      await Promise.race([Promise.all(this.pumps.values()), sleep(deadline - Date.now())]);
    }
    return this.pumps.size === 0;
  }

  /** Waits until the agent's queued reports are sent, or timeoutMs. */
  async sent(agent: string, timeoutMs: number): Promise<void> {
    const pump = this.pumps.get(agent);
    if (pump) await Promise.race([pump, sleep(timeoutMs)]);
  }

  /**
   * Runs fn while no report is on its way, and holds new reports back until it is done. For the
   * relayed heartbeat: one computed while an agent was alive must not reach the database after the
   * report of that agent's crash, or it would mark the dead agent running again.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate.catch(() => {});
    const done = (async () => {
      await Promise.allSettled([...this.inFlight]);
      return fn();
    })();
    this.gate = done;
    try {
      return await done;
    } finally {
      this.gate = undefined;
    }
  }

  /** Stops retrying; what is still queued is dropped. */
  close(): void {
    this.closing.abort();
  }

  private async pump(agent: string, queue: AgentReport[]): Promise<void> {
    let attempt = 0;
    while (queue.length && !this.closing.signal.aborted) {
      while (this.gate) await this.gate.catch(() => {});
      const report = queue[0];
      try {
        const sending = this.send(agent, report);
        this.inFlight.add(sending);
        await sending.finally(() => this.inFlight.delete(sending));
        queue.shift();
        attempt = 0;
      } catch (error) {
        if (error instanceof RunnerCallError && !error.retryable) {
          this.log(`${agent}: the database refused the ${report.event} report: ${error.message}`);
          queue.shift();
          continue;
        }
        attempt++;
        if (attempt === 1 || attempt % 10 === 0) {
          this.log(`${agent}: could not send the ${report.event} report (${(error as Error).message}); retrying`);
        }
        await sleep(retryDelay(attempt), this.closing.signal);
      }
    }
  }
}
