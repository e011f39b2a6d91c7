import { createServer as createHttpServer, type Server } from 'node:http';

/** Answers http-01 challenges on 127.0.0.1 from a token map, as an ACME client's server would. */
export async function startHttp01Server(port: number) {
  const tokens = new Map<string, string>();
  const server: Server = createHttpServer((req, res) => {
    const prefix = '/.well-known/acme-challenge/';
    const token = req.url?.startsWith(prefix) ? req.url.slice(prefix.length) : '';
    const body = tokens.get(token);
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    tokens,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

