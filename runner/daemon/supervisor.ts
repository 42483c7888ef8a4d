// One agent's process: start it in its own process group, stop the whole group (stop signal, then
// SIGKILL after the stop timeout), notice when it ends, and start it again as its restart policy says.
// Every change is told to `report` (which forwards it to the database in order); nothing here waits
// on the network, so a crashed agent is restarted in milliseconds even when the database is slow.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { type AgentConfig, RUNNER_TOKEN_VARIABLE } from './config.ts';
import { agentLogFiles, fileSize, linesSince, openLogFiles, rotateIfLarge, type LogFiles } from './logs.ts';
import { groupExists, groupIsEmpty, groupIsOurs, isSameProcess, processInfo, signalGroup, type ProcessIdentity } from './proc.ts';
import { decideRestart, NO_STREAK, type RestartSettings, type Streak } from './restart-policy.ts';

/** What the runner tells the database about one agent's process (agent_report). */
export interface AgentReport {
  /** warning: the runner saying what is wrong with an agent's process (an adopted agent that cannot report) */
  event: 'started' | 'adopted' | 'exited' | 'crashed' | 'terminated' | 'stable' | 'warning';
  pid?: number;
  exitCode?: number;
  exitSignal?: string;
  message?: string;
  /** the last lines of its stderr, kept with the event (details.log_tail) for the dashboard */
  logTail?: string[];
  /** with a crash: when the runner starts it again (details.restart_in_s), so the row can say so */
  restartInMs?: number;
}

/** How a command ended, with the reason the dashboard shows. */
export interface Outcome {
  ok: boolean;
  message: string;
}

export interface SupervisorContext {
  logDir: string;
  /** Added to the environment of each start (AGENT_STATUS_URL, and AGENT_STATUS_TOKEN good for this agent only); the agent's own env wins. */
  env(agent: string): Record<string, string>;
  /** This runner's instance id, AGENT_STATUS_RUNNER in every process it starts: how it recognises its own. */
  mark: string;
  report(agent: string, report: AgentReport): void;
  log(message: string): void;
  /** Called when the process or the wish to run changed, so the runner can persist it. */
  changed(): void;
  /**
   * The agent's process is gone (exited, crashed, stopped): what it was given to speak with must stop
   * working, or a leftover child, or whoever read its environment, could report it running.
   */
  ended(agent: string): void;
}

export type SupervisorState = 'stopped' | 'running' | 'stopping' | 'backoff' | 'fatal';

interface ExitInfo {
  /** false when the process was not our child (adopted): the kernel gave its exit status to someone else. */
  known: boolean;
  exitCode?: number;
  signal?: string;
  /** Why it could not even start (spawn error), when that is what happened. */
  spawnError?: string;
}

interface Tracked extends ProcessIdentity {
  startedAt: number;
  adopted: boolean;
  child?: ResultPromise;
  /** stderr size when this run began, so failure messages quote this run only. */
  stderrOffset: number;
  exited: Promise<ExitInfo>;
  resolveExit(info: ExitInfo): void;
}

/** The environment variable carrying the instance id of the runner that started a process. */
export const RUNNER_MARK = 'AGENT_STATUS_RUNNER';

const STDERR_LINES = 5;
// agent_report refuses details over 8 kB; the tail must never cost the crash report itself
const LOG_TAIL_CHARS = 4000;

/** The last lines that fit in LOG_TAIL_CHARS, each cut to a readable length. */
function boundedTail(lines: string[]): string[] {
  const kept: string[] = [];
  let total = 0;
  for (const line of [...lines].reverse()) {
    const cut = line.length > 1000 ? `${line.slice(0, 1000)}…` : line;
    if (total + cut.length > LOG_TAIL_CHARS) break;
    kept.unshift(cut);
    total += cut.length;
  }
  return kept;
}
const MESSAGE_LIMIT = 4000;
// After SIGKILL the kernel removes a process at once; waiting longer than this means something
// (an uninterruptible sleep on a dead disk, say) holds it, and the command says so instead of hanging.
const KILL_WAIT_MS = 5000;
const POLL_MS = 20;

function seconds(ms: number): string {
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function describeExit(info: ExitInfo): string {
  if (info.spawnError) return `could not start: ${info.spawnError}`;
  if (!info.known) return 'ended while the runner was not its parent, so its exit code is unknown';
  return info.signal ? `killed by ${info.signal}` : `exited with code ${info.exitCode}`;
}

/** Supervises one agent of the config. */
export class AgentSupervisor {
  state: SupervisorState = 'stopped';
  /** Whether the agent should run (last start or stop wins); restart policies apply only then. */
  wanted = false;
  private current?: Tracked;
  private stopping?: Tracked;
  private streak: Streak = NO_STREAK;
  /**
   * A crash was reported and no `stable`, clean exit or stop since: the database holds the agent
   * as restarting (unstable_since) until this runner says it stayed up its stable period. Unlike
   * the backoff streak, a start someone asks for does not end it (the process must still prove
   * itself), and the runner keeps it across its own restarts (the state file), or an agent crashed
   * or restarted while no runner watched would read "not yet stable" for good.
   */
  unstable = false;
  private restartTimer?: NodeJS.Timeout;
  private disposed = false;
  private stableTimer?: NodeJS.Timeout;
  private readonly logs: LogFiles;
  private readonly restartSettings: RestartSettings;

  constructor(
    readonly spec: AgentConfig,
    private readonly context: SupervisorContext,
  ) {
    this.logs = agentLogFiles(context.logDir, spec.name);
    this.restartSettings = {
      restart: spec.restart,
      minUptimeMs: spec.min_uptime,
      backoff: {
        initialMs: spec.backoff.initial,
        maxMs: spec.backoff.max,
        maxRetries: spec.backoff.max_retries,
        resetAfterMs: spec.backoff.reset_after,
      },
    };
  }

  get name(): string {
    return this.spec.name;
  }

  /** The process being supervised, if any. */
  get process(): ProcessIdentity | undefined {
    return this.current ? { pid: this.current.pid, startTicks: this.current.startTicks } : undefined;
  }

  get logFiles(): LogFiles {
    return this.logs;
  }

  /** Starts the agent unless it runs; waits min_uptime to tell a good start from one that dies at once. */
  async start(why = 'started by command'): Promise<Outcome> {
    // Starting what runs is what the user asked for already: a no-op that succeeds (supervisorctl
    // and PM2 say "already started"), so start-all over running agents exits 0.
    if (this.current) {
      this.wanted = true;
      return { ok: true, message: `already running (pid ${this.current.pid})` };
    }
    this.cancelRestart();
    this.wanted = true;
    // a start someone asked for begins afresh: no backoff carried over from an earlier crash loop
    this.streak = NO_STREAK;
    const spawned = this.spawn(why);
    if ('error' in spawned) return { ok: false, message: await spawned.error };
    const { tracked } = spawned;
    const exit = await Promise.race([tracked.exited, sleep(this.spec.min_uptime).then(() => undefined)]);
    if (exit) {
      const lines = linesSince(this.logs.stderr, tracked.stderrOffset, 1);
      const within = `within ${seconds(this.spec.min_uptime)}`;
      const how = exit.signal ? `killed by ${exit.signal} ${within}` : `exited ${within} with code ${exit.exitCode}`;
      return { ok: false, message: how + (lines.length ? `: ${lines[0]}` : '') };
    }
    return { ok: true, message: `started (pid ${tracked.pid})` };
  }

  /** Stops the agent's whole process group: stop signal, stop timeout, then SIGKILL. */
  async stop(why = 'stopped by command'): Promise<Outcome> {
    this.wanted = false;
    this.context.changed();
    if (this.restartTimer || this.state === 'fatal') {
      const was = this.state;
      this.cancelRestart();
      this.state = 'stopped';
      this.unstable = false;
      this.context.report(this.name, {
        event: 'terminated',
        message: `${why} (it was ${was === 'fatal' ? 'given up after a crash loop' : 'waiting to restart'})`,
      });
      return { ok: true, message: `stopped (it was ${was === 'fatal' ? 'in a crash loop' : 'waiting to restart'})` };
    }
    const tracked = this.current;
    if (!tracked) return { ok: true, message: 'already stopped' };
    if (!this.isStillOurs(tracked)) {
      // handleExit has reported it; nothing of it is left to signal
      return { ok: true, message: `already stopped (pid ${tracked.pid} had ended)` };
    }

    this.stopping = tracked;
    this.state = 'stopping';
    const began = Date.now();
    const signal = this.spec.stop_signal as NodeJS.Signals;
    signalGroup(tracked, signal);
    const killed = !(await this.waitForGroup(tracked, this.spec.stop_timeout));
    if (killed) {
      signalGroup(tracked, 'SIGKILL');
      if (!(await this.waitForGroup(tracked, KILL_WAIT_MS))) {
        this.stopping = undefined;
        this.state = this.current ? 'running' : 'stopped';
        return { ok: false, message: `pid ${tracked.pid} or its group survived SIGKILL for ${seconds(KILL_WAIT_MS)}; check it with ps` };
      }
    }
    const exit = await tracked.exited;
    this.stopping = undefined;
    this.state = 'stopped';
    this.unstable = false;
    const took = seconds(Date.now() - began);
    const how = killed
      ? `did not stop within ${seconds(this.spec.stop_timeout)} of ${signal}; killed with SIGKILL`
      : `stopped by ${signal} in ${took}`;
    this.context.report(this.name, {
      event: 'terminated',
      exitCode: exit.exitCode,
      exitSignal: exit.signal,
      message: `${why}: ${how}`,
    });
    this.context.changed();
    return { ok: true, message: `stopped (pid ${tracked.pid}): ${how}` };
  }

  async restart(): Promise<Outcome> {
    const before = this.current?.pid;
    const stopped = await this.stop('stopped to restart');
    if (!stopped.ok) return stopped;
    const started = await this.start();
    if (!started.ok) return started;
    return {
      ok: true,
      message: before ? `restarted: pid ${before} -> ${this.current?.pid}` : `started (pid ${this.current?.pid}); it was not running`,
    };
  }

  /**
   * The process a previous runner recorded is gone and nobody saw it end: a crash, with its exit
   * status unknown. Whatever starts it next is a restart that must prove itself stable.
   */
  endedWhileAway(pid: number): void {
    this.unstable = true;
    this.context.report(this.name, {
      event: 'crashed',
      message: `pid ${pid} ended while the runner was not running, so its exit code is unknown`,
    });
    this.context.changed();
  }

  /** Takes over a running process the runner did not start (or started before it was restarted). */
  adopt(identity: ProcessIdentity, how: string): void {
    if (this.current) return;
    this.cancelRestart();
    let resolveExit!: (info: ExitInfo) => void;
    const exited = new Promise<ExitInfo>((resolve) => (resolveExit = resolve));
    const tracked: Tracked = {
      ...identity,
      startedAt: Date.now(),
      adopted: true,
      stderrOffset: fileSize(this.logs.stderr),
      exited,
      resolveExit,
    };
    this.track(tracked);
    this.wanted = true;
    this.context.report(this.name, { event: 'adopted', pid: identity.pid, message: how });
    this.context.changed();
  }

  /**
   * The periodic check: an adopted process is not our child, so nothing tells us when it ends;
   * its pid is checked against the start time we recorded (a reused pid is not the agent). Also
   * rotates the agent's logs.
   */
  check(): void {
    if (this.current) this.isStillOurs(this.current);
    rotateIfLarge(this.logs.stdout, { maxSize: this.spec.logs.max_size, keep: this.spec.logs.keep });
    rotateIfLarge(this.logs.stderr, { maxSize: this.spec.logs.max_size, keep: this.spec.logs.keep });
  }

  /**
   * Forgets timers and stops watching; processes are left running (the runner's default on exit).
   * An exit seen afterwards is the next runner's to handle: restarting it here would undo that
   * runner's stop (a runner that lost its host's lease lives on in-process until it exits).
   */
  dispose(): void {
    this.cancelRestart();
    this.disposed = true;
    this.cancelStable();
  }

  private spawn(why: string): { tracked: Tracked } | { error: Promise<string> } {
    const fds = openLogFiles(this.logs);
    const stderrOffset = fileSize(this.logs.stderr);
    let child: ResultPromise;
    try {
      const { account } = this.spec;
      child = execa(this.spec.command, this.spec.args, {
        cwd: this.spec.cwd,
        env: {
          // the runner's own token never reaches an agent (a systemd EnvironmentFile puts it in the runner's environment)
          [RUNNER_TOKEN_VARIABLE]: undefined,
          ...(account ? { HOME: account.home, USER: account.user, LOGNAME: account.user } : {}),
          ...this.context.env(this.name),
          ...this.spec.env,
          AGENT_NAME: this.name,
          [RUNNER_MARK]: this.context.mark,
        },
        ...(account ? { uid: account.uid, gid: account.gid } : {}),
        // its own process group, so a stop reaches the grandchildren too; and no cleanup on our
        // exit: agents keep running while the runner is upgraded or restarted
        detached: true,
        cleanup: false,
        // the files themselves, not pipes through the runner: agents outlive the runner. (execa's
        // types list only descriptors 3-9; at run time it passes any descriptor to spawn as is.)
        stdio: ['ignore', fds.stdout as 3, fds.stderr as 3],
        reject: false,
      });
    } finally {
      fds.close();
    }
    const pid = child.pid;
    if (!pid) return { error: this.spawnFailed(child) };
    let resolveExit!: (info: ExitInfo) => void;
    const exited = new Promise<ExitInfo>((resolve) => (resolveExit = resolve));
    // A process that already ended is still a zombie here (Node reaps it later, in the event loop).
    const startTicks = processInfo(pid)?.startTicks ?? 0;
    const tracked: Tracked = { pid, startTicks, startedAt: Date.now(), adopted: false, child, stderrOffset, exited, resolveExit };
    void child.then((result) => resolveExit({ known: true, exitCode: result.exitCode, signal: result.signal }));
    this.track(tracked);
    this.context.report(this.name, { event: 'started', pid, message: why });
    this.context.changed();
    return { tracked };
  }

  // Spawn errors (no such program, no such working directory) arrive asynchronously. They count as
  // a quick failed exit for the restart policy, so a missing program backs off and ends in a crash
  // loop error like a program that dies at once.
  private async spawnFailed(child: ResultPromise): Promise<string> {
    const result = await child;
    const spawnError =
      result.code === 'ENOENT'
        ? `${this.spec.command} not found (check command and PATH), or the working directory ${this.spec.cwd} does not exist`
        : result.originalMessage || result.shortMessage;
    this.afterExit({ known: true, spawnError }, 0, fileSize(this.logs.stderr));
    return `could not start: ${spawnError}`;
  }

  private track(tracked: Tracked): void {
    this.current = tracked;
    this.state = 'running';
    void tracked.exited.then((info) => this.handleExit(tracked, info));
    // After a crash, a run that lasts the stable period ends the loop: the backoff starts from
    // nothing again and the database lets the agent read running (the `stable` event).
    this.cancelStable();
    if (this.unstable) {
      this.stableTimer = setTimeout(() => {
        this.stableTimer = undefined;
        if (this.current !== tracked) return;
        this.streak = NO_STREAK;
        this.unstable = false;
        this.context.changed();
        this.context.report(this.name, {
          event: 'stable',
          pid: tracked.pid,
          message: `up for ${seconds(this.spec.backoff.reset_after)} after a crash`,
        });
      }, this.spec.backoff.reset_after);
      this.stableTimer.unref?.();
    }
  }

  /** Verifies the tracked pid still is the agent; when it is not, the agent has ended. */
  private isStillOurs(tracked: Tracked): boolean {
    if (isSameProcess(tracked)) return true;
    // A child's exit status is on its way through execa; an adopted one's never comes.
    if (tracked.adopted) tracked.resolveExit({ known: false });
    return false;
  }

  // Resolves true once no process of the group is left, false after timeoutMs.
  private async waitForGroup(tracked: Tracked, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leaderGone = !isSameProcess(tracked);
      if (leaderGone && tracked.adopted) tracked.resolveExit({ known: false });
      if (leaderGone && groupIsEmpty(tracked)) return true;
      if (Date.now() >= deadline) return false;
      await sleep(POLL_MS);
    }
  }

  private handleExit(tracked: Tracked, info: ExitInfo): void {
    if (this.current !== tracked || this.disposed) return;
    this.current = undefined;
    this.context.ended(this.name);
    this.cancelStable();
    if (this.stopping === tracked) return; // stop() reports it
    this.afterExit(info, Date.now() - tracked.startedAt, tracked.stderrOffset);
    // Grandchildren of an agent that ended on its own are orphans of a dead agent: clean them up.
    // (After the restart, which must not wait for this: the check is one system call, the cleanup
    // takes up to the stop timeout.)
    if (groupIsOurs(tracked) && groupExists(tracked.pid)) void this.killLeftovers(tracked);
  }

  private afterExit(info: ExitInfo, uptimeMs: number, stderrOffset: number): void {
    this.state = 'stopped';
    const failed = !info.known || !!info.spawnError || info.exitCode !== 0 || !!info.signal;
    // the database's rule too: a crash makes the agent unstable, a clean exit ends that
    this.unstable = failed;
    const lines = linesSince(this.logs.stderr, stderrOffset, STDERR_LINES);
    const summary = `${describeExit(info)}${info.spawnError ? '' : ` after ${seconds(uptimeMs)}`}`;
    const decision = this.wanted
      ? decideRestart(this.restartSettings, { failed, uptimeMs }, this.streak)
      : { action: 'none' as const, streak: NO_STREAK };
    let message = summary;
    if (decision.action === 'give-up') {
      message =
        `crash loop: ended ${decision.streak.quickExits} times in a row within ${seconds(this.spec.min_uptime)} of starting; ` +
        `gave up restarting (restart: ${this.spec.restart}). Last: ${summary}`;
    }
    if (lines.length) message += `\nlast stderr:\n${lines.join('\n')}`;
    this.context.report(this.name, {
      event: failed ? 'crashed' : 'exited',
      exitCode: info.exitCode,
      exitSignal: info.signal,
      message: message.slice(0, MESSAGE_LIMIT),
      logTail: lines.length ? boundedTail(lines) : undefined,
      restartInMs: decision.action === 'restart' && failed ? decision.delayMs : undefined,
    });

    if (decision.action === 'restart') {
      this.streak = decision.streak;
      const again = () => {
        this.restartTimer = undefined;
        this.spawn(`restarted by policy ${this.spec.restart} after: ${summary}`);
      };
      if (decision.delayMs === 0) {
        // said here too: the first crash restarts at once, and the console skipped it
        this.context.log(`${this.name}: ${summary}; restarting now (restart: ${this.spec.restart})`);
        again();
      } else {
        this.state = 'backoff';
        this.context.log(
          `${this.name}: ${summary}; restarting in ${seconds(decision.delayMs)} (failure ${decision.streak.failures} in a row, ` +
            `quick exit ${decision.streak.quickExits} of ${this.spec.backoff.max_retries})`,
        );
        this.restartTimer = setTimeout(again, decision.delayMs);
      }
    } else if (decision.action === 'give-up') {
      // given up until someone starts it again, also across a runner restart
      this.streak = { ...decision.streak, quickExits: 0 };
      this.wanted = false;
      this.state = 'fatal';
      this.context.log(`${this.name}: ${message.split('\n')[0]}`);
    } else {
      this.state = 'stopped';
      if (this.wanted) this.context.log(`${this.name}: ${summary}; not restarted (restart: ${this.spec.restart})`);
      this.wanted = false;
    }
    this.context.changed();
  }

  private async killLeftovers(tracked: Tracked): Promise<void> {
    signalGroup(tracked, this.spec.stop_signal as NodeJS.Signals);
    if (await this.waitForGroup(tracked, this.spec.stop_timeout)) return;
    signalGroup(tracked, 'SIGKILL');
  }

  private cancelRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  private cancelStable(): void {
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.stableTimer = undefined;
  }
}
