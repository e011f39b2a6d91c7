import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CaError } from './errors.js';
import { createLogger } from './log.js';
import { ensureIdentity, serverNameOf } from './pki.js';
import { createRpcClient, defineService, rpcStatusOf, startRpcServer } from './rpc.js';

interface Echo {
  echo(req: { text: string }): Promise<{ text: string; n: number }>;
  fail(req: { kind: string }): Promise<void>;
}
const echoService = defineService<Echo>('test.Echo', ['echo', 'fail'], ['wfe']);

const dir = mkdtempSync(join(tmpdir(), 'rpc-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const pki = join(dir, 'pki');
const otherPki = join(dir, 'other');
const server = await ensureIdentity(pki, 'sa');
const wfe = await ensureIdentity(pki, 'wfe');
const ra = await ensureIdentity(pki, 'ra');
const stranger = await ensureIdentity(otherPki, 'wfe');

const rpc = await startRpcServer({
  address: '127.0.0.1:0',
  tls: server,
  log: createLogger('test', { level: 'silent' }),
  services: [
    {
      def: echoService,
      impl: {
        echo: async ({ text }: { text: string }) => ({ text, n: text.length }),
        fail: async () => {
          throw new CaError('notFound', 'no such thing');
        },
      } satisfies Echo,
    },
  ],
});
t.teardown(() => rpc.close());

const peer = { address: `127.0.0.1:${rpc.port}`, serverName: serverNameOf('sa'), timeoutMs: 3000 };

t.test('serves an allowed client identity', async (t) => {
  const client = createRpcClient(echoService, peer, wfe);
  t.teardown(() => client.close());
  t.same(await client.echo({ text: 'héllo' }), { text: 'héllo', n: 5 });
});

t.test('carries the error kind across the hop', async (t) => {
  const client = createRpcClient(echoService, peer, wfe);
  t.teardown(() => client.close());
  const err = await client.fail({ kind: 'x' }).catch((e: unknown) => e);
  t.type(err, CaError);
  t.equal((err as CaError).kind, 'notFound');
  t.equal((err as CaError).detail, 'no such thing');
});

t.test('refuses a component identity not on the allow list', async (t) => {
  const client = createRpcClient(echoService, peer, ra);
  t.teardown(() => client.close());
  const err = await client.echo({ text: 'x' }).catch((e: unknown) => e);
  t.equal(rpcStatusOf(err), grpc.status.PERMISSION_DENIED);
});

t.test('refuses a client certificate from another CA', async (t) => {
  const client = createRpcClient(echoService, peer, { ...stranger, caFile: wfe.caFile });
  t.teardown(() => client.close());
  const err = await client.echo({ text: 'x' }).catch((e: unknown) => e);
  t.type(err, CaError);
  t.equal((err as CaError).kind, 'unavailable');
});

t.test('refuses a client with no certificate', async (t) => {
  const Ctor = grpc.makeGenericClientConstructor({}, 'x');
  const { readFileSync } = await import('node:fs');
  const client = new Ctor(peer.address, grpc.credentials.createSsl(readFileSync(wfe.caFile)), {
    'grpc.ssl_target_name_override': peer.serverName,
  });
  t.teardown(() => client.close());
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest(
      '/test.Echo/Echo',
      (v: unknown) => Buffer.from(JSON.stringify(v)),
      (b: Buffer) => JSON.parse(b.toString()),
      { text: 'x' },
      new grpc.Metadata(),
      { deadline: Date.now() + 3000 },
      (e) => resolve(e),
    );
  });
  t.ok(err, 'the call fails');
  t.equal(err?.code, grpc.status.UNAVAILABLE);
});

t.test('refuses a server that proves another identity', async (t) => {
  const client = createRpcClient(echoService, { ...peer, serverName: serverNameOf('ca') }, wfe);
  t.teardown(() => client.close());
  const err = await client.echo({ text: 'x' }).catch((e: unknown) => e);
  t.equal((err as CaError).kind, 'unavailable');
});
