/**
 * bench:soak's prediction traffic: bench/serveLoad.ts's open-loop generator in a process of its own, writing its result
 * to a file. A soak's result holds every answered request's id (hundreds of thousands), more than a pipe takes before
 * the generator's `process.exit` would cut it off.
 * Usage: node --import tsx bench/soakLoad.ts <spec.json> <result.json>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { runLoad, type LoadSpec } from './serveLoad';

const [specFile, resultFile] = process.argv.slice(2) as [string, string];
const result = await runLoad(JSON.parse(readFileSync(specFile, 'utf8')) as LoadSpec);
writeFileSync(resultFile, JSON.stringify(result));
process.exit(0);
