import { parseArgs } from 'node:util';

/**
 * `--name value` string flags and `--name` switches of a subcommand (node:util parseArgs;
 * unknown flags are an error).
 */
export function parseFlags<K extends string, B extends string = never>(
  args: string[],
  names: readonly K[],
  switches: readonly B[] = [],
): Partial<Record<K, string>> & Partial<Record<B, boolean>> {
  const options = {
    ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
    ...Object.fromEntries(switches.map((n) => [n, { type: 'boolean' as const }])),
  };
  const { values } = parseArgs({ args, options, allowPositionals: false, strict: true });
  return values as Partial<Record<K, string>> & Partial<Record<B, boolean>>;
}
