//! The REST resources: routing, JSON in and out, and the Cap'n Proto calls behind each route,
//! run on a worker thread that owns one [`Store`] connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

use super::http::{
    Method, Request, Response, base64_decode, base64_encode, percent_decode, query_pairs,
};
use super::metrics::{Metrics, Route, render_info};
use crate::client::{
    Client, Error, ErrorCode, Expiry, ReplyRef, Request as StoreRequest, SetOptions, SetOutcome,
};

/// Most operations in one `POST /v1/batch`.
pub const MAX_BATCH_OPS: usize = 1000;
/// Most keys asked of one scan page.
pub const MAX_SCAN_COUNT: u64 = 1000;
/// The default scan page size.
pub const DEFAULT_SCAN_COUNT: u64 = 100;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One worker's connection to the store, dialled lazily and again after a failure (with
/// exponential backoff, so a store that is down costs one connect attempt per backoff period,
/// not one per request).
pub struct Store {
    addr: String,
    timeout: Duration,
    client: Option<Client>,
    retry_at: Instant,
    backoff: Duration,
    metrics: Arc<Metrics>,
}

impl Store {
    pub fn new(addr: String, timeout: Duration, metrics: Arc<Metrics>) -> Store {
        Store {
            addr,
            timeout,
            client: None,
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            metrics,
        }
    }

    /// Dials now (at start, so the first request does not pay for it); failure is not fatal.
    pub fn warm_up(&mut self) {
        let _ = self.client();
    }

    fn client(&mut self) -> Result<&mut Client, Response> {
        let connected = self.client.as_ref().is_some_and(Client::is_connected);
        if !connected {
            let now = Instant::now();
            if now < self.retry_at {
                return Err(unavailable(
                    &self.addr,
                    "recently unreachable; retrying soon",
                ));
            }
            let result = match self.client.as_mut() {
                Some(client) => client.reconnect(),
                None => Client::connect(self.addr.as_str(), self.timeout).map(|client| {
                    self.client = Some(client);
                }),
            };
            match result {
                Ok(()) => {
                    self.backoff = FIRST_BACKOFF;
                    self.metrics
                        .store_connects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(error) => {
                    self.retry_at = now + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.count_error();
                    return Err(unavailable(&self.addr, error));
                }
            }
        }
        // Connected or just dialled: the client exists.
        self.client
            .as_mut()
            .ok_or_else(|| unavailable(&self.addr, "no connection"))
    }

    fn count_error(&self) {
        self.metrics
            .store_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs `op` on the connection. With `retry`, an operation that failed because the
    /// connection was stale (the store restarted since the last request) is tried once more on
    /// a fresh connection; only idempotent operations pass `retry`.
    fn run<T>(
        &mut self,
        retry: bool,
        mut op: impl FnMut(&mut Client) -> Result<T, Error>,
    ) -> Result<T, Response> {
        let first = op(self.client()?);
        match first {
            Ok(value) => Ok(value),
            Err(error) if retry && matches!(error, Error::Disconnected | Error::Io(_)) => {
                self.retry_at = Instant::now();
                let second = op(self.client()?);
                second.map_err(|error| self.store_error(error))
            }
            Err(error) => Err(self.store_error(error)),
        }
    }

    fn store_error(&self, error: Error) -> Response {
        if error.code().is_none() {
            self.count_error();
        }
        error_response(&error)
    }
}

fn unavailable(addr: &str, reason: impl std::fmt::Display) -> Response {
    Response::error(
        503,
        "store_unavailable",
        format!("the store at {addr} is unreachable: {reason}"),
    )
    .header("Retry-After", "1")
}

/// The HTTP status and code for a store error.
fn error_status(error: &Error) -> (u16, &'static str) {
    match error.code() {
        Some(ErrorCode::TooLarge) => (413, "too_large"),
        Some(ErrorCode::InvalidArgument | ErrorCode::NotInteger | ErrorCode::Overflow) => {
            (400, "invalid_argument")
        }
        Some(ErrorCode::Busy | ErrorCode::ShuttingDown) => (503, "store_busy"),
        Some(_) => (502, "store_error"),
        None => (502, "store_error"),
    }
}

fn error_response(error: &Error) -> Response {
    let (status, code) = error_status(error);
    let response = Response::error(status, code, format!("store: {error}"));
    if status == 503 {
        response.header("Retry-After", "1")
    } else {
        response
    }
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    Response::error(400, "bad_request", message)
}

fn method_not_allowed(allow: &str) -> Response {
    Response::error(405, "method_not_allowed", format!("allowed: {allow}")).header("Allow", allow)
}

/// A value for JSON: the text if it is UTF-8, else base64.
fn encode_value(data: &[u8], object: &mut Map<String, Json>) {
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

fn key_text(key: &[u8]) -> Json {
    Json::from(String::from_utf8_lossy(key).into_owned())
}

/// Answers one request; the route is for the metrics.
pub fn handle(store: &mut Store, request: &Request, metrics: &Metrics) -> (Route, Response) {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let Some(query) = query_pairs(query) else {
        return (
            Route::Other,
            bad_request("the query string does not decode"),
        );
    };
    let method = request.method;
    if let Some(rest) = path.strip_prefix("/v1/keys/") {
        if rest.is_empty() {
            return (
                Route::Other,
                Response::error(404, "not_found", "no such route"),
            );
        }
        let Some(key) = percent_decode(rest, false) else {
            return (
                Route::Other,
                bad_request("the key's percent-encoding is invalid"),
            );
        };
        return match method {
            Method::Get => (Route::GetKey, get_key(store, &key)),
            Method::Put => (Route::PutKey, put_key(store, &key, &query, request)),
            Method::Delete => (Route::DeleteKey, delete_key(store, &key)),
            _ => (Route::Other, method_not_allowed("GET, PUT, DELETE")),
        };
    }
    let (route, allow) = match path {
        "/v1/keys" => (Route::Scan, "GET"),
        "/v1/batch" => (Route::Batch, "POST"),
        "/v1/health" => (Route::Health, "GET"),
        "/v1/info" => (Route::Info, "GET"),
        "/metrics" => (Route::Metrics, "GET"),
        "/openapi.json" => (Route::OpenApi, "GET"),
        _ => {
            return (
                Route::Other,
                Response::error(404, "not_found", "no such route"),
            );
        }
    };
    let wanted = if route == Route::Batch {
        Method::Post
    } else {
        Method::Get
    };
    if method != wanted {
        return (Route::Other, method_not_allowed(allow));
    }
    let response = match route {
        Route::Scan => scan(store, &query),
        Route::Batch => batch(store, &request.body),
        Route::Health => health(store),
        Route::Info => info(store),
        Route::Metrics => metrics_text(store, metrics),
        _ => openapi(),
    };
    (route, response)
}

fn get_key(store: &mut Store, key: &[u8]) -> Response {
    // One round trip: the value with its version, and its time to live.
    let result = store.run(true, |client| {
        let mut found: Option<(Vec<u8>, u64)> = None;
        let mut ttl: i64 = -2;
        let mut failure: Option<Error> = None;
        let mut pipeline = client.pipeline();
        pipeline.push(&StoreRequest::GetV(key));
        pipeline.push(&StoreRequest::Ttl(key));
        pipeline.execute_with(|index, reply| match (index, reply) {
            (0, ReplyRef::Value { data, version }) => found = Some((data.to_vec(), version)),
            (0, ReplyRef::NotFound) => {}
            (1, ReplyRef::Integer(ms)) => ttl = ms,
            (_, other) => {
                failure.get_or_insert(other.unexpected(if index == 0 { "getV" } else { "ttl" }));
            }
        })?;
        match failure {
            Some(error) => Err(error),
            None => Ok((found, ttl)),
        }
    });
    match result {
        Err(response) => response,
        Ok((None, _)) => Response::error(404, "not_found", "no such key"),
        Ok((Some((data, version)), ttl)) => {
            let mut object = Map::new();
            object.insert("key".into(), key_text(key));
            encode_value(&data, &mut object);
            object.insert("version".into(), Json::from(version));
            object.insert(
                "ttl_ms".into(),
                if ttl >= 0 {
                    Json::from(ttl)
                } else {
                    Json::Null
                },
            );
            Response::json(200, &Json::Object(object)).header("ETag", &format!("\"{version}\""))
        }
    }
}

/// A value and its options from a JSON object (`value`, `encoding`, `ttl_ms`, and the batch
/// fields named in `extra`); unknown fields are refused.
struct ValueFields {
    data: Vec<u8>,
    ttl_ms: Option<u64>,
}

fn value_fields(object: &Map<String, Json>, extra: &[&str]) -> Result<ValueFields, String> {
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
fn json_integer(value: &Json) -> Option<u64> {
    if let Some(number) = value.as_u64() {
        return Some(number);
    }
    let float = value.as_f64()?;
    // Below 2^64, an integral float converts to u64 exactly.
    (float >= 0.0 && float.fract() == 0.0 && float < 18_446_744_073_709_551_616.0)
        .then_some(float as u64)
}

/// The longest time to live accepted (about 31 years).
pub const MAX_TTL_MS: u64 = 1_000_000_000_000;

fn parse_json_object(body: &[u8]) -> Result<Map<String, Json>, Response> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err(bad_request("the body must be a JSON object")),
        Err(error) => Err(bad_request(format!("the body is not JSON: {error}"))),
    }
}

/// The condition of a write, from `?if=` or `If-Match` (or a batch op's `if` / `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    None,
    Absent,
    Present,
    Version(u64),
}

fn parse_if_match(text: &str) -> Option<Precondition> {
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

fn parse_if(value: &[u8]) -> Option<Precondition> {
    match value {
        b"absent" => Some(Precondition::Absent),
        b"present" => Some(Precondition::Present),
        _ => None,
    }
}

fn set_options(condition: Precondition, ttl_ms: Option<u64>) -> SetOptions<'static> {
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
fn condition_failed(condition: Precondition) -> (u16, &'static str, &'static str) {
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

fn put_key(
    store: &mut Store,
    key: &[u8],
    query: &[(String, Vec<u8>)],
    request: &Request,
) -> Response {
    // Everything is checked for form first (400), then for meaning.
    let mut condition = Precondition::None;
    for (name, value) in query {
        if name == "if" {
            match parse_if(value) {
                Some(parsed) => condition = parsed,
                None => return bad_request("?if= must be \"absent\" or \"present\""),
            }
        }
    }
    let if_match = match request.if_match.as_deref().map(parse_if_match) {
        None => None,
        Some(Some(parsed)) => Some(parsed),
        Some(None) => return bad_request("If-Match must be a version number (or \"*\")"),
    };
    let object = match parse_json_object(&request.body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let fields = match value_fields(&object, &[]) {
        Ok(fields) => fields,
        Err(message) => return bad_request(message),
    };
    if let Some(parsed) = if_match {
        // If-Match needs the key to exist: with ?if=present it says the same (or more); with
        // ?if=absent the two can never both hold.
        if condition == Precondition::Absent {
            return Response::error(
                412,
                "version_mismatch",
                "If-Match needs the key to exist, ?if=absent needs it not to",
            );
        }
        condition = parsed;
    }
    let options = set_options(condition, fields.ttl_ms);
    let retry = condition == Precondition::None;
    match store.run(retry, |client| client.set_with(key, &fields.data, options)) {
        Err(response) => response,
        Ok(SetOutcome::Written(version)) => {
            let status = if condition == Precondition::Absent {
                201
            } else {
                200
            };
            Response::json(status, &json!({ "key": key_text(key), "version": version }))
                .header("ETag", &format!("\"{version}\""))
        }
        Ok(SetOutcome::ConditionFailed) => {
            let (status, code, message) = condition_failed(condition);
            Response::error(status, code, message)
        }
    }
}

fn delete_key(store: &mut Store, key: &[u8]) -> Response {
    match store.run(false, |client| client.delete(key)) {
        Err(response) => response,
        Ok(true) => Response::empty(204),
        Ok(false) => Response::error(404, "not_found", "no such key"),
    }
}

fn scan(store: &mut Store, query: &[(String, Vec<u8>)]) -> Response {
    let mut cursor = 0u64;
    let mut count = DEFAULT_SCAN_COUNT;
    let mut pattern = Vec::new();
    for (name, value) in query {
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .filter(|text| {
                    !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit())
                })
                .and_then(|text| text.parse::<u64>().ok())
        };
        match name.as_str() {
            "cursor" => match number() {
                Some(parsed) => cursor = parsed,
                None => {
                    return bad_request("cursor must be a cursor from a previous page (digits)");
                }
            },
            "count" => match number() {
                Some(parsed) if (1..=MAX_SCAN_COUNT).contains(&parsed) => count = parsed,
                _ => {
                    return bad_request(format!(
                        "count must be an integer from 1 to {MAX_SCAN_COUNT}"
                    ));
                }
            },
            "match" => pattern = value.clone(),
            _ => {}
        }
    }
    let result = store.run(true, |client| client.scan(cursor, count as u32, &pattern));
    match result {
        Err(response) => response,
        Ok(page) => {
            let keys: Vec<Json> = page.keys.iter().map(|key| key_text(key)).collect();
            Response::json(
                200,
                &json!({
                    "cursor": page.cursor.to_string(),
                    "complete": page.cursor == 0,
                    "keys": keys,
                }),
            )
        }
    }
}

/// One operation of a batch, validated.
enum BatchOp {
    Get(Vec<u8>),
    Set {
        key: Vec<u8>,
        data: Vec<u8>,
        condition: Precondition,
        ttl_ms: Option<u64>,
    },
    Delete(Vec<u8>),
}

impl BatchOp {
    fn key(&self) -> &[u8] {
        match self {
            BatchOp::Get(key) | BatchOp::Delete(key) | BatchOp::Set { key, .. } => key,
        }
    }
}

fn parse_batch_op(index: usize, op: &Json) -> Result<BatchOp, String> {
    let Json::Object(object) = op else {
        return Err(format!("ops[{index}] must be an object"));
    };
    let key = match object.get("key") {
        Some(Json::String(key)) if !key.is_empty() => key.as_bytes().to_vec(),
        _ => return Err(format!("ops[{index}].key must be a non-empty string")),
    };
    let kind = object.get("op").and_then(Json::as_str).unwrap_or("");
    let only = |allowed: &[&str]| match object.keys().find(|name| !allowed.contains(&name.as_str()))
    {
        Some(name) => Err(format!("ops[{index}]: unknown field {name:?}")),
        None => Ok(()),
    };
    match kind {
        "get" => {
            only(&["op", "key"])?;
            Ok(BatchOp::Get(key))
        }
        "delete" => {
            only(&["op", "key"])?;
            Ok(BatchOp::Delete(key))
        }
        "set" => {
            let fields = value_fields(object, &["op", "key", "if", "version"])
                .map_err(|message| format!("ops[{index}]: {message}"))?;
            let mut condition = match object.get("if") {
                None => Precondition::None,
                Some(Json::String(text)) => parse_if(text.as_bytes())
                    .ok_or_else(|| format!("ops[{index}].if must be \"absent\" or \"present\""))?,
                Some(_) => return Err(format!("ops[{index}].if must be a string")),
            };
            if let Some(version) = object.get("version") {
                if condition != Precondition::None {
                    return Err(format!(
                        "ops[{index}]: \"if\" and \"version\" cannot be combined"
                    ));
                }
                condition = Precondition::Version(
                    json_integer(version)
                        .ok_or_else(|| format!("ops[{index}].version must be an integer >= 0"))?,
                );
            }
            Ok(BatchOp::Set {
                key,
                data: fields.data,
                condition,
                ttl_ms: fields.ttl_ms,
            })
        }
        _ => Err(format!(
            "ops[{index}].op must be \"get\", \"set\" or \"delete\""
        )),
    }
}

fn batch(store: &mut Store, body: &[u8]) -> Response {
    let object = match parse_json_object(body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    if let Some(name) = object.keys().find(|name| name.as_str() != "ops") {
        return bad_request(format!("unknown field {name:?}"));
    }
    let ops = match object.get("ops") {
        Some(Json::Array(ops)) if !ops.is_empty() && ops.len() <= MAX_BATCH_OPS => ops,
        _ => {
            return bad_request(format!(
                "\"ops\" must be an array of 1 to {MAX_BATCH_OPS} operations"
            ));
        }
    };
    let ops: Vec<BatchOp> = match ops
        .iter()
        .enumerate()
        .map(|(index, op)| parse_batch_op(index, op))
        .collect()
    {
        Ok(ops) => ops,
        Err(message) => return bad_request(message),
    };
    let key_lists: Vec<[&[u8]; 1]> = ops.iter().map(|op| [op.key()]).collect();
    let result = store.run(false, |client| {
        let mut results: Vec<Json> = Vec::with_capacity(ops.len());
        let mut pipeline = client.pipeline();
        for (op, keys) in ops.iter().zip(&key_lists) {
            let request = match op {
                BatchOp::Get(key) => StoreRequest::GetV(key),
                BatchOp::Set {
                    key,
                    data,
                    condition,
                    ttl_ms,
                } => StoreRequest::Set {
                    key,
                    value: data,
                    options: set_options(*condition, *ttl_ms),
                    return_old: false,
                },
                BatchOp::Delete(_) => StoreRequest::Delete(keys),
            };
            pipeline.push(&request);
        }
        pipeline.execute_with(|index, reply| results.push(batch_result(&ops[index], reply)))?;
        Ok(results)
    });
    match result {
        Err(response) => response,
        Ok(results) => Response::json(200, &json!({ "results": results })),
    }
}

fn batch_result(op: &BatchOp, reply: ReplyRef<'_>) -> Json {
    let mut object = Map::new();
    let (kind, status) = match (op, reply) {
        (_, ReplyRef::Error { code, message }) => {
            let error = Error::Server {
                code,
                message: message.to_owned(),
            };
            let (status, code) = error_status(&error);
            object.insert("code".into(), Json::from(code));
            object.insert("message".into(), Json::from(format!("store: {error}")));
            let kind = match op {
                BatchOp::Get(_) => "get",
                BatchOp::Set { .. } => "set",
                BatchOp::Delete(_) => "delete",
            };
            (kind, status)
        }
        (BatchOp::Get(_), ReplyRef::Value { data, version }) => {
            encode_value(data, &mut object);
            object.insert("version".into(), Json::from(version));
            ("get", 200)
        }
        (BatchOp::Get(_), ReplyRef::NotFound) => ("get", 404),
        (BatchOp::Set { condition, .. }, ReplyRef::Version(version)) => {
            object.insert("version".into(), Json::from(version));
            let status = if *condition == Precondition::Absent {
                201
            } else {
                200
            };
            ("set", status)
        }
        (BatchOp::Set { condition, .. }, ReplyRef::ConditionFailed) => {
            let (status, code, message) = condition_failed(*condition);
            object.insert("code".into(), Json::from(code));
            object.insert("message".into(), Json::from(message));
            ("set", status)
        }
        (BatchOp::Delete(_), ReplyRef::Integer(count)) => {
            ("delete", if count > 0 { 204 } else { 404 })
        }
        (op, other) => {
            object.insert("code".into(), Json::from("store_error"));
            object.insert(
                "message".into(),
                Json::from(format!("unexpected answer {}", other.kind_name())),
            );
            let kind = match op {
                BatchOp::Get(_) => "get",
                BatchOp::Set { .. } => "set",
                BatchOp::Delete(_) => "delete",
            };
            (kind, 502)
        }
    };
    object.insert("op".into(), Json::from(kind));
    object.insert("key".into(), key_text(op.key()));
    object.insert("status".into(), Json::from(status));
    Json::Object(object)
}

fn health(store: &mut Store) -> Response {
    match store.run(true, |client| client.ping(b"")) {
        Ok(_) => Response::json(200, &json!({ "status": "ok", "store": "up" })),
        Err(response) => response,
    }
}

/// INFO text as `{section: {field: value}}`; integers become numbers.
pub fn info_json(text: &str) -> Json {
    let mut sections = Map::new();
    let mut current = String::from("default");
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('#') {
            current = name.trim().to_ascii_lowercase();
            sections
                .entry(current.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = match value.parse::<i64>() {
            Ok(number) => Json::from(number),
            Err(_) => Json::from(value),
        };
        if let Json::Object(section) = sections
            .entry(current.clone())
            .or_insert_with(|| Json::Object(Map::new()))
        {
            section.insert(field.to_owned(), value);
        }
    }
    Json::Object(sections)
}

fn info(store: &mut Store) -> Response {
    match store.run(true, |client| client.info("")) {
        Ok(text) => Response::json(200, &info_json(&text)),
        Err(response) => response,
    }
}

fn metrics_text(store: &mut Store, metrics: &Metrics) -> Response {
    let mut text = String::new();
    metrics.render(&mut text);
    let info = store.run(true, |client| client.info(""));
    text.push_str("# HELP cerializer_store_up Whether the store answered INFO for this scrape.\n");
    text.push_str("# TYPE cerializer_store_up gauge\n");
    text.push_str(if info.is_ok() {
        "cerializer_store_up 1\n"
    } else {
        "cerializer_store_up 0\n"
    });
    if let Ok(info) = info {
        render_info(&info, &mut text);
    }
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: String::new(),
        body: text.into_bytes(),
    }
}

fn openapi() -> Response {
    static SPEC: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body =
        SPEC.get_or_init(|| serde_json::to_vec_pretty(&super::openapi::spec()).unwrap_or_default());
    Response {
        status: 200,
        content_type: "application/json",
        headers: String::new(),
        body: body.clone(),
    }
}
