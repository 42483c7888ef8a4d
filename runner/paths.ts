// Where things are in the repository, computed once from this file's place. It sits one folder below
// the root, as the bundled runner (dist/agent-status-runner.mjs) does, so both resolve the same root.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FUNCTIONS_DIR = join(REPO_ROOT, 'supabase', 'functions');
export const MIGRATIONS_DIR = join(REPO_ROOT, 'supabase', 'migrations');
export const SCHEMAS_DIR = join(REPO_ROOT, 'supabase', 'schemas');
export const SUPABASE_CONFIG = join(REPO_ROOT, 'supabase', 'config.toml');
export const CLI_ENTRY = join(REPO_ROOT, 'runner', 'cli', 'main.ts');

/** The version in package.json: what `--version` prints and what a runner registers with. */
export const PACKAGE_VERSION: string = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;
