//! The OpenAPI 3.1 document of kiln's own endpoints (not the Kubo RPC, which Kubo
//! documents, nor the gateway, which the IPFS gateway specs define), served at
//! `/api/kiln/v1/openapi.json`. The schemas follow `types.rs`; a test checks that every
//! documented path is routed and every route under `/api/kiln/v1/` is documented.

use axum::Json;
use serde_json::{Value, json};

fn int() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn object(props: Value) -> Value {
    let required: Vec<String> = props
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    json!({"type": "object", "required": required, "properties": props})
}

fn schemas() -> Value {
    json!({
        "Node": object(json!({
            "peer_id": string(), "did": string(), "agent_version": string(),
            "addresses": strings(), "repo_path": string(),
        })),
        "Stat": object(json!({
            "blocks": int(), "block_bytes": int(), "pins": int(), "packs": int(),
            "pack_bytes": int(), "db_bytes": int(), "repo_path": string(),
        })),
        "Pin": object(json!({
            "cid": string(),
            "mode": {"type": "string", "enum": ["recursive", "direct"]},
            "name": {"type": ["string", "null"]},
            "created_ms": int(),
        })),
        "PinList": object(json!({
            "pins": {"type": "array", "items": {"$ref": "#/components/schemas/Pin"}},
            "indirect": strings(),
        })),
        "Gc": object(json!({
            "blocks_removed": int(), "bytes_freed": int(), "packs_deleted": int(),
            "packs_rewritten": int(), "disk_bytes_reclaimed": int(),
        })),
        "Missing": object(json!({"cid": string(), "pin": string()})),
        "Verify": object(json!({
            "blocks_ok": int(), "bytes_checked": int(), "corrupt": strings(),
            "unsupported": strings(),
            "missing": {"type": "array", "items": {"$ref": "#/components/schemas/Missing"}},
        })),
        "Error": object(json!({
            "Message": string(), "Code": {"type": "integer"}, "Type": string(),
        })),
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn errors() -> Value {
    json!({
        "400": json_response("Malformed request", "Error"),
        "429": {"description": "Too many requests in flight from this client"},
        "500": json_response("The operation failed", "Error"),
    })
}

fn op(summary: &str, id: &str, ok: Value) -> Value {
    let mut responses = errors();
    responses["200"] = ok;
    json!({"summary": summary, "operationId": id, "responses": responses})
}

/// The whole document.
pub fn spec() -> Value {
    let mut pins = op(
        "Every pin, oldest first, with names and times",
        "listPins",
        json_response("The pins", "PinList"),
    );
    pins["parameters"] = json!([{
        "name": "indirect", "in": "query", "required": false,
        "description": "Also list every block protected only through a recursive pin",
        "schema": {"type": "boolean", "default": false}
    }]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kiln node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "kiln's own endpoints on the API listener. The Kubo RPC subset lives \
                under /api/v0/ and the gateway on its own listener; both follow their public specs.",
        },
        "paths": {
            "/api/kiln/v1/node": {"get": op("The node's identity, version and addresses", "getNode",
                json_response("The node", "Node"))},
            "/api/kiln/v1/stat": {"get": op("Repository statistics", "getStat",
                json_response("Counts and sizes", "Stat"))},
            "/api/kiln/v1/pins": {"get": pins},
            "/api/kiln/v1/blocks/{cid}": {"get": {
                "summary": "A block's bytes", "operationId": "getBlock",
                "parameters": [{"name": "cid", "in": "path", "required": true,
                    "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The block", "content": {"application/vnd.ipld.raw": {}}},
                    "400": json_response("Not a CID", "Error"),
                    "404": json_response("Not in the repository", "Error"),
                }
            }},
            "/api/kiln/v1/gc": {"post": op("Remove every block not reachable from a pin", "runGc",
                json_response("What was removed", "Gc"))},
            "/api/kiln/v1/verify": {"post": op(
                "Re-hash every block and walk every pinned DAG", "verifyRepo",
                json_response("What was found", "Verify"))},
            "/api/kiln/v1/openapi.json": {"get": {
                "summary": "This document", "operationId": "getOpenApi",
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                    "content": {"application/json": {}}}}
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics: requests by route and status, latency, bytes served, blocks added, store size",
                "operationId": "getMetrics",
                "responses": {"200": {"description": "Prometheus text format",
                    "content": {"text/plain": {}}}}
            }},
        },
        "components": {"schemas": schemas()},
    })
}

/// `GET /api/kiln/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
