// Where the API is and who the CLI is, from flags, then the environment, then the local stack's
// .agent-status/local.json. Operators authenticate with an operator token (sent as p_operator_token
// with the publishable key, so no service key ever leaves the server) or by signing in with email and
// password through Supabase Auth, as the dashboard does. Every call goes through rpc(), which turns
// the SQL API's SQLSTATEs into exit codes and hints.
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { Option, type Command } from 'commander';
import { SQLSTATE_ERROR, type ErrorCode } from '../../../shared/api/errors.ts';
import { secretKeyProblem } from '../../../shared/keys.ts';
import { retryableStatus } from '../../../shared/process-manager.ts';
import { CliError, EXIT, type ExitCode } from '../../exit-codes.ts';
import {
  DEFAULT_DATA_DIR,
  isLocalStackRunning,
  localDataDir,
  localStackFile,
  readLocalStackIfPresent,
  runningStackDirs,
} from '../../local-stack/connection-file.ts';

export interface ConnectionFlags {
  url?: string;
  anonKey?: string;
  token?: string;
  user?: string;
}

/** Adds --url, --anon-key, --token and --user (each with its environment variable). */
export function connectionOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'Supabase project URL').env('AGENT_STATUS_URL'))
    .addOption(new Option('--anon-key <key>', 'publishable (anon) key').env('AGENT_STATUS_ANON_KEY'))
    .addOption(new Option('--token <token>', 'operator token (aso_...)').env('AGENT_STATUS_OPERATOR_TOKEN'))
    .addOption(new Option('--user <email>', 'sign in as this operator (password from AGENT_STATUS_PASSWORD)').env('AGENT_STATUS_EMAIL'));
}

const EXIT_FOR: Record<ErrorCode, ExitCode> = {
  invalid_json: EXIT.usage,
  invalid_request: EXIT.usage,
  unauthorized: EXIT.auth,
  forbidden: EXIT.auth,
  not_found: EXIT.notFound,
  method_not_allowed: EXIT.failed,
  conflict: EXIT.conflict,
  payload_too_large: EXIT.usage,
  unprocessable: EXIT.usage,
  too_many_requests: EXIT.unreachable,
  internal: EXIT.failed,
  unavailable: EXIT.unreachable,
};

interface ApiFailure {
  message: string;
  code?: string;
  hint?: string | null;
  details?: string | null;
}

/** The CliError for a failed request to `url` (status 0: no answer at all). */
export function apiError(url: string, status: number, error: ApiFailure): CliError {
  if (status === 0) {
    const cause = /Caused by: \w+: (.*)/.exec(error.details ?? '')?.[1] ?? error.message;
    return new CliError(
      `cannot reach the API at ${url}: ${cause}`,
      EXIT.unreachable,
      'Is the stack running? Start it locally with `npm start`, or check AGENT_STATUS_URL / --url.',
    );
  }
  const code = error.code ? SQLSTATE_ERROR[error.code] : undefined;
  if (code) return new CliError(error.message, EXIT_FOR[code], error.hint || undefined);
  if (error.code === 'PGRST202' || error.code === '42883') {
    return new CliError(
      `the API has no such function: ${error.message}`,
      EXIT.failed,
      'The database is missing migrations: run `npx supabase db push` (a local stack applies them when it starts).',
    );
  }
  if (status === 401 || status === 403) {
    return new CliError(error.message, EXIT.auth, error.hint || 'Check the publishable key (--anon-key / AGENT_STATUS_ANON_KEY).');
  }
  if (status === 503 || status === 502 || status === 504) {
    return new CliError(`the API at ${url} answered ${status}: ${error.message}`, EXIT.unreachable, error.hint || undefined);
  }
  return new CliError(`the API answered ${status}: ${error.message}`, EXIT.failed, error.hint || error.details || undefined);
}

export interface Api {
  url: string;
  anonKey: string;
  /** who the CLI acts as: "operator token aso_abc123" or "operator@example.com" */
  who: string;
  /** Calls an operator function of the SQL API (p_operator_token is added when a token is used). */
  rpc<T>(fn: string, args?: Record<string, unknown>): Promise<T>;
  /** Calls a function that takes no operator identity (verify_api_token). */
  rpcAnonymous<T>(fn: string, args?: Record<string, unknown>): Promise<T>;
  /**
   * Every row of an operator function that returns a set in pages: the function takes p_after (the
   * last `key` seen, unique, in its order) and p_limit, so each page is a range the database reads,
   * not the whole set cut by PostgREST. PostgREST answers at most its max-rows (1,000 on Supabase)
   * per request, and `list` once stopped there without a word.
   */
  rpcAll<T extends Record<string, unknown>>(fn: string, key: keyof T & string, args?: Record<string, unknown>): Promise<T[]>;
}

// Rows asked for per page: PostgREST's max-rows on Supabase and in the local stack.
const PAGE_ROWS = 1000;

interface Resolved {
  url: string;
  anonKey: string;
  token?: string;
  email?: string;
  password?: string;
}

/** The same API: scheme, port and host, with localhost and 127.0.0.1 taken as one, trailing slashes ignored. */
export function sameApi(a: string, b: string): boolean {
  const key = (url: string) => {
    try {
      const u = new URL(url);
      return `${u.protocol}//${u.hostname === 'localhost' ? '127.0.0.1' : u.hostname}:${u.port}${u.pathname.replace(/\/+$/, '')}`;
    } catch {
      return url;
    }
  };
  return key(a) === key(b);
}

/**
 * The local stack's data folder: AGENT_STATUS_DATA_DIR when set; else the default folder while a stack
 * runs there; else the one stack this user started elsewhere (`npm start -- --data-dir`), as it
 * recorded itself; else the default folder.
 */
export function localStackDir(): string {
  if (process.env.AGENT_STATUS_DATA_DIR) return localDataDir();
  const inDefault = readLocalStackIfPresent(DEFAULT_DATA_DIR);
  if (inDefault && isLocalStackRunning(inDefault)) return DEFAULT_DATA_DIR;
  const elsewhere = runningStackDirs();
  if (elsewhere.length > 1) {
    throw new CliError(
      `${elsewhere.length} local stacks are running, in ${elsewhere.join(', ')}: say which one`,
      EXIT.usage,
      `Set AGENT_STATUS_DATA_DIR to its folder, e.g. export AGENT_STATUS_DATA_DIR=${elsewhere[0]}`,
    );
  }
  return elsewhere[0] ?? DEFAULT_DATA_DIR;
}

function resolve(flags: ConnectionFlags): Resolved {
  // A running `npm start` gives its keys and operator to the CLI also when AGENT_STATUS_URL names it
  // (as the quick start exports it); a URL of another API ignores it.
  const dataDir = localStackDir();
  const found = readLocalStackIfPresent(dataDir);
  const local = !flags.url || (found && sameApi(flags.url, found.url)) ? found : undefined;
  if (local && !isLocalStackRunning(local)) {
    throw new CliError(
      `the local stack is not running (${localStackFile(dataDir)} names process ${local.pid}, which is gone)`,
      EXIT.unreachable,
      'Start it with `npm start` in the project, or set AGENT_STATUS_URL for a Supabase project.',
    );
  }
  const url = flags.url ?? local?.url;
  const anonKey = flags.anonKey ?? local?.anonKey;
  if (!url) {
    throw new CliError(
      'no API to talk to: no --url, no AGENT_STATUS_URL and no local stack running here',
      EXIT.usage,
      'Start the local stack with `npm start` in the project, or set AGENT_STATUS_URL and AGENT_STATUS_ANON_KEY to your ' +
        'Supabase project URL and publishable key.',
    );
  }
  if (!/^https?:\/\//.test(url)) throw new CliError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`, EXIT.usage);
  if (!anonKey) {
    throw new CliError(
      `no publishable key for ${url}`,
      EXIT.usage,
      "Set AGENT_STATUS_ANON_KEY (or --anon-key) to the project's publishable key (sb_publishable_..., or the legacy anon key): " +
        'Supabase dashboard > Project Settings > API Keys.',
    );
  }
  const secret = secretKeyProblem(anonKey);
  if (secret) {
    throw new CliError(
      `the key given as the publishable key is not one: ${secret}`,
      EXIT.usage,
      "Set AGENT_STATUS_ANON_KEY (or --anon-key) to the project's publishable key (sb_publishable_..., or the legacy anon key); " +
        'operators sign in or use an operator token, never a secret key.',
    );
  }
  const email = flags.user ?? (flags.token ? undefined : local?.operator?.email);
  const password = flags.user ? process.env.AGENT_STATUS_PASSWORD : local?.operator?.password;
  return { url: url.replace(/\/+$/, ''), anonKey, token: flags.token, email, password };
}

/**
 * Connects as an operator. With `signIn: false` it only needs the URL and key (doctor's first check);
 * operator functions then fail with EXIT.auth and a hint.
 */
export async function connect(flags: ConnectionFlags, options: { signIn?: boolean } = {}): Promise<Api> {
  const { url, anonKey, token, email, password } = resolve(flags);
  const client = createClient(url, anonKey, {
    realtime: { transport: WebSocket as never },
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    db: { schema: 'public' },
  });
  let who = 'anonymous';
  if (token) {
    if (!/^aso_/.test(token)) {
      throw new CliError(
        `--token / AGENT_STATUS_OPERATOR_TOKEN must be an operator token (aso_...), got one starting ${JSON.stringify(token.slice(0, 4))}`,
        EXIT.usage,
        'Create one with: agent-status token create operator --email <operator email>',
      );
    }
    who = `operator token ${token.slice(0, 10)}`;
  } else if (email && options.signIn !== false) {
    if (!password) {
      throw new CliError(
        `no password for ${email}`,
        EXIT.usage,
        'Set AGENT_STATUS_PASSWORD, or use an operator token (AGENT_STATUS_OPERATOR_TOKEN).',
      );
    }
    const { error } = await client.auth.signInWithPassword({ email, password });
    if (error) {
      if (!error.status) throw apiError(url, 0, { message: error.message, details: `Caused by: Error: ${error.message}` });
      throw new CliError(
        `cannot sign in as ${email}: ${error.message}`,
        EXIT.auth,
        'Check the email and AGENT_STATUS_PASSWORD, or use an operator token (AGENT_STATUS_OPERATOR_TOKEN).',
      );
    }
    who = email;
  }

  const call = async <T>(fn: string, args: Record<string, unknown>): Promise<T> => {
    const { data, error, status } = await client.rpc(fn, args);
    // retryable: shared/process-manager.ts sends a command again (with its key) after no answer or a 5xx
    if (error) throw Object.assign(apiError(url, status, error), { retryable: retryableStatus(status) });
    return data as T;
  };
  return {
    url,
    anonKey,
    who,
    rpc: (fn, args = {}) => call(fn, { ...args, p_operator_token: token ?? null }),
    rpcAnonymous: (fn, args = {}) => call(fn, args),
    async rpcAll<T extends Record<string, unknown>>(fn: string, key: keyof T & string, args: Record<string, unknown> = {}) {
      const rows: T[] = [];
      for (let last: unknown = null; ; ) {
        const page = await call<T[]>(fn, { ...args, p_operator_token: token ?? null, p_after: last, p_limit: PAGE_ROWS });
        // Only an empty page ends the list: a project whose max-rows is below PAGE_ROWS answers
        // short pages that are not the last.
        if (!page.length) return rows;
        rows.push(...page);
        last = page[page.length - 1][key];
      }
    },
  };
}
