// What the functions answer about an agent after applying a heartbeat or report: the agent's row as
// the database left it, in the row's own column names (a part of shared/rows.ts AGENT_LIVE_COLUMNS).
// Built once, in SQL, by agent_private.agent_state_json (supabase/schemas/40_state_machine.sql);
// tests/db/definitions.test.ts checks that it answers exactly this shape.
import { z } from 'zod';
import type { AgentLiveColumn } from '../rows.ts';
import { AGENT_STATUSES } from '../status.ts';
import { agentName, timestamp } from './fields.ts';

/** An operator's stop or restart of an agent no runner manages, carried by the heartbeat and report answers. */
export const DesiredAction = z
  .strictObject({
    action: z.enum(['stop', 'restart']),
    command_id: z.int().describe('The command this wish belongs to; the agent acts on each id once.'),
  })
  .meta({ id: 'DesiredAction' });
export type DesiredAction = z.infer<typeof DesiredAction>;

export const AgentState = z
  .strictObject({
    agent_name: agentName,
    status: z.enum(AGENT_STATUSES),
    health: z.int(),
    last_heartbeat: timestamp.nullable(),
    last_error: z.string().nullable(),
    last_activity: z.string().nullable(),
    status_reason: z.string().nullable().describe('Why the status is what it is (a warning, an error, a forced status).'),
    started_at: timestamp.nullable(),
    stopped_at: timestamp.nullable(),
    stale_at: timestamp.nullable().describe('When the agent turns stale unless it speaks again; null when not expected to.'),
    updated_at: timestamp,
    health_reported_at: timestamp
      .nullable()
      .describe(
        'When health was last reported (by the agent, its runner or an operator); null while `health` is only the default (none said since the process started).',
      ),
  } satisfies Partial<Record<AgentLiveColumn, z.ZodType>>)
  .extend({
    // not a column: an operator's wish, delivered with the answer (agent_state_json)
    desired: DesiredAction.nullable().describe(
      "An operator's stop or restart, for an agent no runner manages: act on it (the SDKs do), then report stopped (or, for a restart, started). Null otherwise.",
    ),
  })
  .meta({ id: 'AgentState' });
export type AgentState = z.infer<typeof AgentState>;
