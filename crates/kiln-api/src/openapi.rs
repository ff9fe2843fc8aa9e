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
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {"text/plain": {}}},
                    "404": {"description": "Metrics are off (the recorder could not be installed)"},
                }
            }},
        },
        "components": {"schemas": schemas()},
    })
}

/// `GET /api/kiln/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    use super::spec;
    use crate::{Activity, AppState, NodeInfo};
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use std::sync::Arc;
    use tower::ServiceExt;

    fn app(dir: &std::path::Path) -> axum::Router {
        let store = kiln_store::Store::open(dir, kiln_store::StoreOptions::default()).unwrap();
        crate::api_router(AppState {
            store,
            node: Arc::new(NodeInfo {
                peer_id: "12D3KooWtest".into(),
                did: "did:key:z6Mktest".into(),
                public_key: vec![],
                agent_version: "kiln/test".into(),
                addresses: vec!["/ip4/127.0.0.1/tcp/5001/http".into()],
            }),
            metrics: None,
            activity: Activity::default(),
        })
    }

    /// Every property the schema requires is in the answer, recursively through `$ref`s.
    fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap();
            return conforms(doc, &doc["components"]["schemas"][name], v, at);
        }
        match schema.get("type") {
            Some(t) if t == "object" => {
                for req in schema["required"].as_array().unwrap() {
                    let k = req.as_str().unwrap();
                    let sub = v
                        .get(k)
                        .unwrap_or_else(|| panic!("{at}: answer lacks {k}: {v}"));
                    conforms(doc, &schema["properties"][k], sub, &format!("{at}.{k}"));
                }
            }
            Some(t) if t == "array" => {
                for (i, item) in v.as_array().unwrap().iter().enumerate() {
                    conforms(doc, &schema["items"], item, &format!("{at}[{i}]"));
                }
            }
            Some(t) if t == "integer" => assert!(v.is_u64() || v.is_i64(), "{at}: {v}"),
            Some(t) if t == "string" => assert!(v.is_string(), "{at}: {v}"),
            _ => {}
        }
    }

    #[tokio::test]
    async fn every_documented_path_is_served_as_documented() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let doc = spec();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 8);
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let uri = path.replace("{cid}", "bafkqaaa");
                let req = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .body(Body::empty())
                    .unwrap();
                let resp = app.clone().oneshot(req).await.unwrap();
                let status = resp.status().as_u16();
                assert!(
                    op["responses"].get(status.to_string()).is_some(),
                    "{method} {uri} answered {status}, which is not documented"
                );
                let schema =
                    &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                if !schema.is_null() {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    conforms(&doc, schema, &v, &format!("{method} {uri}"));
                }
            }
        }
        // The document itself is served and is the same document.
        let req = Request::get("/api/kiln/v1/openapi.json")
            .body(Body::empty())
            .unwrap();
        let body = axum::body::to_bytes(app.oneshot(req).await.unwrap().into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), doc);
    }

    #[tokio::test]
    async fn undocumented_kiln_paths_are_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let req = Request::get("/api/kiln/v1/nothing")
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status().as_u16(), 404);
        let documented: Vec<String> = spec()["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        // The routes kiln's own router declares (native.rs) are all documented.
        for p in crate::native::PATHS {
            assert!(
                documented.iter().any(|d| d == p),
                "{p} is not in openapi.json"
            );
        }
    }
}
