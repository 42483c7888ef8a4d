// Ties an agent's status to its process: SIGINT, SIGTERM and a normal exit mark it stopped, and
// run(main) reports an uncaught error of main before re-throwing it. Works in Node and in Deno
// (through its `process` global).
import { AgentStatus } from './client.ts';
import type { AgentStatusOptions } from './config.ts';

type Signal = 'SIGINT' | 'SIGTERM';
interface ProcessLike {
  pid: number;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  listenerCount(event: string): number;
  kill(pid: number, signal: string): unknown;
  exit(code?: number): never;
}
const nodeProcess = (globalThis as { process?: ProcessLike }).process;

/**
 * On SIGINT, SIGTERM or when the event loop empties: mark the agent stopped and flush with the
 * deadline. After a signal, the process then ends the way the signal would have ended it, unless
 * the agent has its own handler for it. Returns a function that removes the handlers.
 */
export function installShutdownHandlers(status: AgentStatus): () => void {
  if (!nodeProcess) return () => {};
  let done = false;
  const onSignal = (signal: Signal) => {
    void (async () => {
      status.markStopped();
      await status.close();
      remove();
      if (nodeProcess.listenerCount(signal) === 0) nodeProcess.kill(nodeProcess.pid, signal);
    })();
  };
  const onSigint = () => onSignal('SIGINT');
  const onSigterm = () => onSignal('SIGTERM');
  const onBeforeExit = () => {
    if (done) return;
    done = true;
    status.markStopped();
    void status.close(); // keeps the event loop busy until delivered or the deadline
  };
  nodeProcess.on('SIGINT', onSigint);
  nodeProcess.on('SIGTERM', onSigterm);
  nodeProcess.on('beforeExit', onBeforeExit);
  function remove() {
    nodeProcess!.off('SIGINT', onSigint);
    nodeProcess!.off('SIGTERM', onSigterm);
    nodeProcess!.off('beforeExit', onBeforeExit);
  }
  return remove;
}

/**
 * Runs an agent's main function with its status reported: started, heartbeats while it runs,
 * stopped when it returns or the process is signalled, error (with the message) when it throws;
 * the error is then re-thrown, so the process fails as it would have without the SDK.
 *
 * @example
 * await run(async (status) => {
 *   for (;;) { status.updateStatus({ lastActivity: 'Fetching tweets' }); await work(); }
 * });
 */
export async function run<T>(main: (status: AgentStatus) => T | Promise<T>, options: AgentStatusOptions = {}): Promise<T> {
  const status = new AgentStatus(options);
  const removeHandlers = installShutdownHandlers(status);
  status.markStarted();
  try {
    const result = await main(status);
    status.markStopped();
    await status.close();
    return result;
  } catch (error) {
    status.reportError(error);
    await status.close();
    throw error;
  } finally {
    removeHandlers();
  }
}
