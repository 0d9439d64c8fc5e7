/**
 * A training worker. `--gpu` polls the GPU queue with tfjs-node-gpu, one slot per device: this process supervises one
 * child worker per GPU (`--gpus 0,1`, FLYWHEEL_GPU_DEVICES, else every GPU `nvidia-smi -L` lists), each started with
 * `--device <id>` and CUDA_VISIBLE_DEVICES=<id>, taking one task at a time and restarted when it dies. Otherwise the
 * CPU queue with the best CPU backend (tfjs-node, wasm, cpu).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv, loadConfig } from '../config/env';
import { componentLogger } from '../observability/log';
import { installWorkerLogging } from '../observability/temporal';
import {
  detectGpuDevices,
  flagValue,
  GpuDevicesError,
  GpuSlotSupervisor,
  resolveGpuDevices,
  slotMetricsPort,
  watchParent,
} from './gpuSlots';
import { runUntilSignalled } from './runWorkers';
import { buildLabel } from './versioning';
import { connectServices, createTrainingWorker } from './wiring';

const gpusFlag = flagValue(process.argv, '--gpus');
const gpu = process.argv.includes('--gpu') || gpusFlag !== undefined;
/** Set on a GPU slot's child: the one device it owns. */
const device = flagValue(process.argv, '--device');
const config = loadConfig();
const label = `flywheel ${gpu ? 'GPU' : 'CPU'} training worker`;
const devices = gpu && device === undefined ? ownedDevices() : [];

if (devices.length) await superviseSlots(devices);
else await runWorker();

function ownedDevices(): string[] {
  try {
    return resolveGpuDevices({ flag: gpusFlag, env: config.gpuDevices, detect: detectGpuDevices });
  } catch (error) {
    if (!(error instanceof GpuDevicesError)) throw error;
    console.error(`${label}: ${error.message}`);
    process.exit(2);
  }
}

async function runWorker(): Promise<void> {
  installWorkerLogging();
  // A slot's child stops with its supervisor, even one killed outright.
  if (device !== undefined) watchParent();
  else if (gpu)
    componentLogger('worker').warn({}, `${label}: no GPU found (nvidia-smi -L) and none given: one slot, no device`);
  const services = await connectServices(config, gpu ? 'worker-train-gpu' : 'worker-train-cpu');
  const worker = await createTrainingWorker(services, gpu ? config.taskQueues.trainGpu : config.taskQueues.trainCpu, {
    gpu,
    ...(device !== undefined ? { device: `cuda:${device}` } : {}),
  });
  await runUntilSignalled(
    services,
    [worker],
    `${label}${device !== undefined ? ` (device ${device})` : ''}${buildLabel(config.temporal.deployment)}`,
    [],
    config.observability,
  );
}

async function superviseSlots(owned: string[]): Promise<void> {
  const log = componentLogger('worker');
  const script = fileURLToPath(import.meta.url);
  const supervisor = new GpuSlotSupervisor(owned, {
    log,
    start: (id, index) =>
      spawn(process.execPath, [...process.execArgv, script, '--gpu', '--device', id], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: childEnv({
          CUDA_VISIBLE_DEVICES: id,
          FLYWHEEL_WORKER_METRICS_PORT: String(slotMetricsPort(config.observability.workerMetricsPort, index)),
        }),
      }),
  });
  supervisor.start();
  log.info(
    { devices: owned, slots: supervisor.state() },
    `${label}: one worker process per device (${owned.join(', ')}), each taking one task at a time`,
  );
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => {
        log.info({ signal }, `${label}: draining the device workers`);
        // Stopping before any child's exit is seen: a child draining on the same Ctrl-C is not restarted.
        void supervisor.stop('SIGTERM').then(resolve);
      });
  });
  // A restart that was waiting (its back-off timer) must not hold the process.
  process.exit(0);
}
