// CPU and memory of the last 24 hours on an agent's page: two small step charts from the samples the
// runner sent (one a minute at most), each on its own scale.
import type { ResourceSample } from './api.ts';
import { svg } from './chart.ts';
import { formatTimestamp } from './time.ts';
import { formatBytes, formatCpu } from './units.ts';

const WIDTH = 600;
const HEIGHT = 110;
const PAD = { left: 56, right: 8, top: 8, bottom: 20 };

function oneChart(
  samples: ResourceSample[],
  value: (s: ResourceSample) => number,
  label: (v: number) => string,
  name: string,
  className: string,
): SVGSVGElement {
  const t0 = Date.parse(samples[0].minute);
  const t1 = Math.max(Date.parse(samples[samples.length - 1].minute) + 60_000, t0 + 60_000);
  const max = Math.max(...samples.map(value), className === 'cpu' ? 1 : 1024 * 1024);
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / max) * (HEIGHT - PAD.top - PAD.bottom);
  let path = '';
  for (const sample of samples) {
    const t = Date.parse(sample.minute);
    path += `${path ? 'H' : 'M'}${x(t).toFixed(1)}${path ? 'V' : ','}${y(value(sample)).toFixed(1)}`;
  }
  path += `H${x(t1).toFixed(1)}`;
  const latest = value(samples[samples.length - 1]);
  const chart = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: `resource-chart ${className}`,
    role: 'img',
    'aria-label': `${name} since ${formatTimestamp(samples[0].minute)}: highest ${label(max)}, latest ${label(latest)}`,
  });
  for (const level of [0, max]) {
    chart.append(
      svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(level), y2: y(level), class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y(level) + 4, 'text-anchor': 'end', class: 'axis' }, label(level)),
    );
  }
  chart.append(
    svg('text', { x: PAD.left, y: HEIGHT - 5, class: 'axis' }, `${name} · ${formatTimestamp(samples[0].minute)}`),
    svg('text', { x: WIDTH - PAD.right, y: HEIGHT - 5, 'text-anchor': 'end', class: 'axis' }, 'now'),
    svg('path', { d: path, class: 'line' }),
  );
  return chart;
}

/** Both charts, or null when the runner has sent nothing for this agent in the last day. */
export function resourceCharts(samples: ResourceSample[]): SVGSVGElement[] | null {
  if (!samples.length) return null;
  return [
    oneChart(samples, (s) => s.cpu_percent, formatCpu, 'CPU', 'cpu'),
    oneChart(samples, (s) => s.memory_bytes, formatBytes, 'Memory', 'memory'),
  ];
}
