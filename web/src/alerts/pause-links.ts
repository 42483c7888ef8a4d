// "Pause alerts" beside an agent: links to the Alerts page with its pause form filled in for the agent
// or for its host (#/alerts?pause=agent:<name> or host:<host>).
import { h } from '../dom.ts';

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
  readonly el = h('span', { class: 'pause-links' }, this.agent, this.host);

  show(agentName: string, host: string | null): void {
    this.agent.href = pauseHref('agent', agentName);
    this.host.hidden = !host;
    if (host) {
      this.host.href = pauseHref('host', host);
      this.host.textContent = `Pause alerts for ${host}…`;
    }
  }
}
