import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import sodium from 'libsodium-wrappers';

/**
 * A GitHub REST API for the tests, at the HTTP level: the endpoints the action uses
 * (environments, their secrets' public key and secrets, their variables, pull-request
 * comments with pagination), with a real libsodium key pair per environment, so every
 * secret that arrives is decrypted and can be compared with what was meant. Faults on
 * demand: 429 and secondary-rate-limit 403 with retry-after, a token without permission.
 */

export interface Request {
  method: string;
  path: string;
  status: number;
  token: string;
}

interface Environment {
  keyId: string;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  secrets: Map<string, string>;
  variables: Map<string, string>;
}

export class FakeGitHub {
  readonly requests: Request[] = [];
  readonly environments = new Map<string, Environment>();
  readonly comments = new Map<number, Array<{ id: number; body: string }>>();
  /** Token -> what it may do. */
  readonly tokens = new Map<string, { secrets: boolean; variables: boolean; administration: boolean; comments: boolean }>();
  /** One-time faults: the next request matching `match` gets this answer. */
  readonly faults: Array<{ match: RegExp; status: number; message: string; headers?: Record<string, string> }> = [];
  private nextId = 1000;
  private server!: http.Server;
  url = '';

  static async start(owner = 'acme', repo = 'db'): Promise<FakeGitHub> {
    await sodium.ready;
    const gh = new FakeGitHub(owner, repo);
    gh.server = http.createServer((req, res) => void gh.handle(req, res));
    await new Promise<void>((r) => gh.server.listen(0, '127.0.0.1', () => r()));
    gh.url = `http://127.0.0.1:${(gh.server.address() as AddressInfo).port}`;
    return gh;
  }

  private constructor(
    readonly owner: string,
    readonly repo: string,
  ) {}

  addEnvironment(name: string): Environment {
    const kp = sodium.crypto_box_keypair();
    const env: Environment = { keyId: `key-${name}-${this.nextId++}`, publicKey: kp.publicKey, privateKey: kp.privateKey, secrets: new Map(), variables: new Map() };
    this.environments.set(name, env);
    return env;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  writes(token?: string): Request[] {
    return this.requests.filter((r) => r.method !== 'GET' && (!token || r.token === token));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
    const url = new URL(req.url ?? '/', this.url);
    const token = (req.headers.authorization ?? '').replace(/^(token|bearer) /i, '');
    const method = req.method ?? 'GET';
    const send = (status: number, data: unknown, headers: Record<string, string> = {}): void => {
      this.requests.push({ method, path: url.pathname, status, token });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(data === undefined ? '' : JSON.stringify(data));
    };
    const fault = this.faults.findIndex((f) => f.match.test(`${method} ${url.pathname}`));
    if (fault >= 0) {
      const f = this.faults.splice(fault, 1)[0]!;
      return send(f.status, { message: f.message }, f.headers);
    }
    const may = this.tokens.get(token);
    if (!may) return send(401, { message: 'Bad credentials' });
    const denied = (permission: string): void => send(403, { message: 'Resource not accessible by personal access token' }, { 'x-accepted-github-permissions': permission });
    const base = `/repos/${this.owner}/${this.repo}`;
    const p = url.pathname;
    let m: RegExpExecArray | null;

    if ((m = new RegExp(`^${base}/environments/([^/]+)$`).exec(p))) {
      const name = decodeURIComponent(m[1]!);
      if (method === 'GET') return this.environments.has(name) ? send(200, { name }) : send(404, { message: 'Not Found' });
      if (method === 'PUT') {
        if (!may.administration) return denied('administration=write');
        if (!this.environments.has(name)) this.addEnvironment(name);
        return send(200, { name });
      }
    }
    if ((m = new RegExp(`^${base}/environments/([^/]+)/secrets/public-key$`).exec(p)) && method === 'GET') {
      const env = this.environments.get(decodeURIComponent(m[1]!));
      if (!env) return send(404, { message: 'Not Found' });
      if (!may.secrets) return denied('secrets=read');
      return send(200, { key_id: env.keyId, key: sodium.to_base64(env.publicKey, sodium.base64_variants.ORIGINAL) });
    }
    if ((m = new RegExp(`^${base}/environments/([^/]+)/secrets/([^/]+)$`).exec(p)) && method === 'PUT') {
      const env = this.environments.get(decodeURIComponent(m[1]!));
      if (!env) return send(404, { message: 'Not Found' });
      if (!may.secrets) return denied('secrets=write');
      if (body.key_id !== env.keyId) return send(422, { message: 'Bad key_id' });
      const opened = sodium.crypto_box_seal_open(sodium.from_base64(String(body.encrypted_value), sodium.base64_variants.ORIGINAL), env.publicKey, env.privateKey);
      const existed = env.secrets.has(m[2]!);
      env.secrets.set(m[2]!, sodium.to_string(opened));
      return send(existed ? 204 : 201, existed ? undefined : {});
    }
    if ((m = new RegExp(`^${base}/environments/([^/]+)/variables(?:/([^/]+))?$`).exec(p))) {
      const env = this.environments.get(decodeURIComponent(m[1]!));
      if (!env) return send(404, { message: 'Not Found' });
      const name = m[2];
      if (method === 'GET' && name) return env.variables.has(name) ? send(200, { name, value: env.variables.get(name) }) : send(404, { message: 'Not Found' });
      if (!may.variables) return denied('environments=write');
      if (method === 'POST' && !name) {
        if (env.variables.has(String(body.name))) return send(409, { message: 'Already exists' });
        env.variables.set(String(body.name), String(body.value));
        return send(201, {});
      }
      if (method === 'PATCH' && name) {
        if (!env.variables.has(name)) return send(404, { message: 'Not Found' });
        env.variables.set(name, String(body.value));
        return send(204, undefined);
      }
    }
    if ((m = new RegExp(`^${base}/issues/(\\d+)/comments$`).exec(p))) {
      const list = this.comments.get(Number(m[1])) ?? [];
      this.comments.set(Number(m[1]), list);
      if (method === 'GET') {
        // Pages of 10 at most, so that a test with a few dozen comments crosses pages.
        const perPage = Math.min(10, Number(url.searchParams.get('per_page') ?? 30));
        const page = Number(url.searchParams.get('page') ?? 1);
        const slice = list.slice((page - 1) * perPage, page * perPage);
        const last = Math.max(1, Math.ceil(list.length / perPage));
        const link: Record<string, string> = page < last ? { link: `<${this.url}${p}?per_page=${perPage}&page=${page + 1}>; rel="next", <${this.url}${p}?per_page=${perPage}&page=${last}>; rel="last"` } : {};
        return send(200, slice.map((c) => ({ id: c.id, body: c.body })), link);
      }
      if (method === 'POST') {
        if (!may.comments) return denied('pull_requests=write');
        const c = { id: this.nextId++, body: String(body.body) };
        list.push(c);
        return send(201, c);
      }
    }
    if ((m = new RegExp(`^${base}/issues/comments/(\\d+)$`).exec(p)) && method === 'PATCH') {
      if (!may.comments) return denied('pull_requests=write');
      for (const list of this.comments.values()) {
        const c = list.find((x) => x.id === Number(m![1]));
        if (c) {
          c.body = String(body.body);
          return send(200, c);
        }
      }
      return send(404, { message: 'Not Found' });
    }
    return send(404, { message: `no such endpoint in the test double: ${method} ${p}` });
  }
}
