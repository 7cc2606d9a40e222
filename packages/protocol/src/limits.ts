// Limits on what callers and nodes may send. The gateway checks each before doing any
// work and refuses with INVALID_ARGUMENT (or PAYLOAD_TOO_LARGE for payloads) naming the
// limit; proto/README.md lists them. Bounded inputs keep one caller or node from
// exhausting the gateway's memory or stalling a connection shared with others.

/** Longest function name a call may carry, in UTF-8 bytes (registered names are shorter still). */
export const MAX_CALL_FUNCTION_NAME_BYTES = 256;
/** Caller metadata entries passed on to the handler. */
export const MAX_METADATA_ENTRIES = 64;
/** Caller metadata passed on to the handler, keys plus values, UTF-8 bytes. */
export const MAX_METADATA_BYTES = 16 * 1024;
/** An affinity key (options.affinity_key or x-easyremote-affinity), UTF-8 bytes. */
export const MAX_AFFINITY_KEY_BYTES = 1024;
/** Any other string in a call's options (strategy names, prefer_location), UTF-8 bytes. */
export const MAX_OPTION_STRING_BYTES = 256;
/** Requirements in one call's options or one function's declaration. */
export const MAX_REQUIREMENTS = 32;

/** Functions one node may register. */
export const MAX_FUNCTIONS_PER_NODE = 1024;
/** A function's loadBalancing JSON, bytes. */
export const MAX_LOAD_BALANCING_JSON_BYTES = 16 * 1024;
/** Nesting of objects and arrays inside loadBalancing. */
export const MAX_OPTION_DEPTH = 8;
/** Labels on one node; each key and value is bounded too. */
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_BYTES = 128;
export const MAX_LABEL_VALUE_BYTES = 1024;
/** GPUs one node may describe. */
export const MAX_GPUS_PER_NODE = 64;
/** Tags per function, and the bytes of each tag and of a description. */
export const MAX_TAGS = 64;
export const MAX_TAG_BYTES = 128;
export const MAX_DESCRIPTION_BYTES = 4096;
/** An address clients dial directly (a node's direct_address, a backend's address), UTF-8 bytes. */
export const MAX_ADDRESS_BYTES = 256;
/** Look-aside backends registered at once on one gateway. */
export const MAX_BACKENDS = 10_000;
/** Picks one GetBackends request may ask for. */
export const MAX_PICKS_PER_REQUEST = 64;
/** Picks open (handed out, not yet released or expired) on one gateway. */
export const MAX_OPEN_PICKS = 100_000;
/** Length of an instance id, a token, or a version string in a declaration, bytes. */
export const MAX_IDENTIFIER_BYTES = 256;
/** Gateway links one node may report (Register / Heartbeat `gateways`); each address and gateway id is bounded by MAX_IDENTIFIER_BYTES. */
export const MAX_GATEWAY_LINKS = 64;

/** Error texts that travel in trailers are cut to these lengths (characters). */
export const MAX_ERROR_MESSAGE_CHARS = 1024;
export const MAX_ERROR_STACK_CHARS = 4096;
/** How much of a caller's or node's input an error message quotes (characters). */
export const MAX_QUOTED_CHARS = 100;

/** UTF-8 length of a string without allocating it. */
export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** JSON-quotes input for an error message, cut to MAX_QUOTED_CHARS with the full length noted. */
export function quote(input: string): string {
  if (input.length <= MAX_QUOTED_CHARS) return JSON.stringify(input);
  return `${JSON.stringify(input.slice(0, MAX_QUOTED_CHARS))}… (${input.length} characters)`;
}

/**
 * Cuts a text to `max` characters, marking the cut. Never between the halves of a
 * surrogate pair (an emoji): a lone surrogate is not text, and a status message holding
 * one cannot be sent at all (grpc-js throws encoding it), so the caller would get none.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}
