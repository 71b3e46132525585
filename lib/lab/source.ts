import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { TslxcError } from '../errors.js';

/**
 * A lab file's YAML with the line of every node, so each refusal names the file, the line and the
 * field (js-yaml gives no node positions; the `yaml` package's LineCounter does).
 */
export class LabFileError extends TslxcError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    why: string,
    fix?: string,
  ) {
    super(`Invalid lab file ${file}, line ${line}${field ? `, field "${field}"` : ''}`, why, fix);
    this.name = 'LabFileError';
  }
}

/** One node of the document, with where it is (its field path and line) for error messages. */
export class Field {
  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
    readonly node: Node | null | undefined,
    readonly path: string,
    readonly line: number,
  ) {}

  fail(why: string, fix?: string): never {
    throw new LabFileError(this.file, this.line, this.path, why, fix);
  }

  /** Runs a check that throws a TslxcError (a validator of another module) and re-throws it with this field's position. */
  check<T>(fn: () => T, fix?: string): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof LabFileError) throw err;
      this.fail(err instanceof Error ? err.message : String(err), fix);
    }
  }

  get present(): boolean {
    return this.node !== undefined && this.node !== null && !(isScalar(this.node) && this.node.value === null);
  }

  private child(node: Node | null | undefined, name: string, lineNode: Node | null | undefined): Field {
    const offset = lineNode?.range?.[0] ?? this.node?.range?.[0];
    const line = offset === undefined ? this.line : this.lines.linePos(offset).line;
    return new Field(this.file, this.lines, node, this.path ? (name.startsWith('[') ? `${this.path}${name}` : `${this.path}.${name}`) : name, line);
  }

  /** A mapping's fields, refusing keys not in `allowed` (each named with its own line). */
  map(allowed: readonly string[], what = 'section'): Map<string, Field> {
    if (!isMap(this.node)) this.fail(`expected a mapping (key: value) for this ${what}`);
    const out = new Map<string, Field>();
    for (const pair of this.node.items) {
      const keyNode = pair.key as Node;
      const key = isScalar(keyNode) ? String(keyNode.value) : '?';
      const f = this.child(pair.value as Node, key, keyNode);
      if (!allowed.includes(key)) f.fail(`unknown key "${key}"`, `this ${what} takes ${allowed.join(', ')}`);
      out.set(key, f);
    }
    return out;
  }

  /** A mapping of free keys (config): each key with its field. */
  entries(what: string): Array<[string, Field]> {
    if (!isMap(this.node)) this.fail(`expected a mapping (key: value) for ${what}`);
    return this.node.items.map((pair) => {
      const keyNode = pair.key as Node;
      const key = isScalar(keyNode) ? String(keyNode.value) : '?';
      return [key, this.child(pair.value as Node, key, keyNode)];
    });
  }

  seq(what = 'list'): Field[] {
    if (!isSeq(this.node)) this.fail(`expected a list for ${what}`);
    return this.node.items.map((item, i) => this.child(item as Node, `[${i}]`, item as Node));
  }

  /** A list, or a single value taken as a list of one. */
  seqOrOne(what = 'list'): Field[] {
    return isSeq(this.node) ? this.seq(what) : [this];
  }

  private scalar(): unknown {
    if (!isScalar(this.node)) this.fail('expected a single value, not a list or mapping');
    return this.node.value;
  }

  string(): string {
    const v = this.scalar();
    if (typeof v !== 'string' || v === '') this.fail(v === null || v === '' ? 'a value is required' : `expected text, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A config-style value: text, a number or a boolean, as the string tslxc stores. */
  text(): string {
    const v = this.scalar();
    if (v === null || v === undefined) this.fail('a value is required');
    if (typeof v === 'object') this.fail('expected a single value');
    return String(v);
  }

  int(min: number, max: number): number {
    const v = this.scalar();
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      this.fail(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(): boolean {
    const v = this.scalar();
    if (typeof v !== 'boolean') this.fail(`expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }
}

/** Parses the text; a YAML syntax error is refused with its line. Returns the root field. */
export function parseLabYaml(text: string, file: string): Field {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line ?? lines.linePos(err.pos[0]).line;
    const dup = /Map keys must be unique/.test(err.message);
    throw new LabFileError(file, line, '', dup ? 'a key is given twice in one mapping' : `not valid YAML: ${err.message.split('\n')[0]}`);
  }
  if (doc.warnings[0]) {
    const w = doc.warnings[0];
    throw new LabFileError(file, w.linePos?.[0]?.line ?? 1, '', `not valid YAML: ${w.message.split('\n')[0]}`);
  }
  return new Field(file, lines, doc.contents as Node | null, '', 1);
}
