/** Reads models/manifest.json from disk and checks every listed file's size and sha256. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { validateManifest, type ModelManifest } from '../core/models/manifest';
import { manifestPath, modelsDir } from './paths';

export function readManifest(file = manifestPath): ModelManifest {
  return validateManifest(JSON.parse(readFileSync(file, 'utf8')));
}

export type FileCheckStatus = 'ok' | 'missing' | 'size mismatch' | 'sha256 mismatch';

export interface FileCheck {
  model: string;
  path: string;
  bytes: number;
  actualBytes: number | null;
  status: FileCheckStatus;
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function verifyManifestFiles(manifest: ModelManifest, dir = modelsDir): Promise<FileCheck[]> {
  const checks: FileCheck[] = [];
  for (const m of manifest.models) {
    for (const f of m.files) {
      const abs = path.join(dir, f.path);
      const base = { model: m.id, path: f.path, bytes: f.bytes };
      if (!existsSync(abs)) {
        checks.push({ ...base, actualBytes: null, status: 'missing' });
        continue;
      }
      const actualBytes = statSync(abs).size;
      const status: FileCheckStatus =
        actualBytes !== f.bytes ? 'size mismatch' : (await sha256OfFile(abs)) !== f.sha256 ? 'sha256 mismatch' : 'ok';
      checks.push({ ...base, actualBytes, status });
    }
  }
  return checks;
}

/**
 * After a re-export: sets every listed file's bytes and sha256 from disk and rewrites the
 * manifest. Returns the files that changed. Missing files are an error (nothing is written).
 */
export async function refreshManifestFiles(file = manifestPath, dir = modelsDir): Promise<{ model: string; path: string; bytes: number }[]> {
  const json = JSON.parse(readFileSync(file, 'utf8')) as { models: { id: string; files: { path: string; bytes: number; sha256: string }[] }[] };
  const changed: { model: string; path: string; bytes: number }[] = [];
  for (const m of json.models) {
    for (const f of m.files) {
      const abs = path.join(dir, f.path);
      if (!existsSync(abs)) throw new Error(`${m.id}: ${f.path} does not exist`);
      const bytes = statSync(abs).size;
      const sha256 = await sha256OfFile(abs);
      if (bytes !== f.bytes || sha256 !== f.sha256) changed.push({ model: m.id, path: f.path, bytes });
      Object.assign(f, { bytes, sha256 });
    }
  }
  validateManifest(json);
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  return changed;
}
