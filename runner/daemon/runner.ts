// The host runner: makes the database and this host's processes agree. It registers its agents,
// adopts the ones already running, carries out start/stop/restart commands, relays the agents'
// liveness, and on shutdown finishes the command in progress and reports itself offline.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_VERSION } from '../paths.ts';
import { AgentChannel, CHANNEL_URL } from './agent-channel.ts';
import { RunnerCallError, RunnerApi, type ClaimedCommand, type LogRequest, type RunnerHeartbeatAnswer } from './api.ts';
import { retryDelay, sleep } from './backoff.ts';
import type { RunnerConfig } from './config.ts';
import { acquireLock, type Lock } from './lock.ts';
import { agentLogFiles, tailForOperator } from './logs.ts';
import { Poller } from './poller.ts';
import { isSameProcess, listProcesses, processEnvironment, type ProcessIdentity } from './proc.ts';
import { type CommandHints, subscribeToCommandHints } from './realtime.ts';
import { findAgentProcesses, type RunnerIdentity } from './reconciler.ts';
import { Reporter } from './reporter.ts';
import { ResourceSampler } from './resources.ts';
import { readState, writeState, type RunnerState } from './state.ts';
import { AgentSupervisor, type Outcome } from './supervisor.ts';

export const RUNNER_VERSION = PACKAGE_VERSION;

// runner_claim_commands takes at most 100; 10 keeps one poll short when a burst arrives.
const CLAIM_BATCH = 10;
const COMPLETE_ATTEMPTS = 8;
// Connections for forwarding the agents' heartbeats and reports; each agent may hold at most
// AgentChannel's per-agent limit of them.
const AGENT_SOCKETS = 8;
// How long shutdown waits for the commands in progress: the longest stop timeout plus the SIGKILL wait.
const SHUTDOWN_GRACE_MS = 15_000;
// Operators wait on screen for log lines. Without Realtime a runner asks every 2 s whether anyone
// wants lines (an idle runner's CPU went from 1.1 % to 1.5 % of a core when it asked every 500 ms),
// and every 500 ms for a minute after a request, while someone is reading or following them.
const LOG_POLL_IDLE_MS = 2000;
const LOG_POLL_ACTIVE_MS = 500;
const LOG_ACTIVE_FOR_MS = 60_000;
// While Realtime hints arrive, a hint wakes the command or log loop at once, and the answer to every
// heartbeat says whether commands or log requests wait (a lost hint costs at most one heartbeat
// interval), so the loops' own polls are only a last resort (one host polling every second made
// 86,400 requests a day doing nothing).
const HINTED_POLL_MS = 300_000;
// How long a command's result waits for the agent's reports (retried while the database is away).
const REPORT_BEFORE_RESULT_MS = 5000;
// agent_heartbeat_batch takes at most 50 heartbeats a call.
const HEARTBEATS_PER_CALL = 50;

export interface RunnerOptions {
  config: RunnerConfig;
  log?: (line: string) => void;
  /** Take the host's lease even from a runner that is still live (it stops at its next poll). */
  takeover?: boolean;
  /** Called when the runner stopped by itself (another runner took the host over), with why. */
  onStopped?: (reason: string) => void;
}

/** AGENT_STATUS_URL as runners before the Unix-socket channel set it: http on a loopback port. */
export function isOlderRunnersChannel(url: string): boolean {
  try {
    const { protocol, hostname, port } = new URL(url);
    return protocol === 'http:' && port !== '' && ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
  } catch {
    return false;
  }
}

export class Runner {
  readonly supervisors = new Map<string, AgentSupervisor>();
  readonly api: RunnerApi;
  host = '';
  private readonly config: RunnerConfig;
  private readonly options: RunnerOptions;
  private readonly log: (line: string) => void;
  private readonly reporter: Reporter;
  private readonly poller: Poller;
  private readonly logPoller: Poller;
  private readonly sampler = new ResourceSampler();
  private resourcesSentAt = 0;
  private logRequestAt = 0;
  private readonly stateFile: string;
  private readonly logDir: string;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private lock?: Lock;
  private channel?: AgentChannel;
  /** AGENT_STATUS_RUNNER of the processes this runner starts; kept in the state file across restarts. */
  private instance = '';
  /** The mark of the runner this one took the host's lease from: its agents are ours to adopt. */
  private previousInstance?: string;
  private hints?: CommandHints;
  private scanning = false;
  private shuttingDown?: Promise<void>;
  /** how often it heartbeats, declared with each heartbeat so the database knows when it is silent */
  private heartbeatIntervalMs = 30_000;

  private constructor(options: RunnerOptions) {
    this.config = options.config;
    this.options = options;
    this.log = options.log ?? ((line) => console.log(line));
    this.api = new RunnerApi(this.config.supabase);
    this.reporter = new Reporter((reports) => this.api.reportBatch(reports), this.log);
    this.poller = new Poller({
      intervalMs: () =>
        this.hints?.live() ? Math.max(HINTED_POLL_MS, this.config.runner.pollIntervalMs) : this.config.runner.pollIntervalMs,
      batch: CLAIM_BATCH,
      poll: () => this.poll(),
      log: this.log,
    });
    this.logPoller = new Poller({
      intervalMs: () =>
        Date.now() - this.logRequestAt < LOG_ACTIVE_FOR_MS ? LOG_POLL_ACTIVE_MS : this.hints?.live() ? HINTED_POLL_MS : LOG_POLL_IDLE_MS,
      batch: 50,
      poll: () => this.answerLogRequests(),
      log: this.log,
      what: 'log requests',
    });
    this.stateFile = join(this.config.runner.stateDir, 'state.json');
    this.logDir = join(this.config.runner.stateDir, 'logs');
  }

  /** Takes the host lock, registers, adopts what runs, and starts the loops. */
  static async start(options: RunnerOptions): Promise<Runner> {
    const runner = new Runner(options);
    try {
      await runner.begin();
    } catch (error) {
      runner.lock?.release();
      runner.reporter.close();
      await runner.channel?.close();
      throw error;
    }
    return runner;
  }

  private async begin(): Promise<void> {
    const { config } = this;
    mkdirSync(config.runner.stateDir, { recursive: true, mode: 0o700 });
    this.lock = acquireLock(join(config.runner.stateDir, 'runner.lock'));

    const saved = readState(this.stateFile, this.log);
    this.instance = saved.instance ?? randomUUID();
    // the lease before anything else: a second runner must not register, adopt or start anything
    await this.register(this.options.takeover ?? false);
    // The agents' calls on connections of their own: the runner's heartbeats, polls and command results
    // never wait behind them.
    const agentsApi = new RunnerApi(config.supabase, AGENT_SOCKETS);
    this.channel = await AgentChannel.listen(
      { heartbeat: (heartbeat) => agentsApi.agentHeartbeat(heartbeat), report: (report) => this.reporter.submit(report) },
      join(config.runner.stateDir, 'channel', 'agents.sock'),
    );
    this.channel.onRefused = (agent, message) => this.log(`${agent}: the database refused its heartbeat: ${message}`);
    for (const agent of config.agents) if (agent.account) await this.channel.serveUser(agent.account);
    for (const agent of config.agents) {
      this.supervisors.set(
        agent.name,
        new AgentSupervisor(agent, {
          logDir: this.logDir,
          env: (name) => this.agentEnvironment(name),
          mark: this.instance,
          report: (name, report) => this.reporter.report(name, report),
          log: this.log,
          changed: () => this.saveState(),
          ended: (name) => this.channel?.revoke(name),
        }),
      );
    }

    await this.reconcileAtStart(saved);

    this.poller.start();
    this.logPoller.start();
    if (config.supabase.realtime) {
      this.hints = subscribeToCommandHints(
        this.api.client,
        this.host,
        (hint) => {
          if (hint !== 'log_request') this.poller.wake();
          if (hint !== 'command') this.logPoller.wake();
        },
        this.log,
      );
    }
    // Relayed heartbeats must come well within the shortest heartbeat timeout of the agents.
    const shortestTimeout = Math.min(...config.agents.map((agent) => agent.heartbeat_timeout ?? Infinity));
    this.heartbeatIntervalMs = Math.min(config.runner.heartbeatIntervalMs, shortestTimeout / 3);
    this.every(this.heartbeatIntervalMs, () => this.heartbeat());
    this.every(config.runner.checkIntervalMs, async () => {
      for (const supervisor of this.supervisors.values()) supervisor.check();
      for (const failure of await this.channel!.heal()) this.log(failure);
      // at the check after start, then every resources_interval
      if (Date.now() - this.resourcesSentAt >= config.runner.resourcesIntervalMs) return this.sendResources();
    });
    this.every(config.runner.scanIntervalMs, () => this.scan());
    this.log(
      `runner ${RUNNER_VERSION} on ${this.host}: supervising ${config.agents.map((a) => a.name).join(', ')}; ` +
        `polling every ${config.runner.pollIntervalMs} ms`,
    );
  }

  /**
   * What happened while no runner watched: agents still running are adopted (never started twice);
   * an agent whose recorded process is gone is reported crashed and, if it should run and its policy
   * restarts, started again, as is one that was waiting to be restarted when the last runner ended;
   * autostart agents are started. An agent that had crashed and not yet proved stable still has to
   * (the new runner reports `stable` once it stays up its stable period).
   */
  private async reconcileAtStart(saved: RunnerState): Promise<void> {
    const found = await findAgentProcesses(this.config.agents, this.identity(), new Set());
    const starts: Promise<Outcome>[] = [];
    for (const supervisor of this.supervisors.values()) {
      const { spec } = supervisor;
      const state = saved.agents[spec.name];
      supervisor.unstable = state?.unstable ?? false;
      if (state?.process && isSameProcess(state.process)) {
        await this.adopt(supervisor, state.process, `still running (pid ${state.process.pid}) when the runner started`);
        continue;
      }
      const process = found.get(spec.name);
      if (process) {
        await this.adopt(supervisor, process, process.how);
        continue;
      }
      if (state?.process) supervisor.endedWhileAway(state.process.pid);
      // wanted with no process: it was waiting out its backoff, a restart the last runner promised
      const restartable = state?.wanted && (state.process || state.unstable) && spec.restart !== 'never';
      if (spec.autostart || restartable) {
        starts.push(supervisor.start(spec.autostart ? 'autostart when the runner started' : 'restarted by policy when the runner started'));
      }
    }
    for (const outcome of await Promise.all(starts)) if (!outcome.ok) this.log(outcome.message);
    this.saveState();
  }

  private async adoptIfRunning(supervisor: AgentSupervisor): Promise<void> {
    // /proc directly, not ps-list: this runs before every start, and `ps` would add 12-15 ms to each
    const found = (await findAgentProcesses([supervisor.spec], this.identity(), this.supervisedPids(), listProcesses())).get(
      supervisor.name,
    );
    if (found) await this.adopt(supervisor, found, found.how);
  }

  /**
   * Takes a running process as the agent's, and hears it again: the channel accepts the secret in its
   * environment and serves the socket it knows (another runner's, after a takeover).
   */
  private async adopt(supervisor: AgentSupervisor, identity: ProcessIdentity, how: string): Promise<void> {
    supervisor.adopt(identity, how);
    const env = processEnvironment(identity.pid);
    const secret = env?.get('AGENT_STATUS_TOKEN');
    const socket = env?.get('AGENT_STATUS_SOCKET');
    const url = env?.get('AGENT_STATUS_URL');
    if (secret && !socket && url && isOlderRunnersChannel(url)) {
      // Runners before the Unix-socket channel gave their agents a loopback port, which nothing serves
      // now (serving it again would reopen the port any local user could take while the runner is
      // down): such an agent runs on, but its reports are lost until it is restarted with the socket.
      // Say so where the operator looks: the runner's log, and the agent's row (warning) and history.
      const message =
        `started by an older runner, it reports to ${url}, which nothing serves now: its own reports are lost ` +
        `until it is restarted (agent-status restart ${JSON.stringify(supervisor.name)})`;
      this.log(`${supervisor.name} (pid ${identity.pid}): ${message}`);
      this.reporter.report(supervisor.name, { event: 'warning', message });
      return;
    }
    if (!secret || !socket) return; // started by hand: it reports on its own, if at all
    this.channel!.restore(supervisor.name, secret);
    try {
      await this.channel!.alsoServe(socket);
    } catch (error) {
      this.log(
        `${supervisor.name} (pid ${identity.pid}) cannot report until it is restarted: its channel ${socket} cannot be served: ${(error as Error).message}`,
      );
    }
  }

  // Agents report to this runner's channel (or, configured so, straight to the project): another
  // service's URL in a process's environment means it is not one of ours.
  private identity(): RunnerIdentity {
    return {
      marks: this.previousInstance ? [this.instance, this.previousInstance] : [this.instance],
      urls: [CHANNEL_URL, this.config.supabase.url.replace(/\/+$/, '')],
    };
  }

  /**
   * What each start of an agent gets: the channel's socket and a new secret good for this agent only
   * (the previous process's secret stops working). Never the runner's own token.
   */
  private agentEnvironment(name: string): Record<string, string> {
    const secret = this.channel!.issue(name);
    const account = this.config.agents.find((agent) => agent.name === name)?.account;
    return { AGENT_STATUS_URL: CHANNEL_URL, AGENT_STATUS_SOCKET: this.channel!.socketFor(account), AGENT_STATUS_TOKEN: secret };
  }

  private supervisedPids(): Set<number> {
    return new Set([...this.supervisors.values()].flatMap((s) => (s.process ? [s.process.pid] : [])));
  }

  private async scan(): Promise<void> {
    if (this.scanning || this.shuttingDown) return;
    const idle = [...this.supervisors.values()].filter((s) => !s.process && s.state !== 'backoff');
    if (!idle.length) return;
    this.scanning = true;
    try {
      const found = await findAgentProcesses(
        idle.map((s) => s.spec),
        this.identity(),
        this.supervisedPids(),
      );
      for (const supervisor of idle) {
        const process = found.get(supervisor.name);
        // a command may have started it while the table was being read
        if (process && !supervisor.process && !this.queues.has(supervisor.name)) await this.adopt(supervisor, process, process.how);
      }
    } catch (error) {
      this.log(`could not read the process table: ${(error as Error).message}`);
    } finally {
      this.scanning = false;
    }
  }

  /**
   * One call per interval: the runner's liveness, its live processes, and the heartbeats its agents
   * sent through the channel since the last one (more calls only past 50 of those). Its answer
   * wakes the command and log loops when something waits for them.
   */
  private async heartbeat(): Promise<void> {
    try {
      // the list is made once no report is in flight: a crash reported before is not relayed as alive
      await this.reporter.exclusive(async () => {
        let relayed: { name: string; pid: number }[] | null = [...this.supervisors.values()].flatMap((s) =>
          s.process ? [{ name: s.name, pid: s.process.pid }] : [],
        );
        // past 50 kept heartbeats, more calls (not for those that arrive meanwhile: they wait their turn)
        for (let more = true; more; ) {
          const kept = this.channel!.takeHeartbeats(HEARTBEATS_PER_CALL);
          more = kept.heartbeats.length === HEARTBEATS_PER_CALL && this.channel!.keeping > 0;
          let answer: RunnerHeartbeatAnswer;
          try {
            answer = await this.api.heartbeat(relayed, Math.ceil(this.heartbeatIntervalMs / 1000), kept.heartbeats);
          } catch (error) {
            kept.putBack();
            throw error;
          }
          kept.settle(answer.heartbeats);
          relayed = null;
          if (answer.commands_waiting) this.poller.wake();
          if (answer.log_requests_waiting) this.logPoller.wake();
        }
      });
    } catch (error) {
      this.log(`heartbeat failed: ${(error as Error).message}`);
    }
  }

  private async sendResources(): Promise<void> {
    this.resourcesSentAt = Date.now();
    const groups = new Map([...this.supervisors.values()].flatMap((s) => (s.process ? [[s.name, s.process.pid] as const] : [])));
    const samples = this.sampler.sample(groups);
    if (!samples.length) return;
    try {
      await this.api.reportResources(samples);
    } catch (error) {
      this.log(`could not send CPU and memory figures: ${(error as Error).message}`);
    }
  }

  /** Answers operators' requests for an agent's last log lines, read from its files on this host. */
  private async answerLogRequests(): Promise<number> {
    const requests: LogRequest[] = await this.api.claimLogRequests();
    if (requests.length) this.logRequestAt = Date.now();
    await Promise.all(
      requests.map(async (request) => {
        const supervisor = this.supervisors.get(request.agent_name);
        const files = agentLogFiles(this.logDir, request.agent_name);
        try {
          await this.api.answerLogRequest(
            request.id,
            supervisor
              ? { stdout: tailForOperator(files.stdout, request.lines), stderr: tailForOperator(files.stderr, request.lines) }
              : { error: `the runner on ${this.host} does not supervise ${request.agent_name}` },
          );
        } catch (error) {
          this.log(`could not answer log request ${request.id} for ${request.agent_name}: ${(error as Error).message}`);
        }
      }),
    );
    return requests.length;
  }

  private async register(takeover = false): Promise<void> {
    const lease = await this.api.lease(this.instance, process.pid, takeover);
    if (lease.took_over) this.log('took the host over from a runner that was still live; it stops at its next poll');
    this.previousInstance ??= lease.previous_instance ?? undefined;
    const registered = await this.api.register(
      this.config.agents.map((agent) => ({
        name: agent.name,
        ...(agent.heartbeat_timeout !== undefined && { heartbeat_timeout_s: Math.round(agent.heartbeat_timeout / 1000) }),
      })),
      RUNNER_VERSION,
      process.pid,
      this.instance,
    );
    this.host = registered.host;
  }

  private async poll(): Promise<number> {
    let commands: ClaimedCommand[];
    try {
      commands = await this.api.claim(CLAIM_BATCH, this.instance);
    } catch (error) {
      if (error instanceof RunnerCallError && error.code === '55000' && /no longer holds the lease/.test(error.message)) {
        this.log(`${error.reason}: stopping; the agents keep running under the new runner`);
        void this.shutdown({ stopAgents: false }).then(() => this.options.onStopped?.(error.reason));
        return 0;
      }
      // The runner's row is gone (a database restored from before it registered, say): register again.
      if (error instanceof RunnerCallError && error.code === '55000' && /has not registered/.test(error.message)) {
        this.log('the database does not know this runner any more; registering again');
        await this.register();
      }
      throw error;
    }
    for (const command of commands) this.dispatch(command);
    return commands.length;
  }

  // Commands for one agent run one after the other, in the order they were sent; commands for
  // different agents run side by side.
  private dispatch(command: ClaimedCommand): void {
    const previous = this.queues.get(command.agent_name) ?? Promise.resolve();
    const next = previous.then(() => this.execute(command));
    this.queues.set(command.agent_name, next);
    void next.finally(() => {
      if (this.queues.get(command.agent_name) === next) this.queues.delete(command.agent_name);
    });
  }

  private async execute(command: ClaimedCommand): Promise<void> {
    const supervisor = this.supervisors.get(command.agent_name);
    let outcome: Outcome;
    if (!supervisor) {
      outcome = {
        ok: false,
        message: `no such agent on this host (the runner on ${this.host} manages ${[...this.supervisors.keys()].join(', ')})`,
      };
    } else {
      try {
        // A copy started since the last scan (by hand, or by a second runner someone pointed at this
        // host) is adopted first, so a start never makes a second one and a restart replaces it.
        if (command.action !== 'stop' && !supervisor.process) await this.adoptIfRunning(supervisor);
        outcome = await (command.action === 'start'
          ? supervisor.start()
          : command.action === 'stop'
            ? supervisor.stop()
            : supervisor.restart());
      } catch (error) {
        outcome = { ok: false, message: `${command.action} failed in the runner: ${(error as Error).message}` };
      }
    }
    this.log(
      `${command.action} ${command.agent_name} (command ${command.id}, by ${command.requested_by}): ` +
        `${outcome.ok ? 'succeeded' : 'failed'}: ${outcome.message}`,
    );
    // what the command did (started, terminated) is recorded before the command reads as done: the
    // two calls raced, and a finished stop could leave the agent reading running for a moment
    await this.reporter.sent(command.agent_name, REPORT_BEFORE_RESULT_MS);
    await this.complete(command, outcome);
  }

  private async complete(command: ClaimedCommand, outcome: Outcome): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.complete(command.id, outcome.ok, outcome.message, this.instance);
        return;
      } catch (error) {
        const retryable = (error as { retryable?: boolean }).retryable;
        if (!retryable || attempt >= COMPLETE_ATTEMPTS) {
          this.log(`could not record the result of command ${command.id}: ${(error as Error).message}`);
          return;
        }
        await sleep(retryDelay(attempt));
      }
    }
  }

  private saveState(): void {
    const state: RunnerState = { instance: this.instance, agents: {} };
    for (const supervisor of this.supervisors.values()) {
      state.agents[supervisor.name] = {
        wanted: supervisor.wanted,
        ...(supervisor.process && { process: supervisor.process }),
        ...(supervisor.unstable && { unstable: true }),
      };
    }
    try {
      writeState(this.stateFile, state);
    } catch (error) {
      this.log(`could not save ${this.stateFile}: ${(error as Error).message}`);
    }
  }

  private every(ms: number, task: () => unknown): void {
    this.timers.push(
      setInterval(() => {
        try {
          const result = task();
          if (result instanceof Promise) result.catch((error) => this.log(`background task failed: ${(error as Error).message}`));
        } catch (error) {
          this.log(`background task failed: ${(error as Error).message}`);
        }
      }, ms),
    );
  }

  /**
   * Stops the loops, lets the commands in progress finish, optionally stops the agents (by default
   * they keep running and the next runner adopts them), sends what is queued and reports offline.
   */
  shutdown(options: { stopAgents?: boolean } = {}): Promise<void> {
    this.shuttingDown ??= (async () => {
      const stopAgents = options.stopAgents ?? this.config.runner.stopAgentsOnExit;
      for (const timer of this.timers) clearInterval(timer);
      await Promise.all([this.poller.stop(), this.logPoller.stop()]);
      await this.hints?.unsubscribe().catch(() => {});
      const inProgress = Promise.all(this.queues.values());
      if (!(await Promise.race([inProgress.then(() => true), sleep(SHUTDOWN_GRACE_MS).then(() => false)]))) {
        this.log(`commands still in progress after ${SHUTDOWN_GRACE_MS / 1000} s; stopping anyway`);
      }
      if (stopAgents) {
        await Promise.all([...this.supervisors.values()].map((s) => s.stop('stopped with the runner')));
      }
      for (const supervisor of this.supervisors.values()) supervisor.dispose();
      this.saveState();
      if (!(await this.reporter.flush(5000))) this.log('some reports could not be sent before exiting');
      this.reporter.close();
      try {
        await this.api.offline(this.instance);
      } catch (error) {
        this.log(`could not report the runner offline (the sweep will): ${(error as Error).message}`);
      }
      await this.channel?.close();
      this.lock?.release();
      this.log(`runner on ${this.host} stopped; agents ${stopAgents ? 'stopped' : 'left running'}`);
    })();
    return this.shuttingDown;
  }
}
