import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { PeerConfig, TlsConfig } from './config.js';
import { CaError, isErrorKind, toCaError, type ErrorKind } from './errors.js';

/**
 * gRPC over mutual TLS between components. Messages are JSON (the `application/grpc+json`
 * content subtype) so that one TypeScript interface per service is both the server's
 * contract and the client's type; binary values travel as base64 strings.
 */

/** A service's methods: each takes one request object and resolves one response object. */
export type Methods<T> = { [K in keyof T]: (request: any) => Promise<unknown> };

export interface ServiceDef<T extends Methods<T>> {
  /** Fully qualified gRPC service name, e.g. `bluegreen.sa.StorageAuthority`. */
  readonly name: string;
  readonly methods: readonly (keyof T & string)[];
  /** Client identities (component names) allowed to call, unless config overrides. */
  readonly defaultClients: readonly string[];
}

export function defineService<T extends Methods<T>>(
  name: string,
  methods: readonly (keyof T & string)[],
  defaultClients: readonly string[],
): ServiceDef<T> {
  return { name, methods, defaultClients };
}

const kindMetadataKey = 'ca-error-kind';

const encode = (value: unknown) => Buffer.from(JSON.stringify(value ?? null));
const decode = (buf: Buffer) => JSON.parse(buf.toString('utf8'));

function grpcDefinition<T extends Methods<T>>(def: ServiceDef<T>): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of def.methods) {
    out[method] = {
      path: `/${def.name}/${method[0].toUpperCase()}${method.slice(1)}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: encode,
      requestDeserialize: decode,
      responseSerialize: encode,
      responseDeserialize: decode,
    };
  }
  return out as grpc.ServiceDefinition;
}

const statusForKind: Partial<Record<ErrorKind, grpc.status>> = {
  notFound: grpc.status.NOT_FOUND,
  malformed: grpc.status.INVALID_ARGUMENT,
  conflict: grpc.status.FAILED_PRECONDITION,
  duplicate: grpc.status.ALREADY_EXISTS,
  unauthorized: grpc.status.PERMISSION_DENIED,
  rateLimited: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

function toStatus(err: CaError): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  metadata.set(kindMetadataKey, err.kind);
  return {
    code: statusForKind[err.kind] ?? grpc.status.FAILED_PRECONDITION,
    details: err.detail,
    metadata,
  };
}

/** The component identity a peer proved: the common name of its client certificate. */
export function peerIdentity(call: grpc.ServerUnaryCall<unknown, unknown>): string | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

export interface ServiceBinding {
  def: ServiceDef<any>;
  impl: object;
  /** Overrides `def.defaultClients` when given. */
  allowedClients?: readonly string[];
}

export interface RpcServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface RpcServerOptions {
  address: string;
  tls: TlsConfig;
  log: Logger;
  services: ServiceBinding[];
  metrics?: Registry;
}

/**
 * Starts a gRPC server that demands a client certificate from the internal PKI and refuses
 * any identity not on the called service's allow list.
 */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const { log } = options;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const calls = options.metrics
    ? new Counter({
        name: 'rpc_server_calls_total',
        help: 'RPC calls served, by method and outcome',
        labelNames: ['method', 'outcome'],
        registers: [options.metrics],
      })
    : undefined;

  for (const binding of options.services) {
    const allowed = new Set(binding.allowedClients ?? binding.def.defaultClients);
    const impl = binding.impl as Record<string, (req: unknown) => Promise<unknown>>;
    const handlers: grpc.UntypedServiceImplementation = {};

    for (const method of binding.def.methods) {
      const fullName = `${binding.def.name}/${method}`;
      if (typeof impl[method] !== 'function') {
        throw new Error(`service ${binding.def.name} has no implementation of ${method}`);
      }

      handlers[method] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const identity = peerIdentity(call);
        if (!identity || !allowed.has(identity)) {
          log.warn({ method: fullName, client: identity ?? null }, 'rpc client refused');
          calls?.inc({ method: fullName, outcome: 'refused' });
          callback({
            code: grpc.status.PERMISSION_DENIED,
            details: `client ${identity ?? '(none)'} may not call ${binding.def.name}`,
          });
          return;
        }

        impl[method].call(impl, call.request).then(
          (response) => {
            calls?.inc({ method: fullName, outcome: 'ok' });
            callback(null, response ?? {});
          },
          (thrown: unknown) => {
            const err = toCaError(thrown);
            if (err.kind === 'internal') {
              log.error({ method: fullName, err: thrown }, 'rpc handler failed');
            }
            calls?.inc({ method: fullName, outcome: err.kind });
            callback(toStatus(err));
          },
        );
      };
    }
    server.addService(grpcDefinition(binding.def), handlers);
  }

  const credentials = grpc.ServerCredentials.createSsl(
    readFileSync(options.tls.caFile),
    [{ cert_chain: readFileSync(options.tls.certFile), private_key: readFileSync(options.tls.keyFile) }],
    true,
  );

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
  });

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/** A typed client: the same interface the server implements, plus `close()`. */
export type RpcClient<T> = T & { close(): void };

/** Connects to a peer over mTLS, checking that the server proves `peer.serverName`. */
export function createRpcClient<T extends Methods<T>>(
  def: ServiceDef<T>,
  peer: PeerConfig,
  tls: TlsConfig,
): RpcClient<T> {
  const Ctor = grpc.makeGenericClientConstructor(grpcDefinition(def), def.name);
  const credentials = grpc.credentials.createSsl(
    readFileSync(tls.caFile),
    readFileSync(tls.keyFile),
    readFileSync(tls.certFile),
  );
  const client = new Ctor(peer.address, credentials, {
    'grpc.ssl_target_name_override': peer.serverName,
    'grpc.default_authority': peer.serverName,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  }) as unknown as Record<string, Function> & grpc.Client;

  const out: Record<string, unknown> = { close: () => client.close() };
  for (const method of def.methods) {
    out[method] = (request: unknown) =>
      new Promise((resolve, reject) => {
        const deadline = new Date(Date.now() + peer.timeoutMs);
        client[method](request, new grpc.Metadata(), { deadline }, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(fromStatus(err, `${def.name}/${method}`)) : resolve(res),
        );
      });
  }
  return out as RpcClient<T>;
}

function fromStatus(err: grpc.ServiceError, method: string): CaError {
  const kind = err.metadata?.get(kindMetadataKey)?.[0];
  if (isErrorKind(kind)) return new CaError(kind, err.details, { cause: err });

  const unreachable =
    err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED;
  return new CaError(unreachable ? 'unavailable' : 'internal', `${method}: ${err.details}`, {
    cause: err,
  });
}

/** The gRPC status code behind a CaError from an RPC, if any. */
export function rpcStatusOf(err: unknown): grpc.status | undefined {
  const cause = err instanceof CaError ? (err.cause as grpc.ServiceError | undefined) : undefined;
  return cause?.code;
}
