#!/usr/bin/env node
// The `easyremote` executable.
import { processIo } from './io.js';
import { run } from './program.js';

const status = await run(process.argv.slice(2), processIo);
// Exits even when a library left a handle open (a reconnecting channel, a timer): the command is over.
process.exit(status);
