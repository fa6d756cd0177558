//! The four Bedrock Runtime operations: how a path names them, which ones stream,
//! and which exceptions each stream's union can carry (bedrock-wire.md §1, §6.2).

use serde::{Deserialize, Serialize};

/// A Bedrock Runtime operation the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// `POST /model/{modelId}/invoke`: model-native JSON in and out.
    InvokeModel,
    /// `POST /model/{modelId}/invoke-with-response-stream`: native events in `chunk` frames.
    InvokeModelWithResponseStream,
    /// `POST /model/{modelId}/converse`: the unified chat API, whole answer.
    Converse,
    /// `POST /model/{modelId}/converse-stream`: the unified chat API, as events.
    ConverseStream,
}

impl Operation {
    /// The operation named by the last path segment, `None` for anything else.
    pub fn from_action(action: &str) -> Option<Operation> {
        Some(match action {
            "invoke" => Operation::InvokeModel,
            "invoke-with-response-stream" => Operation::InvokeModelWithResponseStream,
            "converse" => Operation::Converse,
            "converse-stream" => Operation::ConverseStream,
            _ => return None,
        })
    }

    /// The operation's name in the service model (and in the journal).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::InvokeModel => "InvokeModel",
            Operation::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
            Operation::Converse => "Converse",
            Operation::ConverseStream => "ConverseStream",
        }
    }

    /// Whether the answer goes out as event-stream frames.
    pub fn is_streaming(self) -> bool {
        matches!(
            self,
            Operation::InvokeModelWithResponseStream | Operation::ConverseStream
        )
    }

    /// Whether the request body is the Converse shape (else model-native JSON).
    pub fn is_converse(self) -> bool {
        matches!(self, Operation::Converse | Operation::ConverseStream)
    }

    /// Whether `exception_type` (lowerCamel) is a member of this operation's stream
    /// union. One that is not never goes on the wire (every SDK would report an
    /// unknown error with no message): see `Effect::for_operation`.
    pub fn stream_has_exception(self, exception_type: &str) -> bool {
        let common = matches!(
            exception_type,
            "internalServerException"
                | "modelStreamErrorException"
                | "validationException"
                | "throttlingException"
                | "serviceUnavailableException"
        );
        match self {
            Operation::InvokeModelWithResponseStream => {
                common || exception_type == "modelTimeoutException"
            }
            Operation::ConverseStream => common,
            Operation::InvokeModel | Operation::Converse => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_operations() {
        for op in [
            Operation::InvokeModel,
            Operation::InvokeModelWithResponseStream,
            Operation::Converse,
            Operation::ConverseStream,
        ] {
            let action = match op {
                Operation::InvokeModel => "invoke",
                Operation::InvokeModelWithResponseStream => "invoke-with-response-stream",
                Operation::Converse => "converse",
                Operation::ConverseStream => "converse-stream",
            };
            assert_eq!(Operation::from_action(action), Some(op));
        }
        assert_eq!(Operation::from_action("Converse"), None);
        assert_eq!(Operation::from_action(""), None);
    }

    #[test]
    fn model_timeout_is_only_in_the_invoke_stream_union() {
        assert!(
            Operation::InvokeModelWithResponseStream.stream_has_exception("modelTimeoutException")
        );
        assert!(!Operation::ConverseStream.stream_has_exception("modelTimeoutException"));
        assert!(Operation::ConverseStream.stream_has_exception("throttlingException"));
        assert!(!Operation::ConverseStream.stream_has_exception("ThrottlingException"));
    }
}
