// The runner's files: size-bounded agent logs with the stderr tail, and the one-runner-per-host lock.
import { existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { acquireLock } from '../../runner/daemon/lock.ts';
import { agentLogFiles, lastLines, linesSince, fileSize, openLogFiles, rotateIfLarge } from '../../runner/daemon/logs.ts';
import { processInfo } from '../../runner/daemon/proc.ts';
import { tempDir } from './helpers.ts';

describe('logs', () => {
  it('rotates past max_size keeping `keep` files, while the writer keeps appending to the same descriptor', () => {
    const files = agentLogFiles(tempDir(), 'my agent/1');
    expect(files.stdout).toMatch(/my_agent_1\.out\.log$/);
    const fds = openLogFiles(files);
    try {
      appendFileSync(fds.stdout, 'a'.repeat(100));
      expect(rotateIfLarge(files.stdout, { maxSize: 50, keep: 2 })).toBe(true);
      expect(fileSize(files.stdout)).toBe(0);
      expect(readFileSync(`${files.stdout}.1`, 'utf8')).toBe('a'.repeat(100));
      appendFileSync(fds.stdout, 'b'.repeat(60));
      // O_APPEND: the next write lands at the new end, not at the old offset (no hole of zeros)
      expect(readFileSync(files.stdout, 'utf8')).toBe('b'.repeat(60));
      expect(rotateIfLarge(files.stdout, { maxSize: 50, keep: 2 })).toBe(true);
      expect(readFileSync(`${files.stdout}.2`, 'utf8')).toBe('a'.repeat(100));
      expect(readFileSync(`${files.stdout}.1`, 'utf8')).toBe('b'.repeat(60));
      expect(rotateIfLarge(files.stdout, { maxSize: 50, keep: 2 })).toBe(false);
    } finally {
      fds.close();
    }
  });

  it('keeps nothing with keep: 0', () => {
    const file = join(tempDir(), 'x.log');
    writeFileSync(file, 'x'.repeat(10));
    expect(rotateIfLarge(file, { maxSize: 5, keep: 0 })).toBe(true);
    expect(fileSize(file)).toBe(0);
    expect(existsSync(`${file}.1`)).toBe(false);
  });

  it('reads the last lines from the end only, and only what this run wrote', () => {
    const file = join(tempDir(), 'err.log');
    writeFileSync(file, `old run\n${'x'.repeat(20_000)}\nline 1\nline 2\n\nline 3\n`);
    expect(lastLines(file, 2)).toEqual(['line 2', 'line 3']);
    expect(lastLines(file, 10, 30)).toEqual(['line 1', 'line 2', 'line 3']);
    const offset = fileSize(file);
    expect(linesSince(file, offset, 5)).toEqual([]);
    appendFileSync(file, 'new run failed\n');
    expect(linesSince(file, offset, 5)).toEqual(['new run failed']);
    expect(lastLines(join(tempDir(), 'missing.log'), 3)).toEqual([]);
  });
});

describe('lock', () => {
  it('one holder at a time; released, it can be taken again', () => {
    const file = join(tempDir(), 'runner.lock');
    const lock = acquireLock(file);
    expect(() => acquireLock(file)).toThrow(
      `another runner (pid ${process.pid}) is running with this state folder (lock ${file}); stop it first: one runner per host`,
    );
    lock.release();
    expect(existsSync(file)).toBe(false);
    acquireLock(file).release();
  });

  it('takes over a lock left by a runner that died, or a pid reused by another program', async () => {
    const file = join(tempDir(), 'runner.lock');
    const gone = execa('true');
    await gone;
    writeFileSync(file, JSON.stringify({ pid: gone.pid, startTicks: 1 }));
    acquireLock(file).release();
    // our own pid, but a start time that is not ours: the pid was reused
    writeFileSync(file, JSON.stringify({ pid: process.pid, startTicks: processInfo(process.pid)!.startTicks + 1 }));
    acquireLock(file).release();
    writeFileSync(file, '{"pid":');
    acquireLock(file).release();
  });
});
