// The design document's widget, as written: its `useStreaming` hook (§2.1) and its
// ChatProvider's `sendMessage` / `shouldUseStreaming` (§2.2), byte for byte in
// `useStreaming.js` and `ChatProvider.fragment.js`; `adapter.js` supplies only what the
// document leaves undefined. Its defects (widget-and-determinism.md §B.6) are kept: this
// is the code a team would ship from the document.
import { useStreaming } from './useStreaming.js';
import fragment from './ChatProvider.fragment.js' with { type: 'text' };
import { createAdapter } from './adapter.js';

export function createWidget(host) {
  return createAdapter(host, { useStreaming, fragment, naive: false });
}
