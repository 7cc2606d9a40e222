// Generates packages/protocol/src/generated from proto/ (buf + ts-proto), then removes the
// payload copies ts-proto's Node output makes: `Buffer.from(uint8array)` copies its input,
// so every bytes field was copied once more on decode. A Buffer view over the same memory
// does not. The decoded views keep the received message's memory alive for as long as the
// payload is held, which is what a copy would cost anyway. The services' serializers use
// the protocol's MessageWriter (src/message-writer.ts), which copies each byte once,
// instead of `Buffer.from(X.encode(value).finish())`, which copied it up to seven times;
// a response serializer (only grpc-js's server calls one, and it copies the bytes at once)
// returns a view of a buffer the writer reuses, which saves one more allocation and copy.
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
    // A response is serialized by grpc-js's server, which copies it at once: into a reused buffer.
    .replace(/(responseSerialize: \(value: \w+\): Buffer => )Buffer\.from\((\w+)\.encode\(value\)\.finish\(\)\)/g, '$1serializeResponse($2, value)')
    .replace(/Buffer\.from\((\w+)\.encode\(value\)\.finish\(\)\)/g, 'serializeMessage($1, value)');
  const used = ['serializeMessage', 'serializeResponse'].filter((name) => after.includes(`${name}(`));
  const imported = used.length > 0 ? after.replace(/^(import .*"@bufbuild\/protobuf\/wire";\n)/m, `$1import { ${used.join(', ')} } from "../../../message-writer.js";\n`) : after;
  writeFileSync(file, imported === before ? before : `${imported.trimEnd()}\n${HELPER}`);
}
