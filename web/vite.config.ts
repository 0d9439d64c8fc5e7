// Vite build of the Flywheel UI: served by the Flywheel server under /ui/ (server/ui.ts), built by scripts/ui.ts.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/ui/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024, sourcemap: false },
  // `vite dev` in web/ talks to a local Flywheel server.
  server: { proxy: { '/api': 'http://127.0.0.1:8470' } },
});
