import { TerraformProvider } from 'cdktf';
import type { Construct } from 'constructs';

export interface OpenStackProviderProps {
  /** Entry in clouds.yaml. @default the OS_* environment variables */
  readonly cloud?: string;
  /** @default the cloud's default region */
  readonly region?: string;
  /** A second configuration of the provider, chosen by resources with `provider`. @default none */
  readonly alias?: string;
}

/**
 * terraform-provider-openstack. No prebuilt cdktf binding exists, so the provider block is
 * declared here; cdktf's base class ignores an alias, so this class keeps it itself.
 */
export class OpenStackProvider extends TerraformProvider {
  private providerAlias: string | undefined;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: OpenStackProviderProps = {},
  ) {
    super(scope, id, {
      terraformResourceType: 'openstack',
      terraformProviderSource: 'terraform-provider-openstack/openstack',
      terraformGeneratorMetadata: { providerName: 'openstack', providerVersionConstraint: '~> 3.0' },
    });
    this.providerAlias = props.alias;
  }

  override get alias(): string | undefined {
    return this.providerAlias;
  }

  override set alias(value: string | undefined) {
    this.providerAlias = value;
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return withoutUndefined({ cloud: this.props.cloud, region: this.props.region });
  }
}

/** Drops keys whose value is undefined, so the JSON holds only what was set. */
export function withoutUndefined(attrs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined));
}
