// What the operator's buttons do. Start, Stop and Restart queue a command for the agent's runner;
// Force stop only rewrites the status in the database; Start all queues start for every managed agent.
// After each one the feed polls at once, so the row shows the command in flight right away.
import type { SupabaseClient } from '@supabase/supabase-js';
import type { CommandAction } from '../../shared/status.ts';
import { forceStopped, sendCommand, startAll, type AgentRow } from './api.ts';
import { confirmAction } from './dialog.ts';
import type { Notices } from './notices.ts';

export class Actions {
  constructor(
    private readonly client: SupabaseClient,
    private readonly notices: Notices,
    private readonly refresh: () => void,
    private readonly operator: string,
  ) {}

  async command(agent: AgentRow, action: CommandAction): Promise<void> {
    try {
      await sendCommand(this.client, agent.agent_name, action);
      this.notices.show(`${action} sent to ${agent.agent_name}; the runner on ${agent.host ?? 'its host'} picks it up within seconds.`);
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
    }
    this.refresh();
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
      await forceStopped(this.client, agent.agent_name, `forced to stopped from the dashboard by ${this.operator}`);
      this.notices.show(`${agent.agent_name} is now stopped in the database (no process was touched).`);
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
    }
    this.refresh();
  }

  async startAll(managed: number): Promise<void> {
    const sure = await confirmAction({
      title: 'Start all agents?',
      body: [
        `This sends start to every agent a runner manages (${managed} now). An agent that is already running stays as ` +
          `it is; its row shows the runner's answer.`,
      ],
      confirm: 'Start all',
    });
    if (!sure) return;
    try {
      const sent = await startAll(this.client);
      this.notices.show(`start sent to ${sent} agent${sent === 1 ? '' : 's'}.`);
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
    }
    this.refresh();
  }
}
