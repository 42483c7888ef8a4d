// The supervisor with real child processes: process groups, stop, SIGKILL after the stop timeout,
// grandchildren, restart policy and crash loops, adoption and pid identity.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSupervisor, type AgentReport } from '../../runner/daemon/supervisor.ts';
import { processInfo } from '../../runner/daemon/proc.ts';
import { agentConfig, alive, tempDir, waitFor } from './helpers.ts';

const supervisors: AgentSupervisor[] = [];
const strays: number[] = [];

afterEach(async () => {
  for (const s of supervisors.splice(0)) {
    s.dispose();
    if (s.process) await s.stop('test cleanup');
  }
  for (const pid of strays.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
});

function supervise(fixture: string, extra: Record<string, unknown> = {}) {
  const reports: AgentReport[] = [];
  const logDir = tempDir();
  const supervisor = new AgentSupervisor(agentConfig(fixture, extra), {
    logDir,
    env: (agent) => ({ AGENT_STATUS_URL: 'http://127.0.0.1:9', AGENT_STATUS_TOKEN: `asl_for_${agent}` }),
    mark: 'runner-instance-1',
    report: (_agent, report) => reports.push(report),
    log: () => {},
    changed: () => {},
    ended: () => {},
  });
  supervisors.push(supervisor);
  return { supervisor, reports, logDir };
}

describe('start and stop', () => {
  it('starts the agent in its own process group with its environment and log files', async () => {
    const { supervisor, reports } = supervise('forever.sh');
    const outcome = await supervisor.start();
    expect(outcome).toEqual({ ok: true, message: `started (pid ${supervisor.process!.pid})` });
    const pid = supervisor.process!.pid;
    expect(processInfo(pid)!.pgid).toBe(pid);
    expect(reports).toEqual([{ event: 'started', pid, message: 'started by command' }]);
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(env).toContain('AGENT_NAME=agent-foreversh');
    expect(env).toContain('AGENT_STATUS_TOKEN=asl_for_agent-foreversh');
    expect(env).toContain('AGENT_STATUS_RUNNER=runner-instance-1');
    expect(env).toContain('AGENT_STATUS_URL=http://127.0.0.1:9');
    await waitFor('stdout in the log file', () => readFileSync(supervisor.logFiles.stdout, 'utf8').includes(`started as ${pid}`));
  });

  it('starting an agent that runs is a no-op that succeeds, and keeps one process', async () => {
    const { supervisor } = supervise('forever.sh');
    await supervisor.start();
    const pid = supervisor.process!.pid;
    expect(await supervisor.start()).toEqual({ ok: true, message: `already running (pid ${pid})` });
    expect(supervisor.process!.pid).toBe(pid);
  });

  it('stops with the stop signal and reports terminated', async () => {
    const { supervisor, reports } = supervise('forever.sh');
    await supervisor.start();
    const pid = supervisor.process!.pid;
    const outcome = await supervisor.stop();
    expect(outcome.ok).toBe(true);
    expect(outcome.message).toMatch(new RegExp(`^stopped \\(pid ${pid}\\): stopped by SIGTERM in `));
    expect(alive(pid)).toBe(false);
    expect(reports.at(-1)).toMatchObject({ event: 'terminated', exitCode: 0 });
    expect(await supervisor.stop()).toEqual({ ok: true, message: 'already stopped' });
    expect(readFileSync(supervisor.logFiles.stderr, 'utf8')).toContain('got SIGTERM');
  });

  it('kills a child that ignores SIGTERM after the stop timeout', async () => {
    const { supervisor, reports } = supervise('ignores-sigterm.sh', { stop_timeout: '300ms' });
    await supervisor.start();
    const pid = supervisor.process!.pid;
    const began = Date.now();
    const outcome = await supervisor.stop();
    expect(Date.now() - began).toBeGreaterThanOrEqual(300);
    expect(outcome.message).toContain('did not stop within 0.3 s of SIGTERM; killed with SIGKILL');
    expect(alive(pid)).toBe(false);
    expect(reports.at(-1)).toMatchObject({ event: 'terminated', exitSignal: 'SIGKILL' });
  });

  it('leaves no grandchildren behind', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'grandchildren');
    const { supervisor } = supervise('spawns-grandchildren.sh', { stop_timeout: '300ms', env: { GRANDCHILD_PIDS: pidFile } });
    await supervisor.start();
    const grandchildren = await waitFor('two grandchildren', () => {
      const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
      return pids.length === 2 ? pids : undefined;
    });
    strays.push(...grandchildren);
    expect(grandchildren.every(alive)).toBe(true);
    const outcome = await supervisor.stop();
    expect(outcome.ok).toBe(true);
    expect(grandchildren.some(alive)).toBe(false);
  });

  it('says why a start failed: exit within min_uptime with the last stderr line', async () => {
    const { supervisor } = supervise('crashes.sh', { restart: 'never' });
    expect(await supervisor.start()).toEqual({ ok: false, message: 'exited within 1 s with code 2: fatal: missing setting DATABASE_URL' });
    expect(supervisor.state).toBe('stopped');
  });

  it('says when the program does not exist', async () => {
    const { supervisor, reports } = supervise('no-such-program.sh', { restart: 'never' });
    const outcome = await supervisor.start();
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toMatch(/^could not start: .*no-such-program\.sh not found/);
    expect(reports).toMatchObject([{ event: 'crashed' }]);
  });

  it('restarts: a new pid', async () => {
    const { supervisor } = supervise('forever.sh');
    await supervisor.start();
    const before = supervisor.process!.pid;
    const outcome = await supervisor.restart();
    const after = supervisor.process!.pid;
    expect(after).not.toBe(before);
    expect(outcome).toEqual({ ok: true, message: `restarted: pid ${before} -> ${after}` });
    expect(alive(before)).toBe(false);
  });
});

describe('restart policy', () => {
  it('restarts a crashed agent at once under policy always', async () => {
    const { supervisor, reports } = supervise('forever.sh', { restart: 'always', min_uptime: '100ms' });
    await supervisor.start();
    const first = supervisor.process!.pid;
    await new Promise((r) => setTimeout(r, 150));
    process.kill(first, 'SIGKILL');
    const second = await waitFor('a new process', () => supervisor.process && supervisor.process.pid !== first && supervisor.process.pid);
    expect(alive(second)).toBe(true);
    expect(reports.map((r) => r.event)).toEqual(['started', 'crashed', 'started']);
    expect(reports[1]).toMatchObject({ exitSignal: 'SIGKILL' });
    expect(reports[1].message).toMatch(/^killed by SIGKILL after /);
  });

  it('does not restart a clean exit under on-failure', async () => {
    const { supervisor, reports } = supervise('exits-after.sh', {
      restart: 'on-failure',
      env: { RUN_SECONDS: '0.1', EXIT_CODE: '0' },
      min_uptime: '50ms',
    });
    await supervisor.start();
    await waitFor('the exit', () => supervisor.state === 'stopped');
    expect(reports.map((r) => r.event)).toEqual(['started', 'exited']);
  });

  it('backs off a crash loop and gives up with the last stderr line', async () => {
    const { supervisor, reports } = supervise('crashes.sh', {
      restart: 'always',
      min_uptime: '500ms',
      backoff: { initial: '50ms', max: '200ms', max_retries: 3 },
    });
    await supervisor.start();
    await waitFor('the crash loop to be given up', () => supervisor.state === 'fatal', 10_000);
    const events = reports.map((r) => r.event);
    expect(events).toEqual(['started', 'crashed', 'started', 'crashed', 'started', 'crashed', 'started', 'crashed']);
    const last = reports.at(-1)!;
    expect(last.exitCode).toBe(2);
    expect(last.message).toMatch(/^crash loop: ended 4 times in a row within 0.5 s of starting; gave up restarting \(restart: always\)/);
    expect(last.message).toContain('fatal: missing setting DATABASE_URL');
    // a stop command clears the crash loop
    expect((await supervisor.stop()).message).toBe('stopped (it was in a crash loop)');
    expect(supervisor.state).toBe('stopped');
  });
});

describe('adoption', () => {
  it('adopts a running process, notices when it dies and stops it through its group', async () => {
    const { supervisor, reports } = supervise('forever.sh', { restart: 'never' });
    const outside = execa(agentConfig('forever.sh').command, { detached: true, cleanup: false, stdio: 'ignore', reject: false });
    strays.push(outside.pid!);
    const pid = await waitFor(
      'the outside process to lead its group',
      () => processInfo(outside.pid!)?.pgid === outside.pid && outside.pid,
    );
    supervisor.adopt({ pid, startTicks: processInfo(pid)!.startTicks }, 'found running');
    expect(reports).toEqual([{ event: 'adopted', pid, message: 'found running' }]);
    expect((await supervisor.start()).message).toBe(`already running (pid ${pid})`);
    const outcome = await supervisor.stop();
    expect(outcome.ok).toBe(true);
    expect(alive(pid)).toBe(false);
  });

  it('sees an adopted process gone at the next check, and never signals a reused pid', async () => {
    const { supervisor, reports } = supervise('forever.sh', { restart: 'never' });
    const other = execa('sleep', ['100'], { detached: true, cleanup: false, stdio: 'ignore', reject: false });
    strays.push(other.pid!);
    // an identity whose start time does not match: the pid is someone else's now
    supervisor.adopt({ pid: other.pid!, startTicks: 1 }, 'test');
    supervisor.check();
    await waitFor('the exit to be seen', () => supervisor.state === 'stopped');
    expect(reports.at(-1)).toMatchObject({ event: 'crashed' });
    expect(reports.at(-1)!.message).toMatch(/exit code is unknown/);
    expect(alive(other.pid!)).toBe(true);
  });
});
