/**
 * Renders a string of synthesized Terraform JSON the way `terraform apply` would, for the
 * forms the stacks write into user data: references (`var.x`, remote-state outputs) indexed
 * by string keys, quoted strings with escapes and interpolation, `$${` and `%%{` escapes, and
 * the functions base64encode, lookup and urlencode. Anything else throws, so that a test
 * notices a form this does not understand instead of passing it through.
 */

/** Values of references by their full path, such as `data.terraform_remote_state.state.outputs.hsm_pin`. */
export type ReferenceValues = Readonly<Record<string, unknown>>;

const functions: Record<string, (...args: unknown[]) => unknown> = {
  base64encode: (s) => Buffer.from(text(s)).toString('base64'),
  urlencode: (s) => encodeURIComponent(text(s)),
  lookup: (map, key) => index(map, key),
};

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`expected a string, got ${JSON.stringify(value)}`);
}

function index(value: unknown, key: unknown): unknown {
  const k = text(key);
  if (!value || typeof value !== 'object' || !(k in value)) throw new Error(`no key ${k} in ${JSON.stringify(value)}`);
  return (value as Record<string, unknown>)[k];
}

/** The template's value with every `${...}` evaluated. */
export function renderTemplate(template: string, values: ReferenceValues): string {
  const p = new Parser(template, values);
  const out = p.template(false);
  if (p.pos !== template.length) throw new Error(`unexpected ${template.slice(p.pos, p.pos + 20)}`);
  return out;
}

class Parser {
  pos = 0;

  constructor(
    private readonly src: string,
    private readonly values: ReferenceValues,
  ) {}

  /** Text up to the end (top level) or the closing quote (a quoted string). */
  template(quoted: boolean): string {
    let out = '';
    while (this.pos < this.src.length) {
      const rest = this.src.slice(this.pos, this.pos + 3);
      if (quoted && rest[0] === '"') {
        this.pos++;
        return out;
      }
      if (rest === '$${' || rest === '%%{') {
        out += rest.slice(1);
        this.pos += 3;
      } else if (rest.startsWith('${')) {
        this.pos += 2;
        out += text(this.expression());
        this.expect('}');
      } else if (rest.startsWith('%{')) {
        throw new Error(`template directives are not supported: ${this.src.slice(this.pos, this.pos + 30)}`);
      } else if (quoted && rest[0] === '\\') {
        out += this.escape();
      } else {
        out += rest[0];
        this.pos++;
      }
    }
    if (quoted) throw new Error('unterminated string');
    return out;
  }

  private escape(): string {
    const c = this.src[this.pos + 1];
    this.pos += 2;
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };
    if (c in simple) return simple[c];
    if (c === 'u') {
      const hex = this.src.slice(this.pos, this.pos + 4);
      this.pos += 4;
      return String.fromCharCode(parseInt(hex, 16));
    }
    throw new Error(`unknown escape \\${c}`);
  }

  private expression(): unknown {
    this.space();
    let value: unknown;
    if (this.src[this.pos] === '"') {
      this.pos++;
      value = this.template(true);
    } else {
      const name = /^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*/.exec(this.src.slice(this.pos))?.[0];
      if (!name) throw new Error(`unexpected ${this.src.slice(this.pos, this.pos + 20)}`);
      this.pos += name.length;
      if (this.src[this.pos] === '(') {
        this.pos++;
        const args: unknown[] = [];
        this.space();
        while (this.src[this.pos] !== ')') {
          args.push(this.expression());
          this.space();
          if (this.src[this.pos] === ',') this.pos++;
        }
        this.pos++;
        const fn = functions[name];
        if (!fn) throw new Error(`unknown function ${name}`);
        value = fn(...args);
      } else {
        if (!(name in this.values)) throw new Error(`no sample value for ${name}`);
        value = this.values[name];
      }
    }
    this.space();
    while (this.src[this.pos] === '[') {
      this.pos++;
      const key = this.expression();
      this.expect(']');
      value = index(value, key);
      this.space();
    }
    return value;
  }

  private space(): void {
    while (/\s/.test(this.src[this.pos] ?? '')) this.pos++;
  }

  private expect(c: string): void {
    this.space();
    if (this.src[this.pos] !== c) throw new Error(`expected ${c} at ${this.src.slice(this.pos, this.pos + 20)}`);
    this.pos++;
  }
}
