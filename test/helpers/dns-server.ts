import { createSocket, type RemoteInfo } from 'node:dgram';
import * as packet from 'dns-packet';

/** RFC 1035 §4.1.1 response codes this server sends. */
const rcode = { noError: 0, serverFailure: 2, nameError: 3 } as const;

export interface TestDnsServer {
  /** The UDP port on 127.0.0.1, chosen by the system. */
  readonly port: number;
  /** `127.0.0.1:<port>`, the form a VA's `dnsResolver` setting takes. */
  readonly address: string;
  /** Replaces the TXT records at a name. */
  setTxt(name: string, values: readonly string[]): void;
  /** Removes the TXT records at one name, or at every name when none is given. */
  clearTxt(name?: string): void;
  /** Answers A queries for a name; `*.example.test` answers every name under example.test. */
  setA(name: string, address: string): void;
  /** Answers SERVFAIL for every query about a name. */
  setServfail(name: string): void;
  /** Queries received so far, as `TYPE name`. */
  readonly queries: readonly string[];
  close(): Promise<void>;
}

const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');

/**
 * A small authoritative DNS server for tests, over UDP on 127.0.0.1: TXT and A records set by
 * the test, NOERROR with no answers for other types at a known name, NXDOMAIN for the rest.
 */
export async function startDnsServer(
  records: { a?: Record<string, string>; txt?: Record<string, readonly string[]> } = {},
): Promise<TestDnsServer> {
  const txt = new Map<string, readonly string[]>();
  const a = new Map<string, string>();
  const servfail = new Set<string>();
  const queries: string[] = [];
  for (const [name, address] of Object.entries(records.a ?? {})) a.set(norm(name), address);
  for (const [name, values] of Object.entries(records.txt ?? {})) txt.set(norm(name), values);

  const addressOf = (name: string) => {
    if (a.has(name)) return a.get(name);
    for (const [pattern, address] of a) {
      if (pattern.startsWith('*.') && name.endsWith(pattern.slice(1))) return address;
    }
    return undefined;
  };

  const answer = (query: packet.Packet): Buffer => {
    const question = query.questions?.[0];
    const reply: packet.Packet = {
      type: 'response',
      id: query.id,
      flags: packet.AUTHORITATIVE_ANSWER,
      questions: query.questions,
      answers: [],
    };
    if (!question) return packet.encode({ ...reply, flags: reply.flags! | rcode.serverFailure });

    const name = norm(question.name);
    queries.push(`${question.type} ${name}`);
    if (servfail.has(name)) {
      return packet.encode({ ...reply, flags: reply.flags! | rcode.serverFailure });
    }

    const address = addressOf(name);
    const values = txt.get(name);
    if (question.type === 'TXT' && values) {
      // RFC 1035 §3.3: a character-string holds at most 255 bytes; longer (ASCII) values are
      // split into several strings of one record, which resolvers join again.
      const split = (v: string) => v.match(/[\s\S]{1,255}/g) ?? [''];
      reply.answers = values.map((v) => ({
        type: 'TXT',
        name: question.name,
        ttl: 0,
        data: split(v),
      }));
    } else if (question.type === 'A' && address) {
      reply.answers = [{ type: 'A', name: question.name, ttl: 0, data: address }];
    } else if (!address && !values) {
      reply.flags! |= rcode.nameError;
    }
    return packet.encode(reply);
  };

  const socket = createSocket('udp4');
  socket.on('message', (message: Buffer, from: RemoteInfo) => {
    let reply: Buffer;
    try {
      reply = answer(packet.decode(message));
    } catch {
      return; // Not a DNS query: drop it, as a real server would.
    }
    socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;

  return {
    port,
    address: `127.0.0.1:${port}`,
    queries,
    setTxt: (name, values) => void txt.set(norm(name), [...values]),
    clearTxt: (name) => (name === undefined ? txt.clear() : void txt.delete(norm(name))),
    setA: (name, address) => void a.set(norm(name), address),
    setServfail: (name) => void servfail.add(norm(name)),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
