// POST /functions/v1/heartbeat: proof of life, optionally carrying status, health and activity so a
// busy agent needs one request, not three.
import { z } from 'zod';
import { AgentState } from './agent.ts';
import { agentName, health, heartbeatIntervalS, lastActivity, liveStatus, madeAt, pid } from './fields.ts';

export const HeartbeatRequest = z
  .strictObject({
    agent_name: agentName,
    status: liveStatus.nullish().describe('running, warning or error; absent keeps the current status.'),
    health: health.nullish(),
    last_activity: lastActivity.nullish(),
    pid: pid.nullish(),
    heartbeat_interval_s: heartbeatIntervalS.nullish(),
    at: madeAt.nullish(),
  })
  .meta({ id: 'HeartbeatRequest' });
export type HeartbeatRequest = z.input<typeof HeartbeatRequest>;

export const HeartbeatResponse = z.strictObject({ agent: AgentState }).meta({ id: 'HeartbeatResponse' });
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

/** Largest heartbeat body accepted, in bytes: a 100-character name and 1000-character activity fit twice over in UTF-8. */
export const HEARTBEAT_MAX_BYTES = 8 * 1024;
