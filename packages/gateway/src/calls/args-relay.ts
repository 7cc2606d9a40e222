// The arguments of a session call that arrive in parts: relayed to the node as they come,
// never assembled at the gateway. Until the call has a node (it may wait in the admission
// queue) the parts wait here, bounded by the credit the client was given.
import { PAYLOAD_PART_CREDIT } from '@easyremote/protocol';

/** Where relayed parts go: the node's stream, and whether it can take more now. */
export interface PartTarget {
  send(data: Buffer): void;
  writable(): boolean;
  /** Calls `listener` once the stream can take more. */
  whenWritable(listener: () => void): void;
}

export class ArgsRelay {
  private waiting: Buffer[] = [];
  private target: PartTarget | undefined;
  /** Bytes received so far, the first part included. */
  received: number;
  /** Parts relayed whose credit the client has not been given back yet. */
  private owed = 0;
  private awaitingDrain = false;

  constructor(
    /** Total argument bytes the caller announced. */
    readonly total: number,
    firstPartBytes: number,
    /** Gives the client credit for more parts. */
    private readonly grant: (parts: number) => void,
  ) {
    this.received = firstPartBytes;
  }

  /** Whether every byte has arrived. */
  get complete(): boolean {
    return this.received >= this.total;
  }

  /** A part from the client; false when it goes past the announced total (a protocol error). */
  push(data: Buffer): boolean {
    if (this.received + data.length > this.total) return false;
    this.received += data.length;
    if (this.target === undefined) this.waiting.push(data);
    else this.relay(this.target, data);
    return true;
  }

  /** The call has a node: what waited goes now, the rest as it comes. */
  attach(target: PartTarget): void {
    this.target = target;
    const waiting = this.waiting;
    this.waiting = [];
    for (const part of waiting) this.relay(target, part);
  }

  /** Gives the client back the credit of relayed parts, once the node's stream can take more. */
  private release(): void {
    const target = this.target;
    if (target === undefined || this.owed === 0) return;
    if (!target.writable()) {
      if (!this.awaitingDrain) {
        this.awaitingDrain = true;
        target.whenWritable(() => {
          this.awaitingDrain = false;
          this.release();
        });
      }
      return;
    }
    const parts = this.owed;
    this.owed = 0;
    this.grant(parts);
  }

  /** The call is over: nothing more is relayed or granted. */
  detach(): void {
    this.target = undefined;
    this.waiting = [];
    this.owed = 0;
  }

  private relay(target: PartTarget, data: Buffer): void {
    target.send(data);
    // Credit goes back in batches, while the node's stream keeps up (else when it drains).
    if (++this.owed >= PAYLOAD_PART_CREDIT >> 1) this.release();
  }
}
