//! AWS event-stream frames (`application/vnd.amazon.eventstream`), written with
//! smithy-rs's own codec so the prelude, header block and both CRCs are exactly what
//! the SDKs' decoders check.
//!
//! Only three kinds of message exist on Bedrock's streams (bedrock-wire.md §2): an
//! event, a modeled exception, and (never sent by us) an unmodeled error. Each carries
//! `:message-type` (the JS and Rust SDKs refuse a frame without it) and `:content-type`.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};

/// The content type of every event and exception payload we send.
const JSON: &str = "application/json";

/// Why a frame could not be written: only a header or payload beyond the format's
/// limits (64 KiB header values, 4 GiB messages), which no scripted answer reaches.
#[derive(Debug, thiserror::Error)]
#[error("cannot frame event-stream message: {0}")]
pub struct FrameError(#[from] aws_smithy_eventstream::error::Error);

/// An event frame: `:event-type` names the union member, the payload is that
/// member's structure as JSON, not wrapped in `{member: …}`.
pub fn event(event_type: &str, payload: &serde_json::Value) -> Result<Bytes, FrameError> {
    frame(
        vec![
            string_header(":message-type", "event"),
            string_header(":event-type", event_type),
            string_header(":content-type", JSON),
        ],
        payload,
    )
}

/// A modeled exception frame: `:exception-type` is the lowerCamel union member
/// (`throttlingException`), the payload `{"message": …}` plus the shape's extras.
pub fn exception(exception_type: &str, payload: &serde_json::Value) -> Result<Bytes, FrameError> {
    frame(
        vec![
            string_header(":message-type", "exception"),
            string_header(":exception-type", exception_type),
            string_header(":content-type", JSON),
        ],
        payload,
    )
}

/// The same frame with one payload byte flipped, so its message CRC no longer
/// matches: what a corrupted transfer looks like to the SDKs' checksum check.
pub fn corrupt(frame: &Bytes) -> Bytes {
    let mut bytes = BytesMut::from(&frame[..]);
    // The last byte before the 4-byte message CRC: part of the payload (or of the
    // headers when the payload is empty), never of the prelude, whose CRC would then
    // fail first and report a different error.
    if let Some(i) = bytes.len().checked_sub(5) {
        bytes[i] ^= 0x01;
    }
    bytes.freeze()
}

/// An event frame whose header block was encoded once (see [`EventHeaders`]) and whose
/// payload is JSON text already: the frame of every streamed token, written without a
/// header list, a JSON tree or a second buffer per token. Byte for byte what
/// [`event`] writes (a property test checks it against the codec).
pub fn event_raw(headers: &EventHeaders, payload: &[u8]) -> Bytes {
    // The prelude (total length, header length, its CRC), the headers, the payload,
    // and the CRC of all of it: the format's whole definition.
    let total = 12 + headers.0.len() + payload.len() + 4;
    let mut out = BytesMut::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.0.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers.0);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out[..]);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out.freeze()
}

/// The encoded header block of an event of one type (`:message-type`, `:event-type`,
/// `:content-type`, as [`event`] writes them), made once by the codec itself.
#[derive(Debug, Clone)]
pub struct EventHeaders(Bytes);

impl EventHeaders {
    /// The header block of `event_type` events.
    pub fn new(event_type: &str) -> Result<EventHeaders, FrameError> {
        let message = Message::new_from_parts(
            vec![
                string_header(":message-type", "event"),
                string_header(":event-type", event_type),
                string_header(":content-type", JSON),
            ],
            Bytes::new(),
        );
        let mut buffer = BytesMut::new();
        write_message_to(&message, &mut buffer)?;
        let len = u32::from_be_bytes([buffer[4], buffer[5], buffer[6], buffer[7]]) as usize;
        Ok(EventHeaders(buffer.freeze().slice(12..12 + len)))
    }
}

fn string_header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

fn frame(headers: Vec<Header>, payload: &serde_json::Value) -> Result<Bytes, FrameError> {
    let payload = Bytes::from(payload.to_string());
    let message = Message::new_from_parts(headers, payload);
    let mut buffer = BytesMut::with_capacity(message.payload().len() + 128);
    write_message_to(&message, &mut buffer)?;
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;
    use proptest::prelude::*;
    use serde_json::json;

    fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str())
    }

    /// The layout of bedrock-wire.md §2: lengths, prelude CRC, message CRC over
    /// everything before it (prelude CRC included).
    #[test]
    fn layout_matches_the_wire_notes() {
        let bytes = event("messageStart", &json!({"role": "assistant"})).unwrap();
        let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, bytes.len());
        let prelude_crc = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(prelude_crc, crc32fast::hash(&bytes[0..8]));
        let message_crc = u32::from_be_bytes(bytes[total - 4..].try_into().unwrap());
        assert_eq!(message_crc, crc32fast::hash(&bytes[..total - 4]));
        let payload = &bytes[12 + headers_len..total - 4];
        assert_eq!(payload, br#"{"role":"assistant"}"#);
    }

    #[test]
    fn exceptions_carry_their_type_and_message_type() {
        let bytes = exception("throttlingException", &json!({"message": "slow down"})).unwrap();
        let message = read_message_from(&bytes[..]).unwrap();
        assert_eq!(header(&message, ":message-type"), Some("exception"));
        assert_eq!(
            header(&message, ":exception-type"),
            Some("throttlingException")
        );
        assert_eq!(header(&message, ":content-type"), Some(JSON));
    }

    #[test]
    fn a_corrupt_frame_fails_the_message_crc_not_the_prelude() {
        let bytes = event("chunk", &json!({"bytes": "e30="})).unwrap();
        let err = read_message_from(&corrupt(&bytes)[..]).unwrap_err();
        assert!(
            format!("{err:?}").contains("MessageChecksumMismatch"),
            "{err:?}"
        );
    }

    proptest! {
        // Cases: proptest's usual 256 (cheap), or PICASSO_PROPTEST_CASES.
        #![proptest_config(ProptestConfig::with_cases(picasso_core::testing::proptest_cases(256)))]

        /// Any frame we write decodes, with smithy's decoder, to the same headers and payload.
        #[test]
        fn frames_round_trip(
            event_type in "[a-zA-Z]{1,40}",
            text in any::<String>(),
            index in any::<u32>(),
            is_exception in any::<bool>(),
        ) {
            let payload = json!({"delta": {"text": text}, "contentBlockIndex": index});
            let bytes = if is_exception {
                exception(&event_type, &payload).unwrap()
            } else {
                event(&event_type, &payload).unwrap()
            };
            let message = read_message_from(&bytes[..]).unwrap();
            let kind = if is_exception { "exception" } else { "event" };
            let type_header = if is_exception { ":exception-type" } else { ":event-type" };
            prop_assert_eq!(header(&message, ":message-type"), Some(kind));
            prop_assert_eq!(header(&message, type_header), Some(event_type.as_str()));
            prop_assert_eq!(message.headers().len(), 3);
            let decoded: serde_json::Value = serde_json::from_slice(message.payload()).unwrap();
            prop_assert_eq!(decoded, payload);
        }

        /// A frame from a header block made once and a payload already in JSON is the
        /// codec's frame, byte for byte.
        #[test]
        fn raw_frames_are_the_codecs_frames(
            event_type in "[a-zA-Z]{1,40}",
            text in any::<String>(),
        ) {
            let payload = json!({"delta": {"text": text}, "contentBlockIndex": 0});
            let headers = EventHeaders::new(&event_type).unwrap();
            let raw = event_raw(&headers, payload.to_string().as_bytes());
            prop_assert_eq!(raw, event(&event_type, &payload).unwrap());
        }

        /// Split anywhere, frames still decode with the streaming decoder the SDKs use.
        #[test]
        fn frames_decode_across_any_split(text in ".{0,200}", split in 0usize..400) {
            let bytes = event("contentBlockDelta", &json!({"delta": {"text": text}})).unwrap();
            let split = split.min(bytes.len());
            let mut decoder = aws_smithy_eventstream::frame::MessageFrameDecoder::new();
            let mut buffer = BytesMut::from(&bytes[..split]);
            let first = decoder.decode_frame(&mut buffer).unwrap();
            let complete = matches!(first, aws_smithy_eventstream::frame::DecodedFrame::Complete(_));
            prop_assert_eq!(complete, split == bytes.len());
            if !complete {
                buffer.extend_from_slice(&bytes[split..]);
                let second = decoder.decode_frame(&mut buffer).unwrap();
                let is_complete = matches!(second, aws_smithy_eventstream::frame::DecodedFrame::Complete(_));
                prop_assert!(is_complete);
            }
        }
    }
}
