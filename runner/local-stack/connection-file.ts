// Where `npm start` writes how to reach the local stack (.agent-status/local.json, git-ignored), so the
// CLI, the tests and the benchmarks read it instead of anyone copying keys by hand. The same folder
// keeps the embedded database; AGENT_STATUS_DATA_DIR (or `npm start -- --data-dir`) moves both.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../paths.ts';

export interface LocalStackInfo {
  /** gateway base URL: /rest/v1, /functions/v1, /auth/v1 and the dashboard at / */
  url: string;
  /** the publishable key: sb_publishable_..., or the anon JWT with legacy keys */
  anonKey: string;
  /** the secret key: sb_secret_..., or the service_role JWT with legacy keys */
  serviceKey: string;
  /** which kind of keys the stack issues (absent in files of older versions: legacy) */
  keyStyle?: 'new' | 'legacy';
  /** superuser connection string of the database */
  dbUrl: string;
  /** the local operator's sign-in */
  operator: { email: string; password: string };
  database: 'pglite' | 'postgres' | 'url';
  /** signs the keys and sessions; kept so keys stay the same across restarts */
  jwtSecret: string;
  /** process id of the `npm start` that wrote this */
  pid: number;
  startedAt: string;
}

export const DEFAULT_DATA_DIR = join(REPO_ROOT, '.agent-status');

export function localDataDir(explicit?: string): string {
  return resolve(explicit ?? process.env.AGENT_STATUS_DATA_DIR ?? DEFAULT_DATA_DIR);
}

export function localStackFile(dataDir = localDataDir()): string {
  return join(dataDir, 'local.json');
}

/** The details the last `npm start` wrote, or undefined when there are none. */
export function readLocalStackIfPresent(dataDir = localDataDir()): LocalStackInfo | undefined {
  const file = localStackFile(dataDir);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as LocalStackInfo;
}

/** The details of the local stack; throws saying how to start it when there are none. */
export function readLocalStack(dataDir = localDataDir()): LocalStackInfo {
  const info = readLocalStackIfPresent(dataDir);
  if (!info) throw new Error(`no local stack details in ${localStackFile(dataDir)}: start the local stack with npm start`);
  return info;
}

/** Whether the `npm start` that wrote these details is still running. */
export function isLocalStackRunning(info: LocalStackInfo): boolean {
  try {
    process.kill(info.pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function writeLocalStack(info: LocalStackInfo, dataDir = localDataDir()): void {
  mkdirSync(dataDir, { recursive: true });
  const file = localStackFile(dataDir);
  // Written whole, then renamed: a reader never sees half a file. Only this user may read the keys.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

// A stack started with --data-dir records itself per user (one file per running `npm start`, named by
// its pid, removed when it stops), so the CLI finds it without AGENT_STATUS_DATA_DIR. A stack killed
// outright leaves its file behind: an entry whose process is gone, or whose folder's local.json names
// another process (the pid was reused), is stale, ignored and removed by the next reader.
export function runningStacksDir(): string {
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'agent-status', 'running');
}

/** Records a running stack's data folder for the CLI; returns what removes the record. */
export function recordRunningStack(dataDir: string, pid = process.pid): () => void {
  const dir = runningStacksDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${pid}.json`);
  writeFileSync(file, `${JSON.stringify({ dataDir: resolve(dataDir), pid })}\n`, { mode: 0o600 });
  return () => rmSync(file, { force: true });
}

/** The data folders of this user's running stacks, as they recorded themselves. */
export function runningStackDirs(): string[] {
  const dir = runningStacksDir();
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return []; // none recorded yet (or a folder we may not read: then none we could use)
  }
  const found: string[] = [];
  for (const name of entries.filter((entry) => entry.endsWith('.json'))) {
    const file = join(dir, name);
    try {
      const entry = JSON.parse(readFileSync(file, 'utf8')) as { dataDir: string; pid: number };
      const info = readLocalStackIfPresent(entry.dataDir);
      if (info && info.pid === entry.pid && isLocalStackRunning(info)) {
        if (!found.includes(entry.dataDir)) found.push(entry.dataDir);
        continue;
      }
    } catch {
      // unreadable: as stale as a record of a process that is gone
    }
    rmSync(file, { force: true });
  }
  return found;
}
