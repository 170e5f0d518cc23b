/**
 * Standalone model-runtime page (/runtime.html): the Models panel on its own,
 * for diagnostics and e2e/runtime.spec.ts independent of the app shell.
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ModelsStatusBadge } from './BackendBadge';
import { ModelsPanel } from './ModelsPanel';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <main style={{ maxWidth: 480, margin: '0 auto', padding: 12, fontFamily: 'system-ui, sans-serif' }}>
      <h1 style={{ fontSize: 18 }}>RS Lens · model runtime</h1>
      <ModelsStatusBadge />
      <ModelsPanel />
    </main>
  </StrictMode>,
);
