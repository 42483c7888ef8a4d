// POST /functions/v1/heartbeat: an agent (or its runner) says it is alive, optionally with its status,
// health and current activity. Concurrent heartbeats share one database statement (_shared/database.ts).
import { HEARTBEAT_MAX_BYTES, HeartbeatRequest } from '../../../shared/api/heartbeat.ts';
import { bearer, createApp, refuseOtherMethods, validBody } from '../_shared/app.ts';
import { applyHeartbeat } from '../_shared/database.ts';

const app = createApp('heartbeat', { maxBytes: HEARTBEAT_MAX_BYTES });

app.post('/', async (c) => {
  const heartbeat = await validBody(c, HeartbeatRequest);
  // HeartbeatResponse, around the agent's state as the database wrote it
  const agent = await applyHeartbeat(bearer(c), heartbeat);
  return c.body(`{"agent":${agent}}`, 200, { 'content-type': 'application/json' });
});
refuseOtherMethods(app, 'heartbeat');

Deno.serve(app.fetch);
