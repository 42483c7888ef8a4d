// One agent's connection to agent-status. Every method returns at once and never throws: what the
// agent says goes into a bounded outbox (outbox.ts) that a background sender delivers with short
// timeouts, retrying with exponential backoff and jitter while the service is down. Only close()
// (and the shutdown handlers that call it) waits, and never longer than its deadline.
import type { DesiredAction } from '../api/agent.ts';
import { ErrorBody } from '../api/errors.ts';
import { HeartbeatRequest, type HeartbeatRequest as HeartbeatBody } from '../api/heartbeat.ts';
import { Report, type Report as ReportBody } from '../api/report.ts';
import { storable } from '../api/fields.ts';
import { describeIssues } from '../api/parse.ts';
import { functionUrl } from '../api/paths.ts';
import { LIMITS, type SettableStatus } from '../status.ts';
import { resolveConfig, type AgentStatusConfig, type AgentStatusOptions } from './config.ts';
import { Outbox, type StateChange } from './outbox.ts';
import { postOverSocket } from './unix-socket.ts';

type Outcome = 'delivered' | 'refused' | 'retry';

export interface StatusUpdate {
  status?: Exclude<SettableStatus, 'stopped'>;
  health?: number;
  lastActivity?: string;
}

/** An operator's stop or restart of this agent (one no runner manages), as onCommand hands it over. */
export interface OperatorCommand {
  action: DesiredAction['action'];
  commandId: number;
}

interface SignalableProcess {
  pid: number;
  listenerCount(event: string): number;
  kill(pid: number, signal: string): unknown;
}

const unref = (timer: unknown) => (timer as { unref?: () => void })?.unref?.();
const sleep = (ms: number) => new Promise<void>((resolve) => unref(setTimeout(resolve, ms)));

export class AgentStatus {
  readonly config: AgentStatusConfig;
  readonly #outbox: Outbox;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sending: Promise<void> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #backingOff = false;
  #failures = 0;
  #lastContact = 0;
  #flushing = false;
  #known: { status?: string; health?: number } = {};
  #stopped = false;
  #disabled: string | undefined;
  #closed = false;
  /** The agent calls heartbeat() itself: it is judged by those calls, and the automatic timer is off. */
  #ownBeats = false;
  #lastOwnBeat = 0;
  #longestOwnGapMs = 0;
  #commandHandler: ((command: OperatorCommand) => void | Promise<void>) | undefined;
  /** Commands acted on: the answers carry a wish until the agent reports its outcome, but it is acted on once. */
  readonly #commandsSeen = new Set<number>();

  constructor(options: AgentStatusOptions = {}) {
    this.config = resolveConfig(options);
    this.#outbox = new Outbox(this.config.maxPending);
    const missing = (['url', 'token', 'agentName'] as const).filter((key) => !this.config[key]);
    if (missing.length) {
      const env = { url: 'AGENT_STATUS_URL', token: 'AGENT_STATUS_TOKEN', agentName: 'AGENT_NAME' };
      this.#disabled = `status reporting is off: set ${missing.map((key) => `${env[key]} (or the ${key} option)`).join(', ')}`;
      this.config.log(this.#disabled);
    }
  }

  get agentName(): string {
    return this.config.agentName ?? '';
  }

  /** Reports still waiting for the service. */
  get pending(): number {
    return this.#outbox.size;
  }

  /** The agent started: status running, and the automatic heartbeat begins. */
  markStarted(pid?: number) {
    this.#stopped = false;
    this.#closed = false;
    this.#report({
      event: 'started',
      pid: pid ?? (globalThis as { process?: { pid?: number } }).process?.pid,
      heartbeat_interval_s: this.#declaredInterval(),
    });
    this.#known = { status: 'running' };
    if (!this.#ownBeats) this.#startTimer();
  }

  /**
   * The agent is stopping: status stopped (an earlier error stays visible), heartbeats end. A wrapper
   * that saw the process end (`agent-status run`) passes its exit code or signal, recorded as a runner's are.
   */
  markStopped(exit: { exitCode?: number; exitSignal?: string } = {}) {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopTimer();
    this.#report({ event: 'stopped', exit_code: exit.exitCode, exit_signal: exit.exitSignal });
    this.#known = { status: 'stopped' };
  }

  /**
   * Status, health and activity in one request. A changed status or health goes at once; the same
   * status with only a new activity text rides on the next heartbeat. Ignored after markStopped
   * until markStarted.
   */
  updateStatus(update: StatusUpdate) {
    // After markStopped the agent is shutting down; a loop still running meanwhile must not revive it.
    if (this.#stopped) return;
    const body: HeartbeatBody = {
      agent_name: this.agentName,
      status: update.status,
      health: update.health,
      last_activity: update.lastActivity === undefined ? undefined : storable(update.lastActivity),
    };
    const changed =
      (update.status !== undefined && update.status !== this.#known.status) ||
      (update.health !== undefined && update.health !== this.#known.health);
    if (!this.#valid(HeartbeatRequest, body)) return;
    if (changed) {
      this.#known = { status: update.status ?? this.#known.status, health: update.health ?? this.#known.health };
      this.#enqueue({ endpoint: 'heartbeat', body: { ...body, at: new Date().toISOString() } });
    } else {
      this.#beat(body);
    }
  }

  /**
   * Proof of life from the agent's own loop. Calling it often is fine: at most one heartbeat per
   * interval is sent. From the second call (when the loop's pace is known) the automatic heartbeat
   * stops, so a main loop that hangs stops proving life and the agent turns stale within its
   * heartbeat timeout; the interval it declares is the longer of the SDK's and the longest gap
   * between its own calls, so a slow loop is not taken for a hung one.
   */
  heartbeat() {
    const now = Date.now();
    if (this.#lastOwnBeat) {
      this.#longestOwnGapMs = Math.max(this.#longestOwnGapMs, now - this.#lastOwnBeat);
      this.#ownBeats = true;
      this.#stopTimer();
    }
    this.#lastOwnBeat = now;
    this.#beat({ agent_name: this.agentName });
  }

  /** What the agent is doing now; sent with the next heartbeat. */
  activity(text: string) {
    this.#beat({ agent_name: this.agentName, last_activity: storable(text.slice(0, LIMITS.activity)) });
  }

  /** An error: status error with this message (an Error's message, or the text). */
  reportError(error: unknown) {
    const message = (error instanceof Error ? error.message || error.name : String(error)) || 'unknown error';
    this.#report({ event: 'error', message: storable(message.slice(0, LIMITS.message)) });
    this.#known = { status: 'error' };
  }

  /** A warning: status warning with this message and, optionally, a lowered health. */
  reportWarning(message: string, health?: number) {
    this.#report({ event: 'warning', message: storable((message || 'warning').slice(0, LIMITS.message)), health });
    this.#known = { status: 'warning', health: health ?? this.#known.health };
  }

  /**
   * What to do when an operator stops or restarts this agent and no runner manages it: the wish comes
   * back in the answer to its next heartbeat or report, so within one heartbeat interval. The handler
   * is called once per command; when it settles, the agent is marked stopped (a stop) or started
   * again (a restart), which completes the command. Without a handler, a stop or restart ends the
   * process the way SIGTERM would (the agent's own SIGTERM handlers, run()'s included, do their
   * work first); a restart then needs whatever started the process (systemd, docker --restart) to
   * start it again, and its markStarted completes the command.
   *
   * @example
   * status.onCommand(async ({ action }) => {
   *   await worker.drain();
   *   if (action === 'restart') await worker.reload();
   * });
   */
  onCommand(handler: ((command: OperatorCommand) => void | Promise<void>) | undefined) {
    this.#commandHandler = handler;
  }

  /**
   * Sends what is pending, retrying until the deadline. Resolves true when everything was delivered
   * (or refused for good), false when the deadline came first. Never rejects.
   */
  async flush(timeoutMs = this.config.flushTimeoutMs): Promise<boolean> {
    if (this.#disabled) return true;
    const deadline = Date.now() + timeoutMs;
    this.#flushing = true;
    try {
      while (this.#outbox.size > 0 && Date.now() < deadline) {
        if (this.#sending) {
          await Promise.race([this.#sending, sleep(Math.max(0, deadline - Date.now()))]);
          continue;
        }
        await this.#sendOnce(deadline);
        if (this.#outbox.size > 0 && this.#failures > 0) await sleep(Math.min(250 * this.#failures, Math.max(0, deadline - Date.now())));
      }
      return this.#outbox.size === 0;
    } finally {
      this.#flushing = false;
      if (!this.#closed) this.#wake();
    }
  }

  /** Stops the heartbeat and flushes with a deadline; the agent may exit afterwards. */
  async close(timeoutMs = this.config.flushTimeoutMs): Promise<boolean> {
    this.#closed = true;
    this.#stopTimer();
    this.#cancelRetry();
    const delivered = await this.flush(timeoutMs);
    this.#cancelRetry();
    if (!delivered)
      this.config.log(`gave up on ${this.#outbox.size} undelivered report(s) after ${timeoutMs} ms: the service is unreachable`);
    return delivered;
  }

  #startTimer() {
    this.#stopTimer();
    if (this.config.heartbeatIntervalMs <= 0 || this.#disabled) return;
    this.#timer = setInterval(() => this.#beat({ agent_name: this.agentName }), this.config.heartbeatIntervalMs);
    unref(this.#timer);
  }

  #stopTimer() {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #valid(schema: typeof HeartbeatRequest | typeof Report, body: unknown): boolean {
    const result = schema.safeParse(body);
    if (!result.success) this.config.log(`not sent: ${describeIssues(result.error)}`);
    return result.success;
  }

  // Seconds between heartbeats, declared so the database derives the heartbeat timeout (2.5 of them).
  #declaredInterval(): number | undefined {
    const ms = Math.max(this.config.heartbeatIntervalMs, this.#longestOwnGapMs);
    return ms > 0 ? Math.min(86_400, Math.ceil(ms / 1000)) : undefined;
  }

  #report(fields: Omit<ReportBody, 'agent_name'>) {
    // `at`: when it was said, so a report buffered through an outage is recorded at its own time
    const body = { agent_name: this.agentName, ...fields, at: new Date().toISOString() } as ReportBody;
    if (this.#valid(Report, body)) this.#enqueue({ endpoint: 'report', body });
  }

  #beat(body: HeartbeatBody) {
    // a stopped agent is not alive: proof of life waits for markStarted
    body = { ...body, heartbeat_interval_s: this.#declaredInterval() };
    if (this.#disabled || this.#stopped || !this.#valid(HeartbeatRequest, body)) return;
    this.#outbox.pushBeat(body);
    this.#wake(false);
  }

  #enqueue(change: StateChange) {
    if (this.#disabled) return;
    const dropped = this.#outbox.dropped;
    this.#outbox.pushState(change);
    if (this.#outbox.dropped > dropped && this.#outbox.dropped === 1) {
      this.config.log(`more than ${this.config.maxPending} reports waiting for the service: dropping the oldest`);
    }
    this.#wake(true);
  }

  // Starts the sender unless it runs or backs off (the retry timer wakes it later). A state change
  // cuts short a wait for the next heartbeat slot, never a backoff.
  #wake(stateChange = false) {
    if (this.#sending || this.#flushing) return;
    if (this.#retryTimer) {
      if (this.#backingOff || !stateChange) return;
      this.#cancelRetry();
    }
    this.#sending = (async () => {
      while (this.#outbox.size > 0 && !this.#flushing) {
        const beatDue = this.#lastContact + this.config.heartbeatIntervalMs;
        if (this.#outbox.nextStates().length === 0 && Date.now() < beatDue) {
          this.#retryLater(beatDue - Date.now(), false);
          break;
        }
        if ((await this.#sendOnce(Date.now() + this.config.requestTimeoutMs)) === 'retry') {
          const backoff = Math.min(this.config.maxBackoffMs, 500 * 2 ** Math.min(this.#failures, 10));
          this.#retryLater(backoff / 2 + Math.random() * (backoff / 2), true);
          break;
        }
      }
    })().finally(() => {
      this.#sending = undefined;
      // a state change that arrived while this loop was finishing must not wait for the heartbeat slot
      if (this.#outbox.nextStates().length && !this.#closed) this.#wake(true);
    });
  }

  #retryLater(ms: number, backoff: boolean) {
    this.#backingOff = backoff;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#backingOff = false;
      this.#wake();
    }, ms);
    unref(this.#retryTimer);
  }

  #cancelRetry() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#backingOff = false;
  }

  // Sends the next request (state changes first, else the waiting heartbeat) and settles the outbox.
  async #sendOnce(deadline: number): Promise<Outcome> {
    const states = this.#outbox.nextStates();
    const beat = states.length ? undefined : this.#outbox.beat;
    if (!states.length && !beat) return 'delivered';
    const endpoint = states.length ? states[0].endpoint : 'heartbeat';
    const body = beat ?? (endpoint === 'report' && states.length > 1 ? { reports: states.map((s) => s.body) } : states[0].body);
    const outcome = await this.#post(endpoint, body, deadline);
    if (outcome === 'refused' && states.length > 1) {
      // One bad report refuses the whole batch; send them one by one so only that one is lost.
      for (const state of states) {
        if ((await this.#post('report', state.body, deadline)) === 'retry') return 'retry';
        this.#outbox.removeStates([state]);
      }
      return 'delivered';
    }
    if (outcome !== 'retry') {
      if (beat) this.#outbox.removeBeat(beat);
      else this.#outbox.removeStates(states);
    }
    return outcome;
  }

  async #post(endpoint: 'heartbeat' | 'report', body: unknown, deadline: number): Promise<Outcome> {
    const timeout = Math.max(1, Math.min(this.config.requestTimeoutMs, deadline - Date.now()));
    let response: Response;
    try {
      const init = {
        method: 'POST',
        headers: { authorization: `Bearer ${this.config.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeout),
      };
      const url = functionUrl(this.config.url!, endpoint);
      response = await (this.config.socket ? postOverSocket(this.config.socket, url, init) : fetch(url, init));
    } catch (error) {
      return this.#failed(`cannot reach ${this.config.socket ?? this.config.url}: ${(error as Error).message}`);
    }
    const text = await response.text().catch(() => '');
    if (response.ok) {
      if (this.#failures > 0) this.config.log(`reached the service again after ${this.#failures} failed attempt(s)`);
      this.#failures = 0;
      this.#lastContact = Date.now();
      this.#takeCommands(text);
      return 'delivered';
    }
    let reason = `HTTP ${response.status}`;
    try {
      const { error } = ErrorBody.parse(JSON.parse(text));
      reason = `${error.message}${error.hint ? ` (${error.hint})` : ''}`;
    } catch {
      // not one of our error bodies (a proxy's page): the status says enough
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) return this.#failed(reason);
    // The service read it and said no: sending it again would get the same answer.
    this.#lastContact = Date.now();
    this.config.log(`${endpoint} refused: ${reason}`);
    return 'refused';
  }

  // The answer's agent states (one, or a report batch's) may carry an operator's wish.
  #takeCommands(answer: string) {
    let states: { desired?: DesiredAction | null }[];
    try {
      const body = JSON.parse(answer) as { agent?: { desired?: DesiredAction | null }; agents?: { desired?: DesiredAction | null }[] };
      states = body.agents ?? (body.agent ? [body.agent] : []);
    } catch {
      return; // not the service's answer shape: nothing to act on
    }
    for (const { desired } of states) {
      if (!desired || this.#commandsSeen.has(desired.command_id)) continue;
      this.#commandsSeen.add(desired.command_id);
      void this.#actOn({ action: desired.action, commandId: desired.command_id });
    }
  }

  async #actOn(command: OperatorCommand) {
    this.config.log(`an operator asked to ${command.action} ${this.agentName} (command ${command.commandId})`);
    const handler = this.#commandHandler;
    if (handler) {
      try {
        await handler(command);
      } catch (error) {
        this.config.log(`the onCommand handler failed on ${command.action}: ${(error as Error).message}`);
      }
      if (command.action === 'restart') this.markStarted();
      else this.markStopped();
      await this.flush();
      return;
    }
    const proc = (globalThis as { process?: SignalableProcess }).process;
    // the agent's own SIGTERM handlers (run()'s among them) mark it stopped and end the process
    if (proc && proc.listenerCount('SIGTERM') > 0) {
      proc.kill(proc.pid, 'SIGTERM');
      return;
    }
    this.markStopped();
    await this.close();
    proc?.kill(proc.pid, 'SIGTERM');
  }

  #failed(reason: string): Outcome {
    this.#failures++;
    if (this.#failures === 1) this.config.log(`${reason}; keeping ${this.#outbox.size} report(s) and retrying with backoff`);
    return 'retry';
  }
}
