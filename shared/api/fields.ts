// Field schemas shared by the requests: the same limits the database enforces (shared/status.ts),
// checked first so a client gets a message naming the field instead of a constraint name.
import { z } from 'zod';
import { LIMITS, SETTABLE_STATUSES } from '../status.ts';

// deno-lint-ignore no-control-regex -- matching control characters is the point
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

export const agentName = z
  .string({ error: (issue) => (issue.input === undefined ? 'agent_name is required' : 'agent_name must be a string') })
  .min(1, 'agent_name is required')
  .max(LIMITS.agentName, `agent_name is longer than ${LIMITS.agentName} characters`)
  .refine((value) => value === value.trim(), 'agent_name has leading or trailing spaces; names must match exactly')
  .refine((value) => !CONTROL_CHARACTERS.test(value), 'agent_name contains control characters')
  .describe('The agent, exactly as in agent_status.agent_name.');

export const health = z
  .int(`health must be a whole number between ${LIMITS.health.min} and ${LIMITS.health.max}`)
  .min(LIMITS.health.min, `health must be between ${LIMITS.health.min} and ${LIMITS.health.max}`)
  .max(LIMITS.health.max, `health must be between ${LIMITS.health.min} and ${LIMITS.health.max}`)
  .describe('0 (dead) to 100 (perfect).');

export const lastActivity = z
  .string()
  .max(LIMITS.activity, `last_activity is longer than ${LIMITS.activity} characters`)
  .describe('What the agent is doing now, e.g. "Fetching tweets".');

export const message = z
  .string()
  .max(LIMITS.message, `message is longer than ${LIMITS.message} characters; put long output in your own logs`);

export const pid = z
  .int()
  .min(1)
  .max(2 ** 31 - 1)
  .describe('Process id of the agent on its host.');

/** Statuses an agent may claim in a heartbeat: stopping is a report (event "stopped"). */
export const liveStatus = z.enum(SETTABLE_STATUSES.filter((s) => s !== 'stopped') as ['running', 'warning', 'error']);

export const timestamp = z.iso.datetime({ offset: true });

/** When a report was made, as the agent saw it: the database records it (never in the future, never before the previous event). */
export const madeAt = timestamp.describe(
  'When the agent made this report (ISO 8601). Sent for reports buffered through an outage; the database clamps it to [previous event, now].',
);

/** How often the agent heartbeats; without an explicit timeout it goes stale after 2.5 of these. */
export const heartbeatIntervalS = z
  .int('heartbeat_interval_s must be a whole number of seconds')
  .min(1, 'heartbeat_interval_s must be between 1 and 86400')
  .max(86_400, 'heartbeat_interval_s must be between 1 and 86400')
  .describe("Seconds between this agent's heartbeats. Its heartbeat timeout is 2.5 of these unless one is set.");
