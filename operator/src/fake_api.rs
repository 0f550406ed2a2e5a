//! An in-memory Kubernetes API server behind kube-rs's mocked client (`tower-test`), for the
//! reconciler tests and the reconcile bench.
//!
//! It serves what the controllers use, with an API server's observable behaviour: GET of an object
//! or a (label-selected) collection, POST (create, 409 when present), DELETE, and PATCH as
//! server-side apply (create or merge; `status` only through the `/status` subresource; lists of
//! conditions merged by `type`), JSON merge patch and JSON patch. It keeps `uid`, `resourceVersion`,
//! `generation` (bumped when the spec changes) and `creationTimestamp`. Tests read and change the
//! stored objects (e.g. to play the Deployment controller's part) and inject failures.
//!
//! Watches are not served: the tests call the reconcilers directly, as kube-rs's own examples do.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A handle on the fake API's objects; cloning it shares them.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Objects by their URL path (`/apis/apps/v1/namespaces/ns/deployments/name`).
    objects: BTreeMap<String, Value>,
    /// `METHOD path` of every request served, in order.
    requests: Vec<String>,
    resource_version: u64,
    /// Requests whose path contains the key fail once with the status code.
    failures: Vec<(String, u16)>,
    /// The field manager owning each entry of a status list-map: (object path, list, key).
    owners: BTreeMap<(String, &'static str, String), String>,
}

/// The URL path of an object: `apiVersion`, `kind`, namespace and name.
pub fn object_path(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", collection_path(api_version, kind, namespace))
}

/// The URL path of a kind's collection in a namespace (or cluster-wide).
pub fn collection_path(api_version: &str, kind: &str, namespace: Option<&str>) -> String {
    let base = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural =
        kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind))
            .plural;
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{plural}"),
        None => format!("{base}/{plural}"),
    }
}

fn path_of(object: &Value) -> String {
    object_path(
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

impl FakeApi {
    /// A client talking to a new, empty fake API (default namespace `default`).
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = FakeApi::default();
        let server = api.clone();
        tokio::spawn(async move {
            while let Some((request, reply)) = handle.next_request().await {
                let response = server.serve(request).await;
                reply.send_response(response);
            }
        });
        (Client::new(service, "default"), api)
    }

    /// Stores an object as-is (metadata filled in like a create).
    pub fn insert(&self, object: impl serde::Serialize) {
        let mut object = serde_json::to_value(object).expect("objects serialise");
        let mut state = self.state.lock().unwrap();
        state.fill_metadata(&mut object, None);
        state.objects.insert(path_of(&object), object);
    }

    /// Answers GETs of `path` with `value` as-is: what a service behind the API server's proxy
    /// (`…/services/NAME:PORT/proxy/…`) would return.
    pub fn serve_at(&self, path: &str, value: Value) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(path.to_string(), value);
    }

    /// The stored object, if any.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let path = object_path(api_version, kind, Some(namespace), name);
        self.state.lock().unwrap().objects.get(&path).cloned()
    }

    /// Changes a stored object in place (e.g. a Deployment's status, as its controller would).
    pub fn update(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let path = object_path(api_version, kind, Some(namespace), name);
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let rv = state.resource_version.to_string();
        let object = state
            .objects
            .get_mut(&path)
            .unwrap_or_else(|| panic!("no {path}"));
        change(object);
        object["metadata"]["resourceVersion"] = json!(rv);
    }

    /// Removes a stored object (as the garbage collector or a user would).
    pub fn remove(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let path = object_path(api_version, kind, Some(namespace), name);
        self.state.lock().unwrap().objects.remove(&path);
    }

    /// Every stored object of a kind, in path order.
    pub fn all(&self, kind: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .objects
            .values()
            .filter(|o| o["kind"] == kind)
            .cloned()
            .collect()
    }

    /// `METHOD path` of every request served so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Forgets the requests served so far.
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// The next request whose path contains `path_part` fails with `code`.
    pub fn fail_once(&self, path_part: &str, code: u16) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push((path_part.to_string(), code));
    }

    async fn serve(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = body.collect_bytes().await.unwrap_or_default();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut state = self.state.lock().unwrap();
        state.requests.push(format!("{} {path}", parts.method));
        if let Some(i) = state.failures.iter().position(|(p, _)| path.contains(p)) {
            let (_, code) = state.failures.remove(i);
            return status_response(code, "InternalError", "injected failure");
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return status_response(400, "BadRequest", &e.to_string()),
            }
        };
        state.handle(&parts.method, &path, &query, &content_type, body)
    }
}

impl State {
    fn handle(
        &mut self,
        method: &Method,
        path: &str,
        query: &str,
        content_type: &str,
        body: Value,
    ) -> Response<Body> {
        let (object_path, subresource) = match path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (path.to_string(), false),
        };
        if path == "/version" {
            return ok(
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                              "platform": "linux/amd64"}),
            );
        }
        match *method {
            Method::GET => match self.objects.get(&object_path) {
                Some(o) => ok(o),
                None if self.is_collection(path) => self.list(path, query),
                None => not_found(path),
            },
            Method::POST => {
                let mut object = body;
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let key = format!("{path}/{name}");
                if self.objects.contains_key(&key) {
                    return status_response(409, "AlreadyExists", &format!("{key} exists"));
                }
                self.fill_metadata(&mut object, None);
                self.objects.insert(key, object.clone());
                respond(StatusCode::CREATED, &object)
            }
            Method::DELETE => match self.objects.remove(&object_path) {
                Some(o) => ok(&o),
                None => not_found(path),
            },
            Method::PATCH => {
                let existing = self.objects.get(&object_path).cloned();
                let patched = if content_type.starts_with("application/apply-patch") {
                    let manager = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("fieldManager="))
                        .unwrap_or_default()
                        .to_string();
                    self.server_side_apply(
                        &object_path,
                        subresource,
                        &manager,
                        existing.clone(),
                        body,
                    )
                } else if content_type.starts_with("application/merge-patch") {
                    existing
                        .clone()
                        .ok_or_else(|| refused(not_found(path)))
                        .map(|mut current| {
                            json_patch::merge(&mut current, &body);
                            current
                        })
                } else if content_type.starts_with("application/json-patch") {
                    existing
                        .clone()
                        .ok_or_else(|| refused(not_found(path)))
                        .and_then(|current| json_patch_of(current, body))
                } else {
                    Err(refused(status_response(
                        415,
                        "UnsupportedMediaType",
                        content_type,
                    )))
                };
                let mut patched = match patched {
                    Ok(patched) => patched,
                    Err(response) => return *response,
                };
                self.fill_metadata(&mut patched, existing.as_ref());
                self.objects.insert(object_path, patched.clone());
                ok(&patched)
            }
            _ => status_response(405, "MethodNotAllowed", method.as_str()),
        }
    }

    /// A server-side apply by `manager` of `body` onto `existing`: the status only through the
    /// `/status` subresource, everything else only through the object.
    fn server_side_apply(
        &mut self,
        object_path: &str,
        subresource: bool,
        manager: &str,
        existing: Option<Value>,
        mut body: Value,
    ) -> Result<Value, Refused> {
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        let Some(mut current) = existing else {
            return if subresource {
                Err(refused(not_found(&format!("{object_path}/status"))))
            } else {
                Ok(body)
            };
        };
        if subresource {
            self.release_omitted(object_path, manager, &mut current, &body);
            merge(&mut current["status"], &body["status"], "status");
        } else {
            let status = current["status"].take();
            merge(&mut current, &body, "");
            current["status"] = status;
            if current["status"].is_null() {
                current.as_object_mut().map(|o| o.remove("status"));
            }
        }
        Ok(current)
    }

    /// Server-side apply's ownership of list-map entries: an entry a manager applied before and
    /// omits now is removed (unless another manager owns it); what it applies now is its own.
    fn release_omitted(&mut self, path: &str, manager: &str, current: &mut Value, body: &Value) {
        for (list, key) in [("conditions", "type"), ("pendingEscalations", "id")] {
            let applied: Vec<String> = body["status"][list]
                .as_array()
                .map(|a| a.iter().map(|x| x[key].to_string()).collect())
                .unwrap_or_default();
            let items = current
                .get_mut("status")
                .and_then(|s| s.get_mut(list))
                .and_then(Value::as_array_mut);
            if let Some(items) = items {
                items.retain(|item| {
                    let k = item[key].to_string();
                    let owner = self.owners.get(&(path.to_string(), list, k.clone()));
                    applied.contains(&k) || owner.is_none_or(|o| o != manager)
                });
            }
            for k in applied {
                self.owners
                    .insert((path.to_string(), list, k), manager.to_string());
            }
        }
    }

    /// Sets uid, resourceVersion, creationTimestamp and generation the way an API server does.
    fn fill_metadata(&mut self, object: &mut Value, before: Option<&Value>) {
        self.resource_version += 1;
        let meta = &mut object["metadata"];
        match before {
            Some(b) => {
                meta["uid"] = b["metadata"]["uid"].clone();
                meta["creationTimestamp"] = b["metadata"]["creationTimestamp"].clone();
                let generation = b["metadata"]["generation"].as_i64().unwrap_or(1);
                let changed = b.get("spec") != object.get("spec");
                object["metadata"]["generation"] =
                    json!(if changed { generation + 1 } else { generation });
            }
            None => {
                if meta["uid"].is_null() {
                    meta["uid"] = json!(format!("uid-{}", self.resource_version));
                }
                meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                if meta["generation"].is_null() {
                    meta["generation"] = json!(1);
                }
            }
        }
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
    }

    fn is_collection(&self, path: &str) -> bool {
        let segments = path.trim_start_matches('/').split('/').count();
        // /api/v1/<plural>, /api/v1/namespaces/ns/<plural>, /apis/g/v/<plural>, /apis/g/v/namespaces/ns/<plural>
        let collection = if path.starts_with("/apis/") {
            segments == 4 || segments == 6
        } else {
            segments == 3 || segments == 5
        };
        collection && !self.objects.contains_key(path)
    }

    fn list(&self, path: &str, query: &str) -> Response<Body> {
        let selector: Vec<(String, String)> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("labelSelector="))
            .flat_map(|s| {
                percent_decode(s)
                    .split(',')
                    .filter_map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let cluster_wide = !path.contains("/namespaces/");
        let items: Vec<&Value> = self
            .objects
            .iter()
            .filter(|(key, _)| {
                if cluster_wide {
                    let plural = path.rsplit('/').next().unwrap_or_default();
                    let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or_default();
                    key.starts_with(base) && key.split('/').nth_back(1) == Some(plural)
                } else {
                    key.rsplit_once('/').map(|(c, _)| c) == Some(path)
                }
            })
            .map(|(_, o)| o)
            .filter(|o| {
                selector
                    .iter()
                    .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v))
            })
            .collect();
        ok(&json!({
            "apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": items,
        }))
    }
}

/// The response of a refused patch (boxed: a response is large next to a `Value`).
type Refused = Box<Response<Body>>;

fn refused(response: Response<Body>) -> Refused {
    Box::new(response)
}

/// A JSON patch (RFC 6902) of `current`.
fn json_patch_of(mut current: Value, body: Value) -> Result<Value, Refused> {
    let patch: json_patch::Patch = serde_json::from_value(body)
        .map_err(|e| refused(status_response(400, "BadRequest", &e.to_string())))?;
    // like the API server's JSON patch, `test` of an absent field against null passes
    for op in &patch.0 {
        if let json_patch::PatchOperation::Test(t) = op {
            let path = t.path.to_string();
            if t.value.is_null() && current.pointer(&path).is_none() {
                if let Some((parent, field)) = path.rsplit_once('/') {
                    if let Some(Value::Object(o)) = current.pointer_mut(parent) {
                        o.insert(field.to_string(), Value::Null);
                    }
                }
            }
        }
    }
    json_patch::patch(&mut current, &patch)
        .map_err(|e| refused(status_response(422, "Invalid", &e.to_string())))?;
    Ok(current)
}

/// Server-side apply's merge, as far as the controllers rely on it: maps merge key by key, lists of
/// conditions (by `type`) and pending escalations (by `id`) merge by key, other lists are replaced.
fn merge(target: &mut Value, patch: &Value, field: &str) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v, k);
            }
        }
        (Value::Array(t), Value::Array(p))
            if field == "conditions" || field == "pendingEscalations" =>
        {
            let key = if field == "conditions" { "type" } else { "id" };
            for item in p {
                match t.iter_mut().find(|x| x[key] == item[key]) {
                    Some(existing) => *existing = item.clone(),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(code: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(value).expect("JSON")))
        .expect("a response")
}

fn ok(value: &Value) -> Response<Body> {
    respond(StatusCode::OK, value)
}

fn not_found(path: &str) -> Response<Body> {
    status_response(404, "NotFound", &format!("{path} not found"))
}

fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    respond(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "reason": reason, "message": message, "code": code}),
    )
}
