// Runs one edge function under Deno the way Supabase's edge runtime does: the function's own
// `Deno.serve(handler)` call is what serves it. Here that call listens on loopback, on the port the
// local stack chose (AGENT_STATUS_FUNCTION_PORT), whatever options the function passed.
// Usage: deno run <permissions> serve-function.ts <absolute path of the function's index.ts>

type Handler = (request: Request, info: unknown) => Response | Promise<Response>;
interface ServeOptions {
  port?: number;
  hostname?: string;
  handler?: Handler;
  onListen?: (address: unknown) => void;
}
declare const Deno: {
  args: string[];
  ppid: number;
  env: { get(name: string): string | undefined };
  serve(options: ServeOptions, handler: Handler): unknown;
  exit(code?: number): never;
  unrefTimer(id: ReturnType<typeof setInterval>): void;
};

const port = Number(Deno.env.get('AGENT_STATUS_FUNCTION_PORT'));
const entry = Deno.args[0];
if (!port || !entry) {
  throw new Error('serve-function.ts needs AGENT_STATUS_FUNCTION_PORT and the path of a function index.ts');
}

const serve = Deno.serve.bind(Deno);
Deno.serve = ((first: ServeOptions | Handler, second?: Handler) => {
  const options = typeof first === 'function' ? {} : first;
  const handler = typeof first === 'function' ? first : (second ?? first.handler);
  if (!handler) throw new Error(`${entry} called Deno.serve without a handler`);
  return serve({ ...options, port, hostname: '127.0.0.1', onListen: () => {} }, handler);
}) as typeof Deno.serve;

// The stack kills this process when it stops; this covers the one case it cannot: the stack itself
// being killed with SIGKILL. Then this process is re-parented, and leaves too.
const parent = Deno.ppid;
Deno.unrefTimer(
  setInterval(() => {
    if (Deno.ppid !== parent) Deno.exit(0);
  }, 1_000),
);

await import(new URL(entry, 'file:///').href);
