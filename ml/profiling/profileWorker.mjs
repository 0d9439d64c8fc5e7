// Thread entry for parallel profiling: registers the TypeScript loader, then runs the worker side.
import { register } from 'tsx/esm/api';

register();
await import('./profileWorker.ts');
