import { Fn, Token } from 'cdktf';

/**
 * Base64 of a file's text for cloud-init's `encoding: b64`: computed here when the text is
 * known, and by Terraform (base64encode) when it holds references resolved at apply, so that
 * no PEM, JSON or password is ever substituted raw into the user data's YAML.
 */
export function terraformBase64(text: string): string {
  if (!Token.isUnresolved(text)) return Buffer.from(text).toString('base64');
  // The text becomes a quoted HCL string: escape what HCL would read as quote, escape or
  // template directive. References (`${...}` tokens) stay as they are for cdktf to resolve.
  const hcl = text
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t')
    .replace(/%\{/g, '%%{');
  return Fn.base64encode(hcl);
}
