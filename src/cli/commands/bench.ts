import { benchmarks } from '../bench/benchmarks';
import { EXIT_OK, EXIT_USAGE, type Command } from '../registry';
import { printReport } from '../report';

export const bench: Command = {
  name: 'bench',
  usage: 'bench [name…]',
  summary: `run benchmarks (all, or by name: ${benchmarks.map((b) => b.name).join(', ')})`,
  async run(args) {
    const unknown = args.filter((a) => !benchmarks.some((b) => b.name === a));
    if (unknown.length) {
      process.stderr.write(`bench: unknown benchmark(s) ${unknown.join(', ')}; known: ${benchmarks.map((b) => b.name).join(', ')}\n`);
      return EXIT_USAGE;
    }
    const selected = args.length ? benchmarks.filter((b) => args.includes(b.name)) : benchmarks;
    const results = [];
    for (const b of selected) {
      process.stderr.write(`bench: ${b.description}\n`);
      results.push(...[await b.run()].flat());
    }
    printReport({
      title: 'Benchmarks (milliseconds)',
      columns: [
        { key: 'benchmark' },
        { key: 'runtime' },
        { key: 'iterations', label: 'runs' },
        { key: 'meanMs', label: 'mean', digits: 3 },
        { key: 'p50Ms', label: 'p50', digits: 3 },
        { key: 'p90Ms', label: 'p90', digits: 3 },
        { key: 'minMs', label: 'min', digits: 3 },
        { key: 'throughput' },
      ],
      rows: results.map((r) => ({ ...r, throughput: r.perSecond !== undefined ? `${r.perSecond.toFixed(1)} ${r.unit ?? '/s'}` : null })),
      metrics: { benchmarks: Object.fromEntries(results.map((r) => [r.benchmark, r])) },
    });
    return EXIT_OK;
  },
};
