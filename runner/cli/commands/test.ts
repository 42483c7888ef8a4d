// `agent-status test <agent> --duration 60 [-- <command...>]`: the seed's test_agent_status.py. Starts
// the agent (through its runner, or by running the given command here), watches what the database
// receives for the duration, prints a timeline as it arrives, stops it again and gives a verdict with
// its reason. Exit 0 when the agent passed, 1 when it did not.
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { execa, type ResultPromise } from 'execa';
import { type QueuedCommand, runCommands } from '../../../shared/process-manager.ts';
import { action, integerIn, subcommand } from './action.ts';
import { connect, connectionOptions, type Api, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { oneLine, paintStatus, painter, printJson } from './output.ts';
import { agentById, findAgent, type AgentEvent, type LiveAgent } from './agents.ts';

interface TestOptions extends ConnectionFlags {
  duration: number;
  keepRunning?: boolean;
  json?: boolean;
}

interface Moment {
  /** seconds since the test began */
  t: number;
  what: string;
  detail: string;
}

// The SDKs heartbeat every 30 s by default; a watch this long without one after the start means the
// agent's heartbeats are not getting through.
const SDK_HEARTBEAT_S = 30;
const STOP_GRACE_MS = 10_000;
/** How long start and stop commands may take through the runner. */
const START_WAIT_S = 60;
// How often the wait for them reads the command again.
const POLL_MS = 1000;

class Timeline {
  readonly moments: Moment[] = [];
  readonly began = Date.now();
  /** database clock minus this machine's, so the database's timestamps line up with ours */
  skewMs = 0;
  constructor(private readonly live: boolean) {}
  add(what: string, detail = '', at = Date.now()) {
    const moment = { t: (at - this.began) / 1000, what, detail: oneLine(detail, 160) };
    this.moments.push(moment);
    if (this.live) process.stdout.write(`${painter().dim(`+${moment.t.toFixed(1).padStart(6)} s`)}  ${what.padEnd(18)} ${detail}\n`);
  }
}

function describeEvent(e: AgentEvent): string {
  const flip =
    e.from_status && e.to_status && e.from_status !== e.to_status
      ? `${paintStatus(e.from_status)} -> ${paintStatus(e.to_status)}`
      : e.to_status
        ? paintStatus(e.to_status)
        : '';
  return [flip, e.message, e.actor ? `(${e.actor})` : ''].filter(Boolean).join('  ');
}

async function startThroughRunner(api: Api, agent: LiveAgent, timeline: Timeline, action: 'start' | 'stop'): Promise<QueuedCommand> {
  const {
    commands: [done],
    readError,
  } = await runCommands(
    api.rpc,
    action,
    { agentName: agent.agent_name },
    {
      timeoutMs: START_WAIT_S * 1000,
      pollMs: POLL_MS,
      onQueued: ([queued]) => timeline.add(`${action} requested`, `command ${queued.id} for the runner on ${agent.host}`),
    },
  );
  if (readError) throw readError;
  timeline.add(`${action} ${done.status}`, done.result ?? '');
  return done;
}

export async function testAgent(
  name: string,
  command: string[],
  options: TestOptions,
): Promise<{ pass: boolean; reason: string; timeline: Moment[] }> {
  const api = await connect(options);
  const asked = Date.now();
  const agent = await findAgent(api, name);
  const timeline = new Timeline(!options.json);
  timeline.skewMs = Date.parse(agent.observed_at) - (asked + Date.now()) / 2;
  const local = (databaseTime: string) => Date.parse(databaseTime) - timeline.skewMs;
  const since = agent.observed_at;
  const problems: string[] = [];
  let child: ResultPromise | undefined;
  let childExit: { code?: number; signal?: string; at: number } | undefined;
  // Only what the test started is stopped at the end: an agent that was already running stays so.
  let startedHere = false;

  if (command.length) {
    const [file, ...args] = command;
    child = execa(file, args, {
      env: { AGENT_STATUS_URL: api.url },
      stdin: 'ignore',
      stdout: 'inherit',
      stderr: 'inherit',
      reject: false,
    });
    timeline.add('process started', `pid ${child.pid ?? '-'}: ${command.join(' ')}`);
    startedHere = true;
    void child.then((result) => {
      childExit = { code: result.exitCode, signal: result.signal, at: Date.now() };
      timeline.add('process ended', result.signal ? `by ${result.signal}` : `exit code ${result.exitCode ?? `- (${result.shortMessage})`}`);
    });
  } else if (agent.runner_id) {
    const started = await startThroughRunner(api, agent, timeline, 'start');
    // a start of what runs succeeds as a no-op ("already running (pid N)"): watched, and left running
    const alreadyRunning = /^already running/.test(started.result ?? '');
    startedHere = started.status === 'succeeded' && !alreadyRunning;
    if (started.status !== 'succeeded') {
      const why =
        started.status === 'pending'
          ? `no runner claimed the start command in ${START_WAIT_S} s: is the runner on ${agent.host} running? ` +
            `(agent-status doctor "${name}")`
          : started.status === 'claimed'
            ? `the runner on ${agent.host} claimed the start command but did not answer in ${START_WAIT_S} s`
            : `the runner on ${agent.host} did not start it: ${started.status}${started.result ? `: ${started.result}` : ''}`;
      return { pass: false, reason: why, timeline: timeline.moments };
    }
  } else if (agent.status !== 'running' && agent.status !== 'warning') {
    throw new CliError(
      `no runner manages ${JSON.stringify(name)} and it is ${agent.status}, so the test cannot start it`,
      EXIT.usage,
      `Give the command that starts it: agent-status test ${JSON.stringify(name)} -- python agent.py`,
    );
  } else {
    timeline.add('already running', 'no runner manages it and no command was given: watching only');
  }

  // Watch: heartbeats are seen as changes of last_heartbeat, everything else as events.
  let lastEventId = 0;
  let lastHeartbeat = agent.last_heartbeat;
  const heartbeats: number[] = [];
  let status = agent.status;
  let everAlive = false;
  const statuses = new Set<string>();
  const eventTimes = new Set<string>();
  const deadline = timeline.began + options.duration * 1000;
  const poll = async () => {
    for (;;) {
      const events = await api.rpc<AgentEvent[]>('operator_agent_events', {
        p_agent_name: name,
        p_after_id: lastEventId,
        p_since: since,
        p_limit: 500,
      });
      for (const e of events) {
        timeline.add(e.kind.replaceAll('_', ' '), describeEvent(e), local(e.at));
        eventTimes.add(e.at);
      }
      if (events.length) lastEventId = events[events.length - 1].id;
      if (events.length < 500) break;
    }
    const now = (await agentById(api, agent.id))!;
    // A report (started, error, ...) also moves last_heartbeat, in the same transaction as its event.
    if (now.last_heartbeat && now.last_heartbeat !== lastHeartbeat) {
      lastHeartbeat = now.last_heartbeat;
      heartbeats.push(local(now.last_heartbeat));
      if (!eventTimes.has(now.last_heartbeat)) {
        timeline.add(
          'heartbeat',
          `${paintStatus(now.status)}, health ${now.health}${now.last_activity ? `, ${now.last_activity}` : ''}`,
          local(now.last_heartbeat),
        );
      }
    }
    if (now.status !== status) {
      // stale is read-time only (no event until the sweep persists it), so it is noted here
      if (now.status === 'stale') timeline.add('stale', now.status_reason ?? '');
      status = now.status;
    }
    statuses.add(now.status);
    if (now.status === 'running' || now.status === 'warning') everAlive = true;
    return now;
  };
  let last = await poll();
  while (Date.now() < deadline && !(childExit && Date.now() > childExit.at + 2000)) {
    await sleep(Math.min(1000, deadline - Date.now()));
    last = await poll();
  }
  const watchedUntil = Date.now();

  // What it did while watched.
  const timeout = last.heartbeat_timeout_s;
  const beats = [timeline.began, ...heartbeats.filter((t) => t >= timeline.began - 1000), childExit?.at ?? watchedUntil].sort(
    (a, b) => a - b,
  );
  const longestGap = Math.max(...beats.slice(1).map((t, i) => (t - beats[i]) / 1000));
  if (!everAlive && !heartbeats.length)
    problems.push(
      `it never reported: no started event and no heartbeat in ${options.duration} s (check AGENT_STATUS_URL, ` +
        `AGENT_STATUS_TOKEN and the exact name "${name}")`,
    );
  else if (longestGap > timeout) problems.push(`no heartbeat for ${Math.round(longestGap)} s; it goes stale after ${timeout} s`);
  else if (heartbeats.length <= 1 && options.duration >= SDK_HEARTBEAT_S * 1.5)
    problems.push(
      `no heartbeat for ${Math.round(longestGap)} s after it started: heartbeats are not reaching the service (a blocked main loop?)`,
    );
  if (statuses.has('error')) problems.push(`it reported an error: ${oneLine(last.last_error ?? last.status_reason ?? 'no message', 200)}`);
  if (statuses.has('stale')) problems.push(`it went stale: ${last.status_reason ?? 'no heartbeat in time'}`);
  if (childExit)
    problems.push(
      `its process ended by itself after ${((childExit.at - timeline.began) / 1000).toFixed(1)} s ` +
        `(${childExit.signal ?? `exit code ${childExit.code}`})`,
    );

  // Stop it again, and check that the stop was recorded.
  const stopAtEnd = startedHere && !options.keepRunning;
  if (stopAtEnd) {
    if (child && !childExit) {
      child.kill('SIGTERM');
      timeline.add('stop requested', 'SIGTERM to the process');
      // the grace timer is cancelled once the process ends: left running, it held the CLI open for
      // the rest of the grace after the verdict (a 20 s test took 31 s)
      const grace = new AbortController();
      const ended = await Promise.race([child.then(() => true), sleep(STOP_GRACE_MS, false, { signal: grace.signal }).catch(() => false)]);
      grace.abort();
      if (!ended) {
        child.kill('SIGKILL');
        await child;
        problems.push(`it did not stop within ${STOP_GRACE_MS / 1000} s of SIGTERM (killed with SIGKILL)`);
      }
    } else if (!child && agent.runner_id) {
      const stopped = await startThroughRunner(api, agent, timeline, 'stop');
      if (stopped.status !== 'succeeded') problems.push(`the runner could not stop it: ${stopped.result ?? stopped.status}`);
    }
    const until = Date.now() + 5000;
    do {
      last = await poll();
      if (last.status === 'stopped' || last.status === 'error') break;
      await sleep(500);
    } while (Date.now() < until);
    if (last.status !== 'stopped' && !problems.length)
      problems.push(`after the stop it still reads ${last.status}: its exit handler did not report stopped`);
  }

  const every =
    heartbeats.length > 1
      ? ` about every ${((heartbeats[heartbeats.length - 1] - heartbeats[0]) / 1000 / (heartbeats.length - 1)).toFixed(1)} s,`
      : '';
  const reason = problems.length
    ? problems.join('; ')
    : `ran ${((watchedUntil - timeline.began) / 1000).toFixed(0)} s with ${heartbeats.length} heartbeat(s),${every} ` +
      `longest silence ${Math.round(longestGap)} s (timeout ${timeout} s)${stopAtEnd ? '; stopped cleanly' : '; left running'}`;
  return { pass: problems.length === 0, reason, timeline: timeline.moments };
}

export function registerTest(program: Command): void {
  connectionOptions(subcommand(program, 'test <agent>', 'start an agent, watch its status for a while, print a timeline and a verdict'))
    .addOption(new Option('--duration <seconds>', 'how long to watch').argParser(integerIn(1, 86_400)).default(60))
    .option('--keep-running', 'do not stop the agent at the end')
    .option('--json', 'print {pass, reason, timeline} as JSON at the end')
    .argument('[command...]', 'start the agent with this command here (after --) instead of through its runner')
    .action(
      action(async (name: string, command: string[], options: TestOptions) => {
        const result = await testAgent(name, command, options);
        if (options.json) printJson(result);
        else {
          const paint = painter();
          process.stdout.write(`\n${result.pass ? paint.green('PASS') : paint.red('FAIL')}  ${name}: ${result.reason}\n`);
        }
        return result.pass ? EXIT.ok : EXIT.failed;
      }),
    );
}
