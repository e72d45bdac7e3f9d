//! Step results: the checks a completion must pass, and the failure a timeout produces.

use crate::event_id::Uuid;
use serde::Deserialize;
use std::borrow::Cow;

/// A validated tasker-core `StepExecutionResult`, borrowing the JSON it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult<'a> {
    /// The step it completes.
    pub step_uuid: Uuid,
    /// Whether the handler succeeded.
    pub success: bool,
    /// The whole result JSON, as received (what a store persists).
    pub json: Cow<'a, [u8]>,
}

#[derive(Deserialize)]
struct Required<'a> {
    #[serde(borrow)]
    step_uuid: Option<Cow<'a, str>>,
    success: Option<bool>,
}

impl<'a> StepResult<'a> {
    /// Checks `json` is an object with a UUID `step_uuid` and a boolean `success`; the message says what is
    /// missing or wrong.
    pub fn parse(json: &'a [u8]) -> Result<Self, String> {
        let required: Required<'_> =
            serde_json::from_slice(json).map_err(|e| format!("result is not a JSON object: {e}"))?;
        let step_uuid = required
            .step_uuid
            .ok_or("result JSON is missing required field `step_uuid`")?;
        let step_uuid = Uuid::parse(step_uuid.as_bytes()).map_err(|e| format!("result `step_uuid`: {e}"))?;
        let success = required
            .success
            .ok_or("result JSON is missing required field `success`")?;
        Ok(Self {
            step_uuid,
            success,
            json: Cow::Borrowed(json),
        })
    }

    /// The failure recorded for an event that could not be handed to TS at all (larger than the limits).
    pub fn undeliverable(step_uuid: Uuid, why: &str) -> StepResult<'static> {
        Self::failure(step_uuid, why, "dispatch_error", false, serde_json::json!({}))
    }

    /// The failure of an event a stopping worker never handed to a handler: retryable `worker_shutdown`.
    pub fn released(step_uuid: Uuid) -> StepResult<'static> {
        let why = "the worker stopped before a handler read this event";
        Self::failure(step_uuid, why, "worker_shutdown", true, serde_json::json!({}))
    }

    /// The failure tasker-core records when a handler does not answer in time: `error_type: "ffi_timeout"`,
    /// retryable.
    pub fn timeout(step_uuid: Uuid, age_ms: u64, timeout_ms: u64) -> StepResult<'static> {
        let why = format!("step handler did not complete within {timeout_ms} ms (in flight {age_ms} ms)");
        Self::failure(
            step_uuid,
            &why,
            "ffi_timeout",
            true,
            serde_json::json!({ "execution_time_ms": age_ms }),
        )
    }

    /// A failed `StepExecutionResult` made by the worker itself; `metadata` holds extra metadata fields.
    fn failure(
        step_uuid: Uuid,
        message: &str,
        error_type: &str,
        retryable: bool,
        mut metadata: serde_json::Value,
    ) -> StepResult<'static> {
        metadata["retryable"] = retryable.into();
        metadata["custom"] = serde_json::json!({});
        metadata["context"] = serde_json::json!({});
        let json = serde_json::json!({
            "step_uuid": step_uuid.to_string(),
            "success": false,
            "result": null,
            "status": "error",
            "error": {
                "message": message,
                "error_type": error_type,
                "retryable": retryable,
                "status_code": null,
                "backtrace": null,
                "context": {}
            },
            "metadata": metadata
        });
        StepResult {
            step_uuid,
            success: false,
            json: Cow::Owned(serde_json::to_vec(&json).unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_are_checked_with_clear_messages() {
        let ok = br#"{"step_uuid":"0190f3a2-7c1e-7b3a-9d2e-000000000003","success":true,"result":{}}"#;
        let r = StepResult::parse(ok).unwrap();
        assert!(r.success);
        assert!(StepResult::parse(b"[1]").unwrap_err().contains("not a JSON object"));
        assert!(StepResult::parse(br#"{"success":true}"#)
            .unwrap_err()
            .contains("`step_uuid`"));
        assert!(
            StepResult::parse(br#"{"step_uuid":"0190f3a2-7c1e-7b3a-9d2e-000000000003"}"#)
                .unwrap_err()
                .contains("`success`")
        );
        assert!(StepResult::parse(br#"{"step_uuid":"nope","success":true}"#)
            .unwrap_err()
            .contains("UUID"));
        let fixture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/completion-failure.json"
        ));
        assert!(!StepResult::parse(&fixture.unwrap()).unwrap().success);
        let t = StepResult::timeout(Uuid(7), 31_000, 30_000);
        let v: serde_json::Value = serde_json::from_slice(&t.json).unwrap();
        assert_eq!(v["error"]["error_type"], "ffi_timeout");
        assert_eq!(v["error"]["retryable"], true);
        assert_eq!(StepResult::parse(&t.json).unwrap().step_uuid, Uuid(7));
    }
}
