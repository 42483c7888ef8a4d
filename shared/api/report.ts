// POST /functions/v1/report: what an agent (or its runner) says about it. One report, or several in
// order (an SDK flushing what it buffered while the service was down), applied all or nothing.
import { z } from 'zod';
import { AGENT_REPORT_EVENTS, RUNNER_REPORT_EVENTS } from '../status.ts';
import { AgentState } from './agent.ts';
import { agentName, details, health, heartbeatIntervalS, lastActivity, madeAt, message, pid } from './fields.ts';

export const REPORT_EVENTS = [...AGENT_REPORT_EVENTS, ...RUNNER_REPORT_EVENTS] as const;

export const Report = z
  .strictObject({
    agent_name: agentName,
    event: z.enum(REPORT_EVENTS).describe('adopted, exited, crashed and terminated are for runner tokens only.'),
    message: message.nullish().describe('Required for warning and error: what is wrong.'),
    health: health.nullish(),
    last_activity: lastActivity.nullish().describe('Required for activity.'),
    pid: pid.nullish(),
    exit_code: z.int().min(-2147483648).max(2147483647).nullish(),
    exit_signal: z
      .string()
      .regex(/^SIG[A-Z0-9]{1,12}$/, 'exit_signal must be a signal name like SIGTERM')
      .nullish(),
    details: details.nullish(),
    heartbeat_interval_s: heartbeatIntervalS.nullish(),
    at: madeAt.nullish(),
    report_id: z.uuid().nullish().describe('A random id for this report, the same on every retry: a report sent again is applied once.'),
  })
  .check((ctx) => {
    const report = ctx.value;
    if ((report.event === 'warning' || report.event === 'error') && !report.message?.trim()) {
      ctx.issues.push({
        code: 'custom',
        input: report,
        path: ['message'],
        message: `a ${report.event} report needs a message saying what is wrong`,
      });
    }
    if (report.event === 'activity' && report.last_activity == null) {
      ctx.issues.push({
        code: 'custom',
        input: report,
        path: ['last_activity'],
        message: 'an activity report needs last_activity: what the agent is doing now',
      });
    }
  })
  .meta({ id: 'Report' });
export type Report = z.input<typeof Report>;

/** At most this many reports per request. */
export const MAX_REPORTS = 20;

export const ReportBatch = z
  .strictObject({ reports: z.array(Report).min(1, 'reports is empty').max(MAX_REPORTS, `at most ${MAX_REPORTS} reports per request`) })
  .meta({ id: 'ReportBatch' });
export type ReportBatch = z.input<typeof ReportBatch>;

export const ReportRequest = z.union([Report, ReportBatch]).meta({ id: 'ReportRequest' });
export type ReportRequest = z.input<typeof ReportRequest>;

/** Parses a report body as one report or a batch, by its shape, so errors name the fields of that shape. */
export function parseReportRequest(body: unknown) {
  const batch = typeof body === 'object' && body !== null && 'reports' in body;
  const result = batch ? ReportBatch.safeParse(body) : Report.safeParse(body);
  return result.success
    ? { success: true as const, reports: 'reports' in result.data ? result.data.reports : [result.data], batch }
    : { success: false as const, error: result.error };
}

/** One report answers with the agent's state; a batch with the state after each report, in order. */
export const ReportResponse = z
  .union([z.strictObject({ agent: AgentState }), z.strictObject({ agents: z.array(AgentState) })])
  .meta({ id: 'ReportResponse' });
export type ReportResponse = z.infer<typeof ReportResponse>;

export const REPORT_MAX_BYTES = 64 * 1024;
