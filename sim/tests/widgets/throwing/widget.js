// A widget whose send() throws: the job must fail with the error, its file:line:column
// and the message being sent.
export function createWidget(host) {
  return {
    config() {},
    send(id, text) {
      const parts = undefined;
      return parts.join(text);
    },
    unmount() {},
  };
}
