import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_FORMAT_ENV, LOG_LEVEL_ENV, prettyLine } from '../src/logger.js';

function sink(isTTY: boolean) {
  const lines: string[] = [];
  return { lines, destination: { isTTY, write: (line: string) => lines.push(line) } };
}

describe('createLogger', () => {
  it('writes JSON lines with a level name, an ISO timestamp, the component and the fields when the destination is not a terminal', () => {
    const { lines, destination } = sink(false);
    const log = createLogger('gateway', { destination }, {});
    log.info({ nodeId: 'n1', principal: 'anonymous' }, 'node joined');
    log.debug('not at info');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ level: 'info', component: 'gateway', nodeId: 'n1', principal: 'anonymous', msg: 'node joined', pid: process.pid });
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[0]!.endsWith('\n')).toBe(true);
  });

  it('writes one readable line per event on a terminal, coloured unless NO_COLOR is set', () => {
    const tty = sink(true);
    createLogger('node', { destination: tty.destination }, {}).warn({ code: 'REGISTRATION_REFUSED', reason: 'node id "n1" is taken\nby another' }, 'registration refused');
    expect(tty.lines).toHaveLength(1);
    expect(tty.lines[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \x1b\[33mWARN \x1b\[0m node: registration refused code=REGISTRATION_REFUSED reason="node id \\"n1\\" is taken\\nby another"\n$/);
    const plain = sink(true);
    createLogger('node', { destination: plain.destination }, { NO_COLOR: '1' }).info({ gatewayId: 'g1', functions: ['a', 'b'] }, 'registered');
    expect(plain.lines[0]).toMatch(/^\S+ \S+ INFO  node: registered gatewayId=g1 functions=\["a","b"\]\n$/);
  });

  it('level: the option, else $EASYREMOTE_LOG_LEVEL, else info; silent writes nothing', () => {
    const count = (option: { level?: 'debug' | 'silent' | 'error' }, env: NodeJS.ProcessEnv) => {
      const { lines, destination } = sink(false);
      const log = createLogger('node', { ...option, destination }, env);
      log.debug('d');
      log.info('i');
      log.error('e');
      return lines.length;
    };
    expect(count({}, {})).toBe(2);
    expect(count({}, { [LOG_LEVEL_ENV]: 'debug' })).toBe(3);
    expect(count({}, { [LOG_LEVEL_ENV]: 'silent' })).toBe(0);
    expect(count({ level: 'error' }, { [LOG_LEVEL_ENV]: 'debug' })).toBe(1);
    expect(count({ level: 'silent' }, {})).toBe(0);
  });

  it('format: the option, else $EASYREMOTE_LOG_FORMAT, else by the destination', () => {
    const tty = sink(true);
    createLogger('node', { destination: tty.destination }, { [LOG_FORMAT_ENV]: 'json' }).info('x');
    expect(JSON.parse(tty.lines[0]!).msg).toBe('x');
    const pipe = sink(false);
    createLogger('node', { destination: pipe.destination, format: 'pretty' }, {}).info('x');
    expect(pipe.lines[0]).toMatch(/ INFO  node: x\n$/);
  });

  it('refuses an unknown level or format, naming where it came from', () => {
    expect(() => createLogger('node', {}, { [LOG_LEVEL_ENV]: 'verbose' })).toThrow('$EASYREMOTE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; got "verbose"');
    expect(() => createLogger('node', { level: 'loud' as 'info' }, {})).toThrow('logger.level must be one of');
    expect(() => createLogger('node', { format: 'xml' as 'json' }, {})).toThrow('logger.format must be one of json, pretty; got "xml"');
  });

  it('a pino logger of your own is used as is, with the component bound', () => {
    const lines: string[] = [];
    const mine = pino({ level: 'debug', base: { service: 'trainer' } }, { write: (l: string) => lines.push(l) });
    createLogger('gateway', mine, { [LOG_LEVEL_ENV]: 'silent' }).debug({ nodeId: 'n1' }, 'hello');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 20, service: 'trainer', component: 'gateway', nodeId: 'n1', msg: 'hello' });
  });

  it('prettyLine: an error field shows its message; a line that is not JSON passes through', () => {
    expect(prettyLine('{"level":"error","time":"2026-01-02T03:04:05.006Z","component":"gateway","msg":"boom","err":{"type":"Error","message":"disk full","stack":"..."}}')).toMatch(
      / ERROR gateway: boom err="disk full"\n$/,
    );
    expect(prettyLine('not json\n')).toBe('not json\n');
  });
});
