// The alert dispatcher: claims due deliveries (public.alert_claim, FOR UPDATE SKIP LOCKED, so any
// number of dispatchers can run at once without sending a notice twice), sends each through its
// channel, and records every attempt (public.alert_complete), which also schedules the retry or marks
// the delivery dead. It keeps claiming until nothing is due or its time budget is spent.
import type { Notice } from '../../../shared/alerts.ts';
import { CHANNELS } from './channels/index.ts';
import { send, type SendResult } from './channels/base.ts';
import { database } from './database.ts';

export interface DispatchSummary {
  claimed: number;
  delivered: number;
  failed: number;
}

interface Claimed {
  id: number;
  attempt: number;
  notice: Notice;
  channel_name: string;
  channel_kind: string;
  endpoint: string;
  secret: string | null;
  settings: Record<string, unknown>;
}

async function deliver(row: Claimed): Promise<SendResult> {
  const channel = CHANNELS[row.channel_kind as keyof typeof CHANNELS];
  if (!channel) {
    return { ok: false, httpStatus: null, response: null, error: `no channel module for kind ${row.channel_kind}`, durationMs: 0 };
  }
  const config = { name: row.channel_name, kind: row.channel_kind, endpoint: row.endpoint, secret: row.secret, settings: row.settings };
  return send(channel, row.notice, config);
}

/**
 * Sends what is due, batch after batch, for at most budgetMs. `workers` loops claim and send side by
 * side, so a receiver that takes its full timeout holds up only its own batch, not every notice behind it.
 */
export async function dispatchDue(options: {
  dispatcher: string;
  batch: number;
  workers: number;
  budgetMs: number;
}): Promise<DispatchSummary> {
  const summary: DispatchSummary = { claimed: 0, delivered: 0, failed: 0 };
  const deadline = Date.now() + options.budgetMs;
  const loop = async () => {
    while (Date.now() < deadline) {
      const rows = (await database(
        'alert claim',
        (sql) => sql`
        select id, attempt, notice, channel_name, channel_kind, endpoint, secret, settings
        from public.alert_claim(${options.dispatcher}, ${options.batch})`,
      )) as unknown as Claimed[];
      if (rows.length === 0) return;
      summary.claimed += rows.length;
      const results = await Promise.all(rows.map(deliver));
      // one transaction for the batch's attempts, not one per delivery
      await database(
        'alert results',
        (sql) => sql`
        select public.alert_complete_batch(${sql.json(
          results.map((result, i) => ({
            id: rows[i].id,
            attempt: rows[i].attempt,
            ok: result.ok,
            http_status: result.httpStatus,
            response: result.response,
            error: result.error,
            duration_ms: result.durationMs,
          })),
        )}, ${options.dispatcher})`,
      );
      for (const result of results) {
        if (result.ok) summary.delivered++;
        else summary.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, loop));
  return summary;
}
