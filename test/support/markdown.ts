// Reading the repository's markdown as a user reads it: the fenced code blocks (to compile
// and run them) and the links with their anchors (to follow them).
//
// Conventions the documentation follows, so that its code can be checked:
// - A block whose first line is a comment naming a file (`// node.ts`, `// tsconfig.json`)
//   is that file; the blocks of one page share a directory, so they may import each other
//   (`import type { Trainer } from './node.js'`). Other blocks get a name from their line.
// - A ```ts block that is deliberately not a complete program is preceded, on the line
//   just before its fence, by `<!-- no-typecheck: why -->`. Use it sparingly: a fragment
//   that a reader cannot paste is a fragment the test cannot check.

export interface CodeBlock {
  /** The info string's first word: `ts`, `sh`, `jsonc`, … ('' when none). */
  readonly lang: string;
  /** 1-based line, in the markdown, of the block's first line of code. */
  readonly line: number;
  /** From a first line `// <file>`, else undefined. */
  readonly name: string | undefined;
  readonly code: string;
  /** The reason given by a `<!-- no-typecheck: … -->` marker, else undefined. */
  readonly skip: string | undefined;
}

const FENCE = /^```(\S*)/;
const NAME_LINE = /^\/\/ ([\w.-]+\.[a-z]+)\b/;
const SKIP_MARKER = /^<!--\s*no-typecheck:\s*(.*?)\s*-->\s*$/;

export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (open === null) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end]!.startsWith('```')) end++;
    if (end === lines.length) throw new Error(`code block opened on line ${i + 1} is never closed`);
    const code = lines.slice(start, end).join('\n');
    const skip = i > 0 ? SKIP_MARKER.exec(lines[i - 1]!)?.[1] : undefined;
    blocks.push({ lang: open[1]!, line: start + 1, name: NAME_LINE.exec(lines[start] ?? '')?.[1], code: code + '\n', skip });
    i = end;
  }
  return blocks;
}

export function isTypeScript(block: CodeBlock): boolean {
  return block.lang === 'ts' || block.lang === 'typescript';
}

/** The markdown with its fenced blocks blanked out (line numbers kept), for link scanning. */
export function proseOf(markdown: string): string {
  let inBlock = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (line.startsWith('```')) {
        inBlock = !inBlock;
        return '';
      }
      return inBlock ? '' : line;
    })
    .join('\n');
}

/** GitHub's anchors for the page's headings (github-slugger's rules, duplicates numbered). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseOf(markdown).split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const text = heading[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

export interface Link {
  readonly line: number;
  readonly target: string;
}

/** Links written as `[text](target)` outside code blocks and inline code. */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  proseOf(markdown)
    .split('\n')
    .forEach((line, i) => {
      const prose = line.replace(/`[^`]*`/g, '');
      for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) found.push({ line: i + 1, target: m[1]! });
    });
  return found;
}
