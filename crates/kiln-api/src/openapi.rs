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

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn string_map() -> Value {
    json!({"type": "object", "required": [], "additionalProperties": {"type": "string"}})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array_of(name: &str) -> Value {
    json!({"type": "array", "items": schema_ref(name)})
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
            "id": int(),
            "cid": string(),
            "mode": {"type": "string", "enum": ["recursive", "direct"]},
            "owner": string(),
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
            "build_dirs_removed": int(),
        })),
        "Event": object(json!({
            "id": int(), "at_ms": int(), "who": string(), "via": string(), "action": string(),
            "target": string(), "ok": {"type": "boolean"}, "detail": string(),
        })),
        "EventList": object(json!({"events": array_of("Event")})),
        "Missing": object(json!({"cid": string(), "pin": string()})),
        "Verify": object(json!({
            "blocks_ok": int(), "bytes_checked": int(), "corrupt": strings(),
            "unsupported": strings(),
            "missing": {"type": "array", "items": {"$ref": "#/components/schemas/Missing"}},
        })),
        "BuildRequest": {
            "type": "object",
            "description": "Either source (a recipe build) or action (find or build one action).",
            "properties": {
                "source": {"type": "string", "description": "CID of a source tree holding kiln.toml, already in the store"},
                "params": string_map(),
                "check": {"type": "boolean", "default": false},
                "slots": {"type": "integer", "minimum": 1},
                "origin": {"type": "string", "description": "How messages and the history name the recipe file (default CID/kiln.toml)"},
                "requested_by": {"type": "string", "description": "Who asks (self-declared, written in the records)"},
                "action": {"type": "string", "description": "An action key"},
                "timeout": {"type": "string", "description": "For action: 30s, 5m, 1h (default 30s)"},
                "upload": {"type": "string", "description": "For source: the pin owner (upload:TOKEN) it was imported under; the build holds the source until it ends and removes that pin"},
            },
            "additionalProperties": false,
        },
        "BuildRow": object(json!({
            "id": int(), "action": string(), "step": string(), "origin": string(),
            "status": string(), "cached": {"type": "boolean"}, "record": nullable("string"),
            "log": nullable("string"), "started_ms": int(), "ended_ms": nullable("integer"),
        })),
        "PruneRequest": {
            "type": "object",
            "description": "Which builds to remove from the history: at least one rule; with both, a build is kept if either keeps it. Running builds are never removed.",
            "properties": {
                "keep": {"type": "integer", "minimum": 0, "description": "Keep the newest this many builds"},
                "older_than_s": {"type": "integer", "minimum": 0, "description": "Keep the builds that ended less than this many seconds ago"},
            },
            "additionalProperties": false,
        },
        "Prune": object(json!({"builds": int(), "released": int(), "forgotten": int()})),
        "BuildList": object(json!({
            "builds": array_of("BuildRow"),
            "submissions": array_of("Submission"),
        })),
        "Step": object(json!({
            "name": string(), "action": nullable("string"),
            "state": {"type": "string", "enum": ["pending", "running", "cached", "ok", "failed", "skipped"]},
            "build": nullable("integer"), "record": nullable("string"), "log": nullable("string"),
            "outputs": string_map(), "status": nullable("string"),
            "started_ms": nullable("integer"), "ended_ms": nullable("integer"),
        })),
        "Check": object(json!({"cached": string(), "differing": strings()})),
        "DoneStep": object(json!({
            "step": string(), "action": string(), "record": string(), "cached": {"type": "boolean"},
            "outputs": string_map(), "log": string(), "duration_ms": int(),
            "check": {"oneOf": [schema_ref("Check"), {"type": "null"}]},
        })),
        "FailedStep": object(json!({"step": string(), "error": string()})),
        "BuildResult": object(json!({
            "done": array_of("DoneStep"), "failed": array_of("FailedStep"),
            "skipped": strings(), "error": nullable("string"),
        })),
        "Submission": object(json!({
            "id": {"type": "string", "pattern": "^s[0-9]+$"},
            "kind": {"type": "string", "enum": ["recipe", "action"]},
            "state": {"type": "string", "enum": ["running", "ok", "failed"]},
            "source": nullable("string"), "origin": nullable("string"), "params": string_map(),
            "check": {"type": "boolean"}, "action": nullable("string"),
            "schedule": nullable("integer"),
            "started_ms": int(), "ended_ms": nullable("integer"),
            "steps": array_of("Step"),
            "result": {"oneOf": [schema_ref("BuildResult"), {"type": "null"}]},
            "events": string(), "log": string(),
        })),
        "Record": object(json!({
            "status": string(), "exit": nullable("integer"), "outputs": string_map(),
            "log": string(), "caches": string_map(), "builder": string(),
            "requested_by": string(), "host": {"type": "boolean"},
            "started_ms": int(), "ended_ms": int(),
        })),
        "Build": object(json!({
            "build": schema_ref("BuildRow"),
            "record": {"oneOf": [schema_ref("Record"), {"type": "null"}]},
            "submission": nullable("string"),
        })),
        "ScheduleRequest": {
            "type": "object",
            "required": ["source"],
            "description": "A recipe to build on its schedule: its kiln.toml must have a schedule and mutable inputs (git+URL#REF).",
            "properties": {
                "source": {"type": "string", "description": "CID of a source tree holding kiln.toml, already in the store (pinned as schedule:ID while registered)"},
                "params": string_map(),
                "origin": {"type": "string", "description": "How messages and the history name the recipe file (default CID/kiln.toml)"},
                "upload": {"type": "string", "description": "The pin owner (upload:TOKEN) the source was imported under; removed once the schedule holds the source"},
            },
            "additionalProperties": false,
        },
        "Schedule": object(json!({
            "id": int(), "source": string(), "origin": string(), "params": string_map(),
            "schedule": string(), "created_ms": int(),
            "next_ms": {"type": ["integer", "null"], "description": "The next check, Unix ms"},
            "checking": {"type": "boolean"},
            "last_check_ms": nullable("integer"),
            "last_outcome": {"type": ["string", "null"], "enum": ["nothing new", "built", "error", null]},
            "last_message": nullable("string"),
            "last_submission": {"type": ["string", "null"], "description": "The last build it submitted (sN), while this daemon remembers it"},
        })),
        "ScheduleList": object(json!({"schedules": array_of("Schedule")})),
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

fn id_param() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "A submission (sN, as POST /builds answers), a build number of the history, or an action or record CID (its latest build)",
        "schema": {"type": "string"}
    })
}

const EVENTS_DOC: &str = "Server-sent events: what happened so far, then live until the build ends. \
    Each event's name is its `event` field and its data the JSON object: \
    `cached` {step, record}; `started` {step, build}; `output` {step, line} (one line of a step's \
    output, without its newline); `finished` {step, build, record, ok, status, duration_ms, outputs, log}; \
    `gap` {missed} (earlier events were not kept in memory); and last `done`, a BuildResult, after \
    which the stream ends. Event ids are sequence numbers (Last-Event-ID resumes). Comments keep \
    an idle stream alive every 15 s.";

fn build_paths() -> Value {
    let mut list = op(
        "Recent builds of the history (steps run or answered from the cache), newest first, and the submissions this daemon remembers",
        "listBuilds",
        json_response("Builds and submissions", "BuildList"),
    );
    list["parameters"] = json!([{
        "name": "limit", "in": "query", "required": false,
        "description": "How many builds of the history (at most 100000)",
        "schema": {"type": "integer", "default": 20, "minimum": 0}
    }]);
    let submit = json!({
        "summary": "Start a build: a recipe whose source tree is in the store, or one action (find or build)",
        "operationId": "submitBuild",
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": schema_ref("BuildRequest")}}
        },
        "responses": {
            "202": {
                "description": "Started: the submission (follow its events)",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": schema_ref("Submission")}}
            },
            "400": json_response(
                "Malformed request, bad recipe (the one-line recipe error), bad CID or timeout",
                "Error"),
            "404": json_response("The source tree is not (completely) in the store", "Error"),
            "413": json_response("Request body over 64 KiB", "Error"),
            "429": {"description": "Too many requests in flight from this client"},
            "500": json_response("The operation failed", "Error"),
            "503": json_response("Too many builds running, or the daemon is stopping", "Error"),
        }
    });
    let by_id = |summary: &str, id: &str, ok: Value| {
        json!({
            "summary": summary, "operationId": id, "parameters": [id_param()],
            "responses": {
                "200": ok,
                "400": json_response("Neither a submission, a build number nor a CID", "Error"),
                "404": json_response("No such submission or build, or no log stored", "Error"),
                "429": {"description": "Too many requests in flight from this client"},
                "500": json_response("The operation failed", "Error"),
            }
        })
    };
    let register = json!({
        "summary": "Register a recipe to be built on its schedule: at each scheduled time the daemon checks its mutable inputs (git refs) and builds when one moved and that changed an action key (the first check builds what is not cached)",
        "operationId": "addSchedule",
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": schema_ref("ScheduleRequest")}}
        },
        "responses": {
            "201": {
                "description": "Registered",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": schema_ref("Schedule")}}
            },
            "200": json_response(
                "Already registered with the same source, parameters and origin: that schedule",
                "Schedule"),
            "400": json_response(
                "Malformed request, bad recipe (the one-line recipe error), no schedule or no mutable input in the recipe",
                "Error"),
            "404": json_response("The source tree is not (completely) in the store", "Error"),
            "413": json_response("Request body over 64 KiB", "Error"),
            "429": {"description": "Too many requests in flight from this client"},
            "500": json_response("The operation failed", "Error"),
            "503": json_response("The daemon is stopping", "Error"),
        }
    });
    let schedule_id = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The schedule's number",
        "schema": {"type": "integer", "minimum": 1}
    });
    let by_schedule = |summary: &str, id: &str, ok: &str| {
        json!({
            "summary": summary, "operationId": id, "parameters": [schedule_id.clone()],
            "responses": {
                "200": json_response(ok, "Schedule"),
                "400": json_response("Not a schedule number", "Error"),
                "404": json_response("No such schedule", "Error"),
                "429": {"description": "Too many requests in flight from this client"},
                "500": json_response("The operation failed", "Error"),
            }
        })
    };
    json!({
        "/api/kiln/v1/schedules": {
            "get": op(
                "The registered schedules, oldest first: next check, what the last one found, the last build it started",
                "listSchedules",
                json_response("The schedules", "ScheduleList"),
            ),
            "post": register,
        },
        "/api/kiln/v1/schedules/{id}": {
            "get": by_schedule("One schedule", "getSchedule", "The schedule"),
            "delete": by_schedule(
                "Stop building a recipe on its schedule and forget it; its source is unpinned (builds already started go on)",
                "removeSchedule",
                "The schedule removed"),
        },
        "/api/kiln/v1/builds": {"get": list, "post": submit},
        "/api/kiln/v1/builds/{id}": {"get": by_id(
            "A submission (steps, states, outputs, result) or a build of the history (with its record)",
            "getBuild",
            json!({"description": "The submission or the build", "content": {"application/json": {
                "schema": {"oneOf": [schema_ref("Submission"), schema_ref("Build")]}}}}),
        )},
        "/api/kiln/v1/builds/{id}/log": {"get": by_id(
            "A build's stored log (while it runs, its output so far); a submission's transcript as kiln build prints it",
            "getBuildLog",
            json!({"description": "The log", "content": {"text/plain": {}}}),
        )},
        "/api/kiln/v1/builds/prune": {"post": {
            "summary": "Remove old builds from the history; the records and logs only they named are no longer kept (kiln gc then frees them unless another pin holds them), and the cached results they were are forgotten",
            "operationId": "pruneBuilds",
            "requestBody": {"required": true, "content": {"application/json": {"schema": schema_ref("PruneRequest")}}},
            "responses": {
                "200": json_response("What was removed", "Prune"),
                "400": json_response("No rule given, or a malformed request", "Error"),
                "429": {"description": "Too many requests in flight from this client"},
            }
        }},
        "/api/kiln/v1/builds/{id}/cancel": {"post": {
            "summary": "Cancel a running submission (sN): its running steps are killed and recorded as cancelled, no other step starts; kiln build does this on Ctrl-C",
            "operationId": "cancelBuild",
            "parameters": [id_param()],
            "responses": {
                "202": json_response("Cancelling: the submission as it is now (follow its events for the end)", "Submission"),
                "200": json_response("The submission had already ended: nothing changed", "Submission"),
                "400": json_response("Not a submission number (sN)", "Error"),
                "404": json_response("No such submission (this daemon does not remember it)", "Error"),
                "429": {"description": "Too many requests in flight from this client"},
            }
        }},
        "/api/kiln/v1/builds/{id}/events": {"get": by_id(
            "A submission's events, replayed then live, as server-sent events",
            "followBuild",
            json!({"description": EVENTS_DOC, "content": {"text/event-stream": {}}}),
        )},
    })
}

fn auth_schemas() -> Value {
    let opt = |t: &str| json!({"type": [t, "null"]});
    json!({
        "ChallengeRequest": object(json!({"did": string()})),
        "Challenge": object(json!({"nonce": string(), "node": string(), "expires": int()})),
        "LoginRequest": {"type": "object", "required": ["did", "nonce", "signature"], "properties": {
            "did": string(), "nonce": string(),
            "signature": {"type": "string", "description": "ed25519 signature, base64, of \"kiln-auth-v1\\nnode NODE\\nidentity DID\\nnonce NONCE\\n\""},
            "ttl_secs": int(), "note": string()}},
        "Role": object(json!({"namespace": string(), "role": {"type": "string", "enum": ["admin", "maintainer", "writer", "reader"]}})),
        "TokenRequest": {"type": "object", "required": [], "properties": {
            "did": string(), "roles": array_of("Role"), "ttl_secs": int(), "note": string()}},
        "TokenMinted": object(json!({"token": string(), "id": string(), "expires": int()})),
        "Token": object(json!({"id": string(), "did": string(), "issued_ms": int(), "expires": int(),
            "issued_by": string(), "note": string(), "revoked_ms": opt("integer")})),
        "TokenList": object(json!({"tokens": array_of("Token")})),
        "RevokeRequest": object(json!({"token": {"type": "string", "description": "A token's id, or the whole token"}})),
        "Revoked": object(json!({"id": string()})),
        "UiLink": object(json!({"path": {"type": "string", "description": "/ui/login?code=… on this listener: works once, for ten minutes"},
            "expires": int()})),
        "SessionsEnded": object(json!({"ended": int()})),
        "InviteRequest": {"type": "object", "required": ["role", "ttl_secs"], "properties": {
            "role": {"type": "string", "enum": ["admin", "maintainer", "writer", "reader"]},
            "namespace": string(), "ttl_secs": int()}},
        "InviteCreated": object(json!({"code": {"type": "string", "description": "ABCDE-FGHIJ-KLMNO-PQRST: shown this once"},
            "id": string(), "role": string(), "namespace": string(), "expires_ms": int()})),
        "Invite": object(json!({"id": string(), "role": string(), "namespace": string(), "created_ms": int(),
            "expires_ms": int(), "created_by": string(), "used_by": opt("string")})),
        "InviteList": object(json!({"invites": array_of("Invite")})),
        "SealedInvite": object(json!({"sealed": {"type": "string", "description": "hex: nonce and ChaCha20-Poly1305 ciphertext of the signed bootstrap bundle, under a key the code gives"}})),
        "JoinRequest": object(json!({"did": string(), "proof": string(),
            "signature": {"type": "string", "description": "ed25519 signature, hex, of \"kiln join\\nNODE\\nID\\nDID\\n\""}})),
        "Joined": object(json!({"did": string(), "role": string(), "namespace": string()})),
        "Whoami": object(json!({"did": opt("string"), "local": {"type": "boolean"},
            "roles": array_of("Role"), "token": opt("string")})),
    })
}

fn auth_paths() -> Value {
    let body = |name: &str| json!({"required": true, "content": {"application/json": {"schema": schema_ref(name)}}});
    let refusals = json!({
        "401": json_response("No token, or one that is malformed, altered, another node's, expired or revoked, or whose user was removed (Reason says which)", "Error"),
        "403": json_response("The caller's role or its token's scope does not allow it (Reason says which)", "Error"),
        "429": json_response("Over the rate limit of the identity or the client address (Retry-After says when to try again)", "Error"),
    });
    let with = |ok: Value, extra: &Value| {
        let mut r = ok;
        if let (Some(m), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        r
    };
    json!({
        "/api/kiln/v1/auth/challenge": {"post": {
            "summary": "A single-use nonce for an identity to sign (valid two minutes); open to anyone",
            "operationId": "authChallenge", "security": [], "requestBody": body("ChallengeRequest"),
            "responses": {"200": json_response("The challenge", "Challenge"),
                "400": json_response("Not an ed25519 did:key", "Error"),
                "429": json_response("Over the rate limit of the client address (Retry-After)", "Error")}
        }},
        "/api/kiln/v1/auth/token": {"post": {
            "summary": "Answer a challenge: a token for the identity, with the roles the node gives it",
            "operationId": "authToken", "security": [], "requestBody": body("LoginRequest"),
            "responses": {"200": json_response("The token (the only answer that holds one)", "TokenMinted"),
                "400": json_response("A malformed request", "Error"),
                "401": json_response("The challenge is unknown, used, expired, another identity's or wrongly signed; or the identity is not a user", "Error"),
                "429": json_response("Over the rate limit of the client address (Retry-After)", "Error")}
        }},
        "/api/kiln/v1/auth/whoami": {"get": {
            "summary": "Who the node takes the caller for", "operationId": "whoami",
            "responses": with(json!({"200": json_response("The caller", "Whoami")}), &refusals)
        }},
        "/api/kiln/v1/tokens": {
            "get": {"summary": "The tokens issued (ids, holders, expiry; never the tokens): all for an administrator, one's own otherwise",
                "operationId": "listTokens",
                "parameters": [{"name": "did", "in": "query", "required": false, "schema": {"type": "string"}}],
                "responses": with(json!({"200": json_response("The tokens", "TokenList")}), &refusals)},
            "post": {"summary": "Issue a token (administrators)", "operationId": "createToken",
                "requestBody": body("TokenRequest"),
                "responses": with(json!({"200": json_response("The token (the only answer that holds one)", "TokenMinted"),
                    "400": json_response("A malformed request", "Error"),
                    "404": json_response("No such user", "Error")}), &refusals)},
        },
        "/api/kiln/v1/tokens/revoke": {"post": {
            "summary": "Revoke a token at once on every route (an administrator any; a token itself)",
            "operationId": "revokeToken", "requestBody": body("RevokeRequest"),
            "responses": with(json!({"200": json_response("The id revoked", "Revoked"),
                "400": json_response("Neither a token id nor a token, or a malformed request", "Error"),
                "404": json_response("No such token", "Error"),
                "409": json_response("Revoked already", "Error")}), &refusals)
        }},
        "/api/kiln/v1/invites": {
            "get": {"summary": "The invites made (never their codes; administrators)", "operationId": "listInvites",
                "responses": with(json!({"200": json_response("The invites", "InviteList")}), &refusals)},
            "post": {"summary": "Make an invite: a code that lets one identity join with a role (administrators)",
                "operationId": "createInvite", "requestBody": body("InviteRequest"),
                "responses": with(json!({"200": json_response("The code (the only answer that holds it)", "InviteCreated"),
                    "400": json_response("A malformed request", "Error")}), &refusals)},
        },
        "/api/kiln/v1/invites/{id}": {"get": {
            "summary": "The sealed bootstrap bundle of a live invite (anyone: it opens only with the code)",
            "operationId": "sealedInvite",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": json_response("The sealed bundle", "SealedInvite"),
                "404": json_response("No live invite has this id", "Error"),
                "429": json_response("Over the rate limit of the client address (Retry-After)", "Error")}
        }},
        "/api/kiln/v1/invites/{id}/join": {"post": {
            "summary": "Use an invite: the signing identity becomes a user with its role, once",
            "operationId": "joinInvite",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": body("JoinRequest"),
            "responses": {"200": json_response("Joined", "Joined"),
                "400": json_response("A malformed request", "Error"),
                "401": json_response("Not signed by the identity", "Error"),
                "404": json_response("Wrong code, used or expired", "Error"),
                "409": json_response("Already a user", "Error"),
                "429": json_response("Over the rate limit of the client address (Retry-After)", "Error")}
        }},
        "/api/kiln/v1/ui/login": {"post": {
            "summary": "A one-time link that signs a browser in to the web UI as the local administrator (kiln ui login)",
            "operationId": "uiLoginLink",
            "responses": with(json!({"200": json_response("The link", "UiLink")}), &refusals)
        }},
        "/api/kiln/v1/ui/logout": {"post": {
            "summary": "End every web UI session and forget unused links (administrators)",
            "operationId": "uiLogoutAll",
            "responses": with(json!({"200": json_response("How many sessions ended", "SessionsEnded")}), &refusals)
        }},
    })
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
    let mut doc = json!({
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
            "/api/kiln/v1/events": {"get": {
                "summary": "The event journal: every change, who asked, through what, when, its target and outcome",
                "operationId": "listEvents",
                "parameters": [
                    {"name": "after", "in": "query", "required": false,
                        "description": "Only events numbered above this (to follow: the last id seen)",
                        "schema": {"type": "integer"}},
                    {"name": "since", "in": "query", "required": false,
                        "description": "Only events at or after this time, milliseconds since the Unix epoch",
                        "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "required": false,
                        "description": "At most this many (and never more than 10,000)",
                        "schema": {"type": "integer", "minimum": 0}},
                    {"name": "order", "in": "query", "required": false,
                        "schema": {"type": "string", "enum": ["oldest", "newest"], "default": "oldest"}},
                    {"name": "who", "in": "query", "required": false,
                        "description": "Only this caller's events (`local`, a did:key, `schedule:3`); \
                            anyone but an admin sees only its own",
                        "schema": {"type": "string"}},
                    {"name": "action", "in": "query", "required": false,
                        "description": "Only events of this action (`pin`, `token create`, …)",
                        "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": json_response("The events", "EventList"),
                    "400": json_response("A malformed parameter", "Error"),
                    "403": json_response("Another identity's events, asked by one that is not an admin", "Error"),
                }
            }},
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
                    "401": json_response("No token (or a bad one) over TCP", "Error"),
                    "403": json_response("The token's identity is not a reader", "Error"),
                }
            }},
        },
        "components": {"schemas": schemas()},
    });
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), build_paths()) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), auth_paths()) {
        paths.extend(more);
    }
    if let (Some(s), Value::Object(more)) =
        (doc["components"]["schemas"].as_object_mut(), auth_schemas())
    {
        s.extend(more);
    }
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "kiln1_ biscuit token",
            "description": "A capability token (kiln token create, or POST /api/kiln/v1/auth/token). Needed on every TCP listener but for reading content through the gateway; the repository's Unix socket takes its owner for the local administrator."}
    });
    doc["security"] = json!([{"bearer": []}]);
    doc
}

/// `GET /api/kiln/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::spec;
    use crate::{AppState, NodeInfo};
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use std::sync::Arc;
    use tower::ServiceExt;

    fn app(dir: &std::path::Path) -> axum::Router {
        let store = kiln_store::Store::open(dir, kiln_store::StoreOptions::default()).unwrap();
        let builds = crate::BuildService::open(
            store.clone(),
            kiln_id::NodeKey::generate().unwrap(),
            dir.join("builds"),
            std::env::current_exe().unwrap(),
        )
        .unwrap();
        crate::auth::as_local(crate::api_router(AppState {
            builds,
            pinning: kiln_node::pinning::PinningService::new(store.clone(), Default::default()),
            store,
            node: Arc::new(NodeInfo {
                peer_id: "12D3KooWtest".into(),
                did: "did:key:z6Mktest".into(),
                public_key: vec![],
                agent_version: "kiln/test".into(),
                addresses: vec!["/ip4/127.0.0.1/tcp/5001/http".into()],
            }),
            metrics: None,
            keep_events: kiln_node::journal::DEFAULT_RETENTION,
            auth: std::sync::Arc::new(kiln_node::auth::Auth::new(
                kiln_id::NodeKey::generate().expect("key"),
            )),
            access: Default::default(),
        }))
    }

    /// Every property the schema requires is in the answer, recursively through `$ref`s.
    pub(crate) fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) {
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
                let uri = path.replace("{cid}", "bafkqaaa").replace("{id}", "1");
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
        for p in crate::native::PATHS
            .iter()
            .chain(&crate::builds::PATHS)
            .chain(&crate::auth::PATHS)
        {
            assert!(
                documented.iter().any(|d| d == p),
                "{p} is not in openapi.json"
            );
        }
    }
}
