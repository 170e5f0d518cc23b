/**
 * Subcommand registry. A command has a name of one or more words
 * ("models verify", "eval retrieval") and returns its exit code:
 * 0 success, 1 a check failed, 2 usage error.
 */

export interface Command {
  name: string;
  summary: string;
  usage?: string;
  run(args: string[]): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export class CommandRegistry {
  private readonly commands: Command[] = [];

  add(...commands: Command[]): this {
    for (const c of commands) {
      if (this.commands.some((x) => x.name === c.name)) throw new Error(`duplicate CLI command "${c.name}"`);
      this.commands.push(c);
    }
    return this;
  }

  list(): readonly Command[] {
    return [...this.commands].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The command whose name is the longest word prefix of argv, with the remaining args. */
  resolve(argv: string[]): { command: Command; args: string[] } | null {
    let best: { command: Command; args: string[] } | null = null;
    for (const command of this.commands) {
      const words = command.name.split(' ');
      const matches = words.every((w, i) => argv[i] === w);
      if (matches && (!best || words.length > best.command.name.split(' ').length)) {
        best = { command, args: argv.slice(words.length) };
      }
    }
    return best;
  }

  /** Commands starting with the given words (for "did you mean"). */
  withPrefix(word: string): Command[] {
    return this.list().filter((c) => c.name.split(' ')[0] === word);
  }

  helpText(): string {
    const width = Math.max(...this.commands.map((c) => (c.usage ?? c.name).length));
    const lines = this.list().map((c) => `  ${(c.usage ?? c.name).padEnd(width)}  ${c.summary}`);
    return ['Usage: npm run cli -- <command> [args]', '', 'Commands:', ...lines].join('\n');
  }
}
