// HTTP over a Unix socket, for agents under a runner (its agent channel is a socket in a folder only
// its user may enter). fetch cannot take a socket path in Node; node:http can, in Node and in Deno.
import { request } from 'node:http';

/** POSTs body to url's path over the socket; answers as fetch would, or rejects like it on failure. */
export function postOverSocket(
  socketPath: string,
  url: string,
  init: { headers: Record<string, string>; body: string; signal: AbortSignal },
): Promise<Response> {
  const { pathname, search, host } = new URL(url);
  return new Promise((resolve, reject) => {
    const call = request(
      { socketPath, path: pathname + search, method: 'POST', headers: { ...init.headers, host }, signal: init.signal },
      (response) => {
        const chunks: Uint8Array[] = [];
        response.on('data', (chunk: Uint8Array) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = new TextDecoder().decode(concat(chunks));
          resolve(new Response(text, { status: response.statusCode ?? 502, headers: { 'content-type': 'application/json' } }));
        });
      },
    );
    call.on('error', reject);
    call.end(init.body);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((size, chunk) => size + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}
