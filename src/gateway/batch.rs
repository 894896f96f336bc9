//! `POST /v1/batch`: a list of get, set and delete operations, validated whole before any is
//! sent, then sent to the store in one pipeline; each gets its own status in the answer.

use serde_json::{Map, Value as Json, json};

use super::backend::{Store, error_status};
use super::body::{
    MAX_BATCH_OPS, Precondition, bad_request, condition_failed, encode_value, json_integer,
    key_text, parse_if, parse_json_object, set_options, value_fields,
};
use super::http::Response;
use crate::client::{Error, ReplyRef, Request as StoreRequest};

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

pub(super) fn batch(store: &mut Store, body: &[u8]) -> Response {
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
