// src/hooks/useStreaming.js: the document's hook with the usual first patch of onerror
// (the only change; `onFallback` is how the provider hears of a fatal error).
import { useState, useEffect, useRef } from 'react';

export function useStreaming({ onFallback } = {}) {
  const [isStreaming, setIsStreaming] = useState(false);
  const [streamedContent, setStreamedContent] = useState('');
  const eventSourceRef = useRef(null);
  
  const startStreaming = (url, params) => {
    const queryString = new URLSearchParams(params).toString();
    const streamUrl = `${url}?${queryString}`;
    
    eventSourceRef.current = new EventSource(streamUrl);
    setIsStreaming(true);
    
    eventSourceRef.current.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (data.content) {
        setStreamedContent(prev => prev + data.content);
      }
    };
    
    eventSourceRef.current.onerror = (error) => {
      // Transient (CONNECTING): let the browser reconnect. Fatal (CLOSED): fall back.
      if (error.target.readyState === EventSource.CLOSED) {
        console.error('Streaming error:', error);
        stopStreaming();
        onFallback?.(params);
      }
    };
  };
  
  const stopStreaming = () => {
    if (eventSourceRef.current) {
      eventSourceRef.current.close();
      eventSourceRef.current = null;
    }
    setIsStreaming(false);
  };
  
  return {
    isStreaming,
    streamedContent,
    startStreaming,
    stopStreaming
  };
}
