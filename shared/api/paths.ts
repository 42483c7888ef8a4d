// Where the functions live under a Supabase project URL (https://<ref>.supabase.co or the local stack).
export const FUNCTION_NAMES = ['heartbeat', 'report', 'command'] as const;
/** Read-only GET endpoints with their own keys: a Prometheus scrape and README badges. */
export const READ_FUNCTION_NAMES = ['metrics', 'badge'] as const;
/** Functions only the platform calls (pg_cron through pg_net, the local stack's timer): not the public API. */
export const INTERNAL_FUNCTION_NAMES = ['dispatch'] as const;
export type FunctionName =
  | (typeof FUNCTION_NAMES)[number]
  | (typeof READ_FUNCTION_NAMES)[number]
  | (typeof INTERNAL_FUNCTION_NAMES)[number];

/** The URL of one function under a project URL; a trailing slash on the project URL is fine. */
export function functionUrl(projectUrl: string, name: FunctionName): string {
  return `${projectUrl.replace(/\/+$/, '')}/functions/v1/${name}`;
}
