// The deadline rule lives in @easyremote/protocol: a node serving calls directly ends them the same way.
export { callDeadline, DEADLINE_MARGIN, MAX_DEADLINE_GRACE_MS, type DeadlineInputs } from '@easyremote/protocol';
