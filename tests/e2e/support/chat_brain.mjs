// A fake chat-only (Chat Completions) model for Responses API clients behind the gateway: it
// answers text, or calls the weather tool it was offered when asked about the weather, and
// turns a tool's result into its answer. Plain and streamed (with the usage chunk when asked).

export const PLAIN_TEXT = 'Hello from the chat-only upstream.';
export const USAGE = { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 };
export const WEATHER_ARGS = { city: 'Paris' };
/** The answer once the tool said `result`. */
export const weatherAnswer = (result) => `The weather in Paris: ${result}.`;

const textOf = (content) =>
  typeof content === 'string' ? content
    : Array.isArray(content) ? content.map((p) => p?.text ?? '').join('') : '';

/** What the fake model answers to a chat request: { text } or { call: { name, arguments } }. */
export function decide(body) {
  const messages = body.messages ?? [];
  const last = messages.at(-1);
  if (last?.role === 'tool') return { text: weatherAnswer(textOf(last.content)) };
  const tool = (body.tools ?? []).find((t) => t.function?.name?.includes('weather'));
  const asked = messages.filter((m) => m.role === 'user').map((m) => textOf(m.content)).join(' ');
  if (tool && /weather/i.test(asked)) {
    return { call: { name: tool.function.name, arguments: JSON.stringify(WEATHER_ARGS) } };
  }
  return { text: PLAIN_TEXT };
}

const base = { id: 'chatcmpl-brain', created: 1_700_000_000, model: 'brain-1' };

function completion(answer) {
  const message = answer.call
    ? {
      role: 'assistant', content: null,
      tool_calls: [{ id: 'call_brain_1', type: 'function', function: answer.call }],
    }
    : { role: 'assistant', content: answer.text };
  return {
    ...base, object: 'chat.completion',
    choices: [{ index: 0, message, finish_reason: answer.call ? 'tool_calls' : 'stop' }],
    usage: USAGE,
  };
}

function chunks(answer, withUsage) {
  const chunk = (delta, finish = null) => ({
    ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const out = [chunk({ role: 'assistant', content: '' })];
  if (answer.call) {
    const args = answer.call.arguments;
    out.push(chunk({ tool_calls: [{ index: 0, id: 'call_brain_1', type: 'function',
      function: { name: answer.call.name, arguments: '' } }] }));
    out.push(chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(0, 5) } }] }));
    out.push(chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(5) } }] }));
    out.push(chunk({}, 'tool_calls'));
  } else {
    for (const word of answer.text.split(/(?= )/)) out.push(chunk({ content: word }));
    out.push(chunk({}, 'stop'));
  }
  if (withUsage) out.push({ ...base, object: 'chat.completion.chunk', choices: [], usage: USAGE });
  return out;
}

/** A startFakeServer respond() for a chat-only upstream. */
export function chatBrain({ body, path }) {
  if (!path.endsWith('/chat/completions')) {
    return { status: 404, json: { error: { message: `no ${path} here`, type: 'not_found' } } };
  }
  const answer = decide(body);
  if (body.stream) return { sse: chunks(answer, body.stream_options?.include_usage === true) };
  return { json: completion(answer) };
}
