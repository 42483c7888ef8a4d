// What `supabase functions deploy --use-api` really uploads, and that exactly those files make working
// functions. The real CLI deploys to a small HTTP server on 127.0.0.1 standing in for the Management
// API (the CLI takes a profile with another API URL); each multipart upload is unpacked into an empty
// folder, with no node_modules, as the hosted bundler gets it, then type-checked and served from there.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { denoBinary, listFunctions, startFunction } from '../../runner/local-stack/functions.ts';
import { REPO_ROOT } from '../../runner/paths.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { READ_FUNCTION_NAMES } from '../../shared/api/paths.ts';

const run = promisify(execFile);
const PROJECT_REF = 'abcdefghijklmnopqrst';

interface Upload {
  metadata: { entrypoint_path: string; import_map_path?: string; verify_jwt?: boolean };
  files: Map<string, string>;
}

const uploads = new Map<string, Upload>();
const requests: string[] = [];
const work = mkdtempSync(join(tmpdir(), 'agent-status-deploy-'));
const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
// a migrated database, so each function runs its real checks
const db = useTestDatabase();
let api: Server;

// The endpoints `functions deploy --use-api` calls, answered as the Management API answers them.
async function answer(method: string, url: URL, contentType: string, body: Buffer) {
  const deploy = new RegExp(`^/v1/projects/${PROJECT_REF}/functions/deploy$`);
  if (method === 'POST' && deploy.test(url.pathname)) {
    const slug = url.searchParams.get('slug') ?? '';
    const form = await new Response(new Uint8Array(body), { headers: { 'content-type': contentType } }).formData();
    const files = new Map<string, string>();
    for (const part of form.getAll('file')) {
      const file = part as File;
      files.set(file.name, await file.text());
    }
    uploads.set(slug, { metadata: JSON.parse(String(form.get('metadata'))), files });
    return { status: 201, json: { id: slug, slug, name: slug, version: 1, status: 'ACTIVE', created_at: 0, updated_at: 0 } };
  }
  if (method === 'PUT' && url.pathname === `/v1/projects/${PROJECT_REF}/functions`) return { status: 200, json: { functions: [] } };
  if (method === 'GET' && url.pathname === `/v1/projects/${PROJECT_REF}`) {
    return { status: 200, json: { id: PROJECT_REF, ref: PROJECT_REF, name: 'test', status: 'ACTIVE_HEALTHY' } };
  }
  return { status: 404, json: { message: `the stand-in Management API has no ${method} ${url.pathname}` } };
}

beforeAll(async () => {
  api = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const url = new URL(request.url ?? '/', 'http://local');
      requests.push(`${request.method} ${url.pathname}`);
      const { status, json } = await answer(request.method ?? 'GET', url, request.headers['content-type'] ?? '', Buffer.concat(chunks));
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(json));
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const port = (api.address() as { port: number }).port;
  const profile = join(work, 'profile.yaml');
  writeFileSync(
    profile,
    [
      'name: agent-status-test',
      `api_url: http://127.0.0.1:${port}`,
      `dashboard_url: http://127.0.0.1:${port}/dashboard`,
      'project_host: project.test',
    ].join('\n'),
  );
  await run(
    join(REPO_ROOT, 'node_modules', '.bin', 'supabase'),
    ['functions', 'deploy', '--use-api', '--project-ref', PROJECT_REF, '--profile', profile],
    {
      cwd: REPO_ROOT,
      timeout: 120_000,
      // A home of its own: the CLI keeps state (telemetry, tokens) there.
      env: { PATH: process.env.PATH, HOME: join(work, 'home'), SUPABASE_ACCESS_TOKEN: `sbp_${'0'.repeat(40)}`, NO_COLOR: '1' },
    },
  );
}, 180_000);

afterAll(async () => {
  await supervisor.stopAll();
  api?.close();
  rmSync(work, { recursive: true, force: true });
});

/** The uploaded files of one function, alone in an empty folder. */
function unpack(name: string): string {
  const root = join(work, 'unpacked', name);
  for (const [path, text] of uploads.get(name)!.files) {
    const target = normalize(join(root, path));
    if (!target.startsWith(root)) throw new Error(`the upload of ${name} names a file outside its folder: ${path}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  return root;
}

describe('supabase functions deploy --use-api', () => {
  it('uploads every function with deno.json as its import map and verify_jwt off', () => {
    expect([...uploads.keys()].sort()).toEqual(listFunctions());
    for (const [name, upload] of uploads) {
      expect(upload.metadata.entrypoint_path).toBe(`supabase/functions/${name}/index.ts`);
      expect(upload.metadata.import_map_path).toBe('deno.json');
      expect(upload.metadata.verify_jwt).toBe(false);
      expect(upload.files.has('deno.json')).toBe(true);
    }
    expect(requests).toContain(`PUT /v1/projects/${PROJECT_REF}/functions`);
  });

  for (const name of listFunctions()) {
    it(`${name}: exactly the uploaded files type-check and serve, without node_modules`, async () => {
      const root = unpack(name);
      const entry = uploads.get(name)!.metadata.entrypoint_path;
      const check = await run(denoBinary(), ['check', entry], {
        cwd: root,
        timeout: 120_000,
        env: { ...process.env, NO_COLOR: '1' },
      }).catch((error: { stderr?: string; message: string }) => ({ stdout: '', stderr: `FAILED ${error.stderr ?? error.message}` }));
      expect(check.stderr).not.toMatch(/FAILED|error/i);

      const served = await startFunction(name, {
        supervisor,
        dir: join(root, 'supabase', 'functions'),
        root,
        env: {
          SUPABASE_URL: 'http://127.0.0.1:1',
          SUPABASE_ANON_KEY: 'unused',
          SUPABASE_SERVICE_ROLE_KEY: 'unused',
          SUPABASE_DB_URL: db.url,
        },
      });
      // An empty object with a made-up token fails each function's checks (its request schema, zod
      // through the import map, or its caller check against the database): the module graph loaded
      // and answers in the API's error shape.
      // (the read-only functions answer GET, with the key as a bearer token or, for badges, in the URL)
      const response = await fetch(
        `http://127.0.0.1:${served.port}/${name}${name === 'badge' ? '/agent/any.svg?key=asb_unused' : ''}`,
        (READ_FUNCTION_NAMES as readonly string[]).includes(name)
          ? { headers: { authorization: 'Bearer asm_unused' } }
          : { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer aso_unused' }, body: '{}' },
      );
      expect([400, 401]).toContain(response.status);
      if (name === 'badge') {
        // a badge's refusal is a grey badge saying why, so a page shows it instead of a broken image
        expect(response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
        expect(await response.text()).toMatch(/^<svg[\s\S]*badge key unknown or revoked/);
      } else {
        expect(((await response.json()) as { error: { code: string } }).error.code).toMatch(/^(invalid_request|unauthorized)$/);
      }
      await served.child.stop();
    }, 180_000);
  }
});
