// `npm start` serves the dashboard's production build (web/dist). On a fresh checkout, or after its
// sources changed, it builds it first with Vite, so the first screen is the real dashboard.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../paths.ts';

const WEB = join(REPO_ROOT, 'web');
const BUILT = join(WEB, 'dist', 'index.html');
// What the build reads: the dashboard and the shared TypeScript it imports.
const SOURCES = [join(WEB, 'src'), join(WEB, 'public'), join(WEB, 'index.html'), join(WEB, 'vite.config.ts'), join(REPO_ROOT, 'shared')];

function newestChange(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestChange(join(path, name))));
}

/** Whether web/dist is missing or older than its sources (false when there is no dashboard at all). */
export function dashboardNeedsBuild(): boolean {
  if (!existsSync(join(WEB, 'vite.config.ts'))) return false;
  if (!existsSync(BUILT)) return true;
  return Math.max(...SOURCES.map(newestChange)) > statSync(BUILT).mtimeMs;
}

export async function buildDashboard(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(WEB, 'vite.config.ts'), logLevel: 'warn' });
}
