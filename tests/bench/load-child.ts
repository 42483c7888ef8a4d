// closedLoop (load.ts) in a process of its own, for benches whose server runs in the bench's own
// process (the local gateway): sharing its event loop would slow the server it measures.
// Input: BENCH_LOAD, JSON {port, requests: [base64 of each client's request bytes], seconds,
// warmupSeconds}. Output on stdout: the LoadResult as JSON.
import { closedLoop } from './load.ts';

const { port, requests, seconds, warmupSeconds } = JSON.parse(process.env.BENCH_LOAD ?? '{}') as {
  port: number;
  requests: string[];
  seconds: number;
  warmupSeconds: number;
};
const result = await closedLoop(
  port,
  requests.map((request) => Buffer.from(request, 'base64')),
  { seconds, warmupSeconds },
);
process.stdout.write(JSON.stringify(result));
