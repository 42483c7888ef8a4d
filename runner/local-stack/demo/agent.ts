// A demo agent for `npm start`: it pretends to work and tells agent-status about it over HTTP, the way
// any agent without the SDK can. DEMO_BEHAVIOUR picks the story the dashboard shows:
//   healthy   steady work, health near 100
//   drifting  health wanders; below 60 it warns ("queue backing up"), above 70 it is fine again
//   flaky     works for a while, then reports an error and crashes (exit code 1) to be restarted
// Environment: AGENT_STATUS_URL, AGENT_STATUS_TOKEN, AGENT_NAME, DEMO_BEHAVIOUR, DEMO_INTERVAL_MS.

const url = process.env.AGENT_STATUS_URL;
const token = process.env.AGENT_STATUS_TOKEN;
const name = process.env.AGENT_NAME;
const behaviour = process.env.DEMO_BEHAVIOUR ?? 'healthy';
const intervalMs = Number(process.env.DEMO_INTERVAL_MS ?? 5_000);
if (!url || !token || !name) {
  console.error('demo agent: set AGENT_STATUS_URL, AGENT_STATUS_TOKEN and AGENT_NAME');
  process.exit(2);
}

async function post(fn: 'heartbeat' | 'report', body: Record<string, unknown>): Promise<void> {
  try {
    const response = await fetch(`${url}/functions/v1/${fn}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent_name: name, pid: process.pid, ...body }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) console.error(`${fn} refused (${response.status}): ${await response.text()}`);
  } catch (error) {
    // A demo agent, like a real one, keeps working while the service is away.
    console.error(`${fn} failed: ${(error as Error).message}`);
  }
}

let processed = 0;
let health = 95;
let warning = false;
// The flaky agent crashes after 20 to 60 seconds of work.
const crashAt = Date.now() + 20_000 + Math.random() * 40_000;

async function tick(): Promise<void> {
  processed += 1 + Math.floor(Math.random() * 20);
  if (behaviour === 'drifting') {
    health = Math.max(30, Math.min(100, health + Math.round((Math.random() - 0.55) * 16)));
    if (!warning && health < 60) {
      warning = true;
      await post('report', { event: 'warning', message: `queue backing up: health ${health}`, health });
      return;
    }
    if (warning && health > 70) warning = false;
    await post('heartbeat', { status: warning ? 'warning' : 'running', health, last_activity: `processed ${processed} items` });
    return;
  }
  if (behaviour === 'flaky' && Date.now() > crashAt) {
    await post('report', { event: 'error', message: 'simulated failure: lost the connection to the upstream feed', health: 10 });
    console.error('simulated crash');
    process.exit(1);
  }
  health = 90 + Math.floor(Math.random() * 11);
  await post('heartbeat', { status: 'running', health, last_activity: `processed ${processed} items` });
}

async function main() {
  await post('report', { event: 'started', last_activity: 'starting up' });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await post('report', { event: 'stopped' });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (;;) {
    await tick();
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

await main();
