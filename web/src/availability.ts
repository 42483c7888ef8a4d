// Availability on an agent's page: the share of time up (running or warning) over 24 hours, 7 days
// and 30 days, and the last 24 hours as a strip of coloured segments, one per stretch in one status.
// All of it computed in SQL (agent_availability) from the history; this only draws it.
import type { Availability } from './api.ts';
import { h } from './dom.ts';
import { formatDuration, formatTimestamp } from './time.ts';

const WINDOWS = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
] as const;

function percent(value: number | null): string {
  return value === null ? 'no data' : `${value.toFixed(value === 100 || value === 0 ? 0 : 2)} %`;
}

/** The three percentages and the 24-hour strip. */
export function availabilityView(availability: Availability): HTMLElement {
  const until = Date.parse(availability.until);
  const from = until - 86_400_000;
  const strip = h('div', {
    class: 'strip',
    role: 'img',
    'aria-label': `Status over the last 24 hours: ${availability.strip
      .map((s) => `${s.status} ${formatDuration((Date.parse(s.to) - Date.parse(s.from)) / 1000)}`)
      .join(', ')}`,
  });
  // Time before the agent existed (or before the history kept) is left blank, not painted a status.
  let cursor = from;
  for (const segment of availability.strip) {
    const start = Date.parse(segment.from);
    const end = Date.parse(segment.to);
    if (start > cursor) strip.append(h('span', { class: 'seg seg-unknown', style: `flex-grow: ${start - cursor}`, title: 'no data' }));
    strip.append(
      h('span', {
        class: `seg seg-${segment.status}`,
        'data-status': segment.status,
        style: `flex-grow: ${end - start}`,
        title: `${segment.status} ${formatTimestamp(segment.from)} – ${formatTimestamp(segment.to)} (${formatDuration((end - start) / 1000)})`,
      }),
    );
    cursor = end;
  }
  const figures = h(
    'dl',
    { class: 'availability' },
    ...WINDOWS.flatMap(([key, label]) => {
      const window = availability.windows[key];
      const detail = Object.entries(window.seconds)
        .map(([status, seconds]) => `${status} ${formatDuration(seconds as number)}`)
        .join(', ');
      return [h('dt', null, label), h('dd', { 'data-window': key, title: detail || 'no data' }, percent(window.up_percent))];
    }),
  );
  return h(
    'div',
    null,
    figures,
    strip,
    h('div', { class: 'strip-axis muted' }, h('span', null, '24 h ago'), h('span', null, 'now')),
    h(
      'p',
      { class: 'muted small' },
      'Up means running or warning; time before the agent existed or before the history kept is not counted.',
    ),
  );
}
