// The corrected Picasso streaming widget (widget-and-determinism.md §B.7), in plain
// JavaScript with browser APIs only: EventSource, fetch, AbortController, setTimeout,
// URLSearchParams. It runs unchanged in the simulator and in a browser.
//
// - The session is bucketed once, when the config arrives: FNV-1a-64 of
//   `tenant:session` mod 10,000 against round(p × 100), so a session never flips mode
//   and raising p never moves a session off streaming.
// - Every message owns its state, text buffer, EventSource and timers; an event from a
//   source that is no longer the message's current one is ignored.
// - `end` closes the EventSource first (so the browser cannot reconnect), then commits.
// - Any stream failure (error event, error frame, T_connect, T_idle, T_total, repeated
//   unparseable frames) closes the EventSource and falls back once to the regular chat
//   (STREAM_005); the partial text is hidden and the POST's answer replaces it.
// - A failed POST is retried once, after Retry-After when the page may read it; then the
//   message fails with a visible code.
// - A page sees `error` with a readyState, never the status behind it: a failing stream
//   is STREAM_001 ("EventSource connection failed"); the server's codes stay server-side.
//
// The adapter contract: `createWidget(host)` returns { config, send, unmount }; the
// widget reports to `host.render(id, text, cursor)`, `host.settle(id, outcome)`,
// `host.metric(name, id)` and `host.retryWait(id, ms)`. In a browser, `host` is the
// page's own glue (see the demo page); in the simulator, the simulator's.

const BUCKETS = 10000;
const MAX_MALFORMED = 3;
const DEFAULT_RETRY_MS = 1000;
const MAX_RETRY_MS = 10000;
const CHAT_URL = '/Master_Function?action=chat';
const KNOWN_CODES = ['STREAM_001', 'STREAM_002', 'STREAM_003', 'STREAM_004', 'STREAM_005', 'RATE_LIMITED', 'ORIGIN_NOT_ALLOWED'];
const DEFAULT_SETTINGS = {
  connect_timeout_ms: 10000,
  idle_timeout_ms: 15000,
  total_timeout_ms: 35000,
  post_timeout_ms: 30000,
  // The browser's reconnection time (Chromium: 3000 ms), for the resume deadline.
  reconnect_ms: 3000,
  resume: false,
};

/**
 * FNV-1a 64 over the UTF-8 bytes of `text` (the Rust policy's `picasso_core::rng::fnv1a64`),
 * as its high and low 32 bits. Plain numbers rather than BigInt: every product stays below
 * 2^53, so it is exact, and a session's start-up no longer spends more on this hash than on
 * the rest of its config step. A lone surrogate counts as U+FFFD, as TextEncoder has it.
 */
export function fnv1a64(text) {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const eat = (byte) => {
    lo = (lo ^ byte) >>> 0;
    // × 0x100000001b3 = × 0x1b3 + × 2^40, modulo 2^64.
    const low = lo * 0x1b3;
    hi = (hi * 0x1b3 + Math.floor(low / 0x100000000) + ((lo << 8) >>> 0)) >>> 0;
    lo = low >>> 0;
  };
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xe000) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) eat(c);
    else if (c < 0x800) {
      eat(0xc0 | (c >> 6));
      eat(0x80 | (c & 63));
    } else if (c < 0x10000) {
      eat(0xe0 | (c >> 12));
      eat(0x80 | ((c >> 6) & 63));
      eat(0x80 | (c & 63));
    } else {
      eat(0xf0 | (c >> 18));
      eat(0x80 | ((c >> 12) & 63));
      eat(0x80 | ((c >> 6) & 63));
      eat(0x80 | (c & 63));
    }
  }
  return { hi, lo };
}

/** The session's sticky bucket in 0..10,000. */
export function bucket(tenant, sessionId) {
  const { hi, lo } = fnv1a64(`${tenant}:${sessionId}`);
  // (hi × 2^32 + lo) mod 10,000, with 2^32 mod 10,000 = 7,296.
  return (((hi % BUCKETS) * 7296) % BUCKETS + (lo % BUCKETS)) % BUCKETS;
}

/** Buckets admitted by a percentage: clamped to [0, 100], NaN as 0. */
export function admitted(percentage) {
  const p = Number(percentage);
  if (Number.isNaN(p)) return 0;
  return Math.round(Math.min(100, Math.max(0, p)) * 100);
}

/** The streaming URL when the config allows streaming in this browser at all. */
export function eligible(config) {
  const url = config && config.endpoints && config.endpoints.streaming;
  const enabled = !!(config && config.features && config.features.streaming_enabled);
  const hasEventSource = typeof EventSource !== 'undefined';
  return enabled && hasEventSource && typeof url === 'string' && url.trim() !== '' ? url : null;
}

export function createWidget(host) {
  const settings = Object.assign({}, DEFAULT_SETTINGS, host.settings || {});
  let config = null;
  let streamUrl = null;
  const messages = new Map();
  const order = [];

  const render = (m) => host.render(m.id, m.shown, m.cursor);

  const clearTimers = (m) => {
    for (const t of m.timers) clearTimeout(t);
    m.timers = [];
  };
  const after = (m, ms, fn) => {
    const t = setTimeout(() => {
      m.timers = m.timers.filter((x) => x !== t);
      fn();
    }, ms);
    m.timers.push(t);
    return t;
  };

  function finish(m, outcome) {
    m.state = 'done';
    clearTimers(m);
    if (m.controller) {
      // A POST still running (the page is closing) is aborted; a finished one is a no-op.
      m.controller.abort();
      m.controller = null;
    }
    m.cursor = false;
    host.settle(m.id, outcome);
    render(m);
  }

  function closeSource(m) {
    if (m.es) {
      m.es.close();
      m.es = null;
    }
  }

  function open(m) {
    m.state = 'open';
    clearTimers(m);
    if (m.totalAt === null) m.totalAt = Date.now() + settings.total_timeout_ms;
    armOpenTimers(m);
  }

  // T_idle is a deadline moved by every text frame; its timer checks the deadline when
  // it fires and sleeps again if a frame moved it (no timer churn per token).
  function armOpenTimers(m) {
    clearTimers(m);
    m.idleAt = Date.now() + settings.idle_timeout_ms;
    const checkIdle = () => {
      const left = m.idleAt - Date.now();
      if (left > 0) {
        after(m, left, checkIdle);
        return;
      }
      console.log(`${m.id}: T_idle expired`);
      closeAndFallBack(m, 'STREAM_004');
    };
    after(m, settings.idle_timeout_ms, checkIdle);
    after(m, Math.max(0, m.totalAt - Date.now()), () => {
      console.log(`${m.id}: T_total expired`);
      closeAndFallBack(m, 'STREAM_004');
    });
  }

  function startStream(m) {
    const params = new URLSearchParams({
      tenant_hash: host.tenantHash,
      user_input: m.text,
      session_id: host.sessionId,
      message_id: m.id,
    });
    const es = new EventSource(`${streamUrl}?${params.toString()}`);
    m.es = es;
    m.state = 'connecting';
    m.cursor = true;
    host.metric('streaming_started', m.id);
    after(m, settings.connect_timeout_ms, () => {
      console.log(`${m.id}: T_connect expired`);
      closeAndFallBack(m, 'STREAM_001');
    });
    es.onopen = () => {
      if (m.es !== es || (m.state !== 'connecting' && m.state !== 'resuming')) return;
      open(m);
    };
    es.onmessage = (event) => {
      if (m.es !== es || m.state !== 'open') return;
      m.lastEventId = event.lastEventId;
      onFrame(m, event.data);
    };
    es.onerror = () => {
      if (m.es !== es) return;
      onError(m, es);
    };
    render(m);
  }

  function onFrame(m, data) {
    let frame = null;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      frame = null;
    }
    const type = frame && typeof frame === 'object' ? frame.type : undefined;
    if (type === 'text' && typeof frame.content === 'string') {
      m.buffer += frame.content;
      m.idleAt = Date.now() + settings.idle_timeout_ms;
      m.shown = m.buffer;
      render(m);
    } else if (type === 'end') {
      // close() first, so the browser cannot reconnect after the body ends.
      closeSource(m);
      host.metric('streaming_completed', m.id);
      console.log(`${m.id}: complete (stream)`);
      m.shown = m.buffer;
      finish(m, { kind: 'complete', source: 'stream', text: m.buffer });
    } else if (type === 'error' && typeof frame.code === 'string') {
      const code = KNOWN_CODES.includes(frame.code) ? frame.code : 'STREAM_001';
      console.log(`${m.id}: error frame ${code}: ${frame.message || ''}`);
      closeAndFallBack(m, code);
    } else {
      m.malformed += 1;
      console.log(`${m.id}: unparseable frame ignored`);
      if (m.malformed >= MAX_MALFORMED) closeAndFallBack(m, 'STREAM_001');
    }
  }

  function onError(m, es) {
    const rs = es.readyState;
    if (m.state === 'open' && rs === EventSource.CONNECTING && settings.resume && !m.resumed && m.lastEventId) {
      // One reconnect carrying Last-Event-ID (the browser's own), before falling back.
      m.resumed = true;
      m.state = 'resuming';
      clearTimers(m);
      console.log(`${m.id}: onerror (CONNECTING): resuming after ${m.lastEventId}`);
      after(m, settings.reconnect_ms + settings.connect_timeout_ms, () => {
        console.log(`${m.id}: T_connect expired`);
        closeAndFallBack(m, 'STREAM_001');
      });
      after(m, Math.max(0, m.totalAt - Date.now()), () => {
        console.log(`${m.id}: T_total expired`);
        closeAndFallBack(m, 'STREAM_004');
      });
      return;
    }
    console.log(`${m.id}: onerror (${rs === EventSource.CLOSED ? 'CLOSED' : 'CONNECTING'}): STREAM_001`);
    closeAndFallBack(m, 'STREAM_001');
  }

  function closeAndFallBack(m, code) {
    if (m.state === 'done') return;
    closeSource(m);
    clearTimers(m);
    // The partial text is hidden: the POST's answer replaces it, never joins it.
    m.buffer = '';
    m.shown = '';
    m.fallbackFrom = code;
    host.metric('streaming_failed', m.id);
    host.metric('fallback_triggered', m.id);
    console.log(`${m.id}: STREAM_005: fallback to regular chat after ${code}`);
    post(m);
  }

  function post(m) {
    m.attempts += 1;
    m.state = 'posting';
    const controller = new AbortController();
    m.controller = controller;
    const body = JSON.stringify({
      tenant_hash: host.tenantHash,
      user_input: m.text,
      session_id: host.sessionId,
      message_id: m.id,
    });
    const url = (config && config.endpoints && config.endpoints.chat) || CHAT_URL;
    const attempt = m.attempts;
    after(m, settings.post_timeout_ms, () => {
      controller.abort();
      m.controller = null;
      postFailed(m, true, null, 'T_post expired');
    });
    m.cursor = m.fallbackFrom === null ? m.cursor : true;
    render(m);
    fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      signal: controller.signal,
    }).then(
      async (response) => {
        if (m.state !== 'posting' || m.attempts !== attempt) return;
        let answer = null;
        let text = null;
        try {
          text = await response.text();
        } catch (e) {
          text = null;
        }
        if (m.state !== 'posting' || m.attempts !== attempt) return;
        if (response.ok && text !== null) {
          try {
            const v = JSON.parse(text);
            if (v && ['message_id', 'session_id', 'content', 'type'].every((k) => typeof v[k] === 'string')) answer = v.content;
          } catch (e) {
            answer = null;
          }
        }
        m.controller = null;
        if (answer !== null) {
          console.log(`${m.id}: complete (post)`);
          m.shown = answer;
          finish(m, { kind: 'complete', source: 'post', text: answer });
          return;
        }
        const s = response.status;
        if (s === 429 || s >= 500) {
          const ra = Number(response.headers.get('Retry-After'));
          postFailed(m, true, Number.isFinite(ra) && response.headers.get('Retry-After') !== null ? ra * 1000 : null, `status ${s}`);
        } else if (response.ok) {
          postFailed(m, true, null, 'malformed body');
        } else {
          postFailed(m, false, null, `status ${s}`);
        }
      },
      (error) => {
        if (error && error.name === 'AbortError') return;
        if (m.state !== 'posting' || m.attempts !== attempt) return;
        m.controller = null;
        postFailed(m, true, null, 'network error');
      },
    );
  }

  function postFailed(m, retryable, retryAfterMs, why) {
    clearTimers(m);
    if (retryable && m.attempts < 2) {
      const wait = Math.min(retryAfterMs === null ? DEFAULT_RETRY_MS : retryAfterMs, MAX_RETRY_MS);
      host.retryWait(m.id, wait);
      m.state = 'retrying';
      console.log(`${m.id}: chat POST failed (${why}): one retry in ${wait} ms`);
      after(m, wait, () => post(m));
      return;
    }
    const code = m.fallbackFrom !== null ? m.fallbackFrom : 'CHAT_UNAVAILABLE';
    console.log(`${m.id}: failed (${why}): error ${code} shown`);
    m.shown = '';
    finish(m, { kind: 'failed', code });
  }

  return {
    config(cfg) {
      config = cfg;
      if (!cfg) {
        console.log('config unavailable: regular chat');
        return;
      }
      const url = eligible(cfg);
      const p = cfg.features ? cfg.features.streaming_percentage : 0;
      const b = bucket(host.tenantHash, host.sessionId);
      const a = admitted(p);
      const stream = url !== null && b < a;
      console.log(
        url === null
          ? 'decision: regular (streaming not enabled, no streaming URL, or no EventSource)'
          : `decision: ${stream ? 'stream' : 'regular'} (bucket ${b} ${stream ? '<' : '>='} ${a} for ${p} %)`,
      );
      streamUrl = stream ? url : null;
    },

    send(id, text) {
      if (messages.has(id)) {
        console.log(`${id}: duplicate send ignored`);
        return;
      }
      const m = {
        id,
        text,
        state: 'idle',
        es: null,
        buffer: '',
        shown: '',
        cursor: false,
        malformed: 0,
        resumed: false,
        lastEventId: '',
        attempts: 0,
        fallbackFrom: null,
        totalAt: null,
        idleAt: null,
        controller: null,
        timers: [],
      };
      messages.set(id, m);
      order.push(id);
      if (streamUrl !== null) startStream(m);
      else post(m);
    },

    unmount() {
      for (const id of order) {
        const m = messages.get(id);
        if (m.state === 'done') continue;
        if (m.es) {
          closeSource(m);
          host.metric('streaming_cancelled', m.id);
        }
        console.log(`${m.id}: cancelled: the page closed`);
        finish(m, { kind: 'cancelled' });
      }
    },
  };
}
