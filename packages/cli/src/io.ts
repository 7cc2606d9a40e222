// What a command reads and writes: the process's streams and environment, passed in so
// that every command says where its output goes.
export interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface Io {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: NodeJS.ReadStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
