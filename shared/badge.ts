// A status badge as SVG, in the flat style READMEs already show (shields.io): the agent's or host's
// name on grey, its status and 24 h availability on the status's colour. The colours are the
// dashboard's status bars (web/src/styles.css), so a badge and the dashboard agree at a glance.
import type { AgentStatus, RunnerStatus } from './status.ts';

/** public.agent_badge(p_token, ...) */
export interface BadgeFacts {
  label: string;
  /** an agent's status, or a host's: its runner's when not online, else its worst agent's */
  status: AgentStatus | Exclude<RunnerStatus, 'online'> | 'empty';
  /** 0..100 over the last 24 h; null when nothing is known of that time */
  up_percent_24h: number | null;
  /** for a host: how many of its agents run (running or warning) of how many */
  agents?: { up: number; total: number };
}

export const BADGE_COLORS: Record<BadgeFacts['status'], string> = {
  running: '#2da44e',
  warning: '#bf8700',
  error: '#cf222e',
  stopped: '#8c959f',
  stale: '#8250df',
  silent: '#8250df',
  offline: '#cf222e',
  empty: '#8c959f',
};

// Verdana 11 px, the shields.io font: advance widths in pixels, close enough that text never
// overflows its box (wide letters are the ones that would).
function textWidth(text: string): number {
  let width = 0;
  for (const char of text) {
    if ("iljtfr.,:;|!'()[] ".includes(char)) width += 3.9;
    else if ('mwMW@%'.includes(char)) width += 10.5;
    else if (/[A-Z0-9#&]/.test(char)) width += 7.5;
    else width += 6.6;
  }
  return Math.ceil(width);
}

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** The message half: status, the host's share of agents up, 24 h availability. */
export function badgeMessage(facts: BadgeFacts): string {
  const parts: string[] = [facts.status];
  if (facts.agents) parts.push(`${facts.agents.up}/${facts.agents.total} up`);
  if (facts.up_percent_24h !== null) parts.push(`${Number(facts.up_percent_24h.toFixed(2))}% 24h`);
  return parts.join(' · ');
}

/** The SVG document. Names longer than 60 characters are cut, so a badge stays a badge. */
export function renderBadge(facts: BadgeFacts): string {
  return drawBadge(facts.label, badgeMessage(facts), BADGE_COLORS[facts.status]);
}

/** A badge that says why there is no status to show (a revoked key, an unknown name), so the image in a README says it. */
export function renderProblemBadge(label: string, problem: string): string {
  return drawBadge(label, problem, '#6e7781');
}

function drawBadge(fullLabel: string, message: string, color: string): string {
  const label = fullLabel.length > 60 ? `${fullLabel.slice(0, 59)}…` : fullLabel;
  const left = textWidth(label) + 12;
  const right = textWidth(message) + 12;
  const width = left + right;
  const title = escapeXml(`${label}: ${message}`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="${title}">
<title>${title}</title>
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="r"><rect width="${width}" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#r)"><rect width="${left}" height="20" fill="#555"/><rect x="${left}" width="${right}" height="20" fill="${color}"/><rect width="${width}" height="20" fill="url(#s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">
<text x="${left / 2}" y="15" fill="#010101" fill-opacity=".3">${escapeXml(label)}</text><text x="${left / 2}" y="14">${escapeXml(label)}</text>
<text x="${left + right / 2}" y="15" fill="#010101" fill-opacity=".3">${escapeXml(message)}</text><text x="${left + right / 2}" y="14">${escapeXml(message)}</text>
</g>
</svg>
`;
}
