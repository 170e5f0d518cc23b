import { parseArgs } from 'node:util';

/** `--name value` string flags of a subcommand (node:util parseArgs; unknown flags are an error). */
export function parseFlags<K extends string>(args: string[], names: readonly K[]): Partial<Record<K, string>> {
  const options = Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
  const { values } = parseArgs({ args, options, allowPositionals: false, strict: true });
  return values as Partial<Record<K, string>>;
}
