// A reference for the gateway bench: nginx (Debian's nginx-light), the proxy Supabase's own gateway
// is built on, forwarding the same path to the same function over a keep-alive pool, with nothing
// else to do (no key check, no routing table). What it reaches on this machine is what any proxy in
// a process of its own can reach here, so the gateway's ratio can be read against it. Not part of
// `npm start`: only the bench starts it, when nginx is installed.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Supervisor } from '../../runner/local-stack/children.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { answers, waitUntil } from '../../runner/local-stack/wait.ts';

const NGINX = process.env.NGINX ?? '/usr/sbin/nginx';

export interface NginxReference {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts nginx proxying `path` to the function on `upstreamPort` at `upstreamPath`, with as many
 * workers as the gateway has threads of JavaScript (one), or undefined when nginx is not installed.
 */
export async function startNginxReference(
  supervisor: Supervisor,
  options: { path: string; upstreamPort: number; upstreamPath: string },
): Promise<NginxReference | undefined> {
  if (!existsSync(NGINX)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-nginx-'));
  const port = await freePort();
  // keepalive_requests: nginx closes a client's keep-alive connection after 1,000 requests by default
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream function { server 127.0.0.1:${options.upstreamPort}; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 100000000;
    location = /ready { return 204; }
    location = ${options.path} {
      proxy_pass http://function${options.upstreamPath};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const child = supervisor.spawn({
    name: 'nginx (reference)',
    command: NGINX,
    args: ['-e', 'stderr', '-c', join(dir, 'nginx.conf'), '-p', dir],
    installHint: 'apt-get install nginx-light',
    onLine: (line) => console.error(`  nginx: ${line}`),
  });
  let exited = false;
  void child.exited.then(() => (exited = true));
  await waitUntil('nginx listening', () => answers(`http://127.0.0.1:${port}/ready`, 204), {
    timeoutMs: 10_000,
    failed: () => (exited ? 'nginx exited' : undefined),
  });
  child.ready();
  return {
    port,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
