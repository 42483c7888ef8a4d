// Sends what the supervisors observe to the database: per agent in order (a crash is recorded before
// the restart that follows it), retried with backoff while the database is unreachable, bounded so a
// long outage cannot eat the runner's memory.
//
// Group commit across agents (issue 22): one call at a time (runner_report_batch), and whatever is
// queued for every agent when it leaves goes in it. A lone report leaves at once, as before; reports
// that arrive while a call is in flight leave together as soon as it is answered. Twenty agents that
// crashed at once were twenty calls; they are one or two (npm run bench, BENCH=reports). The
// database answers each item: applied, refused (dropped, the agent's later reports still go), or to
// be sent again (then that agent's later items were held back too, and only that agent backs off).
import { randomUUID } from 'node:crypto';
import { storable } from '../../shared/api/fields.ts';
import type { Report } from '../../shared/api/report.ts';
import { type ItemError, RunnerCallError, type ReportOutcome } from './api.ts';
import { retryDelay } from './backoff.ts';
import type { AgentReport } from './supervisor.ts';

// An agent crash-looping through an hour-long outage would queue thousands of reports; the newest
// ones say where it stands, so the oldest are dropped beyond this.
const MAX_QUEUED = 100;
// runner_report_batch takes at most 50 items a call.
const REPORTS_PER_CALL = 50;

/** Sends reports (agent_report's arguments by name) in one call; answers each, in order. */
export type SendReports = (reports: Report[]) => Promise<ReportOutcome[]>;

/**
 * A report as queued: the same id on every attempt (one whose answer was lost is applied once), and,
 * for one relayed from an agent through the channel, whoever waits for the database's answer.
 */
interface Queued {
  report: Report & { report_id: string };
  waiting?: { resolve(state: Record<string, unknown>): void; reject(error: Error): void };
}

export class Reporter {
  private readonly queues = new Map<string, Queued[]>();
  /** Agents whose last attempt failed, and when they may be tried again. */
  private readonly retries = new Map<string, { attempt: number; at: number }>();
  private readonly closing = new AbortController();
  /** The call on its way; the next one leaves when it is answered. */
  private inFlight?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  /** Told whenever reports leave their queues (flush and sent wait on it). */
  private readonly listeners = new Set<() => void>();
  /** Set while an exclusive call runs; sends wait for it. */
  private gate?: Promise<unknown>;

  constructor(
    private readonly send: SendReports,
    private readonly log: (message: string) => void,
  ) {}

  /** Queues a supervisor's report, sent until the database answers it; returns at once. */
  report(agent: string, report: AgentReport): void {
    this.enqueue({ report: { ...reportArguments(agent, report), report_id: randomUUID() } });
  }

  /**
   * Sends an agent's own report (from the channel) with the others, once: resolves with the agent's
   * state after it, or rejects with the database's refusal or why it could not be sent now (the
   * agent's SDK keeps it and sends it again; the runner does not). Refused at once while the agent's
   * reports back off: it must not overtake the runner's report that waits, nor wait out an outage.
   */
  submit(report: Report): Promise<Record<string, unknown>> {
    if ((this.retries.get(report.agent_name)?.at ?? 0) > Date.now()) {
      return Promise.reject(new Error('the database did not take the reports before this one yet'));
    }
    return new Promise((resolve, reject) =>
      this.enqueue({ report: { ...report, report_id: report.report_id ?? randomUUID() }, waiting: { resolve, reject } }),
    );
  }

  private enqueue(queued: Queued): void {
    const agent = queued.report.agent_name;
    const queue = this.queues.get(agent) ?? [];
    this.queues.set(agent, queue);
    queue.push(queued);
    if (queue.length > MAX_QUEUED) {
      const dropped = queue.shift()!;
      const why = 'the database has been unreachable for a while; dropped the oldest queued report';
      this.log(`${agent}: ${why} (${dropped.report.event})`);
      dropped.waiting?.reject(new Error(why));
    }
    this.next();
  }

  /** Waits until every queued report is sent, or timeoutMs; true when nothing is left. */
  flush(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.queues.size === 0, timeoutMs);
  }

  /** Waits until the agent's queued reports are sent, or timeoutMs. */
  async sent(agent: string, timeoutMs: number): Promise<void> {
    await this.until(() => !this.queues.has(agent), timeoutMs);
  }

  /**
   * Runs fn while no report is on its way, and holds new reports back until it is done. For the
   * relayed heartbeat: one computed while an agent was alive must not reach the database after the
   * report of that agent's crash, or it would mark the dead agent running again.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate.catch(() => {});
    const done = (async () => {
      await this.inFlight;
      return fn();
    })();
    this.gate = done;
    try {
      return await done;
    } finally {
      this.gate = undefined;
      this.next();
    }
  }

  /** Stops retrying; what is still queued is dropped. */
  close(): void {
    this.closing.abort();
    clearTimeout(this.retryTimer);
    for (const queue of this.queues.values()) for (const queued of queue) queued.waiting?.reject(new Error('the runner is stopping'));
  }

  // Sends what is queued now, unless a call is on its way (its answer sends the rest) or the gate
  // is shut (its end does).
  private next(): void {
    if (this.inFlight || this.gate || this.closing.signal.aborted) return;
    const now = Date.now();
    const batch: Queued[] = [];
    let wakeAt = Infinity;
    for (const [agent, queue] of this.queues) {
      const retry = this.retries.get(agent);
      if (retry && retry.at > now) {
        wakeAt = Math.min(wakeAt, retry.at);
        continue;
      }
      // an agent's reports leave together (in order) or not at all, so none overtakes another
      if (batch.length && batch.length + queue.length > REPORTS_PER_CALL) continue;
      batch.push(...queue.slice(0, REPORTS_PER_CALL));
    }
    clearTimeout(this.retryTimer);
    if (wakeAt < Infinity) this.retryTimer = setTimeout(() => this.next(), wakeAt - now);
    if (!batch.length) return;
    this.inFlight = this.deliver(batch).finally(() => {
      this.inFlight = undefined;
      this.next();
    });
  }

  private async deliver(batch: Queued[]): Promise<void> {
    let outcomes: ReportOutcome[];
    try {
      outcomes = await this.send(batch.map((queued) => queued.report));
    } catch (error) {
      if (error instanceof RunnerCallError && !error.retryable) {
        for (const queued of batch) this.refused(queued, error);
      } else {
        for (const agent of new Set(batch.map((queued) => queued.report.agent_name))) {
          this.failed(agent, batch.find((queued) => queued.report.agent_name === agent)!, error as Error);
        }
      }
      return this.changed();
    }
    const failed = new Set<string>();
    batch.forEach((queued, i) => {
      const outcome = outcomes[i];
      const agent = queued.report.agent_name;
      if (outcome && 'agent' in outcome) {
        this.done(queued);
        queued.waiting?.resolve(outcome.agent);
      } else if (outcome && 'error' in outcome) {
        this.refused(queued, itemError(outcome.error, true));
      } else if (!failed.has(agent)) {
        failed.add(agent);
        this.failed(agent, queued, outcome ? itemError(outcome.retry, false) : new Error('no answer for it'));
      }
    });
    for (const agent of new Set(batch.map((queued) => queued.report.agent_name))) if (!failed.has(agent)) this.retries.delete(agent);
    this.changed();
  }

  private done(queued: Queued): void {
    const agent = queued.report.agent_name;
    const queue = this.queues.get(agent);
    const at = queue?.indexOf(queued) ?? -1;
    if (at >= 0) queue!.splice(at, 1);
    if (queue?.length === 0) this.queues.delete(agent);
  }

  // An agent's own report: the agent hears why. The runner's: said in its log.
  private refused(queued: Queued, error: Error): void {
    const { agent_name: agent, event } = queued.report;
    if (queued.waiting) queued.waiting.reject(error);
    else this.log(`${agent}: the database refused the ${event} report: ${error.message}`);
    this.done(queued);
  }

  // The agent's reports from this one on wait and are sent again (the others' go on meanwhile); its
  // own reports are not sent again by the runner: the agent hears to retry.
  private failed(agent: string, queued: Queued, error: Error): void {
    const attempt = (this.retries.get(agent)?.attempt ?? 0) + 1;
    this.retries.set(agent, { attempt, at: Date.now() + retryDelay(attempt) });
    for (const relayed of this.queues.get(agent)?.filter((q) => q.waiting) ?? []) {
      this.done(relayed);
      relayed.waiting!.reject(error);
    }
    if (!queued.waiting && (attempt === 1 || attempt % 10 === 0)) {
      this.log(`${agent}: could not send the ${queued.report.event} report (${error.message}); retrying`);
    }
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closing.signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.listeners.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.listeners.add(wake);
      });
    }
    return true;
  }
}

// One item's error as the error of a call of its own would have been (the channel answers agents with it).
// A refusal is the caller's mistake (a 4xx through PostgREST); anything else is worth another try.
function itemError(error: ItemError, refused: boolean): RunnerCallError {
  return new RunnerCallError('runner_report_batch', error.message, error.sqlstate ?? '', refused ? 400 : 500, error.hint ?? undefined);
}

/** A supervisor's report as agent_report's arguments by name (an item of runner_report_batch). */
export function reportArguments(agent: string, report: AgentReport): Report {
  return {
    agent_name: agent,
    event: report.event,
    // an agent's stderr may hold NUL or broken UTF-8: cleaned, so it never costs the crash report
    ...(report.message !== undefined && { message: storable(report.message) }),
    ...(report.pid !== undefined && { pid: report.pid }),
    ...(report.exitCode !== undefined && { exit_code: report.exitCode }),
    ...(report.exitSignal !== undefined && { exit_signal: report.exitSignal }),
    ...((report.logTail || report.restartInMs !== undefined) && {
      details: {
        ...(report.logTail && { log_tail: report.logTail.map(storable) }),
        ...(report.restartInMs !== undefined && { restart_in_s: report.restartInMs / 1000 }),
      },
    }),
  };
}
