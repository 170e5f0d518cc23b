/** Filesystem locations for the Node CLI, relative to the repository (never absolute in code). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const modelsDir = path.join(repoRoot, 'models');
export const manifestPath = path.join(modelsDir, 'manifest.json');

/** Shared read-only data (datasets, pretrained weights): $RSLENS_SHARED or ../shared beside the repo. */
export const sharedDir = path.resolve(repoRoot, process.env.RSLENS_SHARED ?? '../shared');
