import { apiFetch } from './api.js';

/**
 * Reads a Server-Sent Events stream with fetch, because EventSource cannot send the Authorization
 * header. Calls onEvent({ event, data }) per event; resolves when the server closes the stream.
 * Follows the parsing rules of the HTML spec for the fields DIPS uses (event, data, comments).
 */
export async function readEventStream(path, { signal, onEvent }) {
  const response = await apiFetch(path, { signal, headers: { Accept: 'text/event-stream' } });
  if (!response.headers.get('Content-Type')?.startsWith('text/event-stream')) {
    await response.body?.cancel();
    throw new Error(`${path} did not answer with an event stream`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let eventName = 'message';
  let dataLines = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    const lines = pending.split(/\r\n|\r|\n/);
    pending = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (dataLines.length > 0) onEvent({ event: eventName, data: dataLines.join('\n') });
        eventName = 'message';
        dataLines = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const fieldValue = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') eventName = fieldValue;
      else if (field === 'data') dataLines.push(fieldValue);
    }
  }
}
