// POST /functions/v1/command: an operator asks the runners to start, stop or restart agents.
import { z } from 'zod';
import { COMMAND_ACTIONS, COMMAND_STATUSES } from '../status.ts';
import { agentName, storableText, timestamp } from './fields.ts';

export const CommandRequest = z
  .strictObject({
    action: z.enum(COMMAND_ACTIONS),
    agent_name: agentName.optional().describe('One agent.'),
    host: storableText(z.string().min(1).max(255), 'host').optional().describe('Every agent the runner on this host manages.'),
    all: z.literal(true).optional().describe('Every agent any runner manages.'),
  })
  .refine((request) => [request.agent_name, request.host, request.all].filter((target) => target !== undefined).length === 1, {
    message: 'name exactly one target: agent_name, host, or "all": true',
    path: ['agent_name'],
  })
  .meta({ id: 'CommandRequest' });
export type CommandRequest = z.input<typeof CommandRequest>;

export const Command = z
  .strictObject({
    id: z.int(),
    agent_id: z.int(),
    agent_name: agentName,
    action: z.enum(COMMAND_ACTIONS),
    status: z.enum(COMMAND_STATUSES),
    requested_by: z.string(),
    created_at: timestamp,
    expires_at: timestamp.describe('A command no runner claimed by then expires instead of running late.'),
  })
  .meta({ id: 'Command' });
export type Command = z.infer<typeof Command>;

export const CommandResponse = z
  .strictObject({
    command_ids: z.array(z.int()),
    commands: z.array(Command),
  })
  .meta({ id: 'CommandResponse' });
export type CommandResponse = z.infer<typeof CommandResponse>;

export const COMMAND_MAX_BYTES = 4 * 1024;
