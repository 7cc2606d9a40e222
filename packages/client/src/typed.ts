// Types that carry a node's service class to the client: `client.proxy<Trainer>()`.
import type { RemoteCall, RemoteStream } from './remote-call.js';

type Yielded<R> = R extends AsyncIterable<infer Y> ? Y : R extends Iterable<infer Y> ? Y : never;
type IsStream<R> = R extends AsyncGenerator<any, any, any> | Generator<any, any, any> | AsyncIterable<any> ? true : false;

export type RemoteMethod<F> = F extends (...args: infer A) => infer R
  ? (...args: A) => IsStream<R> extends true ? RemoteStream<Yielded<R>> : RemoteCall<Awaited<R>>
  : never;

/** The callable view of a service class: same method names and argument types; results become awaitable or iterable. */
export type Remote<S> = {
  readonly [K in keyof S as S[K] extends (...args: any[]) => any ? (K extends string ? K : never) : never]: RemoteMethod<S[K]>;
};
