// The optional early wake-up: a Realtime broadcast on the topic `agent_commands:<host>` (event
// `command` or `log_request`) makes the command or the log loop poll now. It is a hint only. Where
// the project has no Realtime (the local stack), or the socket drops, nothing breaks: the poll loops
// catch up on their own, so failures are logged once. While the subscription is live the runner
// polls slowly (a missed hint waits at most one heartbeat, whose answer says what waits); when it
// drops, the loops are woken and go back to their own pace.
import type { SupabaseClient } from '@supabase/supabase-js';

export interface CommandHints {
  /** Whether hints arrive now (the channel is subscribed). */
  live(): boolean;
  unsubscribe(): Promise<void>;
}

/** What a hint says waits: a command, a log request, or (the subscription was lost) either. */
export type Hint = 'command' | 'log_request' | 'lost';

/** Subscribes; wake() is called on each hint and when the subscription is lost. */
export function subscribeToCommandHints(
  client: SupabaseClient,
  host: string,
  wake: (hint: Hint) => void,
  log: (message: string) => void,
): CommandHints {
  let reported = false;
  let live = false;
  const channel = client
    .channel(`agent_commands:${host}`)
    .on('broadcast', { event: '*' }, (message) => wake(message.event === 'log_request' ? 'log_request' : 'command'))
    .subscribe((status, error) => {
      const was = live;
      live = status === 'SUBSCRIBED';
      if (live) {
        reported = false;
        log(`realtime: listening on agent_commands:${host} (polling continues, slower)`);
      } else if (was) {
        wake('lost'); // back to the fast pace at once
      }
      if (!live && !reported && (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT')) {
        reported = true;
        log(`realtime unavailable (${error?.message ?? status}); polling only`);
      }
    });
  return {
    live: () => live,
    async unsubscribe() {
      live = false;
      await client.removeChannel(channel);
    },
  };
}
