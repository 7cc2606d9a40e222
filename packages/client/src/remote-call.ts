// What calling a remote function returns: awaitable (ordinary functions) and iterable
// (generator functions). Nothing is sent until it is awaited or iterated.

export interface RemoteCall<T> extends PromiseLike<T> {
  catch<E = never>(onRejected?: ((reason: unknown) => E | PromiseLike<E>) | null): Promise<T | E>;
  finally(onFinally?: (() => void) | null): Promise<T>;
}

export interface RemoteStream<T> extends AsyncIterable<T> {}

/** Untyped calls (the transparent proxy) may be either; the caller decides by using it. */
export type AnyRemoteCall = RemoteCall<any> & RemoteStream<any>;

export class LazyRemoteCall<T> implements RemoteCall<T>, RemoteStream<T> {
  private promise: Promise<T> | undefined;

  constructor(
    private readonly unary: () => Promise<T>,
    private readonly streamed: () => AsyncIterable<T>,
  ) {}

  private run(): Promise<T> {
    return (this.promise ??= this.unary());
  }

  then<A = T, B = never>(onFulfilled?: ((value: T) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.run().then(onFulfilled, onRejected);
  }

  catch<E = never>(onRejected?: ((reason: unknown) => E | PromiseLike<E>) | null): Promise<T | E> {
    return this.run().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.run().finally(onFinally);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.streamed()[Symbol.asyncIterator]();
  }
}
