// The dashboard's static files at `/`: the built dashboard (web/dist) as soon as it exists, else the
// placeholder page in web/public-placeholder. Checked per request, so a build made while the stack
// runs is served without a restart.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPO_ROOT } from '../paths.ts';

export const DASHBOARD_DIRS = [join(REPO_ROOT, 'web', 'dist'), join(REPO_ROOT, 'web', 'public-placeholder')];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

export function serveStatic(request: IncomingMessage, response: ServerResponse, dirs = DASHBOARD_DIRS): void {
  const root = dirs.find((dir) => isFile(join(dir, 'index.html')));
  if (!root) {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(`No dashboard files: build the dashboard into ${dirs[0]}.\n`);
    return;
  }
  const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://local').pathname);
  const wanted = normalize(join(root, pathname));
  if (wanted !== root && !wanted.startsWith(root + sep)) {
    response.writeHead(403).end();
    return;
  }
  // Paths without a file behind them are the single-page app's own routes.
  const file = isFile(wanted) ? wanted : isFile(join(wanted, 'index.html')) ? join(wanted, 'index.html') : join(root, 'index.html');
  response.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': 'no-cache',
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(file).pipe(response);
}
