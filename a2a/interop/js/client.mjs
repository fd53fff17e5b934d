// An A2A client nobody here wrote, the A2A JS SDK's (@a2a-js/sdk, A2A 0.3),
// against an agent agenthost serves. a2a/interop/interop_test.go runs it;
// it can be run by hand too:
//
//   TOKEN=$(./bin/agenthost token --audience http://127.0.0.1:8420/a2a/research)
//   node a2a/interop/js/client.mjs http://127.0.0.1:8420/a2a/research "$TOKEN"
//   node a2a/interop/js/client.mjs --no-token http://127.0.0.1:8420/a2a/research
//
// Usage: node client.mjs [--no-token] [--message TEXT] AGENT_URL [TOKEN]
// AGENT_URL and TOKEN may instead be in A2A_AGENT_URL and A2A_TOKEN.
//
// It fetches the agent card (<AGENT_URL>/.well-known/agent-card.json) with the
// SDK's card resolver, builds the SDK's client from it (JSON-RPC transport,
// with the SDK's authenticating fetch adding "Authorization: Bearer TOKEN"),
// and calls message/send, then tasks/get for the task it got, then
// message/stream with the same text. It prints one JSON object on stdout:
//
//   {"card": {"name", "url", "protocolVersion", "preferredTransport", "signatures"},
//    "lastResponse": {"status", "wwwAuthenticate"},
//    "send": {"kind", "taskId", "state", "answer"},
//    "get": {"taskId", "state", "answer"},
//    "stream": {"events", "taskId", "state", "progress", "answer"}}
//
// With --no-token it sends message/send without a token and reports the
// error in "error" (the host answers 401; "httpStatus" is the status the
// SDK's error names, "lastResponse" the HTTP answer as received). The exit
// status is 0 when every call succeeded, 1 when one failed (the JSON then
// has "error" and the step it failed at in "failedAt"), 2 on bad usage.

import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
  createAuthenticatingFetchWithRetry,
} from '@a2a-js/sdk/client';
import { randomUUID } from 'node:crypto';

const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected']);

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node client.mjs [--no-token] [--message TEXT] AGENT_URL [TOKEN]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { noToken: false, message: 'What time is it now?' };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-token') opts.noToken = true;
    else if (a === '--message') {
      if (i + 1 >= argv.length) usage('--message needs a value');
      opts.message = argv[++i];
    } else if (a.startsWith('--')) usage(`unknown flag ${a}`);
    else rest.push(a);
  }
  opts.agentURL = rest[0] ?? process.env.A2A_AGENT_URL;
  opts.token = rest[1] ?? process.env.A2A_TOKEN;
  if (rest.length > 2) usage('too many arguments');
  if (!opts.agentURL) usage('the agent URL is required (argument or A2A_AGENT_URL)');
  if (!opts.noToken && !opts.token) usage('a token is required (argument or A2A_TOKEN), or --no-token');
  return opts;
}

// text joins the text parts of a message or artifact.
function text(parts) {
  return (parts ?? [])
    .filter((p) => p.kind === 'text')
    .map((p) => p.text)
    .join('');
}

// answer is what a task or message says back: the task's artifacts, else
// its status message, else the last agent message of its history.
function answer(result) {
  if (!result) return '';
  if (result.kind === 'message') return text(result.parts);
  const fromArtifacts = (result.artifacts ?? []).map((a) => text(a.parts)).join('');
  if (fromArtifacts) return fromArtifacts;
  const fromStatus = text(result.status?.message?.parts);
  if (fromStatus) return fromStatus;
  const agentMsgs = (result.history ?? []).filter((m) => m.role === 'agent');
  return agentMsgs.length ? text(agentMsgs[agentMsgs.length - 1].parts) : '';
}

function userMessage(t) {
  return {
    kind: 'message',
    messageId: randomUUID(),
    role: 'user',
    parts: [{ kind: 'text', text: t }],
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const summary = {};
  let step = 'card';
  try {
    // The card is public; the resolver takes a base URL and a path relative
    // to it, so the agent's URL needs its trailing slash.
    const base = opts.agentURL.endsWith('/') ? opts.agentURL : `${opts.agentURL}/`;
    const card = await new DefaultAgentCardResolver().resolve(base);
    summary.card = {
      name: card.name,
      url: card.url,
      protocolVersion: card.protocolVersion,
      preferredTransport: card.preferredTransport,
      signatures: (card.signatures ?? []).length,
    };

    // Every call goes through fetchImpl; it notes the last HTTP answer's
    // status and WWW-Authenticate for the summary.
    const observed = {};
    const observingFetch = async (...args) => {
      const res = await fetch(...args);
      observed.status = res.status;
      observed.wwwAuthenticate = res.headers.get('WWW-Authenticate') ?? undefined;
      return res;
    };
    summary.lastResponse = observed;
    let fetchImpl = observingFetch;
    if (!opts.noToken) {
      // The SDK's own way to authenticate its calls: a fetch that adds the
      // handler's headers to every request.
      fetchImpl = createAuthenticatingFetchWithRetry(observingFetch, {
        headers: async () => ({ Authorization: `Bearer ${opts.token}` }),
        shouldRetryWithHeaders: async () => undefined,
      });
    }
    const factory = new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
        transports: [new JsonRpcTransportFactory({ fetchImpl })],
        preferredTransports: ['JSONRPC'],
      }),
    );
    const client = await factory.createFromAgentCard(card);

    step = 'message/send';
    const sent = await client.sendMessage({
      message: userMessage(opts.message),
      configuration: { blocking: true, acceptedOutputModes: ['text/plain'] },
    });
    summary.send = {
      kind: sent.kind,
      taskId: sent.kind === 'task' ? sent.id : undefined,
      state: sent.kind === 'task' ? sent.status?.state : undefined,
      answer: answer(sent),
    };
    if (opts.noToken) return summary;

    if (sent.kind === 'task') {
      // tasks/get, polled until the task is done (a blocking send should
      // already have waited for it).
      step = 'tasks/get';
      const deadline = Date.now() + 30_000;
      let task = await client.getTask({ id: sent.id });
      while (!TERMINAL.has(task.status?.state) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        task = await client.getTask({ id: sent.id });
      }
      summary.get = { taskId: task.id, state: task.status?.state, answer: answer(task) };
    }

    step = 'message/stream';
    const events = [];
    const progress = [];
    let task;
    let state;
    let artifacts = '';
    let reply = '';
    for await (const ev of client.sendMessageStream({ message: userMessage(opts.message) })) {
      events.push(ev.kind);
      switch (ev.kind) {
        case 'task':
          task = ev;
          state = ev.status?.state;
          break;
        case 'status-update': {
          state = ev.status?.state;
          const t = text(ev.status?.message?.parts);
          if (t) progress.push(t);
          break;
        }
        case 'artifact-update':
          artifacts += text(ev.artifact?.parts);
          break;
        case 'message':
          reply += text(ev.parts);
          break;
      }
    }
    summary.stream = {
      events,
      taskId: task?.id,
      state,
      progress,
      answer: artifacts || reply || progress[progress.length - 1] || '',
    };
    return summary;
  } catch (err) {
    summary.failedAt = step;
    summary.error = err instanceof Error ? err.message : String(err);
    const m = /Status: (\d{3})/.exec(summary.error);
    if (m) summary.httpStatus = Number(m[1]);
    process.exitCode = 1;
    return summary;
  }
}

process.stdout.write(`${JSON.stringify(await main(), null, 2)}\n`);
