import { describe, expect, it } from 'vitest';
import { CommandRegistry } from './registry';
import { formatReport, formatTable, parseMetricsLine } from './report';

describe('CLI report contract', () => {
  it('prints an aligned table and the metrics JSON as the very last line', () => {
    const metrics = { recallAt1: 0.25, nested: { ok: true }, text: 'line\nbreak' };
    const out = formatReport({
      title: 'Retrieval',
      columns: [{ key: 'split' }, { key: 'r1', label: 'R@1', digits: 2 }],
      rows: [
        { split: 'val', r1: 0.254 },
        { split: 'validation-long', r1: 12.5 },
      ],
      metrics,
    });
    const lines = out.split('\n');
    expect(lines.at(-1)).toBe(''); // ends with a newline
    expect(JSON.parse(lines.at(-2)!)).toEqual(metrics);
    expect(parseMetricsLine(out)).toEqual(metrics);
    expect(lines.slice(0, 5)).toEqual([
      'Retrieval',
      'split              R@1',
      '---------------  -----',
      'val               0.25',
      'validation-long  12.50',
    ]);
  });

  it('shows null as a dash and aligns mixed columns left', () => {
    expect(formatTable([{ key: 'a' }, { key: 'b' }], [{ a: 'x', b: null }, { a: 'long', b: 'y' }]).split('\n')).toEqual([
      'a     b',
      '----  -',
      'x     –',
      'long  y',
    ]);
  });
});

describe('CommandRegistry', () => {
  const registry = new CommandRegistry().add(
    { name: 'eval', summary: '', run: async () => 0 },
    { name: 'eval retrieval', summary: '', run: async () => 0 },
  );

  it('resolves the longest matching command and passes the rest as args', () => {
    expect(registry.resolve(['eval', 'retrieval', '--k', '5'])).toMatchObject({ command: { name: 'eval retrieval' }, args: ['--k', '5'] });
    expect(registry.resolve(['eval', 'detect'])).toMatchObject({ command: { name: 'eval' }, args: ['detect'] });
    expect(registry.resolve(['nope'])).toBeNull();
  });

  it('rejects duplicate names', () => {
    expect(() => registry.add({ name: 'eval', summary: '', run: async () => 0 })).toThrow('duplicate');
  });
});
