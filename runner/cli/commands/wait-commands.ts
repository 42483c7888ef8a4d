// Waits for enqueued commands to end (succeeded, failed or expired), polling the database: commands
// are rows, and a runner may be seconds away from claiming them. Bounded by a timeout.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Api } from './connection.ts';
import type { CommandRow } from './agents.ts';

const FINISHED = new Set(['succeeded', 'failed', 'expired']);

export function isFinished(command: CommandRow): boolean {
  return FINISHED.has(command.status);
}

/** Polls until every command has finished or `timeoutMs` passed; returns the last rows seen. */
export async function waitForCommands(
  api: Api,
  ids: number[],
  options: { timeoutMs: number; intervalMs?: number; onPoll?: (rows: CommandRow[]) => void },
): Promise<CommandRow[]> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const rows = await api.rpc<CommandRow[]>('operator_commands', { p_ids: ids });
    options.onPoll?.(rows);
    if (rows.every(isFinished) || Date.now() >= deadline) return rows;
    await sleep(Math.min(options.intervalMs ?? 1000, Math.max(0, deadline - Date.now())));
  }
}
