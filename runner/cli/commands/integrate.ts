// `agent-status integrate <files...>`: the seed's add_status_to_agents.py for Python and TypeScript
// agents. Backs each file up before changing it, is idempotent (a second run changes nothing),
// shows a unified diff instead with --dry-run, and says where a heartbeat call still needs to go.
// Nothing is written until every file's new text and the Python module are in hand, and the new files
// replace the old ones only once all of them are written: a failure leaves every file as it was.
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { execa } from 'execa';
import { REPO_ROOT } from '../../paths.ts';
import { action, subcommand } from './action.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { painter, printJson } from './output.ts';
import { integratePython } from './integrate-python.ts';
import { integrateTypeScript } from './integrate-typescript.ts';
import type { Integration } from './integration.ts';

interface IntegrateOptions {
  name?: string;
  sdk?: string;
  dryRun?: boolean;
  json?: boolean;
}

const LANGUAGES: Record<string, 'python' | 'typescript'> = {
  '.py': 'python',
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
};

/** "tweet_scraping_agent.py" -> "Tweet Scraping Agent", as the seed named its agents. */
export function agentNameFromFile(file: string): string {
  return basename(file, extname(file))
    .split(/[\s_.-]+/)
    .filter(Boolean)
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join(' ');
}

/** The Python module the integrated agents import; shipped in the package (package.json "files"). */
export const PYTHON_MODULE = join(REPO_ROOT, 'shared', 'python', 'agent_status_updater.py');

/** The SDK as a relative import from `file`'s folder. */
function sdkImport(file: string): string {
  const path = relative(dirname(file), join(REPO_ROOT, 'shared', 'sdk', 'index.ts'))
    .split('\\')
    .join('/');
  return path.startsWith('.') ? path : `./${path}`;
}

function backupPath(file: string): string {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? `${file}.bak` : `${file}.bak.${n}`;
    if (!existsSync(candidate)) return candidate;
  }
}

async function unifiedDiff(file: string, updated: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-integrate-'));
  try {
    const other = join(dir, basename(file));
    writeFileSync(other, updated);
    const result = await execa('diff', ['-u', '--label', `a/${basename(file)}`, '--label', `b/${basename(file)}`, file, other], {
      reject: false,
    });
    if (result.exitCode !== 0 && result.exitCode !== 1)
      throw new CliError(
        `diff failed: ${result.stderr || result.shortMessage}`,
        EXIT.failed,
        'Install diffutils, or run without --dry-run.',
      );
    return result.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readPythonModule(): string {
  try {
    return readFileSync(PYTHON_MODULE, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read the Python module the agents import (${(error as Error).message}); no file was changed`,
      EXIT.failed,
      'Reinstall agent-status from its package, or pip install agent-status-updater on the host and run integrate again.',
    );
  }
}

/**
 * Writes every backup and new text to a temporary file beside its target first, then renames them all
 * into place: a failure while writing (a full disk, a read-only folder) removes what was written and
 * leaves every file as it was.
 */
function writeAll(writes: { path: string; text: string; mode?: number; backup?: string }[]): void {
  const written: string[] = [];
  try {
    for (const write of writes) {
      if (write.backup) {
        writeFileSync(write.backup, readFileSync(write.path), { flag: 'wx' });
        written.push(write.backup);
      }
      const temporary = `${write.path}.agent-status.tmp`;
      writeFileSync(temporary, write.text, { mode: write.mode });
      written.push(temporary);
    }
  } catch (error) {
    for (const path of written) rmSync(path, { force: true });
    throw new CliError(
      `${(error as Error).message}; no file was changed`,
      EXIT.failed,
      'Make the folders writable (and check free space), then run integrate again.',
    );
  }
  for (const write of writes) renameSync(`${write.path}.agent-status.tmp`, write.path);
}

function integrateFile(file: string, options: IntegrateOptions): Integration & { language: string } {
  const language = LANGUAGES[extname(file)];
  const source = readFileSync(file, 'utf8');
  const name = options.name ?? agentNameFromFile(file);
  const result = language === 'python' ? integratePython(source, name) : integrateTypeScript(source, name, options.sdk ?? sdkImport(file));
  return { ...result, language };
}

export function registerIntegrate(program: Command): void {
  subcommand(
    program,
    'integrate <files...>',
    'add status reporting to Python and TypeScript agent files (backup first; a second run changes nothing)',
  )
    .option(
      '--name <agent>',
      'the agent name (one file only; default: from the file name, e.g. tweet_scraping_agent.py -> "Tweet Scraping Agent")',
    )
    .option(
      '--sdk <specifier>',
      "TypeScript: where to import the SDK from (default: a relative path to this package's shared/sdk/index.ts)",
    )
    .option('--dry-run', 'show the changes as a diff and write nothing')
    .option('--json', 'print what was done per file as JSON')
    .action(
      action(async (files: string[], options: IntegrateOptions) => {
        if (options.name !== undefined && files.length > 1) {
          throw new CliError(
            '--name names one agent, but more than one file was given',
            EXIT.usage,
            'Integrate one file at a time with --name, or leave it out to name each agent after its file.',
          );
        }
        // Check every file before changing any, so a typo does not leave half the files integrated.
        const paths = files.map((file) => resolve(file));
        for (const [i, path] of paths.entries()) {
          if (!existsSync(path) || !statSync(path).isFile()) throw new CliError(`no such file: ${files[i]}`, EXIT.notFound);
          if (!LANGUAGES[extname(path)]) {
            throw new CliError(
              `${files[i]}: only Python (.py) and TypeScript (.ts, .mts, .cts) agents can be integrated`,
              EXIT.usage,
              'Any other program can report with no code change: agent-status run --name <agent> -- <command>',
            );
          }
        }
        const paint = painter();
        const results = paths.map((path) => integrateFile(path, options));
        // The Python agents import agent_status_updater: beside them unless it is there already (or
        // the agents would die with ModuleNotFoundError at their first run).
        const pythonFolders = new Set(
          paths.filter((_, i) => results[i].language === 'python' && results[i].status === 'integrated').map((path) => dirname(path)),
        );
        const moduleTargets = [...pythonFolders].map((folder) => join(folder, 'agent_status_updater.py')).filter((t) => !existsSync(t));
        const pythonModule = moduleTargets.length ? readPythonModule() : '';
        const writes: { path: string; text: string; mode?: number; backup?: string }[] = [];
        for (const [i, path] of paths.entries()) {
          if (results[i].status !== 'integrated') continue;
          writes.push({ path, text: results[i].source, mode: statSync(path).mode, backup: backupPath(path) });
        }
        for (const target of moduleTargets) writes.push({ path: target, text: pythonModule });
        if (!options.dryRun) writeAll(writes);

        const report = [];
        for (const [i, path] of paths.entries()) {
          const result = results[i];
          const changed = result.status === 'integrated';
          const backup = options.dryRun ? undefined : writes.find((write) => write.path === path)?.backup;
          const diff = changed && options.dryRun ? await unifiedDiff(path, result.source) : undefined;
          report.push({
            file: files[i],
            language: result.language,
            status: result.status,
            agent_name: result.agentName ?? null,
            changed: changed && !options.dryRun,
            backup: backup ?? null,
            heartbeat_hints: result.hints,
          });
          if (options.json) continue;
          if (diff) process.stdout.write(`${diff}\n`);
          const what = !changed
            ? result.status
            : options.dryRun
              ? `would integrate as ${JSON.stringify(result.agentName)} (dry run: nothing written)`
              : `integrated as ${JSON.stringify(result.agentName)}; the original is in ${relative(process.cwd(), backup!) || backup}`;
          process.stdout.write(`${paint.bold(files[i])}: ${what}\n`);
          for (const hint of result.hints) {
            process.stdout.write(
              `  ${paint.yellow('heartbeat:')} line ${hint.line} \`${hint.code}\` looks like the main loop: add ` +
                `${hint.add} inside it, so a hung loop shows\n`,
            );
          }
          if (changed && !result.hints.length) {
            process.stdout.write(
              `  ${paint.yellow('heartbeat:')} no main loop found: call ` +
                `${result.language === 'python' ? 'asu.send_heartbeat(AGENT_NAME)' : 'agentStatus.heartbeat()'} where ` +
                `the agent does its recurring work\n`,
            );
          }
        }
        const copied = moduleTargets.map((target) => relative(process.cwd(), target) || target);
        if (options.json) printJson(report);
        for (const target of copied) {
          if (!options.json) {
            process.stdout.write(
              `${options.dryRun ? 'would copy' : 'copied'} the Python module the agents import to ${target} ` +
                `(or pip install ${join(REPO_ROOT, 'shared', 'python')})\n`,
            );
          }
        }
        if (report.some((r) => r.changed) && !options.json) {
          process.stdout.write(
            `\nRun the agent with AGENT_STATUS_URL and AGENT_STATUS_TOKEN set (agent-status token create agent --name "<agent>").\n` +
              `Between marker lines the added code is yours to edit. Once started, the SDK heartbeats every 30 s by itself until ` +
              `the agent calls send_heartbeat (heartbeat()) itself; from then on it is judged by those calls.\n`,
          );
        }
      }),
    );
}
