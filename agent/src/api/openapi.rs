//! The OpenAPI 3 document of the coordinator's routes.

use serde_json::{json, Value};

/// The OpenAPI 3 document of the routes.
pub fn openapi() -> Value {
    let page_params = json!([
        {"name": "symbol", "in": "query", "schema": {"type": "string", "pattern": "^[A-Z0-9]+$"}},
        {"name": "from", "in": "query", "schema": {"type": "integer", "format": "int64"}, "description": "ms since the epoch, inclusive"},
        {"name": "to", "in": "query", "schema": {"type": "integer", "format": "int64"}, "description": "ms since the epoch, inclusive"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
    ]);
    let error = json!({"description": "bad input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let list = |what: &str| json!({"get": {"summary": format!("List {what}, newest first"), "parameters": page_params, "responses": {"200": {"description": format!("a page of {what}")}, "400": error}}});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "ia-agents coordinator API", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/api/v1/decisions": list("decisions"),
            "/api/v1/orders": list("orders"),
            "/api/v1/decisions/{id}": {"get": {"summary": "One decision with every round's tally and its debate (every opinion with its reasoning and evidence)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the decision"}, "400": error, "404": error}}},
            "/api/v1/assistants": {"get": {"summary": "Assistants: vote weight, role, last heartbeat, health and their opinion in the latest decision", "responses": {"200": {"description": "assistants"}}}},
            "/api/v1/escalations": {"get": {"summary": "Escalations waiting for a human, oldest first", "responses": {"200": {"description": "open escalations"}}}},
            "/api/v1/equity": {"get": {"summary": "The latest portfolio snapshots, oldest first (the equity curve)",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5000, "default": 5000}}],
                "responses": {"200": {"description": "snapshots {at, equity, cash}"}, "400": error}}},
            "/api/v1/info": {"get": {"summary": "The Strategy this coordinator serves and its version", "responses": {"200": {"description": "info"}}}},
            "/": {"get": {"summary": "The web console (HTML; asks for the API token once)", "responses": {"200": {"description": "the console"}}}},
            "/api": {"get": {"summary": "This document, readable", "responses": {"200": {"description": "HTML"}}}},
            "/api/v1/portfolio": {"get": {"summary": "Positions and the latest equity", "responses": {"200": {"description": "portfolio"}}}},
            "/api/v1/positions": {"get": {"summary": "Open positions", "responses": {"200": {"description": "positions"}}}},
            "/api/v1/escalations/{id}/{action}": {"post": {
                "summary": "Approve or reject an escalated decision",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": true, "schema": {"type": "string", "enum": ["approve", "reject"]}}
                ],
                "responses": {"202": {"description": "relayed to the coordinator"}, "401": error, "403": error, "429": error}
            }},
            "/api/v1/stream": {"get": {"summary": "WebSocket of events as JSON text frames: {type: decision, decision} (the Decision message, debate included), {type: escalation, escalation}, {type: resolution, id, outcome: approved|rejected|timedOut}", "responses": {"101": {"description": "switching protocols"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string", "nullable": true}}, "required": ["error"]}}
        }
    })
}
