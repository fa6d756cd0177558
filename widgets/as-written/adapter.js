// What the design document leaves undefined, so that its code runs as printed:
// `getConfig`, `getTenantHash`, `sessionId`, `sendRegularChatRequest`, the component
// that calls `useStreaming()` (the document's ChatProvider), and what the user sees
// (its MessageBubble, §2.3, without JSX: `isStreaming ? streamedContent : content`).
//
// Nothing here fixes a defect of the document's code. The adapter only
// - keeps the tenant config the page loaded and hands it to `getConfig()`;
// - runs `sendMessage` from `ChatProvider.fragment.js`, the document's text unchanged,
//   with those names in scope (the fragment is a piece of a component body, not a module);
// - sends the regular chat POST the document calls but does not show, and shows its
//   answer or a visible error (`CHAT_<status>`, `CHAT_NETWORK`);
// - counts the seed's metrics around the document's code (an `EventSource` started; an
//   `error` the hook treats as a failure; a fallback) without changing what it does.

import { createRoot } from 'react';

/**
 * `useStreaming`: the hook to run (as written, or a patched copy); `fragment`: the text
 * of the provider's `sendMessage`/`shouldUseStreaming`; `naive`: whether the hook
 * ignores CONNECTING errors (the naive fix), which changes only what counts as failed.
 */
export function createAdapter(host, { useStreaming, fragment, naive }) {
  let config = null;
  let live = null; // the newest assistant bubble: the one MessageBubble streams into
  const order = [];
  const content = new Map(); // each message's `content`: set only by the regular chat
  let streaming = null; // the hook's value from the latest render
  const sourceMessage = (url) => new URL(url, 'http://page.invalid/').searchParams.get('message_id');

  // Metrics around the document's EventSource use, without touching its behaviour.
  if (typeof EventSource !== 'undefined') {
    const Base = EventSource;
    globalThis.EventSource = class extends Base {
      constructor(url) {
        super(url);
        const id = sourceMessage(url);
        host.metric('streaming_started', id);
        this.addEventListener('error', () => {
          if (!naive || this.readyState === Base.CLOSED) host.metric('streaming_failed', id);
        });
      }
    };
  }

  // MessageBubble for every message: the newest shows `streamedContent` while streaming.
  const paint = () => {
    if (!streaming) return;
    for (const id of order) {
      const isLive = id === live && streaming.isStreaming;
      host.render(id, isLive ? streaming.streamedContent : content.get(id) || '', isLive);
    }
  };

  function ChatProvider(props) {
    streaming = useStreaming(props);
    return streaming;
  }
  const root = createRoot(paint);

  const getConfig = () => config;
  const getTenantHash = () => host.tenantHash;
  const sessionId = host.sessionId;

  async function post(message, fallback) {
    if (fallback) host.metric('fallback_triggered', message.id);
    const url = (config && config.endpoints && config.endpoints.chat) || '/Master_Function?action=chat';
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          tenant_hash: getTenantHash(),
          user_input: message.content,
          session_id: sessionId,
          message_id: message.id,
        }),
      });
      let answer = null;
      if (response.ok) {
        try {
          const v = await response.json();
          if (v && ['message_id', 'session_id', 'content', 'type'].every((k) => typeof v[k] === 'string')) answer = v.content;
        } catch (e) {
          answer = null;
        }
      }
      if (answer !== null) {
        content.set(message.id, answer);
        host.settle(message.id, { kind: 'complete', source: 'post', text: answer });
      } else {
        host.settle(message.id, { kind: 'failed', code: `CHAT_${response.status}` });
      }
    } catch (e) {
      host.settle(message.id, { kind: 'failed', code: 'CHAT_NETWORK' });
    }
    paint();
  }
  const sendRegularChatRequest = (message) => post(message, false);

  root.render({
    type: ChatProvider,
    props: { onFallback: (params) => post({ id: params.message_id, content: params.user_input }, true) },
  });

  // The fragment is part of ChatProvider's body: its free names are bound per call to
  // what the component holds at that moment.
  const provider = new Function(
    'getConfig',
    'streaming',
    'getTenantHash',
    'sessionId',
    'sendRegularChatRequest',
    `${fragment}\nreturn { sendMessage, shouldUseStreaming };`,
  );

  return {
    config(cfg) {
      config = cfg;
    },
    send(id, text) {
      order.push(id);
      live = id;
      const { sendMessage } = provider(getConfig, streaming, getTenantHash, sessionId, sendRegularChatRequest);
      const done = sendMessage({ id, content: text, role: 'user' });
      paint();
      return done;
    },
    // As written: nothing cleans up when the page closes (§B.6 #16).
    unmount() {},
  };
}
