import { CloudTargetBase, type CloudTargetOptions } from './cloud.js';

/** The CA on OpenStack: instances per color behind Octavia, whose listeners pick the active pool. */
export class OpenStackTarget extends CloudTargetBase {
  constructor(o: Omit<CloudTargetOptions, 'target'>) {
    super({ ...o, target: 'openstack' });
  }
}
