// The Python half of `agent-status integrate`: the seed's add_status_to_agents.py, as a pure text
// transformation. It adds, after the module's imports, what the seed's README asks for by hand
// (import agent_status_updater, AGENT_NAME, signal and exit handlers, error reporting) and marks the
// agent started where execution begins (the top of `if __name__ == "__main__":`, else right there).
// Uncaught exceptions are reported through sys.excepthook, so no code has to be re-indented into a
// try block. Everything added sits between two marker lines, which is also how a second run knows.
import type { HeartbeatHint, Integration } from './integration.ts';

export const PYTHON_MARKER = '# --- agent-status: added by `agent-status integrate` ---';
const END_MARKER = '# --- end of agent-status ---';

function block(agentName: string | undefined, markStartedHere: boolean): string[] {
  return [
    PYTHON_MARKER,
    'import agent_status_updater as asu',
    'import atexit',
    'import signal',
    'import sys',
    '',
    ...(agentName === undefined
      ? []
      : ['# Agent name for status updates - must match exactly what is in the database', `AGENT_NAME = ${JSON.stringify(agentName)}`, '']),
    '',
    'def _agent_status_shutdown(sig, frame):',
    '    """Ctrl+C or SIGTERM: mark the agent stopped, then exit."""',
    '    asu.mark_agent_stopped(AGENT_NAME)',
    '    sys.exit(0)',
    '',
    '',
    'def _agent_status_report_crash(kind, value, traceback):',
    '    """An uncaught exception becomes the agent\'s error before Python prints it."""',
    '    asu.report_error(AGENT_NAME, f"{kind.__name__}: {value}")',
    '    _agent_status_previous_excepthook(kind, value, traceback)',
    '',
    '',
    'signal.signal(signal.SIGINT, _agent_status_shutdown)',
    'signal.signal(signal.SIGTERM, _agent_status_shutdown)',
    'atexit.register(lambda: asu.mark_agent_stopped(AGENT_NAME))',
    '_agent_status_previous_excepthook = sys.excepthook',
    'sys.excepthook = _agent_status_report_crash',
    ...(markStartedHere ? ['asu.mark_agent_started(AGENT_NAME)'] : []),
    END_MARKER,
  ];
}

const TOP_LEVEL_IMPORT = /^(import\s|from\s+\S+\s+import\s)/;
const AGENT_NAME_ASSIGNMENT = /^AGENT_NAME\s*(?::\s*str\s*)?=\s*(['"])(.*)\1\s*(#.*)?$/;
const MAIN_GUARD = /^if\s+__name__\s*==\s*(['"])__main__\1\s*:\s*(#.*)?$/;

/** Index of the line after the module's leading docstring, comments and imports (with continuations). */
function afterImports(lines: string[]): number {
  let i = 0;
  let insertAt = 0;
  // shebang, encoding line and comments at the very top
  while (i < lines.length && (lines[i].startsWith('#') || lines[i].trim() === '')) i++;
  insertAt = i;
  const docstring = /^[rRuU]?("""|''')/.exec(lines[i] ?? '');
  if (docstring) {
    const quote = docstring[1];
    const rest = lines[i].slice(lines[i].indexOf(quote) + 3);
    if (!rest.includes(quote)) {
      i++;
      while (i < lines.length && !lines[i].includes(quote)) i++;
    }
    i++;
    insertAt = i;
  }
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (!TOP_LEVEL_IMPORT.test(line)) break;
    // a parenthesised or backslash-continued import ends on a later line
    if (line.includes('(') && !line.includes(')')) while (i < lines.length - 1 && !lines[i].includes(')')) i++;
    else while (i < lines.length - 1 && lines[i].trimEnd().endsWith('\\')) i++;
    insertAt = i + 1;
  }
  return insertAt;
}

/** Loops that look like the agent's main loop and have no heartbeat yet. */
function heartbeatHints(lines: string[]): HeartbeatHint[] {
  const hints: HeartbeatHint[] = [];
  lines.forEach((line, index) => {
    const loop = /^(\s*)(while\s.*|for\s.*\sin\s.*):\s*(#.*)?$/.exec(line);
    if (!loop) return;
    const indent = loop[1].length;
    let end = index + 1;
    while (end < lines.length && (lines[end].trim() === '' || lines[end].search(/\S/) > indent)) end++;
    const body = lines.slice(index + 1, end).join('\n');
    if (/send_heartbeat|update_agent_status/.test(body)) return;
    // `for` loops over data are everywhere; only endless-looking ones and top-level ones are worth it
    if (!/^\s*while\b/.test(line) && indent > 4) return;
    hints.push({ line: index + 1, code: line.trim(), add: 'asu.send_heartbeat(AGENT_NAME)' });
  });
  return hints;
}

// A top-level statement that does something when the file runs: a loop, a with/try block, a call
// (main(), asyncio.run(...), Agent().run()), an await. Definitions, imports and assignments do not.
const TOP_LEVEL_ACTION = /^(while|for|with|try|async\s+(with|for)|await)\b|^[A-Za-z_][\w.]*(\([^)]*\))?(\.[A-Za-z_]\w*)*\s*\(/;

/**
 * Why a file is not an agent, or undefined when it is one: the status module itself (integrating it
 * made it import itself, and every agent died at import), or a module that only defines things.
 */
export function notAnAgent(source: string): string | undefined {
  if (/^def mark_agent_started\(/m.test(source) && /^def send_heartbeat\(/m.test(source)) {
    return 'the agent_status_updater module itself, which the agents import: left alone';
  }
  const lines = source.split(/\r?\n/);
  if (lines.some((line) => MAIN_GUARD.test(line) || TOP_LEVEL_ACTION.test(line))) return undefined;
  return 'not an agent (no `if __name__ == "__main__":` and nothing that runs at the top level): left alone';
}

export function integratePython(source: string, agentName: string): Integration {
  if (source.includes(PYTHON_MARKER)) return { source, status: 'already integrated', hints: [] };
  const skip = notAnAgent(source);
  if (skip) return { source, status: skip, hints: [] };
  if (/^\s*(import agent_status_updater|from agent_status_updater import)/m.test(source)) {
    return {
      source,
      status: 'already uses agent_status_updater (integrated by hand): left as it is',
      hints: heartbeatHints(source.split('\n')),
    };
  }
  const newline = source.includes('\r\n') ? '\r\n' : '\n';
  const lines = source.split(/\r?\n/);

  // An AGENT_NAME the file already has wins over the one derived from its name.
  const existing = lines.findIndex((line) => AGENT_NAME_ASSIGNMENT.test(line));
  const name = existing >= 0 ? AGENT_NAME_ASSIGNMENT.exec(lines[existing])![2] : agentName;
  const mainGuard = lines.findIndex((line) => MAIN_GUARD.test(line));
  let insertAt = afterImports(lines);
  if (existing >= 0 && existing >= insertAt && (mainGuard < 0 || existing < mainGuard)) insertAt = existing + 1;

  const result = [...lines];
  if (mainGuard >= 0) {
    const bodyLine = result.slice(mainGuard + 1).find((line) => line.trim() !== '' && !line.trim().startsWith('#'));
    const indent = bodyLine ? /^\s*/.exec(bodyLine)![0] || '    ' : '    ';
    result.splice(mainGuard + 1, 0, `${indent}asu.mark_agent_started(AGENT_NAME)  # agent-status`);
  }
  const added = block(existing >= 0 ? undefined : name, mainGuard < 0);
  const before = insertAt > 0 && result[insertAt - 1].trim() !== '' ? [''] : [];
  // two blank lines between the block and the code after it (PEP 8), counting those already there
  let blank = 0;
  while (blank < 2 && result[insertAt + blank]?.trim() === '') blank++;
  const after = Array<string>(2 - blank).fill('');
  result.splice(insertAt, 0, ...before, ...added, ...after);
  return { source: result.join(newline), status: 'integrated', agentName: name, hints: heartbeatHints(result) };
}
