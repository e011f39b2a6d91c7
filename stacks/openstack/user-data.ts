import { Fn, Token } from 'cdktf';
import { stringify } from 'yaml';

/**
 * The cloud-init user data of one instance. Kept to this one function so that it can later
 * hand over to the release image's own cloud-init (images/) without touching the stacks.
 */

export interface UserDataFile {
  readonly path: string;
  /** The file's text; may hold Terraform references, resolved and base64-encoded at apply. */
  readonly content: string;
  /** @default '0640' */
  readonly mode?: string;
}

export interface UserDataProps {
  /** systemd unit the image provides for a component (`bluegreen-ca@<component>`). */
  readonly unit: string;
  readonly files: readonly UserDataFile[];
  /** Commands run, in order, before the unit starts (the SA's migrations). */
  readonly before?: readonly string[][];
}

/** `#cloud-config` text: writes the files, runs the commands, enables and starts the unit. */
export function cloudInitUserData(p: UserDataProps): string {
  const doc = {
    write_files: p.files.map((f) => ({
      path: f.path,
      permissions: f.mode ?? '0640',
      owner: 'root:bluegreen-ca',
      encoding: 'b64',
      content: base64(f.content),
    })),
    runcmd: [...(p.before ?? []), ['systemctl', 'enable', '--now', p.unit]],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

/**
 * Base64 of a file's text, so PEM and JSON survive YAML unchanged: here when the text is
 * known, by Terraform when it holds references (as an escaped HCL string argument).
 */
function base64(text: string): string {
  if (!Token.isUnresolved(text)) return Buffer.from(text).toString('base64');
  const escaped = text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return Fn.base64encode(escaped);
}
