//! An in-memory Kubernetes API server behind kube-rs's mocked client (`tower-test`), for the
//! reconciler tests and the reconcile bench.
//!
//! It serves what the controllers and the leader election use, with an API server's observable
//! behaviour: GET of an object or a (label-selected) collection, POST (create, 409 when present),
//! PUT (replace; 404 when missing), DELETE, and PATCH as server-side apply (create or merge;
//! `status` only through the `/status` subresource; lists of conditions merged by `type`), JSON
//! merge patch, strategic merge patch (built-in kinds only, as on an API server, and without
//! lists) and JSON patch. It keeps `uid`, `resourceVersion`, `generation` (bumped when the spec
//! changes) and `creationTimestamp`, and each field's managers (`fields`), though it does not
//! return `managedFields`.
//!
//! Writes are checked as an API server checks them: a PUT or patch carrying a `resourceVersion`
//! other than the stored one is refused with 409 `Conflict` (optimistic concurrency), and so is a
//! server-side apply without `force` that would change a field another manager owns. Tests read
//! and change the stored objects (e.g. to play the Deployment controller's part) and inject
//! failures.
//!
//! Watches are not served: the tests call the reconcilers directly, as kube-rs's own examples do.

mod fields;

use fields::{Fields, Managed, Operation};
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
    /// The managers of each object's fields, by object path.
    managed: BTreeMap<String, Managed>,
}

/// One request, as the handlers read it.
struct Call {
    method: Method,
    path: String,
    query: String,
    content_type: String,
    user_agent: String,
    body: Value,
}

impl Call {
    /// A query parameter, decoded.
    fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(percent_decode)
    }

    /// The field manager: `fieldManager`, else the user agent's product, as on an API server.
    fn manager(&self) -> String {
        self.param("fieldManager").unwrap_or_else(|| {
            let product = self.user_agent.split('/').next().unwrap_or_default();
            product.to_string()
        })
    }
}

/// Who writes, and how.
struct Write {
    manager: String,
    operation: Operation,
    /// The fields a server-side apply applies (`None` for other writes).
    applied: Option<Fields>,
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
        let api = FakeApi::default();
        (api.client(), api)
    }

    /// Another client of this API, as a second process would have (default namespace
    /// `default`). It is served by a task of the current tokio runtime, so it stops answering
    /// when that runtime shuts down.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, reply)) = handle.next_request().await {
                let response = server.serve(request).await;
                reply.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    /// Stores an object as-is (metadata filled in like a create), owned by no field manager.
    pub fn insert(&self, object: impl serde::Serialize) {
        let mut object = serde_json::to_value(object).expect("objects serialise");
        let mut state = self.state.lock().unwrap();
        state.fill_metadata(&mut object, None);
        let path = path_of(&object);
        state.managed.remove(&path);
        state.objects.insert(path, object);
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

    /// Changes a stored object in place (e.g. a Deployment's status, as its controller would);
    /// the fields it removes are nobody's any more, those it changes keep their managers.
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
        let before = object.clone();
        change(object);
        object["metadata"]["resourceVersion"] = json!(rv);
        let after = object.clone();
        if let Some(managed) = state.managed.get_mut(&path) {
            managed.prune(&before, &after);
        }
    }

    /// Removes a stored object (as the garbage collector or a user would).
    pub fn remove(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let path = object_path(api_version, kind, Some(namespace), name);
        let mut state = self.state.lock().unwrap();
        state.objects.remove(&path);
        state.managed.remove(&path);
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
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let user_agent = header(http::header::USER_AGENT);
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
        state.handle(&Call {
            method: parts.method,
            path,
            query,
            content_type,
            user_agent,
            body,
        })
    }
}

impl State {
    fn handle(&mut self, call: &Call) -> Response<Body> {
        if call.path == "/version" {
            return ok(
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                              "platform": "linux/amd64"}),
            );
        }
        let (object_path, subresource) = match call.path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (call.path.clone(), false),
        };
        match call.method {
            Method::GET => match self.objects.get(&object_path) {
                Some(o) => ok(o),
                None if self.is_collection(&call.path) => self.list(&call.path, &call.query),
                None => not_found(&call.path),
            },
            Method::POST => self.create(call),
            Method::PUT => self.replace(call, &object_path, subresource),
            Method::DELETE => {
                self.managed.remove(&object_path);
                match self.objects.remove(&object_path) {
                    Some(o) => ok(&o),
                    None => not_found(&call.path),
                }
            }
            Method::PATCH => self.patch(call, &object_path, subresource),
            _ => status_response(405, "MethodNotAllowed", call.method.as_str()),
        }
    }

    /// POST: creates the object, 409 `AlreadyExists` when present.
    fn create(&mut self, call: &Call) -> Response<Body> {
        let mut object = call.body.clone();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let key = format!("{}/{name}", call.path);
        if self.objects.contains_key(&key) {
            return status_response(409, "AlreadyExists", &format!("{key} exists"));
        }
        name_from_path(&mut object, &key);
        self.fill_metadata(&mut object, None);
        let mut managed = Managed::default();
        managed.record(
            &call.manager(),
            Operation::Update,
            None,
            &Value::Null,
            &object,
        );
        self.managed.insert(key.clone(), managed);
        self.objects.insert(key, object.clone());
        respond(StatusCode::CREATED, &object)
    }

    /// PUT: replaces the object (or, through `/status`, its status), 404 when missing.
    fn replace(&mut self, call: &Call, object_path: &str, subresource: bool) -> Response<Body> {
        let Some(existing) = self.objects.get(object_path).cloned() else {
            return not_found(&call.path);
        };
        let (mut object, status) = if subresource {
            (existing.clone(), call.body["status"].clone())
        } else {
            (call.body.clone(), existing["status"].clone())
        };
        object["status"] = status;
        if object["status"].is_null() {
            object.as_object_mut().map(|o| o.remove("status"));
        }
        name_from_path(&mut object, object_path);
        let write = Write {
            manager: call.manager(),
            operation: Operation::Update,
            applied: None,
        };
        self.store(call, object_path, Some(existing), object, write)
    }

    /// PATCH: server-side apply, JSON merge patch, strategic merge patch or JSON patch.
    fn patch(&mut self, call: &Call, object_path: &str, subresource: bool) -> Response<Body> {
        let existing = self.objects.get(object_path).cloned();
        let manager = call.manager();
        let content_type = call.content_type.as_str();
        let mut write = Write {
            manager,
            operation: Operation::Update,
            applied: None,
        };
        let patched = if content_type.starts_with("application/apply-patch") {
            let force = call.param("force").as_deref() == Some("true");
            write.operation = Operation::Apply;
            self.server_side_apply(
                object_path,
                subresource,
                &write.manager,
                force,
                &existing,
                call,
            )
            .map(|(patched, applied)| {
                write.applied = Some(applied);
                patched
            })
        } else if content_type.starts_with("application/merge-patch") {
            existing
                .clone()
                .ok_or_else(|| refused(not_found(&call.path)))
                .map(|mut current| {
                    json_patch::merge(&mut current, &call.body);
                    current
                })
        } else if content_type.starts_with("application/strategic-merge-patch") {
            existing
                .clone()
                .ok_or_else(|| refused(not_found(&call.path)))
                .and_then(|current| strategic_merge_of(&call.path, current, &call.body))
        } else if content_type.starts_with("application/json-patch") {
            existing
                .clone()
                .ok_or_else(|| refused(not_found(&call.path)))
                .and_then(|current| json_patch_of(current, call.body.clone()))
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
        name_from_path(&mut patched, object_path);
        self.store(call, object_path, existing, patched, write)
    }

    /// Stores a replaced or patched object: refused with 409 `Conflict` when the request names a
    /// `resourceVersion` other than the stored one; else its managers are recorded and its
    /// metadata filled.
    fn store(
        &mut self,
        call: &Call,
        object_path: &str,
        existing: Option<Value>,
        mut object: Value,
        write: Write,
    ) -> Response<Body> {
        if let Some(existing) = &existing {
            let stored = &existing["metadata"]["resourceVersion"];
            let wanted = &call.body["metadata"]["resourceVersion"];
            if wanted.as_str().is_some_and(|v| !v.is_empty()) && wanted != stored {
                return status_response(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {object_path}: the object has been \
                         modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
        }
        let before = existing.clone().unwrap_or(Value::Null);
        self.managed
            .entry(object_path.to_string())
            .or_default()
            .record(
                &write.manager,
                write.operation,
                write.applied,
                &before,
                &object,
            );
        self.fill_metadata(&mut object, existing.as_ref());
        self.objects.insert(object_path.to_string(), object.clone());
        ok(&object)
    }

    /// A server-side apply by `manager` of the call's body onto `existing`: the status only
    /// through the `/status` subresource, everything else only through the object. Without
    /// `force`, changing a field another manager owns is a 409 `Conflict`. Returns the object and
    /// the fields the manager now applies.
    fn server_side_apply(
        &self,
        object_path: &str,
        subresource: bool,
        manager: &str,
        force: bool,
        existing: &Option<Value>,
        call: &Call,
    ) -> Result<(Value, Fields), Refused> {
        let mut body = call.body.clone();
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        let applied = if subresource {
            fields::fields_under(&body, "status")
        } else {
            fields::fields_but_status(&body)
        };
        let Some(mut current) = existing.clone() else {
            return if subresource {
                Err(refused(not_found(&call.path)))
            } else {
                Ok((body, applied))
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
        if !force {
            let conflicts = self
                .managed
                .get(object_path)
                .map(|m| m.conflicts(manager, existing.as_ref().unwrap_or(&Value::Null), &current))
                .unwrap_or_default();
            if !conflicts.is_empty() {
                return Err(refused(apply_conflict(&conflicts)));
            }
        }
        Ok((current, applied))
    }

    /// Server-side apply's ownership of list-map entries: an entry a manager applied before and
    /// omits now is removed, unless another manager owns some of it.
    fn release_omitted(&self, path: &str, manager: &str, current: &mut Value, body: &Value) {
        let managed = self.managed.get(path);
        for (list, key) in [("conditions", "type"), ("pendingEscalations", "id")] {
            let applied: Vec<&Value> = body["status"][list]
                .as_array()
                .map(|a| a.iter().map(|x| &x[key]).collect())
                .unwrap_or_default();
            let items = current
                .get_mut("status")
                .and_then(|s| s.get_mut(list))
                .and_then(Value::as_array_mut);
            if let Some(items) = items {
                let list_path = format!("status.{list}");
                items.retain(|item| {
                    let entry = fields::entry_path(&list_path, &item[key]);
                    applied.contains(&&item[key])
                        || !managed.is_some_and(|m| {
                            m.applied_under(manager, &entry) && !m.others_under(manager, &entry)
                        })
                });
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

/// A strategic merge patch of `current`, as far as the fake goes: like a JSON merge patch, which
/// it is for maps and scalars; lists (merged by key for some fields) and `$` directives are
/// refused rather than merged wrongly. Custom resources take no strategic merge patch (415), as on
/// an API server.
fn strategic_merge_of(path: &str, mut current: Value, patch: &Value) -> Result<Value, Refused> {
    let group = path
        .strip_prefix("/apis/")
        .and_then(|p| p.split('/').next())
        .unwrap_or_default();
    let built_in = group.is_empty()
        || group.ends_with(".k8s.io")
        || ["apps", "batch", "policy", "autoscaling"].contains(&group);
    if !built_in {
        return Err(refused(status_response(
            415,
            "UnsupportedMediaType",
            "strategic merge patch is not supported for custom resources",
        )));
    }
    fn plain(v: &Value) -> bool {
        match v {
            Value::Array(_) => false,
            Value::Object(o) => o.iter().all(|(k, v)| !k.starts_with('$') && plain(v)),
            _ => true,
        }
    }
    if !plain(patch) {
        return Err(refused(status_response(
            400,
            "BadRequest",
            "the fake API merges no lists or directives in a strategic merge patch",
        )));
    }
    json_patch::merge(&mut current, patch);
    Ok(current)
}

/// What an API server answers a server-side apply that would take fields from other managers.
fn apply_conflict(conflicts: &fields::Conflicts) -> Response<Body> {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, field)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager:?}"),
                   "field": format!(".{field}")})
        })
        .collect();
    let list: Vec<String> = conflicts
        .iter()
        .map(|(manager, field)| format!("conflict with {manager:?}: .{field}"))
        .collect();
    let message = format!(
        "Apply failed with {} conflict{}: {}",
        conflicts.len(),
        if conflicts.len() == 1 { "" } else { "s" },
        list.join(", ")
    );
    respond(
        StatusCode::CONFLICT,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "reason": "Conflict", "message": message, "code": 409,
                "details": {"causes": causes}}),
    )
}

/// Sets a written object's name, and namespace, from its URL path when the body leaves them out,
/// as an API server does.
fn name_from_path(object: &mut Value, path: &str) {
    let segments: Vec<&str> = path.split('/').collect();
    let meta = &mut object["metadata"];
    if meta["name"].is_null() {
        meta["name"] = json!(segments.last().copied().unwrap_or_default());
    }
    // …/namespaces/NS/PLURAL/NAME (not /api/v1/namespaces/NAME, a Namespace)
    let namespace = segments
        .iter()
        .position(|s| *s == "namespaces")
        .filter(|i| i + 3 < segments.len())
        .map(|i| segments[i + 1]);
    if let (Some(ns), true) = (namespace, meta["namespace"].is_null()) {
        meta["namespace"] = json!(ns);
    }
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
