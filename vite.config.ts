import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import { modelsPlugin } from './src/runtime/modelsVitePlugin';

// Cross-origin isolation lets onnxruntime-web use SharedArrayBuffer (multithreaded WASM).
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  // modelsPlugin: serves models/manifest.json + the files it lists at /models/ (dev) and copies them into dist.
  plugins: [react(), modelsPlugin()],
  // ORT's wasm must be served as-is, not pre-bundled (else the wasm request can get index.html).
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  // Code-split workers and multithreaded wasm need ES-module workers.
  worker: { format: 'es' },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    // runtime.html: standalone model-runtime page (Models panel), used by e2e/runtime.spec.ts.
    rolldownOptions: { input: { main: 'index.html', runtime: 'runtime.html' }, checks: { bundlerTimings: false } },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
