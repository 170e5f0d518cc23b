/**
 * Vite plugin: serves models/manifest.json and the files it lists at
 * /models/... in dev, and copies exactly those into dist/models/ on build (so
 * `vite preview` and any static host serve them). Files stay in the repo's
 * models/ folder: nothing is duplicated into public/.
 */
import { createReadStream, existsSync, mkdirSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Plugin, ResolvedConfig } from 'vite';
import { validateManifest } from '../core/models/manifest';

const URL_PREFIX = '/models/';
const MANIFEST = 'manifest.json';

function servedPaths(modelsDir: string): Set<string> {
  const manifest = validateManifest(JSON.parse(readFileSync(path.join(modelsDir, MANIFEST), 'utf8')));
  return new Set([MANIFEST, ...manifest.models.flatMap((m) => m.files.map((f) => f.path))]);
}

function contentType(file: string): string {
  return file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}

export function modelsPlugin(options: { modelsDir?: string } = {}): Plugin {
  let config: ResolvedConfig;
  const modelsDir = () => path.resolve(config.root, options.modelsDir ?? 'models');

  return {
    name: 'rslens-models',
    configResolved(resolved) {
      config = resolved;
    },
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const pathname = decodeURIComponent((req.url ?? '').split('?')[0]);
        if (!pathname.startsWith(URL_PREFIX)) return next();
        const rel = pathname.slice(URL_PREFIX.length);
        let allowed: Set<string>;
        try {
          allowed = servedPaths(modelsDir());
        } catch (err) {
          res.statusCode = 500;
          return res.end(`models/manifest.json is invalid: ${(err as Error).message}`);
        }
        const file = path.join(modelsDir(), rel);
        if (!allowed.has(rel) || !existsSync(file)) {
          res.statusCode = 404;
          return res.end(`not found: ${pathname}`);
        }
        res.setHeader('Content-Type', contentType(rel));
        res.setHeader('Content-Length', String(statSync(file).size));
        res.setHeader('Cache-Control', 'no-cache');
        createReadStream(file).pipe(res);
      });
    },
    writeBundle() {
      const outDir = path.resolve(config.root, config.build.outDir, 'models');
      for (const rel of servedPaths(modelsDir())) {
        const src = path.join(modelsDir(), rel);
        if (!existsSync(src)) {
          this.warn(`models/${rel} is listed in models/manifest.json but does not exist; not copied`);
          continue;
        }
        mkdirSync(path.dirname(path.join(outDir, rel)), { recursive: true });
        copyFileSync(src, path.join(outDir, rel));
      }
    },
  };
}
