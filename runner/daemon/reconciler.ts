// Finds agents' processes in the process table: after a runner restart (its children kept running)
// or when someone started an agent by hand. The runner adopts what this finds instead of starting
// a second copy.
import psList from 'ps-list';
import type { AgentConfig } from './config.ts';
import { basename } from 'node:path';
import { processArgv, processEnvironment, processInfo, processUids, type ProcessIdentity } from './proc.ts';
import { RUNNER_MARK } from './supervisor.ts';

export interface FoundProcess extends ProcessIdentity {
  /** How it was recognised, for the history. */
  how: string;
}

/** What makes a process this runner's: its mark (or the mark of the runner it took the host over from), and the URLs its agents report to. */
export interface RunnerIdentity {
  marks: string[];
  urls: string[];
}

/**
 * For each agent, the process that is it, if any: a process of the user the runner starts that agent
 * as (its `user:` under a root runner, else the runner's own) that is either a process group leader carrying this runner's mark
 * (AGENT_STATUS_RUNNER) and the agent's AGENT_NAME and running the agent's configured command, or
 * else a process whose command line matches the agent's explicit `match` rule. The mark is no
 * identity on its own: it was readable in the state file, and a root runner reads every process's
 * environment, so a `nobody` process carrying it was adopted (and the real agent then never started). A name alone proves nothing (a `sleep` started by hand with
 * AGENT_NAME set was adopted, and killed by a stop), and a process carrying another runner's mark,
 * or reporting to another service (AGENT_STATUS_URL not ours), or whose environment we cannot read,
 * is never taken, whatever its command line. Several candidates: the oldest wins (the one that has
 * been doing the work). `exclude` holds pids already supervised. `table` is the process table to
 * search (ps-list's by default).
 */
export async function findAgentProcesses(
  agents: AgentConfig[],
  own: RunnerIdentity,
  exclude: Set<number>,
  table?: { pid: number; cmd?: string }[],
): Promise<Map<string, FoundProcess>> {
  const found = new Map<string, FoundProcess>();
  if (!agents.length) return found;
  const byName = new Map(agents.map((agent) => [agent.name, agent]));
  const patterns = agents.filter((agent) => agent.match).map((agent) => ({ agent, pattern: new RegExp(agent.match!) }));
  const mine = ancestry(process.pid);

  for (const entry of table ?? (await psList())) {
    if (exclude.has(entry.pid) || mine.has(entry.pid)) continue;
    const info = processInfo(entry.pid);
    // members of a supervised agent's group (its children) are that agent, not another copy
    if (!info || info.state === 'Z' || exclude.has(info.pgid)) continue;
    let agent: AgentConfig | undefined;
    let how = '';
    let env: Map<string, string> | undefined;
    if (info.pgid === info.pid) {
      env = processEnvironment(entry.pid);
      const name = own.marks.includes(env?.get(RUNNER_MARK) ?? '') ? env?.get('AGENT_NAME') : undefined;
      const named = name ? byName.get(name) : undefined;
      agent = named && runsConfiguredCommand(processArgv(entry.pid) ?? [], named) ? named : undefined;
      if (agent) how = `found running (pid ${entry.pid}, started by this runner for ${agent.name})`;
    }
    if (!agent) {
      const hit = patterns.find(({ pattern }) => pattern.test(entry.cmd ?? ''));
      if (hit && !foreign(env ?? processEnvironment(entry.pid), own)) {
        agent = hit.agent;
        how = `found running (pid ${entry.pid}, command line matches ${hit.agent.match})`;
      }
    }
    if (!agent) continue;
    // the agent runs as its own user: its configured user: under a root runner, else the runner's
    if (!runsAs(entry.pid, agent.account?.uid)) continue;
    const previous = found.get(agent.name);
    if (!previous || info.startTicks < previous.startTicks) {
      found.set(agent.name, { pid: entry.pid, startTicks: info.startTicks, how });
    }
  }
  return found;
}

/** Whether the process runs as uid (by default this runner's user), really and effectively. */
function runsAs(pid: number, uid = process.getuid?.()): boolean {
  if (uid === undefined) return true; // no user ids on this platform
  const uids = processUids(pid);
  return uids?.real === uid && uids.effective === uid;
}

/**
 * Whether argv runs the agent's configured command with exactly its arguments. The command may be
 * found by its file name: an interpreter runs a script as `sh /path/to/script`, and a command found
 * on PATH shows as its full path.
 */
export function runsConfiguredCommand(argv: string[], agent: Pick<AgentConfig, 'command' | 'args'>): boolean {
  const name = basename(agent.command);
  return argv.some(
    (arg, i) =>
      (arg === agent.command || basename(arg) === name) &&
      argv.length - i - 1 === agent.args.length &&
      agent.args.every((expected, j) => argv[i + 1 + j] === expected),
  );
}

function foreign(env: Map<string, string> | undefined, own: RunnerIdentity): boolean {
  if (!env) return true; // another user's process: nothing proves it is ours, and we could not signal it
  const mark = env.get(RUNNER_MARK);
  const url = env.get('AGENT_STATUS_URL');
  return (mark !== undefined && !own.marks.includes(mark)) || (url !== undefined && !own.urls.includes(url.replace(/\/+$/, '')));
}

// The runner itself and its ancestors (a shell or `npm` whose command line mentions the agent).
function ancestry(pid: number): Set<number> {
  const chain = new Set<number>();
  for (let current: number | undefined = pid; current && current > 1 && !chain.has(current); current = processInfo(current)?.ppid) {
    chain.add(current);
  }
  return chain;
}
