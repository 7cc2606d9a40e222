import { joinParts, type EasyRemoteError } from '@easyremote/protocol';
import type { CallSink } from './call-sink.js';

/** Collects a unary outcome as a promise (the result cache's compute function). */
export class PromiseSink implements CallSink {
  private resolveFn!: (value: Buffer) => void;
  private rejectFn!: (err: EasyRemoteError) => void;
  readonly promise = new Promise<Buffer>((resolve, reject) => {
    this.resolveFn = resolve;
    this.rejectFn = reject;
  });
  private readonly parts: Buffer[] = [];
  result(payload: Buffer): void {
    this.resolveFn(joinParts(this.parts, payload));
  }
  resultPart(data: Buffer): boolean {
    this.parts.push(data);
    return true;
  }
  chunk(): boolean {
    return true;
  }
  progress(): void {}
  end(): void {
    this.resolveFn(Buffer.alloc(0));
  }
  error(err: EasyRemoteError): void {
    this.rejectFn(err);
  }
  onDrain(): void {}
}
