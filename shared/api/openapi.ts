// The OpenAPI 3.1 description of the agent-status functions, generated from the zod schemas of this
// folder so the two cannot drift. docs/api/openapi.json is its output; regenerate it with
//   npx tsx shared/api/openapi.ts
// (tests/functions/openapi.test.ts fails when the committed file is out of date).
import { z } from 'zod';
import { ERROR_STATUS, ErrorBody } from './errors.ts';
import { HEARTBEAT_MAX_BYTES, HeartbeatRequest, HeartbeatResponse } from './heartbeat.ts';
import { Report, ReportBatch, REPORT_MAX_BYTES, ReportRequest, ReportResponse } from './report.ts';
import { AgentState } from './agent.ts';
import { Command, COMMAND_MAX_BYTES, CommandRequest, CommandResponse } from './command.ts';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

function components() {
  const registry = z.registry<{ id: string }>();
  for (const schema of [
    ErrorBody,
    AgentState,
    HeartbeatRequest,
    HeartbeatResponse,
    Report,
    ReportBatch,
    ReportRequest,
    ReportResponse,
    Command,
    CommandRequest,
    CommandResponse,
  ]) {
    registry.add(schema, { id: (z.globalRegistry.get(schema) as { id: string }).id });
  }
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input' });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _schema, $id: _id, ...rest } = schema as Record<string, unknown>;
      return [id, rest];
    }),
  );
}

function errors(codes: (keyof typeof ERROR_STATUS)[]) {
  const byStatus = new Map<number, string[]>();
  for (const code of codes) byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      String(status),
      { description: list.join(', '), content: { 'application/json': { schema: ref('Error') } } },
    ]),
  );
}

function operation(options: {
  summary: string;
  description: string;
  security: string[];
  request: string;
  maxBytes: number;
  ok: number;
  response: string;
  errors: (keyof typeof ERROR_STATUS)[];
}) {
  return {
    post: {
      summary: options.summary,
      description: `${options.description}\n\nBodies over ${options.maxBytes} bytes are refused with 413 before they are read.`,
      security: options.security.map((name) => ({ [name]: [] })),
      requestBody: { required: true, content: { 'application/json': { schema: ref(options.request) } } },
      responses: {
        [String(options.ok)]: { description: 'Applied', content: { 'application/json': { schema: ref(options.response) } } },
        ...errors(options.errors),
      },
    },
    options: { summary: 'CORS preflight', security: [], responses: { '204': { description: 'Allowed from any origin' } } },
  };
}

export function openApiDocument() {
  const common = [
    'invalid_json',
    'invalid_request',
    'unauthorized',
    'payload_too_large',
    'method_not_allowed',
    'internal',
    'unavailable',
  ] as const;
  return {
    openapi: '3.1.0',
    info: {
      title: 'agent-status functions',
      version: '1.0.0',
      description: 'What agents, runners and operators send to agent-status. Explained in docs/api.md.',
    },
    servers: [
      { url: 'https://{project_ref}.supabase.co/functions/v1', variables: { project_ref: { default: 'your-project-ref' } } },
      { url: 'http://127.0.0.1:54321/functions/v1', description: 'npm start (local stack)' },
    ],
    paths: {
      '/heartbeat': operation({
        summary: 'Proof of life, optionally with status, health and activity',
        description:
          "Sent by an agent (agent token) or its runner (runner token). Unknown, revoked and other agents' tokens get the same 401.",
        security: ['agentToken'],
        request: 'HeartbeatRequest',
        maxBytes: HEARTBEAT_MAX_BYTES,
        ok: 200,
        response: 'HeartbeatResponse',
        errors: [...common],
      }),
      '/report': operation({
        summary: 'Started, stopped, status, warning, error, activity; one report or several in order',
        description: 'A batch ({"reports": [...]}) is applied all or nothing.',
        security: ['agentToken'],
        request: 'ReportRequest',
        maxBytes: REPORT_MAX_BYTES,
        ok: 200,
        response: 'ReportResponse',
        errors: [...common],
      }),
      '/command': operation({
        summary: "Start, stop or restart one agent, a host's agents, or all agents",
        description: 'For operators: a signed-in user on the operator list (their session JWT) or an operator token (aso_...).',
        security: ['operatorSession', 'operatorToken'],
        request: 'CommandRequest',
        maxBytes: COMMAND_MAX_BYTES,
        ok: 202,
        response: 'CommandResponse',
        errors: [...common, 'forbidden', 'not_found', 'conflict'],
      }),
    },
    components: {
      securitySchemes: {
        agentToken: { type: 'http', scheme: 'bearer', description: "An agent token (asa_...) or its host runner's token (asr_...)." },
        operatorToken: { type: 'http', scheme: 'bearer', description: 'An operator token (aso_...).' },
        operatorSession: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access token of a signed-in operator.' },
      },
      schemas: components(),
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const target = new URL('../../docs/api/openapi.json', import.meta.url);
  mkdirSync(new URL('.', target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(openApiDocument(), null, 2)}\n`);
  console.log(`wrote ${target.pathname}`);
}
