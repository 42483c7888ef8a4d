// `npm run bench`: runs each benchmark module in turn and prints its table. Benchmarks are not
// tests: they measure, on this machine, what the design claims. Register a module with one line.
// BENCH=<name> runs only that one; BENCH_SECONDS sets the length of each measurement.
const BENCHMARKS: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  heartbeat: () => import('./heartbeat.ts'),
  dashboard: () => import('./dashboard.ts'),
  runner: () => import('./runner.ts'),
  edges: () => import('./edges.ts'),
  alerts: () => import('./alerts.ts'),
  connections: () => import('./connections.ts'),
  control: () => import('./control.ts'),
  neighbours: () => import('./neighbours.ts'),
  gateway: () => import('./gateway.ts'),
  quiet: () => import('./quiet.ts'),
  reports: () => import('./reports.ts'),
};

const only = process.env.BENCH?.split(',').filter(Boolean);
const failed: string[] = [];
for (const [name, load] of Object.entries(BENCHMARKS)) {
  if (only && !only.includes(name)) continue;
  console.log(`\n=== ${name} ===`);
  try {
    await (await load()).run();
  } catch (error) {
    // one broken benchmark must not hide the figures of the others
    console.error(`benchmark ${name} failed:`, error);
    failed.push(name);
  }
}
if (failed.length) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
