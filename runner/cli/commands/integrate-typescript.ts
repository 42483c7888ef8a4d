// The TypeScript half of `agent-status integrate`: imports the SDK (shared/sdk) after the file's
// imports, names the agent, installs the SDK's shutdown handlers (SIGINT, SIGTERM, normal exit: mark
// stopped and flush), reports an uncaught error before the process dies of it, and marks the agent
// started there, where the module's own code begins. Between two marker lines, like the Python half.
import type { HeartbeatHint, Integration } from './integration.ts';

export const TYPESCRIPT_MARKER = '// --- agent-status: added by `agent-status integrate` ---';
const END_MARKER = '// --- end of agent-status ---';

function block(agentName: string | undefined, sdk: string): string[] {
  return [
    TYPESCRIPT_MARKER,
    `import { AgentStatus, installShutdownHandlers } from ${JSON.stringify(sdk)};`,
    '',
    ...(agentName === undefined
      ? []
      : [
          '/** Agent name for status updates: must match exactly what is in the database. */',
          `const AGENT_NAME = ${JSON.stringify(agentName)};`,
        ]),
    'const agentStatus = new AgentStatus({ agentName: AGENT_NAME });',
    'installShutdownHandlers(agentStatus);',
    "// An uncaught error (or unhandled rejection) becomes the agent's error, delivered before the exit.",
    "process.on('uncaughtException', async (error) => {",
    '  agentStatus.reportError(error);',
    '  agentStatus.markStopped();',
    '  await agentStatus.close();',
    '  console.error(error);',
    '  process.exit(1);',
    '});',
    'agentStatus.markStarted();',
    END_MARKER,
  ];
}

const AGENT_NAME_DECLARATION = /^(?:export\s+)?const\s+AGENT_NAME\s*(?::\s*string\s*)?=\s*(['"`])(.*)\1\s*;?\s*(\/\/.*)?$/;

/** Index of the line after the leading comments and the import declarations (multi-line ones too). */
function afterImports(lines: string[]): number {
  let insertAt = 0;
  let i = 0;
  if (lines[0]?.startsWith('#!')) insertAt = i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('//')) continue;
    if (line.startsWith('/*')) {
      while (i < lines.length - 1 && !lines[i].includes('*/')) i++;
      continue;
    }
    if (!/^import[\s{*'"]/.test(line)) break;
    // an import spans lines until its module specifier: ... from '...'; or import '...';
    while (i < lines.length - 1 && !/(\bfrom\s*['"][^'"]+['"]|^import\s*['"][^'"]+['"])\s*;?\s*$/.test(lines[i].trim())) i++;
    insertAt = i + 1;
  }
  return insertAt;
}

function heartbeatHints(lines: string[]): HeartbeatHint[] {
  const hints: HeartbeatHint[] = [];
  lines.forEach((line, index) => {
    if (!/^\s*(while\s*\(|for\s*\(|do\s*\{)|\bsetInterval\(/.test(line)) return;
    const indent = line.search(/\S/);
    let end = index + 1;
    while (end < lines.length && !(lines[end].search(/\S/) <= indent && /^\s*[}\])]/.test(lines[end]))) end++;
    const body = lines.slice(index + 1, end).join('\n');
    if (/agentStatus\.(heartbeat|activity|updateStatus)\(|sendHeartbeat\(/.test(body)) return;
    if (/^\s*for\s*\(/.test(line) && !/^\s*for\s*\(\s*;\s*;\s*\)/.test(line) && indent > 2) return;
    hints.push({ line: index + 1, code: line.trim(), add: "agentStatus.activity('what it is doing')" });
  });
  return hints;
}

export function integrateTypeScript(source: string, agentName: string, sdk: string): Integration {
  if (source.includes(TYPESCRIPT_MARKER)) return { source, status: 'already integrated', hints: [] };
  if (/from\s+['"][^'"]*(shared\/sdk|agent-status)[^'"]*['"]/.test(source)) {
    return { source, status: 'already imports the agent-status SDK (integrated by hand): left as it is', hints: [] };
  }
  const newline = source.includes('\r\n') ? '\r\n' : '\n';
  const lines = source.split(/\r?\n/);
  const existing = lines.findIndex((line) => AGENT_NAME_DECLARATION.test(line));
  const name = existing >= 0 ? AGENT_NAME_DECLARATION.exec(lines[existing])![2] : agentName;
  let insertAt = afterImports(lines);
  if (existing >= insertAt) insertAt = existing + 1;
  const result = [...lines];
  const before = insertAt > 0 && result[insertAt - 1].trim() !== '' ? [''] : [];
  const after = result[insertAt]?.trim() === '' ? [] : [''];
  result.splice(insertAt, 0, ...before, ...block(existing >= 0 ? undefined : name, sdk), ...after);
  return { source: result.join(newline), status: 'integrated', agentName: name, hints: heartbeatHints(result) };
}
