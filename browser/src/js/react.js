// A small React hooks host: what `import … from 'react'` resolves to in the simulator,
// so hook code (the design document's `useStreaming`) runs as written. Function
// components only; no DOM. State updates are batched and re-render in a microtask, as
// React 18 batches them; effects run after the render, cleanups before the next run and
// on unmount.

let current = null;

const depsChanged = (a, b) =>
  a === undefined || b === undefined || a.length !== b.length || a.some((v, i) => !Object.is(v, b[i]));

function slot() {
  if (current === null) throw new Error('Invalid hook call: hooks can only be called inside a component');
  const i = current.index++;
  return [current.hooks, i];
}

export function useState(initial) {
  const [hooks, i] = slot();
  if (!(i in hooks)) {
    const root = current;
    const h = { value: typeof initial === 'function' ? initial() : initial };
    h.set = (update) => {
      const next = typeof update === 'function' ? update(h.value) : update;
      if (!Object.is(next, h.value)) {
        h.value = next;
        root.schedule();
      }
    };
    hooks[i] = h;
  }
  return [hooks[i].value, hooks[i].set];
}

export function useReducer(reducer, initial) {
  const [state, setState] = useState(initial);
  return [state, (action) => setState((s) => reducer(s, action))];
}

export function useRef(initial) {
  const [hooks, i] = slot();
  if (!(i in hooks)) hooks[i] = { current: initial };
  return hooks[i];
}

export function useMemo(fn, deps) {
  const [hooks, i] = slot();
  if (!(i in hooks) || depsChanged(hooks[i].deps, deps)) hooks[i] = { value: fn(), deps };
  return hooks[i].value;
}

export function useCallback(fn, deps) {
  return useMemo(() => fn, deps);
}

export function useEffect(fn, deps) {
  const [hooks, i] = slot();
  const old = hooks[i];
  if (!old || depsChanged(old.deps, deps)) {
    const h = { deps, cleanup: old && old.cleanup };
    hooks[i] = h;
    current.effects.push(() => {
      if (typeof h.cleanup === 'function') h.cleanup();
      const c = fn();
      h.cleanup = typeof c === 'function' ? c : undefined;
    });
  }
}

export const useLayoutEffect = useEffect;

export function createElement(type, props) {
  return { type, props: props || {} };
}

/// A root that renders one function component (a `createElement` result or the
/// component itself). `render` returns the component's value, which a widget's adapter
/// reads to report what the user sees.
export function createRoot(onCommit) {
  const root = {
    hooks: [],
    effects: [],
    index: 0,
    element: null,
    scheduled: false,
    mounted: false,
    value: undefined,
    schedule() {
      if (root.scheduled || !root.mounted) return;
      root.scheduled = true;
      queueMicrotask(() => {
        root.scheduled = false;
        if (root.mounted) root.flush();
      });
    },
    flush() {
      const prev = current;
      current = root;
      root.index = 0;
      root.effects = [];
      try {
        const el = root.element;
        root.value = el.type(el.props);
      } finally {
        current = prev;
      }
      const effects = root.effects;
      root.effects = [];
      for (const e of effects) e();
      if (onCommit) onCommit(root.value);
      return root.value;
    },
    render(element) {
      root.element = typeof element === 'function' ? createElement(element, {}) : element;
      root.mounted = true;
      return root.flush();
    },
    unmount() {
      root.mounted = false;
      for (const h of root.hooks) {
        if (h && typeof h.cleanup === 'function') h.cleanup();
      }
    },
  };
  return root;
}

export default { useState, useReducer, useRef, useMemo, useCallback, useEffect, useLayoutEffect, createElement, createRoot };
