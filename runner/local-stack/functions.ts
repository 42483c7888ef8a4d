// Edge functions under supabase/functions/<name>/index.ts, each served by the real Deno (npm package
// `deno`) in its own process on its own port, as a deployed function runs in its own isolate. Folders
// starting with `_` hold shared code, not functions.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FUNCTIONS_DIR, REPO_ROOT, SUPABASE_CONFIG as CONFIG_TOML } from '../paths.ts';
import { freePort } from './ports.ts';
import { waitUntil, answers } from './wait.ts';
import type { Supervisor, SupervisedChild } from './children.ts';

const require = createRequire(import.meta.url);

export function denoBinary(): string {
  try {
    return join(dirname(require.resolve('deno/package.json')), 'deno');
  } catch {
    throw new Error('Deno is not installed. Run npm install (the npm package deno provides it).');
  }
}

/** Names of the functions in dir: folders with an index.ts, except shared ones (`_shared`). */
export function listFunctions(dir = FUNCTIONS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('_') && !entry.name.startsWith('.'))
    .filter((entry) => existsSync(join(dir, entry.name, 'index.ts')))
    .map((entry) => entry.name)
    .sort();
}

/**
 * Whether the platform checks the caller's JWT before the function runs: true unless config.toml
 * says `verify_jwt = false` in the function's `[functions.<name>]` table, as on Supabase.
 */
export function verifiesJwt(name: string, configToml = CONFIG_TOML): boolean {
  if (!existsSync(configToml)) return true;
  let section = '';
  for (const raw of readFileSync(configToml, 'utf8').split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      section = header[1].replace(/"/g, '');
      continue;
    }
    const setting = /^verify_jwt\s*=\s*(true|false)$/.exec(line);
    if (setting && section === `functions.${name}`) return setting[1] === 'true';
  }
  return true;
}

/**
 * What the platform gives every function: the URL, the database, and the keys of one style; what a
 * project sets as secrets of ours: the pooled database URL and the pool size; and, from the local
 * stack only, the key its alert timer presents to the dispatch function.
 */
export type FunctionEnv = {
  SUPABASE_URL: string;
  SUPABASE_DB_URL: string;
  AGENT_STATUS_DB_URL?: string;
  AGENT_STATUS_DB_POOL?: string;
  AGENT_STATUS_DISPATCH_KEY?: string;
} & Partial<
  Record<'SUPABASE_ANON_KEY' | 'SUPABASE_SERVICE_ROLE_KEY' | 'SUPABASE_PUBLISHABLE_KEYS' | 'SUPABASE_SECRET_KEYS' | 'SUPABASE_JWKS', string>
>;

export interface ServedFunction {
  name: string;
  port: number;
  verifyJwt: boolean;
  child: SupervisedChild;
}

export async function startFunction(
  name: string,
  options: {
    supervisor: Supervisor;
    env: FunctionEnv;
    dir?: string;
    /**
     * Deno's working folder, whose deno.json is the import map (default: the repository). The deploy
     * test points it at the files the Supabase CLI uploaded, unpacked on their own.
     */
    root?: string;
    log?: (line: string) => void;
    /**
     * Reload the function when its code (or shared/) changes, like `supabase functions serve`. A
     * function that fails to load then waits for a fix instead of exiting.
     */
    watch?: boolean;
  },
): Promise<ServedFunction> {
  const dir = options.dir ?? FUNCTIONS_DIR;
  const port = await freePort();
  let failedToLoad = false;
  const child = options.supervisor.spawn({
    name: `edge function ${name}`,
    command: denoBinary(),
    args: [
      'run',
      // Permissions of a deployed function: network, its environment, reading its code; /tmp to write.
      '--allow-net',
      '--allow-env',
      '--allow-read',
      '--allow-sys',
      '--allow-write=/tmp',
      '--no-prompt',
      ...(options.watch ? [`--watch=${dir},${join(REPO_ROOT, 'shared')}`, '--no-clear-screen'] : []),
      join(REPO_ROOT, 'runner', 'local-stack', 'deno', 'serve-function.ts'),
      join(dir, name, 'index.ts'),
    ],
    cwd: options.root ?? REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DENO_DIR: process.env.DENO_DIR,
      DENO_NO_UPDATE_CHECK: '1',
      NO_COLOR: '1',
      ...options.env,
      AGENT_STATUS_FUNCTION_PORT: String(port),
    },
    installHint: 'Run npm install (the npm package deno provides the binary).',
    onLine: (line) => {
      if (/Watcher Process failed/i.test(line)) failedToLoad = true;
      options.log?.(line);
    },
  });
  let exited = false;
  void child.exited.then(() => (exited = true));
  await waitUntil(`edge function ${name} listening`, async () => failedToLoad || (await answers(`http://127.0.0.1:${port}/`)), {
    timeoutMs: 60_000,
    failed: () => (exited ? 'Deno exited while loading it' : undefined),
  });
  if (failedToLoad) options.log?.(`${name} failed to load (see above); it is served again as soon as its code is fixed`);
  child.ready();
  return { name, port, verifyJwt: verifiesJwt(name), child };
}
