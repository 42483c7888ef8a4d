// POST /functions/v1/heartbeat: an agent (or its runner) says it is alive, optionally with its status,
// health and current activity. Concurrent heartbeats share one database statement (_shared/database.ts).
import { HEARTBEAT_MAX_BYTES, HeartbeatRequest, type HeartbeatResponse } from '../../../shared/api/heartbeat.ts';
import { bearer, createApp, refuseOtherMethods, validBody } from '../_shared/app.ts';
import { applyHeartbeat } from '../_shared/database.ts';

const app = createApp('heartbeat', { maxBytes: HEARTBEAT_MAX_BYTES });

app.post('/', async (c) => {
  const heartbeat = await validBody(c, HeartbeatRequest);
  const agent = await applyHeartbeat(bearer(c), heartbeat);
  return c.json({ agent } satisfies HeartbeatResponse);
});
refuseOtherMethods(app, 'heartbeat');

Deno.serve(app.fetch);
