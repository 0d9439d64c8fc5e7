/** A registered model as a runner, by its artifact key: `….onnx` is ONNX (`signature.json` beside it), else TF.js. */
import type { ObjectStore } from '../storage/objectStore';
import { loadTf, type TfModule } from '../training/backend';
import { deserializeModel, type ModelArtifact } from '../training/model';
import { OnnxRunner } from './onnx';
import { isOnnxKey, siblingKey, type ModelRunner } from './runner';
import { parseSignature, type Signature } from './signature';
import { TfjsRunner } from './tfjs';

export interface LoadOptions {
  /** TF.js as the process loaded it; loaded on first need when absent. */
  tf?: TfModule;
  /** The TF.js backend name, for the `tfjs-<backend>` platform. */
  backend?: string;
}

export const signatureKey = (artifactKey: string) => siblingKey(artifactKey, 'signature.json');

/** An ONNX model's signature, read and checked; `SignatureError` names its bad field. */
export async function loadSignature(store: ObjectStore, artifactKey: string): Promise<Signature> {
  const key = signatureKey(artifactKey);
  return parseSignature(await store.getJson<unknown>(key), key);
}

export async function loadRunner(
  store: ObjectStore,
  artifactKey: string,
  options: LoadOptions = {},
): Promise<ModelRunner> {
  if (isOnnxKey(artifactKey)) {
    const signature = await loadSignature(store, artifactKey);
    const bytes = await store.getBuffer(artifactKey);
    return OnnxRunner.create(bytes, signature, artifactKey);
  }
  const artifact = await store.getJson<ModelArtifact>(artifactKey);
  let { tf, backend } = options;
  if (!tf) ({ tf, backend } = await loadTf());
  return new TfjsRunner(tf, await deserializeModel(tf, artifact), artifact.preprocessor, `tfjs-${backend ?? 'cpu'}`);
}

/** A classification model's classes in output order, without loading the model (monitoring, A/B comparisons). */
export async function modelClasses(store: ObjectStore, artifactKey: string): Promise<string[]> {
  if (isOnnxKey(artifactKey)) return (await loadSignature(store, artifactKey)).classes ?? [];
  const artifact = await store.getJson<{ preprocessor: { target: { classes?: string[] } } }>(artifactKey);
  return artifact.preprocessor.target.classes ?? [];
}
