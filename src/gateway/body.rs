//! What the routes read from request bodies and queries and write into responses: the limits
//! of a request (the OpenAPI document states the same numbers), values and their encoding,
//! write conditions, and the error bodies every route shares.

use std::time::Duration;

use serde_json::{Map, Value as Json};

use super::http::{Response, base64_decode, base64_encode};
use crate::client::{Expiry, SetOptions};

/// Most operations in one `POST /v1/batch`.
pub const MAX_BATCH_OPS: usize = 1000;
/// Most keys asked of one scan page.
pub const MAX_SCAN_COUNT: u64 = 1000;
/// The default scan page size.
pub const DEFAULT_SCAN_COUNT: u64 = 100;

/// The longest time to live accepted (about 31 years).
pub const MAX_TTL_MS: u64 = 1_000_000_000_000;

pub(super) fn bad_request(message: impl std::fmt::Display) -> Response {
    Response::error(400, "bad_request", message)
}

pub(super) fn method_not_allowed(allow: &str) -> Response {
    Response::error(405, "method_not_allowed", format!("allowed: {allow}")).header("Allow", allow)
}

/// A value for JSON: the text if it is UTF-8, else base64.
pub(super) fn encode_value(data: &[u8], object: &mut Map<String, Json>) {
    match std::str::from_utf8(data) {
        Ok(text) => {
            object.insert("value".into(), Json::from(text));
            object.insert("encoding".into(), Json::from("utf8"));
        }
        Err(_) => {
            object.insert("value".into(), Json::from(base64_encode(data)));
            object.insert("encoding".into(), Json::from("base64"));
        }
    }
}

pub(super) fn key_text(key: &[u8]) -> Json {
    Json::from(String::from_utf8_lossy(key).into_owned())
}

/// A value and its options from a JSON object (`value`, `encoding`, `ttl_ms`, and the batch
/// fields named in `extra`); unknown fields are refused.
pub(super) struct ValueFields {
    pub(super) data: Vec<u8>,
    pub(super) ttl_ms: Option<u64>,
}

pub(super) fn value_fields(
    object: &Map<String, Json>,
    extra: &[&str],
) -> Result<ValueFields, String> {
    for name in object.keys() {
        if !["value", "encoding", "ttl_ms"].contains(&name.as_str())
            && !extra.contains(&name.as_str())
        {
            return Err(format!("unknown field {name:?}"));
        }
    }
    let text = match object.get("value") {
        Some(Json::String(text)) => text,
        Some(_) => return Err("\"value\" must be a string".into()),
        None => return Err("\"value\" is required".into()),
    };
    let data = match object.get("encoding") {
        None => text.as_bytes().to_vec(),
        Some(Json::String(encoding)) if encoding == "utf8" => text.as_bytes().to_vec(),
        Some(Json::String(encoding)) if encoding == "base64" => {
            base64_decode(text).ok_or("\"value\" is not valid base64")?
        }
        Some(_) => return Err("\"encoding\" must be \"utf8\" or \"base64\"".into()),
    };
    let ttl_ms = match object.get("ttl_ms") {
        None => None,
        Some(number) => match json_integer(number) {
            Some(ms) if (1..=MAX_TTL_MS).contains(&ms) => Some(ms),
            _ => {
                return Err(format!(
                    "\"ttl_ms\" must be an integer from 1 to {MAX_TTL_MS}"
                ));
            }
        },
    };
    Ok(ValueFields { data, ttl_ms })
}

/// A non-negative integer; JSON Schema counts `5.0` as an integer, so it is taken too.
pub(super) fn json_integer(value: &Json) -> Option<u64> {
    if let Some(number) = value.as_u64() {
        return Some(number);
    }
    let float = value.as_f64()?;
    // Below 2^64, an integral float converts to u64 exactly.
    (float >= 0.0 && float.fract() == 0.0 && float < 18_446_744_073_709_551_616.0)
        .then_some(float as u64)
}

pub(super) fn parse_json_object(body: &[u8]) -> Result<Map<String, Json>, Response> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err(bad_request("the body must be a JSON object")),
        Err(error) => Err(bad_request(format!("the body is not JSON: {error}"))),
    }
}

/// The condition of a write, from `?if=` or `If-Match` (or a batch op's `if` / `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Precondition {
    None,
    Absent,
    Present,
    Version(u64),
}

pub(super) fn parse_if_match(text: &str) -> Option<Precondition> {
    if text == "*" {
        return Some(Precondition::Present);
    }
    let digits = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Precondition::Version)
}

pub(super) fn parse_if(value: &[u8]) -> Option<Precondition> {
    match value {
        b"absent" => Some(Precondition::Absent),
        b"present" => Some(Precondition::Present),
        _ => None,
    }
}

pub(super) fn set_options(condition: Precondition, ttl_ms: Option<u64>) -> SetOptions<'static> {
    let mut options = SetOptions::new();
    options = match condition {
        Precondition::None => options,
        Precondition::Absent => options.if_absent(),
        Precondition::Present => options.if_present(),
        Precondition::Version(version) => options.if_version(version),
    };
    if let Some(ms) = ttl_ms {
        options.expiry = Expiry::In(Duration::from_millis(ms));
    }
    options
}

/// The status and code when a condition stopped a write.
pub(super) fn condition_failed(condition: Precondition) -> (u16, &'static str, &'static str) {
    match condition {
        Precondition::Absent => (409, "exists", "the key exists"),
        Precondition::Present => (404, "not_found", "no such key"),
        _ => (
            412,
            "version_mismatch",
            "the key's version is not the one given (or the key is gone)",
        ),
    }
}
