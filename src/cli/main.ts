/** RS Lens command line: `npm run cli -- <command> [args]`. */
import { createRegistry } from './commands';
import { EXIT_FAILED, EXIT_USAGE } from './registry';

async function main(argv: string[]): Promise<number> {
  const registry = createRegistry();
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') argv = ['help'];
  const match = registry.resolve(argv);
  if (!match) {
    const related = registry.withPrefix(argv[0]).map((c) => c.usage ?? c.name);
    process.stderr.write(
      `Unknown command: "${argv.join(' ')}".` + (related.length ? ` Did you mean: ${related.join(', ')}?` : '') + `\n\n${registry.helpText()}\n`,
    );
    return EXIT_USAGE;
  }
  try {
    return await match.command.run(match.args);
  } catch (err) {
    if (String((err as { code?: string }).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${match.command.name}: ${(err as Error).message}\nUsage: ${match.command.usage ?? match.command.name}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`${match.command.name}: ${(err as Error).stack ?? err}\n`);
    return EXIT_FAILED;
  }
}

process.exitCode = await main(process.argv.slice(2));
