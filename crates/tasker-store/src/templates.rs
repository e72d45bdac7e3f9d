//! The built-in task templates (`linear`, `diamond`, as in tasker-core's fixtures) and their reference math.
//!
//! Every step reads `even_number` from the task context or the `value` of its parents' results and returns
//! `{"value": v, "operation": op, "input": i}`:
//!
//! | template | step | operation | value |
//! |---|---|---|---|
//! | linear | `linear_step_1` | `square_input` | `n²` (n = context.even_number) |
//! | linear | `linear_step_2..4` | `square` | parent² (final: `n^16`) |
//! | diamond | `diamond_start` | `square_input` | `n²` |
//! | diamond | `diamond_branch_b` | `square` | start² = `n⁴` |
//! | diamond | `diamond_branch_c` | `double` | 2 · start = `2n²` |
//! | diamond | `diamond_end` | `sum` | b + c = `n⁴ + 2n²` (final) |
//!
//! The operation is also in each step definition (`handler.initialization.operation`), so a generic handler
//! can compute it; [`reference_result`] is that handler.
//!
//! Beside these, templates registered at run time (`crate::registry`: from a JSON or YAML definition in
//! tasker-core's task-template format) are found by [`template`] under their key `namespace/name@version`.

use serde_json::{json, Value};

/// One step of a template.
#[derive(Debug)]
pub struct StepTemplate {
    /// Step name (unique within the template; children name their parents by it).
    pub name: &'static str,
    /// Handler class / callable name.
    pub handler: &'static str,
    /// The math (see the module docs).
    pub operation: &'static str,
    /// Parent step names.
    pub dependencies: &'static [&'static str],
    /// Attempts this step gets before it is left in error (None: the template's `max_attempts`).
    pub max_attempts: Option<i64>,
    /// The step definition JSON of a registered step (its handler's initialization, retry and timeout as
    /// registered); None for the built-in steps, whose definition [`StepTemplate::definition`] builds.
    pub definition: Option<&'static str>,
}

/// A task template: a DAG of steps, parents listed before children.
#[derive(Debug)]
pub struct Template {
    /// Short name accepted by `enqueue` (`linear`, `diamond`); a registered template's key,
    /// `namespace/name@version`. Stored in each task's row.
    pub short_name: &'static str,
    /// Task name (`linear_workflow`, `diamond_workflow`), also accepted by `enqueue`.
    pub name: &'static str,
    /// Template version.
    pub version: &'static str,
    /// The namespace a registered template belongs to; None for the built-ins (any namespace).
    pub namespace: Option<&'static str>,
    /// Attempts a step gets before it is left in error, unless the step says otherwise.
    pub max_attempts: i64,
    /// The steps.
    pub steps: &'static [StepTemplate],
}

/// Linear: four steps in a chain.
pub static LINEAR: Template = Template {
    short_name: "linear",
    name: "linear_workflow",
    version: "1.0.0",
    namespace: None,
    max_attempts: 3,
    steps: &[
        StepTemplate {
            name: "linear_step_1",
            handler: "LinearWorkflow.StepHandlers.LinearStep1Handler",
            operation: "square_input",
            dependencies: &[],
            max_attempts: None,
            definition: None,
        },
        StepTemplate {
            name: "linear_step_2",
            handler: "LinearWorkflow.StepHandlers.LinearStep2Handler",
            operation: "square",
            dependencies: &["linear_step_1"],
            max_attempts: None,
            definition: None,
        },
        StepTemplate {
            name: "linear_step_3",
            handler: "LinearWorkflow.StepHandlers.LinearStep3Handler",
            operation: "square",
            dependencies: &["linear_step_2"],
            max_attempts: None,
            definition: None,
        },
        StepTemplate {
            name: "linear_step_4",
            handler: "LinearWorkflow.StepHandlers.LinearStep4Handler",
            operation: "square",
            dependencies: &["linear_step_3"],
            max_attempts: None,
            definition: None,
        },
    ],
};

/// Diamond: one start step, two parallel branches, one end step.
pub static DIAMOND: Template = Template {
    short_name: "diamond",
    name: "diamond_workflow",
    version: "1.0.0",
    namespace: None,
    max_attempts: 3,
    steps: &[
        StepTemplate {
            name: "diamond_start",
            handler: "DiamondWorkflow.StepHandlers.DiamondStartHandler",
            operation: "square_input",
            dependencies: &[],
            max_attempts: None,
            definition: None,
        },
        StepTemplate {
            name: "diamond_branch_b",
            handler: "DiamondWorkflow.StepHandlers.DiamondBranchBHandler",
            operation: "square",
            dependencies: &["diamond_start"],
            max_attempts: None,
            definition: None,
        },
        StepTemplate {
            name: "diamond_branch_c",
            handler: "DiamondWorkflow.StepHandlers.DiamondBranchCHandler",
            operation: "double",
            dependencies: &["diamond_start"],
            max_attempts: None,
            definition: None,
        },
        StepTemplate {
            name: "diamond_end",
            handler: "DiamondWorkflow.StepHandlers.DiamondEndHandler",
            operation: "sum",
            dependencies: &["diamond_branch_b", "diamond_branch_c"],
            max_attempts: None,
            definition: None,
        },
    ],
};

/// The built-in templates.
pub static BUILT_IN: [&Template; 2] = [&LINEAR, &DIAMOND];

/// The template called `name`: a built-in one by short or task name, else a registered one by its key
/// (`namespace/name@version`, see `crate::registry`).
pub fn template(name: &str) -> Option<&'static Template> {
    BUILT_IN
        .into_iter()
        .find(|t| t.short_name == name || t.name == name)
        .or_else(|| crate::registry::registered(name))
}

impl Template {
    /// Whether this is one of the built-in templates (their steps compute the reference math).
    pub fn is_built_in(&self) -> bool {
        BUILT_IN.iter().any(|t| std::ptr::eq(*t, self))
    }

    /// Attempts the step at `idx` gets before it is left in error.
    pub fn attempts_of(&self, idx: usize) -> i64 {
        self.steps
            .get(idx)
            .and_then(|s| s.max_attempts)
            .unwrap_or(self.max_attempts)
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&'static StepTemplate> {
        let steps: &'static [StepTemplate] = self.steps;
        steps.iter().find(|s| s.name == name)
    }

    /// Names of the steps that depend on `name`.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'static str> + 'a {
        let steps: &'static [StepTemplate] = self.steps;
        steps
            .iter()
            .filter(move |s| s.dependencies.contains(&name))
            .map(|s| s.name)
    }

    /// Position of the step called `name` (its step id is the task's `first_step` plus this).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Positions of the parents of the step at `idx`.
    pub fn parent_indices(&self, idx: usize) -> impl Iterator<Item = usize> + '_ {
        let deps: &'static [&'static str] = self.steps.get(idx).map_or(&[], |s| s.dependencies);
        deps.iter().filter_map(move |d| self.index_of(d))
    }

    /// Positions of the children of the step at `idx`.
    pub fn child_indices(&self, idx: usize) -> impl Iterator<Item = usize> + '_ {
        let name = self.steps.get(idx).map(|s| s.name);
        self.steps
            .iter()
            .enumerate()
            .filter(move |(_, s)| name.is_some_and(|n| s.dependencies.contains(&n)))
            .map(|(i, _)| i)
    }

    /// Positions of the sink steps (no step depends on them). A task is complete when its sinks are: every
    /// other step is an ancestor of one, and a step becomes ready only once its parents are complete.
    pub fn sink_indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.steps.len()).filter(move |i| self.child_indices(*i).next().is_none())
    }

    /// The final step's `value` for `even_number` (None on i64 overflow).
    pub fn expected_final(&self, n: i64) -> Option<i64> {
        let sq = n.checked_mul(n)?;
        match self.short_name {
            "linear" => {
                let n4 = sq.checked_mul(sq)?;
                let n8 = n4.checked_mul(n4)?;
                n8.checked_mul(n8)
            }
            _ => sq.checked_mul(sq)?.checked_add(sq.checked_mul(2)?),
        }
    }
}

impl StepTemplate {
    /// The step definition JSON of the event (`step_definition`): a registered step's as registered,
    /// a built-in step's with `max_attempts`.
    pub fn definition(&self, max_attempts: i64) -> Value {
        if let Some(text) = self.definition {
            // Written by the registry from a `Value`: always JSON.
            return serde_json::from_str(text).unwrap_or(Value::Null);
        }
        json!({
            "name": self.name,
            "description": format!("{} ({})", self.name, self.operation),
            "handler": {
                "handler_class": self.handler,
                "callable": self.handler,
                "initialization": { "operation": self.operation },
                "method": "call",
                "resolver": null
            },
            "type": "standard",
            "system_dependency": null,
            "dependencies": self.dependencies,
            "retry": { "retryable": true, "max_attempts": max_attempts, "backoff": "exponential" },
            "timeout_seconds": 30,
            "publishes_events": []
        })
    }
}

/// The reference handler: computes a step's `value` from its event (the fields the store writes) and returns
/// the success `StepExecutionResult`, or a message saying what is missing.
pub fn reference_result(event: &Value) -> Result<Value, String> {
    let tss = &event["task_sequence_step"];
    let op = tss["step_definition"]["handler"]["initialization"]["operation"]
        .as_str()
        .ok_or("event has no handler.initialization.operation")?;
    let parents = tss["step_definition"]["dependencies"]
        .as_array()
        .ok_or("event has no step_definition.dependencies")?;
    let parent_values = parents
        .iter()
        .map(|p| {
            let name = p.as_str().unwrap_or_default();
            tss["dependency_results"]["results"][name]["result"]["value"]
                .as_i64()
                .ok_or_else(|| format!("dependency result of `{name}` has no integer value"))
        })
        .collect::<Result<Vec<i64>, String>>()?;
    let first = parent_values.first().copied();
    let overflow = || format!("`{op}` overflows i64");
    let (input, value) = match op {
        "square_input" => {
            let n = tss["task"]["context"]["even_number"]
                .as_i64()
                .ok_or("task context has no integer even_number")?;
            (json!(n), n.checked_mul(n).ok_or_else(overflow)?)
        }
        "square" => {
            let p = first.ok_or("`square` needs a parent")?;
            (json!(p), p.checked_mul(p).ok_or_else(overflow)?)
        }
        "double" => {
            let p = first.ok_or("`double` needs a parent")?;
            (json!(p), p.checked_mul(2).ok_or_else(overflow)?)
        }
        "sum" => (
            json!(parent_values),
            parent_values
                .iter()
                .try_fold(0i64, |a, v| a.checked_add(*v))
                .ok_or_else(overflow)?,
        ),
        other => return Err(format!("unknown operation `{other}`")),
    };
    Ok(json!({
        "step_uuid": event["step_uuid"],
        "success": true,
        "result": { "value": value, "operation": op, "input": input },
        "status": "completed",
        "metadata": { "retryable": false, "handler_version": "1.0.0" }
    }))
}
