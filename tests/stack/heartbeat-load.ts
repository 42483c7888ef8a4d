// Agents heartbeating through a stack's gateway, for fault tests: how many heartbeats failed, when the
// last one did, and whether every agent has been answered since a given moment.

export interface LoadAgent {
  name: string;
  token: string;
}

/** One heartbeat; true when it was answered 200 within 5 s. */
export async function heartbeat(url: string, agent: LoadAgent): Promise<boolean> {
  try {
    const response = await fetch(`${url}/functions/v1/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent_name: agent.name, status: 'running' }),
      signal: AbortSignal.timeout(5_000),
    });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * Every agent heartbeating every intervalMs (each waits for its answer, then for the rest of the
 * interval) until stopped.
 */
export function heartbeatLoad(url: string, agents: LoadAgent[], intervalMs: number) {
  let running = true;
  let failed = 0;
  let sent = 0;
  let lastFailureAt = 0;
  const lastSuccessAt = agents.map(() => 0);
  const loops = agents.map(async (agent, i) => {
    while (running) {
      const sentAt = Date.now();
      sent++;
      if (await heartbeat(url, agent)) {
        lastSuccessAt[i] = sentAt;
      } else {
        failed++;
        lastFailureAt = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, sentAt + intervalMs - Date.now())));
    }
  });
  return {
    stats: () => ({ sent, failed, lastFailureAt }),
    /** whether every agent had a heartbeat sent after `time` answered */
    allAnsweredSince: (time: number) => lastSuccessAt.every((at) => at > time),
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

export type HeartbeatLoad = ReturnType<typeof heartbeatLoad>;
