import { createServer } from 'node:net';

/** Fails with what to do when something already listens on 127.0.0.1:port. */
export function assertPortFree(port: number, what: string, flag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} on 127.0.0.1 (for ${what}) is already in use, by another npm start or supabase start ` +
                `perhaps. Stop it, or choose another port with ${flag}.`,
            )
          : error,
      );
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}
