// The runner's config file: one YAML file per host listing the agents it supervises. Validated on
// load; every error names the file, line, column and field, and says what is expected.
import { readFileSync } from 'node:fs';
import { constants as osConstants, homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { LIMITS } from '../../shared/status.ts';
import { REPO_ROOT } from '../paths.ts';
import { secretKeyProblem } from '../../shared/keys.ts';

// The reference for every field, shipped in the package beside the runner (package.json "files").
const RUNNER_README = join(REPO_ROOT, 'runner', 'README.md');

const UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const UNITS_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const;

// Durations are written `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
const duration = z
  .union([z.number().nonnegative(), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, { error: 'must be a duration like 500ms, 10s, 2m or 1h' })])
  .transform((value) => {
    if (typeof value === 'number') return Math.round(value * 1000);
    const [, amount, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value)!;
    return Math.round(Number(amount) * UNITS_MS[unit as keyof typeof UNITS_MS]);
  });

const byteSize = z
  .union([z.number().int().positive(), z.string().regex(/^\d+\s*(b|kb|mb|gb)$/i, { error: 'must be a size like 512KB, 10MB or 1GB' })])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const [, amount, unit] = /^(\d+)\s*(b|kb|mb|gb)$/i.exec(value)!;
    return Number(amount) * UNITS_BYTES[unit.toLowerCase() as keyof typeof UNITS_BYTES];
  });

const signalName = z.string().refine((name) => name in osConstants.signals && name.startsWith('SIG'), {
  error: (issue) => `must be a signal name like SIGTERM, SIGINT or SIGQUIT, got ${JSON.stringify(issue.input)}`,
});

const agentName = z
  .string()
  .min(1, { error: 'must not be empty' })
  .max(LIMITS.agentName, { error: `must be at most ${LIMITS.agentName} characters` })
  .refine((name) => name === name.trim(), { error: 'must not start or end with spaces' })
  .refine((name) => !/[\p{Cc}]/u.test(name), { error: 'must not contain control characters' });

const pattern = z.string().refine(
  (source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'must be a valid regular expression (JavaScript syntax)' },
);

export const RESTART_POLICIES = ['never', 'on-failure', 'always'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

const agentSchema = z.strictObject({
  name: agentName,
  command: z.string().min(1, { error: 'must name the program to run' }),
  args: z.array(z.string()).prefault([]),
  /** Relative to the config file's folder. */
  cwd: z.string().optional(),
  env: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).prefault({}),
  restart: z.enum(RESTART_POLICIES, { error: 'must be never, on-failure or always' }).prefault('on-failure'),
  /** Start the agent when the runner starts, if it is not running already. */
  autostart: z.boolean().prefault(false),
  stop_signal: signalName.prefault('SIGTERM'),
  stop_timeout: duration.prefault('10s'),
  /** An exit sooner than this after a start is a failed start (supervisord's startsecs, PM2's min_uptime). */
  min_uptime: duration.prefault('1s'),
  backoff: z
    .strictObject({
      initial: duration.prefault('1s'),
      max: duration.prefault('60s'),
      /** Quick exits in a row before the runner gives up and reports the crash loop. */
      max_retries: z.number().int().min(0).max(1000).prefault(5),
      /** A run this long ends a crash loop: the backoff starts again from nothing, and the agent reads running. */
      reset_after: duration.prefault('30s'),
    })
    .prefault({}),
  heartbeat_timeout: duration.refine((ms) => ms >= 5000 && ms <= 86_400_000, { error: 'must be between 5s and 24h' }).optional(),
  /** Regular expression over the full command line, for a copy of the agent started outside the runner. */
  match: pattern.optional(),
  logs: z
    .strictObject({
      max_size: byteSize.prefault('10MB'),
      /** Rotated files kept beside the current one. */
      keep: z.number().int().min(0).max(20).prefault(1),
    })
    .prefault({}),
});

const configSchema = z
  .strictObject({
    supabase: z
      .strictObject({
        /** Project URL; else $SUPABASE_URL. */
        url: z.url({ error: 'must be the project URL, like https://xyz.supabase.co or http://127.0.0.1:54321' }).optional(),
        /** Publishable key (sb_publishable_... or the legacy anon key); else $SUPABASE_PUBLISHABLE_KEY or $SUPABASE_ANON_KEY. Never a secret key. */
        anon_key: z.string().min(1).optional(),
        /** File holding the runner token; else $AGENT_STATUS_RUNNER_TOKEN. Relative to the config file. */
        token_file: z.string().min(1).optional(),
        /** Subscribe to Realtime to wake the poll loop early; polling stays the truth. */
        realtime: z.boolean().prefault(false),
      })
      .prefault({}),
    runner: z
      .strictObject({
        /** Lock file, state file and agent logs; relative to the config file. */
        state_dir: z.string().min(1).optional(),
        poll_interval: duration.refine((ms) => ms >= 50, { error: 'must be at least 50ms' }).prefault('250ms'),
        heartbeat_interval: duration.refine((ms) => ms >= 1000, { error: 'must be at least 1s' }).prefault('30s'),
        /** How often processes the runner knows about are checked (pid still theirs, logs rotated). */
        check_interval: duration.refine((ms) => ms >= 100, { error: 'must be at least 100ms' }).prefault('1s'),
        /** How often each agent's CPU and memory are read from /proc and sent (one sample a minute is kept). */
        resources_interval: duration.refine((ms) => ms >= 1000, { error: 'must be at least 1s' }).prefault('60s'),
        /** How often the whole process table is searched for agents started outside the runner. */
        scan_interval: duration.refine((ms) => ms >= 1000, { error: 'must be at least 1s' }).prefault('30s'),
        /** Stop the agents when the runner stops (default: leave them running, e.g. for an upgrade). */
        stop_agents_on_exit: z.boolean().prefault(false),
      })
      .prefault({}),
    agents: z.array(agentSchema).min(1, { error: 'must list at least one agent' }),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.agents.forEach((agent, index) => {
      if (seen.has(agent.name)) {
        ctx.addIssue({ code: 'custom', path: ['agents', index, 'name'], message: `agent ${JSON.stringify(agent.name)} is listed twice` });
      }
      seen.add(agent.name);
    });
  });

export type AgentConfig = z.output<typeof agentSchema>;

export interface RunnerConfig {
  file: string;
  supabase: { url: string; anonKey: string; token: string; realtime: boolean };
  runner: {
    stateDir: string;
    pollIntervalMs: number;
    heartbeatIntervalMs: number;
    checkIntervalMs: number;
    scanIntervalMs: number;
    resourcesIntervalMs: number;
    stopAgentsOnExit: boolean;
  };
  agents: AgentConfig[];
}

/** A config file that failed validation; `problems` lists every error, one line each. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file} is not a valid runner config:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

function fieldLabel(path: readonly PropertyKey[], raw: unknown): string {
  let label = '';
  let node: unknown = raw;
  for (const key of path) {
    if (typeof key === 'number') {
      const name = (node as { agents?: unknown; name?: unknown }[] | undefined)?.[key]?.name;
      label += `[${key}]${typeof name === 'string' ? ` (${name})` : ''}`;
    } else {
      label += (label ? '.' : '') + String(key);
    }
    node = (node as Record<PropertyKey, unknown> | undefined)?.[key as never];
  }
  return label || 'the file';
}

// The position of the deepest node of `path` that exists in the document (a missing field is
// reported where its parent is).
function position(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as (string | number)[], true) as { range?: [number, number, number] } | undefined;
    if (node?.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return `${line}:${col}`;
    }
  }
  return '1:1';
}

function keyPosition(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key: string): string {
  const parent = path.length ? doc.getIn(path as (string | number)[], true) : doc.contents;
  if (isMap(parent)) {
    const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === key);
    const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
    if (range) {
      const { line, col } = lines.linePos(range[0]);
      return `${line}:${col}`;
    }
  }
  return position(doc, lines, path);
}

export interface LoadOptions {
  /** Defaults to process.env; tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** Overrides runner.state_dir. */
  stateDir?: string;
}

/** Parses and validates a config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, options: LoadOptions = {}): RunnerConfig {
  const env = options.env ?? process.env;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        return `${file}:${at ? `${at.line}:${at.col}` : '1:1'}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const raw = doc.toJS() ?? {};
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.map((issue) => {
        if (issue.code === 'unrecognized_keys') {
          const key = issue.keys[0];
          return (
            `${file}:${keyPosition(doc, lines, issue.path, key)}: ${fieldLabel([...issue.path, key], raw)}: unknown field` +
            (issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : '') +
            `; check its spelling against ${RUNNER_README}`
          );
        }
        return `${file}:${position(doc, lines, issue.path)}: ${fieldLabel(issue.path, raw)}: ${issue.message}`;
      }),
    );
  }
  const parsed = result.data;
  const base = dirname(resolve(file));
  const fromBase = (path: string) => (isAbsolute(path) ? path : join(base, path));

  const problems: string[] = [];
  const url = parsed.supabase.url ?? env.SUPABASE_URL;
  const anonKey = parsed.supabase.anon_key ?? env.SUPABASE_PUBLISHABLE_KEY ?? env.SUPABASE_ANON_KEY;
  let token = env.AGENT_STATUS_RUNNER_TOKEN;
  if (parsed.supabase.token_file) {
    const tokenFile = fromBase(parsed.supabase.token_file);
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (error) {
      problems.push(
        `${file}:${position(doc, lines, ['supabase', 'token_file'])}: supabase.token_file: cannot read ${tokenFile}: ` +
          `${(error as Error).message}`,
      );
    }
  }
  if (!url) problems.push(`${file}: supabase.url is missing: set it in the file or in $SUPABASE_URL`);
  if (!anonKey) {
    problems.push(`${file}: supabase.anon_key is missing: set the publishable key in the file or in $SUPABASE_PUBLISHABLE_KEY`);
  } else if (secretKeyProblem(anonKey)) {
    problems.push(
      `${file}: supabase.anon_key must be the publishable key (sb_publishable_... or the legacy anon key), but ${secretKeyProblem(anonKey)}: ` +
        'a host never holds a secret key; rotate it if it was copied here',
    );
  }
  if (!token && !problems.some((p) => p.includes('token_file'))) {
    problems.push(
      `${file}: the runner token is missing: set $AGENT_STATUS_RUNNER_TOKEN or supabase.token_file (create one with: ` +
        `agent-status token create runner --host <host>)`,
    );
  } else if (token && !token.startsWith('asr_')) {
    problems.push(`${file}: the runner token must be a runner token (it starts with asr_); never give the runner a service or secret key`);
  }
  if (problems.length) throw new ConfigError(file, problems);

  const stateHome = env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
  return {
    file: resolve(file),
    supabase: { url: url!, anonKey: anonKey!, token: token!, realtime: parsed.supabase.realtime },
    runner: {
      stateDir: options.stateDir ?? (parsed.runner.state_dir ? fromBase(parsed.runner.state_dir) : join(stateHome, 'agent-status')),
      pollIntervalMs: parsed.runner.poll_interval,
      heartbeatIntervalMs: parsed.runner.heartbeat_interval,
      checkIntervalMs: parsed.runner.check_interval,
      scanIntervalMs: parsed.runner.scan_interval,
      resourcesIntervalMs: parsed.runner.resources_interval,
      stopAgentsOnExit: parsed.runner.stop_agents_on_exit,
    },
    agents: parsed.agents.map((agent) => ({ ...agent, cwd: fromBase(agent.cwd ?? '.') })),
  };
}

/** Reads, parses and validates the config file. Throws ConfigError with every problem found. */
export function loadConfig(file: string, options: LoadOptions = {}): RunnerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the config file: ${(error as Error).message}`]);
  }
  return parseConfig(text, file, options);
}
