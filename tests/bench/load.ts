// A closed-loop HTTP load generator: N clients, each on its own keep-alive connection, sending the
// next request when the previous answer arrived. It writes prebuilt request bytes and reads answers
// by Content-Length (or the end of a single chunked body) on raw sockets, because it shares two
// cores with the server it measures: node:http costs several times more CPU per request.
import { connect, type Socket } from 'node:net';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
  firstError?: string;
}

class Connection {
  #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: ((answer: { status: number; body: string }) => void) | undefined;
  #failed: ((error: Error) => void) | undefined;

  constructor(port: number) {
    this.#socket = connect(port, '127.0.0.1');
    this.#socket.setNoDelay(true);
    this.#socket.on('data', (chunk) => this.#read(chunk));
    this.#socket.on('error', (error) => this.#failed?.(error));
    this.#socket.on('close', () => this.#failed?.(new Error('connection closed by the server')));
  }

  send(request: Buffer): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.#failed = reject;
      this.#socket.write(request);
    });
  }

  #read(chunk: Buffer) {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    const headEnd = this.#buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.#buffer.subarray(0, headEnd).toString('latin1');
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let end: number;
    if (length) {
      end = headEnd + 4 + Number(length[1]);
      if (this.#buffer.length < end) return;
    } else {
      const last = this.#buffer.indexOf('\r\n0\r\n\r\n', headEnd);
      if (last < 0) return;
      end = last + 7;
    }
    const body = this.#buffer.subarray(headEnd + 4, end).toString('utf8');
    this.#buffer = this.#buffer.subarray(end);
    const resolve = this.#waiting;
    this.#waiting = this.#failed = undefined;
    resolve?.({ status: Number(head.slice(9, 12)), body });
  }

  close() {
    this.#socket.destroy();
  }
}

/** Builds the bytes of one POST with a JSON body. */
export function postRequest(path: string, headers: Record<string, string>, body: unknown): Buffer {
  const json = JSON.stringify(body);
  const lines = [
    `POST ${path} HTTP/1.1`,
    'host: 127.0.0.1',
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(json)}`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${json}`);
}

/**
 * Runs `clients` closed loops against port for warmup + seconds; measures only after the warmup.
 * `window` is called as the measured window starts and as it ends, so a caller can read CPU counters
 * over exactly the requests counted.
 */
export async function closedLoop(
  port: number,
  requests: Buffer[],
  options: { seconds: number; warmupSeconds: number; window?: { start(): void; end(): void } },
): Promise<LoadResult> {
  const connections = requests.map(() => new Connection(port));
  const result: LoadResult = { requests: 0, errors: 0, seconds: options.seconds, latenciesMs: [] };
  const measureFrom = Date.now() + options.warmupSeconds * 1000;
  const end = measureFrom + options.seconds * 1000;
  // the loops stop at the first answer after `end`, which may come before the timer's turn
  const marks = [options.window?.start, options.window?.end].map((mark) => {
    let done = false;
    return () => {
      if (!done) mark?.();
      done = true;
    };
  });
  const timers = [setTimeout(marks[0], measureFrom - Date.now()), setTimeout(marks[1], end - Date.now())];
  try {
    await Promise.all(
      connections.map(async (connection, i) => {
        while (Date.now() < end) {
          const started = performance.now();
          const answer = await connection.send(requests[i]);
          if (Date.now() < measureFrom) continue;
          result.requests++;
          result.latenciesMs.push(performance.now() - started);
          if (answer.status !== 200) {
            result.errors++;
            result.firstError ??= `HTTP ${answer.status}: ${answer.body.slice(0, 300)}`;
          }
        }
      }),
    );
  } finally {
    for (const timer of timers) clearTimeout(timer);
    for (const mark of marks) mark();
    for (const connection of connections) connection.close();
  }
  return result;
}

export function percentile(sortedMs: number[], p: number): number {
  if (!sortedMs.length) return NaN;
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor((sortedMs.length * p) / 100))];
}
