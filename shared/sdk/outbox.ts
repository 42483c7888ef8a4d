// The bounded buffer of what one agent has said but the service has not acknowledged yet. State
// changes (started, stopped, status, warning, error) are kept in order. A heartbeat is only proof of
// life: at most one waits, newer ones merge into it, and any state change sent later supersedes it
// (taking over the activity text it carried), since every request proves life.
import type { HeartbeatRequest } from '../api/heartbeat.ts';
import { MAX_REPORTS, type Report } from '../api/report.ts';

export type StateChange = { endpoint: 'heartbeat'; body: HeartbeatRequest } | { endpoint: 'report'; body: Report };

export class Outbox {
  #states: StateChange[] = [];
  #beat: HeartbeatRequest | undefined;
  /** State changes dropped because the buffer was full. */
  dropped = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.#states.length + (this.#beat ? 1 : 0);
  }

  get beat(): HeartbeatRequest | undefined {
    return this.#beat;
  }

  pushState(change: StateChange) {
    // one id for every attempt: a report whose answer was lost is sent again, and applied once
    if (change.endpoint === 'report' && change.body.report_id == null) {
      change = { ...change, body: { ...change.body, report_id: crypto.randomUUID() } };
    }
    if (this.#beat) {
      if (this.#beat.last_activity != null && change.body.last_activity == null) {
        change = { ...change, body: { ...change.body, last_activity: this.#beat.last_activity } } as StateChange;
      }
      this.#beat = undefined;
    }
    this.#states.push(change);
    if (this.#states.length > this.capacity) {
      this.#states.shift();
      this.dropped++;
    }
  }

  pushBeat(beat: HeartbeatRequest) {
    this.#beat = { ...this.#beat, ...Object.fromEntries(Object.entries(beat).filter(([, value]) => value != null)) } as HeartbeatRequest;
  }

  /** The next state changes to send as one request: a heartbeat-with-status, or up to MAX_REPORTS consecutive reports. */
  nextStates(): StateChange[] {
    const first = this.#states[0];
    if (!first || first.endpoint === 'heartbeat') return first ? [first] : [];
    const run: StateChange[] = [];
    for (const change of this.#states) {
      if (change.endpoint !== 'report' || run.length === MAX_REPORTS) break;
      run.push(change);
    }
    return run;
  }

  removeStates(sent: StateChange[]) {
    this.#states = this.#states.filter((change) => !sent.includes(change));
  }

  /** Drops the waiting heartbeat if it is still the one that was sent. */
  removeBeat(sent: HeartbeatRequest) {
    if (this.#beat === sent) this.#beat = undefined;
  }
}
