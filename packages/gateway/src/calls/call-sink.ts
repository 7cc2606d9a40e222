import type { EasyRemoteError } from '@easyremote/protocol';

/** Where a call's outcome goes: a gRPC unary callback, a server stream, or a test. */
export interface CallSink {
  /** The result; after resultPart()s it is the last part, and the value is their concatenation. */
  result(payload: Buffer, nodeId: string, cached: boolean): void;
  /** A part of a large result, in order. Returns false when the consumer is slow, like chunk(). */
  resultPart(data: Buffer): boolean;
  /** Returns false when the consumer is slow; `onDrain` then fires once it can take more. */
  chunk(payload: Buffer): boolean;
  progress(fraction: number, message: string): void;
  end(): void;
  error(err: EasyRemoteError): void;
  onDrain(listener: () => void): void;
}
