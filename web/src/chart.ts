// Health over time as an inline SVG step line: health holds its value until the next event changes
// it, so steps tell the truth where a sloped line would invent values between samples.
import type { EventRow } from './api.ts';
import { formatTimestamp } from './time.ts';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 160;
const PAD = { left: 34, right: 8, top: 8, bottom: 22 };

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A chart of the health values in `events` (any order) up to `nowMs` on the database's clock. */
export function healthChart(events: EventRow[], nowMs: number): SVGSVGElement | null {
  const points = events
    .filter((event) => event.health !== null)
    .map((event) => ({ t: Date.parse(event.at), health: event.health! }))
    .sort((a, b) => a.t - b.t);
  if (!points.length) return null;
  const t0 = points[0].t;
  const t1 = Math.max(nowMs, points[points.length - 1].t + 1);
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (health: number) => PAD.top + (1 - health / 100) * (HEIGHT - PAD.top - PAD.bottom);

  let path = `M${x(points[0].t).toFixed(1)},${y(points[0].health).toFixed(1)}`;
  for (const point of points.slice(1)) path += `H${x(point.t).toFixed(1)}V${y(point.health).toFixed(1)}`;
  path += `H${x(t1).toFixed(1)}`;

  const last = points[points.length - 1].health;
  const chart = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'health-chart',
    role: 'img',
    'aria-label':
      `Health from ${formatTimestamp(new Date(t0).toISOString())} until now: ${points.length} changes, ` +
      `lowest ${Math.min(...points.map((p) => p.health))}, now ${last}`,
  });
  for (const level of [0, 50, 100]) {
    chart.append(
      svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(level), y2: y(level), class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y(level) + 4, 'text-anchor': 'end', class: 'axis' }, String(level)),
    );
  }
  chart.append(
    svg('text', { x: PAD.left, y: HEIGHT - 6, class: 'axis' }, formatTimestamp(new Date(t0).toISOString())),
    svg('text', { x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end', class: 'axis' }, 'now'),
    svg('path', { d: path, class: 'line' }),
  );
  for (const point of points) {
    const dot = svg('circle', { cx: x(point.t), cy: y(point.health), r: 2.5, class: 'dot' });
    dot.append(svg('title', {}, `${point.health} at ${formatTimestamp(new Date(point.t).toISOString())}`));
    chart.append(dot);
  }
  return chart;
}
