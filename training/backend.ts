/**
 * Loads the best TF.js backend available, in order: tfjs-node-gpu (GPU workers only), tfjs-node, wasm, cpu.
 * The native ones are optional dependencies that often fail to install; every run records which one it got.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type TfModule = typeof tf;

const require = createRequire(import.meta.url);
let loaded: Promise<{ tf: TfModule; backend: BackendName }> | undefined;

async function tryNative(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<TfModule | undefined> {
  try {
    // The native packages re-export the whole tfjs API with their backend registered.
    return (await import(pkg)) as unknown as TfModule;
  } catch {
    return undefined;
  }
}

/** Resolves once per process; `preferGpu` only on GPU workers. `FLYWHEEL_TF_BACKEND` pins one (wasm | cpu). */
export function loadTf(options: { preferGpu?: boolean; pin?: string } = {}): Promise<{ tf: TfModule; backend: BackendName }> {
  loaded ??= (async () => {
    if (!options.pin || options.pin === 'tensorflow' || options.pin === 'tensorflow-gpu') {
      if (options.preferGpu || options.pin === 'tensorflow-gpu') {
        const gpu = await tryNative('@tensorflow/tfjs-node-gpu');
        if (gpu) return { tf: gpu, backend: 'tensorflow-gpu' as const };
      }
      const native = await tryNative('@tensorflow/tfjs-node');
      if (native) return { tf: native, backend: 'tensorflow' as const };
    }
    if (!options.pin || options.pin === 'wasm') {
      try {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
        if (await tf.setBackend('wasm')) {
          await tf.ready();
          return { tf, backend: 'wasm' as const };
        }
      } catch {
        // fall through to the pure-JS backend
      }
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return { tf, backend: 'cpu' as const };
  })();
  return loaded;
}
