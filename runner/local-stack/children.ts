// Child processes of the local stack (PostgREST, Deno). Each runs in its own process group so that
// stopping it also stops anything it started, and so that a Ctrl+C in the terminal reaches only the
// stack, which then stops its children in order. Whatever happens to this Node process, the groups
// still alive are killed on exit (and on Linux by the kernel after a SIGKILL): no orphans.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const liveGroups = new Set<number>();

// On Linux the kernel can kill a child when its parent dies, which covers the one exit no handler
// sees: this process being killed with SIGKILL. util-linux's setpriv sets that up, then execs the child.
const SETPRIV = process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;
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
  pid: number;
  /** Resolves when the process has exited, for whatever reason. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts children and watches them. A child that exits while the stack did not ask it to is a crash:
 * onCrash gets its name and why (exit code or signal and its last output lines).
 */
export class Supervisor {
  private readonly children = new Set<SupervisedChild>();
  private stopping = false;

  constructor(private readonly onCrash: (name: string, reason: string) => void) {
    installExitHook();
  }

  spawn(spec: ChildSpec): SupervisedChild {
    if (spec.command.includes('/') && !existsSync(spec.command)) {
      throw new Error(`${spec.name}: binary not found at ${spec.command}. ${spec.installHint}`);
    }
    const [command, args] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args]] : [spec.command, spec.args];
    const child: ChildProcess = spawn(command, args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (!line.trim()) return;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        spec.onLine?.(line);
      });
    }
    let expected = false;
    let spawnError: Error | undefined;
    child.once('error', (error) => {
      spawnError = error;
    });
    const exited = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        if (child.pid) liveGroups.delete(child.pid);
        this.children.delete(supervised);
        if (!expected && !this.stopping) {
          const why = spawnError
            ? `could not be started (${spawnError.message}). ${spec.installHint}`
            : `exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`})`;
          const output = tail.length ? `; its last output:\n  ${tail.slice(-8).join('\n  ')}` : '';
          this.onCrash(spec.name, why + output);
        }
        resolve();
      });
    });
    if (child.pid) liveGroups.add(child.pid);
    const supervised: SupervisedChild = {
      name: spec.name,
      pid: child.pid ?? -1,
      exited,
      stop: async () => {
        expected = true;
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

  /** Stops every child still running; from now on exits are expected, not crashes. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.children].map((child) => child.stop()));
  }
}
