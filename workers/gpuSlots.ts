/**
 * GPU training slots: the devices a GPU training worker owns (`--gpus`, FLYWHEEL_GPU_DEVICES, else every GPU
 * `nvidia-smi -L` lists) and a supervisor that keeps one child worker process per device, each seeing only its device
 * (CUDA_VISIBLE_DEVICES) and taking one task at a time, restarted when it dies.
 */
import { spawnSync } from 'node:child_process';

/** What CUDA_VISIBLE_DEVICES accepts: an index, or a GPU / MIG UUID as `nvidia-smi -L` prints it. */
const DEVICE_ID = /^(\d+|(GPU|MIG)-[0-9A-Za-z/-]+)$/;

export class GpuDevicesError extends Error {
  constructor(
    message: string,
    readonly source: string,
  ) {
    super(message);
    this.name = 'GpuDevicesError';
  }
}

/** `"0,1"` → `["0", "1"]`; an empty list, a malformed or a repeated id throws, naming `source`. */
export function parseGpuDevices(text: string, source = '--gpus'): string[] {
  const ids = text.split(',').map((part) => part.trim());
  if (!ids.some(Boolean)) throw new GpuDevicesError(`${source} names no device: give device ids such as 0,1`, source);
  for (const id of ids)
    if (!DEVICE_ID.test(id))
      throw new GpuDevicesError(
        `${source}: "${id}" is not a device id (CUDA_VISIBLE_DEVICES ids: 0, 1, … or GPU-<uuid>)`,
        source,
      );
  const repeated = ids.find((id, index) => ids.indexOf(id) !== index);
  if (repeated !== undefined)
    throw new GpuDevicesError(`${source} names device ${repeated} twice: each slot owns its own device`, source);
  return ids;
}

/** The indexes in `nvidia-smi -L` output (`GPU 0: NVIDIA H200 (UUID: …)`); MIG lines are not slots of their own. */
export function listedGpus(nvidiaSmiOutput: string): string[] {
  return nvidiaSmiOutput
    .split('\n')
    .map((line) => /^GPU (\d+):/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined);
}

/** This machine's GPUs; none when nvidia-smi is missing or fails. */
export function detectGpuDevices(): string[] {
  const listed = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 30_000 });
  return listed.status === 0 ? listedGpus(listed.stdout) : [];
}

/** The flag over the environment over what the machine has. */
export function resolveGpuDevices(input: { flag?: string; env?: string; detect: () => string[] }): string[] {
  if (input.flag !== undefined) return parseGpuDevices(input.flag, '--gpus');
  if (input.env) return parseGpuDevices(input.env, 'FLYWHEEL_GPU_DEVICES');
  return input.detect();
}

/** The value after `name` (`--gpus 0,1` or `--gpus=0,1`); undefined when absent. */
export function flagValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) return argv[i + 1] ?? '';
    if (argv[i]!.startsWith(`${name}=`)) return argv[i]!.slice(name.length + 1);
  }
  return undefined;
}

/** The metrics port of slot `index`: consecutive ports from a configured one; 0 (a free port each) stays 0. */
export const slotMetricsPort = (basePort: number, index: number) => (basePort === 0 ? 0 : basePort + index);

/** A child that ran this long before dying starts a new count of crashes; quick deaths in a row back off. */
const HEALTHY_RUN_MS = 60_000;
/** Wait before restarting a child that died `crashesInARow` times in a row 1 s, doubling to 30 s. */
export function restartDelayMs(crashesInARow: number): number {
  return crashesInARow <= 0 ? 0 : Math.min(30_000, 1000 * 2 ** (crashesInARow - 1));
}

/** What the supervisor needs of a child process. */
export interface SlotChild {
  readonly pid?: number;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  kill(signal?: NodeJS.Signals): boolean;
}

export interface SlotSupervisorOptions {
  /** Starts the worker process that owns `device` (index: its position among the devices). */
  start(device: string, index: number): SlotChild;
  log: {
    info(fields: Record<string, unknown>, message: string): void;
    warn(fields: Record<string, unknown>, message: string): void;
  };
  /** @default setTimeout */
  wait?: (ms: number) => Promise<void>;
  /** @default Date.now */
  now?: () => number;
}

interface Slot {
  device: string;
  index: number;
  child?: SlotChild;
  exited?: Promise<void>;
  startedAt: number;
  restarts: number;
  crashesInARow: number;
}

/** One child per device, restarted when it exits unless the supervisor is stopping. */
export class GpuSlotSupervisor {
  private readonly slots: Slot[];
  private stopping = false;
  private readonly wait: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(
    devices: readonly string[],
    private readonly options: SlotSupervisorOptions,
  ) {
    if (!devices.length) throw new GpuDevicesError('a GPU slot supervisor needs at least one device', 'devices');
    this.slots = devices.map((device, index) => ({ device, index, startedAt: 0, restarts: 0, crashesInARow: 0 }));
    this.wait = options.wait ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
  }

  start(): void {
    for (const slot of this.slots) this.launch(slot);
  }

  /** Each slot's device, its child's pid and how often it was restarted. */
  state(): { device: string; pid?: number; restarts: number }[] {
    return this.slots.map(({ device, child, restarts }) => ({ device, pid: child?.pid, restarts }));
  }

  /** Sends `signal` to every child (they drain) and resolves once all exited; nothing is restarted after. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) slot.child?.kill(signal);
    await Promise.all(this.slots.map((slot) => slot.exited));
  }

  private launch(slot: Slot): void {
    const child = this.options.start(slot.device, slot.index);
    slot.child = child;
    slot.startedAt = this.now();
    slot.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve();
        if (this.stopping) return;
        void this.restart(slot, code, signal);
      });
    });
  }

  private async restart(slot: Slot, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    slot.crashesInARow = this.now() - slot.startedAt >= HEALTHY_RUN_MS ? 1 : slot.crashesInARow + 1;
    const delayMs = restartDelayMs(slot.crashesInARow);
    this.options.log.warn(
      { device: slot.device, pid: slot.child?.pid, code, signal, restartInMs: delayMs },
      `GPU slot ${slot.device}: its worker process exited (${signal ?? `code ${code}`}); restarting it`,
    );
    await this.wait(delayMs);
    if (this.stopping) return;
    slot.restarts += 1;
    this.launch(slot);
    this.options.log.info({ device: slot.device, pid: slot.child?.pid }, `GPU slot ${slot.device}: restarted`);
  }
}

/** In a slot's child: stops this process (a drain, as on SIGTERM) once its supervisor is gone, even SIGKILLed. */
export function watchParent(everyMs = 2000): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, everyMs);
  timer.unref();
}
