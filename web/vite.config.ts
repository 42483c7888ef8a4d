// The dashboard is a static build: web/ is the root, web/dist the output (git-ignored). Relative asset
// paths (base './') let the same build be served at / by the local stack or under any path of a
// static host. config.js is not bundled: it is copied from public/ as-is so a host can edit it.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  publicDir: 'public',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    // shared/status.ts lives outside web/
    fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] },
  },
});
