// Imports point down: the host runner's service bundle (runner/daemon/main.ts) must hold no CLI code,
// so no file under runner/daemon/ may reach runner/cli/, directly or through another module. esbuild
// resolves the imports as `npm run build:runner` does, dynamic ones included.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '../..');
const DAEMON = join(REPO, 'runner/daemon');

describe('runner/daemon', () => {
  it('never imports from runner/cli', async () => {
    const entryPoints = readdirSync(DAEMON)
      .filter((file) => file.endsWith('.ts'))
      .map((file) => join(DAEMON, file));
    expect(entryPoints.length).toBeGreaterThan(10);
    const { metafile } = await build({
      entryPoints,
      bundle: true,
      write: false,
      metafile: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outdir: join(REPO, 'dist-layering-check'),
      logLevel: 'silent',
      absWorkingDir: REPO,
    });
    // metafile paths are relative to absWorkingDir: the repository
    const edges = Object.entries(metafile.inputs).flatMap(([file, input]) => input.imports.map((i) => ({ from: file, to: i.path })));
    expect(edges.some((edge) => edge.from === 'runner/daemon/main.ts')).toBe(true);
    const intoCli = edges.filter((edge) => !edge.from.startsWith('runner/cli/') && edge.to.startsWith('runner/cli/'));
    expect(
      intoCli.map((edge) => `${edge.from} imports ${edge.to}`),
      'move what the daemon needs from the CLI down into runner/daemon/ or shared/',
    ).toEqual([]);
  });
});
