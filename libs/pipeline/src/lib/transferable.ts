/**
 * The whole ArrayBuffer of `input` when it owns it alone, ready to transfer to a worker thread;
 * otherwise a private copy, because transferring a slice of Node's shared allocation pool (or of
 * any larger buffer) would detach unrelated buffers.
 */
export function transferable(input: Buffer): { buffer: ArrayBuffer; byteOffset: number; byteLength: number } {
  if (input.buffer instanceof ArrayBuffer && input.byteOffset === 0 && input.byteLength === input.buffer.byteLength) {
    return { buffer: input.buffer, byteOffset: 0, byteLength: input.byteLength };
  }
  const copy = new ArrayBuffer(input.byteLength);
  new Uint8Array(copy).set(input);
  return { buffer: copy, byteOffset: 0, byteLength: input.byteLength };
}
