/**
 * A record as a protobuf message takes it: what REST answers null is absent (proto3 has no null),
 * and a Date is its ISO string, as in the REST JSON.
 */
export type Message<T> = T extends null
  ? undefined
  : T extends Date
    ? string
    : T extends readonly (infer Item)[]
      ? Message<Item>[]
      : T extends object
        ? { [Key in keyof T]: Message<T[Key]> }
        : T;

/** The value as REST's JSON has it, nulls left out: what the gRPC handler answers. */
export function toMessage<T>(value: T): Message<T> {
  return JSON.parse(JSON.stringify(value, (_key, field: unknown) => (field === null ? undefined : field))) as Message<T>;
}
