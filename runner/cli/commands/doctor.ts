// `agent-status doctor [agent]`: the seed's troubleshooting list, automated. Each check prints pass,
// warn or fail, and a failing one says how to fix it. Exit 0 when nothing failed, 1 when a check
// failed, 3 when the API cannot be reached, 4 when the CLI may not read as an operator, 5 when the
// agent name matches no agent.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { functionUrl } from '../../../shared/api/paths.ts';
import { action, integerIn, subcommand } from './action.ts';
import { connect, connectionOptions, type Api, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT, type ExitCode } from '../../exit-codes.ts';
import { ago, painter, printJson, span } from './output.ts';
import { runnerAway } from '../../../shared/status.ts';
import { startProgress } from './progress.ts';
import { agentById, agentByName, listAgents, nearestNames, type LiveAgent } from './agents.ts';
import { HEALTH_NOT_REPORTED, reportedHealth } from '../../../shared/rows.ts';

type Verdict = 'pass' | 'warn' | 'fail';

export interface Check {
  check: string;
  result: Verdict;
  detail: string;
  fix?: string;
}

/** A failed check, with what to do about it. */
function failed(check: string, detail: string, fix: string): Check {
  return { check, result: 'fail', detail, fix };
}

interface DoctorOptions extends ConnectionFlags {
  watch: number;
  json?: boolean;
}

interface SweepStatus {
  pg_cron: boolean;
  now: string;
  message?: string;
  job?: { jobname: string; schedule: string; active: boolean } | null;
  last_run?: { status: string; return_message: string | null; start_time: string; end_time: string | null } | null;
  last_success_at?: string | null;
}

const RUNNER_FIX =
  'Start the runner on that host (e.g. `systemctl start agent-status-runner`, ' +
  'or `agent-status runner --config agents.yaml`) and check its log.';

async function reachable(options: DoctorOptions): Promise<[Check, ExitCode]> {
  const api = await connect(options, { signIn: false });
  const started = Date.now();
  try {
    await api.rpcAnonymous('verify_api_token', { p_token: 'agent-status doctor' });
    return [{ check: 'API reachable', result: 'pass', detail: `${api.url} answered in ${Date.now() - started} ms` }, EXIT.ok];
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return [{ check: 'API reachable', result: 'fail', detail: error.message, fix: error.hint }, error.exitCode];
  }
}

async function functionsServed(api: Api): Promise<Check> {
  // An empty heartbeat is refused by a deployed function (400/401 with our error body); a 404 means
  // the function is not deployed.
  try {
    const response = await fetch(functionUrl(api.url, 'heartbeat'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    if (response.status === 400 || response.status === 401) {
      return {
        check: 'edge functions deployed',
        result: 'pass',
        detail: `/functions/v1/heartbeat answers (${response.status} to an empty request, as it should)`,
      };
    }
    return failed(
      'edge functions deployed',
      `/functions/v1/heartbeat answered ${response.status}: ${body.slice(0, 200)}`,
      'Deploy them: npx supabase functions deploy heartbeat report command (verify_jwt = false is in supabase/config.toml).',
    );
  } catch (error) {
    return failed(
      'edge functions deployed',
      `no answer from /functions/v1/heartbeat: ${(error as Error).message}`,
      'Deploy them: npx supabase functions deploy; locally, npm start serves them.',
    );
  }
}

function sweepCheck(sweep: SweepStatus): Check {
  const check = 'pg_cron sweep';
  if (!sweep.pg_cron) return { check, result: 'warn', detail: sweep.message ?? 'pg_cron is not installed' };
  if (!sweep.job) {
    return failed(
      check,
      'pg_cron is installed but no job runs public.agent_status_sweep()',
      "Schedule it: select cron.schedule('agent-status-sweep', '* * * * *', 'select public.agent_status_sweep()'); " +
        '(npx supabase db push applies it)',
    );
  }
  if (!sweep.job.active) {
    return failed(
      check,
      `job ${sweep.job.jobname} is scheduled (${sweep.job.schedule}) but inactive`,
      `Activate it: select cron.alter_job(job_id := (select jobid from cron.job where jobname = '${sweep.job.jobname}'), active := true);`,
    );
  }
  const scheduled = `job ${sweep.job.jobname} runs "${sweep.job.schedule}"`;
  if (!sweep.last_run) {
    return { check, result: 'warn', detail: `${scheduled}; no run recorded yet (pg_cron's history may be off, or the job is new)` };
  }
  const age = (Date.parse(sweep.now) - Date.parse(sweep.last_run.start_time)) / 1000;
  if (sweep.last_run.status === 'failed') {
    return failed(
      check,
      `${scheduled}; its last run ${ago(age)} failed: ${sweep.last_run.return_message}`,
      'Run it by hand to see the error: select public.agent_status_sweep();',
    );
  }
  if (age > 180) {
    return failed(
      check,
      `${scheduled}, but its last run was ${ago(age)}`,
      'pg_cron is not running jobs: check that the pg_cron worker runs (Supabase: Database > Extensions), and cron.database_name.',
    );
  }
  return { check, result: 'pass', detail: `${scheduled}; last run ${ago(age)}: ${sweep.last_run.status}` };
}

function agentsSummary(agents: LiveAgent[]): Check {
  const troubled = agents.filter((a) => a.status === 'error' || a.status === 'stale');
  if (!agents.length)
    return {
      check: 'agents',
      result: 'warn',
      detail: 'no agents yet',
      fix: 'A runner registers the agents in its config; `agent-status token create agent --name <name>` creates one.',
    };
  if (!troubled.length) return { check: 'agents', result: 'pass', detail: `${agents.length} agent(s), none in error or stale` };
  return failed(
    'agents',
    `${troubled.length} of ${agents.length} in error or stale: ${troubled.map((a) => `${a.agent_name} (${a.status})`).join(', ')}`,
    `Look closer: agent-status doctor "${troubled[0].agent_name}"`,
  );
}

async function heartbeatCheck(api: Api, agent: LiveAgent, watchSeconds: number): Promise<Check> {
  const check = 'heartbeats arriving';
  const timeout = agent.heartbeat_timeout_s;
  if (!agent.last_heartbeat) {
    return failed(
      check,
      'no heartbeat ever arrived for this name',
      'The agent must call mark_agent_started / send_heartbeat (or run under `agent-status run`) with this exact name, ' +
        'with AGENT_STATUS_URL and AGENT_STATUS_TOKEN set in its environment.',
    );
  }
  if (watchSeconds > 0) {
    const progress = startProgress(`watching heartbeats of ${agent.agent_name} for ${watchSeconds} s`);
    const seen = new Set<string>([agent.last_heartbeat]);
    const deadline = Date.now() + watchSeconds * 1000;
    try {
      while (Date.now() < deadline) {
        await sleep(Math.min(1000, deadline - Date.now()));
        const now = await agentById(api, agent.id);
        if (now?.last_heartbeat) seen.add(now.last_heartbeat);
      }
    } finally {
      progress.stop();
    }
    const times = [...seen].map(Date.parse).sort((a, b) => a - b);
    const arrivals = times.length - 1;
    if (arrivals === 0) {
      return failed(
        check,
        `no heartbeat in ${watchSeconds} s of watching (last one ${ago(agent.seconds_since_heartbeat)}, timeout ${timeout} s)`,
        'Is the agent process alive? Heartbeats stop when its main loop hangs; add send_heartbeat calls in the loop, or ' +
          'run it under `agent-status run`.',
      );
    }
    const every = (times[times.length - 1] - times[0]) / 1000 / arrivals;
    const verdict: Verdict = every > timeout ? 'fail' : 'pass';
    return {
      check,
      result: verdict,
      detail: `${arrivals} heartbeat(s) in ${watchSeconds} s, about every ${every.toFixed(1)} s (timeout ${timeout} s)`,
      fix: verdict === 'fail' ? `Send heartbeats more often than every ${timeout} s.` : undefined,
    };
  }
  const age = agent.seconds_since_heartbeat ?? Infinity;
  if (age > timeout) {
    return {
      check,
      result: 'fail',
      detail: `no heartbeat for ${Math.round(age)} s (timeout ${timeout} s)`,
      fix:
        agent.status === 'stopped'
          ? 'The agent is stopped: start it (agent-status start <agent>).'
          : 'Is the agent process alive and its main loop moving? Check its log; `agent-status run` heartbeats for programs that cannot.',
    };
  }
  return {
    check,
    result: 'pass',
    detail: `last heartbeat ${ago(age)} (timeout ${timeout} s); measure how often with --watch ${Math.min(3 * timeout, 300)}`,
  };
}

function runnerCheck(agent: LiveAgent): Check {
  const check = 'runner manages it';
  if (!agent.runner_id) {
    return {
      check,
      result: 'warn',
      detail: 'no runner manages it: start, stop and restart from the CLI or dashboard will be refused',
      fix: 'Add it to the agents file of the runner on its host, or keep starting it by hand.',
    };
  }
  const away = runnerAway(agent, span);
  if (away) {
    return failed(check, `the runner on ${agent.host} is ${away}; last seen ${agent.runner_last_seen_at ?? 'never'}`, RUNNER_FIX);
  }
  return { check, result: 'pass', detail: `the runner on ${agent.host} is online` };
}

function statusCheck(agent: LiveAgent): Check {
  const check = 'status';
  const reason = agent.status_reason ? `: ${agent.status_reason}` : '';
  const detail = `${agent.status}, health ${reportedHealth(agent) ?? HEALTH_NOT_REPORTED}${reason} (set by ${agent.status_source})`;
  if (agent.status === 'running') return { check, result: 'pass', detail };
  if (agent.status === 'stopped' || agent.status === 'warning') return { check, result: 'warn', detail };
  // without a runner, `agent-status restart` is refused (the runner check says so): do not advise it
  const restart = agent.runner_id
    ? `restart it (agent-status restart ${JSON.stringify(agent.agent_name)})`
    : 'start it again on its host (no runner manages it, so agent-status restart would be refused)';
  return {
    check,
    result: 'fail',
    detail,
    fix:
      agent.status === 'stale'
        ? `The process may be hung or dead: check it on its host, then ${restart}.`
        : `Read the error (last_error: ${agent.last_error ?? 'none'}), fix it, then ${restart}.`,
  };
}

function print(checks: Check[]) {
  const paint = painter();
  const mark = { pass: paint.green('pass'), warn: paint.yellow('warn'), fail: paint.red('FAIL') };
  const width = Math.max(...checks.map((c) => c.check.length));
  for (const c of checks) {
    process.stdout.write(`${mark[c.result]}  ${c.check.padEnd(width)}  ${c.detail}\n`);
    if (c.fix && c.result !== 'pass') process.stdout.write(`      ${' '.repeat(width)}  ${paint.dim('fix:')} ${c.fix}\n`);
  }
}

export async function doctor(agentName: string | undefined, options: DoctorOptions): Promise<{ checks: Check[]; exitCode: ExitCode }> {
  const checks: Check[] = [];
  const done = (exitCode: ExitCode) => ({ checks, exitCode });
  const api = await reachableOrNot();
  if (typeof api === 'number') return done(api);

  let agents: LiveAgent[];
  try {
    agents = await listAgents(api);
    checks.push({ check: 'operator access', result: 'pass', detail: `reading as ${api.who}` });
  } catch (error) {
    const e = error as CliError;
    checks.push({ check: 'operator access', result: 'fail', detail: e.message, fix: e.hint });
    return done(e.exitCode === EXIT.unreachable ? EXIT.unreachable : EXIT.auth);
  }
  checks.push(await functionsServed(api));
  checks.push(sweepCheck(await api.rpc<SweepStatus>('operator_sweep_status')));

  if (agentName === undefined) {
    checks.push(agentsSummary(agents));
  } else {
    const agent = await agentByName(api, agentName);
    if (!agent) {
      const near = nearestNames(
        agentName,
        agents.map((a) => a.agent_name),
      );
      checks.push({
        check: 'name matches exactly',
        result: 'fail',
        detail: `no agent is named ${JSON.stringify(agentName)}`,
        fix: near.length
          ? `Did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}? Use the name exactly, in the agent's code (AGENT_NAME) too.`
          : 'See the names with: agent-status list',
      });
      return done(EXIT.notFound);
    }
    checks.push({ check: 'name matches exactly', result: 'pass', detail: JSON.stringify(agentName) });
    checks.push(statusCheck(agent));
    checks.push(await heartbeatCheck(api, agent, options.watch));
    checks.push(runnerCheck(agent));
  }
  return done(checks.some((c) => c.result === 'fail') ? EXIT.failed : EXIT.ok);

  async function reachableOrNot(): Promise<Api | ExitCode> {
    const [first, exitCode] = await reachable(options);
    checks.push(first);
    if (exitCode !== EXIT.ok) return exitCode;
    try {
      return await connect(options);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      checks.push({ check: 'operator access', result: 'fail', detail: error.message, fix: error.hint });
      return error.exitCode;
    }
  }
}

export function registerDoctor(program: Command): void {
  connectionOptions(
    subcommand(program, 'doctor [agent]', 'check the API, the sweep and (given a name) one agent: name, heartbeats, runner'),
  )
    .option('--watch <seconds>', 'watch heartbeats this long to measure how often they arrive', integerIn(0, 3600), 0)
    .option('--json', 'print the checks as JSON')
    .action(
      action(async (agentName: string | undefined, options: DoctorOptions) => {
        const { checks, exitCode } = await doctor(agentName, options);
        if (options.json) printJson(checks);
        else print(checks);
        return exitCode;
      }),
    );
}
