// What the operator's buttons do, all through the shared process manager (shared/process-manager.ts),
// the one way to act on agents from TypeScript. Start, Stop and Restart queue a command for the
// agent's runner and tell the runner's answer when it comes; Force stop only rewrites the status in
// the database; Start all queues start for every managed agent. Once a command is queued the feed
// polls at once, so the row shows it in flight right away.
import type { SupabaseClient } from '@supabase/supabase-js';
import { createProcessManager, type ProcessManager } from '../../shared/process-manager.ts';
import { type CommandAction, runnerAway } from '../../shared/status.ts';
import type { AgentRow } from './api.ts';
import { confirmAction } from './dialog.ts';
import type { Notices } from './notices.ts';
import { formatDuration } from './time.ts';

// The row shows a command in flight and its outcome anyway. The notice waits for the outcome: a
// command no runner claims reads expired at its expiry (commandAt, 2 min by default), one claimed and
// never answered is failed by the sweep (5 min by default). A shorter wait ended on "still pending"
// while the row went on to say "expired" (issue 19).
const ANSWER_TIMEOUT_MS = 600_000;

/**
 * What the dialogs say of the runners that are not online, before anything is queued: "the runner on
 * H is stopped (said goodbye 5 min ago): 2 agents (a, b) will not start until a runner runs there
 * again; their commands expire unanswered". One line per such host.
 */
export function awayWarnings(agents: AgentRow[], verb: CommandAction): string[] {
  const byHost = new Map<string, { away: string; names: string[] }>();
  for (const agent of agents) {
    const away = runnerAway(agent, formatDuration);
    if (away === null || agent.host === null) continue;
    const entry = byHost.get(agent.host) ?? { away, names: [] };
    entry.names.push(agent.agent_name);
    byHost.set(agent.host, entry);
  }
  return [...byHost].map(([host, { away, names }]) => {
    const which =
      names.length === 1 ? names[0] : `${names.length} agents (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''})`;
    return (
      `The runner on ${host} is ${away}: nothing will ${verb} ${which} until a runner runs there again; ` +
      `${names.length === 1 ? 'the command waits for it, then expires' : 'their commands wait for it, then expire'}.`
    );
  });
}

export class Actions {
  private readonly manager: ProcessManager;

  constructor(
    client: SupabaseClient,
    private readonly notices: Notices,
    private readonly refresh: () => void,
    private readonly operator: string,
  ) {
    this.manager = createProcessManager(client, { timeoutMs: ANSWER_TIMEOUT_MS, pollMs: 500, onQueued: () => this.refresh() });
  }

  async command(agent: AgentRow, action: CommandAction): Promise<void> {
    // warned at once, as the CLI exits 7 at once: its runner is not there to carry it out
    const away = awayWarnings([agent], action);
    if (
      away.length &&
      !(await confirmAction({
        title: `${action[0].toUpperCase()}${action.slice(1)} ${agent.agent_name}? Its runner is ${agent.runner_status}`,
        body: away,
        confirm: `Queue ${action} anyway`,
      }))
    ) {
      return;
    }
    const run = { start: this.manager.startAgent, stop: this.manager.stopAgent, restart: this.manager.restartAgent }[action];
    try {
      const outcome = await run(agent.agent_name);
      this.notices.show(`${action} ${agent.agent_name}: ${outcome.result ?? 'done'}.`);
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
    }
  }

  async forceStop(agent: AgentRow): Promise<void> {
    const sure = await confirmAction({
      title: `Force ${agent.agent_name} to stopped?`,
      body: [
        'This only changes the status in the database. It does not touch the process: if the agent is still running, it ' +
          'keeps running and its next heartbeat marks it running again.',
        'Use it to clear a status that no longer matches reality. To really stop the process, use Stop.',
      ],
      confirm: 'Force stopped in the database',
      danger: true,
    });
    if (!sure) return;
    try {
      await this.manager.forceStopAgent(agent.agent_name, `forced to stopped from the dashboard by ${this.operator}`);
      this.notices.show(`${agent.agent_name} is now stopped in the database (no process was touched).`);
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
    }
    this.refresh();
  }

  /** Start for every managed agent (`managed`, as last read), or for those of one host. */
  /** `managed`: how many agents a runner manages (on the host); `away`: those of them whose runner is away. */
  async startAll(managed: number, away: AgentRow[], host?: string): Promise<void> {
    const sure = await confirmAction({
      title: host ? `Start all agents on ${host}?` : 'Start all agents?',
      body: [
        `This sends start to every agent ${host ? `the runner on ${host}` : 'a runner'} manages (${managed} now). ` +
          `An agent that is already running stays as it is; its row shows the runner's answer.`,
        ...awayWarnings(away, 'start'),
      ],
      confirm: host ? `Start all on ${host}` : 'Start all',
    });
    if (!sure) return;
    try {
      const outcomes = await this.manager.startAllAgents({ host });
      this.notices.show(
        `start all${host ? ` on ${host}` : ''}: ${outcomes.length} agent${outcomes.length === 1 ? '' : 's'} started or already running.`,
      );
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
    }
  }
}
