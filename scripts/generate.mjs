// Generates packages/protocol/src/generated from proto/ (buf + ts-proto), then removes the
// payload copies ts-proto's Node output makes: `Buffer.from(uint8array)` copies its input,
// so every bytes field was copied once more on decode and every message once more on
// encode. A Buffer view over the same memory does neither. The decoded views keep the
// received message's memory alive for as long as the payload is held, which is what a
// copy would cost anyway.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = 'packages/protocol/src/generated/easyremote/v1';
const HELPER = `
/** A Buffer over the same memory as \`bytes\` (no copy). */
function bufferView(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
`;

execFileSync('pnpm', ['exec', 'buf', 'generate'], { stdio: 'inherit' });
for (const name of readdirSync(DIR)) {
  if (!name.endsWith('.ts')) continue;
  const file = join(DIR, name);
  const before = readFileSync(file, 'utf8');
  const after = before
    .replaceAll('Buffer.from(reader.bytes())', 'bufferView(reader.bytes())')
    .replace(/Buffer\.from\((\w+)\.encode\(value\)\.finish\(\)\)/g, 'bufferView($1.encode(value).finish())');
  writeFileSync(file, after === before ? before : `${after.trimEnd()}\n${HELPER}`);
}
