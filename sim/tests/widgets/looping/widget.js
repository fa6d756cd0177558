// A widget that loops forever on the first stream event: the instruction budget must
// stop it with a clear error, never a hang.
export function createWidget(host) {
  let url = null;
  return {
    config(cfg) {
      url = (cfg && cfg.endpoints.streaming) || 'http://gateway.invalid/';
    },
    send(id, text) {
      const params = new URLSearchParams({
        tenant_hash: host.tenantHash,
        user_input: text,
        session_id: host.sessionId,
        message_id: id,
      });
      const es = new EventSource(`${url}?${params}`);
      es.onopen = () => {
        let n = 0;
        while (true) {
          n += 1;
        }
      };
    },
    unmount() {},
  };
}
