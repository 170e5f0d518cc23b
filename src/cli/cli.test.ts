/** The real CLI in a child process (tsx + onnxruntime-node), and file verification against a damaged copy. */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest, verifyManifestFiles } from './manifestFiles';
import { modelsDir, repoRoot, sharedDir } from './paths';
import { parseMetricsLine } from './report';

function cli(...args: string[]) {
  const res = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/tsx/dist/cli.mjs'), path.join(repoRoot, 'src/cli/main.ts'), ...args], {
    encoding: 'utf8',
    cwd: repoRoot,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('CLI', () => {
  it('run tiny: onnxruntime-node matches the PyTorch reference; metrics JSON is the last line', () => {
    const { code, stdout, stderr } = cli('run', 'tiny');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('tiny-cnn  probs');
    const metrics = parseMetricsLine(stdout) as { pass: boolean; results: { maxAbsDiff: number }[] };
    expect(metrics.pass).toBe(true);
    expect(metrics.results[0].maxAbsDiff).toBeLessThan(1e-4);
  });

  it('models verify passes on the repository', () => {
    const { code, stdout } = cli('models', 'verify');
    expect(code).toBe(0);
    expect(parseMetricsLine(stdout)).toMatchObject({ failed: [] });
  });

  it('unknown commands exit 2 with a clear message', () => {
    const { code, stderr } = cli('models', 'frobnicate');
    expect(code).toBe(2);
    expect(stderr).toContain('Unknown command: "models frobnicate". Did you mean: ');
    expect(stderr).toMatch(/Did you mean: .*models verify/);
  });

  it('eval similar: the shipped image tower puts same-class val images next to each other', () => {
    const rsicd = path.join(sharedDir, 'data/rsicd');
    const { code, stdout } = cli('eval', 'similar', '--jsonl', path.join(rsicd, 'val.jsonl'), '--labels', path.join(rsicd, 'labels.json'), '--limit-per-class', '4');
    expect(code).toBe(0);
    const metrics = parseMetricsLine(stdout) as { images: number; classes: number; precisionAt1: number; precisionAt5: number; chance: number };
    expect(metrics.classes).toBe(31);
    expect(metrics.images).toBe(124);
    // 3 same-class neighbours per image exist at most; chance is ~2.4 %. The full val set gives ~93 % at P@1.
    expect(metrics.chance).toBeLessThan(3);
    expect(metrics.precisionAt1).toBeGreaterThan(50);
  }, 120_000);

  it('eval similar without its inputs exits 2 and says what to give', () => {
    const { code, stderr } = cli('eval', 'similar');
    expect(code).toBe(2);
    expect(stderr).toContain('eval similar: give --dir PATH');
  });

  it('verification catches a changed byte, a truncated file and a missing one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rslens-models-'));
    try {
      cpSync(path.join(modelsDir, 'tiny'), path.join(dir, 'tiny'), { recursive: true, filter: (p) => !p.endsWith('.py') });
      cpSync(path.join(modelsDir, 'manifest.json'), path.join(dir, 'manifest.json'));
      const manifest = readManifest(path.join(dir, 'manifest.json'));
      const onnx = path.join(dir, 'tiny/tiny-cnn.onnx');
      const bytes = readFileSync(onnx);
      bytes[100] ^= 1;
      writeFileSync(onnx, bytes);
      const tinyOnly = { ...manifest, models: manifest.models.filter((m) => m.id === 'tiny-cnn') };
      let checks = await verifyManifestFiles(tinyOnly, dir);
      expect(checks.map((c) => c.status)).toEqual(['sha256 mismatch', 'ok']);

      writeFileSync(onnx, bytes.subarray(0, 10));
      rmSync(path.join(dir, 'tiny/tiny-cnn.reference.json'));
      checks = await verifyManifestFiles(tinyOnly, dir);
      expect(checks.map((c) => c.status)).toEqual(['size mismatch', 'missing']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
