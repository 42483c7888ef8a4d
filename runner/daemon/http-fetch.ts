// The fetch that supabase-js uses in the runner: node:http with keep-alive instead of Node's built-in
// fetch (undici). The runner polls several times a second for as long as the host is up, so the cost
// of one poll is its idle cost: measured here against PostgREST, undici's fetch took 2.0 ms of CPU
// per call and node:http 0.6 ms, which is the difference between about 1% and 0.3% of a core idle.
// The answer is a small Response look-alike, not undici's Response (whose body is a web stream: a
// fifth of a poll's CPU): it has what postgrest-js 2.x reads of a response (status, statusText, ok,
// headers, text(); json() for good measure), and the runner's tests run every call through it.
import http from 'node:http';
import https from 'node:https';

function requestUrl(input: string | URL | Request): URL {
  return new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
}

/**
 * A fetch for JSON APIs (string or absent bodies; text answers) that gives up after timeoutMs, with a
 * keep-alive pool of its own: the runner's own calls and its agents' forwarded ones do not queue for
 * the same sockets (an agent flooding its channel moved the runner's stop+start from 2.0 to 8.4 s).
 */
export function keepAliveFetch(timeoutMs: number, maxSockets = 4): typeof fetch {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets }),
    'https:': new https.Agent({ keepAlive: true, maxSockets }),
  };
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = requestUrl(input);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        reject(new TypeError(`cannot fetch ${url.protocol} URLs: use http or https`));
        return;
      }
      if (init.body !== undefined && init.body !== null && typeof init.body !== 'string') {
        reject(new TypeError('this fetch sends string bodies only (JSON)'));
        return;
      }
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: init.method ?? 'GET',
          headers: Object.fromEntries(new Headers(init.headers)),
          agent: agents[url.protocol],
          signal: init.signal ?? undefined,
          timeout: timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            const headers = new Headers();
            for (const [name, value] of Object.entries(response.headers)) {
              for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one);
            }
            const text = Buffer.concat(chunks).toString('utf8');
            const answer = {
              status,
              statusText: response.statusMessage ?? '',
              ok: status >= 200 && status < 300,
              headers,
              text: async () => text,
              json: async () => JSON.parse(text) as unknown,
            };
            resolve(answer as unknown as Response);
          });
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end(init.body ?? undefined);
    });
}
