import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManifestError, findModel, onnxFile, runtimeFiles, validateManifest } from './manifest';

const repoManifest = () => JSON.parse(readFileSync(path.resolve(__dirname, '../../../models/manifest.json'), 'utf8'));
/** The repo manifest reduced to the test model, so the cases below do not depend on the other models. */
const tinyManifest = () => {
  const m = repoManifest();
  return { ...m, models: m.models.filter((x: { id: string }) => x.id === 'tiny-cnn') };
};

function problemsOf(json: unknown): string[] {
  try {
    validateManifest(json);
  } catch (err) {
    if (err instanceof ManifestError) return err.problems;
    throw err;
  }
  return [];
}

describe('validateManifest', () => {
  it('accepts the repository manifest', () => {
    const manifest = validateManifest(repoManifest());
    const tiny = findModel(manifest, 'tiny-cnn');
    expect(onnxFile(tiny).path).toBe('tiny/tiny-cnn.onnx');
    expect(runtimeFiles(tiny).map((f) => f.role)).toEqual(['onnx']);
    expect(tiny.inputs[0]).toEqual({ name: 'pixels', dtype: 'float32', shape: [1, 3, 32, 32] });
  });

  it('reports each problem with its JSON path', () => {
    const m = tinyManifest();
    const tiny = m.models[0];
    tiny.files[0].sha256 = 'XYZ';
    tiny.files[0].path = '../secrets.onnx';
    tiny.inputs[0].dtype = 'float99';
    tiny.preprocessing.std = [1, 0, 1];
    m.models.push({ ...structuredClone(tiny), files: [{ ...tiny.files[1] }] });
    const problems = problemsOf(m);
    expect(problems).toEqual(
      expect.arrayContaining([
        '$.models[0] (tiny-cnn).files[0].sha256: must be 64 lower-case hex digits',
        '$.models[0] (tiny-cnn).files[0].path: must be a relative path below models/ (no "..", no leading /)',
        expect.stringContaining('$.models[0] (tiny-cnn).inputs[0].dtype: must be one of'),
        '$.models[0] (tiny-cnn).preprocessing.std: must not contain 0',
        '$.models[1] (tiny-cnn).id: duplicate id',
        '$.models[1] (tiny-cnn).files: must contain exactly one file of role "onnx", found 0',
      ]),
    );
  });

  it('requires the self-test reference to be a listed reference file', () => {
    const m = tinyManifest();
    m.models[0].selfTest.reference = 'tiny/other.json';
    expect(problemsOf(m)).toEqual(['$.models[0] (tiny-cnn).selfTest.reference: must name a file of role "reference" in files']);
  });

  it('checks test-time views: known, distinct, non-empty', () => {
    for (const [views, ok] of [
      [['id', 'hflip', 'rot90'], true],
      [['id', 'rot45'], false],
      [['id', 'id'], false],
      [[], false],
      ['hflip', false],
    ] as const) {
      const m = tinyManifest();
      m.models[0].testTimeViews = views;
      const problems = problemsOf(m);
      if (ok) expect(problems, JSON.stringify(views)).toEqual([]);
      else expect(problems.join('\n'), JSON.stringify(views)).toMatch(/testTimeViews: must be a non-empty list of distinct views/);
    }
  });

  it('rejects a wrong schema version and non-objects', () => {
    expect(problemsOf({ schemaVersion: 2, models: [] })).toEqual(['$.schemaVersion: must be 1, got 2']);
    expect(problemsOf([])).toEqual(['$: manifest must be a JSON object']);
  });

  it('findModel names the known ids when one is missing', () => {
    expect(() => findModel(validateManifest(tinyManifest()), 'nope')).toThrow('model "nope" is not in the manifest (known: tiny-cnn)');
  });
});
