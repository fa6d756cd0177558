// In ChatProvider.jsx
const sendMessage = async (message) => {
  const config = getConfig();
  const supportsStreaming = config?.features?.streaming_enabled && 
                           config?.endpoints?.streaming &&
                           typeof EventSource !== 'undefined';
  
  if (supportsStreaming && shouldUseStreaming()) {
    // Use streaming endpoint
    const { startStreaming } = streaming;
    startStreaming(config.endpoints.streaming, {
      tenant_hash: getTenantHash(),
      user_input: message.content,
      session_id: sessionId,
      message_id: message.id
    });
  } else {
    // Use regular chat endpoint
    await sendRegularChatRequest(message);
  }
};

const shouldUseStreaming = () => {
  const config = getConfig();
  const percentage = config?.features?.streaming_percentage || 0;
  return Math.random() * 100 < percentage;
};
