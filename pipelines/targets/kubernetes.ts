import { CloudTargetBase, type CloudTargetOptions } from './cloud.js';

/** The CA in a Kubernetes cluster: Deployments per color, public Services select the active one. */
export class KubernetesTarget extends CloudTargetBase {
  constructor(o: Omit<CloudTargetOptions, 'target'>) {
    super({ ...o, target: 'kubernetes' });
  }
}
