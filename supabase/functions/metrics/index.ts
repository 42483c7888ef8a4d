// GET /functions/v1/metrics: every agent's status, health, heartbeat age, restarts and 24 h
// availability, each runner's liveness and the alert outbox, in Prometheus' text format. Prometheus
// sends the scrape token (asm_..., `agent-status token create metrics`) as a bearer token; it reads
// and can do nothing else.
import { formatMetrics, METRICS_CONTENT_TYPE } from '../../../shared/metrics.ts';
import { bearer, createApp, refuseOtherMethods } from '../_shared/app.ts';
import { readMetrics } from '../_shared/database.ts';

const app = createApp('metrics', { maxBytes: 1024, method: 'GET' });

app.get('/', async (c) => {
  const text = formatMetrics(await readMetrics(bearer(c)));
  return c.body(text, 200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
});
refuseOtherMethods(app, 'metrics', 'GET');

Deno.serve(app.fetch);
