// The agent-status HTTP API: request and response schemas of the edge functions, defined once and
// used by the functions, the SDKs and the dashboard. docs/api.md explains them.
export * from './errors.ts';
export * from './agent.ts';
export * from './heartbeat.ts';
export * from './report.ts';
export * from './command.ts';
export * from './paths.ts';
export * from './parse.ts';
