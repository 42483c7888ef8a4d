// An agent's stdout and stderr, written straight to files by the agent itself (no pipe through the
// runner: an agent must outlive a runner restart without dying of SIGPIPE). The runner bounds them
// by copy-and-truncate rotation on its check timer, and reads the tail of stderr when an agent fails.
import { closeSync, copyFileSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, statSync, truncateSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface LogFiles {
  stdout: string;
  stderr: string;
}

export interface LogLimits {
  maxSize: number;
  keep: number;
}

/** Paths of an agent's log files under the runner's log folder (names are agent names, made file-safe). */
export function agentLogFiles(logDir: string, agentName: string): LogFiles {
  const safe = agentName.replace(/[^A-Za-z0-9._-]/g, '_');
  return { stdout: join(logDir, `${safe}.out.log`), stderr: join(logDir, `${safe}.err.log`) };
}

/**
 * Opens both files for appending and returns their descriptors for the child's stdio. O_APPEND
 * matters: after a truncating rotation the child's next write lands at the new end, not at its old offset.
 */
export function openLogFiles(files: LogFiles): { stdout: number; stderr: number; close(): void } {
  mkdirSync(dirname(files.stdout), { recursive: true });
  const stdout = openSync(files.stdout, 'a');
  const stderr = openSync(files.stderr, 'a');
  return {
    stdout,
    stderr,
    close() {
      closeSync(stdout);
      closeSync(stderr);
    },
  };
}

/**
 * Rotates a file that grew past maxSize: file.1 .. file.<keep> shift, the current content is copied
 * to file.1 and the file truncated in place (the writer keeps its descriptor). What the agent writes
 * between the copy and the truncation is lost; that window is microseconds, once per maxSize.
 */
export function rotateIfLarge(file: string, limits: LogLimits): boolean {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return false;
  }
  if (size <= limits.maxSize) return false;
  if (limits.keep > 0) {
    for (let n = limits.keep - 1; n >= 1; n--) {
      if (existsSync(`${file}.${n}`)) renameSync(`${file}.${n}`, `${file}.${n + 1}`);
    }
    copyFileSync(file, `${file}.1`);
  }
  truncateSync(file, 0);
  return true;
}

/**
 * The last `count` non-empty lines of a file written since byte `from`, read from its last `maxBytes`
 * bytes only (a runaway log never costs more than that). Empty when the file is missing.
 */
export function lastLines(file: string, count: number, maxBytes = 8192, from = 0): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - maxBytes);
    if (start >= size) return [];
    const buffer = Buffer.alloc(size - start);
    readSync(fd, buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').split(/\r?\n/);
    // A window cut short by maxBytes may start inside a line: that fragment is not a line.
    if (start > from) lines.shift();
    return lines
      .map((line) => line.trimEnd())
      .filter(Boolean)
      .slice(-count);
  } finally {
    closeSync(fd);
  }
}

/**
 * The last `count` lines (at most 500) of an agent's file for an operator who asked, each cut to
 * 1,000 characters; read from the last 1,000 bytes a line at most, so a huge log costs no more.
 */
export function tailForOperator(file: string, count: number): string[] {
  const wanted = Math.min(Math.max(1, count), 500);
  return lastLines(file, wanted, wanted * 1000).map((line) => (line.length > 1000 ? `${line.slice(0, 999)}…` : line));
}

/** Where a file stands now (0 when missing), so a failure message can quote only what came after. */
export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The lines written to a file since it had `offset` bytes (the whole tail if it was rotated since). */
export function linesSince(file: string, offset: number, count: number): string[] {
  return lastLines(file, count, 8192, fileSize(file) < offset ? 0 : offset);
}
