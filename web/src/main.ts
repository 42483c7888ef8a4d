// Entry point: read config.js, sign in, check the user is an operator, then show the dashboard.
import './styles.css';
import { createClient, type Session } from '@supabase/supabase-js';
import { whoami } from './api.ts';
import { readConfig, type DashboardConfig } from './config.ts';
import { Dashboard } from './dashboard.ts';
import { showNotOperator, showProblem, showSignIn } from './signin.ts';
import { initTheme } from './theme.ts';

initTheme();

const root = document.getElementById('app')!;
const config = readConfig();
if (typeof config === 'string') showProblem(root, 'The dashboard is not configured', config);
else boot(config);

function boot(config: DashboardConfig) {
  const client = createClient(config.supabaseUrl, config.supabaseAnonKey, {
    auth: { persistSession: true, autoRefreshToken: true, storageKey: 'agent-status-auth' },
  });
  let dashboard: Dashboard | undefined;
  let userId: string | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const signOut = () => void client.auth.signOut();

  async function enter(session: Session) {
    clearTimeout(retry);
    let me: Awaited<ReturnType<typeof whoami>>;
    try {
      me = await whoami(client);
    } catch (error) {
      if (userId !== session.user.id) return;
      // The API is down or unreachable: say so and try again; the session stays.
      showProblem(root, 'Cannot reach the API', `${(error as Error).message}. Retrying every 5 seconds.`, {
        label: 'Sign out',
        run: signOut,
      });
      retry = setTimeout(() => void enter(session), 5000);
      return;
    }
    if (userId !== session.user.id) return;
    const email = me.email ?? session.user.email ?? 'this account';
    if (!me.operator) return showNotOperator(root, email, signOut);
    dashboard = new Dashboard(root, client, config, email, signOut);
    dashboard.start();
  }

  async function leave() {
    clearTimeout(retry);
    await dashboard?.stop();
    dashboard = undefined;
  }

  client.auth.onAuthStateChange((event, session) => {
    // supabase-js holds a lock while this callback runs; calling it back from here would deadlock.
    setTimeout(async () => {
      if (session && session.user.id !== userId) {
        await leave();
        userId = session.user.id;
        void enter(session);
      } else if (!session && (event === 'SIGNED_OUT' || event === 'INITIAL_SESSION')) {
        await leave();
        userId = undefined;
        if (event === 'SIGNED_OUT') history.replaceState(null, '', location.pathname + location.search);
        showSignIn(root, client);
      }
    }, 0);
  });
}
