// An agent's heartbeat and activity timeouts on its page, as the operator sets them
// (set_agent_timeouts, recorded in the history with who did it). Empty means "as derived": from the
// interval the agent's SDK declared, its runner's config, or the project's default.
import type { SupabaseClient } from '@supabase/supabase-js';
import { setTimeouts, type AgentRow } from './api.ts';
import { h, setText } from './dom.ts';

/** What the form shows and saves. */
export type TimedAgent = Pick<AgentRow, 'agent_name' | 'heartbeat_timeout_s' | 'activity_timeout_s' | 'heartbeat_timeout_source'>;

const SOURCE: Record<AgentRow['heartbeat_timeout_source'], string> = {
  operator: 'set by an operator',
  config: "from its runner's config",
  interval: 'from the heartbeat interval it declared',
  default: "the project's default",
};

export class TimeoutsForm {
  readonly el: HTMLFormElement;
  private readonly heartbeat: HTMLInputElement;
  private readonly activity: HTMLInputElement;
  private readonly state: HTMLSpanElement;
  private readonly source: HTMLSpanElement;
  private agent: TimedAgent | undefined;
  private shownFor = '';

  constructor(
    private readonly client: SupabaseClient,
    private readonly saved: () => void,
  ) {
    // min 0, not the smallest timeout: 0 is how an operator returns to the default (set_agent_timeouts
    // refuses 1 to 4 and 1 to 9 with a message that says the range)
    const number = { type: 'number', min: '0', step: '1', inputmode: 'numeric', on: { input: () => setText(this.state, '') } };
    this.heartbeat = h('input', { ...number, id: 'heartbeat-timeout', max: '86400' });
    this.activity = h('input', { ...number, id: 'activity-timeout', max: '604800' });
    this.state = h('span', { class: 'muted small', role: 'status' });
    this.source = h('span', { class: 'muted small' });
    this.el = h(
      'form',
      { class: 'timeouts', on: { submit: (event) => void this.save(event) } },
      h('label', { for: 'heartbeat-timeout' }, 'Heartbeat timeout (s)'),
      this.heartbeat,
      this.source,
      h('label', { for: 'activity-timeout' }, 'Activity timeout (s)'),
      this.activity,
      h('span', { class: 'muted small' }, 'stale after no heartbeat, warning after no activity; 0 returns to the default'),
      h('div', null, h('button', { type: 'submit', class: 'btn' }, 'Save timeouts'), ' ', this.state),
    );
  }

  /** Leaves the form acting on no agent, until show() gives it one. */
  forget(): void {
    this.agent = undefined;
    this.shownFor = '';
    this.heartbeat.value = '';
    this.activity.value = '';
    setText(this.state, '');
  }

  /** Shows the agent's timeouts; a value the operator is editing is left alone. */
  show(agent: TimedAgent): void {
    this.agent = agent;
    const key = `${agent.agent_name}|${agent.heartbeat_timeout_s}|${agent.activity_timeout_s}`;
    if (key === this.shownFor) return;
    this.shownFor = key;
    if (document.activeElement !== this.heartbeat) this.heartbeat.value = String(agent.heartbeat_timeout_s);
    if (document.activeElement !== this.activity)
      this.activity.value = agent.activity_timeout_s === null ? '' : String(agent.activity_timeout_s);
    setText(this.source, SOURCE[agent.heartbeat_timeout_source] ?? '');
  }

  private async save(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const agent = this.agent;
    if (!agent) return;
    const value = (input: HTMLInputElement, current: number | null) =>
      input.value === '' || Number(input.value) === current ? undefined : Number(input.value);
    const heartbeat = value(this.heartbeat, agent.heartbeat_timeout_s);
    const activity = value(this.activity, agent.activity_timeout_s);
    if (heartbeat === undefined && activity === undefined) {
      setText(this.state, 'nothing changed');
      return;
    }
    this.state.classList.remove('failed');
    setText(this.state, 'saving…');
    try {
      await setTimeouts(this.client, agent.agent_name, { heartbeat, activity });
      setText(this.state, 'saved; the history records it');
      this.shownFor = '';
      this.saved();
    } catch (error) {
      this.state.classList.add('failed');
      setText(this.state, (error as Error).message);
    }
  }
}
