//! Results verification: the final value of every finished task against its template's reference math.

use crate::error::VerifyError;
use crate::sql;
use crate::store::{state, Store};
use crate::templates::{template, StepTemplate, Template};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

/// Tasks read per query (keyset pagination by `task_uuid`): memory stays bounded whatever the store's size.
const PAGE: usize = 5000;
/// Most mismatches a [`VerifyReport`] keeps in `examples`.
pub const MAX_EXAMPLES: usize = 10;

/// What [`Store::verify`] found. Invariants: `mismatches <= checked <= tasks`;
/// `examples.len() == min(mismatches, MAX_EXAMPLES)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// All tasks.
    pub tasks: u64,
    /// Tasks of a built-in template whose final step is `complete` (the only ones compared).
    pub checked: u64,
    /// Checked tasks whose final value is not the expected one, or could not be compared.
    pub mismatches: u64,
    /// The first [`MAX_EXAMPLES`] mismatches in `task_uuid` order.
    pub examples: Vec<Mismatch>,
}

/// One checked task whose final value does not match. `reason` is set exactly when `expected` or `got` is
/// `None` (then it says why); otherwise both are set and differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The task.
    pub task_uuid: Uuid,
    /// Its template's short name (`linear`, `diamond`).
    pub template: String,
    /// `template.expected_final(context.even_number)`; `None` without an integer `even_number` or on overflow.
    pub expected: Option<i64>,
    /// The final step's `results.result.value`; `None` when it is not an integer.
    pub got: Option<i64>,
    /// Why `expected` or `got` is missing.
    pub reason: Option<String>,
}

impl Template {
    /// The step no other step depends on: the task's result. Parents are listed before children, so it is
    /// the last step without children (both built-in templates have exactly one); `None` only without steps.
    pub fn final_step(&self) -> Option<&'static StepTemplate> {
        let steps: &'static [StepTemplate] = self.steps;
        steps.iter().rev().find(|s| self.children(s.name).next().is_none())
    }
}

/// The final value expected from a task of `t` with this context (as `reference_result` computes it: no
/// default for a missing `even_number`).
fn expected(t: &Template, context: &str) -> Result<i64, String> {
    let context: Value = serde_json::from_str(context).map_err(|e| format!("task context is not JSON: {e}"))?;
    let n = context["even_number"]
        .as_i64()
        .ok_or("task context has no integer even_number")?;
    t.expected_final(n)
        .ok_or_else(|| format!("expected value for even_number {n} overflows i64"))
}

/// `results.result.value` of the final step.
fn got(results: Option<&str>) -> Result<i64, String> {
    let results = results.ok_or("final step is complete without results")?;
    let v: Value = serde_json::from_str(results).map_err(|e| format!("final step results are not JSON: {e}"))?;
    v["result"]["value"]
        .as_i64()
        .ok_or_else(|| "final step result has no integer value".to_string())
}

impl Store {
    /// Compares every task whose final step ([`Template::final_step`], the template's last) is `complete`
    /// with its template's reference math: `results.result.value == template.expected_final(context.even_number)`.
    /// Tasks are read in pages of 5000 by id, in enqueue order (memory bounded for any store size), each
    /// page with its final steps;
    /// pages are separate statements, not one snapshot, so a task finishing during the run may or may not be
    /// checked. Read-only.
    pub async fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let mut report = VerifyReport::default();
        let mut after = 0i64;
        loop {
            // (task id, task uuid, template, context, final step state, its results)
            type Row6 = (i64, String, String, String, i64, Option<String>);
            let page: Vec<Row6> = on_backend!(self, pool, kind => {
                let rows = sqlx::query(sql::of(kind).verify_page)
                    .bind(after)
                    .bind(PAGE as i64)
                    .fetch_all(pool)
                    .await?;
                let mut page = Vec::with_capacity(rows.len());
                for r in rows {
                    page.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?));
                }
                page
            });
            let Some(last) = page.last().map(|t| t.0) else {
                break;
            };
            for (_, task_uuid, name, context, final_state, results) in &page {
                report.tasks += 1;
                let t = match template(name) {
                    Some(t) => t,
                    // A registered template this process never read: the user's handlers, nothing to compare.
                    None if crate::registry::is_key(name) => continue,
                    None => return Err(VerifyError::CorruptRow(format!("template `{name}`"))),
                };
                // Registered templates' handlers are the user's: there is no reference math to compare with.
                if *final_state != state::COMPLETE || !t.is_built_in() {
                    continue;
                }
                report.checked += 1;
                let (expected, got) = (expected(t, context), got(results.as_deref()));
                if matches!((&expected, &got), (Ok(e), Ok(g)) if e == g) {
                    continue;
                }
                report.mismatches += 1;
                if report.examples.len() < MAX_EXAMPLES {
                    let reason = [&expected, &got]
                        .iter()
                        .filter_map(|r| r.as_ref().err().cloned())
                        .collect::<Vec<_>>();
                    report.examples.push(Mismatch {
                        task_uuid: Uuid::parse_str(task_uuid)
                            .map_err(|e| VerifyError::CorruptRow(format!("task uuid `{task_uuid}`: {e}")))?,
                        template: t.short_name.to_string(),
                        expected: expected.ok(),
                        got: got.ok(),
                        reason: (!reason.is_empty()).then(|| reason.join("; ")),
                    });
                }
            }
            if page.len() < PAGE {
                break;
            }
            after = last;
        }
        Ok(report)
    }
}
