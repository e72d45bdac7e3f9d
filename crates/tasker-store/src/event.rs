//! Event shaping: the `FfiStepEvent` JSON of a claimed step, built in Rust from the task (cached per task id),
//! the template's static step definitions (built once) and the parents' results (fetched once per claim
//! batch). The database only hands out ids and rows.

use crate::templates::{template, Template};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use uuid::Uuid;

/// A task as the events need it. Immutable once enqueued, so it is cached.
#[derive(Debug)]
pub(crate) struct TaskInfo {
    pub task_uuid: String,
    /// Shared with the claimed steps (`ClaimedStep::namespace`).
    pub namespace: Arc<str>,
    pub version: String,
    pub template: &'static Template,
    /// The context JSON text (checked to be JSON once, when cached).
    pub context: String,
    /// Shared with the claimed steps (`ClaimedStep::correlation_id`).
    pub correlation_id: Arc<str>,
    pub priority: i64,
    /// `created_at` as ISO 8601.
    pub created_iso: String,
    /// tasker-core's `named_task_uuid`: stable per namespace, template and version.
    pub named_task_uuid: String,
    /// FNV-1a 64 of namespace, name, version and context text, as hex (tasker-core's `identity_hash` role:
    /// equal for tasks of identical identity).
    pub identity_hash: String,
}

impl TaskInfo {
    /// Builds the cached form of one `tasks` row; `Err` names what is corrupt.
    #[allow(clippy::too_many_arguments)]
    pub fn from_row(
        task_uuid: String,
        namespace: String,
        version: String,
        template_name: &str,
        context: &str,
        correlation_id: String,
        priority: i64,
        created_at: i64,
    ) -> Result<Self, String> {
        let t = template(template_name).ok_or_else(|| format!("unknown template `{template_name}`"))?;
        serde_json::from_str::<serde::de::IgnoredAny>(context)
            .map_err(|e| format!("context of task `{task_uuid}` is not JSON: {e}"))?;
        let mut h = Fnv::default();
        for part in [namespace.as_str(), t.name, version.as_str(), context] {
            h.write(part.as_bytes());
            h.write(&[0]);
        }
        Ok(Self {
            identity_hash: format!("{:016x}", h.0),
            created_iso: iso8601(created_at),
            named_task_uuid: named_uuid(&format!("task/{namespace}/{}/{version}", t.name)),
            task_uuid,
            namespace: namespace.into(),
            version,
            template: t,
            context: context.to_string(),
            correlation_id: correlation_id.into(),
            priority,
        })
    }
}

/// Tasks by id, bounded: cleared when full (a claim batch refills what it needs with one query).
#[derive(Debug, Default)]
pub(crate) struct TaskCache {
    map: Mutex<HashMap<i64, Arc<TaskInfo>>>,
}

/// Most tasks kept in a [`TaskCache`].
const TASK_CACHE_MAX: usize = 65_536;

impl TaskCache {
    pub fn get(&self, id: i64) -> Option<Arc<TaskInfo>> {
        self.lock().get(&id).cloned()
    }

    pub fn insert(&self, id: i64, task: Arc<TaskInfo>) {
        let mut map = self.lock();
        if map.len() >= TASK_CACHE_MAX {
            map.clear();
        }
        map.insert(id, task);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<TaskInfo>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One claimed row, as the claim statement returns it.
#[derive(Debug)]
pub(crate) struct ClaimedRow {
    pub id: i64,
    pub task_id: i64,
    pub idx: i64,
    pub attempts: i64,
    pub token: i64,
    pub step_uuid: String,
    pub created_at: i64,
}

/// Everything an event needs besides its row.
pub(crate) struct Shaping<'a> {
    pub task: &'a TaskInfo,
    /// Completed results by step id (this batch's parents).
    pub results: &'a HashMap<i64, String>,
    /// Steps of `results` whose stored text is not JSON.
    pub corrupt_results: &'a HashSet<i64>,
    /// The last checkpoint of each claimed step that yielded one (JSON text, checked like `results`).
    pub checkpoints: &'a HashMap<i64, String>,
    /// Steps of `checkpoints` whose stored text is not JSON.
    pub corrupt_checkpoints: &'a HashSet<i64>,
    pub event_id: Uuid,
    /// The claim's time, ISO 8601 (the `updated_at` fields).
    pub now_iso: &'a str,
}

/// What never changes for a template's steps, as JSON text built once: each step's `step_definition`, its
/// `named_step_uuid` and the template's `named_task_uuid` per namespace and version.
struct StepTexts {
    definitions: Vec<String>,
    named_steps: Vec<String>,
}

fn step_texts(t: &'static Template) -> &'static StepTexts {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, &'static StepTexts>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(t.short_name).or_insert_with(|| {
        Box::leak(Box::new(StepTexts {
            definitions: (t.steps.iter().enumerate())
                .map(|(i, s)| s.definition(t.attempts_of(i)).to_string())
                .collect(),
            named_steps: t
                .steps
                .iter()
                .map(|s| named_uuid(&format!("step/{}/{}", t.name, s.name)))
                .collect(),
        }))
    })
}

/// A stable UUID (version 8) naming `what`: the same text always gives the same id.
fn named_uuid(what: &str) -> String {
    let mut a = Fnv::default();
    a.write(what.as_bytes());
    let mut b = Fnv(a.0 ^ 0x9e37_79b9_7f4a_7c15);
    b.write(what.as_bytes());
    let v = ((a.0 as u128) << 64) | b.0 as u128;
    let v = (v & !(0xf << 76) & !(0b11 << 62)) | (0x8 << 76) | (0b10 << 62);
    Uuid::from_u128(v).to_string()
}

/// The event of one claimed step, as JSON text (`FfiStepEvent`: the seed's fields and tasker-core's); `Err`
/// says which of its rows is corrupt. Built by appending to one string: the context, the parents' results
/// and the step definition go in as the JSON text they already are (each checked once: the context when its
/// task is cached, a result when its batch is read, the definitions are serde's), every other string is
/// escaped, so the whole is JSON without parsing it again (debug builds check).
pub(crate) fn build(row: &ClaimedRow, s: &Shaping<'_>) -> Result<Box<str>, String> {
    let t = s.task.template;
    let idx = usize::try_from(row.idx).ok().filter(|i| *i < t.steps.len());
    let idx = idx.ok_or_else(|| format!("step index {} outside template `{}`", row.idx, t.short_name))?;
    let step = &t.steps[idx];
    let texts = step_texts(t);
    let first_step = row.id - row.idx;
    let task = s.task;
    let now = s.now_iso;
    let mut o = String::with_capacity(2048 + task.context.len());
    let kv = |o: &mut String, key: &str, value: &str| {
        o.push('"');
        o.push_str(key);
        o.push_str("\":");
        push_json_str(o, value);
        o.push(',');
    };
    let raw = |o: &mut String, key: &str, value: &str| {
        o.push('"');
        o.push_str(key);
        o.push_str("\":");
        o.push_str(value);
        o.push(',');
    };
    o.push('{');
    kv(&mut o, "event_id", &s.event_id.to_string());
    kv(&mut o, "task_uuid", &task.task_uuid);
    kv(&mut o, "step_uuid", &row.step_uuid);
    kv(&mut o, "correlation_id", &task.correlation_id);
    kv(&mut o, "task_correlation_id", &task.correlation_id);
    raw(&mut o, "parent_correlation_id", "null");
    o.push_str("\"task_sequence_step\":{\"task\":{");
    kv(&mut o, "task_uuid", &task.task_uuid);
    kv(&mut o, "named_task_uuid", &task.named_task_uuid);
    raw(&mut o, "context", &task.context);
    kv(&mut o, "namespace_name", &task.namespace);
    kv(&mut o, "template_name", t.name);
    kv(&mut o, "status", "in_progress");
    kv(&mut o, "name", t.name);
    kv(&mut o, "namespace", &task.namespace);
    kv(&mut o, "version", &task.version);
    kv(&mut o, "correlation_id", &task.correlation_id);
    raw(&mut o, "parent_correlation_id", "null");
    raw(&mut o, "priority", &task.priority.to_string());
    kv(&mut o, "identity_hash", &task.identity_hash);
    raw(&mut o, "complete", "false");
    kv(&mut o, "created_at", &task.created_iso);
    // A task is requested when it is enqueued: the store keeps no separate request time.
    kv(&mut o, "requested_at", &task.created_iso);
    o.push_str("\"updated_at\":");
    push_json_str(&mut o, now);
    o.push_str("},\"workflow_step\":{");
    kv(&mut o, "workflow_step_uuid", &row.step_uuid);
    kv(&mut o, "task_uuid", &task.task_uuid);
    kv(&mut o, "named_step_uuid", &texts.named_steps[idx]);
    kv(&mut o, "name", step.name);
    kv(&mut o, "template_step_name", step.name);
    raw(&mut o, "inputs", "{}");
    raw(&mut o, "results", "null");
    kv(&mut o, "state", "in_progress");
    raw(&mut o, "attempts", &row.attempts.to_string());
    let max_attempts = t.attempts_of(idx);
    raw(&mut o, "max_attempts", &max_attempts.to_string());
    raw(&mut o, "retryable", if max_attempts > 1 { "true" } else { "false" });
    raw(&mut o, "in_process", "true");
    raw(&mut o, "processed", "false");
    if let Some(checkpoint) = s.checkpoints.get(&row.id) {
        if s.corrupt_checkpoints.contains(&row.id) {
            return Err("the step's stored checkpoint is not JSON".into());
        }
        raw(&mut o, "checkpoint", checkpoint);
    }
    kv(&mut o, "created_at", &iso8601(row.created_at));
    o.push_str("\"updated_at\":");
    push_json_str(&mut o, now);
    o.push_str("},\"dependency_results\":{\"results\":{");
    for (n, p) in t.parent_indices(idx).enumerate() {
        let parent = first_step + p as i64;
        let results = s
            .results
            .get(&parent)
            .ok_or_else(|| format!("parent `{}` of a claimed step is not complete", t.steps[p].name))?;
        if s.corrupt_results.contains(&parent) {
            return Err(format!(
                "the stored results of parent `{}` are not JSON",
                t.steps[p].name
            ));
        }
        if n > 0 {
            o.push(',');
        }
        push_json_str(&mut o, t.steps[p].name);
        o.push(':');
        o.push_str(results);
    }
    o.push_str("}},\"step_definition\":");
    o.push_str(&texts.definitions[idx]);
    o.push_str("}}");
    debug_assert!(
        serde_json::from_str::<serde::de::IgnoredAny>(&o).is_ok(),
        "an event built is not JSON: {o}"
    );
    Ok(o.into_boxed_str())
}

/// Appends `s` as a JSON string literal.
fn push_json_str(o: &mut String, s: &str) {
    o.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        // The common case (ids, names, timestamps): nothing to escape.
        o.push_str(s);
        o.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
}

/// `2026-12-06T02:58:00.123Z` for Unix milliseconds (proleptic Gregorian, UTC).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_796_525_880_000), "2026-12-06T02:58:00.000Z");
    }

    #[test]
    fn named_uuids_are_stable_version_8() {
        let a = named_uuid("task/ns/linear_workflow/1.0.0");
        assert_eq!(a, named_uuid("task/ns/linear_workflow/1.0.0"));
        assert_ne!(a, named_uuid("task/ns/diamond_workflow/1.0.0"));
        let u = Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 8);
    }
}
