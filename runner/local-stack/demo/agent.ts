// A demo agent for `npm start`, written as any TypeScript agent would be with the SDK (shared/sdk):
// the demo runner starts it, and the SDK reports started, status, health, activity and stopped. It
// logs a line per round to stdout and its warnings and failure to stderr, as real agents do, so
// "logs on demand" on the dashboard and `agent-status logs` have something to show.
// DEMO_BEHAVIOUR picks the story the dashboard shows:
//   healthy   steady work, health near 100
//   drifting  health wanders; below 60 it warns ("queue backing up"), above 70 it is fine again
//   flaky     works for 20 to 60 s, then fails with an error (exit code 1) and is restarted
// Environment: AGENT_STATUS_URL, AGENT_STATUS_TOKEN and AGENT_NAME (set by the runner),
// DEMO_BEHAVIOUR, DEMO_INTERVAL_MS.
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../../../shared/sdk/index.ts';

const behaviour = process.env.DEMO_BEHAVIOUR ?? 'healthy';
const intervalMs = Number(process.env.DEMO_INTERVAL_MS ?? 5_000);
const name = process.env.AGENT_NAME ?? 'demo';

/** One log line as a typical agent writes it: time, level, message. */
function log(level: 'INFO' | 'WARN' | 'ERROR', message: string) {
  (level === 'INFO' ? process.stdout : process.stderr).write(`${new Date().toISOString()} ${level} ${name}: ${message}\n`);
}

log('INFO', `starting (${behaviour}, a round every ${intervalMs / 1000} s)`);

await run(async (status) => {
  let processed = 0;
  let health = 95;
  let warning = false;
  const failAt = Date.now() + 20_000 + Math.random() * 40_000;
  for (;;) {
    const batch = 1 + Math.floor(Math.random() * 20);
    processed += batch;
    if (behaviour === 'flaky' && Date.now() > failAt) {
      log('ERROR', 'lost the connection to the upstream feed; giving up');
      throw new Error('simulated failure: lost the connection to the upstream feed');
    }
    if (behaviour === 'drifting') {
      health = Math.max(30, Math.min(100, health + Math.round((Math.random() - 0.55) * 16)));
      if (!warning && health < 60) {
        warning = true;
        status.reportWarning(`queue backing up: health ${health}`, health);
        log('WARN', `queue backing up: health ${health}`);
      } else if (warning && health > 70) {
        warning = false;
      }
      status.updateStatus({ status: warning ? 'warning' : 'running', health, lastActivity: `processed ${processed} items` });
    } else {
      health = 90 + Math.floor(Math.random() * 11);
      status.updateStatus({ status: 'running', health, lastActivity: `processed ${processed} items` });
    }
    log('INFO', `processed ${batch} items (${processed} in all), health ${health}`);
    await sleep(intervalMs);
  }
});
