// What the operator's buttons do, all through the shared process manager (shared/process-manager.ts),
// the one way to act on agents from TypeScript. Start, Stop and Restart queue a command for the
// agent's runner and tell the runner's answer when it comes; Force stop only rewrites the status in
// the database; Start all queues start for every managed agent. Once a command is queued the feed
// polls at once, so the row shows it in flight right away.
import type { SupabaseClient } from '@supabase/supabase-js';
import { createProcessManager, type ProcessManager } from '../../shared/process-manager.ts';
import type { CommandAction } from '../../shared/status.ts';
import type { AgentRow } from './api.ts';
import { confirmAction } from './dialog.ts';
import type { Notices } from './notices.ts';

// The row shows a command in flight and its outcome anyway; the notice waits about as long as a
// command may stay pending before it expires.
const ANSWER_TIMEOUT_MS = 120_000;

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

  /** Start for every managed agent, or for those of one host. */
  async startAll(managed: number, host?: string): Promise<void> {
    const sure = await confirmAction({
      title: host ? `Start all agents on ${host}?` : 'Start all agents?',
      body: [
        `This sends start to every agent ${host ? `the runner on ${host}` : 'a runner'} manages (${managed} now). ` +
          `An agent that is already running stays as it is; its row shows the runner's answer.`,
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
