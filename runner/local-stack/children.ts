// Child processes of the local stack (PostgREST, Deno). Each runs in its own process group so that
// stopping it also stops anything it started, and so that a Ctrl+C in the terminal reaches only the
// stack, which then stops its children in order. Whatever happens to this Node process, the groups
// still alive are killed on exit (and on Linux by the kernel after a SIGKILL): no orphans. A child
// that exits on its own once it was up is restarted with backoff, with a line saying which and why.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const liveGroups = new Set<number>();

// On Linux the kernel can kill a child when its parent dies, which covers the one exit no handler
// sees: this process being killed with SIGKILL. util-linux's setpriv sets that up, then execs the child.
export const SETPRIV = process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
  });
}

export interface ChildSpec {
  /** How messages name it: "PostgREST", "function heartbeat". */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** What to do when the binary is missing. */
  installHint: string;
  /** Each line the child prints (stdout and stderr). */
  onLine?: (line: string) => void;
  /** How long stop() waits after SIGTERM before SIGKILL (default 5 s). */
  stopTimeoutMs?: number;
}

export interface SupervisedChild {
  name: string;
  /** the process id of the current run */
  readonly pid: number;
  /** Resolves when the child is gone for good: stopped, or exited before it was ready. */
  exited: Promise<void>;
  /**
   * The child is up (listening, ready): from now on an unexpected exit restarts it, with backoff.
   * Before that, an exit is a failed start, which the caller reports.
   */
  ready(): void;
  stop(): Promise<void>;
}

/** Restart delays: 0.5 s, doubling to 30 s; a run of a minute or more starts the series again. */
export const RESTART_BACKOFF = { firstMs: 500, maxMs: 30_000, stableMs: 60_000 };

/**
 * Called for every unexpected exit with the child's name and why (exit code or signal and its last
 * output lines). restartInMs is set when the child is restarted after that delay; absent when it
 * exited before it was ready, so it is not restarted.
 */
export type ExitHandler = (name: string, reason: string, restartInMs?: number) => void;

/**
 * Starts children and watches them. A ready child that exits while the stack did not ask it to is
 * restarted with backoff, as `supabase start`'s containers are; each exit is told to onExit.
 */
export class Supervisor {
  private readonly children = new Set<SupervisedChild>();
  private stopping = false;

  constructor(private readonly onExit: ExitHandler) {
    installExitHook();
  }

  spawn(spec: ChildSpec): SupervisedChild {
    if (spec.command.includes('/') && !existsSync(spec.command)) {
      throw new Error(`${spec.name}: binary not found at ${spec.command}. ${spec.installHint}`);
    }
    const [command, args] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args]] : [spec.command, spec.args];
    let current: ChildProcess;
    let isReady = false;
    let expected = false;
    let failures = 0;
    let restartTimer: NodeJS.Timeout | undefined;
    let finish: () => void = () => {};
    const exited = new Promise<void>((resolve) => (finish = resolve));
    const done = () => {
      this.children.delete(supervised);
      finish();
    };

    const launch = () => {
      const startedAt = Date.now();
      const child: ChildProcess = spawn(command, args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      current = child;
      const tail: string[] = [];
      for (const stream of [child.stdout!, child.stderr!]) {
        createInterface({ input: stream }).on('line', (line) => {
          if (!line.trim()) return;
          tail.push(line);
          if (tail.length > 20) tail.shift();
          spec.onLine?.(line);
        });
      }
      let spawnError: Error | undefined;
      child.once('error', (error) => {
        spawnError = error;
      });
      if (child.pid) liveGroups.add(child.pid);
      child.once('close', (code, signal) => {
        if (child.pid) {
          liveGroups.delete(child.pid);
          // whatever it started goes with it, so a restart finds its port free
          killGroup(child.pid, 'SIGKILL');
        }
        if (expected || this.stopping) return done();
        const why = spawnError
          ? `could not be started (${spawnError.message}). ${spec.installHint}`
          : `exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`})`;
        const output = tail.length ? `; its last output:\n  ${tail.slice(-8).join('\n  ')}` : '';
        if (!isReady || spawnError) {
          this.onExit(spec.name, why + output);
          return done();
        }
        failures = Date.now() - startedAt >= RESTART_BACKOFF.stableMs ? 1 : failures + 1;
        const delay = Math.min(RESTART_BACKOFF.firstMs * 2 ** (failures - 1), RESTART_BACKOFF.maxMs);
        this.onExit(spec.name, why + output, delay);
        restartTimer = setTimeout(() => {
          restartTimer = undefined;
          if (!expected && !this.stopping) launch();
        }, delay);
      });
    };
    launch();

    const supervised: SupervisedChild = {
      name: spec.name,
      get pid() {
        return current.pid ?? -1;
      },
      exited,
      ready: () => {
        isReady = true;
      },
      stop: async () => {
        expected = true;
        if (restartTimer) {
          clearTimeout(restartTimer);
          restartTimer = undefined;
          done();
          return exited;
        }
        const child = current;
        if (!child.pid || child.exitCode !== null || child.signalCode !== null) return exited;
        killGroup(child.pid, 'SIGTERM');
        const force = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), spec.stopTimeoutMs ?? 5_000);
        await exited;
        clearTimeout(force);
      },
    };
    this.children.add(supervised);
    return supervised;
  }

  /** The children by name with the process id of their current run. */
  running(): { name: string; pid: number }[] {
    return [...this.children].map((child) => ({ name: child.name, pid: child.pid }));
  }

  /** Stops every child still running; from now on exits are expected, not crashes. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.children].map((child) => child.stop()));
  }
}
