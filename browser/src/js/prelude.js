// The browser globals a widget may use, in virtual time, built on the native `__host`
// functions of `page.rs`. Only what a page sees: an EventSource reports `error` with a
// readyState and nothing else; a fetch Response carries the status, the body and the
// headers CORS lets a cross-origin page read.
(function (host, global) {
  'use strict';

  const fmt = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return `${v.name}: ${v.message}`;
    if (v && typeof v === 'object' && typeof v.type === 'string' && v.target) {
      return `[object ${v.constructor && v.constructor.name === 'ErrorEvent' ? 'ErrorEvent' : 'Event'}] ${v.type}`;
    }
    try {
      const s = JSON.stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  };
  const console = {};
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    // One string, the usual call, is the line as it is.
    console[level] = (...args) =>
      host.console(level, args.length === 1 && typeof args[0] === 'string' ? args[0] : args.map(fmt).join(' '));
  }
  global.console = console;

  // Virtual clock and seeded randomness: no wall time, no entropy leaks in.
  Math.random = () => host.random();
  // The page's time zone is UTC, whatever the machine's: QuickJS's local time follows
  // the process's `TZ`, so a widget that shows "12:03 PM" would print other bytes on a
  // developer's laptop than in CI. Every local-time view of a date is its UTC one.
  const RealDate = Date;
  // A date string that names no zone is local time, so UTC here: an ISO date-time
  // without an offset gets one; another form ("Jan 1, 2026 10:00") is parsed in the
  // machine's zone by QuickJS, then moved back by that zone's offset.
  const parseUtc = (text) => {
    const s = String(text);
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) return RealDate.parse(s + 'Z');
    const t = RealDate.parse(s);
    if (Number.isNaN(t) || /^\d{4}(-\d{2}(-\d{2})?)?(T.*)?$/.test(s) || /Z$|GMT|UTC|[+-]\d{2}:?\d{2}$/i.test(s.trim())) return t;
    return t - RealDate.prototype.getTimezoneOffset.call(new RealDate(t)) * 60000;
  };
  class VirtualDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(host.now());
      else if (args.length === 1) super(typeof args[0] === 'string' ? parseUtc(args[0]) : args[0]);
      // Components are local time: UTC here.
      else super(RealDate.UTC(...args));
    }
    static parse(text) {
      return parseUtc(text);
    }
  }
  // `Date.now` is the host's clock itself (a static method in between would be one
  // more JavaScript call on every frame a widget times); like the built-in, it is
  // writable, configurable and not enumerable.
  Object.defineProperty(VirtualDate, 'now', { value: host.now, writable: true, configurable: true });
  const proto = VirtualDate.prototype;
  const real = RealDate.prototype;
  for (const part of ['FullYear', 'Month', 'Date', 'Day', 'Hours', 'Minutes', 'Seconds', 'Milliseconds']) {
    proto['get' + part] = real['getUTC' + part];
    if (part !== 'Day') proto['set' + part] = real['setUTC' + part];
  }
  proto.getTimezoneOffset = () => 0;
  const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const valid = (d) => !Number.isNaN(d.getTime());
  proto.toDateString = function () {
    if (!valid(this)) return 'Invalid Date';
    return `${DAYS[this.getUTCDay()]} ${MONTHS[this.getUTCMonth()]} ${pad(this.getUTCDate())} ${pad(this.getUTCFullYear(), 4)}`;
  };
  proto.toTimeString = function () {
    if (!valid(this)) return 'Invalid Date';
    return `${pad(this.getUTCHours())}:${pad(this.getUTCMinutes())}:${pad(this.getUTCSeconds())} GMT+0000 (Coordinated Universal Time)`;
  };
  proto.toString = function () {
    return valid(this) ? `${this.toDateString()} ${this.toTimeString()}` : 'Invalid Date';
  };
  // As en-US formats them (a page's locale is not modelled).
  proto.toLocaleDateString = function () {
    if (!valid(this)) return 'Invalid Date';
    return `${this.getUTCMonth() + 1}/${this.getUTCDate()}/${this.getUTCFullYear()}`;
  };
  proto.toLocaleTimeString = function () {
    if (!valid(this)) return 'Invalid Date';
    const h = this.getUTCHours();
    return `${h % 12 === 0 ? 12 : h % 12}:${pad(this.getUTCMinutes())}:${pad(this.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
  };
  proto.toLocaleString = function () {
    return valid(this) ? `${this.toLocaleDateString()}, ${this.toLocaleTimeString()}` : 'Invalid Date';
  };
  global.Date = VirtualDate;
  global.performance = { now: () => host.now() - host.origin() };

  // Timers: ids from the host, callbacks kept here.
  const timers = new Map();
  global.setTimeout = (fn, ms, ...args) => {
    const id = host.setTimer(Math.max(0, Number(ms) || 0));
    timers.set(id, { fn, args, every: null });
    return id;
  };
  global.setInterval = (fn, ms, ...args) => {
    const every = Math.max(1, Number(ms) || 0);
    const id = host.setTimer(every);
    timers.set(id, { fn, args, every });
    return id;
  };
  global.clearTimeout = global.clearInterval = (id) => {
    if (timers.delete(id)) host.clearTimer(id);
  };
  global.queueMicrotask = (fn) => {
    Promise.resolve().then(fn);
  };

  // Events.
  class Event {
    constructor(type, init) {
      this.type = type;
      // Set here, so dispatching changes values, not the object's shape.
      this.target = null;
      this.currentTarget = null;
      if (init) Object.assign(this, init);
    }
  }
  class MessageEvent extends Event {
    constructor(type, init) {
      super(type);
      this.data = init && init.data !== undefined ? init.data : null;
      this.lastEventId = (init && init.lastEventId) || '';
      this.origin = (init && init.origin) || '';
    }
  }
  // A MessageEvent as the constructor makes it, fields in the same order (so the same
  // shape), without the constructor chain and its init object: one is made per frame.
  // A literal with `__proto__` defines its fields on the new object directly; assigning
  // them one by one would first walk the prototype chain looking for a setter, each time.
  const messageEvent = (type, data, lastEventId) => ({
    __proto__: MessageEvent.prototype,
    type,
    target: null,
    currentTarget: null,
    data,
    lastEventId,
    origin: '',
  });
  class EventTarget {
    constructor() {
      // Made on the first addEventListener: most sources have only handler attributes,
      // and every event would otherwise ask an empty Map its size (a native getter).
      this._listeners = null;
    }
    addEventListener(type, fn) {
      if (this._listeners === null) this._listeners = new Map();
      if (!this._listeners.has(type)) this._listeners.set(type, []);
      const list = this._listeners.get(type);
      if (!list.includes(fn)) list.push(fn);
    }
    removeEventListener(type, fn) {
      const list = this._listeners === null ? undefined : this._listeners.get(type);
      if (list) {
        const i = list.indexOf(fn);
        if (i >= 0) list.splice(i, 1);
      }
    }
    dispatchEvent(ev) {
      ev.target = this;
      ev.currentTarget = this;
      fire(this, ev.type, ev);
      return true;
    }
  }
  // Handler attributes run where they were first set; in practice widgets use one or the
  // other, so the attribute runs first, then the listeners in order (a copy, so a
  // listener added or removed during dispatch does not change this one). The attributes
  // of the types a page sees most are read by name: a computed `target['on' + type]`
  // turns the string into an atom on every event.
  const fire = (target, type, ev) => {
    try {
      if (type === 'message') {
        if (typeof target.onmessage === 'function') target.onmessage(ev);
      } else if (type === 'open') {
        if (typeof target.onopen === 'function') target.onopen(ev);
      } else if (type === 'error') {
        if (typeof target.onerror === 'function') target.onerror(ev);
      } else {
        const attribute = 'on' + type;
        // Called as a method: `this` is the target, without `Function.prototype.call`.
        if (typeof target[attribute] === 'function') target[attribute](ev);
      }
    } catch (e) {
      reportError(e);
    }
    if (target._listeners !== null) fireListeners(target, type, ev);
  };
  const fireListeners = (target, type, ev) => {
    const listeners = target._listeners.get(type);
    if (listeners) {
      for (const fn of listeners.slice()) {
        try {
          fn.call(target, ev);
        } catch (e) {
          reportError(e);
        }
      }
    }
  };
  // An exception in a handler goes to the page's error reporting, not to the caller.
  const reportError = (e) => {
    host.uncaught(e instanceof Error ? `${e.name}: ${e.message}` : fmt(e), (e && e.stack) || '');
  };
  global.reportError = reportError;
  global.Event = Event;
  global.MessageEvent = MessageEvent;
  global.EventTarget = EventTarget;

  // EventSource: the WHATWG model runs in Rust (`eventsource.rs`); this is its face.
  // Sources by id: an array, whose element lookup is cheaper than a Map's hashing on
  // every frame. Ids count from 1 per page, so each new source is appended and the
  // array stays dense (QuickJS's fast array); a source let go is `undefined`.
  const sources = [undefined];
  if (host.hasEventSource()) {
    class EventSource extends EventTarget {
      constructor(url) {
        super();
        this.url = String(url);
        this.withCredentials = false;
        this.onopen = null;
        this.onmessage = null;
        this.onerror = null;
        this._id = host.esOpen(this.url);
        // What every `message` event of this source shares, held by a prototype of its
        // own: an event is then an object of two fields (`data`, `lastEventId`), made
        // once per frame. As in a browser, `type`, `target` and the rest are not the
        // event's own properties.
        this._message = { __proto__: MessageEvent.prototype, type: 'message', target: this, currentTarget: this, origin: '' };
        sources[this._id] = this;
      }
      get readyState() {
        return host.esState(this._id);
      }
      close() {
        host.esClose(this._id);
        // No event reaches a closed source: the page lets go of it, as a browser does.
        sources[this._id] = undefined;
      }
    }
    EventSource.CONNECTING = 0;
    EventSource.OPEN = 1;
    EventSource.CLOSED = 2;
    Object.assign(EventSource.prototype, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
    global.EventSource = EventSource;
  }

  // fetch, Response, Headers, AbortController.
  class Headers {
    constructor(init) {
      this._m = new Map();
      if (init) for (const [k, v] of Object.entries(init)) this._m.set(k.toLowerCase(), String(v));
    }
    get(name) {
      const v = this._m.get(String(name).toLowerCase());
      return v === undefined ? null : v;
    }
    has(name) {
      return this._m.has(String(name).toLowerCase());
    }
  }
  class Response {
    constructor(status, headers, body, url) {
      this.status = status;
      this.ok = status >= 200 && status < 300;
      this.headers = headers;
      this.url = url;
      this._body = body;
      this.bodyUsed = false;
    }
    text() {
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    json() {
      this.bodyUsed = true;
      return new Promise((resolve) => resolve(JSON.parse(this._body)));
    }
  }
  class AbortSignal extends EventTarget {
    constructor() {
      super();
      this.aborted = false;
      this.reason = undefined;
      this.onabort = null;
    }
  }
  class AbortController {
    constructor() {
      this.signal = new AbortSignal();
    }
    abort(reason) {
      const s = this.signal;
      if (s.aborted) return;
      s.aborted = true;
      s.reason = reason === undefined ? abortError() : reason;
      s.dispatchEvent(new Event('abort'));
    }
  }
  const abortError = () => {
    const e = new Error('The operation was aborted.');
    e.name = 'AbortError';
    return e;
  };
  const fetches = new Map();
  global.fetch = (input, init) => {
    init = init || {};
    const url = String(input);
    const method = String(init.method || 'GET').toUpperCase();
    const body = init.body === undefined || init.body === null ? null : String(init.body);
    const signal = init.signal;
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        reject(signal.reason);
        return;
      }
      const id = host.fetch(method, url, body);
      const entry = { resolve, reject, url };
      fetches.set(id, entry);
      if (signal) {
        signal.addEventListener('abort', () => {
          if (fetches.delete(id)) {
            host.fetchAbort(id);
            reject(signal.reason);
          }
        });
      }
    });
  };
  global.Headers = Headers;
  global.Response = Response;
  global.AbortController = AbortController;
  global.AbortSignal = AbortSignal;

  // URL and URLSearchParams (QuickJS has neither): the parts widgets use.
  // application/x-www-form-urlencoded, as URLSearchParams serializes it: the native
  // (`formEncodePairs`, all of a URLSearchParams' pairs in one call) writes the UTF-8 bytes percent-encoded, a space as `+`, only `*-._` and ASCII letters
  // and digits as they are (it ran for every parameter of every stream URL, and a
  // JavaScript version over encodeURIComponent cost a tenth of a streamed message's
  // instructions at first, 3 % still after it lost its regular expressions). A string
  // with a lone surrogate is not one the native takes (`undefined`): it is made well
  // formed first (U+FFFD), as a browser's USVString conversion does.
  const toWellFormed = String.prototype.toWellFormed;
  const wellFormed = (s) => toWellFormed.call(s);
  const decode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
  // The pairs are kept flat, `[name0, value0, name1, value1, …]`: an array per pair cost
  // an allocation each, and every stream URL builds four.
  class URLSearchParams {
    constructor(init) {
      const p = [];
      this._p = p;
      if (typeof init === 'string') {
        for (const part of init.replace(/^\?/, '').split('&')) {
          if (!part) continue;
          const i = part.indexOf('=');
          if (i < 0) p.push(decode(part), '');
          else p.push(decode(part.slice(0, i)), decode(part.slice(i + 1)));
        }
      } else if (Array.isArray(init)) {
        for (let i = 0; i < init.length; i++) p.push(String(init[i][0]), String(init[i][1]));
      } else if (init && typeof init === 'object') {
        // A record: its own enumerable string keys.
        const keys = Object.keys(init);
        for (let i = 0; i < keys.length; i++) p.push(keys[i], String(init[keys[i]]));
      }
    }
    append(k, v) {
      this._p.push(String(k), String(v));
    }
    // The first pair of that name takes the value, the others go; none: appended.
    set(k, v) {
      k = String(k);
      const p = this._p;
      const out = [];
      let found = false;
      for (let i = 0; i < p.length; i += 2) {
        if (p[i] !== k) out.push(p[i], p[i + 1]);
        else if (!found) {
          found = true;
          out.push(k, String(v));
        }
      }
      if (!found) out.push(k, String(v));
      this._p = out;
    }
    delete(k) {
      k = String(k);
      const p = this._p;
      const out = [];
      for (let i = 0; i < p.length; i += 2) if (p[i] !== k) out.push(p[i], p[i + 1]);
      this._p = out;
    }
    get(k) {
      k = String(k);
      const p = this._p;
      for (let i = 0; i < p.length; i += 2) if (p[i] === k) return p[i + 1];
      return null;
    }
    getAll(k) {
      k = String(k);
      const p = this._p;
      const out = [];
      for (let i = 0; i < p.length; i += 2) if (p[i] === k) out.push(p[i + 1]);
      return out;
    }
    has(k) {
      return this.get(k) !== null;
    }
    *entries() {
      const p = this._p;
      for (let i = 0; i < p.length; i += 2) yield [p[i], p[i + 1]];
    }
    *keys() {
      for (const [k] of this.entries()) yield k;
    }
    *values() {
      for (const [, v] of this.entries()) yield v;
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    get size() {
      return this._p.length / 2;
    }
    toString() {
      // A string with a lone surrogate, which the native refuses, is made well formed.
      const all = host.formEncodePairs(this._p);
      return all !== undefined ? all : host.formEncodePairs(this._p.map(wellFormed));
    }
  }
  class URL {
    constructor(url, base) {
      let s = String(url);
      if (!/^[a-z][a-z0-9+.-]*:/i.test(s)) {
        if (base === undefined) throw new TypeError(`Invalid URL: ${s}`);
        const b = new URL(base);
        s = s.startsWith('/') ? b.origin + s : b.origin + b.pathname.replace(/[^/]*$/, '') + s;
      }
      const m = /^([a-z][a-z0-9+.-]*:)(?:\/\/([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(s);
      if (!m) throw new TypeError(`Invalid URL: ${s}`);
      this.protocol = m[1].toLowerCase();
      this.host = m[2] || '';
      this.hostname = this.host.replace(/:\d+$/, '');
      this.port = (/:(\d+)$/.exec(this.host) || [, ''])[1];
      this.pathname = m[3] || '/';
      this.search = m[4] && m[4] !== '?' ? m[4] : '';
      this.hash = m[5] || '';
      this.origin = this.host ? `${this.protocol}//${this.host}` : 'null';
      this.searchParams = new URLSearchParams(this.search);
    }
    get href() {
      const q = this.searchParams.toString();
      return `${this.origin === 'null' ? this.protocol : this.origin}${this.pathname}${q ? '?' + q : ''}${this.hash}`;
    }
    toString() {
      return this.href;
    }
  }
  global.URL = URL;
  global.URLSearchParams = URLSearchParams;
  global.window = global;
  global.self = global;

  // What the host calls: one entry per kind of task, each a global of its own (one name
  // for the host to look up per task).
  const page = {
    timer(id) {
      const t = timers.get(id);
      if (!t) return;
      if (t.every === null) timers.delete(id);
      else host.rearm(id, t.every);
      try {
        t.fn(...t.args);
      } catch (e) {
        reportError(e);
      }
    },
    // A MessageEvent of type `message`, the frames of a stream: an entry of its own,
    // with only the arguments it needs.
    message(id, data, lastEventId) {
      const es = sources[id];
      if (es === undefined) return;
      const ev = { __proto__: es._message, data, lastEventId };
      // `fire` for type `message`, inline: this runs once per frame.
      try {
        if (typeof es.onmessage === 'function') es.onmessage(ev);
      } catch (e) {
        reportError(e);
      }
      if (es._listeners !== null) fireListeners(es, 'message', ev);
    },
    // Any other event: `open`, `error`, or a named event.
    es(id, isMessage, type, data, lastEventId) {
      const es = sources[id];
      if (es === undefined) return;
      // `onmessage` sees only type `message`: dispatchEvent looks up `on<type>`, and a
      // named event has no such attribute unless a script set one.
      es.dispatchEvent(isMessage ? messageEvent(type, data, lastEventId) : new Event(type));
      // An `error` that closed the source (a fatal one) is its last event.
      if (!isMessage && type === 'error' && host.esState(id) === 2) sources[id] = undefined;
    },
    fetched(id, status, headers, body) {
      const f = fetches.get(id);
      if (!f) return;
      fetches.delete(id);
      f.resolve(new Response(status, new Headers(headers), body, f.url));
    },
    fetchFailed(id, message) {
      const f = fetches.get(id);
      if (!f) return;
      fetches.delete(id);
      f.reject(new TypeError(message));
    },
  };
  global.__timer = page.timer;
  global.__es = page.es;
  global.__message = page.message;
  global.__fetched = page.fetched;
  global.__fetchFailed = page.fetchFailed;

  // How the host loads the widget and calls it. A throw or a rejected promise from the
  // widget's own entry points fails the page (`host.fatal`), with the JavaScript stack.
  const fail = (e) => host.fatal(e instanceof Error ? `${e.name}: ${e.message}` : String(e), (e && e.stack) || '');
  let widget = null;
  global.__report = host.report;
  global.__boot = (entry, makeHost, data) => {
    const hostObject = makeHost(JSON.parse(data));
    import(entry)
      .then((m) => {
        const create = m.createWidget || (m.default && m.default.createWidget) || m.default;
        if (typeof create !== 'function') throw new TypeError(`${entry} exports no createWidget(host)`);
        widget = create(hostObject);
      })
      .catch(fail);
  };
  global.__callWidget = (method, args) => {
    if (!widget || typeof widget[method] !== 'function') return;
    try {
      const r = widget[method](...JSON.parse(args));
      if (r && typeof r.then === 'function') r.then(undefined, fail);
    } catch (e) {
      fail(e);
    }
  };
})(__host, globalThis);
