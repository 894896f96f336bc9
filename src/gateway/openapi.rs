//! The OpenAPI 3 description served at `GET /openapi.json`. It describes what [`super::api`]
//! really does; `.ci/run` checks the two against each other with schemathesis.

use serde_json::{Value as Json, json};

use super::body::{DEFAULT_SCAN_COUNT, MAX_BATCH_OPS, MAX_SCAN_COUNT, MAX_TTL_MS};
use super::http::BASE64_PATTERN;

/// `value` must be base64 when `encoding` says so.
fn base64_rule() -> Json {
    json!({
        "anyOf": [
            { "properties": { "encoding": { "const": "utf8" } } },
            { "required": ["encoding"],
              "properties": { "encoding": { "const": "base64" },
                              "value": { "type": "string", "pattern": BASE64_PATTERN } } }
        ]
    })
}

fn error_ref(description: &str) -> Json {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

/// The error responses every route may give, plus `extra` (status, description) pairs.
fn responses(ok: Json, extra: &[(&str, &str)]) -> Json {
    let mut map = serde_json::Map::new();
    if let Json::Object(ok) = ok {
        map.extend(ok);
    }
    for (status, description) in extra {
        map.insert((*status).into(), error_ref(description));
    }
    map.insert(
        "405".into(),
        error_ref("Method not allowed (the Allow header lists the methods)"),
    );
    map.insert(
        "431".into(),
        error_ref("The request line and headers exceed the gateway's limit"),
    );
    map.insert(
        "502".into(),
        error_ref("The store broke the connection or answered with an error"),
    );
    map.insert(
        "503".into(),
        error_ref("The store is unreachable, or the gateway is overloaded"),
    );
    Json::Object(map)
}

fn key_param() -> Json {
    json!({
        "name": "key", "in": "path", "required": true,
        "description": "The key, percent-encoded (it may contain any byte, `/` as %2F).",
        "schema": { "type": "string", "minLength": 1 }
    })
}

/// The document.
pub fn spec() -> Json {
    let value_schema = json!({
        "type": "object",
        "required": ["key", "value", "encoding", "version", "ttl_ms"],
        "additionalProperties": false,
        "properties": {
            "key": { "type": "string" },
            "value": { "type": "string", "description": "UTF-8 text, or base64 when encoding is base64 (the value is not UTF-8)" },
            "encoding": { "type": "string", "enum": ["utf8", "base64"] },
            "version": { "type": "integer", "minimum": 0, "description": "Changes on every write; pass it in If-Match for compare-and-set" },
            "ttl_ms": { "type": ["integer", "null"], "minimum": 0, "description": "Milliseconds to live, null when the key does not expire" }
        }
    });
    let put_body = json!({
        "type": "object",
        "required": ["value"],
        "additionalProperties": false,
        "properties": {
            "value": { "type": "string" },
            "encoding": { "type": "string", "enum": ["utf8", "base64"], "default": "utf8",
                          "description": "base64: value is standard base64 (with padding) of the bytes" },
            "ttl_ms": { "type": "integer", "minimum": 1, "maximum": MAX_TTL_MS }
        },
        "allOf": [ base64_rule() ]
    });
    let written = json!({
        "type": "object",
        "required": ["key", "version"],
        "additionalProperties": false,
        "properties": {
            "key": { "type": "string" },
            "version": { "type": "integer", "minimum": 0 }
        }
    });
    let batch_op = json!({
        "type": "object",
        "required": ["op", "key"],
        "properties": {
            "op": { "type": "string", "enum": ["get", "set", "delete"] },
            "key": { "type": "string", "minLength": 1 },
            "value": { "type": "string", "description": "set only (required there)" },
            "encoding": { "type": "string", "enum": ["utf8", "base64"], "description": "set only" },
            "ttl_ms": { "type": "integer", "minimum": 1, "maximum": MAX_TTL_MS, "description": "set only" },
            "if": { "type": "string", "enum": ["absent", "present"], "description": "set only" },
            "version": { "type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "set only: compare-and-set" }
        },
        "additionalProperties": false,
        "allOf": [ base64_rule() ],
        "oneOf": [
            { "properties": { "op": { "enum": ["get", "delete"] } },
              "not": { "anyOf": [
                  { "required": ["value"] }, { "required": ["encoding"] }, { "required": ["ttl_ms"] },
                  { "required": ["if"] }, { "required": ["version"] } ] } },
            { "properties": { "op": { "const": "set" } }, "required": ["value"],
              "not": { "required": ["if", "version"] } }
        ]
    });
    let batch_result = json!({
        "type": "object",
        "required": ["op", "key", "status"],
        "additionalProperties": false,
        "properties": {
            "op": { "type": "string", "enum": ["get", "set", "delete"] },
            "key": { "type": "string" },
            "status": { "type": "integer", "description": "What the single request would have answered" },
            "value": { "type": "string" },
            "encoding": { "type": "string", "enum": ["utf8", "base64"] },
            "version": { "type": "integer", "minimum": 0 },
            "code": { "type": "string" },
            "message": { "type": "string" }
        }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Piccolo Cerializer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST/JSON gateway to a Piccolo key:value store. Errors are JSON objects with a code and a message."
        },
        "paths": {
            "/v1/keys/{key}": {
                "parameters": [ key_param() ],
                "get": {
                    "operationId": "getKey",
                    "summary": "A key's value, version and time to live",
                    "responses": responses(json!({
                        "200": { "description": "The key",
                                 "headers": { "ETag": { "schema": { "type": "string" }, "description": "The version, quoted" } },
                                 "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Value" } } } }
                    }), &[("400", "Malformed request"), ("404", "No such key")])
                },
                "put": {
                    "operationId": "putKey",
                    "summary": "Write a key (upsert; ?if=absent inserts, ?if=present updates, If-Match compares and sets)",
                    "parameters": [
                        { "name": "if", "in": "query", "required": false,
                          "schema": { "type": "string", "enum": ["absent", "present"] } },
                        { "name": "If-Match", "in": "header", "required": false,
                          "description": "Write only if the key has this version (\"*\": only if it exists). With ?if=absent: 412, both cannot hold.",
                          "schema": { "type": "string", "pattern": "^(\\*|[0-9]{1,19}|\"[0-9]{1,19}\")$" } }
                    ],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PutBody" } } } },
                    "responses": responses(json!({
                        "200": { "description": "Written", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Written" } } } },
                        "201": { "description": "Inserted (?if=absent)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Written" } } } }
                    }), &[("400", "Malformed request or body"), ("404", "?if=present and no such key"),
                          ("409", "?if=absent and the key exists"), ("411", "Chunked bodies are not accepted"),
                          ("412", "If-Match: the version is not the key's (or the key is gone)"),
                          ("413", "The body, key or value is too large")])
                },
                "delete": {
                    "operationId": "deleteKey",
                    "summary": "Delete a key",
                    "responses": responses(json!({ "204": { "description": "Deleted" } }),
                        &[("400", "Malformed request"), ("404", "No such key")])
                }
            },
            "/v1/keys": {
                "get": {
                    "operationId": "scanKeys",
                    "summary": "One page of a scan over the keys",
                    "parameters": [
                        { "name": "cursor", "in": "query", "required": false, "description": "0 (default) to start, then the previous page's cursor",
                          "schema": { "type": "string", "pattern": "^[0-9]{1,19}$" } },
                        { "name": "count", "in": "query", "required": false, "description": "A hint of the page size",
                          "schema": { "type": "integer", "minimum": 1, "maximum": MAX_SCAN_COUNT, "default": DEFAULT_SCAN_COUNT } },
                        { "name": "match", "in": "query", "required": false, "description": "A glob (*, ?, [..]); empty: every key",
                          "schema": { "type": "string" } }
                    ],
                    "responses": responses(json!({
                        "200": { "description": "A page; continue with its cursor until complete",
                                 "content": { "application/json": { "schema": {
                                     "type": "object", "required": ["cursor", "complete", "keys"], "additionalProperties": false,
                                     "properties": {
                                         "cursor": { "type": "string", "pattern": "^[0-9]+$" },
                                         "complete": { "type": "boolean" },
                                         "keys": { "type": "array", "items": { "type": "string" } } } } } } }
                    }), &[("400", "Malformed query")])
                }
            },
            "/v1/batch": {
                "post": {
                    "operationId": "batch",
                    "summary": "Several gets, sets and deletes in one call (one pipelined round trip to the store; not atomic)",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["ops"], "additionalProperties": false,
                        "properties": { "ops": { "type": "array", "minItems": 1, "maxItems": MAX_BATCH_OPS,
                                                 "items": { "$ref": "#/components/schemas/BatchOp" } } } } } } },
                    "responses": responses(json!({
                        "200": { "description": "One result per operation, in order",
                                 "content": { "application/json": { "schema": {
                                     "type": "object", "required": ["results"], "additionalProperties": false,
                                     "properties": { "results": { "type": "array", "items": { "$ref": "#/components/schemas/BatchResult" } } } } } } }
                    }), &[("400", "Malformed body"), ("411", "Chunked bodies are not accepted"), ("413", "The body is too large")])
                }
            },
            "/v1/health": {
                "get": {
                    "operationId": "health",
                    "summary": "200 when the store answers a ping",
                    "responses": responses(json!({
                        "200": { "description": "Healthy", "content": { "application/json": { "schema": {
                            "type": "object", "required": ["status", "store"],
                            "properties": { "status": { "const": "ok" }, "store": { "const": "up" } } } } } }
                    }), &[])
                }
            },
            "/v1/info": {
                "get": {
                    "operationId": "info",
                    "summary": "The store's INFO, as {section: {field: value}}",
                    "responses": responses(json!({
                        "200": { "description": "INFO", "content": { "application/json": { "schema": {
                            "type": "object",
                            "additionalProperties": { "type": "object",
                                "additionalProperties": { "type": ["string", "integer"] } } } } } }
                    }), &[])
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text: the gateway's requests and latencies, and the store's INFO numbers",
                    "responses": responses(json!({
                        "200": { "description": "Metrics", "content": { "text/plain": { "schema": { "type": "string" } } } }
                    }), &[])
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": responses(json!({
                        "200": { "description": "OpenAPI 3.1", "content": { "application/json": { "schema": { "type": "object" } } } }
                    }), &[])
                }
            }
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object", "required": ["code", "message"], "additionalProperties": false,
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } }
                },
                "Value": value_schema,
                "PutBody": put_body,
                "Written": written,
                "BatchOp": batch_op,
                "BatchResult": batch_result
            }
        }
    })
}
