//! Task templates registered at run time, in tasker-core's task-template spirit: a name, a namespace, a
//! version and a DAG of steps, each with a handler callable, dependencies and a retry policy. Read from
//! JSON (or YAML) text or files; kept for the life of the process (leaked: a template is `'static` like the
//! built-ins, and a process registers a handful).
//!
//! A registered template is found by [`crate::templates::template`] under its key,
//! `namespace/name@version`, which is what a task's row stores. Its canonical definition (the JSON of
//! [`TemplateDefinition`]) is also stored with the first task created from it (`task_templates`), so any
//! process claiming that task can register it from the store without having read the file.
//!
//! Invariants: a key names one definition for the life of the process (registering the same definition
//! again returns the template already held; a different one under the same key is refused); every
//! registered template has at least one step, unique step names, dependencies that name steps of the
//! template, no cycle, and its steps ordered parents first.

use crate::templates::{StepTemplate, Template, BUILT_IN};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

/// A task template as a file holds it (tasker-core's field names; `namespace_name` and `depends_on_steps`
/// are accepted for `namespace` and `dependencies`). Keys it does not know (tasker-core's `task_handler`,
/// `input_schema`, `domain_events`, ...) are ignored.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct TemplateDefinition {
    /// Task name.
    pub name: String,
    /// Namespace the template belongs to.
    #[serde(alias = "namespace_name")]
    pub namespace: String,
    /// Template version.
    pub version: String,
    /// What the task does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The steps (any order; registration orders them parents first).
    pub steps: Vec<StepDefinition>,
}

/// One step of a [`TemplateDefinition`].
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct StepDefinition {
    /// Step name, unique in the template.
    pub name: String,
    /// What the step does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The handler that runs it.
    pub handler: HandlerDefinition,
    /// Names of the steps it depends on.
    #[serde(default, alias = "depends_on_steps")]
    pub dependencies: Vec<String>,
    /// Its retry policy.
    #[serde(default)]
    pub retry: RetryDefinition,
    /// How long a handler may take (informational: the worker's completion timeout applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// A step's handler.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct HandlerDefinition {
    /// The handler's name in the worker's registry.
    pub callable: String,
    /// Handed to the handler as `handler.initialization` (default `{}`).
    #[serde(default = "empty_object")]
    pub initialization: Value,
    /// Method to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Resolver to find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
}

/// A step's retry policy: a step that is not retryable gets one attempt.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RetryDefinition {
    /// Whether a retryable failure is tried again (default true).
    #[serde(default = "yes")]
    pub retryable: bool,
    /// Attempts in all, at least 1 (default 3).
    #[serde(default = "three")]
    pub max_attempts: i64,
    /// Backoff kind, informational (default `exponential`; the store's backoff applies).
    #[serde(default = "exponential")]
    pub backoff: String,
    /// First backoff, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    /// Longest backoff, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
}

impl Default for RetryDefinition {
    fn default() -> Self {
        Self {
            retryable: true,
            max_attempts: 3,
            backoff: exponential(),
            backoff_base_ms: None,
            max_backoff_ms: None,
        }
    }
}

fn empty_object() -> Value {
    json!({})
}
fn yes() -> bool {
    true
}
fn three() -> i64 {
    3
}
fn exponential() -> String {
    "exponential".into()
}

/// Why a template was not registered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read (or a directory listed).
    #[error("template file `{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a template (JSON or YAML syntax, a missing or mistyped field).
    #[error("template {origin}: {message}")]
    Parse {
        /// The file, or `text`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The template breaks a rule (no steps, a duplicate step, an unknown dependency, a cycle, a bad
    /// attempts count, an empty name).
    #[error("template `{key}`: {message}")]
    Invalid {
        /// Its key (`namespace/name@version`).
        key: String,
        /// The rule broken.
        message: String,
    },
    /// Another definition is registered under the same key (bump the version to change a template).
    #[error("template `{0}` is already registered with a different definition; register a new version instead")]
    Conflict(String),
    /// The name is a built-in template's.
    #[error("template name `{0}` is a built-in template's")]
    BuiltIn(String),
}

impl TemplateDefinition {
    /// The key a task of this template stores: `namespace/name@version`.
    pub fn key(&self) -> String {
        key_of(&self.namespace, &self.name, &self.version)
    }
}

/// The key of a registered template.
pub fn key_of(namespace: &str, name: &str, version: &str) -> String {
    format!("{namespace}/{name}@{version}")
}

/// Whether `name` has the shape of a registered template's key (a built-in's name never has).
pub fn is_key(name: &str) -> bool {
    name.contains('/') && name.contains('@')
}

/// The registered templates by key.
fn registry() -> &'static RwLock<HashMap<String, (&'static Template, TemplateDefinition)>> {
    static REGISTRY: OnceLock<RwLock<HashMap<String, (&'static Template, TemplateDefinition)>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The registered template with key `key`.
pub fn registered(key: &str) -> Option<&'static Template> {
    let map = registry().read().unwrap_or_else(|p| p.into_inner());
    map.get(key).map(|(t, _)| *t)
}

/// The canonical definition JSON of the registered template `key` (what the store keeps beside its tasks).
pub fn definition_json(key: &str) -> Option<String> {
    let map = registry().read().unwrap_or_else(|p| p.into_inner());
    map.get(key).and_then(|(_, d)| serde_json::to_string(d).ok())
}

/// Whether `text` (a definition as the store keeps it) defines the template registered under `key`, once
/// its defaults are filled in and its steps ordered.
pub fn same_definition(key: &str, text: &str) -> bool {
    let Ok(def) = serde_json::from_str::<TemplateDefinition>(text) else {
        return false;
    };
    let Ok(def) = checked(def) else {
        return false;
    };
    let map = registry().read().unwrap_or_else(|p| p.into_inner());
    map.get(key).is_some_and(|(_, held)| *held == def)
}

/// The templates a task can be created from: `(namespace, name, version)`, the built-ins first (namespace
/// `*`: any), then the registered ones in key order.
pub fn known() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = BUILT_IN
        .iter()
        .map(|t| ("*".to_string(), t.name.to_string(), t.version.to_string()))
        .collect();
    let map = registry().read().unwrap_or_else(|p| p.into_inner());
    let mut registered: Vec<_> = map
        .values()
        .map(|(_, d)| (d.namespace.clone(), d.name.clone(), d.version.clone()))
        .collect();
    registered.sort();
    out.extend(registered);
    out
}

/// Registers `def` (checked, steps ordered parents first); returns the template, the one already held
/// when the same definition was registered before.
pub fn register(def: TemplateDefinition) -> Result<&'static Template, TemplateError> {
    let def = checked(def)?;
    let key = def.key();
    let mut map = registry().write().unwrap_or_else(|p| p.into_inner());
    if let Some((t, held)) = map.get(&key) {
        return if *held == def {
            Ok(*t)
        } else {
            Err(TemplateError::Conflict(key))
        };
    }
    let t = leak(&def, &key);
    map.insert(key, (t, def));
    Ok(t)
}

/// Registers the template in `text` (JSON, or YAML when `yaml`); `origin` names it in errors.
pub fn register_text(text: &str, yaml: bool, origin: &str) -> Result<&'static Template, TemplateError> {
    let parsed = if yaml {
        parse_yaml(text)
    } else {
        serde_json::from_str::<TemplateDefinition>(text).map_err(|e| e.to_string())
    };
    let def = parsed.map_err(|message| TemplateError::Parse {
        origin: origin.to_string(),
        message,
    })?;
    register(def)
}

#[cfg(feature = "yaml")]
fn parse_yaml(text: &str) -> Result<TemplateDefinition, String> {
    serde_norway::from_str(text).map_err(|e| e.to_string())
}

#[cfg(not(feature = "yaml"))]
fn parse_yaml(_text: &str) -> Result<TemplateDefinition, String> {
    Err("YAML templates need tasker-store's `yaml` feature; use JSON".into())
}

/// Registers the template file at `path` (`.json`; `.yaml` / `.yml`), or every such file in the directory
/// `path` (in name order; other files are skipped). Returns the templates registered. Stops at the first
/// failure (templates registered before it stay registered).
pub fn register_path(path: &Path) -> Result<Vec<&'static Template>, TemplateError> {
    let io = |source| TemplateError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && format_of(p).is_some())
            .collect();
        files.sort();
        return files.iter().map(|f| register_file(f)).collect();
    }
    register_file(path).map(|t| vec![t])
}

/// `Some(true)` for a YAML file name, `Some(false)` for JSON, None for anything else.
fn format_of(path: &Path) -> Option<bool> {
    match path.extension()?.to_str()? {
        "json" => Some(false),
        "yaml" | "yml" => Some(true),
        _ => None,
    }
}

fn register_file(path: &Path) -> Result<&'static Template, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let yaml = format_of(path).unwrap_or(false);
    register_text(&text, yaml, &format!("file `{}`", path.display()))
}

/// `def` checked against the invariants, its steps in a parents-first order (stable: a template already in
/// that order keeps it).
fn checked(mut def: TemplateDefinition) -> Result<TemplateDefinition, TemplateError> {
    let key = def.key();
    let invalid = |message: String| TemplateError::Invalid {
        key: key.clone(),
        message,
    };
    for (what, value) in [
        ("name", &def.name),
        ("namespace", &def.namespace),
        ("version", &def.version),
    ] {
        if value.trim().is_empty() || value.contains(['/', '@']) {
            return Err(invalid(format!("{what} `{value}` is empty or holds `/` or `@`")));
        }
    }
    if BUILT_IN.iter().any(|t| t.name == def.name || t.short_name == def.name) {
        return Err(TemplateError::BuiltIn(def.name));
    }
    if def.steps.is_empty() {
        return Err(invalid("it has no steps".into()));
    }
    let mut index = HashMap::new();
    for (i, s) in def.steps.iter().enumerate() {
        if s.name.trim().is_empty() || s.handler.callable.trim().is_empty() {
            return Err(invalid(format!("step {i} has an empty name or handler callable")));
        }
        if index.insert(s.name.clone(), i).is_some() {
            return Err(invalid(format!("two steps are called `{}`", s.name)));
        }
        if s.retry.max_attempts < 1 {
            return Err(invalid(format!("step `{}` has max_attempts < 1", s.name)));
        }
    }
    for s in &def.steps {
        for d in &s.dependencies {
            if !index.contains_key(d) {
                return Err(invalid(format!(
                    "step `{}` depends on `{d}`, which is no step of it",
                    s.name
                )));
            }
        }
    }
    // Kahn's order, taking the earliest listed ready step each time.
    let mut placed = vec![false; def.steps.len()];
    let mut order = Vec::with_capacity(def.steps.len());
    while order.len() < def.steps.len() {
        let next = (0..def.steps.len())
            .find(|&i| !placed[i] && (def.steps[i].dependencies.iter()).all(|d| placed[index[d.as_str()]]));
        let Some(i) = next else {
            let stuck: Vec<&str> = (0..def.steps.len())
                .filter(|&i| !placed[i])
                .map(|i| def.steps[i].name.as_str())
                .collect();
            return Err(invalid(format!("its dependencies form a cycle among {stuck:?}")));
        };
        placed[i] = true;
        order.push(i);
    }
    let mut steps: Vec<Option<StepDefinition>> = std::mem::take(&mut def.steps).into_iter().map(Some).collect();
    def.steps = order.into_iter().filter_map(|i| steps[i].take()).collect();
    Ok(def)
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// The `'static` template of a checked definition.
fn leak(def: &TemplateDefinition, key: &str) -> &'static Template {
    let steps: Vec<StepTemplate> = def
        .steps
        .iter()
        .map(|s| {
            let attempts = if s.retry.retryable { s.retry.max_attempts } else { 1 };
            let deps: Vec<&'static str> = s.dependencies.iter().map(|d| leak_str(d)).collect();
            StepTemplate {
                name: leak_str(&s.name),
                handler: leak_str(&s.handler.callable),
                operation: "",
                dependencies: Box::leak(deps.into_boxed_slice()),
                max_attempts: Some(attempts),
                definition: Some(leak_str(&step_definition(s).to_string())),
            }
        })
        .collect();
    Box::leak(Box::new(Template {
        short_name: leak_str(key),
        name: leak_str(&def.name),
        version: leak_str(&def.version),
        namespace: Some(leak_str(&def.namespace)),
        max_attempts: 3,
        steps: Box::leak(steps.into_boxed_slice()),
    }))
}

/// A registered step's `step_definition`, shaped like a built-in step's.
fn step_definition(s: &StepDefinition) -> Value {
    json!({
        "name": s.name,
        "description": s.description,
        "handler": {
            "handler_class": s.handler.callable,
            "callable": s.handler.callable,
            "initialization": s.handler.initialization,
            "method": s.handler.method,
            "resolver": s.handler.resolver
        },
        "type": "standard",
        "system_dependency": null,
        "dependencies": s.dependencies,
        "retry": {
            "retryable": s.retry.retryable,
            "max_attempts": s.retry.max_attempts,
            "backoff": s.retry.backoff,
            "backoff_base_ms": s.retry.backoff_base_ms,
            "max_backoff_ms": s.retry.max_backoff_ms
        },
        "timeout_seconds": s.timeout_seconds,
        "publishes_events": []
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::template;

    fn def(name: &str, steps: Value) -> TemplateDefinition {
        serde_json::from_value(json!({"name": name, "namespace_name": "unit", "version": "1.0.0", "steps": steps}))
            .unwrap()
    }

    #[test]
    fn registration_orders_parents_first_and_is_found_by_key() {
        let d = def(
            "unit_order",
            json!([
                {"name": "b", "handler": {"callable": "B"}, "depends_on_steps": ["a"],
                 "retry": {"retryable": false, "max_attempts": 5}},
                {"name": "a", "handler": {"callable": "A", "initialization": {"k": 1}}}
            ]),
        );
        let t = register(d.clone()).unwrap();
        assert_eq!(t.short_name, "unit/unit_order@1.0.0");
        assert_eq!(t.steps.iter().map(|s| s.name).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            (t.attempts_of(0), t.attempts_of(1)),
            (3, 1),
            "not retryable: one attempt"
        );
        assert!(std::ptr::eq(template("unit/unit_order@1.0.0").unwrap(), t));
        assert!(std::ptr::eq(register(d).unwrap(), t), "the same definition again");
        let a: Value = serde_json::from_str(t.steps[0].definition.unwrap()).unwrap();
        assert_eq!(a["handler"]["initialization"], json!({"k": 1}));
        assert_eq!(a["handler"]["callable"], "A");
        assert!(!t.is_built_in());
        assert!(known()
            .iter()
            .any(|k| k == &("unit".into(), "unit_order".into(), "1.0.0".into())));
        // A different definition under the same key is refused.
        let other = def("unit_order", json!([{"name": "a", "handler": {"callable": "Other"}}]));
        assert!(matches!(register(other), Err(TemplateError::Conflict(_))));
    }

    /// A template in tasker-core's YAML form (their keys, including ones this store ignores), from a
    /// directory holding it beside a file that is not a template.
    #[test]
    fn yaml_files_in_tasker_cores_format_register() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("payments.yaml"),
            "name: unit_refund\nnamespace_name: payments\nversion: 2.1.0\ndescription: Refunds\n\
             task_handler:\n  callable: Payments.RefundTask\n\
             steps:\n\
             \x20 - name: validate\n    handler:\n      callable: Payments.Validate\n      initialization:\n        limit: 100\n\
             \x20   retry:\n      retryable: true\n      max_attempts: 4\n      backoff: exponential\n      backoff_base_ms: 500\n\
             \x20   timeout_seconds: 10\n\
             \x20 - name: refund\n    handler:\n      callable: Payments.Refund\n    dependencies: [validate]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.txt"), "not a template").unwrap();
        let registered = register_path(dir.path()).unwrap();
        assert_eq!(registered.len(), 1);
        let t = registered[0];
        assert_eq!(t.short_name, "payments/unit_refund@2.1.0");
        assert_eq!((t.attempts_of(0), t.attempts_of(1)), (4, 3));
        let validate: Value = serde_json::from_str(t.steps[0].definition.unwrap()).unwrap();
        assert_eq!(validate["handler"]["initialization"], json!({"limit": 100}));
        assert_eq!(validate["retry"]["backoff_base_ms"], 500);
        assert_eq!(validate["timeout_seconds"], 10);
        assert_eq!(t.steps[1].dependencies, ["validate"]);
        let e = register_text("name: [", true, "text").unwrap_err();
        assert!(matches!(e, TemplateError::Parse { .. }), "{e}");
    }

    #[test]
    fn broken_templates_are_refused_with_the_rule() {
        let cases = [
            (json!([]), "no steps"),
            (
                json!([{"name": "a", "handler": {"callable": "A"}}, {"name": "a", "handler": {"callable": "A"}}]),
                "two steps",
            ),
            (
                json!([{"name": "a", "handler": {"callable": "A"}, "dependencies": ["x"]}]),
                "no step of it",
            ),
            (
                json!([{"name": "a", "handler": {"callable": "A"}, "dependencies": ["b"]},
                       {"name": "b", "handler": {"callable": "B"}, "dependencies": ["a"]}]),
                "cycle",
            ),
            (
                json!([{"name": "a", "handler": {"callable": "A"}, "retry": {"max_attempts": 0}}]),
                "max_attempts",
            ),
        ];
        for (steps, why) in cases {
            let e = register(def("unit_broken", steps)).unwrap_err();
            assert!(
                matches!(e, TemplateError::Invalid { .. }) && e.to_string().contains(why),
                "{e}"
            );
        }
        let e = register(def(
            "linear_workflow",
            json!([{"name": "a", "handler": {"callable": "A"}}]),
        ))
        .unwrap_err();
        assert!(matches!(e, TemplateError::BuiltIn(_)), "{e}");
        let e = register_text("{\"name\": 1}", false, "text").unwrap_err();
        assert!(matches!(e, TemplateError::Parse { .. }), "{e}");
        let e = register_path(Path::new("/nonexistent/t.json")).unwrap_err();
        assert!(matches!(e, TemplateError::Io { .. }), "{e}");
    }
}
