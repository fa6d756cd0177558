// The usual first patch of the document's widget: `onerror` ignores transient errors
// (readyState CONNECTING, so the browser reconnects) and falls back to the regular chat
// only when the EventSource is CLOSED (STREAM_005). Everything else is the document's
// code: the same `sendMessage` fragment and adapter as `../as-written/`.
import { useStreaming } from './useStreaming.js';
import fragment from '../as-written/ChatProvider.fragment.js' with { type: 'text' };
import { createAdapter } from '../as-written/adapter.js';

export function createWidget(host) {
  return createAdapter(host, { useStreaming, fragment, naive: true });
}
