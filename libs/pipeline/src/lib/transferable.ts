/**
 * The whole ArrayBuffer of `input` when it owns it alone, ready to transfer to a worker thread;
 * otherwise a private copy, because transferring a slice of Node's shared allocation pool (or of
 * any larger buffer) would detach unrelated buffers.
 */
export function transferable(input: Buffer): { buffer: ArrayBuffer; byteOffset: number; byteLength: number } {
  if (ownsWholeBuffer(input)) {
    return { buffer: input.buffer, byteOffset: 0, byteLength: input.byteLength };
  }
  const copy = new ArrayBuffer(input.byteLength);
  new Uint8Array(copy).set(input);
  return { buffer: copy, byteOffset: 0, byteLength: input.byteLength };
}

/** True when `input` spans its whole (non-shared) ArrayBuffer, which can then be handed on alone. */
export function ownsWholeBuffer(input: Buffer): input is Buffer & { buffer: ArrayBuffer } {
  return input.buffer instanceof ArrayBuffer && input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
}
