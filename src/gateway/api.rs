//! The REST resources: routing, JSON in and out, and the Cap'n Proto calls behind each route,
//! run on a worker thread that owns one [`Store`] connection.
//!
//! The pieces shared with `batch.rs` are below both: `backend.rs` (the store connection)
//! and `body.rs` (request limits, value fields, conditions, error bodies).

use serde_json::{Map, Value as Json, json};

use super::backend::Store;
use super::batch::batch;
use super::body::{
    DEFAULT_SCAN_COUNT, MAX_SCAN_COUNT, Precondition, bad_request, condition_failed, encode_value,
    key_text, method_not_allowed, parse_if, parse_if_match, parse_json_object, set_options,
    value_fields,
};
use super::http::{Method, Request, Response, percent_decode, query_pairs};
use super::metrics::{Metrics, Route, render_info};
use crate::client::{Error, ReplyRef, Request as StoreRequest, SetOutcome};

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
