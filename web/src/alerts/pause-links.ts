// "Pause alerts" beside an agent: links to the Alerts page with its pause form filled in for the agent
// or for its host (#/alerts?pause=agent:<name> or host:<host>).
import { h, setText } from '../dom.ts';
import { untilText, type PausedAlerts } from './pauses.ts';

/** The Alerts page's address with the pause form prefilled. */
export function pauseHref(scope: 'agent' | 'host', target: string): string {
  return `#/alerts?pause=${scope}:${encodeURIComponent(target)}`;
}

/** What a #/alerts?pause=... address asks to prefill, if anything. */
export function pauseRequest(hash: string): { scope: 'agent' | 'host'; target: string } | undefined {
  const match = /[?&]pause=(agent|host):([^&]+)/.exec(hash);
  return match ? { scope: match[1] as 'agent' | 'host', target: decodeURIComponent(match[2]) } : undefined;
}

export class PauseLinks {
  private readonly agent = h('a', { class: 'btn' }, 'Pause alerts…');
  private readonly host = h('a', { class: 'btn', hidden: true });
  /** "Alerts paused until …" while this agent's (or its host's) alerts are paused */
  private readonly state = h('span', { class: 'paused-mark', hidden: true });
  readonly el = h('span', { class: 'pause-links' }, this.state, this.agent, this.host);
  private shown: { agentName: string; host: string | null } | undefined;

  constructor(private readonly paused?: PausedAlerts) {
    paused?.onChange(() => this.paintPaused());
  }

  show(agentName: string, host: string | null): void {
    this.shown = { agentName, host };
    this.paintPaused();
    this.agent.href = pauseHref('agent', agentName);
    this.host.hidden = !host;
    if (host) {
      this.host.href = pauseHref('host', host);
      this.host.textContent = `Pause alerts for ${host}…`;
    }
  }

  private paintPaused() {
    const pause = this.shown && this.paused?.of(this.shown.agentName, this.shown.host);
    this.state.hidden = !pause;
    if (pause) setText(this.state, `Alerts paused${pause.host ? ` for ${pause.host}` : ''} ${untilText(pause)}`);
  }
}
