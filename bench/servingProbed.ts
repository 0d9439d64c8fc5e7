/**
 * The serving process (serving/main.ts, unchanged) with bench/pauseProbe.ts inside it, for bench:serve's phase beside a
 * pipeline: the probe watches the event loop, GC and every pg pool the process opens, and answers on a listener of its
 * own (127.0.0.1, a free port, printed as `{"probe_port": N}` on stdout): `GET /` what the process paused for since
 * the last `GET /?reset=1`.
 *
 * Started by bench/serve.ts as `node --import tsx bench/servingProbed.ts` with FLYWHEEL_SERVING_PORT set.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { PauseProbe, stampResponses, trackPools } from './pauseProbe';

const probe = new PauseProbe(trackPools(pg));
stampResponses();
const listener = createServer((request, response) => {
  const text = JSON.stringify(probe.snapshot());
  if (request.url?.endsWith('reset=1')) probe.reset();
  response.writeHead(200, { 'content-type': 'application/json' }).end(text);
});
listener.listen(0, '127.0.0.1', () =>
  console.log(JSON.stringify({ probe_port: (listener.address() as AddressInfo).port })),
);
listener.unref();
await import('../serving/main');
