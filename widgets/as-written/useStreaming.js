// src/hooks/useStreaming.js
import { useState, useEffect, useRef } from 'react';

export function useStreaming() {
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
      console.error('Streaming error:', error);
      stopStreaming();
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
