// How every agent-status subcommand ends: a CliError becomes one "error:" line, its hint and its exit
// code; anything else is a bug or an unexpected failure and exits 1 with its message. Argument
// errors commander finds exit 2 (EXIT.usage) instead of commander's default 1, so "you typed it
// wrong" and "it failed" differ in scripts.
import { InvalidArgumentError, type Command, type CommanderError } from 'commander';
import { CliError, EXIT } from '../../exit-codes.ts';
import { painter } from './output.ts';

export function usageExit(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
}

/** Adds a subcommand whose argument errors exit with EXIT.usage. */
export function subcommand(parent: Command, nameAndArgs: string, description: string): Command {
  return parent.command(nameAndArgs).description(description).exitOverride(usageExit);
}

export function reportError(error: unknown): number {
  const paint = painter(process.stderr);
  if (error instanceof CliError) {
    process.stderr.write(`${paint.red('error:')} ${error.message}\n`);
    if (error.hint) process.stderr.write(`${paint.dim('hint:')} ${error.hint}\n`);
    return error.exitCode;
  }
  process.stderr.write(`${paint.red('error:')} ${(error as Error)?.stack ?? String(error)}\n`);
  return EXIT.failed;
}

/** Wraps a command's action: errors are reported, and the returned number becomes the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | undefined> | Promise<void>) {
  return async (...args: A): Promise<void> => {
    let code: number;
    try {
      code = (await fn(...args)) ?? EXIT.ok;
    } catch (error) {
      code = reportError(error);
    }
    process.exitCode = code;
  };
}

/** A commander argument parser for whole numbers in a range, with a message naming the range. */
export function integerIn(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    }
    return n;
  };
}
