import { readManifest } from '../manifestFiles';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Command } from '../registry';
import { printReport } from '../report';
import { runSelfTest } from '../selfTest';

export const runModel: Command = {
  name: 'run',
  usage: 'run <model-id|family>',
  summary: "run a model's self-test input on onnxruntime-node and compare to its PyTorch reference (e.g. run tiny)",
  async run(args) {
    const [target] = args;
    const manifest = readManifest();
    const byId = manifest.models.filter((m) => m.id === target);
    const entries = (byId.length ? byId : manifest.models.filter((m) => m.family === target)).filter((m) => m.selfTest);
    if (!target || entries.length === 0) {
      const known = manifest.models.filter((m) => m.selfTest).map((m) => `${m.id} (family ${m.family})`);
      process.stderr.write(`run: ${target ? `no model with a self-test matches "${target}"` : 'name a model'}; models with a self-test: ${known.join(', ')}\n`);
      return EXIT_USAGE;
    }

    const rows = [];
    for (const entry of entries) {
      const { comparisons, runMs } = await runSelfTest(entry);
      for (const c of comparisons) rows.push({ model: entry.id, ...c, runMs });
    }
    const pass = rows.every((r) => r.pass);
    printReport({
      title: 'Self-test on onnxruntime-node (CPU) vs PyTorch reference',
      columns: [{ key: 'model' }, { key: 'output' }, { key: 'maxAbsDiff', label: 'max |Δ|', exponentDigits: 1 }, { key: 'tolerance' }, { key: 'pass' }, { key: 'runMs', label: 'run ms', digits: 2 }],
      rows,
      metrics: { pass, results: rows },
    });
    return pass ? EXIT_OK : EXIT_FAILED;
  },
};
