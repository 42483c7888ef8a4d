// The optional early wake-up: a Realtime broadcast on the topic `agent_commands:<host>` makes the
// poll loop poll now. It is a hint only. Where the project has no Realtime (the local stack), or the
// socket drops, nothing breaks: the poll loop catches up on its own, so failures are logged once.
import type { SupabaseClient } from '@supabase/supabase-js';

/** Subscribes; returns the unsubscribe function. */
export function subscribeToCommandHints(
  client: SupabaseClient,
  host: string,
  wake: () => void,
  log: (message: string) => void,
): () => Promise<void> {
  let reported = false;
  const channel = client
    .channel(`agent_commands:${host}`)
    .on('broadcast', { event: '*' }, () => wake())
    .subscribe((status, error) => {
      if (status === 'SUBSCRIBED') {
        reported = false;
        log(`realtime: listening on agent_commands:${host} (polling continues)`);
      } else if (!reported && (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT')) {
        reported = true;
        log(`realtime unavailable (${error?.message ?? status}); polling only`);
      }
    });
  return async () => {
    await client.removeChannel(channel);
  };
}
