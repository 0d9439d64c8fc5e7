/** GPU training slots: device ids, what the worker owns, and the supervisor keeping one child per device. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/env';
import {
  flagValue,
  GpuSlotSupervisor,
  listedGpus,
  parseGpuDevices,
  resolveGpuDevices,
  restartDelayMs,
  slotMetricsPort,
  type SlotChild,
} from '../../workers/gpuSlots';

const NVIDIA_SMI = `GPU 0: NVIDIA H200 (UUID: GPU-5d3c0b6a-1111-2222-3333-444455556666)
GPU 1: NVIDIA H200 (UUID: GPU-0a1b2c3d-1111-2222-3333-444455556666)
  MIG 1g.18gb     Device  0: (UUID: MIG-9f8e7d6c-1111-2222-3333-444455556666)
`;

/** A child process stand-in: records the signals sent, exits when told. */
class FakeChild extends EventEmitter implements SlotChild {
  static nextPid = 100;
  readonly pid = FakeChild.nextPid++;
  readonly signals: string[] = [];
  constructor(readonly device: string) {
    super();
  }
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    return true;
  }
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.emit('exit', code, signal);
  }
}

function supervised(devices: string[], clock = { now: 0 }) {
  const children: FakeChild[] = [];
  const waits: number[] = [];
  let release: () => void = () => undefined;
  const warnings: string[] = [];
  const supervisor = new GpuSlotSupervisor(devices, {
    start(device) {
      const child = new FakeChild(device);
      children.push(child);
      return child;
    },
    log: { info: () => undefined, warn: (_fields, message) => warnings.push(message) },
    now: () => clock.now,
    wait: (ms) => {
      waits.push(ms);
      return new Promise<void>((resolve) => (release = resolve));
    },
  });
  return { supervisor, children, waits, warnings, clock, restartNow: () => release() };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('GPU devices', () => {
  it('parses device lists and refuses empty, malformed and repeated ids, naming where they came from', () => {
    expect(parseGpuDevices('0,1')).toEqual(['0', '1']);
    expect(parseGpuDevices(' 2 , 0 ')).toEqual(['2', '0']);
    expect(parseGpuDevices('GPU-5d3c0b6a-1111,MIG-9f8e-2222')).toEqual(['GPU-5d3c0b6a-1111', 'MIG-9f8e-2222']);
    expect(() => parseGpuDevices(' , ')).toThrow('--gpus names no device');
    expect(() => parseGpuDevices('0,cuda:1', 'FLYWHEEL_GPU_DEVICES')).toThrow(
      'FLYWHEEL_GPU_DEVICES: "cuda:1" is not a device id',
    );
    expect(() => parseGpuDevices('1,0,1')).toThrow('names device 1 twice');
  });

  it('owns the devices of the flag, else of FLYWHEEL_GPU_DEVICES, else those nvidia-smi lists', () => {
    expect(listedGpus(NVIDIA_SMI)).toEqual(['0', '1']);
    expect(listedGpus('')).toEqual([]);
    const detect = () => listedGpus(NVIDIA_SMI);
    expect(resolveGpuDevices({ flag: '3', env: '1,2', detect })).toEqual(['3']);
    expect(resolveGpuDevices({ env: '1,2', detect })).toEqual(['1', '2']);
    expect(resolveGpuDevices({ detect })).toEqual(['0', '1']);
    expect(resolveGpuDevices({ detect: () => [] })).toEqual([]);
    expect(loadConfig({ FLYWHEEL_GPU_DEVICES: '0,1' }).gpuDevices).toBe('0,1');
    expect(loadConfig({}).gpuDevices).toBeUndefined();
  });

  it('reads --gpus and --device in both spellings; each slot gets its own metrics port unless ports are free ones', () => {
    expect(flagValue(['node', 'train.ts', '--gpu', '--gpus', '0,1'], '--gpus')).toBe('0,1');
    expect(flagValue(['node', 'train.ts', '--gpus=2'], '--gpus')).toBe('2');
    expect(flagValue(['node', 'train.ts', '--gpu'], '--gpus')).toBeUndefined();
    expect(flagValue(['node', 'train.ts', '--gpus'], '--gpus')).toBe('');
    expect([0, 1, 2].map((index) => slotMetricsPort(9464, index))).toEqual([9464, 9465, 9466]);
    expect([0, 1].map((index) => slotMetricsPort(0, index))).toEqual([0, 0]);
  });
});

describe('the GPU slot supervisor', () => {
  it('starts one child per device and restarts a dead one on the same device, backing off while it keeps dying', async () => {
    const { supervisor, children, waits, warnings, clock, restartNow } = supervised(['0', '1']);
    supervisor.start();
    expect(children.map((child) => child.device)).toEqual(['0', '1']);

    clock.now = 1000; // died 1 s after starting
    children[1]!.exit(null, 'SIGKILL');
    await settle();
    expect(warnings).toEqual(['GPU slot 1: its worker process exited (SIGKILL); restarting it']);
    restartNow();
    await settle();
    expect(children.map((child) => child.device)).toEqual(['0', '1', '1']);
    expect(supervisor.state()).toEqual([
      { device: '0', pid: children[0]!.pid, restarts: 0 },
      { device: '1', pid: children[2]!.pid, restarts: 1 },
    ]);

    children[2]!.exit(1); // again, at once: a longer wait
    await settle();
    restartNow();
    await settle();
    clock.now = 500_000; // this one ran for minutes before dying: the count starts again
    children[3]!.exit(1);
    await settle();
    expect(waits).toEqual([restartDelayMs(1), restartDelayMs(2), restartDelayMs(1)]);
    expect(restartDelayMs(1)).toBeLessThan(restartDelayMs(2));
    expect(restartDelayMs(20)).toBe(30_000);
  });

  it('on stop, signals every child, waits for all to exit and restarts none', async () => {
    const { supervisor, children, restartNow } = supervised(['0', '1']);
    supervisor.start();
    let stopped = false;
    const stopping = supervisor.stop('SIGTERM').then(() => (stopped = true));
    expect(children.map((child) => child.signals)).toEqual([['SIGTERM'], ['SIGTERM']]);
    children[0]!.exit(0);
    await settle();
    expect(stopped).toBe(false); // device 1 is still draining its task
    children[1]!.exit(0);
    await stopping;
    restartNow();
    await settle();
    expect(children).toHaveLength(2);
  });

  it('does not restart a child whose back-off was still running when the supervisor stopped', async () => {
    const { supervisor, children, restartNow } = supervised(['0']);
    supervisor.start();
    children[0]!.exit(1);
    await settle();
    await supervisor.stop();
    restartNow();
    await settle();
    expect(children).toHaveLength(1);
    expect(() => new GpuSlotSupervisor([], { start: () => new FakeChild('x'), log: console })).toThrow(
      'needs at least one device',
    );
  });
});
