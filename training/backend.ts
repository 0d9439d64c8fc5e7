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
export function loadTf(
  options: { preferGpu?: boolean; pin?: string } = {},
): Promise<{ tf: TfModule; backend: BackendName }> {
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
          fastTransposedMatMul();
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

interface KernelTensor {
  dataId: object;
  shape: number[];
}
interface KernelArgs {
  inputs: Record<string, KernelTensor>;
  backend: { disposeData(dataId: object): void };
  attrs: Record<string, unknown>;
}

/**
 * tfjs-backend-wasm runs a matMul with a transposed operand (5 of the 8 in a dense layer's training step) in a scalar
 * loop instead of XNNPACK. Transposing the operand first and calling the fast path is ~1.8× faster per training step
 * on the bench:train MLP; results agree to ~1e-7 (and are deterministic, as before).
 */
function fastTransposedMatMul(): void {
  const transpose = tf.getKernel('Transpose', 'wasm');
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const original = tf.getKernel(name, 'wasm');
    if (!original || !transpose) return;
    const run = original.kernelFunc as unknown as (args: KernelArgs) => KernelTensor;
    const swapLast = (args: KernelArgs, x: KernelTensor, temps: KernelTensor[]) => {
      const perm = x.shape.map((_, i) => i);
      const r = perm.length;
      [perm[r - 1], perm[r - 2]] = [perm[r - 2]!, perm[r - 1]!];
      const y = (transpose.kernelFunc as unknown as (a: KernelArgs) => KernelTensor)({
        inputs: { x },
        backend: args.backend,
        attrs: { perm },
      });
      temps.push(y);
      return y;
    };
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: ((args: KernelArgs) => {
        if (!args.attrs.transposeA && !args.attrs.transposeB) return run(args);
        const temps: KernelTensor[] = [];
        const a = args.attrs.transposeA ? swapLast(args, args.inputs.a!, temps) : args.inputs.a!;
        const b = args.attrs.transposeB ? swapLast(args, args.inputs.b!, temps) : args.inputs.b!;
        const out = run({
          ...args,
          inputs: { ...args.inputs, a, b },
          attrs: { ...args.attrs, transposeA: false, transposeB: false },
        });
        for (const t of temps) args.backend.disposeData(t.dataId);
        return out;
      }) as unknown as typeof original.kernelFunc,
    });
  }
}
