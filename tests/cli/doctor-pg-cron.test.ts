// `agent-status doctor` reading pg_cron's own job and run history: a stack of its own on a private
// PostgreSQL cluster whose `postgres` database runs pg_cron (as `npm start -- --db postgres` does),
// because the per-file clones of the other tests are not pg_cron's cron.database_name.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../runner/local-stack/stack.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { cli } from './helpers.ts';

const operator = { email: 'cron-operator@agent-status.test', password: randomBytes(12).toString('base64url') };
const dataDir = mkdtempSync(join(tmpdir(), 'agent-status-cron-'));
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    port: await freePort(),
    database: { kind: 'postgres', dataDir, port: await freePort() },
    functions: false,
    operator,
  });
});
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = () => ({
  AGENT_STATUS_URL: stack.url,
  AGENT_STATUS_ANON_KEY: stack.anonKey,
  AGENT_STATUS_EMAIL: operator.email,
  AGENT_STATUS_PASSWORD: operator.password,
});

function sweepLine(stdout: string): string {
  return stdout.split('\n').find((line) => line.includes('pg_cron sweep'))!;
}

describe('doctor and the pg_cron sweep', { timeout: 120_000 }, () => {
  it('passes a scheduled job, fails an inactive one and one whose last run failed, with the fix', async () => {
    expect(stack.sweepByPgCron).toBe(true);
    const { sql } = stack;
    const [{ jobid }] = await sql`select jobid from cron.job where jobname = 'agent-status-sweep'`;

    const scheduled = await cli(['doctor'], env());
    // pass once pg_cron ran it (every minute), warn before its first run
    expect(sweepLine(scheduled.stdout)).toMatch(
      /^(pass {2}pg_cron sweep +job agent-status-sweep runs "\* \* \* \* \*"; last run \d+ s ago: succeeded|warn {2}pg_cron sweep +job agent-status-sweep runs "\* \* \* \* \*"; no run recorded yet)/,
    );
    // (this stack serves no edge functions, so that check fails: the exit code is not the sweep's)

    // a run recorded as the latest (in the future, so pg_cron's real runs stay older) that failed
    await sql`insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
              values (${jobid}, 1000000, 1, 'postgres', 'postgres', 'select public.agent_status_sweep()', 'failed', 'ERROR: boom',
                      now() + interval '1 hour', now() + interval '1 hour')`;
    const failed = await cli(['doctor'], env());
    expect(failed.exitCode).toBe(EXIT.failed);
    expect(sweepLine(failed.stdout)).toMatch(
      /^FAIL {2}pg_cron sweep +job agent-status-sweep runs "\* \* \* \* \*"; its last run 0 s ago failed: ERROR: boom$/,
    );
    expect(failed.stdout).toContain('fix: Run it by hand to see the error: select public.agent_status_sweep();');
    await sql`delete from cron.job_run_details where runid = 1000000`;

    await sql`select cron.alter_job(${jobid}::bigint, active := false)`;
    try {
      const inactive = await cli(['doctor', '--json'], env());
      expect(inactive.exitCode).toBe(EXIT.failed);
      expect(JSON.parse(inactive.stdout)).toContainEqual({
        check: 'pg_cron sweep',
        result: 'fail',
        detail: 'job agent-status-sweep is scheduled (* * * * *) but inactive',
        fix: "Activate it: select cron.alter_job(job_id := (select jobid from cron.job where jobname = 'agent-status-sweep'), active := true);",
      });
    } finally {
      await sql`select cron.alter_job(${jobid}::bigint, active := true)`;
    }
  });
});
