// The limits a node's registration must meet. A node may be written in any language and
// its token may be stolen: nothing it declares may grow the gateway's memory without
// bound or make a later admin request or call fail.
import {
  InvalidArgument,
  MAX_DESCRIPTION_BYTES,
  MAX_FUNCTIONS_PER_NODE,
  MAX_GATEWAY_LINKS,
  MAX_GPUS_PER_NODE,
  MAX_ADDRESS_BYTES,
  MAX_IDENTIFIER_BYTES,
  MAX_LABEL_KEY_BYTES,
  MAX_LABEL_VALUE_BYTES,
  MAX_LABELS,
  MAX_LOAD_BALANCING_JSON_BYTES,
  MAX_OPTION_DEPTH,
  MAX_OPTION_STRING_BYTES,
  MAX_REQUIREMENTS,
  MAX_TAG_BYTES,
  MAX_TAGS,
  quote,
  utf8Bytes,
  type EasyRemoteError,
  type FunctionSpec,
  type GatewayLinkState,
  type Register,
} from '@easyremote/protocol';

function over(what: string, limitName: string, limit: number, actual: number, unit: string): EasyRemoteError {
  return new InvalidArgument(`${what} is ${actual} ${unit}; the limit is ${limit} ${unit}`, { limit: { name: limitName, limit, actual } });
}

function checkBytes(what: string, value: string, limitName: string, limit: number): EasyRemoteError | undefined {
  const bytes = utf8Bytes(value);
  return bytes > limit ? over(what, limitName, limit, bytes, 'bytes') : undefined;
}

function checkFinite(what: string, value: number): EasyRemoteError | undefined {
  return Number.isFinite(value) && value >= 0 ? undefined : new InvalidArgument(`${what} must be a finite number >= 0, got ${value}`);
}

/** Nesting depth of a parsed JSON value, without recursion (a hostile value could be very deep). */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** The register frame's node-level fields. */
export function checkRegisterFrame(reg: Register): EasyRemoteError | undefined {
  if (reg.functions.length > MAX_FUNCTIONS_PER_NODE) return over('the function list', 'max_functions_per_node', MAX_FUNCTIONS_PER_NODE, reg.functions.length, 'functions');
  const identifiers = checkBytes('instance_id', reg.instanceId, 'max_identifier_bytes', MAX_IDENTIFIER_BYTES) ?? checkBytes('token', reg.token, 'max_identifier_bytes', MAX_IDENTIFIER_BYTES) ?? checkDirectAddress(reg.directAddress);
  if (identifiers) return identifiers;
  const links = checkGatewayLinks(reg.gateways);
  if (links) return links;
  const caps = reg.capabilities;
  if (caps === undefined) return undefined;
  if (caps.gpus.length > MAX_GPUS_PER_NODE) return over('the GPU list', 'max_gpus_per_node', MAX_GPUS_PER_NODE, caps.gpus.length, 'GPUs');
  for (const g of caps.gpus) {
    const err = checkBytes(`GPU ${g.index} model`, g.model, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES);
    if (err) return err;
  }
  const labels = Object.entries(caps.labels);
  if (labels.length > MAX_LABELS) return over('the labels', 'max_labels', MAX_LABELS, labels.length, 'labels');
  for (const [key, value] of labels) {
    const err = checkBytes(`label key ${quote(key)}`, key, 'max_label_key_bytes', MAX_LABEL_KEY_BYTES) ?? checkBytes(`label ${quote(key)}`, value, 'max_label_value_bytes', MAX_LABEL_VALUE_BYTES);
    if (err) return err;
  }
  return checkFinite('capabilities.cost_per_hour', caps.costPerHour);
}

/** A backend's host, before it is joined with its port. */
export function checkAddressBytes(host: string): EasyRemoteError | undefined {
  return checkBytes('address', host, 'max_address_bytes', MAX_ADDRESS_BYTES);
}

/** An address clients dial directly: host:port ([v6]:port), '' for none. */
export function checkDirectAddress(address: string, what = 'direct_address'): EasyRemoteError | undefined {
  if (address === '') return undefined;
  const long = checkBytes(what, address, 'max_address_bytes', MAX_ADDRESS_BYTES);
  if (long) return long;
  const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[1]) < 1 || Number(m[1]) > 65535) return new InvalidArgument(`${what} ${quote(address)} is not host:port (an IPv6 host in brackets, a port from 1 to 65535)`);
  return undefined;
}

/** A node's report of its gateway links (in Register; a heartbeat's list over these limits is ignored). */
export function checkGatewayLinks(links: readonly GatewayLinkState[]): EasyRemoteError | undefined {
  if (links.length > MAX_GATEWAY_LINKS) return over('the gateway list', 'max_gateway_links', MAX_GATEWAY_LINKS, links.length, 'links');
  for (const l of links) {
    const err = checkBytes('a gateway address', l.address, 'max_identifier_bytes', MAX_IDENTIFIER_BYTES) ?? checkBytes('a gateway id', l.gatewayId, 'max_identifier_bytes', MAX_IDENTIFIER_BYTES);
    if (err) return err;
  }
  return undefined;
}

/** One function's declaration, apart from what resolving its configuration checks. */
export function checkFunctionSpec(spec: FunctionSpec): EasyRemoteError | undefined {
  if (spec.tags.length > MAX_TAGS) return over('tags', 'max_tags', MAX_TAGS, spec.tags.length, 'tags');
  for (const tag of spec.tags) {
    const err = checkBytes(`tag ${quote(tag)}`, tag, 'max_tag_bytes', MAX_TAG_BYTES);
    if (err) return err;
  }
  const requirements = Object.entries(spec.requirements);
  if (requirements.length > MAX_REQUIREMENTS) return over('requirements', 'max_requirements', MAX_REQUIREMENTS, requirements.length, 'entries');
  for (const [key, value] of requirements) {
    const err = checkBytes(`requirement key ${quote(key)}`, key, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES) ?? checkBytes(`requirement ${quote(key)}`, value, 'max_option_string_bytes', MAX_OPTION_STRING_BYTES);
    if (err) return err;
  }
  return (
    checkBytes('description', spec.description, 'max_description_bytes', MAX_DESCRIPTION_BYTES) ??
    checkBytes('version', spec.version, 'max_identifier_bytes', MAX_IDENTIFIER_BYTES) ??
    checkBytes('loadBalancing', spec.loadBalancingJson, 'max_load_balancing_json_bytes', MAX_LOAD_BALANCING_JSON_BYTES) ??
    checkFinite('cost_per_hour', spec.costPerHour) ??
    checkFinite('performance_tier', spec.performanceTier)
  );
}

/** The parsed loadBalancing object: nesting bounded so every later walk over it is cheap. */
export function checkOptionDepth(options: unknown): EasyRemoteError | undefined {
  const depth = jsonDepth(options);
  return depth > MAX_OPTION_DEPTH ? over('loadBalancing nesting', 'max_option_depth', MAX_OPTION_DEPTH, depth, 'levels') : undefined;
}
