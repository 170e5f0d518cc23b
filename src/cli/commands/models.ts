import { refreshManifestFiles, verifyManifestFiles, readManifest } from '../manifestFiles';
import { EXIT_FAILED, EXIT_OK, type Command } from '../registry';
import { printReport } from '../report';

export const modelsVerify: Command = {
  name: 'models verify',
  summary: 'check every file in models/manifest.json exists with the listed size and sha256',
  async run() {
    const checks = await verifyManifestFiles(readManifest());
    const failed = checks.filter((c) => c.status !== 'ok');
    printReport({
      title: 'Model files (models/manifest.json)',
      columns: [{ key: 'model' }, { key: 'path' }, { key: 'bytes' }, { key: 'actualBytes', label: 'on disk' }, { key: 'status' }],
      rows: checks.map((c) => ({ ...c })),
      metrics: { files: checks.length, ok: checks.length - failed.length, failed: failed.map((c) => ({ model: c.model, path: c.path, status: c.status })) },
    });
    return failed.length ? EXIT_FAILED : EXIT_OK;
  },
};

export const modelsRefresh: Command = {
  name: 'models refresh',
  summary: 'after re-exporting a model: write the files\' current sizes and sha256 into models/manifest.json',
  async run() {
    const changed = await refreshManifestFiles();
    printReport({
      title: changed.length ? 'Updated manifest entries' : 'Manifest already matches the files on disk',
      columns: [{ key: 'model' }, { key: 'path' }, { key: 'bytes' }],
      rows: changed.map((c) => ({ ...c })),
      metrics: { changed },
    });
    return EXIT_OK;
  },
};
