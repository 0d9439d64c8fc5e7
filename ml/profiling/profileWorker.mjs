// Thread entry for parallel profiling: registers the TypeScript loader, then runs the worker side.
// No top-level await here: V8 (Node 20) aborts the whole process when a thread is terminated while an entry module
// with top-level await is still evaluating ("Check failed: (location_) != nullptr" in ExecuteAsyncModule).
// The worker side posts 'ready' once loaded, and ParallelProfiler terminates no thread before that.
import { register } from 'tsx/esm/api';

register();
import('./profileWorker.ts');
