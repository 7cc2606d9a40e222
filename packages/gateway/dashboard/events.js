// The live stream (GET api/events) read with fetch rather than EventSource: EventSource
// cannot send an authorization header, and a gateway with principals wants one on every
// read. The server sends whole snapshots, so a reconnect loses nothing but the gap.

const RETRY_MS = [1_000, 2_000, 5_000, 10_000];
/** A refused token will not start working by itself: ask again rarely (a new token restarts at once). */
const REFUSED_RETRY_MS = 30_000;

/** Splits a text/event-stream body into (event, data) pairs. */
async function readEvents(body, onEvent, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
    }
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()));
  });

/**
 * Keeps one stream open, reconnecting with backoff. `onStatus` gets
 * { state: 'connecting' | 'live' | 'refused' | 'retrying', message }.
 * Returns { restart(), stop() }: restart() reconnects now (after a token change).
 */
export function connectEvents(headers, onSnapshot, onStatus) {
  let controller;
  let stopped = false;

  async function run(signal) {
    for (let failures = 0; !signal.aborted; ) {
      onStatus({ state: 'connecting', message: '' });
      let wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
      try {
        const res = await fetch('api/events', { headers: headers(), cache: 'no-store', signal });
        if (res.ok) {
          failures = 0;
          onStatus({ state: 'live', message: '' });
          await readEvents(res.body, (event, data) => event === 'snapshot' && onSnapshot(JSON.parse(data)), signal);
          if (!signal.aborted) onStatus({ state: 'retrying', message: 'the gateway closed the stream' });
        } else {
          const body = await res.json().catch(() => ({}));
          const message = body.message ?? `HTTP ${res.status}`;
          if (res.status === 401 || res.status === 403) {
            onStatus({ state: 'refused', message });
            wait = REFUSED_RETRY_MS;
          } else {
            failures++;
            onStatus({ state: 'retrying', message });
            const after = Number(res.headers.get('retry-after'));
            if (after > 0) wait = after * 1000;
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        onStatus({ state: 'retrying', message: `cannot reach the gateway (${err.message})` });
      }
      await sleep(wait, signal);
    }
  }

  function restart() {
    controller?.abort();
    if (stopped) return;
    controller = new AbortController();
    void run(controller.signal);
  }

  restart();
  return {
    restart,
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}
