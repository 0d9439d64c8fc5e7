/**
 * OIP v2's binary tensor data extension (KServe / Triton `binary_tensor_data`), which tritonclient and KServe's v2
 * clients use by default: a request body is a JSON header of `Inference-Header-Content-Length` bytes followed by the
 * raw bytes of each input that has `parameters.binary_data_size`, in input order; a response may carry its outputs the
 * same way. Numbers are little-endian; a BYTES element is a 4-byte little-endian length and then its bytes.
 */
import { HttpError } from './httpError';

/**
 * The fixed-width datatypes: each element's size and reader (little-endian). BYTES is length-prefixed; FP16 / BF16
 * are not taken.
 */
const FIXED: Record<string, { width: number; read: (bytes: Buffer, at: number) => number | boolean }> = {
  BOOL: { width: 1, read: (b, at) => b[at] !== 0 },
  INT8: { width: 1, read: (b, at) => b.readInt8(at) },
  UINT8: { width: 1, read: (b, at) => b.readUInt8(at) },
  INT16: { width: 2, read: (b, at) => b.readInt16LE(at) },
  UINT16: { width: 2, read: (b, at) => b.readUInt16LE(at) },
  INT32: { width: 4, read: (b, at) => b.readInt32LE(at) },
  UINT32: { width: 4, read: (b, at) => b.readUInt32LE(at) },
  FP32: { width: 4, read: (b, at) => b.readFloatLE(at) },
  INT64: { width: 8, read: (b, at) => Number(b.readBigInt64LE(at)) },
  UINT64: { width: 8, read: (b, at) => Number(b.readBigUInt64LE(at)) },
  FP64: { width: 8, read: (b, at) => b.readDoubleLE(at) },
};

/** The JSON header's length from `Inference-Header-Content-Length`, checked against the body; undefined without it. */
export function headerLength(value: string | string[] | undefined, bodyBytes: number): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0]! : value;
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > bodyBytes)
    throw new HttpError(
      400,
      `inference-header-content-length: expected the JSON header's size, 1 to ${bodyBytes} bytes, got "${text.slice(0, 40)}"`,
    );
  return n;
}

function decodeElements(datatype: string, bytes: Buffer, where: string): unknown[] {
  if (datatype === 'BYTES') {
    const values: string[] = [];
    for (let at = 0; at < bytes.length;) {
      if (at + 4 > bytes.length) throw new HttpError(400, `${where}: a BYTES element's 4-byte length is cut short`);
      const length = bytes.readUInt32LE(at);
      if (at + 4 + length > bytes.length)
        throw new HttpError(400, `${where}: a BYTES element of ${length} bytes runs past the input's data`);
      values.push(bytes.toString('utf8', at + 4, at + 4 + length));
      at += 4 + length;
    }
    return values;
  }
  const fixed = FIXED[datatype];
  if (!fixed)
    throw new HttpError(
      400,
      `${where}: datatype "${datatype}" is not taken as binary data (${[...Object.keys(FIXED), 'BYTES'].join(', ')})`,
    );
  const { width, read } = fixed;
  if (bytes.length % width !== 0)
    throw new HttpError(400, `${where}: ${bytes.length} bytes is not a whole number of ${datatype} elements`);
  const values = new Array<number | boolean>(bytes.length / width);
  for (let i = 0; i < values.length; i++) {
    const value = read(bytes, i * width);
    // JSON cannot carry NaN or Infinity; binary data is held to the same values.
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new HttpError(400, `${where}: element ${i} is ${value}, not a finite number`);
    values[i] = value;
  }
  return values;
}

/**
 * Fills `data` of every input that names a `binary_data_size` from `binary` (the bytes after the JSON header), in
 * input order; the sizes must use the bytes up exactly. Errors name the input.
 */
export function attachBinaryInputs(body: unknown, binary: Buffer): void {
  const inputs = (body as { inputs?: unknown })?.inputs;
  if (!Array.isArray(inputs)) return;
  let at = 0;
  inputs.forEach((input: unknown, i) => {
    const tensor = (input ?? {}) as { name?: unknown; datatype?: unknown; parameters?: { binary_data_size?: unknown } };
    const size = tensor.parameters?.binary_data_size;
    if (size === undefined) return;
    const where = `inputs[${i}] (${typeof tensor.name === 'string' ? tensor.name : '?'})`;
    if (!Number.isSafeInteger(size) || (size as number) < 0)
      throw new HttpError(400, `${where}.parameters.binary_data_size: expected a byte count`);
    if (at + (size as number) > binary.length)
      throw new HttpError(
        400,
        `${where}: binary_data_size ${String(size)} runs past the body (${binary.length - at} bytes left)`,
      );
    const data = decodeElements(String(tensor.datatype), binary.subarray(at, at + (size as number)), where);
    at += size as number;
    (input as { data?: unknown }).data = data;
  });
  if (at !== binary.length)
    throw new HttpError(400, `the body has ${binary.length - at} bytes after the inputs' binary_data_size add up`);
}

/** Whether the caller asked for binary outputs: `parameters.binary_data_output`, or the output's own `binary_data`. */
export function wantsBinaryOutput(body: unknown, output: string): boolean {
  const request = (body ?? {}) as {
    parameters?: { binary_data_output?: unknown };
    outputs?: { name?: unknown; parameters?: { binary_data?: unknown } }[];
  };
  const named = Array.isArray(request.outputs) ? request.outputs.find((o) => o?.name === output) : undefined;
  if (typeof named?.parameters?.binary_data === 'boolean') return named.parameters.binary_data;
  return request.parameters?.binary_data_output === true;
}

/** An output's elements as binary data: FP32 little-endian, or BYTES with 4-byte length prefixes. */
export function encodeOutput(values: unknown[], datatype: 'FP32' | 'BYTES'): Buffer {
  if (datatype === 'FP32') {
    const bytes = Buffer.alloc(values.length * 4);
    values.forEach((value, i) => bytes.writeFloatLE(Number(value), i * 4));
    return bytes;
  }
  return Buffer.concat(
    values.flatMap((value) => {
      const text = Buffer.from(String(value), 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(text.length);
      return [length, text];
    }),
  );
}
