// A widget that takes every message and never reports an outcome: the liveness
// invariant (one outcome per message) must catch it, in virtual time.
export function createWidget(host) {
  return {
    config() {},
    send(id) {
      host.render(id, '', true);
      setTimeout(() => host.render(id, '', false), 1000);
    },
    unmount() {},
  };
}
