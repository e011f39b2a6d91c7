import { connect } from 'node:net';
import t from 'tap';
import { createHttp1Server, type HttpRequest, type HttpResponse } from './http1.js';

/**
 * The responder's HTTP/1.1 server over raw sockets: keep-alive and pipelining in order, bodies
 * by length and chunked, `Expect: 100-continue`, and every request it will not serve answered
 * with a 4xx or 5xx and a closed connection.
 */

const seen: { method: string; path: string; body: string; host?: string }[] = [];
const errors: unknown[] = [];
/** One object answered to every `/reused` request, as the responder does for a hot GET. */
const reused: HttpResponse = {
  status: 200,
  headers: { 'x-which': 'reused' },
  body: 'same',
  reused: true,
};

function handler(req: HttpRequest): HttpResponse | Promise<HttpResponse> {
  const { method, path } = req;
  seen.push({ method, path, body: req.body.toString(), host: req.header('host') });
  if (req.path === '/throw') throw new Error('handler bug');
  if (req.path === '/reused') return reused;
  if (req.path === '/slow') {
    return new Promise((resolve) =>
      setTimeout(() => resolve({ status: 200, headers: { 'x-which': 'slow' }, body: 'slow' }), 50),
    );
  }
  return { status: 200, headers: { 'x-which': req.path }, body: `echo:${req.body.toString()}` };
}

const http = createHttp1Server({
  handler,
  maxBodyBytes: 64,
  maxHeadBytes: 1024,
  keepAliveTimeoutMs: 300,
  requestTimeoutMs: 200,
  onError: (err) => errors.push(err),
});
await new Promise<void>((resolve) => http.server.listen(0, '127.0.0.1', resolve));
t.teardown(() => http.close());
const address = http.server.address();
const port = typeof address === 'object' && address ? address.port : 0;

/** Sends `raw`, then collects what comes back until the server closes or `settleMs` pass. */
function exchange(
  raw: string | string[],
  settleMs = 400,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const done = () => resolve({ text, closed });
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, settleMs);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      done();
    });
    socket.on('error', () => undefined);
    socket.on('connect', async () => {
      for (const part of Array.isArray(raw) ? raw : [raw]) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const post = (path: string, fields: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\n${fields}\r\n\r\n`;
const statuses = (text: string) =>
  [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

t.test('answers several requests on one kept-alive connection', async (t) => {
  const { text, closed } = await exchange([get('/a'), get('/b')], 200);
  t.same(statuses(text), [200, 200]);
  t.match(text, /x-which: \/a[\s\S]*x-which: \/b/);
  t.match(text, /\r\ndate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/);
  t.match(text, /content-length: 5\r\n\r\necho:HTTP/, 'the length of "echo:", then the body');
  t.notOk(closed);
});

t.test('answers pipelined requests in order, a slow one first', async (t) => {
  const { text } = await exchange(get('/slow') + get('/fast'));
  t.same(statuses(text), [200, 200]);
  t.ok(text.indexOf('x-which: slow') < text.indexOf('x-which: /fast'));
});

t.test('sends no body to HEAD, with the length a GET would have', async (t) => {
  const { text } = await exchange(`HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n`, 200);
  t.match(text, /content-length: 5\r\n\r\n$/);
});

t.test('writes a reused response whole, and the Date of the second it is sent in', async (t) => {
  const first = await exchange([get('/reused'), `HEAD /reused HTTP/1.1\r\nHost: x\r\n\r\n`], 200);
  const [whole, head] = first.text.split(/(?=HTTP\/1\.1 )/);
  t.match(
    whole,
    /^HTTP\/1\.1 200 OK\r\ndate: .+\r\nx-which: reused\r\ncontent-length: 4\r\n\r\nsame$/,
  );
  const undated = (text: string) => text.replace(/\r\ndate: .+?\r\n/, '\r\n');
  t.equal(undated(head), undated(whole).slice(0, -'same'.length), 'HEAD: the head, no body');

  const closing = await exchange(get('/reused', 'Connection: close\r\n'));
  t.match(closing.text, /connection: close\r\n\r\nsame$/, 'a closing connection is still told so');
  t.ok(closing.closed);

  await new Promise((resolve) => setTimeout(resolve, 1000));
  const later = await exchange(get('/reused'), 200);
  const dateOf = (text: string) => /\r\ndate: (.+?)\r\n/.exec(text)?.[1];
  t.not(dateOf(later.text), dateOf(whole), 'a second later, a new Date');
  t.equal(undated(later.text), undated(whole));
});

t.test('closes after an HTTP/1.0 request or Connection: close', async (t) => {
  const old = await exchange(`GET /old HTTP/1.0\r\n\r\n`);
  t.same(statuses(old.text), [200]);
  t.match(old.text, /connection: close/);
  t.ok(old.closed);

  const asked = await exchange(get('/bye', 'Connection: close\r\n'));
  t.ok(asked.closed);

  const kept = await exchange(`GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`, 200);
  t.match(kept.text, /connection: keep-alive\r\n/, 'an HTTP/1.0 client is told it is kept');
  t.notOk(kept.closed);
});

t.test('reads Content-Length and chunked bodies, and strips the query', async (t) => {
  const sized = await exchange(`${post('/p?x=1', 'Content-Length: 5')}hello`, 200);
  t.match(sized.text, /echo:hello/);
  t.equal(seen.at(-1)?.path, '/p');

  const chunked = await exchange(
    [
      `POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `3;ext=1\r\nabc\r\n`,
      `2\r\nde\r\n0\r\nTrailer: y\r\n\r\n`,
    ],
    300,
  );
  t.match(chunked.text, /echo:abcde/);
});

t.test('tells a client that expects it to continue, then reads the body', async (t) => {
  const { text } = await exchange(
    [`POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n`, 'ok'],
    300,
  );
  t.same(statuses(text), [100, 200]);
  t.match(text, /echo:ok/);
});

t.test('accepts an absolute-form target (RFC 9112 §3.2.2)', async (t) => {
  const { text } = await exchange(`GET http://example.test/abs?q HTTP/1.1\r\nHost: x\r\n\r\n`, 200);
  t.match(text, /x-which: \/abs/);
});

t.test('rejects what it will not serve, then closes', async (t) => {
  const big = 'x'.repeat(2000);
  const cases: [string, string, number][] = [
    ['a head over maxHeadBytes', get('/', `X-Big: ${big}\r\n`), 431],
    ['a body over maxBodyBytes', `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n`, 413],
    [
      'a chunked body over maxBodyBytes',
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n${'y'.repeat(65)}\r\n`,
      413,
    ],
    ['a broken request line', `GET /\r\nHost: x\r\n\r\n`, 400],
    ['space before a colon', `GET / HTTP/1.1\r\nHost : x\r\n\r\n`, 400],
    ['a folded header', `GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n`, 400],
    ['no Host on HTTP/1.1', `GET / HTTP/1.1\r\n\r\n`, 400],
    ['both lengths', post('/', 'Content-Length: 1\r\nTransfer-Encoding: chunked'), 400],
    ['two lengths', `${post('/', 'Content-Length: 1\r\nContent-Length: 2')}ab`, 400],
    ['a transfer coding other than chunked', post('/', 'Transfer-Encoding: gzip'), 501],
    ['bad chunk size', `${post('/', 'Transfer-Encoding: chunked')}zz\r\n`, 400],
    ['HTTP/2 over this port', `GET / HTTP/2.0\r\nHost: x\r\n\r\n`, 505],
    ['an unknown expectation', post('/', 'Content-Length: 1\r\nExpect: tea'), 417],
  ];
  for (const [name, raw, status] of cases) {
    const { text, closed } = await exchange(raw);
    t.same(statuses(text), [status], name);
    t.ok(closed, `${name}: closed`);
  }
});

t.test('answers 500 and closes when the handler throws', async (t) => {
  const { text, closed } = await exchange(get('/throw'));
  t.same(statuses(text), [500]);
  t.ok(closed);
  t.match(errors.at(-1), { message: 'handler bug' });
});

t.test('answers 408 to a request that stops half-way, and closes idle connections', async (t) => {
  const partial = await exchange(`GET / HTTP/1.1\r\nHo`, 1000);
  t.same(statuses(partial.text), [408]);
  t.ok(partial.closed);

  const idle = await exchange(get('/idle'), 1000);
  t.same(statuses(idle.text), [200]);
  t.ok(idle.closed, 'closed after keepAliveTimeoutMs of silence');
});

t.test('close() ends idle connections and stops listening', async (t) => {
  const other = createHttp1Server({ handler, maxBodyBytes: 0, keepAliveTimeoutMs: 60_000 });
  await new Promise<void>((resolve) => other.server.listen(0, '127.0.0.1', resolve));
  const a = other.server.address();
  const socket = connect(typeof a === 'object' && a ? a.port : 0, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(get('/x'));
  await new Promise((resolve) => socket.once('data', resolve));

  const closed = new Promise((resolve) => socket.once('close', resolve));
  await other.close();
  await closed;
  t.pass('closed');
});
