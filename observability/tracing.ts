/**
 * OpenTelemetry traces through Temporal's interceptors: a workflow start, the workflow and its activities share one
 * trace, batched and exported over OTLP/HTTP. Off unless configured; then nothing of OpenTelemetry is even loaded.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { Context, ContextManager } from '@opentelemetry/api';
import type { ClientInterceptors } from '@temporalio/client';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
import type { ObservabilitySettings } from '../config/env';

export type TracingSettings = NonNullable<ObservabilitySettings['tracing']>;

/** What a process wires into its Temporal client and workers while tracing is on. */
export interface Tracing {
  serviceName: string;
  /** A workflow start (or signal) carries the caller's span context in its headers. */
  clientInterceptors: ClientInterceptors;
  /** Workflow interceptor modules (bundled into the sandbox), activity interceptors, and the workflow span sink. */
  worker: {
    workflowModules: string[];
    activity: ActivityInterceptorsFactory[];
    sinks: InjectedSinks<OpenTelemetrySinks>;
  };
  /** Exports the spans still batched; a worker calls it as it shuts down. */
  flush(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** OpenTelemetry's context for async code, on AsyncLocalStorage (the part of sdk-trace-node this needs). */
class AsyncLocalContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  constructor(private readonly root: Context) {}
  active(): Context {
    return this.storage.getStore() ?? this.root;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(context, () => fn.apply(thisArg, args));
  }
  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const call = (thisArg: unknown, args: unknown[]) =>
      this.with(context, () => (target as (...a: unknown[]) => unknown).apply(thisArg, args));
    return function (this: unknown, ...args: unknown[]) {
      return call(this, args);
    } as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

let started: Promise<Tracing> | undefined;

/**
 * Starts tracing for this process, once: the global tracer provider is process-wide, so a second call (another
 * worker in the same process) gets the first one's. Resolves undefined when tracing is off.
 */
export function startTracing(settings: TracingSettings | undefined, component: string): Promise<Tracing | undefined> {
  if (!settings) return Promise.resolve(undefined);
  return (started ??= install(settings, settings.serviceName ?? `flywheel-${component}`));
}

async function install(settings: TracingSettings, serviceName: string): Promise<Tracing> {
  const [api, core, resources, sdk, otlp, temporalOtel] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@temporalio/interceptors-opentelemetry'),
  ]);
  const resource = resources.Resource.default().merge(new resources.Resource({ 'service.name': serviceName }));
  const processor = new sdk.BatchSpanProcessor(new otlp.OTLPTraceExporter({ url: settings.endpoint }));
  const provider = new sdk.BasicTracerProvider({ resource, spanProcessors: [processor] });
  provider.register({
    contextManager: new AsyncLocalContextManager(api.ROOT_CONTEXT),
    propagator: new core.W3CTraceContextPropagator(),
  });
  return {
    serviceName,
    clientInterceptors: { workflow: [new temporalOtel.OpenTelemetryWorkflowClientInterceptor()] },
    worker: {
      workflowModules: [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')],
      activity: [
        (ctx) => ({
          inbound: new temporalOtel.OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new temporalOtel.OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      // Workflow spans leave the sandbox through this sink into the same batch as the activity spans.
      sinks: { exporter: temporalOtel.makeWorkflowExporter(processor, resource) },
    },
    flush: () => provider.forceFlush(),
  };
}
