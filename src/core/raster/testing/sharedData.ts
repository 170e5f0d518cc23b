/**
 * Test-only: where the read-only shared data lives. RSLENS_SHARED (absolute, or relative to
 * the repository root) overrides the default `../shared`. Missing data fails loudly.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

export const sharedRoot = resolve(repoRoot, process.env.RSLENS_SHARED ?? '../shared');

export function sharedPath(...parts: string[]): string {
  const path = resolve(sharedRoot, ...parts);
  if (!existsSync(path)) throw new Error(`shared test data missing: ${path} (set RSLENS_SHARED to the shared data folder)`);
  return path;
}

export const geotiffPath = (name: string) => sharedPath('data', 'geotiff', name);
