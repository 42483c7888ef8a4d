// Field schemas shared by the requests: the same limits the database enforces (shared/status.ts),
// checked first so a client gets a message naming the field instead of a constraint name.
import { z } from 'zod';
import { LIMITS, SETTABLE_STATUSES } from '../status.ts';

// deno-lint-ignore no-control-regex -- matching control characters is the point
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

// Half of a UTF-16 surrogate pair without its other half: valid in a JavaScript or Python string,
// but it has no UTF-8 form, so Postgres refuses it (in jsonb, `unsupported Unicode escape sequence`).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Why a text cannot be stored, or undefined when it can. NUL and lone surrogates are refused per
 * field before anything is batched: inside the one jsonb value a batch is sent as, a single
 * `\u0000` made Postgres refuse every heartbeat of the batch (226 of 800 in one run).
 */
export function unstorable(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character (\\u0000), which the database cannot store';
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate (half of a pair), which is not valid Unicode';
  return undefined;
}

/** The text with NUL and lone surrogates replaced by U+FFFD: what the SDKs send, so a character never costs a report. */
export function storable(text: string): string {
  return text.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATES, '\ufffd');
}

export function storableText(schema: z.ZodString, field: string) {
  return schema.check((ctx) => {
    const problem = unstorable(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', input: ctx.value, message: `${field} ${problem}; remove it or replace it with U+FFFD` });
  });
}

/**
 * Why a report's details object is refused, or undefined: deeper than LIMITS.detailsDepth, more keys
 * and array items than LIMITS.detailsEntries, or a key or text that cannot be stored. A body nested
 * 16,000 levels deep is 32 kB, under the size limit, and overflowed Postgres's stack (answered as an
 * outage); this walk stops at the first level past the limit.
 */
export function detailsProblem(details: unknown): string | undefined {
  let entries = 0;
  const visit = (node: unknown, depth: number): string | undefined => {
    if (typeof node === 'string') return unstorable(node) && `has a text that ${unstorable(node)}`;
    if (node === null || typeof node !== 'object') return undefined;
    if (depth > LIMITS.detailsDepth) return `nests deeper than ${LIMITS.detailsDepth} levels, the limit`;
    for (const [key, child] of Object.entries(node)) {
      if (++entries > LIMITS.detailsEntries) return `has more than ${LIMITS.detailsEntries} keys and array items, the limit`;
      if (unstorable(key)) return `has a key that ${unstorable(key)}`;
      const problem = visit(child, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  };
  return visit(details, 1);
}

export const agentName = z
  .string({ error: (issue) => (issue.input === undefined ? 'agent_name is required' : 'agent_name must be a string') })
  .min(1, 'agent_name is required')
  .max(LIMITS.agentName, `agent_name is longer than ${LIMITS.agentName} characters`)
  .refine((value) => value === value.trim(), 'agent_name has leading or trailing spaces; names must match exactly')
  .refine((value) => !CONTROL_CHARACTERS.test(value), 'agent_name contains control characters')
  .refine((value) => !LONE_SURROGATE.test(value), 'agent_name contains a lone UTF-16 surrogate (half of a pair)')
  .describe('The agent, exactly as in agent_status.agent_name.');

export const health = z
  .int(`health must be a whole number between ${LIMITS.health.min} and ${LIMITS.health.max}`)
  .min(LIMITS.health.min, `health must be between ${LIMITS.health.min} and ${LIMITS.health.max}`)
  .max(LIMITS.health.max, `health must be between ${LIMITS.health.min} and ${LIMITS.health.max}`)
  .describe('0 (dead) to 100 (perfect).');

export const lastActivity = storableText(
  z.string().max(LIMITS.activity, `last_activity is longer than ${LIMITS.activity} characters`),
  'last_activity',
).describe('What the agent is doing now, e.g. "Fetching tweets".');

export const message = storableText(
  z.string().max(LIMITS.message, `message is longer than ${LIMITS.message} characters; put long output in your own logs`),
  'message',
);

export const details = z
  .record(z.string(), z.unknown())
  .check((ctx) => {
    const problem = detailsProblem(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', input: ctx.value, message: `details ${problem}` });
  })
  .describe(
    `A small JSON object kept with the event (at most 8 kB, ${LIMITS.detailsDepth} levels deep, ${LIMITS.detailsEntries} keys and items).`,
  );

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
